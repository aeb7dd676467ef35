//! The [`WecomHost`] of a node: the WeCom client's token, call budget and records kept
//! in the store, so every node shares them.
//!
//! - **The token** is read from the store (sealed there) and kept in memory until it
//!   expires or WeCom turns it down; a token another node fetched is found there.
//! - **Calls** are counted in the store per connector, API and fixed window, in blocks
//!   ([`CALL_BLOCK`]) a node spends from memory, against half of WeCom's limits
//!   ([`LIMITS`]): two fixed windows side by side then never exceed WeCom's, whichever
//!   window WeCom counts in, so siyu never provokes 45009 itself. A spent window waits
//!   (a minute's at most); a paused API ends the call with `RateLimited`.
//! - **Concurrency** per connector on a node starts at [`CONCURRENCY_START`], halves on
//!   45033 (too many calls at once) and grows back by one every
//!   [`CONCURRENCY_GROWTH_AFTER`] successes.
//! - **Health**: failures are written at once; successes at most every
//!   [`HEALTH_WRITE_EVERY_MS`] (and at once after a failure), so a sync of a thousand
//!   calls does not write a thousand rows. The first success after a pause clears it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use siyu_connect::wecom::{KeptToken, Observed, WecomError, WecomHost};
use siyu_domain::ids::{ConnectorId, TenantId};
use siyu_store::{CallBudget, CallLimits, Store, StoreError};
use tokio::sync::Notify;

/// Calls counted against each API of a connector, per fixed window: half of WeCom's
/// 10,000 a minute and 150,000 an hour per API and corp.
pub const LIMITS: CallLimits = CallLimits {
    per_minute: 5_000,
    per_hour: 75_000,
};
/// Calls a node takes from the shared count at once.
pub const CALL_BLOCK: i64 = 20;
/// Calls in flight at once per connector on a node, at first and at most.
pub const CONCURRENCY_START: usize = 8;
pub const CONCURRENCY_MAX: usize = 16;
/// Successes after which the concurrency grows by one.
pub const CONCURRENCY_GROWTH_AFTER: u32 = 100;
/// How often a node records successes on a healthy connector.
pub const HEALTH_WRITE_EVERY_MS: i64 = 10_000;
/// A kept token is used until this long before WeCom says it expires.
const TOKEN_MARGIN_S: i64 = 300;
/// A spent window shorter than this is waited out; a longer one (the hour's) ends the
/// call with `RateLimited`.
const LONGEST_WAIT_MS: i64 = 65_000;

/// What a node keeps in memory for its WeCom calls, shared by every job it runs, and
/// how often its jobs look at WeCom for what it does in its own time (transfers).
#[derive(Clone, Default)]
pub struct WecomCalls {
    inner: Arc<Inner>,
    transfer_poll: Option<Duration>,
    broadcast_poll: Option<Duration>,
    broadcast_claim: Option<Duration>,
}

/// How often a transfer's result is read while it waits, by default: WeCom takes over
/// 24 h after the start, and a customer may refuse at any time before.
pub const TRANSFER_POLL: Duration = Duration::from_secs(3600);
/// How often a WeCom mass send's member tasks are read while members have not sent.
pub const BROADCAST_POLL: Duration = Duration::from_secs(600);
/// How long a batch's recorded intent holds off another try: longer than a call can
/// take, so a try that finds the intent of one cut off (a node that died or lost its
/// lease) reconciles only once that call is surely over. One call may wait up to
/// 65 s for its permit, then make four tries of up to 20 s each with backoff between
/// (about 150 s); five minutes leaves room for that and for clocks that differ.
pub const BROADCAST_CLAIM: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Inner {
    budgets: Mutex<HashMap<(ConnectorId, String), Budget>>,
    gates: Mutex<HashMap<ConnectorId, Arc<Gate>>>,
    health: Mutex<HashMap<ConnectorId, HealthMemo>>,
    tokens: Mutex<HashMap<ConnectorId, Memo>>,
}

#[derive(Default)]
struct Budget {
    left: i64,
    /// A pause was recorded before these calls: the first success clears it.
    clear_pause: bool,
}

#[derive(Default, Clone, Copy)]
struct HealthMemo {
    written_ok_at: i64,
    failed_since: bool,
}

