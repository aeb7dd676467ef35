//! The durable job queue: enqueued in the caller's transaction, deduplicated by unique
//! key, claimed by priority and time, never twice at once, again after a lease runs
//! out, retried with backoff until dead, cancelled and retried by hand within the
//! tenant and its reach (audited), and fair between tenants; the operator reaches every
//! job; the backlog per kind for the metrics.

use std::collections::HashSet;

use serde_json::json;
use siyu_domain::access::{DataScope, PermissionSet, Principal, PrincipalKind};
use siyu_domain::audit::Actor;
use siyu_domain::ids::{JobId, RoleId, SessionId, StaffId, TenantId, UnitId};
use siyu_domain::jobs::{Job, JobState};
use siyu_domain::page::{Page, PageRequest};
use siyu_domain::tenancy::NewStaff;
use siyu_store::testing::TestDatabase;
use siyu_store::{JobFilter, NewJob, StoreError, TenantScope};

use crate::support::{self, drain_jobs, tenant};

#[tokio::test]
async fn a_job_exists_only_if_its_transaction_committed() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let scope = store.tenant(tenant(&store, "tx").await.id);
    let job = NewJob::new("noop", json!({"n": 1})).for_tenant(scope.id());

    let rolled_back = store
        .enqueue_then(std::slice::from_ref(&job), false)
        .await
        .unwrap();
    let id = rolled_back[0].expect("made inside the transaction");
    assert!(matches!(
        scope.get_job(id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        store
            .claim_jobs("w", &["noop"], 10, 30_000)
            .await
            .unwrap()
            .is_empty()
    );

    let committed = store.enqueue_then(&[job], true).await.unwrap();
    let made = scope.get_job(committed[0].unwrap()).await.unwrap();
    assert_eq!(made.state, JobState::Waiting);
    assert_eq!(made.payload, json!({"n": 1}));
    assert_eq!(
        (made.attempts, made.max_attempts),
        (0, NewJob::DEFAULT_MAX_ATTEMPTS)
    );
    let listed = scope
        .list_jobs(PageRequest::first(10), &JobFilter::default())
        .await
        .unwrap();
    assert_eq!(listed.items, vec![made]);
}

#[tokio::test]
async fn a_unique_key_makes_one_job_while_it_is_waiting_or_running() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let keyed = || NewJob::new("sync", json!({})).unique_key("account-7");
    let other_kind = NewJob::new("other", json!({})).unique_key("account-7");

    let first = store
        .enqueue(&[keyed(), NewJob::new("sync", json!({})), keyed(), other_kind])
        .await
        .unwrap();
    assert!(first[0].is_some() && first[1].is_some() && first[3].is_some());
    assert_eq!(
        first[2], None,
        "the same key twice in one batch makes one job"
    );
    assert_eq!(
        store.enqueue(&[keyed()]).await.unwrap(),
        vec![None],
        "waiting"
    );

    let claimed = store.claim_jobs("w", &["sync"], 10, 30_000).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(
        store.enqueue(&[keyed()]).await.unwrap(),
        vec![None],
        "running"
    );

    store
        .complete_jobs("w", &[first[0].unwrap()])
        .await
        .unwrap();
    let again = store.enqueue(&[keyed()]).await.unwrap();
    assert!(again[0].is_some(), "after it is done the key is free");
    assert_ne!(again[0], first[0]);
}

