//! Corp tags: `get_corp_tag_list`, `add_corp_tag`, `edit_corp_tag`, `del_corp_tag` and
//! `mark_tag`. Ids look like WeCom's (`etGRP000001`, `etTAG000001`); deleted tags are
//! kept with a flag because filtered queries still show them. Changes made through these
//! APIs push no callback (WeCom's rule); the admin's changes in the app do, see
//! `Standin::admin_adds_tag` and friends.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::corp::{Corp, Tag, TagGroup};
use crate::server::{ApiError, ApiResult, Obj, Req, State};

/// Most corp tags a corp may have.
pub(crate) const MAX_TAGS: usize = 3_000;
const MAX_NAME: usize = 30;

fn tag_json(t: &Tag, with_deleted: bool) -> Value {
    let mut v = json!({"id": t.id, "name": t.name, "create_time": t.create_time, "order": t.order});
    if with_deleted {
        v["deleted"] = json!(t.deleted);
    }
    v
}

fn group_json(g: &TagGroup, tags: Vec<Value>, with_deleted: bool) -> Value {
    let mut v = json!({"group_id": g.group_id, "group_name": g.group_name,
                       "create_time": g.create_time, "order": g.order, "tag": tags});
    if with_deleted {
        v["deleted"] = json!(g.deleted);
    }
    v
}

/// Both filters empty: every live group with its live tags, no `deleted` flag. With
/// `group_id`: those groups and all their tags, flagged; else with `tag_id`: those tags
/// under their groups, flagged.
pub(crate) fn get_corp_tag_list(state: &mut State, req: &Req) -> ApiResult {
    let corp = &state.corp;
    let group_ids = req.strs("group_id");
    let tag_ids = req.strs("tag_id");
    let groups: Vec<Value> = if !group_ids.is_empty() {
        group_ids
            .iter()
            .filter_map(|id| corp.tag_groups.get(id))
            .map(|g| {
                let tags = g
                    .tag_ids
                    .iter()
                    .filter_map(|t| corp.tags.get(t))
                    .map(|t| tag_json(t, true));
                group_json(g, tags.collect(), true)
            })
            .collect()
    } else if !tag_ids.is_empty() {
        corp.tag_groups
            .values()
            .filter_map(|g| {
                let tags: Vec<Value> = g
                    .tag_ids
                    .iter()
                    .filter(|t| tag_ids.contains(t))
                    .filter_map(|t| corp.tags.get(t))
                    .map(|t| tag_json(t, true))
                    .collect();
                (!tags.is_empty()).then(|| group_json(g, tags, true))
            })
            .collect()
    } else {
        corp.tag_groups
            .values()
            .filter(|g| !g.deleted)
            .map(|g| {
                let tags = g
                    .tag_ids
                    .iter()
                    .filter_map(|t| corp.live_tag(t))
                    .map(|t| tag_json(t, false));
                group_json(g, tags.collect(), false)
            })
            .collect()
    };
    let mut out = Obj::new();
    out.insert("tag_group".into(), Value::Array(groups));
    Ok(out)
}

fn check_name(name: &str, what: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::new(40058, format!("{what} is empty")));
    }
    if name.chars().count() > MAX_NAME {
        return Err(ApiError::new(
            40058,
            format!("{what} exceeds {MAX_NAME} characters"),
        ));
    }
    Ok(())
}

pub(crate) fn add_corp_tag(state: &mut State, req: &Req) -> ApiResult {
    let now = req.now();
    let mut names: Vec<(String, u64)> = Vec::new();
    for t in req
        .body
        .get("tag")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = t.get("name").and_then(Value::as_str).unwrap_or_default();
        check_name(name, "tag name")?;
        if !names.iter().any(|(n, _)| n == name) {
            let order = t.get("order").and_then(Value::as_u64).unwrap_or(0);
            names.push((name.to_owned(), order));
        }
    }
    if names.is_empty() {
        return Err(ApiError::new(
            40058,
            "tag missing: a group may not be empty",
        ));
    }
    let corp = &mut state.corp;
    let existing_group = match req.s("group_id").filter(|s| !s.is_empty()) {
        Some(id) => Some(
            corp.tag_groups
                .get(id)
                .filter(|g| !g.deleted)
                .ok_or_else(|| ApiError::new(40068, format!("invalid tagid: group {id:?}")))?
                .group_id
                .clone(),
        ),
        None => {
            let name = req.s("group_name").unwrap_or_default();
            check_name(name, "group_name")?;
            corp.tag_groups
                .values()
                .find(|g| !g.deleted && g.group_name == name)
                .map(|g| g.group_id.clone())
        }
    };
    if let Some(gid) = &existing_group {
        let group = &corp.tag_groups[gid];
        let taken: HashSet<&str> = group
            .tag_ids
            .iter()
            .filter_map(|t| corp.live_tag(t))
            .map(|t| t.name.as_str())
            .collect();
        if let Some((n, _)) = names.iter().find(|(n, _)| taken.contains(n.as_str())) {
            return Err(ApiError::new(
                40071,
                format!("tag name exists in this group: {n}"),
            ));
        }
    }
    if corp.live_tag_count() + names.len() > MAX_TAGS {
        return Err(ApiError::new(
            40126,
            format!("corp tag count exceed limit ({MAX_TAGS})"),
        ));
    }
    let gid = match existing_group {
        Some(g) => g,
        None => corp.create_group(
            req.s("group_name").unwrap_or_default(),
            req.u("order").unwrap_or(0),
            now,
        ),
    };
    let created: Vec<Value> = names
        .iter()
        .map(|(name, order)| {
            let id = corp.create_tag(&gid, name, *order, now);
            tag_json(&corp.tags[&id], false)
        })
        .collect();
    let group = &corp.tag_groups[&gid];
    let mut out = Obj::new();
    out.insert("tag_group".into(), group_json(group, created, false));
    Ok(out)
}

