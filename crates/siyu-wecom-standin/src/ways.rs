//! How customers arrive: 「联系我」 contact ways (`add_contact_way` and its get, update,
//! del, list) and the welcome message answered to an arrival (`send_welcome_msg`).
//!
//! A contact way's `state` is what WeCom echoes in the `add_external_contact` callback,
//! so the stand-in keeps them: `Standin::customer_scans` adds a customer through one.
//! A welcome code is single use and valid for 20 s on the stand-in's clock.

use serde_json::{Value, json};

use crate::server::{
    ApiError, ApiResult, Obj, Req, State, decode_cursor, encode_cursor, random_string,
};

/// A stored 「联系我」 configuration (wire names as in `get_contact_way`).
#[derive(Debug, Clone, PartialEq)]
pub struct ContactWay {
    pub config_id: String,
    pub type_: u8,
    pub scene: u8,
    pub style: u64,
    pub remark: String,
    pub skip_verify: bool,
    pub state: String,
    pub user: Vec<String>,
    pub party: Vec<u64>,
    pub is_temp: bool,
    pub expires_in: u64,
    pub chat_expires_in: u64,
    pub unionid: String,
    pub conclusions: Value,
    /// Scene 2 only.
    pub qr_code: String,
    /// Unix seconds.
    pub create_time: u64,
}

/// A welcome code issued with an `add_external_contact` event.
#[derive(Debug, Clone)]
pub(crate) struct WelcomeCode {
    pub userid: String,
    pub external_userid: String,
    pub issued_ms: u64,
    pub used: bool,
}

/// A welcome message delivered through `send_welcome_msg`.
#[derive(Debug, Clone, PartialEq)]
pub struct WelcomeMessage {
    pub welcome_code: String,
    pub userid: String,
    pub external_userid: String,
    pub text: String,
    pub attachments: Value,
}

/// How long a welcome code can be used.
pub(crate) const WELCOME_CODE_MS: u64 = 20_000;

pub(crate) fn send_welcome_msg(state: &mut State, req: &Req) -> ApiResult {
    let code = req
        .s("welcome_code")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::code(41049))?;
    let text = req
        .body
        .pointer("/text/content")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let attachments = req.body.get("attachments").cloned().unwrap_or(json!([]));
    let n_attachments = attachments.as_array().map_or(0, Vec::len);
    if text.is_empty() && n_attachments == 0 {
        return Err(ApiError::new(
            44004,
            "empty content: text and attachments are both empty",
        ));
    }
    if text.len() > 4000 {
        return Err(ApiError::new(
            45002,
            "content size out of limit: text over 4000 bytes",
        ));
    }
    if n_attachments > 9 {
        return Err(ApiError::new(40058, "attachments exceed 9"));
    }
    let wc = state
        .rt
        .welcome_codes
        .get_mut(code)
        .ok_or_else(|| ApiError::new(41050, "invalid welcome code"))?;
    if wc.used {
        return Err(ApiError::code(41051));
    }
    if req.now_ms > wc.issued_ms + WELCOME_CODE_MS {
        return Err(ApiError::new(41050, "invalid welcome code: expired (20 s)"));
    }
    wc.used = true;
    let msg = WelcomeMessage {
        welcome_code: code.to_owned(),
        userid: wc.userid.clone(),
        external_userid: wc.external_userid.clone(),
        text: text.to_owned(),
        attachments,
    };
    state.rt.welcome_messages.push(msg);
    Ok(Obj::new())
}

/// Validates the fields add and update share; `way` holds the values to check.
fn check_way(state: &State, way: &ContactWay) -> Result<(), ApiError> {
    if !matches!(way.type_, 1 | 2) {
        return Err(ApiError::new(41039, format!("invalid type: {}", way.type_)));
    }
    if !matches!(way.scene, 1 | 2) {
        return Err(ApiError::new(
            41040,
            format!("invalid scene: {}", way.scene),
        ));
    }
    if way.style > 4 {
        return Err(ApiError::new(
            41042,
            format!("invalid style: {}", way.style),
        ));
    }
    if way.state.chars().count() > 30 {
        return Err(ApiError::new(40058, "state exceeds 30 characters"));
    }
    if way.remark.chars().count() > 30 {
        return Err(ApiError::new(40058, "remark exceeds 30 characters"));
    }
    if way.type_ == 1 && (way.user.len() != 1 || !way.party.is_empty()) {
        return Err(ApiError::new(
            40058,
            "type 1 (single) needs exactly one user and no party",
        ));
    }
    if way.user.is_empty() && way.party.is_empty() {
        return Err(ApiError::new(40058, "user and party are both empty"));
    }
    for u in &way.user {
        let ok = state
            .corp
            .members
            .get(u)
            .is_some_and(|m| m.status == 1 && m.customer_contact);
        if !ok {
            return Err(ApiError::new(
                40003,
                format!("invalid userid (not active with customer contact): {u:?}"),
            ));
        }
    }
    for p in &way.party {
        if !state.corp.departments.contains_key(p) {
            return Err(ApiError::new(60123, format!("invalid party id: {p}")));
        }
    }
    let expanded = way.user.len()
        + state
            .corp
            .members
            .values()
            .filter(|m| {
                !way.user.contains(&m.userid) && m.department.iter().any(|d| way.party.contains(d))
            })
            .count();
    if expanded > 100 {
        return Err(ApiError::new(
            41041,
            "more than 100 members in one contact way",
        ));
    }
    Ok(())
}

