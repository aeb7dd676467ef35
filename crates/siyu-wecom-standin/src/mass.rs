//! Corp mass messages to customers (企业群发, WECOM.md "Mass messages"):
//! `add_msg_template`, `get_groupmsg_list_v2`, `get_groupmsg_task`,
//! `get_groupmsg_send_result`, `remind_groupmsg_send`, `cancel_groupmsg_send`.
//!
//! As on WeCom, the API sends nothing: each member gets a task and the customers receive
//! the message only when the member confirms it in the app ([`crate::Standin::member_confirms`]).
//! At confirmation each customer is checked: no relation with the member any more is
//! status 2, over the receive cap (days-in-the-month a month by default, or 7 a week, or
//! 1 a day, counted in China's time) is 3, else 1. Right after `add_msg_template` the
//! message is "still being dispatched" for [`crate::Standin::set_mass_dispatch`]: its
//! task and result reads, and list reads over its time, answer 41063. API-created
//! messages carry no `creator` and `create_type` 0. Only `chat_type` "single" is served
//! (siyu sends to customers, not to chats), and never `tag_filter`: siyu addresses every
//! recipient by `external_userid`.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::server::{ApiError, ApiResult, Obj, Req, State, decode_cursor, encode_cursor};

/// The most customers one `add_msg_template` names.
const MAX_RECIPIENTS: usize = 10_000;
/// The most bytes a text may be.
const MAX_TEXT_BYTES: usize = 4_000;
/// The longest range `get_groupmsg_list_v2` reads (a month).
const MAX_RANGE_S: u64 = 31 * 86_400;
/// Reminders per message per 24 h.
const REMINDERS_PER_DAY: usize = 3;
/// China's offset from UTC, for the receive cap's windows.
const CHINA_OFFSET_S: u64 = 8 * 3_600;

/// How many mass messages one customer receives (the corp's 群发规则).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReceiveCap {
    /// As many a month as the month has days (WeCom's default).
    #[default]
    DaysInMonth,
    SevenAWeek,
    OneADay,
}

/// One customer of a member's task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MassRecipient {
    pub external_userid: String,
    /// 0 not sent, 1 sent, 2 not a friend any more, 3 over the receive cap.
    pub status: u8,
    /// Unix seconds (0 until sent).
    pub send_time: u64,
}

/// One member's task of a mass message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MassTask {
    pub userid: String,
    /// 0 not sent, 2 sent.
    pub status: u8,
    pub send_time: u64,
    pub recipients: Vec<MassRecipient>,
}

/// A mass message as WeCom keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct MassMessage {
    pub msgid: String,
    /// Unix seconds.
    pub create_time: u64,
    /// `None` for an API-created message.
    pub creator: Option<String>,
    /// 0 corp, 1 member.
    pub create_type: u8,
    pub text: String,
    pub attachments: Value,
    pub tasks: Vec<MassTask>,
    /// The `sender` the call named, if any.
    pub sender: Option<String>,
    /// Unix milliseconds until which it is being dispatched (reads answer 41063).
    pub dispatched_at_ms: u64,
    pub cancelled: bool,
    /// Reminders, unix seconds.
    pub reminders: Vec<u64>,
}

/// What the stand-in keeps of mass messages.
#[derive(Debug, Default)]
pub(crate) struct MassMessages {
    pub messages: Vec<MassMessage>,
    pub by_id: HashMap<String, usize>,
    /// external_userid → when it received a mass message (unix seconds).
    pub received: HashMap<String, Vec<u64>>,
    pub cap: ReceiveCap,
    pub dispatch_ms: u64,
}

impl MassMessages {
    fn get(&self, msgid: &str) -> Result<&MassMessage, ApiError> {
        if msgid.is_empty() {
            return Err(ApiError::new(41046, "missing msgid"));
        }
        self.by_id
            .get(msgid)
            .map(|i| &self.messages[*i])
            .ok_or_else(|| ApiError::new(41047, format!("invalid msgid: {msgid}")))
    }

    fn dispatched(&self, msgid: &str, now_ms: u64) -> Result<&MassMessage, ApiError> {
        let message = self.get(msgid)?;
        if now_ms < message.dispatched_at_ms {
            return Err(dispatching());
        }
        Ok(message)
    }

    /// Whether the customer may receive one more at `now` under the corp's cap.
    fn under_cap(&self, external_userid: &str, now: u64) -> bool {
        let Some(times) = self.received.get(external_userid) else {
            return true;
        };
        let (start, limit) = window(self.cap, now);
        times.iter().filter(|t| **t >= start).count() < limit
    }