#[derive(Clone)]
struct Memo {
    token: KeptToken,
    expires_at: i64,
}

impl std::fmt::Debug for WecomCalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WecomCalls").finish_non_exhaustive()
    }
}

impl WecomCalls {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads transfers' results this often while they wait (tests: a moment).
    pub fn with_transfer_poll(mut self, every: Duration) -> Self {
        self.transfer_poll = Some(every);
        self
    }

    /// How often a waiting transfer's result is read ([`TRANSFER_POLL`] unless set).
    pub fn transfer_poll(&self) -> Duration {
        self.transfer_poll.unwrap_or(TRANSFER_POLL)
    }

    /// Reads mass sends' member tasks this often while they wait, and holds a batch's
    /// intent this long before reconciling it (tests: moments).
    pub fn with_broadcast_timing(mut self, poll: Duration, claim: Duration) -> Self {
        self.broadcast_poll = Some(poll);
        self.broadcast_claim = Some(claim);
        self
    }

    /// How often waiting member tasks are read ([`BROADCAST_POLL`] unless set).
    pub fn broadcast_poll(&self) -> Duration {
        self.broadcast_poll.unwrap_or(BROADCAST_POLL)
    }

    /// How long a recorded intent holds off another try ([`BROADCAST_CLAIM`] unless set).
    pub fn broadcast_claim(&self) -> Duration {
        self.broadcast_claim.unwrap_or(BROADCAST_CLAIM)
    }

    /// The host of one connector of a tenant.
    pub fn host(&self, store: Store, tenant: TenantId, connector: ConnectorId) -> StoreHost {
        let gate = self
            .inner
            .gates
            .lock()
            .expect("gates")
            .entry(connector)
            .or_insert_with(|| Arc::new(Gate::new(CONCURRENCY_START)))
            .clone();
        StoreHost {
            calls: self.clone(),
            store,
            tenant,
            connector,
            gate,
        }
    }

    /// The connector's calls in flight allowed now on this node (for tests and metrics).
    pub fn concurrency(&self, connector: ConnectorId) -> usize {
        self.inner
            .gates
            .lock()
            .expect("gates")
            .get(&connector)
            .map_or(CONCURRENCY_START, |g| g.state.lock().expect("gate").limit)
    }
}

/// A connector's WeCom host on this node.
pub struct StoreHost {
    calls: WecomCalls,
    store: Store,
    tenant: TenantId,
    connector: ConnectorId,
    gate: Arc<Gate>,
}

fn host_error(error: StoreError) -> WecomError {
    WecomError::Host(error.to_string())
}