#[tokio::test]
async fn claims_take_due_jobs_by_priority_then_age() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let scope = store.tenant(tenant(&store, "prio").await.id);
    let now = siyu_store::now_ms();
    let ids = scope
        .enqueue(&[
            NewJob::new("k", json!(1)),
            NewJob::new("k", json!(2)).with_priority(5),
            NewJob::new("k", json!(3))
                .with_priority(5)
                .run_at(now + 3_600_000),
            NewJob::new("k", json!(4)),
            NewJob::new("elsewhere", json!(5)).with_priority(9),
        ])
        .await
        .unwrap();
    let ids: Vec<JobId> = ids.into_iter().map(Option::unwrap).collect();

    let first = store.claim_jobs("w", &["k"], 1, 30_000).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].id, ids[1], "the highest priority first");
    assert_eq!((first[0].attempts, first[0].payload.as_str()), (1, "2"));
    assert!(first[0].lease_until >= now + 30_000);
    let rest = store.claim_jobs("w", &["k"], 10, 30_000).await.unwrap();
    assert_eq!(
        rest.iter().map(|j| j.id).collect::<Vec<_>>(),
        [ids[0], ids[3]],
        "then the oldest; the one due in an hour and other kinds stay"
    );
    let job = scope.get_job(ids[0]).await.unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Running, 1));
    assert!(
        store
            .claim_jobs("w", &["k"], 10, 30_000)
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        store
            .complete_jobs("w", &[ids[0], ids[1], ids[2]])
            .await
            .unwrap(),
        2
    );
    let done = scope.get_job(ids[0]).await.unwrap();
    assert_eq!(done.state, JobState::Done);
    assert!(done.finished_at.is_some());
    assert_eq!(
        scope.get_job(ids[2]).await.unwrap().state,
        JobState::Waiting
    );
}