pub(crate) fn edit_corp_tag(state: &mut State, req: &Req) -> ApiResult {
    let id = req.s("id").unwrap_or_default();
    if let Some(name) = req.s("name") {
        check_name(name, "name")?;
    }
    let corp = &mut state.corp;
    if let Some(tag) = corp.tags.get_mut(id).filter(|t| !t.deleted) {
        if let Some(name) = req.s("name") {
            tag.name = name.to_owned();
        }
        if let Some(order) = req.u("order") {
            tag.order = order;
        }
    } else if let Some(group) = corp.tag_groups.get_mut(id).filter(|g| !g.deleted) {
        if let Some(name) = req.s("name") {
            group.group_name = name.to_owned();
        }
        if let Some(order) = req.u("order") {
            group.order = order;
        }
    } else {
        return Err(ApiError::new(40068, format!("invalid tagid: {id:?}")));
    }
    Ok(Obj::new())
}

pub(crate) fn del_corp_tag(state: &mut State, req: &Req) -> ApiResult {
    let tag_ids = req.strs("tag_id");
    let group_ids = req.strs("group_id");
    if tag_ids.is_empty() && group_ids.is_empty() {
        return Err(ApiError::new(40058, "tag_id and group_id are both empty"));
    }
    let corp = &mut state.corp;
    for id in &tag_ids {
        corp.live_tag(id)
            .ok_or_else(|| ApiError::new(40068, format!("invalid tagid: {id:?}")))?;
    }
    let mut doomed = tag_ids;
    for gid in &group_ids {
        let group = corp
            .tag_groups
            .get(gid)
            .filter(|g| !g.deleted)
            .ok_or_else(|| ApiError::new(40068, format!("invalid tagid: group {gid:?}")))?;
        doomed.extend(group.tag_ids.iter().cloned());
    }
    corp.delete_tags(&doomed);
    for gid in &group_ids {
        if let Some(g) = corp.tag_groups.get_mut(gid) {
            g.deleted = true;
        }
    }
    Ok(Obj::new())
}

/// Adds and removes corp tags on one relation; shared by `mark_tag` and the member's
/// edits in the app.
pub(crate) fn apply_tags(
    corp: &mut Corp,
    userid: &str,
    ext: &str,
    add: &[String],
    remove: &[String],
) -> Result<(), ApiError> {
    for id in add.iter().chain(remove) {
        corp.live_tag(id)
            .ok_or_else(|| ApiError::new(40068, format!("invalid tagid: {id:?}")))?;
    }
    let f = corp.relation_mut(userid, ext).ok_or_else(|| {
        ApiError::new(
            84061,
            format!("not external contact: {ext} is not {userid}'s customer"),
        )
    })?;
    f.tag_ids.retain(|t| !remove.contains(t));
    for id in add {
        if !f.tag_ids.contains(id) && !remove.contains(id) {
            f.tag_ids.push(id.clone());
        }
    }
    if f.tag_ids.len() > MAX_TAGS {
        f.tag_ids.truncate(MAX_TAGS);
    }
    Ok(())
}

pub(crate) fn mark_tag(state: &mut State, req: &Req) -> ApiResult {
    let add = req.strs("add_tag");
    let remove = req.strs("remove_tag");
    if add.is_empty() && remove.is_empty() {
        return Err(ApiError::new(
            40058,
            "add_tag and remove_tag are both empty",
        ));
    }
    let userid = req.s("userid").unwrap_or_default();
    let ext = req.s("external_userid").unwrap_or_default();
    if ext.is_empty() {
        return Err(ApiError::code(41035));
    }
    if !state.corp.members.contains_key(userid) {
        return Err(ApiError::new(40003, format!("invalid userid: {userid:?}")));
    }
    if !state.corp.contacts.contains_key(ext) {
        return Err(ApiError::new(
            40096,
            format!("invalid external userid: {ext:?}"),
        ));
    }
    apply_tags(&mut state.corp, userid, ext, &add, &remove)?;
    Ok(Obj::new())
}