fn apply_fields(way: &mut ContactWay, req: &Req) {
    if let Some(v) = req.u("style") {
        way.style = v;
    }
    if let Some(v) = req.s("remark") {
        way.remark = v.to_owned();
    }
    if let Some(v) = req.body.get("skip_verify").and_then(Value::as_bool) {
        way.skip_verify = v;
    }
    if let Some(v) = req.s("state") {
        way.state = v.to_owned();
    }
    if req.has("user") {
        way.user = req.strs("user");
    }
    if let Some(a) = req.body.get("party").and_then(Value::as_array) {
        way.party = a.iter().filter_map(Value::as_u64).collect();
    }
    if let Some(v) = req.body.get("expires_in").and_then(Value::as_u64) {
        way.expires_in = v;
    }
    if let Some(v) = req.body.get("chat_expires_in").and_then(Value::as_u64) {
        way.chat_expires_in = v;
    }
    if let Some(v) = req.s("unionid") {
        way.unionid = v.to_owned();
    }
    if let Some(v) = req.body.get("conclusions") {
        way.conclusions = v.clone();
    }
}

pub(crate) fn add_contact_way(state: &mut State, req: &Req) -> ApiResult {
    let type_ = req
        .u("type")
        .ok_or_else(|| ApiError::new(41037, "missing type"))?;
    let scene = req
        .u("scene")
        .ok_or_else(|| ApiError::new(41038, "missing scene"))?;
    let config_id = random_string(32, b"0123456789abcdef");
    let mut way = ContactWay {
        config_id: config_id.clone(),
        type_: u8::try_from(type_).unwrap_or(u8::MAX),
        scene: u8::try_from(scene).unwrap_or(u8::MAX),
        style: 1,
        remark: String::new(),
        skip_verify: true,
        state: String::new(),
        user: Vec::new(),
        party: Vec::new(),
        is_temp: req
            .body
            .get("is_temp")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        expires_in: 0,
        chat_expires_in: 0,
        unionid: String::new(),
        conclusions: json!({}),
        qr_code: String::new(),
        create_time: req.now(),
    };
    apply_fields(&mut way, req);
    if way.is_temp && way.expires_in == 0 {
        way.expires_in = 7 * 86_400;
    }
    check_way(state, &way)?;
    if way.scene == 2 {
        way.qr_code = state.qr_image_url(&way.config_id);
    }
    state.rt.contact_ways.insert(config_id.clone(), way.clone());
    let mut out = Obj::new();
    out.insert("config_id".into(), json!(config_id));
    if way.scene == 2 {
        out.insert("qr_code".into(), json!(way.qr_code));
    }
    Ok(out)
}

fn config_id(req: &Req) -> Result<&str, ApiError> {
    req.s("config_id")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::code(41043))
}

pub(crate) fn way_json(w: &ContactWay) -> Value {
    let mut v = json!({
        "config_id": w.config_id, "type": w.type_, "scene": w.scene, "style": w.style,
        "remark": w.remark, "skip_verify": w.skip_verify, "state": w.state, "user": w.user,
        "party": w.party, "is_temp": w.is_temp, "expires_in": w.expires_in,
        "chat_expires_in": w.chat_expires_in, "unionid": w.unionid, "conclusions": w.conclusions,
    });
    if w.scene == 2 {
        v["qr_code"] = json!(w.qr_code);
    }
    v
}

pub(crate) fn get_contact_way(state: &mut State, req: &Req) -> ApiResult {
    let id = config_id(req)?;
    let way = state
        .rt
        .contact_ways
        .get(id)
        .ok_or_else(|| ApiError::code(41044))?;
    let mut out = Obj::new();
    out.insert("contact_way".into(), way_json(way));
    Ok(out)
}

pub(crate) fn update_contact_way(state: &mut State, req: &Req) -> ApiResult {
    let id = config_id(req)?;
    let mut way = state
        .rt
        .contact_ways
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::code(41044))?;
    apply_fields(&mut way, req);
    check_way(state, &way)?;
    state.rt.contact_ways.insert(id.to_owned(), way);
    Ok(Obj::new())
}

pub(crate) fn del_contact_way(state: &mut State, req: &Req) -> ApiResult {
    let id = config_id(req)?;
    state
        .rt
        .contact_ways
        .remove(id)
        .ok_or_else(|| ApiError::code(41044))?;
    Ok(Obj::new())
}

/// `list_contact_way` {start_time, end_time, cursor, limit ≤1000}: config ids created in
/// the range (default: the last 90 days), in config_id order.
pub(crate) fn list_contact_way(state: &mut State, req: &Req) -> ApiResult {
    let end = req.u("end_time").unwrap_or(req.now());
    let start = req
        .u("start_time")
        .unwrap_or(end.saturating_sub(90 * 86_400));
    let limit = match req.u("limit") {
        None | Some(0) => 100,
        Some(n) if n > 1000 => return Err(ApiError::new(40058, "limit exceeds 1000")),
        Some(n) => n as usize,
    };
    let after = match req.s("cursor").filter(|c| !c.is_empty()) {
        Some(c) => decode_cursor(c)?,
        None => String::new(),
    };
    let mut ids: Vec<&str> = state
        .rt
        .contact_ways
        .values()
        .filter(|w| w.config_id.as_str() > after.as_str())
        .filter(|w| (start..=end).contains(&w.create_time))
        .map(|w| w.config_id.as_str())
        .take(limit + 1)
        .collect();
    let next = if ids.len() > limit {
        ids.truncate(limit);
        encode_cursor(ids[limit - 1])
    } else {
        String::new()
    };
    let list: Vec<Value> = ids.iter().map(|id| json!({"config_id": id})).collect();
    let mut out = Obj::new();
    out.insert("contact_way".into(), Value::Array(list));
    out.insert("next_cursor".into(), json!(next));
    Ok(out)
}