#[tokio::test]
async fn two_claimers_never_take_the_same_job() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let jobs: Vec<NewJob> = (0..1_000).map(|i| NewJob::new("race", json!(i))).collect();
    let made: HashSet<JobId> = store
        .enqueue(&jobs)
        .await
        .unwrap()
        .into_iter()
        .map(Option::unwrap)
        .collect();
    assert_eq!(made.len(), 1_000);

    let claimer = |name: &'static str| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store.claim_jobs(name, &["race"], 7, 30_000).await.unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed.iter().map(|j| j.id));
                tokio::task::yield_now().await;
            }
        })
    };
    let (a, b) = (claimer("a"), claimer("b"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let mut seen = HashSet::new();
    for id in a.iter().chain(&b) {
        assert!(seen.insert(*id), "job {id} claimed twice");
    }
    assert_eq!(seen, made, "every job claimed once");
}

#[tokio::test]
async fn a_job_whose_lease_ran_out_is_claimed_again() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let id = store
        .enqueue(&[NewJob::new("lease", json!({}))])
        .await
        .unwrap()[0]
        .unwrap();
    let first = store.claim_jobs("dies", &["lease"], 5, 50).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        store
            .claim_jobs("lives", &["lease"], 5, 30_000)
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(std::time::Duration::from_millis(80)).await;
    let again = store
        .claim_jobs("lives", &["lease"], 5, 30_000)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts), (id, 2));
    // the dead worker's heartbeat no longer holds it; the new one's does
    assert!(
        store
            .heartbeat("dies", &[id], 30_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.heartbeat("lives", &[id], 60_000).await.unwrap(), [id]);
    // nor does it complete, fail or kill what is no longer its own
    assert_eq!(store.complete_jobs("dies", &[id]).await.unwrap(), 0);
    assert!(matches!(
        store.fail_job("dies", id, "late").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(!store.kill_job("dies", id, "late").await.unwrap());
    store
        .set_progress(id, 3, Some(10), Some("三成"))
        .await
        .unwrap();
    assert_eq!(store.complete_jobs("lives", &[id]).await.unwrap(), 1);
    assert!(matches!(
        store.set_progress(id, 4, Some(10), None).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_failing_job_backs_off_and_dies_with_its_last_error() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let scope = store.tenant(tenant(&store, "fail").await.id);
    let id = scope
        .enqueue(&[NewJob::new("flaky", json!({})).max_attempts(2)])
        .await
        .unwrap()[0]
        .unwrap();
    let claimed = store.claim_jobs("w", &["flaky"], 5, 30_000).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let before = siyu_store::now_ms();
    assert_eq!(
        store.fail_job("w", id, "timeout").await.unwrap(),
        JobState::Waiting
    );
    let waiting = scope.get_job(id).await.unwrap();
    assert_eq!(waiting.last_error.as_deref(), Some("timeout"));
    assert!(
        waiting.run_at >= before + 800 && waiting.run_at <= before + 1_300,
        "about a second later: {}",
        waiting.run_at - before
    );
    assert!(
        store
            .claim_jobs("w", &["flaky"], 5, 30_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.fail_job("w", id, "again").await,
        Err(StoreError::NotFound(_))
    ));

    tokio::time::sleep(std::time::Duration::from_millis(1_300)).await;
    let second = store.claim_jobs("w", &["flaky"], 5, 30_000).await.unwrap();
    assert_eq!(second[0].attempts, 2);
    assert_eq!(
        store.fail_job("w", id, "still down").await.unwrap(),
        JobState::Dead
    );
    let dead = scope.get_job(id).await.unwrap();
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.last_error.as_deref(), Some("still down"));
    assert!(dead.finished_at.is_some());
    assert!(
        store
            .claim_jobs("w", &["flaky"], 5, 30_000)
            .await
            .unwrap()
            .is_empty()
    );

    // retried by hand, it runs again from its first attempt
    let retried = scope.retry_job(id, &Actor::cli()).await.unwrap();
    assert_eq!((retried.state, retried.attempts), (JobState::Waiting, 0));
    assert_eq!(
        store.claim_jobs("w", &["flaky"], 5, 30_000).await.unwrap()[0].attempts,
        1
    );
}

#[tokio::test]
async fn cancel_and_retry_keep_to_their_states_and_their_tenant() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let scope = store.tenant(tenant(&store, "mine").await.id);
    let other = store.tenant(tenant(&store, "theirs").await.id);
    let ids: Vec<JobId> = scope
        .enqueue(&[
            NewJob::new("a", json!(1)),
            NewJob::new("b", json!(2)).unique_key("k"),
        ])
        .await
        .unwrap()
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let conflict = |r: Result<_, StoreError>, text: &str| match r {
        Err(StoreError::Conflict(m)) => assert!(m.contains(text), "{m}"),
        other => panic!("expected a conflict about {text}, got {other:?}"),
    };

    // another tenant's job is not there for them
    for id in &ids {
        assert!(matches!(
            other.get_job(*id).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            other.cancel_job(*id, &Actor::cli()).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            other.retry_job(*id, &Actor::cli()).await,
            Err(StoreError::NotFound(_))
        ));
    }
    let listed = other
        .list_jobs(PageRequest::first(10), &JobFilter::default())
        .await
        .unwrap();
    assert!(listed.items.is_empty());

    conflict(scope.retry_job(ids[0], &Actor::cli()).await, "waiting");
    let cancelled = scope.cancel_job(ids[0], &Actor::cli()).await.unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    conflict(scope.cancel_job(ids[0], &Actor::cli()).await, "cancelled");
    assert!(
        store
            .claim_jobs("w", &["a"], 5, 30_000)
            .await
            .unwrap()
            .is_empty()
    );

    let running = store.claim_jobs("w", &["b"], 5, 30_000).await.unwrap();
    assert_eq!(running[0].id, ids[1]);
    conflict(
        scope.retry_job(ids[1], &Actor::cli()).await,
        "the job is running",
    );
    conflict(scope.cancel_job(ids[1], &Actor::cli()).await, "running");
    store.complete_jobs("w", &[ids[1]]).await.unwrap();
    conflict(scope.cancel_job(ids[1], &Actor::cli()).await, "done");
    conflict(scope.retry_job(ids[1], &Actor::cli()).await, "done");

    // a retried job whose key another live job took is a conflict
    let newer = scope
        .enqueue(&[NewJob::new("b", json!(3)).unique_key("k")])
        .await
        .unwrap()[0]
        .unwrap();
    scope.cancel_job(newer, &Actor::cli()).await.unwrap();
    let newest = scope
        .enqueue(&[NewJob::new("b", json!(4)).unique_key("k")])
        .await
        .unwrap()[0]
        .unwrap();
    conflict(scope.retry_job(newer, &Actor::cli()).await, "same key");
    scope.cancel_job(newest, &Actor::cli()).await.unwrap();
    assert_eq!(
        scope.retry_job(newer, &Actor::cli()).await.unwrap().state,
        JobState::Waiting
    );

    let retried = scope.retry_job(ids[0], &Actor::cli()).await.unwrap();
    assert_eq!(retried.state, JobState::Waiting);
    let waiting = scope
        .list_jobs(
            PageRequest::first(10),
            &JobFilter {
                state: Some(JobState::Waiting),
                kind: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        waiting.items.iter().map(|j| j.id).collect::<Vec<_>>(),
        [newer, ids[0]],
        "newest first"
    );
}

#[tokio::test]
async fn a_busy_tenant_does_not_hold_up_another() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let busy = tenant(&store, "busy").await.id;
    let small = tenant(&store, "small").await.id;
    let many: Vec<NewJob> = (0..5_000)
        .map(|i| NewJob::new("send", json!(i)).for_tenant(busy))
        .collect();
    store.enqueue(&many).await.unwrap();
    let few: HashSet<JobId> = store
        .tenant(small)
        .enqueue(
            &(0..10)
                .map(|i| NewJob::new("send", json!(i)))
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap()
        .into_iter()
        .map(Option::unwrap)
        .collect();

    let claimed = store.claim_jobs("w", &["send"], 100, 30_000).await.unwrap();
    assert_eq!(claimed.len(), 100);
    let theirs: HashSet<JobId> = claimed
        .iter()
        .filter(|j| j.tenant == Some(small))
        .map(|j| j.id)
        .collect();
    assert_eq!(
        theirs, few,
        "all of the small tenant's in the first claim of 100"
    );

    // one at a time, turns alternate between the tenants
    store
        .tenant(small)
        .enqueue(&[NewJob::new("send", json!("late"))])
        .await
        .unwrap();
    let one = store.claim_jobs("w", &["send"], 1, 30_000).await.unwrap();
    let two = store.claim_jobs("w", &["send"], 1, 30_000).await.unwrap();
    let tenants: HashSet<_> = one.iter().chain(&two).map(|j| j.tenant).collect();
    assert_eq!(tenants.len(), 2, "each tenant had a turn");
    assert_eq!(drain_jobs(&store, &["send"], 500).await.len(), 5_011 - 102);
}

fn principal(tenant: TenantId, staff: StaffId, unit: UnitId, data_scope: DataScope) -> Principal {
    Principal {
        tenant_id: tenant,
        kind: PrincipalKind::Staff {
            staff_id: staff,
            email: format!("{}@scoped.example.com", staff.0),
            unit_id: unit,
            data_scope,
            session_id: SessionId(1),
        },
        role_id: RoleId(1),
        role: "operations".into(),
        permissions: PermissionSet::all(),
    }
}

async fn add_staff(scope: &TenantScope<'_>, unit: UnitId, name: &str) -> StaffId {
    let new = NewStaff::new(
        unit,
        "operations",
        &format!("{name}@scoped.example.com"),
        name,
        None,
        DataScope::Own,
    )
    .unwrap();
    scope.create_staff(&new, &Actor::cli()).await.unwrap().id
}

fn ids_of(page: Page<Job>) -> Vec<JobId> {
    page.items.into_iter().map(|j| j.id).collect()
}

#[tokio::test]
async fn staff_limited_to_some_owners_see_and_steer_only_their_staffs_jobs() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "scoped").await.id;
    let whole = store.tenant(t);
    let root = whole.root_unit().await.unwrap().id;
    let ann = add_staff(&whole, root, "ann").await;
    let bob = add_staff(&whole, root, "bob").await;
    let made = whole
        .enqueue(&[
            NewJob::new("export", json!(1)).created_by(ann),
            NewJob::new("export", json!(2)).created_by(bob),
            NewJob::new("export", json!(3)),
        ])
        .await
        .unwrap();
    let [a, b, unowned] = [made[0].unwrap(), made[1].unwrap(), made[2].unwrap()];
    let all = PageRequest::first(50);

    let own = store
        .scope_for(&principal(t, ann, root, DataScope::Own))
        .await
        .unwrap();
    assert_eq!(
        ids_of(own.list_jobs(all, &JobFilter::default()).await.unwrap()),
        [a]
    );
    assert_eq!(own.get_job(a).await.unwrap().created_by_staff_id, Some(ann));
    let by = support::staff("ann@scoped.example.com");
    for out_of_reach in [b, unowned] {
        assert!(matches!(
            own.get_job(out_of_reach).await,
            Err(StoreError::NotFound("job"))
        ));
        assert!(matches!(
            own.cancel_job(out_of_reach, &by).await,
            Err(StoreError::NotFound("job"))
        ));
        // a job out of reach is not found even in a state that could not change anyway
        whole.cancel_job(out_of_reach, &Actor::cli()).await.unwrap();
        assert!(matches!(
            own.retry_job(out_of_reach, &by).await,
            Err(StoreError::NotFound("job"))
        ));
        assert_eq!(
            whole.get_job(out_of_reach).await.unwrap().state,
            JobState::Cancelled,
            "untouched by the refused retry"
        );
    }
    assert_eq!(
        own.cancel_job(a, &by).await.unwrap().state,
        JobState::Cancelled
    );
    assert_eq!(
        own.retry_job(a, &by).await.unwrap().state,
        JobState::Waiting
    );

    // a scope over the whole tenant sees every job, whoever made it
    let wide = store
        .scope_for(&principal(t, bob, root, DataScope::Tenant))
        .await
        .unwrap();
    assert_eq!(
        ids_of(wide.list_jobs(all, &JobFilter::default()).await.unwrap()),
        [unowned, b, a]
    );

    // each change is in the tenant's audit log, by whoever made it
    let entries = support::audit(&whole, "job.").await;
    let summary: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| {
            (
                e.action.clone(),
                e.target_id.clone().unwrap(),
                e.actor.label.clone(),
            )
        })
        .collect();
    let row = |action: &str, id: JobId, who: &str| (action.into(), id.0.to_string(), who.into());
    assert_eq!(
        summary,
        [
            row("job.retried", a, "ann@scoped.example.com"),
            row("job.cancelled", a, "ann@scoped.example.com"),
            row("job.cancelled", unowned, "cli"),
            row("job.cancelled", b, "cli"),
        ]
    );
    assert_eq!(entries[0].details["kind"], "export");
}

