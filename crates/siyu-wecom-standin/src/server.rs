//! The HTTP side: one handler under `/cgi-bin/`, which does for every path what WeCom
//! does before an API runs — count the call, refuse it past the concurrency limit, the
//! frequency limits or an injected fault, check the access token — then runs the API on
//! the locked state and logs what it answered.
//!
//! Every answer is HTTP 200 with `errcode`/`errmsg`, as WeCom's are; errmsg carries a
//! `hint: [...]` and the `more info at …?e=CODE` tail so a client logs what it would log
//! against WeCom. The APIs are plain functions `fn(&mut State, &Req) -> Result<Obj,
//! ApiError>`: no await while the state is locked, so the lock is held only for the
//! call's own work (O(page) for the paged reads).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxState};
use serde_json::{Map, Value, json};

use crate::auth::Token;
use crate::corp::Corp;
use crate::groups::JoinWay;
use crate::mass::MassMessages;
use crate::messages::{AppMessage, AppSends};
use crate::transfers::Transfer;
use crate::ways::{ContactWay, WelcomeCode, WelcomeMessage};
use crate::{CallRecord, PushedEvent};

/// A JSON object answered on success (errcode/errmsg are added).
pub(crate) type Obj = Map<String, Value>;
pub(crate) type ApiResult = Result<Obj, ApiError>;
type Api = fn(&mut State, &Req) -> ApiResult;

/// An errcode with its message, as WeCom answers it.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub errcode: i64,
    pub errmsg: String,
}

impl ApiError {
    pub fn new(errcode: i64, errmsg: impl Into<String>) -> Self {
        Self {
            errcode,
            errmsg: errmsg.into(),
        }
    }

    /// The usual message for a code.
    pub fn code(errcode: i64) -> Self {
        Self::new(errcode, default_errmsg(errcode))
    }
}

pub(crate) fn default_errmsg(errcode: i64) -> &'static str {
    match errcode {
        -1 => "system is busy",
        40001 => "invalid credential",
        40003 => "invalid userid",
        40013 => "invalid corpid",
        40014 => "invalid access_token",
        40058 => "invalid parameter",
        40068 => "invalid tagid",
        40096 => "invalid external userid",
        40097 => "handover userid has not resigned",
        40126 => "corp tag count exceed limit",
        40128 => "transfer too frequently",
        40129 => "customer is being transferred",
        40130 => "handover and takeover are the same",
        40131 => "not the handover's customer",
        41001 => "access_token missing",
        41002 => "corpid missing",
        41004 => "corpsecret missing",
        41011 => "missing agentid",
        41035 => "missing external userid",
        41043 => "missing config_id",
        41044 => "invalid config_id",
        41049 => "missing welcome code",
        41050 => "invalid welcome code",
        41051 => "welcome code already used",
        42001 => "access_token expired",
        44004 => "empty content",
        45002 => "content size out of limit",
        45009 => "api freq out of limit",
        45033 => "api concurrent out of limit",
        47001 => "data format error",
        50100 => "invalid cursor",
        60111 => "userid not found",
        60123 => "invalid party id",
        81013 => "user & party & tag all invalid",
        82001 => "all touser & toparty & totag invalid",
        84061 => "not external contact",
        _ => "error",
    }
}

/// A request as the APIs see it.
pub(crate) struct Req {
    pub query: HashMap<String, String>,
    pub body: Value,
    /// Unix milliseconds on the stand-in's clock.
    pub now_ms: u64,
}

impl Req {
    pub fn now(&self) -> u64 {
        self.now_ms / 1000
    }
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }
    pub fn s(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }
    pub fn u(&self, key: &str) -> Option<u64> {
        let v = self.body.get(key)?;
        v.as_u64().or_else(|| v.as_str()?.parse().ok())
    }
    pub fn strs(&self, key: &str) -> Vec<String> {
        strs(self.body.get(key))
    }
    pub fn has(&self, key: &str) -> bool {
        self.body.get(key).is_some_and(|v| !v.is_null())
    }
}