impl StoreHost {
    fn scope(&self) -> siyu_store::TenantScope<'_> {
        self.store.tenant(self.tenant)
    }

    fn take_from_budget(&self, api: &str) -> bool {
        let mut budgets = self.calls.inner.budgets.lock().expect("budgets");
        match budgets.get_mut(&(self.connector, api.to_owned())) {
            Some(budget) if budget.left > 0 => {
                budget.left -= 1;
                true
            }
            _ => false,
        }
    }

    async fn reserve(&self, api: &str) -> Result<(), WecomError> {
        loop {
            if self.take_from_budget(api) {
                return Ok(());
            }
            let budget = self
                .scope()
                .reserve_connector_calls(self.connector, api, CALL_BLOCK, LIMITS)
                .await
                .map_err(host_error)?;
            match budget {
                CallBudget::Granted {
                    calls,
                    paused_before,
                } => {
                    let mut budgets = self.calls.inner.budgets.lock().expect("budgets");
                    let budget = budgets.entry((self.connector, api.to_owned())).or_default();
                    budget.left += calls - 1;
                    budget.clear_pause |= paused_before;
                    return Ok(());
                }
                CallBudget::WaitUntil {
                    paused: Some(pause),
                    ..
                } => {
                    return Err(WecomError::RateLimited {
                        api: api.to_owned(),
                        until_ms: pause.until,
                    });
                }
                CallBudget::WaitUntil { at, paused: None } => {
                    let wait = at - siyu_store::now_ms();
                    if wait > LONGEST_WAIT_MS {
                        return Err(WecomError::RateLimited {
                            api: api.to_owned(),
                            until_ms: at,
                        });
                    }
                    tracing::info!(
                        connector = self.connector.0,
                        api,
                        wait_ms = wait,
                        "the window's calls are spent: waiting for the next"
                    );
                    tokio::time::sleep(Duration::from_millis(wait.max(1) as u64)).await;
                }
            }
        }
    }

    fn health(&self) -> HealthMemo {
        self.calls
            .inner
            .health
            .lock()
            .expect("health")
            .get(&self.connector)
            .copied()
            .unwrap_or_default()
    }

    fn set_health(&self, memo: HealthMemo) {
        self.calls
            .inner
            .health
            .lock()
            .expect("health")
            .insert(self.connector, memo);
    }

    async fn succeeded(&self, api: &str) {
        self.gate.succeeded();
        let clear = {
            let mut budgets = self.calls.inner.budgets.lock().expect("budgets");
            match budgets.get_mut(&(self.connector, api.to_owned())) {
                Some(budget) if budget.clear_pause => {
                    budget.clear_pause = false;
                    true
                }
                _ => false,
            }
        };
        if clear
            && let Err(e) = self
                .scope()
                .clear_connector_api_pause(self.connector, api)
                .await
        {
            tracing::warn!(connector = self.connector.0, api, error = %e, "cannot clear a pause");
        }
        let now = siyu_store::now_ms();
        let memo = self.health();
        if memo.failed_since || now - memo.written_ok_at >= HEALTH_WRITE_EVERY_MS {
            self.set_health(HealthMemo {
                written_ok_at: now,
                failed_since: false,
            });
            if let Err(e) = self
                .scope()
                .record_connector_outcome(self.connector, Ok(()))
                .await
            {
                tracing::warn!(connector = self.connector.0, error = %e, "cannot record health");
            }
        }
    }

    async fn failed(&self, api: &str, message: &str, configuration: bool) {
        self.set_health(HealthMemo {
            failed_since: true,
            ..self.health()
        });
        let text = format!("{api}: {message}");
        if let Err(e) = self
            .scope()
            .record_connector_outcome(self.connector, Err((&text, configuration)))
            .await
        {
            tracing::warn!(connector = self.connector.0, error = %e, "cannot record health");
        }
    }
}

impl WecomHost for StoreHost {
    type Permit = GatePermit;

    async fn token(&self) -> Result<Option<KeptToken>, WecomError> {
        let now = siyu_store::now_ms();
        if let Some(memo) = self
            .calls
            .inner
            .tokens
            .lock()
            .expect("tokens")
            .get(&self.connector)
            && memo.expires_at > now
        {
            return Ok(Some(memo.token.clone()));
        }
        let stored = self
            .scope()
            .connector_token(self.connector)
            .await
            .map_err(host_error)?;
        Ok(stored.map(|stored| {
            let token = KeptToken {
                token: stored.token,
                fetched_at: stored.fetched_at,
            };
            self.calls.inner.tokens.lock().expect("tokens").insert(
                self.connector,
                Memo {
                    token: token.clone(),
                    expires_at: stored.expires_at,
                },
            );
            token
        }))
    }

    async fn keep_token(&self, token: &str, expires_in: i64) -> Result<KeptToken, WecomError> {
        let lifetime_s = (expires_in - TOKEN_MARGIN_S).max(expires_in / 2).max(1);
        let expires_at = siyu_store::now_ms() + lifetime_s * 1_000;
        let stored = self
            .scope()
            .save_connector_token(self.connector, token, expires_at)
            .await
            .map_err(host_error)?;
        let kept = KeptToken {
            token: stored.token,
            fetched_at: stored.fetched_at,
        };
        self.calls.inner.tokens.lock().expect("tokens").insert(
            self.connector,
            Memo {
                token: kept.clone(),
                expires_at,
            },
        );
        Ok(kept)
    }

    async fn drop_token(&self, token: &KeptToken) -> Result<(), WecomError> {
        {
            let mut tokens = self.calls.inner.tokens.lock().expect("tokens");
            if tokens.get(&self.connector).map(|m| &m.token) == Some(token) {
                tokens.remove(&self.connector);
            }
        }
        self.scope()
            .drop_connector_token(self.connector, token.fetched_at)
            .await
            .map_err(host_error)
    }

