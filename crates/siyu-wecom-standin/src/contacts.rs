//! Customers: `get_follow_user_list`, `list`, `get`, `batch/get_by_user` and `remark`.
//!
//! `batch/get_by_user` is what a full sync pages through (100,000 customers in the
//! benchmark), so a page costs O(page): its cursor holds the index of the member in
//! `userid_list` and the `external_userid` after which to continue, and each member's
//! relations are a `BTreeMap` read from there. A customer added between pages is met
//! once if it sorts after the cursor and not at all otherwise; none is met twice.

use std::ops::Bound;

use serde_json::{Value, json};

use crate::corp::{Corp, ExternalContact, FollowInfo};
use crate::server::{ApiError, ApiResult, Obj, Req, State, decode_cursor, encode_cursor};

pub(crate) fn contact_json(c: &ExternalContact) -> Value {
    let mut v = json!({
        "external_userid": c.external_userid,
        "name": c.name,
        "position": c.position,
        "avatar": c.avatar,
        "corp_name": c.corp_name,
        "corp_full_name": c.corp_full_name,
        "type": c.type_,
        "gender": c.gender,
    });
    if let Some(u) = &c.unionid {
        v["unionid"] = json!(u);
    }
    v
}

/// `follow_user` item of `externalcontact/get`: tags with their names and types.
fn follow_user_json(corp: &Corp, userid: &str, f: &FollowInfo) -> Value {
    let mut tags: Vec<Value> = f
        .tag_ids
        .iter()
        .filter_map(|id| corp.live_tag(id))
        .map(|t| {
            let group_name = corp
                .tag_groups
                .get(&t.group_id)
                .map(|g| g.group_name.as_str())
                .unwrap_or_default();
            json!({"group_name": group_name, "tag_name": t.name, "tag_id": t.id, "type": 1})
        })
        .collect();
    tags.extend(
        f.personal_tags
            .iter()
            .map(|name| json!({"group_name": "", "tag_name": name, "type": 2})),
    );
    json!({
        "userid": userid,
        "remark": f.remark,
        "description": f.description,
        "createtime": f.createtime,
        "tags": tags,
        "remark_corp_name": f.remark_corp_name,
        "remark_mobiles": f.remark_mobiles,
        "oper_userid": f.oper_userid,
        "add_way": f.add_way,
        "state": f.state,
    })
}

/// `follow_info` of `batch/get_by_user`: corp tag ids only.
fn follow_info_json(corp: &Corp, userid: &str, f: &FollowInfo) -> Value {
    let tag_id: Vec<&str> = f
        .tag_ids
        .iter()
        .filter(|id| corp.live_tag(id).is_some())
        .map(String::as_str)
        .collect();
    json!({
        "userid": userid,
        "remark": f.remark,
        "description": f.description,
        "createtime": f.createtime,
        "tag_id": tag_id,
        "remark_corp_name": f.remark_corp_name,
        "remark_mobiles": f.remark_mobiles,
        "oper_userid": f.oper_userid,
        "add_way": f.add_way,
        "state": f.state,
    })
}

pub(crate) fn get_follow_user_list(state: &mut State, _req: &Req) -> ApiResult {
    let users: Vec<&str> = state
        .corp
        .members
        .values()
        .filter(|m| m.customer_contact && m.status == 1)
        .map(|m| m.userid.as_str())
        .collect();
    let mut out = Obj::new();
    out.insert("follow_user".into(), json!(users));
    Ok(out)
}

pub(crate) fn list(state: &mut State, req: &Req) -> ApiResult {
    let userid = req.q("userid").unwrap_or_default();
    if !state.corp.members.contains_key(userid) {
        return Err(ApiError::new(40003, format!("invalid userid: {userid:?}")));
    }
    let ids = state.corp.customers_of(userid);
    if ids.is_empty() {
        return Err(ApiError::new(
            84061,
            format!("not external contact: {userid} has no customers"),
        ));
    }
    let mut out = Obj::new();
    out.insert("external_userid".into(), json!(ids));
    Ok(out)
}

/// Followers per page of `externalcontact/get`.
const FOLLOW_PAGE: usize = 500;

pub(crate) fn get(state: &mut State, req: &Req) -> ApiResult {
    let id = req
        .q("external_userid")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::code(41035))?;
    let corp = &state.corp;
    let contact = corp
        .contacts
        .get(id)
        .ok_or_else(|| ApiError::new(40096, format!("invalid external userid: {id:?}")))?;
    let followers = corp.followers_of(id);
    if followers.is_empty() {
        return Err(ApiError::new(
            84061,
            format!("not external contact: nobody follows {id}"),
        ));
    }
    let start: usize = match req.q("cursor").filter(|c| !c.is_empty()) {
        Some(c) => decode_cursor(c)?
            .parse()
            .map_err(|_| ApiError::code(50100))?,
        None => 0,
    };
    let page: Vec<Value> = followers
        .iter()
        .skip(start)
        .take(FOLLOW_PAGE)
        .filter_map(|u| Some(follow_user_json(corp, u, corp.relation(u, id)?)))
        .collect();
    let next = if start + FOLLOW_PAGE < followers.len() {
        encode_cursor(&(start + FOLLOW_PAGE).to_string())
    } else {
        String::new()
    };
    let mut out = Obj::new();
    out.insert("external_contact".into(), contact_json(contact));
    out.insert("follow_user".into(), Value::Array(page));
    out.insert("next_cursor".into(), json!(next));
    Ok(out)
}