pub(crate) fn strs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// An opaque cursor: hex of a versioned position string.
pub(crate) fn encode_cursor(position: &str) -> String {
    format!("v1|{position}")
        .bytes()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// The position in a cursor; a cursor the stand-in did not hand out → 50100.
pub(crate) fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    let bad = || ApiError::new(50100, format!("invalid cursor: {cursor:?}"));
    if !cursor.len().is_multiple_of(2) || !cursor.is_ascii() {
        return Err(bad());
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&cursor[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix("v1|").map(str::to_owned).ok_or_else(bad)
}

pub(crate) fn random_string(len: usize, alphabet: &[u8]) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}

pub(crate) const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The callback settings `set_callback` stored.
#[derive(Debug, Clone)]
pub(crate) struct Callback {
    pub url: String,
    pub crypto: siyu_connect::wecom::crypto::CallbackCrypto,
}

#[derive(Debug, Default, Clone)]
struct Window {
    minute: u64,
    minute_count: u64,
    hour: u64,
    hour_count: u64,
    blocked_until_ms: u64,
}

/// What the stand-in keeps besides the corp: tokens, limits, faults, logs and the
/// records of what was sent.
#[derive(Debug)]
pub(crate) struct Runtime {
    pub clock_offset_ms: u64,
    pub token_ttl: u64,
    pub tokens: HashMap<String, Token>,
    /// secret → its current token.
    pub current: HashMap<String, String>,
    pub faults: HashMap<String, VecDeque<(i64, u32)>>,
    /// path → how many more answers to lose after the API ran (HTTP 502).
    pub lost_answers: HashMap<String, u32>,
    pub per_minute: u64,
    pub per_hour: u64,
    windows: HashMap<String, Window>,
    pub max_concurrency: Option<u32>,
    pub in_flight: HashMap<String, u32>,
    pub latency: Duration,
    pub calls: HashMap<String, u64>,
    pub log: VecDeque<CallRecord>,
    pub log_cap: usize,
    pub welcome_codes: HashMap<String, WelcomeCode>,
    pub welcome_messages: Vec<WelcomeMessage>,
    pub app_messages: Vec<AppMessage>,
    pub app_dropped: u64,
    pub app_sends: AppSends,
    pub contact_ways: BTreeMap<String, ContactWay>,
    pub join_ways: BTreeMap<String, JoinWay>,
    pub transfers: Vec<Transfer>,
    pub mass: MassMessages,
    pub media: crate::media::MediaStore,
    /// Completed transfers whose callbacks are not pushed yet (and whether the takeover
    /// already had the customer).
    pub transfer_events: Vec<(Transfer, bool)>,
    /// userid → when the member left (unix seconds).
    pub dimission: HashMap<String, u64>,
    pub callback: Option<Callback>,
    pub pushed: Vec<PushedEvent>,
    seq: u64,
}

impl Default for Runtime {
    fn default() -> Self {
        Self {
            clock_offset_ms: 0,
            token_ttl: 7200,
            tokens: HashMap::new(),
            current: HashMap::new(),
            faults: HashMap::new(),
            lost_answers: HashMap::new(),
            per_minute: 10_000,
            per_hour: 150_000,
            windows: HashMap::new(),
            max_concurrency: None,
            in_flight: HashMap::new(),
            latency: Duration::ZERO,
            calls: HashMap::new(),
            log: VecDeque::new(),
            log_cap: 100_000,
            welcome_codes: HashMap::new(),
            welcome_messages: Vec::new(),
            app_messages: Vec::new(),
            app_dropped: 0,
            app_sends: AppSends::default(),
            contact_ways: BTreeMap::new(),
            join_ways: BTreeMap::new(),
            transfers: Vec::new(),
            mass: MassMessages::default(),
            media: crate::media::MediaStore::default(),
            transfer_events: Vec::new(),
            dimission: HashMap::new(),
            callback: None,
            pushed: Vec::new(),
            seq: 0,
        }
    }
}

impl Runtime {
    /// Unix milliseconds on the stand-in's clock (the real clock plus `advance_clock`).
    pub fn now_ms(&self) -> u64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        real + self.clock_offset_ms
    }

    /// The errmsg WeCom would write: message, hint, ip and the errcode's help link.
    fn errmsg(&mut self, err: &ApiError, now_ms: u64) -> String {
        self.seq += 1;
        format!(
            "{}, hint: [{}_{}_standin{:08x}], from ip: 127.0.0.1, more info at https://open.work.weixin.qq.com/devtool/query?e={}",
            err.errmsg,
            now_ms / 1000,
            self.seq,
            rand::random::<u32>(),
            err.errcode
        )
    }

    fn rate_limit(&mut self, path: &str, now_ms: u64) -> Result<(), ApiError> {
        let (per_minute, per_hour) = (self.per_minute, self.per_hour);
        let w = self.windows.entry(path.to_owned()).or_default();
        if now_ms < w.blocked_until_ms {
            return Err(ApiError::new(
                45009,
                format!(
                    "api freq out of limit, blocked for {} ms more",
                    w.blocked_until_ms - now_ms
                ),
            ));
        }
        let (minute, hour) = (now_ms / 60_000, now_ms / 3_600_000);
        if w.minute != minute {
            w.minute = minute;
            w.minute_count = 0;
        }
        if w.hour != hour {
            w.hour = hour;
            w.hour_count = 0;
        }
        if w.minute_count >= per_minute {
            w.blocked_until_ms = now_ms + 60_000;
            return Err(ApiError::new(
                45009,
                format!("api freq out of limit: {per_minute} per minute"),
            ));
        }
        if w.hour_count >= per_hour {
            w.blocked_until_ms = now_ms + 3_600_000;
            return Err(ApiError::new(
                45009,
                format!("api freq out of limit: {per_hour} per hour"),
            ));
        }
        w.minute_count += 1;
        w.hour_count += 1;
        Ok(())
    }

    fn injected(&mut self, path: &str) -> Option<ApiError> {
        let queue = self.faults.get_mut(path)?;
        let (errcode, left) = queue.front_mut()?;
        let err = ApiError::new(*errcode, format!("{} (injected)", default_errmsg(*errcode)));
        *left -= 1;
        if *left == 0 {
            queue.pop_front();
        }
        Some(err)
    }

    fn check_token(&self, query: &HashMap<String, String>, now_ms: u64) -> Result<(), ApiError> {
        let Some(token) = query.get("access_token").filter(|t| !t.is_empty()) else {
            return Err(ApiError::code(41001));
        };
        match self.tokens.get(token) {
            None => Err(ApiError::code(40014)),
            Some(t) if t.revoked => Err(ApiError::code(40014)),
            Some(t) if now_ms >= t.expires_ms => Err(ApiError::code(42001)),
            Some(_) => Ok(()),
        }
    }

    fn record(&mut self, record: CallRecord) {
        if self.log.len() >= self.log_cap {
            self.log.pop_front();
        }
        self.log.push_back(record);
    }
}