#[tokio::test]
async fn the_operator_reaches_every_job_and_changes_are_audited_in_its_tenant() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "one").await.id;
    let scope = store.tenant(t);
    let cli = Actor::cli();
    let job = scope
        .enqueue(&[NewJob::new("sync", json!({}))])
        .await
        .unwrap()[0]
        .unwrap();
    let system = store
        .enqueue(&[NewJob::new("sweep", json!({}))])
        .await
        .unwrap()[0]
        .unwrap();

    assert_eq!(store.get_any_job(job).await.unwrap().tenant, Some(t));
    assert_eq!(store.get_any_job(system).await.unwrap().tenant, None);
    assert!(matches!(
        store.get_any_job(JobId(system.0 + 100)).await,
        Err(StoreError::NotFound("job"))
    ));
    let page = PageRequest::first(10);
    assert_eq!(
        ids_of(
            store
                .list_any_jobs(page, &JobFilter::default())
                .await
                .unwrap()
        ),
        [system, job]
    );
    let sweeps = JobFilter {
        state: None,
        kind: Some("sweep".into()),
    };
    assert_eq!(
        ids_of(store.list_any_jobs(page, &sweeps).await.unwrap()),
        [system]
    );

    assert_eq!(
        store.cancel_any_job(job, &cli).await.unwrap().state,
        JobState::Cancelled
    );
    assert!(matches!(
        store.cancel_any_job(job, &cli).await,
        Err(StoreError::Conflict(m)) if m.contains("cancelled")
    ));
    store.cancel_any_job(system, &cli).await.unwrap();
    assert_eq!(
        store.retry_any_job(system, &cli).await.unwrap().state,
        JobState::Waiting
    );
    let cancelled = support::audit(&scope, "job.cancelled").await;
    assert_eq!(cancelled.len(), 1, "the system's job has no tenant's log");
    assert_eq!(cancelled[0].target_id, Some(job.0.to_string()));
    assert_eq!(cancelled[0].actor.kind, siyu_domain::audit::ActorKind::Cli);

    // a job enqueued by hand is audited once; one its key keeps out is not made
    let keyed = NewJob::new("reindex", json!({"all": true}))
        .for_tenant(t)
        .unique_key("reindex");
    let made = store.enqueue_by_hand(&keyed, &cli).await.unwrap();
    assert!(made.is_some());
    assert_eq!(store.enqueue_by_hand(&keyed, &cli).await.unwrap(), None);
    let enqueued = support::audit(&scope, "job.enqueued").await;
    assert_eq!(enqueued.len(), 1);
    assert_eq!(enqueued[0].target_id, made.map(|id| id.0.to_string()));
    assert_eq!(enqueued[0].details["payload"], json!({"all": true}));
}