    /// A member confirms their task of a message: its customers receive it (or not, and
    /// why). Answers how many received it; `None` when there is no such task to confirm.
    pub(crate) fn confirm(
        &mut self,
        corp: &crate::corp::Corp,
        userid: &str,
        msgid: &str,
        now: u64,
    ) -> Option<usize> {
        let index = *self.by_id.get(msgid)?;
        if self.messages[index].cancelled {
            return None;
        }
        let task = self.messages[index]
            .tasks
            .iter()
            .position(|t| t.userid == userid && t.status == 0)?;
        let recipients: Vec<String> = self.messages[index].tasks[task]
            .recipients
            .iter()
            .map(|r| r.external_userid.clone())
            .collect();
        let mut statuses = Vec::with_capacity(recipients.len());
        for external in &recipients {
            let status = if corp.relation(userid, external).is_none() {
                2
            } else if !self.under_cap(external, now) {
                3
            } else {
                self.received.entry(external.clone()).or_default().push(now);
                1
            };
            statuses.push(status);
        }
        let task = &mut self.messages[index].tasks[task];
        task.status = 2;
        task.send_time = now;
        let mut received = 0;
        for (r, status) in task.recipients.iter_mut().zip(statuses) {
            r.status = status;
            if status == 1 {
                r.send_time = now;
                received += 1;
            }
        }
        Some(received)
    }
}

/// The cap's window that `now` falls in (its start, unix seconds) and its limit.
fn window(cap: ReceiveCap, now: u64) -> (u64, usize) {
    let local = now + CHINA_OFFSET_S;
    let day = local / 86_400;
    let start_of = |day: u64| day * 86_400 - CHINA_OFFSET_S;
    match cap {
        ReceiveCap::OneADay => (start_of(day), 1),
        ReceiveCap::SevenAWeek => {
            // 1970-01-01 was a Thursday: Monday is 3 days before
            let monday = day - (day + 3) % 7;
            (start_of(monday), 7)
        }
        ReceiveCap::DaysInMonth => {
            use chrono::{Datelike, NaiveDate};
            let date = NaiveDate::from_num_days_from_ce_opt(day as i32 + 719_163)
                .expect("a day after 1970");
            let first = date.with_day(1).expect("the first");
            let next = if first.month() == 12 {
                NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
            }
            .expect("the next month's first");
            let days = (next - first).num_days() as usize;
            let first_day = (first.num_days_from_ce() - 719_163) as u64;
            (start_of(first_day), days)
        }
    }
}

fn dispatching() -> ApiError {
    ApiError::new(
        41063,
        "the mass message is still being dispatched, try later",
    )
}

/// `add_msg_template`: a task per member for the customers named (or all of `sender`'s).
pub(crate) fn add_msg_template(state: &mut State, req: &Req) -> ApiResult {
    let chat_type = req.s("chat_type").unwrap_or("single");
    if chat_type != "single" {
        return Err(ApiError::new(
            40058,
            format!("chat_type {chat_type:?}: the stand-in serves single only"),
        ));
    }
    if req.has("tag_filter") {
        return Err(ApiError::new(
            40058,
            "tag_filter is not served by the stand-in: name external_userid",
        ));
    }
    let named = req.strs("external_userid");
    if named.len() > MAX_RECIPIENTS {
        return Err(ApiError::new(
            40058,
            format!("external_userid exceeds {MAX_RECIPIENTS}"),
        ));
    }
    let sender = req.s("sender").filter(|s| !s.is_empty()).map(str::to_owned);
    if named.is_empty() && sender.is_none() {
        return Err(ApiError::new(
            41035,
            "external_userid and sender are both empty",
        ));
    }
    let text = req
        .body
        .pointer("/text/content")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let attachments = req.body.get("attachments").cloned().unwrap_or(json!([]));
    let attachment_list = attachments.as_array().cloned().unwrap_or_default();
    if text.is_empty() && attachment_list.is_empty() {
        return Err(ApiError::new(40058, "text and attachments are both empty"));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(ApiError::new(
            45002,
            format!("content size out of limit: text over {MAX_TEXT_BYTES} bytes"),
        ));
    }
    if attachment_list.len() > 9 {
        return Err(ApiError::new(40058, "attachments exceed 9"));
    }
    for a in &attachment_list {
        let kind = a.get("msgtype").and_then(Value::as_str).unwrap_or_default();
        if !matches!(kind, "image" | "link" | "miniprogram" | "video" | "file") {
            return Err(ApiError::new(
                41065,
                format!("invalid attachment type {kind:?}"),
            ));
        }
    }
    crate::media::check_attachments(state, &attachment_list, req.now_ms)?;
    let corp = &state.corp;
    let active = |userid: &str| corp.members.get(userid).is_some_and(|m| m.status == 1);
    if let Some(sender) = &sender
        && !active(sender)
    {
        return Err(ApiError::new(60111, format!("userid not found: {sender}")));
    }
    let named: Vec<String> = if named.is_empty() {
        corp.customers_of(sender.as_deref().unwrap_or_default())
    } else {
        let mut seen = BTreeSet::new();
        named
            .into_iter()
            .filter(|e| seen.insert(e.clone()))
            .collect()
    };
    // each customer goes to one member: the sender, or (WeCom: the member who last
    // chatted with them) the first active member who has them
    let mut tasks: Vec<MassTask> = Vec::new();
    let mut fail_list = Vec::new();
    for external in named {
        let member = match &sender {
            Some(sender) => corp
                .relation(sender, &external)
                .is_some()
                .then(|| sender.clone()),
            None => corp
                .followers_of(&external)
                .iter()
                .find(|u| active(u))
                .cloned(),
        };
        let Some(member) = member else {
            fail_list.push(external);
            continue;
        };
        let recipient = MassRecipient {
            external_userid: external,
            status: 0,
            send_time: 0,
        };
        match tasks.iter_mut().find(|t| t.userid == member) {
            Some(task) => task.recipients.push(recipient),
            None => tasks.push(MassTask {
                userid: member,
                status: 0,
                send_time: 0,
                recipients: vec![recipient],
            }),
        }
    }
    if tasks.is_empty() {
        return Err(ApiError::new(
            41048,
            "no customer to send to: every external_userid is invalid or unsendable",
        ));
    }
    let msgid = format!(
        "msg{}",
        crate::server::random_string(24, crate::server::ALNUM)
    );
    let mass = &mut state.rt.mass;
    mass.by_id.insert(msgid.clone(), mass.messages.len());
    mass.messages.push(MassMessage {
        msgid: msgid.clone(),
        create_time: req.now(),
        creator: None,
        create_type: 0,
        text,
        attachments,
        tasks,
        sender,
        dispatched_at_ms: req.now_ms + mass.dispatch_ms,
        cancelled: false,
        reminders: Vec::new(),
    });
    let mut out = Obj::new();
    out.insert("fail_list".into(), json!(fail_list));
    out.insert("msgid".into(), json!(msgid));
    Ok(out)
}

