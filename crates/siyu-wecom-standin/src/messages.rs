//! App messages to staff (`message/send`). WeCom caps what one member receives at 30 a
//! minute and 1,000 an hour and **drops the excess silently** (the call still answers
//! 0): the stand-in does the same and counts the dropped ones apart, so a test can see
//! what a real member would not have received.

use std::collections::{HashMap, VecDeque};

use serde_json::{Value, json};

use crate::server::{ApiError, ApiResult, Obj, Req, State};

const PER_MINUTE: usize = 30;
const PER_HOUR: usize = 1_000;

/// One message delivered to one member.
#[derive(Debug, Clone, PartialEq)]
pub struct AppMessage {
    pub msgid: String,
    pub agentid: u64,
    pub userid: String,
    pub msgtype: String,
    /// `text.content` (or `markdown.content`, or the textcard's title); the whole body
    /// is in `body`.
    pub content: String,
    pub body: Value,
    /// Unix seconds on the stand-in's clock.
    pub at: u64,
}

/// Delivery times per member (ms), for the per-member caps.
#[derive(Debug, Default)]
pub(crate) struct AppSends(HashMap<String, VecDeque<u64>>);

impl AppSends {
    /// Whether one more message may reach `userid` now; records it when it may.
    fn admit(&mut self, userid: &str, now_ms: u64) -> bool {
        let times = self.0.entry(userid.to_owned()).or_default();
        while times.front().is_some_and(|t| t + 3_600_000 <= now_ms) {
            times.pop_front();
        }
        let last_minute = times
            .iter()
            .rev()
            .take_while(|t| **t + 60_000 > now_ms)
            .count();
        if last_minute >= PER_MINUTE || times.len() >= PER_HOUR {
            return false;
        }
        times.push_back(now_ms);
        true
    }
}

fn content_of(body: &Value, msgtype: &str) -> String {
    let v = match msgtype {
        "textcard" | "news" => body.pointer("/textcard/title"),
        other => body.get(other).and_then(|m| m.get("content")),
    };
    v.and_then(Value::as_str).unwrap_or_default().to_owned()
}

pub(crate) fn send(state: &mut State, req: &Req) -> ApiResult {
    let agentid = req.u("agentid").ok_or_else(|| ApiError::code(41011))?;
    let msgtype = req.s("msgtype").unwrap_or("text").to_owned();
    let touser = req.s("touser").unwrap_or_default();
    let toparty = req.s("toparty").unwrap_or_default();
    let totag = req.s("totag").unwrap_or_default();
    if touser.is_empty() && toparty.is_empty() && totag.is_empty() {
        return Err(ApiError::code(82001));
    }
    let content = content_of(&req.body, &msgtype);
    if matches!(msgtype.as_str(), "text" | "markdown") && content.is_empty() {
        return Err(ApiError::code(44004));
    }
    if msgtype == "text" && content.len() > 2048 {
        return Err(ApiError::new(
            45002,
            "content size out of limit: text over 2048 bytes",
        ));
    }
    let corp = &state.corp;
    let mut valid: Vec<String> = Vec::new();
    let mut invalid: Vec<String> = Vec::new();
    if touser == "@all" {
        valid.extend(
            corp.members
                .values()
                .filter(|m| m.status == 1)
                .map(|m| m.userid.clone()),
        );
    } else {
        let users: Vec<&str> = touser.split('|').filter(|s| !s.is_empty()).collect();
        if users.len() > 1000 {
            return Err(ApiError::new(40032, "invalid user list size: over 1000"));
        }
        for u in users {
            match corp.members.get(u).filter(|m| m.status == 1) {
                Some(m) if !valid.contains(&m.userid) => valid.push(m.userid.clone()),
                Some(_) => {}
                None => invalid.push(u.to_lowercase()),
            }
        }
    }
    let mut invalid_party = Vec::new();
    for p in toparty.split('|').filter(|s| !s.is_empty()) {
        match p
            .parse::<u64>()
            .ok()
            .filter(|id| corp.departments.contains_key(id))
        {
            Some(id) => {
                for m in corp
                    .members
                    .values()
                    .filter(|m| m.status == 1 && m.department.contains(&id))
                {
                    if !valid.contains(&m.userid) {
                        valid.push(m.userid.clone());
                    }
                }
            }
            None => invalid_party.push(p.to_owned()),
        }
    }
    // the stand-in has no staff tags: every totag is invalid
    let invalid_tag: Vec<&str> = totag.split('|').filter(|s| !s.is_empty()).collect();
    if valid.is_empty() {
        return Err(ApiError::code(81013));
    }
    let msgid = crate::server::random_string(40, crate::server::ALNUM);
    for userid in valid {
        if state.rt.app_sends.admit(&userid, req.now_ms) {
            state.rt.app_messages.push(AppMessage {
                msgid: msgid.clone(),
                agentid,
                userid,
                msgtype: msgtype.clone(),
                content: content.clone(),
                body: req.body.clone(),
                at: req.now(),
            });
        } else {
            state.rt.app_dropped += 1;
        }
    }
    let mut out = Obj::new();
    out.insert("invaliduser".into(), json!(invalid.join("|")));
    out.insert("invalidparty".into(), json!(invalid_party.join("|")));
    out.insert("invalidtag".into(), json!(invalid_tag.join("|")));
    out.insert("unlicenseduser".into(), json!(""));
    out.insert("msgid".into(), json!(msgid));
    Ok(out)
}