    async fn permit(&self, api: &str) -> Result<GatePermit, WecomError> {
        self.reserve(api).await?;
        Ok(self.gate.clone().acquire().await)
    }

    async fn rate_limited(&self, api: &str) -> Result<i64, WecomError> {
        if let Some(budget) = self
            .calls
            .inner
            .budgets
            .lock()
            .expect("budgets")
            .get_mut(&(self.connector, api.to_owned()))
        {
            budget.left = 0;
        }
        let pause = self
            .scope()
            .pause_connector_api(
                self.connector,
                api,
                "WeCom refused calls as too frequent (45009)",
            )
            .await
            .map_err(host_error)?;
        tracing::warn!(
            connector = self.connector.0,
            api,
            until = pause.until,
            strikes = pause.strikes,
            "WeCom answered 45009: the API is paused"
        );
        Ok(pause.until)
    }

    async fn observe(&self, api: &str, observed: Observed) {
        match observed {
            Observed::Ok => self.succeeded(api).await,
            Observed::Failed {
                errcode: Some(siyu_connect::wecom::error::errcode::CONCURRENCY_LIMIT),
                ..
            } => {
                let limit = self.gate.lower();
                tracing::info!(
                    connector = self.connector.0,
                    api,
                    limit,
                    "WeCom answered 45033: fewer calls at once"
                );
            }
            Observed::Failed {
                message,
                configuration,
                ..
            } => self.failed(api, &message, configuration).await,
        }
    }
}

/// The calls in flight of a connector on a node, at most `limit` (lowered on 45033).
struct Gate {
    state: Mutex<GateState>,
    notify: Notify,
}

struct GateState {
    limit: usize,
    in_flight: usize,
    successes: u32,
}

/// A call in flight; dropping it lets the next one go.
pub struct GatePermit(Arc<Gate>);

impl Drop for GatePermit {
    fn drop(&mut self) {
        self.0.state.lock().expect("gate").in_flight -= 1;
        self.0.notify.notify_waiters();
    }
}

impl Gate {
    fn new(limit: usize) -> Self {
        Self {
            state: Mutex::new(GateState {
                limit,
                in_flight: 0,
                successes: 0,
            }),
            notify: Notify::new(),
        }
    }

    async fn acquire(self: Arc<Self>) -> GatePermit {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let took = {
                let mut state = self.state.lock().expect("gate");
                let free = state.in_flight < state.limit;
                if free {
                    state.in_flight += 1;
                }
                free
            };
            if took {
                break;
            }
            notified.await;
        }
        GatePermit(self)
    }

    /// Halves the limit (at least one call); answers the new one.
    fn lower(&self) -> usize {
        let mut state = self.state.lock().expect("gate");
        state.limit = (state.limit / 2).max(1);
        state.successes = 0;
        state.limit
    }

    fn succeeded(&self) {
        let grew = {
            let mut state = self.state.lock().expect("gate");
            state.successes += 1;
            if state.successes >= CONCURRENCY_GROWTH_AFTER && state.limit < CONCURRENCY_MAX {
                state.successes = 0;
                state.limit += 1;
                true
            } else {
                false
            }
        };
        if grew {
            self.notify.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_gate_lets_its_limit_through_and_halves_on_45033() {
        let gate = Arc::new(Gate::new(4));
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(gate.clone().acquire().await);
        }
        let fifth = tokio::time::timeout(Duration::from_millis(50), gate.clone().acquire()).await;
        assert!(
            fifth.is_err(),
            "a fifth call waits while four are in flight"
        );
        assert_eq!(gate.lower(), 2);
        held.truncate(2);
        let third = tokio::time::timeout(Duration::from_millis(50), gate.clone().acquire()).await;
        assert!(third.is_err(), "after 45033 only two go at once");
        held.pop();
        let next = tokio::time::timeout(Duration::from_secs(1), gate.clone().acquire()).await;
        assert!(next.is_ok(), "a call ending lets the next one go");
        assert_eq!(gate.lower(), 1);
        assert_eq!(gate.lower(), 1, "never below one");
        for _ in 0..CONCURRENCY_GROWTH_AFTER {
            gate.succeeded();
        }
        assert_eq!(
            gate.state.lock().unwrap().limit,
            2,
            "successes let it grow back"
        );
    }
}
