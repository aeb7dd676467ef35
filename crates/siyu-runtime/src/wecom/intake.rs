//! The intake of WeCom's relation changes: callbacks the route has checked and read,
//! taken many to a transaction (group commit). WeCom waits 5 s for an answer and sends
//! again after it; a flood of adds answered one transaction each would queue behind
//! the write lock. Each callback's answer waits for the commit that holds it, so
//! `success` always means it is kept.

use siyu_domain::ids::{ConnectorId, TenantId};
use siyu_store::{Store, TakenCallback};
use tokio::sync::{mpsc, oneshot};

/// Callbacks taken in one transaction at most.
const MAX_GROUP: usize = 2_000;
/// Callbacks waiting for the intake at most; beyond, callers wait to hand theirs over.
const QUEUE: usize = 10_000;

/// Why a callback was not taken.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// Keeping it failed (the cause is in the server's log).
    #[error("the callback could not be kept: {0}")]
    Failed(String),
    /// The intake has stopped (the server is shutting down).
    #[error("the callback intake has stopped")]
    Stopped,
}

struct Taking {
    tenant: TenantId,
    connector: ConnectorId,
    dedupe_key: String,
    event: String,
    taken: oneshot::Sender<Result<bool, IntakeError>>,
}

/// The handle callbacks are taken through; cheap to clone.
#[derive(Clone)]
pub struct RelationIntake {
    queue: mpsc::Sender<Taking>,
}

impl RelationIntake {
    /// Starts the intake's task (it ends when the last handle is dropped).
    pub fn start(store: Store) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(take_groups(store, waiting));
        Self { queue }
    }

    /// Takes a relation change's callback (`event` as JSON): answers once it is kept,
    /// true when new and false when a callback with its key was taken before.
    pub async fn take(
        &self,
        tenant: TenantId,
        connector: ConnectorId,
        dedupe_key: String,
        event: String,
    ) -> Result<bool, IntakeError> {
        let (taken, answer) = oneshot::channel();
        self.queue
            .send(Taking {
                tenant,
                connector,
                dedupe_key,
                event,
                taken,
            })
            .await
            .map_err(|_| IntakeError::Stopped)?;
        answer.await.map_err(|_| IntakeError::Stopped)?
    }
}

/// Takes what waits, a group at a time, until every handle is gone. A group that
/// fails is taken again one callback at a time, so one bad callback (on PostgreSQL, its
/// connector deleted meanwhile) fails alone.
async fn take_groups(store: Store, mut waiting: mpsc::Receiver<Taking>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while waiting.recv_many(&mut group, MAX_GROUP).await > 0 {
        match take(&store, &group).await {
            Ok(answers) => answer(group.drain(..), answers.into_iter().map(Ok)),
            Err(e) if group.len() == 1 => answer(group.drain(..), [Err(e)]),
            Err(_) => {
                for taking in group.drain(..) {
                    let one = take(&store, std::slice::from_ref(&taking))
                        .await
                        .map(|answers| answers.first().copied().unwrap_or(false));
                    let _ = taking.taken.send(one);
                }
            }
        }
    }
}

async fn take(store: &Store, group: &[Taking]) -> Result<Vec<bool>, IntakeError> {
    let callbacks: Vec<TakenCallback<'_>> = group
        .iter()
        .map(|t| TakenCallback {
            tenant: t.tenant,
            connector: t.connector,
            dedupe_key: &t.dedupe_key,
            event: &t.event,
        })
        .collect();
    store
        .take_wecom_relation_changes(&callbacks)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, callbacks = group.len(), "relation changes not kept");
            IntakeError::Failed(e.to_string())
        })
}

fn answer(
    group: impl Iterator<Item = Taking>,
    answers: impl IntoIterator<Item = Result<bool, IntakeError>>,
) {
    for (taking, taken) in group.zip(answers) {
        let _ = taking.taken.send(taken);
    }
}