#[tokio::test]
async fn the_backlog_counts_due_waiting_jobs_by_kind() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "backlog").await.id;
    let now = siyu_store::now_ms();
    // running and finished jobs are not waiting
    store
        .enqueue(&[NewJob::new("sync", json!({}))])
        .await
        .unwrap();
    store
        .enqueue(&[NewJob::new("sent", json!({}))])
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_jobs("w", &["sync"], 5, 30_000)
            .await
            .unwrap()
            .len(),
        1
    );
    let sent = store.claim_jobs("w", &["sent"], 5, 30_000).await.unwrap();
    store.complete_jobs("w", &[sent[0].id]).await.unwrap();
    assert!(store.job_queue_stats().await.unwrap().is_empty());

    store
        .enqueue(&[
            NewJob::new("mail", json!({}))
                .for_tenant(t)
                .run_at(now - 5_000),
            NewJob::new("mail", json!({})).run_at(now - 1_000),
            // not due yet: scheduled, not waiting behind others
            NewJob::new("mail", json!({})).run_at(now + 3_600_000),
            NewJob::new("sync", json!({})).for_tenant(t),
        ])
        .await
        .unwrap();
    let stats = store.job_queue_stats().await.unwrap();
    assert_eq!(
        stats
            .iter()
            .map(|s| (s.kind.as_str(), s.waiting))
            .collect::<Vec<_>>(),
        [("mail", 2), ("sync", 1)]
    );
    assert_eq!(stats[0].oldest_due_at, now - 5_000);
    assert!(stats[1].oldest_due_at >= now);
}

