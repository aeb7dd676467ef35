//! Customer group chats: `groupchat/list`, `groupchat/get` and the 「加入群聊」 join ways
//! (`groupchat/add_join_way`, `get_join_way`, `update_join_way`, `del_join_way`).
//! Chats change through the arrangements at the end (`Standin::chat_created` and friends), which
//! push `change_external_chat` as WeCom does.

use serde_json::{Value, json};

use crate::Standin;
use crate::callbacks::{StandinError, cdata};
use crate::corp::{ChatMember, GroupChat};
use crate::server::{
    ApiError, ApiResult, Obj, Req, State, decode_cursor, encode_cursor, random_string,
};

/// A 「加入群聊」 configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinWay {
    pub config_id: String,
    pub scene: u8,
    pub remark: String,
    pub auto_create_room: u8,
    pub room_base_name: String,
    pub room_base_id: u64,
    pub chat_id_list: Vec<String>,
    pub state: String,
    pub qr_code: String,
}

/// How many members a chat may have for people to join it by QR (WeCom's rule).
pub const QR_JOIN_LIMIT: usize = 200;

/// `groupchat/list` {status_filter, owner_filter{userid_list ≤100}, cursor, limit 1–1000}.
pub(crate) fn list(state: &mut State, req: &Req) -> ApiResult {
    let limit = req.u("limit").unwrap_or(0);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(40058, "invalid limit: 1 to 1000, required"));
    }
    let owners = crate::server::strs(req.body.pointer("/owner_filter/userid_list"));
    if owners.len() > 100 {
        return Err(ApiError::new(40058, "owner_filter.userid_list exceeds 100"));
    }
    let status = req.u("status_filter").unwrap_or(0);
    let after = match req.s("cursor").filter(|c| !c.is_empty()) {
        Some(c) => decode_cursor(c)?,
        None => String::new(),
    };
    let mut chats: Vec<&GroupChat> = state
        .corp
        .chats
        .values()
        .filter(|c| !c.dismissed && c.chat_id.as_str() > after.as_str())
        .filter(|c| owners.is_empty() || owners.contains(&c.owner))
        .filter(|c| status == 0 || u64::from(c.status) == status)
        .take(limit as usize + 1)
        .collect();
    let next = if chats.len() > limit as usize {
        chats.truncate(limit as usize);
        encode_cursor(&chats[chats.len() - 1].chat_id)
    } else {
        String::new()
    };
    let list: Vec<Value> = chats
        .iter()
        .map(|c| json!({"chat_id": c.chat_id, "status": c.status}))
        .collect();
    let mut out = Obj::new();
    out.insert("group_chat_list".into(), Value::Array(list));
    out.insert("next_cursor".into(), json!(next));
    Ok(out)
}

pub(crate) fn chat_json(c: &GroupChat, need_name: bool) -> Value {
    let members: Vec<Value> = c
        .member_list
        .iter()
        .map(|m| {
            let mut v = json!({
                "userid": m.userid, "type": m.type_, "join_time": m.join_time,
                "join_scene": m.join_scene, "group_nickname": m.group_nickname,
            });
            if let Some(u) = &m.unionid {
                v["unionid"] = json!(u);
            }
            if let Some(i) = &m.invitor {
                v["invitor"] = json!({"userid": i});
            }
            if let Some(s) = &m.state {
                v["state"] = json!(s);
            }
            if need_name {
                v["name"] = json!(m.name);
            }
            v
        })
        .collect();
    let admins: Vec<Value> = c.admin_list.iter().map(|u| json!({"userid": u})).collect();
    json!({
        "chat_id": c.chat_id, "name": c.name, "owner": c.owner, "create_time": c.create_time,
        "notice": c.notice, "member_list": members, "admin_list": admins,
        "member_version": c.member_version,
    })
}

pub(crate) fn get(state: &mut State, req: &Req) -> ApiResult {
    let id = req.s("chat_id").unwrap_or_default();
    let chat = state
        .corp
        .chats
        .get(id)
        .filter(|c| !c.dismissed)
        .ok_or_else(|| ApiError::new(40050, format!("chatid not found: {id:?}")))?;
    let mut out = Obj::new();
    out.insert(
        "group_chat".into(),
        chat_json(chat, req.u("need_name") == Some(1)),
    );
    Ok(out)
}

fn apply(way: &mut JoinWay, req: &Req) {
    if let Some(v) = req.u("scene") {
        way.scene = u8::try_from(v).unwrap_or(u8::MAX);
    }
    if let Some(v) = req.s("remark") {
        way.remark = v.to_owned();
    }
    if let Some(v) = req.u("auto_create_room") {
        way.auto_create_room = u8::from(v != 0);
    }
    if let Some(v) = req.s("room_base_name") {
        way.room_base_name = v.to_owned();
    }
    if let Some(v) = req.u("room_base_id") {
        way.room_base_id = v;
    }
    if req.has("chat_id_list") {
        way.chat_id_list = req.strs("chat_id_list");
    }
    if let Some(v) = req.s("state") {
        way.state = v.to_owned();
    }
}