/// The corp and the runtime, locked together.
#[derive(Debug)]
pub(crate) struct State {
    pub corp: Corp,
    pub rt: Runtime,
    /// `http://127.0.0.1:PORT`: where the stand-in serves the QR images it hands out.
    pub base_url: String,
}

impl State {
    /// The URL of a contact or join way's QR image, served by [`qr_image`] (WeCom's are
    /// on wework.qpic.cn).
    pub fn qr_image_url(&self, config_id: &str) -> String {
        format!("{}/wwpic/{config_id}/0", self.base_url)
    }
}

/// What a way's QR image encodes (WeCom's are work.weixin.qq.com addresses).
pub fn qr_text(config_id: &str) -> String {
    format!("https://work.weixin.qq.com/ca/{config_id}")
}

/// What the server task and the `Standin` handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub http: reqwest::Client,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // a panic in one API must not take the stand-in down for the rest of a test
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every API the stand-in serves: its path under `/cgi-bin/` and its function.
pub(crate) const ROUTES: &[(&str, Api)] = {
    use crate::{auth, contacts, groups, mass, messages, staff, tags, transfers, ways};
    &[
        ("gettoken", auth::gettoken),
        ("user/get", staff::user_get),
        ("user/list_id", staff::user_list_id),
        ("user/simplelist", staff::user_simplelist),
        ("department/list", staff::department_list),
        ("department/simplelist", staff::department_simplelist),
        (
            "externalcontact/get_follow_user_list",
            contacts::get_follow_user_list,
        ),
        ("externalcontact/list", contacts::list),
        ("externalcontact/get", contacts::get),
        (
            "externalcontact/batch/get_by_user",
            contacts::batch_get_by_user,
        ),
        ("externalcontact/remark", contacts::remark),
        ("externalcontact/get_corp_tag_list", tags::get_corp_tag_list),
        ("externalcontact/add_corp_tag", tags::add_corp_tag),
        ("externalcontact/edit_corp_tag", tags::edit_corp_tag),
        ("externalcontact/del_corp_tag", tags::del_corp_tag),
        ("externalcontact/mark_tag", tags::mark_tag),
        ("externalcontact/send_welcome_msg", ways::send_welcome_msg),
        ("externalcontact/add_contact_way", ways::add_contact_way),
        ("externalcontact/get_contact_way", ways::get_contact_way),
        (
            "externalcontact/update_contact_way",
            ways::update_contact_way,
        ),
        ("externalcontact/del_contact_way", ways::del_contact_way),
        ("externalcontact/list_contact_way", ways::list_contact_way),
        (
            "externalcontact/transfer_customer",
            transfers::transfer_customer,
        ),
        (
            "externalcontact/transfer_result",
            transfers::transfer_result,
        ),
        (
            "externalcontact/resigned/transfer_customer",
            transfers::resigned_transfer_customer,
        ),
        (
            "externalcontact/resigned/transfer_result",
            transfers::resigned_transfer_result,
        ),
        (
            "externalcontact/get_unassigned_list",
            transfers::get_unassigned_list,
        ),
        ("externalcontact/groupchat/list", groups::list),
        ("externalcontact/groupchat/get", groups::get),
        (
            "externalcontact/groupchat/add_join_way",
            groups::add_join_way,
        ),
        (
            "externalcontact/groupchat/get_join_way",
            groups::get_join_way,
        ),
        (
            "externalcontact/groupchat/update_join_way",
            groups::update_join_way,
        ),
        (
            "externalcontact/groupchat/del_join_way",
            groups::del_join_way,
        ),
        ("externalcontact/add_msg_template", mass::add_msg_template),
        (
            "externalcontact/get_groupmsg_list_v2",
            mass::get_groupmsg_list_v2,
        ),
        ("externalcontact/get_groupmsg_task", mass::get_groupmsg_task),
        (
            "externalcontact/get_groupmsg_send_result",
            mass::get_groupmsg_send_result,
        ),
        (
            "externalcontact/remind_groupmsg_send",
            mass::remind_groupmsg_send,
        ),
        (
            "externalcontact/cancel_groupmsg_send",
            mass::cancel_groupmsg_send,
        ),
        ("message/send", messages::send),
        ("media/upload", crate::media::upload),
        ("media/uploadimg", crate::media::uploadimg),
    ]
};