/// A page size as WeCom reads it: absent → `default`, over `max` → refused (40058) or,
/// where WeCom says larger means the default, the default.
fn limit_of(req: &Req, default: usize, max: usize, larger_is_default: bool) -> Checked<usize> {
    match req.u("limit") {
        None | Some(0) => Ok(default),
        Some(n) if n as usize <= max => Ok(n as usize),
        Some(_) if larger_is_default => Ok(default),
        Some(n) => Err(ApiError::new(40058, format!("limit {n} exceeds {max}"))),
    }
}

type Checked<T> = Result<T, ApiError>;

fn offset_of(req: &Req) -> Checked<usize> {
    match req.s("cursor").filter(|c| !c.is_empty()) {
        None => Ok(0),
        Some(cursor) => decode_cursor(cursor)?
            .parse()
            .map_err(|_| ApiError::new(50100, "invalid cursor")),
    }
}

/// One page of `items` from the request's cursor, and the next cursor ("" at the end).
fn page<T: Clone>(items: &[T], offset: usize, limit: usize) -> (Vec<T>, String) {
    let end = (offset + limit).min(items.len());
    let page = items.get(offset..end).unwrap_or_default().to_vec();
    let next = if end < items.len() {
        encode_cursor(&end.to_string())
    } else {
        String::new()
    };
    (page, next)
}

/// `get_groupmsg_list_v2`: the mass messages created in a time range (≤ a month).
pub(crate) fn get_groupmsg_list_v2(state: &mut State, req: &Req) -> ApiResult {
    if req.s("chat_type").is_none_or(str::is_empty) {
        return Err(ApiError::new(40058, "chat_type is required"));
    }
    let chat_type = req.s("chat_type").unwrap_or_default();
    let (Some(start), Some(end)) = (req.u("start_time"), req.u("end_time")) else {
        return Err(ApiError::new(40058, "start_time and end_time are required"));
    };
    if end < start || end - start > MAX_RANGE_S {
        return Err(ApiError::new(
            40058,
            "the time range must be at most a month, start before end",
        ));
    }
    let filter_type = req.u("filter_type").unwrap_or(2);
    let creator = req.s("creator").filter(|c| !c.is_empty());
    let limit = limit_of(req, 50, 100, true)?;
    let offset = offset_of(req)?;
    let mass = &state.rt.mass;
    let in_range: Vec<&MassMessage> = mass
        .messages
        .iter()
        .filter(|m| chat_type == "single" && m.create_time >= start && m.create_time <= end)
        .filter(|m| match filter_type {
            0 => m.create_type == 0,
            1 => m.create_type == 1,
            _ => true,
        })
        .filter(|m| creator.is_none() || m.creator.as_deref() == creator)
        .collect();
    if in_range.iter().any(|m| req.now_ms < m.dispatched_at_ms) {
        return Err(dispatching());
    }
    let items: Vec<Value> = in_range
        .iter()
        .map(|m| {
            let mut item = json!({
                "msgid": m.msgid,
                "create_time": m.create_time.to_string(),
                "create_type": m.create_type,
                "text": {"content": m.text},
                "attachments": m.attachments,
            });
            if let Some(creator) = &m.creator {
                item["creator"] = json!(creator);
            }
            item
        })
        .collect();
    let (list, next) = page(&items, offset, limit);
    let mut out = Obj::new();
    out.insert("group_msg_list".into(), json!(list));
    out.insert("next_cursor".into(), json!(next));
    Ok(out)
}