/// A runner asks for every kind it has whenever it is woken; a claim that finds nothing
/// due answers without waiting for the writer (here held by another connection: SQLite's
/// write lock, PostgreSQL's lock on the whole table), which other writers need.
#[tokio::test]
async fn a_claim_with_nothing_due_does_not_wait_for_the_writer() {
    use sqlx::Connection;
    let db = TestDatabase::create().await;
    let store = db.store().await;
    store
        .enqueue(&[NewJob::new("later", json!({})).run_at(siyu_store::now_ms() + 600_000)])
        .await
        .unwrap();
    let holder: Box<dyn std::any::Any + Send> = if db.is_postgres() {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut c).await.unwrap();
        sqlx::query("LOCK TABLE jobs IN EXCLUSIVE MODE")
            .execute(&mut c)
            .await
            .unwrap();
        Box::new(c)
    } else {
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut c)
            .await
            .unwrap();
        Box::new(c)
    };
    let claimed = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        store.claim_jobs("w", &["later", "none"], 10, 30_000),
    )
    .await
    .expect("answered while the writer is held")
    .unwrap();
    assert!(claimed.is_empty());
    drop(holder); // its transaction rolls back
    // once it is due, the claim takes it
    store
        .enqueue(&[NewJob::new("now", json!({}))])
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_jobs("w", &["now"], 10, 30_000)
            .await
            .unwrap()
            .len(),
        1
    );
}