/// `/cgi-bin/` path → API.
fn api(path: &str) -> Option<Api> {
    ROUTES.iter().find(|(p, _)| *p == path).map(|(_, api)| *api)
}

/// Decrements the path's in-flight count however the request ends.
struct InFlight {
    shared: Arc<Shared>,
    path: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if let Some(n) = state.rt.in_flight.get_mut(&self.path) {
            *n = n.saturating_sub(1);
        }
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .route("/cgi-bin/{*path}", axum::routing::any(handle))
        .route("/wwpic/{config_id}/0", axum::routing::get(qr_image))
        .with_state(shared)
}

/// A contact or join way's QR image (PNG), counted as a call to `wwpic`.
async fn qr_image(
    AxState(shared): AxState<Arc<Shared>>,
    Path(config_id): Path<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let known = {
        let mut state = shared.lock();
        *state.rt.calls.entry("wwpic".into()).or_default() += 1;
        state.rt.contact_ways.contains_key(&config_id)
            || state.rt.join_ways.contains_key(&config_id)
    };
    if !known {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    match siyu_qr::render(&qr_text(&config_id), siyu_qr::QrFormat::Png, None) {
        Ok(image) => (
            [(axum::http::header::CONTENT_TYPE, image.content_type)],
            image.bytes,
        )
            .into_response(),
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn handle(
    AxState(shared): AxState<Arc<Shared>>,
    Path(path): Path<String>,
    RawQuery(raw_query): RawQuery,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = path.trim_matches('/').to_owned();
    let raw_query = raw_query.unwrap_or_default();
    let query: HashMap<String, String> = form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect();
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let multipart = content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
        .then(|| crate::media::parse_multipart(content_type, &body))
        .flatten();
    let parsed: Result<Value, ApiError> = if let Some(form) = multipart {
        Ok(form)
    } else if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Object(Map::new()))
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(47001, format!("data format error: {e}")))
    };

    // phase 1: count the call and take a concurrency slot
    let latency = {
        let mut state = shared.lock();
        *state.rt.calls.entry(path.clone()).or_default() += 1;
        let limit = state.rt.max_concurrency;
        let in_flight = state.rt.in_flight.entry(path.clone()).or_default();
        if limit.is_some_and(|n| *in_flight >= n) {
            let err = ApiError::code(45033);
            return finish(&mut state, &path, raw_query, parsed.ok(), Err(err)).into_response();
        }
        *in_flight += 1;
        state.rt.latency
    };
    let _slot = InFlight {
        shared: shared.clone(),
        path: path.clone(),
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    // phase 2: limits, faults, token, then the API itself
    let mut state = shared.lock();
    let now_ms = state.rt.now_ms();
    crate::transfers::settle(&mut state, now_ms / 1000);
    let result = (|| {
        let api = api(&path).ok_or_else(|| {
            ApiError::new(
                40058,
                format!("invalid api path /cgi-bin/{path}: not served by the siyu WeCom stand-in"),
            )
        })?;
        state.rt.rate_limit(&path, now_ms)?;
        if let Some(err) = state.rt.injected(&path) {
            return Err(err);
        }
        if path != "gettoken" {
            state.rt.check_token(&query, now_ms)?;
        }
        let body = parsed.clone()?;
        let req = Req {
            query,
            body,
            now_ms,
        };
        api(&mut state, &req)
    })();
    let succeeded = result.is_ok();
    let answer = finish(&mut state, &path, raw_query, parsed.ok(), result);
    // the API ran, but its answer never reaches the caller (a cut connection)
    if succeeded && let Some(left) = state.rt.lost_answers.get_mut(&path).filter(|n| **n > 0) {
        *left -= 1;
        return axum::http::StatusCode::BAD_GATEWAY.into_response();
    }
    answer.into_response()
}

fn finish(
    state: &mut State,
    path: &str,
    query: String,
    body: Option<Value>,
    result: ApiResult,
) -> Json<Value> {
    let now_ms = state.rt.now_ms();
    let (errcode, mut out) = match result {
        Ok(mut obj) => {
            obj.insert("errcode".into(), json!(0));
            obj.insert("errmsg".into(), json!("ok"));
            (0, obj)
        }
        Err(err) => {
            let mut obj = Obj::new();
            obj.insert("errcode".into(), json!(err.errcode));
            obj.insert("errmsg".into(), json!(state.rt.errmsg(&err, now_ms)));
            (err.errcode, obj)
        }
    };
    if errcode != 0 {
        tracing::debug!(path, errcode, "stand-in answered an error");
    }
    let body = body.filter(|b| b.as_object().is_none_or(|o| !o.is_empty()));
    state.rt.record(CallRecord {
        path: path.to_owned(),
        query,
        body: body.unwrap_or(Value::Null),
        errcode,
        at: UNIX_EPOCH + Duration::from_millis(now_ms),
    });
    Json(Value::Object(std::mem::take(&mut out)))
}