fn check(state: &State, way: &JoinWay) -> Result<(), ApiError> {
    if !matches!(way.scene, 1 | 2) {
        return Err(ApiError::new(
            41040,
            format!("invalid scene: {}", way.scene),
        ));
    }
    if way.remark.chars().count() > 30 || way.state.chars().count() > 30 {
        return Err(ApiError::new(
            40058,
            "remark and state are at most 30 characters",
        ));
    }
    if way.chat_id_list.is_empty() || way.chat_id_list.len() > 5 {
        return Err(ApiError::new(40058, "chat_id_list needs 1 to 5 chats"));
    }
    if let Some(c) = way
        .chat_id_list
        .iter()
        .find(|c| !state.corp.chats.contains_key(*c))
    {
        return Err(ApiError::new(40050, format!("chatid not found: {c:?}")));
    }
    Ok(())
}

pub(crate) fn add_join_way(state: &mut State, req: &Req) -> ApiResult {
    let mut way = JoinWay {
        config_id: random_string(32, b"0123456789abcdef"),
        scene: 0,
        remark: String::new(),
        auto_create_room: 1,
        room_base_name: String::new(),
        room_base_id: 0,
        chat_id_list: Vec::new(),
        state: String::new(),
        qr_code: String::new(),
    };
    if !req.has("scene") {
        return Err(ApiError::new(41038, "missing scene"));
    }
    apply(&mut way, req);
    check(state, &way)?;
    if way.scene == 2 {
        way.qr_code = state.qr_image_url(&way.config_id);
    }
    let id = way.config_id.clone();
    state.rt.join_ways.insert(id.clone(), way);
    let mut out = Obj::new();
    out.insert("config_id".into(), json!(id));
    Ok(out)
}

fn config_id(req: &Req) -> Result<&str, ApiError> {
    req.s("config_id")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::code(41043))
}

pub(crate) fn get_join_way(state: &mut State, req: &Req) -> ApiResult {
    let w = state
        .rt
        .join_ways
        .get(config_id(req)?)
        .ok_or_else(|| ApiError::code(41044))?;
    let mut out = Obj::new();
    out.insert(
        "join_way".into(),
        json!({"config_id": w.config_id, "scene": w.scene, "remark": w.remark,
               "auto_create_room": w.auto_create_room, "room_base_name": w.room_base_name,
               "room_base_id": w.room_base_id, "chat_id_list": w.chat_id_list,
               "qr_code": w.qr_code, "state": w.state}),
    );
    Ok(out)
}

pub(crate) fn update_join_way(state: &mut State, req: &Req) -> ApiResult {
    let id = config_id(req)?;
    let mut way = state
        .rt
        .join_ways
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::code(41044))?;
    apply(&mut way, req);
    check(state, &way)?;
    state.rt.join_ways.insert(id.to_owned(), way);
    Ok(Obj::new())
}

pub(crate) fn del_join_way(state: &mut State, req: &Req) -> ApiResult {
    state
        .rt
        .join_ways
        .remove(config_id(req)?)
        .ok_or_else(|| ApiError::code(41044))?;
    Ok(Obj::new())
}

/// People changing group chats in the app, and the `change_external_chat` callbacks.
impl Standin {
    /// A member creates a customer group: `change_external_chat` create.
    pub async fn chat_created(&self, chat: GroupChat) -> Result<u16, StandinError> {
        let chat_id = chat.chat_id.clone();
        self.shared.lock().corp.chats.insert(chat_id.clone(), chat);
        let xml = self.event_now(
            "change_external_chat",
            "create",
            &[("ChatId", &chat_id)],
            "",
        );
        self.push_raw(&xml).await
    }

    fn change_members(
        &self,
        chat_id: &str,
        change: impl FnOnce(&mut GroupChat) -> Vec<String>,
    ) -> Result<(Vec<String>, String, String), StandinError> {
        let mut st = self.shared.lock();
        let chat = st
            .corp
            .chats
            .get_mut(chat_id)
            .filter(|c| !c.dismissed)
            .ok_or_else(|| StandinError::NotFound(format!("no group chat {chat_id}")))?;
        let changed = change(chat);
        let last = std::mem::replace(
            &mut chat.member_version,
            random_string(32, b"0123456789abcdef"),
        );
        Ok((changed, last, chat.member_version.clone()))
    }

    async fn push_member_change(
        &self,
        chat_id: &str,
        detail: &str,
        scene: (&str, String),
        (changed, last, current): (Vec<String>, String, String),
    ) -> Result<u16, StandinError> {
        let items: String = changed
            .iter()
            .map(|u| format!("<Item>{}</Item>", cdata(u)))
            .collect();
        let raw = format!(
            "<{0}>{1}</{0}><MemChangeCnt>{2}</MemChangeCnt><MemChangeList>{items}</MemChangeList>\
             <LastMemVer>{3}</LastMemVer><CurMemVer>{4}</CurMemVer>",
            scene.0,
            scene.1,
            changed.len(),
            cdata(&last),
            cdata(&current)
        );
        let fields = [("ChatId", chat_id), ("UpdateDetail", detail)];
        let xml = self.event_now("change_external_chat", "update", &fields, &raw);
        self.push_raw(&xml).await
    }

