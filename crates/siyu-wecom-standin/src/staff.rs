//! Staff sync: `user/get`, `user/list_id`, `user/simplelist`, `department/list`,
//! `department/simplelist` — what siyu reads to know the members who own customers.
//! Members who left (status 5) answer 60111 in `user/get`, as WeCom's do.

use serde_json::{Value, json};

use crate::corp::{Department, Member};
use crate::server::{ApiError, ApiResult, Obj, Req, State, decode_cursor, encode_cursor};

fn member_json(m: &Member) -> Value {
    json!({
        "userid": m.userid,
        "name": m.name,
        "department": m.department,
        "order": vec![0; m.department.len()],
        "position": "",
        "status": m.status,
        "main_department": m.main_department,
        "is_leader_in_dept": vec![0; m.department.len()],
        "isleader": 0,
        "enable": u8::from(m.status != 2),
        "hide_mobile": 0,
        "open_userid": format!("wo{}", m.userid),
    })
}

pub(crate) fn user_get(state: &mut State, req: &Req) -> ApiResult {
    let userid = req.q("userid").unwrap_or_default();
    let member = state
        .corp
        .members
        .get(userid)
        .filter(|m| m.status != 5)
        .ok_or_else(|| ApiError::new(60111, format!("userid not found: {userid:?}")))?;
    match member_json(member) {
        Value::Object(o) => Ok(o),
        _ => unreachable!("an object"),
    }
}

/// `user/list_id` {cursor, limit 1–10,000}: one row per (member, department), members in
/// userid order; the cursor is the last userid returned.
pub(crate) fn user_list_id(state: &mut State, req: &Req) -> ApiResult {
    let limit = req.u("limit").unwrap_or(10_000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::new(40058, "invalid limit: 1 to 10000"));
    }
    let after = match req.s("cursor").filter(|c| !c.is_empty()) {
        Some(c) => Some(decode_cursor(c)?),
        None => None,
    };
    let range: Box<dyn Iterator<Item = &Member>> = match &after {
        Some(a) => Box::new(
            state
                .corp
                .members
                .range::<String, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
                .map(|(_, m)| m),
        ),
        None => Box::new(state.corp.members.values()),
    };
    let mut rows = Vec::new();
    let mut last = None;
    let mut more = false;
    for (n, m) in range.filter(|m| m.status != 5).enumerate() {
        if n as u64 == limit {
            more = true;
            break;
        }
        for d in &m.department {
            rows.push(json!({"userid": m.userid, "department": d}));
        }
        last = Some(m.userid.clone());
    }
    let mut out = Obj::new();
    out.insert("dept_user".into(), Value::Array(rows));
    let next = match (more, last) {
        (true, Some(l)) => encode_cursor(&l),
        _ => String::new(),
    };
    out.insert("next_cursor".into(), json!(next));
    Ok(out)
}

/// The department and, with `children`, every department under it.
fn subtree(
    departments: &std::collections::BTreeMap<u64, Department>,
    id: u64,
    children: bool,
) -> Vec<u64> {
    let mut out = vec![id];
    if children {
        let mut i = 0;
        while i < out.len() {
            let parent = out[i];
            out.extend(
                departments
                    .values()
                    .filter(|d| d.parentid == parent && d.id != parent)
                    .map(|d| d.id),
            );
            i += 1;
        }
    }
    out
}

fn department_param(state: &State, req: &Req, key: &str) -> Result<Option<u64>, ApiError> {
    match req.q(key).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => {
            let id: u64 = s
                .parse()
                .map_err(|_| ApiError::new(60123, format!("invalid party id: {s:?}")))?;
            if !state.corp.departments.contains_key(&id) {
                return Err(ApiError::new(60123, format!("invalid party id: {id}")));
            }
            Ok(Some(id))
        }
    }
}

pub(crate) fn user_simplelist(state: &mut State, req: &Req) -> ApiResult {
    let Some(id) = department_param(state, req, "department_id")? else {
        return Err(ApiError::new(40058, "department_id missing"));
    };
    let ids = subtree(
        &state.corp.departments,
        id,
        req.q("fetch_child") == Some("1"),
    );
    let users: Vec<Value> = state
        .corp
        .members
        .values()
        .filter(|m| m.status != 5 && m.department.iter().any(|d| ids.contains(d)))
        .map(|m| {
            json!({"userid": m.userid, "name": m.name, "department": m.department,
                   "open_userid": format!("wo{}", m.userid)})
        })
        .collect();
    let mut out = Obj::new();
    out.insert("userlist".into(), Value::Array(users));
    Ok(out)
}

fn departments_in(state: &State, req: &Req) -> Result<Vec<Department>, ApiError> {
    let ids = match department_param(state, req, "id")? {
        Some(id) => subtree(&state.corp.departments, id, true),
        None => state.corp.departments.keys().copied().collect(),
    };
    Ok(ids
        .iter()
        .filter_map(|id| state.corp.departments.get(id).cloned())
        .collect())
}

pub(crate) fn department_list(state: &mut State, req: &Req) -> ApiResult {
    let list: Vec<Value> = departments_in(state, req)?
        .iter()
        .map(|d| {
            json!({"id": d.id, "name": d.name, "name_en": "", "department_leader": [],
                   "parentid": d.parentid, "order": d.order})
        })
        .collect();
    let mut out = Obj::new();
    out.insert("department".into(), Value::Array(list));
    Ok(out)
}

pub(crate) fn department_simplelist(state: &mut State, req: &Req) -> ApiResult {
    let list: Vec<Value> = departments_in(state, req)?
        .iter()
        .map(|d| json!({"id": d.id, "parentid": d.parentid, "order": d.order}))
        .collect();
    let mut out = Obj::new();
    out.insert("department_id".into(), Value::Array(list));
    Ok(out)
}