/// `get_groupmsg_task`: each member's task of a message.
pub(crate) fn get_groupmsg_task(state: &mut State, req: &Req) -> ApiResult {
    let limit = limit_of(req, 500, 1000, false)?;
    let offset = offset_of(req)?;
    let message = state
        .rt
        .mass
        .dispatched(req.s("msgid").unwrap_or_default(), req.now_ms)?;
    let tasks: Vec<Value> = message
        .tasks
        .iter()
        .map(|t| json!({"userid": t.userid, "status": t.status, "send_time": t.send_time}))
        .collect();
    let (list, next) = page(&tasks, offset, limit);
    let mut out = Obj::new();
    out.insert("task_list".into(), json!(list));
    out.insert("next_cursor".into(), json!(next));
    Ok(out)
}

/// `get_groupmsg_send_result`: one member's customers of a message and what they got.
pub(crate) fn get_groupmsg_send_result(state: &mut State, req: &Req) -> ApiResult {
    let limit = limit_of(req, 500, 1000, false)?;
    let offset = offset_of(req)?;
    let userid = req.s("userid").unwrap_or_default();
    if userid.is_empty() {
        return Err(ApiError::new(40003, "userid is required"));
    }
    let message = state
        .rt
        .mass
        .dispatched(req.s("msgid").unwrap_or_default(), req.now_ms)?;
    let sends: Vec<Value> = message
        .tasks
        .iter()
        .filter(|t| t.userid == userid)
        .flat_map(|t| {
            t.recipients.iter().map(|r| {
                json!({"external_userid": r.external_userid, "userid": t.userid,
                       "status": r.status, "send_time": r.send_time})
            })
        })
        .collect();
    let (list, next) = page(&sends, offset, limit);
    let mut out = Obj::new();
    out.insert("send_list".into(), json!(list));
    out.insert("next_cursor".into(), json!(next));
    Ok(out)
}

/// `remind_groupmsg_send`: reminds the members who have not sent; at most 3 a day.
pub(crate) fn remind_groupmsg_send(state: &mut State, req: &Req) -> ApiResult {
    let now = req.now();
    let msgid = req.s("msgid").unwrap_or_default().to_owned();
    state.rt.mass.get(&msgid)?;
    let index = state.rt.mass.by_id[&msgid];
    let message = &mut state.rt.mass.messages[index];
    let recent = message
        .reminders
        .iter()
        .filter(|t| **t + 86_400 > now)
        .count();
    if recent >= REMINDERS_PER_DAY {
        return Err(ApiError::new(
            45009,
            format!("api freq out of limit: {REMINDERS_PER_DAY} reminders a message a day"),
        ));
    }
    message.reminders.push(now);
    Ok(Obj::new())
}

/// `cancel_groupmsg_send`: members who have not sent can no longer.
pub(crate) fn cancel_groupmsg_send(state: &mut State, req: &Req) -> ApiResult {
    let msgid = req.s("msgid").unwrap_or_default().to_owned();
    state.rt.mass.get(&msgid)?;
    let index = state.rt.mass.by_id[&msgid];
    state.rt.mass.messages[index].cancelled = true;
    Ok(Obj::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_china_time() {
        // 2026-12-07 00:30 in China = 2026-12-06 16:30 UTC
        let now = 1_796_574_600;
        let (start, limit) = window(ReceiveCap::OneADay, now);
        assert_eq!(limit, 1);
        assert_eq!(start, 1_796_572_800); // 2026-12-06 16:00 UTC = 12-07 00:00 China
        let (monday, limit) = window(ReceiveCap::SevenAWeek, now);
        assert_eq!(limit, 7);
        assert_eq!(monday, start); // 2026-12-07 is a Monday
        let (first, limit) = window(ReceiveCap::DaysInMonth, now);
        assert_eq!(limit, 31);
        assert_eq!(first, start - 6 * 86_400);
    }
}