    /// A customer scans a join way's QR and joins as WeCom seats them: in the first chat
    /// of the way's list with room (fewer than [`QR_JOIN_LIMIT`] members), or, when all
    /// are full and the way creates rooms, in a new chat named `room_base_name` +
    /// `room_base_id` (which then counts up), owned by the owner of the way's last chat
    /// and added to the way (`change_external_chat` create is pushed first). The member
    /// carries the way's `state` (join scene 3, QR) and `add_member` is pushed. Answers
    /// the chat joined.
    pub async fn join_by_way(
        &self,
        config_id: &str,
        external_userid: &str,
        name: &str,
    ) -> Result<String, StandinError> {
        let (seat, way, now_s) =
            {
                let st = self.shared.lock();
                let way =
                    st.rt.join_ways.get(config_id).cloned().ok_or_else(|| {
                        StandinError::NotFound(format!("no join way {config_id}"))
                    })?;
                let seat =
                    way.chat_id_list
                        .iter()
                        .find(|id| {
                            st.corp.chats.get(*id).is_some_and(|c| {
                                !c.dismissed && c.member_list.len() < QR_JOIN_LIMIT
                            })
                        })
                        .cloned();
                (seat, way, st.rt.now_ms() / 1_000)
            };
        let chat_id = match seat {
            Some(chat_id) => chat_id,
            None if way.auto_create_room == 1 => {
                let owner = {
                    let st = self.shared.lock();
                    way.chat_id_list
                        .last()
                        .and_then(|id| st.corp.chats.get(id))
                        .map(|c| c.owner.clone())
                        .ok_or_else(|| StandinError::NotFound("a way with no chat".into()))?
                };
                let chat_id = format!("wr{}{}", way.config_id, way.room_base_id);
                {
                    let mut st = self.shared.lock();
                    if let Some(way) = st.rt.join_ways.get_mut(config_id) {
                        way.room_base_id += 1;
                        way.chat_id_list.push(chat_id.clone());
                        if way.chat_id_list.len() > 5 {
                            way.chat_id_list.remove(0);
                        }
                    }
                }
                self.chat_created(GroupChat {
                    chat_id: chat_id.clone(),
                    name: format!("{}{}", way.room_base_name, way.room_base_id),
                    owner: owner.clone(),
                    create_time: now_s,
                    member_list: vec![ChatMember {
                        userid: owner,
                        type_: 1,
                        join_time: now_s,
                        join_scene: 1,
                        ..ChatMember::default()
                    }],
                    member_version: random_string(32, b"0123456789abcdef"),
                    ..GroupChat::default()
                })
                .await?;
                chat_id
            }
            None => {
                return Err(StandinError::NotFound(format!(
                    "every chat of join way {config_id} is full"
                )));
            }
        };
        self.chat_members_join(
            &chat_id,
            vec![ChatMember {
                userid: external_userid.to_owned(),
                type_: 2,
                join_time: now_s,
                join_scene: 3,
                name: name.to_owned(),
                state: Some(way.state.clone()).filter(|s| !s.is_empty()),
                ..ChatMember::default()
            }],
        )
        .await?;
        Ok(chat_id)
    }

    /// People join a group: `change_external_chat` update `add_member`.
    pub async fn chat_members_join(
        &self,
        chat_id: &str,
        members: Vec<ChatMember>,
    ) -> Result<u16, StandinError> {
        let scene = members
            .first()
            .map_or(0, |m| if m.join_scene == 3 { 3 } else { 0 });
        let change = self.change_members(chat_id, |chat| {
            let ids = members.iter().map(|m| m.userid.clone()).collect();
            chat.member_list.extend(members);
            ids
        })?;
        self.push_member_change(
            chat_id,
            "add_member",
            ("JoinScene", scene.to_string()),
            change,
        )
        .await
    }

    /// People leave a group (by themselves): `change_external_chat` update `del_member`.
    pub async fn chat_members_quit(
        &self,
        chat_id: &str,
        userids: &[&str],
    ) -> Result<u16, StandinError> {
        let change = self.change_members(chat_id, |chat| {
            chat.member_list
                .retain(|m| !userids.contains(&m.userid.as_str()));
            userids.iter().map(|s| s.to_string()).collect()
        })?;
        self.push_member_change(chat_id, "del_member", ("QuitScene", "0".into()), change)
            .await
    }

    /// The owner dismisses a group: `change_external_chat` dismiss.
    pub async fn chat_dismissed(&self, chat_id: &str) -> Result<u16, StandinError> {
        {
            let mut st = self.shared.lock();
            let chat = st
                .corp
                .chats
                .get_mut(chat_id)
                .filter(|c| !c.dismissed)
                .ok_or_else(|| StandinError::NotFound(format!("no group chat {chat_id}")))?;
            chat.dismissed = true;
        }
        let xml = self.event_now(
            "change_external_chat",
            "dismiss",
            &[("ChatId", chat_id)],
            "",
        );
        self.push_raw(&xml).await
    }
}
