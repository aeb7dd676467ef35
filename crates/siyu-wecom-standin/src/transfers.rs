//! Customer transfers (在职继承 and 离职继承): `transfer_customer`, `transfer_result`,
//! `resigned/transfer_customer`, `resigned/transfer_result`, `get_unassigned_list`.
//!
//! As on WeCom, a transfer only starts: the relation moves to the takeover member 24 h
//! later on the stand-in's clock (status 2 "waiting" with a future `takeover_time`,
//! then 1 "done"). [`settle`] runs before every API call and on `advance_clock`, so
//! tests see the move as soon as the clock passes the takeover time. A customer of an
//! in-office member may be transferred at most twice in 90 days (40128).

use serde_json::{Value, json};

use crate::server::{ApiError, ApiResult, Obj, Req, State, decode_cursor, encode_cursor};

/// Seconds between a transfer's start and its takeover.
pub(crate) const TAKEOVER_DELAY: u64 = 86_400;
const NINETY_DAYS: u64 = 90 * 86_400;
/// Most customers a member may have (takeover beyond it: status 4).
const MAX_CUSTOMERS: usize = 50_000;

/// One customer's transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub handover_userid: String,
    pub takeover_userid: String,
    pub external_userid: String,
    /// Started by `resigned/transfer_customer`.
    pub resigned: bool,
    /// Unix seconds.
    pub started: u64,
    /// When the relation moves (0 once refused).
    pub takeover_time: u64,
    /// 1 done, 2 waiting, 3 refused by the customer, 4 takeover at its customer limit.
    pub status: u8,
    pub transfer_success_msg: String,
}

/// Completes every waiting transfer whose takeover time has come, and queues the
/// callbacks WeCom pushes for it (see `Standin::push_transfer_callbacks`).
pub(crate) fn settle(state: &mut State, now: u64) {
    if !state.rt.transfers.iter().any(|t| t.status == 2) {
        return;
    }
    let corp = &mut state.corp;
    let rt = &mut state.rt;
    for t in rt
        .transfers
        .iter_mut()
        .filter(|t| t.status == 2 && t.takeover_time <= now)
    {
        let taken = corp
            .relations
            .get(&t.takeover_userid)
            .map_or(0, |r| r.len());
        if taken >= MAX_CUSTOMERS {
            t.status = 4;
            continue;
        }
        t.status = 1;
        let Some(mut info) = corp.remove_follow(&t.handover_userid, &t.external_userid) else {
            continue;
        };
        let already_friends = corp
            .relation(&t.takeover_userid, &t.external_userid)
            .is_some();
        if !already_friends {
            info.createtime = t.takeover_time;
            info.oper_userid = t.takeover_userid.clone();
            corp.insert_follow(&t.takeover_userid, &t.external_userid, info);
        }
        rt.transfer_events.push((t.clone(), already_friends));
    }
}

fn start(state: &mut State, req: &Req, resigned: bool) -> ApiResult {
    let handover = req.s("handover_userid").unwrap_or_default().to_owned();
    let takeover = req.s("takeover_userid").unwrap_or_default().to_owned();
    let ids = req.strs("external_userid");
    let msg = req.s("transfer_success_msg").unwrap_or_default().to_owned();
    let handover_member =
        state.corp.members.get(&handover).ok_or_else(|| {
            ApiError::new(40003, format!("invalid userid: handover {handover:?}"))
        })?;
    if resigned && handover_member.status != 5 {
        return Err(ApiError::new(
            40097,
            format!("handover userid has not resigned: {handover}"),
        ));
    }
    let takeover_ok = state
        .corp
        .members
        .get(&takeover)
        .is_some_and(|m| m.status == 1 && m.customer_contact);
    if !takeover_ok {
        return Err(ApiError::new(
            40003,
            format!("invalid userid: takeover {takeover:?} (must be active with customer contact)"),
        ));
    }
    if ids.is_empty() {
        return Err(ApiError::code(41035));
    }
    if ids.len() > 100 {
        return Err(ApiError::new(40058, "external_userid exceeds 100"));
    }
    if msg.chars().count() > 200 {
        return Err(ApiError::new(
            40058,
            "transfer_success_msg exceeds 200 characters",
        ));
    }
    let now = req.now();
    let mut results = Vec::new();
    for ext in ids {
        let code = if !state.corp.contacts.contains_key(&ext) {
            40096
        } else if handover == takeover {
            40130
        } else if state.corp.relation(&handover, &ext).is_none() {
            40131
        } else if state
            .rt
            .transfers
            .iter()
            .any(|t| t.external_userid == ext && t.status == 2)
        {
            40129
        } else if !resigned
            && state
                .rt
                .transfers
                .iter()
                .filter(|t| {
                    t.external_userid == ext && !t.resigned && t.started + NINETY_DAYS > now
                })
                .count()
                >= 2
        {
            40128
        } else {
            state.rt.transfers.push(Transfer {
                handover_userid: handover.clone(),
                takeover_userid: takeover.clone(),
                external_userid: ext.clone(),
                resigned,
                started: now,
                takeover_time: now + TAKEOVER_DELAY,
                status: 2,
                transfer_success_msg: msg.clone(),
            });
            0
        };
        results.push(json!({"external_userid": ext, "errcode": code}));
    }
    let mut out = Obj::new();
    out.insert("customer".into(), Value::Array(results));
    Ok(out)
}