pub(crate) fn batch_get_by_user(state: &mut State, req: &Req) -> ApiResult {
    let mut users = req.strs("userid_list");
    if users.is_empty() {
        return Err(ApiError::new(40058, "userid_list missing"));
    }
    if users.len() > 100 {
        return Err(ApiError::new(40058, "userid_list exceeds 100"));
    }
    let mut seen = std::collections::HashSet::new();
    users.retain(|u| seen.insert(u.clone()));
    let limit = match req.u("limit") {
        None | Some(0) => 50,
        Some(n) => n.min(100) as usize,
    };
    let (mut i, mut after) = match req.s("cursor").filter(|c| !c.is_empty()) {
        None => (0, None),
        Some(c) => {
            let pos = decode_cursor(c)?;
            let (idx, after) = pos.split_once('|').ok_or_else(|| ApiError::code(50100))?;
            let idx: usize = idx.parse().map_err(|_| ApiError::code(50100))?;
            if idx >= users.len() {
                return Err(ApiError::new(50100, "invalid cursor for this userid_list"));
            }
            (idx, Some(after.to_owned()))
        }
    };
    let corp = &state.corp;
    let mut items = Vec::with_capacity(limit);
    let mut next = String::new();
    while i < users.len() {
        let userid = &users[i];
        if let Some(rel) = corp.relations.get(userid) {
            let range = match &after {
                Some(a) => rel.range::<String, _>((Bound::Excluded(a), Bound::Unbounded)),
                None => rel.range::<String, _>(..),
            };
            let mut last = None;
            for (ext, info) in range.take(limit - items.len()) {
                let Some(contact) = corp.contacts.get(ext) else {
                    continue;
                };
                items.push(json!({
                    "external_contact": contact_json(contact),
                    "follow_info": follow_info_json(corp, userid, info),
                }));
                last = Some(ext);
            }
            if items.len() == limit {
                let last = last.cloned().or_else(|| after.clone()).unwrap_or_default();
                let more_here = rel
                    .range::<String, _>((Bound::Excluded(&last), Bound::Unbounded))
                    .next()
                    .is_some();
                let more_later = users[i + 1..]
                    .iter()
                    .any(|u| corp.relations.get(u).is_some_and(|r| !r.is_empty()));
                if more_here {
                    next = encode_cursor(&format!("{i}|{last}"));
                } else if more_later {
                    // an empty "after": the next member from its first customer
                    next = encode_cursor(&format!("{}|", i + 1));
                }
                break;
            }
        }
        i += 1;
        after = None;
    }
    let mut out = Obj::new();
    out.insert("external_contact_list".into(), Value::Array(items));
    out.insert("next_cursor".into(), json!(next));
    Ok(out)
}

/// `remark`: fields left out stay as they were.
pub(crate) fn remark(state: &mut State, req: &Req) -> ApiResult {
    let userid = req.s("userid").unwrap_or_default().to_owned();
    let ext = req.s("external_userid").unwrap_or_default().to_owned();
    if ext.is_empty() {
        return Err(ApiError::code(41035));
    }
    let checks = [("remark", 20), ("description", 150), ("remark_company", 20)];
    for (field, max) in checks {
        if req.s(field).is_some_and(|s| s.chars().count() > max) {
            return Err(ApiError::new(
                40058,
                format!("{field} exceeds {max} characters"),
            ));
        }
    }
    let is_wechat = state.corp.contacts.get(&ext).map(|c| c.type_ == 1);
    if is_wechat.is_none() {
        return Err(ApiError::new(
            40096,
            format!("invalid external userid: {ext:?}"),
        ));
    }
    let f = state.corp.relation_mut(&userid, &ext).ok_or_else(|| {
        ApiError::new(
            84061,
            format!("not external contact: {ext} is not {userid}'s customer"),
        )
    })?;
    if let Some(s) = req.s("remark") {
        f.remark = s.to_owned();
    }
    if let Some(s) = req.s("description") {
        f.description = s.to_owned();
    }
    if let Some(s) = req.s("remark_company")
        && is_wechat == Some(true)
    {
        f.remark_corp_name = s.to_owned();
    }
    if req.has("remark_mobiles") {
        f.remark_mobiles = req.strs("remark_mobiles");
    }
    Ok(Obj::new())
}
