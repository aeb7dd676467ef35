//! The handle a test (or `siyu demo`) holds: it starts the server on its own listener,
//! arranges the corp while it runs (revoked secrets, expired tokens, faults, limits, a
//! moved clock) and inspects what clients did. Each method takes the lock briefly and
//! never across an await.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::corp::{Corp, FollowInfo};
use crate::groups::JoinWay;
use crate::mass::{MassMessage, ReceiveCap};
use crate::messages::AppMessage;
use crate::server::{Runtime, Shared, State, router};
use crate::transfers::Transfer;
use crate::ways::{ContactWay, WelcomeMessage};

/// A summary of one request the stand-in answered.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// Under `/cgi-bin/`, e.g. `externalcontact/batch/get_by_user`.
    pub path: String,
    /// The raw query string (it holds the access token).
    pub query: String,
    /// The JSON body of a POST (`Null` for a GET).
    pub body: Value,
    pub errcode: i64,
    /// On the stand-in's clock.
    pub at: SystemTime,
}

/// A running stand-in. Dropping it stops the server.
pub struct Standin {
    pub(crate) shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Standin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Standin")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// `/cgi-bin/user/get`, `cgi-bin/user/get` and `user/get` all name `user/get`.
fn normalize(path: &str) -> &str {
    let p = path.trim_start_matches('/');
    p.strip_prefix("cgi-bin/").unwrap_or(p)
}

impl Standin {
    /// Serves `corp` on 127.0.0.1 at a free port. Call it inside a tokio runtime.
    pub fn start(corp: Corp) -> std::io::Result<Standin> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), corp)
    }

    /// Serves `corp` on `addr` (port 0: a free one).
    pub fn start_on(addr: SocketAddr, corp: Corp) -> std::io::Result<Standin> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                corp,
                rt: Runtime::default(),
                base_url: format!("http://{addr}"),
            }),
            http,
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(shared.clone());
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "wecom stand-in stopped");
            }
        });
        tracing::debug!(%addr, "wecom stand-in listening");
        Ok(Standin {
            shared,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`, to which clients append `/cgi-bin/…`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving: open connections get a second to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(1), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }

    // ---- arrangements

    /// Changes the corp directly (no callback, no API call counted).
    pub fn with_corp<R>(&self, f: impl FnOnce(&mut Corp) -> R) -> R {
        f(&mut self.shared.lock().corp)
    }

    /// Another app secret `gettoken` accepts.
    pub fn add_secret(&self, secret: &str) {
        self.shared.lock().corp.secrets.push(secret.to_owned());
    }

    /// The secret stops working: gettoken answers 40001, its tokens 40014.
    pub fn revoke_secret(&self, secret: &str) {
        let mut state = self.shared.lock();
        state.corp.secrets.retain(|s| s != secret);
        state.rt.current.remove(secret);
        for t in state.rt.tokens.values_mut().filter(|t| t.secret == secret) {
            t.revoked = true;
        }
    }

    /// Every issued token answers 42001 from now on; gettoken issues new ones.
    pub fn expire_tokens(&self) {
        let mut state = self.shared.lock();
        let now = state.rt.now_ms();
        for t in state.rt.tokens.values_mut() {
            t.expires_ms = t.expires_ms.min(now);
        }
    }

    /// The validity of tokens issued from now on (default 7200 s).
    pub fn set_token_ttl(&self, secs: u64) {
        self.shared.lock().rt.token_ttl = secs;
    }

    /// The next `times` calls to `path` answer `errcode` (after counting and the limits,
    /// before the token check). Injections on one path queue up in order.
    pub fn inject(&self, path: &str, errcode: i64, times: u32) {
        if times == 0 {
            return;
        }
        self.shared
            .lock()
            .rt
            .faults
            .entry(normalize(path).to_owned())
            .or_default()
            .push_back((errcode, times));
    }

    /// The next `times` successful calls to `path` run, but their answers are lost on
    /// the way back (HTTP 502): the caller cannot tell whether WeCom did it.
    pub fn lose_answers(&self, path: &str, times: u32) {
        *self
            .shared
            .lock()
            .rt
            .lost_answers
            .entry(normalize(path).to_owned())
            .or_default() += times;
    }

    /// Frequency limits per API path (default 10,000 a minute, 150,000 an hour). Once
    /// hit, the path answers 45009 for 60 s (minute limit) or 3600 s (hour limit).
    pub fn set_rate_limit(&self, per_minute: u64, per_hour: u64) {
        let mut state = self.shared.lock();
        state.rt.per_minute = per_minute;
        state.rt.per_hour = per_hour;
    }

    /// More than `n` calls in flight on one path answer 45033 (`None`: no limit). Calls
    /// are only in flight for long with [`Standin::set_latency`].
    pub fn set_max_concurrency(&self, n: Option<u32>) {
        self.shared.lock().rt.max_concurrency = n;
    }

    /// Every call waits this long before it is answered.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().rt.latency = latency;
    }

    /// Moves the stand-in's clock forward (tokens, limits, welcome codes, transfers).
    pub fn advance_clock(&self, by: Duration) {
        let mut state = self.shared.lock();
        state.rt.clock_offset_ms += by.as_millis() as u64;
        let now = state.rt.now_ms() / 1000;
        crate::transfers::settle(&mut state, now);
    }

    /// The stand-in's clock.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.shared.lock().rt.now_ms())
    }

    /// The member leaves the corp (status 5): `user/get` answers 60111 and their
    /// customers show in `get_unassigned_list`. No callback.
    pub fn member_leaves(&self, userid: &str) -> bool {
        let mut state = self.shared.lock();
        let now = state.rt.now_ms() / 1000;
        let Some(m) = state.corp.members.get_mut(userid) else {
            return false;
        };
        m.status = 5;
        state.rt.dimission.insert(userid.to_owned(), now);
        true
    }

    /// A member confirms their task of a mass message in the app: its customers receive
    /// it, or not (no relation any more: 2; over the receive cap: 3). Answers how many
    /// received it; `None` when the member has no unsent task of that message, or it
    /// was cancelled.
    pub fn member_confirms(&self, userid: &str, msgid: &str) -> Option<usize> {
        let mut state = self.shared.lock();
        let now = state.rt.now_ms() / 1000;
        let State { corp, rt, .. } = &mut *state;
        rt.mass.confirm(corp, userid, msgid, now)
    }

    /// Every member confirms every unsent task of every mass message not cancelled;
    /// answers how many customers received one.
    pub fn members_confirm_all(&self) -> usize {
        let mut state = self.shared.lock();
        let now = state.rt.now_ms() / 1000;
        let State { corp, rt, .. } = &mut *state;
        let pending: Vec<(String, String)> = rt
            .mass
            .messages
            .iter()
            .filter(|m| !m.cancelled)
            .flat_map(|m| {
                m.tasks
                    .iter()
                    .filter(|t| t.status == 0)
                    .map(|t| (t.userid.clone(), m.msgid.clone()))
            })
            .collect();
        pending
            .iter()
            .filter_map(|(userid, msgid)| rt.mass.confirm(corp, userid, msgid, now))
            .sum()
    }

    /// How long a new mass message is "still being dispatched" (41063 to its reads).
    pub fn set_mass_dispatch(&self, dispatch: Duration) {
        self.shared.lock().rt.mass.dispatch_ms = dispatch.as_millis() as u64;
    }

    /// The corp's receive cap for mass messages (群发规则; default days-in-the-month).
    pub fn set_receive_cap(&self, cap: ReceiveCap) {
        self.shared.lock().rt.mass.cap = cap;
    }

    /// The customer refuses the transfer waiting for them (status 3). False when none
    /// waits.
    pub fn customer_refuses_transfer(&self, external_userid: &str) -> bool {
        let mut state = self.shared.lock();
        let waiting = state
            .rt
            .transfers
            .iter_mut()
            .find(|t| t.external_userid == external_userid && t.status == 2);
        match waiting {
            Some(t) => {
                t.status = 3;
                t.takeover_time = 0;
                true
            }
            None => false,
        }
    }

    // ---- inspection

    /// How many calls `path` (e.g. `user/get` or `/cgi-bin/user/get`) received,
    /// refused ones included.
    pub fn calls(&self, path: &str) -> u64 {
        let state = self.shared.lock();
        state.rt.calls.get(normalize(path)).copied().unwrap_or(0)
    }

    /// The last 100,000 calls, oldest first.
    pub fn call_log(&self) -> Vec<CallRecord> {
        self.shared.lock().rt.log.iter().cloned().collect()
    }

    pub fn welcome_messages(&self) -> Vec<WelcomeMessage> {
        self.shared.lock().rt.welcome_messages.clone()
    }

    /// App messages delivered, one per receiving member.
    pub fn app_messages(&self) -> Vec<AppMessage> {
        self.shared.lock().rt.app_messages.clone()
    }

    /// App messages dropped silently by the per-member caps (30/min, 1,000/hour).
    pub fn app_messages_dropped(&self) -> u64 {
        self.shared.lock().rt.app_dropped
    }

    pub fn follow_relation(&self, userid: &str, external_userid: &str) -> Option<FollowInfo> {
        self.shared
            .lock()
            .corp
            .relation(userid, external_userid)
            .cloned()
    }

    pub fn contact_ways(&self) -> Vec<ContactWay> {
        self.shared
            .lock()
            .rt
            .contact_ways
            .values()
            .cloned()
            .collect()
    }

    pub fn join_ways(&self) -> Vec<JoinWay> {
        self.shared.lock().rt.join_ways.values().cloned().collect()
    }

    /// Every file uploaded as media (or as a lasting image, kind `uploadimg`: its URL as
    /// `media_id`), oldest first.
    pub fn media_uploads(&self) -> Vec<crate::media::Media> {
        self.shared.lock().rt.media.uploads.clone()
    }

    /// Every mass message, oldest first.
    pub fn mass_messages(&self) -> Vec<MassMessage> {
        self.shared.lock().rt.mass.messages.clone()
    }

    pub fn transfers(&self) -> Vec<Transfer> {
        self.shared.lock().rt.transfers.clone()
    }

    /// The callbacks pushed so far, oldest first.
    pub fn pushed(&self) -> Vec<crate::PushedEvent> {
        self.shared.lock().rt.pushed.clone()
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