fn result(state: &mut State, req: &Req, resigned: bool) -> ApiResult {
    let handover = req.s("handover_userid").unwrap_or_default();
    let takeover = req.s("takeover_userid").unwrap_or_default();
    let start: usize = match req.s("cursor").filter(|c| !c.is_empty()) {
        Some(c) => decode_cursor(c)?
            .parse()
            .map_err(|_| ApiError::code(50100))?,
        None => 0,
    };
    let matching: Vec<&crate::transfers::Transfer> = state
        .rt
        .transfers
        .iter()
        .filter(|t| {
            t.resigned == resigned && t.handover_userid == handover && t.takeover_userid == takeover
        })
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(1000)
        .map(|t| json!({"external_userid": t.external_userid, "status": t.status, "takeover_time": t.takeover_time}))
        .collect();
    let next = if start + 1000 < matching.len() {
        encode_cursor(&(start + 1000).to_string())
    } else {
        String::new()
    };
    let mut out = Obj::new();
    out.insert("customer".into(), Value::Array(page));
    out.insert("next_cursor".into(), json!(next));
    Ok(out)
}

pub(crate) fn transfer_customer(state: &mut State, req: &Req) -> ApiResult {
    start(state, req, false)
}

pub(crate) fn resigned_transfer_customer(state: &mut State, req: &Req) -> ApiResult {
    start(state, req, true)
}

pub(crate) fn transfer_result(state: &mut State, req: &Req) -> ApiResult {
    result(state, req, false)
}

pub(crate) fn resigned_transfer_result(state: &mut State, req: &Req) -> ApiResult {
    result(state, req, true)
}

/// `get_unassigned_list` {page_id, page_size ≤1000, cursor}: the customers of members
/// who left and are not being transferred, in (userid, external_userid) order.
pub(crate) fn get_unassigned_list(state: &mut State, req: &Req) -> ApiResult {
    let size = match req.u("page_size") {
        None | Some(0) => 1000,
        Some(n) if n > 1000 => return Err(ApiError::new(40058, "page_size exceeds 1000")),
        Some(n) => n as usize,
    };
    let after: Option<(String, String)> = match req.s("cursor").filter(|c| !c.is_empty()) {
        Some(c) => {
            let pos = decode_cursor(c)?;
            let (u, e) = pos.split_once('|').ok_or_else(|| ApiError::code(50100))?;
            Some((u.to_owned(), e.to_owned()))
        }
        None => None,
    };
    let skip = if after.is_none() {
        req.u("page_id").unwrap_or(0) as usize * size
    } else {
        0
    };
    let corp = &state.corp;
    let moving: std::collections::HashSet<(&str, &str)> = state
        .rt
        .transfers
        .iter()
        .filter(|t| t.status == 2)
        .map(|t| (t.handover_userid.as_str(), t.external_userid.as_str()))
        .collect();
    let left = corp.members.values().filter(|m| m.status == 5);
    let all = left.flat_map(|m| {
        let dimission = state.rt.dimission.get(&m.userid).copied().unwrap_or(0);
        corp.relations
            .get(&m.userid)
            .into_iter()
            .flat_map(|r| r.keys())
            .map(move |ext| (m.userid.as_str(), ext.as_str(), dimission))
    });
    let mut rows: Vec<(&str, &str, u64)> = all
        .filter(|(u, e, _)| !moving.contains(&(*u, *e)))
        .filter(|(u, e, _)| {
            after
                .as_ref()
                .is_none_or(|(au, ae)| (*u, *e) > (au.as_str(), ae.as_str()))
        })
        .skip(skip)
        .take(size + 1)
        .collect();
    let is_last = rows.len() <= size;
    rows.truncate(size);
    let next = match rows.last() {
        Some((u, e, _)) if !is_last => encode_cursor(&format!("{u}|{e}")),
        _ => String::new(),
    };
    let info: Vec<Value> = rows
        .iter()
        .map(|(u, e, d)| json!({"handover_userid": u, "external_userid": e, "dimission_time": d}))
        .collect();
    let mut out = Obj::new();
    out.insert("info".into(), Value::Array(info));
    out.insert("is_last".into(), json!(is_last));
    out.insert("next_cursor".into(), json!(next));
    Ok(out)
}
