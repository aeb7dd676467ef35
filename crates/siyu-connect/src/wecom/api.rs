//! WeCom's API shapes siyu reads and sends (WECOM.md "External contact", "Staff
//! sync", "Welcome message", "Transfers"), as typed calls on [`WecomClient`]. Fields WeCom may leave
//! out default, so an answer with fewer fields still reads.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::client::{WecomClient, WecomHost};
use super::error::WecomError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Department {
    pub id: i64,
    pub name: String,
    pub parentid: i64,
    pub order: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Member {
    pub userid: String,
    pub name: String,
    pub department: Vec<i64>,
    pub main_department: Option<i64>,
    pub position: String,
    /// 1 active, 2 disabled, 4 not activated, 5 left.
    pub status: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct DeptUser {
    pub userid: String,
    pub department: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ExternalContact {
    pub external_userid: String,
    pub name: String,
    pub position: String,
    pub avatar: String,
    pub corp_name: String,
    pub corp_full_name: String,
    /// 1 WeChat, 2 WeCom.
    #[serde(rename = "type")]
    pub contact_type: i64,
    /// 0 unknown, 1 male, 2 female.
    pub gender: i64,
    pub unionid: Option<String>,
}

/// A follow relation as `batch/get_by_user` gives it (corp tag ids only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct FollowInfo {
    pub userid: String,
    pub remark: String,
    pub description: String,
    pub createtime: i64,
    pub tag_id: Vec<String>,
    pub remark_corp_name: String,
    pub remark_mobiles: Vec<String>,
    pub oper_userid: String,
    pub add_way: i64,
    pub state: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ContactWithFollow {
    pub external_contact: ExternalContact,
    pub follow_info: FollowInfo,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ContactsPage {
    pub external_contact_list: Vec<ContactWithFollow>,
    /// Empty when done.
    pub next_cursor: String,
}

/// A tag on a follow relation as `get` gives it: corp (1, with its id), personal (2,
/// no id), rule group (3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct FollowTag {
    pub group_name: String,
    pub tag_name: String,
    pub tag_id: Option<String>,
    #[serde(rename = "type")]
    pub tag_type: i64,
}

/// A follow relation as `get` gives it (with every tag).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct FollowUser {
    pub userid: String,
    pub remark: String,
    pub description: String,
    pub createtime: i64,
    pub tags: Vec<FollowTag>,
    pub oper_userid: String,
    pub add_way: i64,
    pub state: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ContactDetail {
    pub external_contact: ExternalContact,
    pub follow_user: Vec<FollowUser>,
    pub next_cursor: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CorpTag {
    pub id: String,
    pub name: String,
    pub create_time: i64,
    pub order: i64,
    pub deleted: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CorpTagGroup {
    pub group_id: String,
    pub group_name: String,
    pub create_time: i64,
    pub order: i64,
    pub deleted: bool,
    pub tag: Vec<CorpTag>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Departments {
    department: Vec<Department>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeptUsers {
    dept_user: Vec<DeptUser>,
    next_cursor: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FollowUsers {
    follow_user: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TagGroups {
    tag_group: Vec<CorpTagGroup>,
}

/// One customer's answer to `transfer_customer`: 0 started, else why not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TransferStarted {
    pub external_userid: String,
    pub errcode: i64,
}

/// One customer's transfer as `transfer_result` gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TransferState {
    pub external_userid: String,
    /// 1 done, 2 waiting, 3 refused by the customer, 4 takeover at its limit.
    pub status: i64,
    /// Unix seconds: when the takeover happens (0 once refused).
    pub takeover_time: i64,
}

/// A customer of a member who left, not assigned yet (`get_unassigned_list`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct UnassignedContact {
    pub handover_userid: String,
    pub external_userid: String,
    /// Unix seconds.
    pub dimission_time: i64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TransferAnswer {
    customer: Vec<TransferStarted>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TransferResults {
    customer: Vec<TransferState>,
    next_cursor: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UnassignedPage {
    info: Vec<UnassignedContact>,
    is_last: bool,
    next_cursor: String,
}

#[derive(Deserialize)]
pub(crate) struct Nothing {}

/// A 「联系我」 contact way siyu makes for a channel code: a single-member QR code
/// (siyu routes by changing its member) carrying the code's `state`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContactWaySpec {
    /// At most 30 characters.
    pub remark: String,
    pub skip_verify: bool,
    pub state: String,
    /// The member it routes to.
    pub userid: String,
}

/// What `add_contact_way` answers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ContactWayMade {
    pub config_id: String,
    #[serde(default)]
    pub qr_code: Option<String>,
}

/// A group join way (加入群聊) as siyu asks for it: QR scene, the chats it seats people
/// in (at most 5), whether WeCom opens the next room itself when they are full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinWaySpec {
    pub remark: String,
    pub auto_create_room: bool,
    pub room_base_name: String,
    pub room_base_id: i64,
    pub chat_ids: Vec<String>,
    pub state: String,
}

impl JoinWaySpec {
    fn body(&self) -> serde_json::Value {
        let mut body = json!({"scene": 2, "remark": self.remark,
            "auto_create_room": i32::from(self.auto_create_room),
            "chat_id_list": self.chat_ids, "state": self.state});
        if self.auto_create_room {
            body["room_base_name"] = json!(self.room_base_name);
            body["room_base_id"] = json!(self.room_base_id);
        }
        body
    }
}

#[derive(Deserialize)]
struct JoinWayMade {
    config_id: String,
}

/// A join way as `get_join_way` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JoinWayInfo {
    pub config_id: String,
    #[serde(default)]
    pub chat_id_list: Vec<String>,
    #[serde(default)]
    pub qr_code: Option<String>,
    #[serde(default)]
    pub room_base_id: Option<i64>,
}

#[derive(Deserialize)]
struct JoinWayAnswer {
    join_way: JoinWayInfo,
}

/// `transfer_customer` (in office or resigned) takes at most this many customers a call.
pub const CUSTOMERS_PER_TRANSFER: usize = 100;

/// `batch/get_by_user` takes at most this many members per call.
pub const MEMBERS_PER_BATCH: usize = 100;
/// …and answers at most this many relations per page.
pub const CONTACTS_PER_PAGE: u32 = 100;

impl<H: WecomHost> WecomClient<H> {
    /// Every department (`department/list`).
    pub async fn departments(&self) -> Result<Vec<Department>, WecomError> {
        Ok(self
            .get::<Departments>("department/list", &[])
            .await?
            .department)
    }

    /// Every member's userid with a department (`user/list_id`, paged by cursor).
    pub async fn member_ids(&self) -> Result<Vec<DeptUser>, WecomError> {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let page: DeptUsers = self
                .post("user/list_id", &json!({"cursor": cursor, "limit": 10_000}))
                .await?;
            all.extend(page.dept_user);
            if page.next_cursor.is_empty() {
                return Ok(all);
            }
            cursor = page.next_cursor;
        }
    }

    /// One member (`user/get`); `None` when WeCom knows no such userid (60111: also a
    /// member who left).
    pub async fn member(&self, userid: &str) -> Result<Option<Member>, WecomError> {
        match self.get("user/get", &[("userid", userid)]).await {
            Ok(member) => Ok(Some(member)),
            Err(WecomError::Call { errcode: 60111, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The members with customer contact enabled (`get_follow_user_list`).
    pub async fn follow_users(&self) -> Result<Vec<String>, WecomError> {
        Ok(self
            .get::<FollowUsers>("externalcontact/get_follow_user_list", &[])
            .await?
            .follow_user)
    }

    /// One page of the members' external contacts (`batch/get_by_user`): one item per
    /// (customer, member) pair, corp tag ids only.
    pub async fn contacts_page(
        &self,
        userids: &[String],
        cursor: &str,
    ) -> Result<ContactsPage, WecomError> {
        self.post(
            "externalcontact/batch/get_by_user",
            &json!({"userid_list": userids, "cursor": cursor, "limit": CONTACTS_PER_PAGE}),
        )
        .await
    }

    /// One customer with every follow relation and tag, personal ones included (`get`,
    /// follow_user paged at 500).
    pub async fn contact(&self, external_userid: &str) -> Result<ContactDetail, WecomError> {
        let mut detail: ContactDetail = self
            .get(
                "externalcontact/get",
                &[("external_userid", external_userid)],
            )
            .await?;
        while !detail.next_cursor.is_empty() {
            let next: ContactDetail = self
                .get(
                    "externalcontact/get",
                    &[
                        ("external_userid", external_userid),
                        ("cursor", detail.next_cursor.as_str()),
                    ],
                )
                .await?;
            detail.follow_user.extend(next.follow_user);
            detail.next_cursor = next.next_cursor;
        }
        Ok(detail)
    }

    /// Every corp tag group with its tags (`get_corp_tag_list`).
    pub async fn corp_tags(&self) -> Result<Vec<CorpTagGroup>, WecomError> {
        Ok(self
            .post::<_, TagGroups>("externalcontact/get_corp_tag_list", &json!({}))
            .await?
            .tag_group)
    }

    /// Marks and unmarks corp tags of a member's customer (`mark_tag`; no callback
    /// follows).
    pub async fn mark_tags(
        &self,
        userid: &str,
        external_userid: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<(), WecomError> {
        self.post::<_, Nothing>(
            "externalcontact/mark_tag",
            &json!({"userid": userid, "external_userid": external_userid,
                    "add_tag": add, "remove_tag": remove}),
        )
        .await
        .map(|_| ())
    }

    /// Makes a single-member QR contact way (`add_contact_way`, type 1, scene 2).
    pub async fn add_contact_way(
        &self,
        way: &ContactWaySpec,
    ) -> Result<ContactWayMade, WecomError> {
        self.post(
            "externalcontact/add_contact_way",
            &json!({"type": 1, "scene": 2, "remark": way.remark, "skip_verify": way.skip_verify,
                    "state": way.state, "user": [way.userid]}),
        )
        .await
    }

    /// Changes a contact way (`update_contact_way`; the member list is replaced).
    pub async fn update_contact_way(
        &self,
        config_id: &str,
        way: &ContactWaySpec,
    ) -> Result<(), WecomError> {
        self.post::<_, Nothing>(
            "externalcontact/update_contact_way",
            &json!({"config_id": config_id, "remark": way.remark,
                    "skip_verify": way.skip_verify, "state": way.state, "user": [way.userid]}),
        )
        .await
        .map(|_| ())
    }

    /// Makes a group join way (`groupchat/add_join_way`); answers its config_id.
    pub async fn add_join_way(&self, way: &JoinWaySpec) -> Result<String, WecomError> {
        Ok(self
            .post::<_, JoinWayMade>("externalcontact/groupchat/add_join_way", &way.body())
            .await?
            .config_id)
    }

    /// Changes a join way (`groupchat/update_join_way`: every field replaced).
    pub async fn update_join_way(
        &self,
        config_id: &str,
        way: &JoinWaySpec,
    ) -> Result<(), WecomError> {
        let mut body = way.body();
        body["config_id"] = json!(config_id);
        self.post::<_, Nothing>("externalcontact/groupchat/update_join_way", &body)
            .await
            .map(|_| ())
    }

    /// A join way as WeCom has it (`groupchat/get_join_way`), with its QR image's URL.
    pub async fn join_way(&self, config_id: &str) -> Result<JoinWayInfo, WecomError> {
        Ok(self
            .post::<_, JoinWayAnswer>(
                "externalcontact/groupchat/get_join_way",
                &json!({"config_id": config_id}),
            )
            .await?
            .join_way)
    }

    /// Deletes a join way (`groupchat/del_join_way`).
    pub async fn del_join_way(&self, config_id: &str) -> Result<(), WecomError> {
        self.post::<_, Nothing>(
            "externalcontact/groupchat/del_join_way",
            &json!({"config_id": config_id}),
        )
        .await
        .map(|_| ())
    }

    /// Deletes a contact way (`del_contact_way`).
    pub async fn del_contact_way(&self, config_id: &str) -> Result<(), WecomError> {
        self.post::<_, Nothing>(
            "externalcontact/del_contact_way",
            &json!({"config_id": config_id}),
        )
        .await
        .map(|_| ())
    }

    /// Answers a WelcomeCode (`send_welcome_msg`; once, within 20 s of the add).
    pub async fn send_welcome(&self, welcome_code: &str, text: &str) -> Result<(), WecomError> {
        self.post::<_, Nothing>(
            "externalcontact/send_welcome_msg",
            &json!({"welcome_code": welcome_code, "text": {"content": text}}),
        )
        .await
        .map(|_| ())
    }

    /// Starts transferring customers from one member to another
    /// (`transfer_customer`, or `resigned/transfer_customer` for a member who left): at
    /// most [`CUSTOMERS_PER_TRANSFER`]; an errcode per customer (0: started, the
    /// takeover 24 h later).
    pub async fn transfer_customers(
        &self,
        resigned: bool,
        handover_userid: &str,
        takeover_userid: &str,
        external_userids: &[String],
        message: Option<&str>,
    ) -> Result<Vec<TransferStarted>, WecomError> {
        let api = if resigned {
            "externalcontact/resigned/transfer_customer"
        } else {
            "externalcontact/transfer_customer"
        };
        let mut body = json!({"handover_userid": handover_userid,
                              "takeover_userid": takeover_userid,
                              "external_userid": external_userids});
        if let Some(message) = message {
            body["transfer_success_msg"] = json!(message);
        }
        Ok(self.post::<_, TransferAnswer>(api, &body).await?.customer)
    }

    /// Every transfer between two members and where it stands (`transfer_result` or
    /// `resigned/transfer_result`, paged by cursor).
    pub async fn transfer_results(
        &self,
        resigned: bool,
        handover_userid: &str,
        takeover_userid: &str,
    ) -> Result<Vec<TransferState>, WecomError> {
        let api = if resigned {
            "externalcontact/resigned/transfer_result"
        } else {
            "externalcontact/transfer_result"
        };
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let page: TransferResults = self
                .post(
                    api,
                    &json!({"handover_userid": handover_userid,
                            "takeover_userid": takeover_userid, "cursor": cursor}),
                )
                .await?;
            all.extend(page.customer);
            if page.next_cursor.is_empty() {
                return Ok(all);
            }
            cursor = page.next_cursor;
        }
    }

    /// Every customer of members who left that is not assigned yet
    /// (`get_unassigned_list`, 1,000 a page).
    pub async fn unassigned_contacts(&self) -> Result<Vec<UnassignedContact>, WecomError> {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let page: UnassignedPage = self
                .post(
                    "externalcontact/get_unassigned_list",
                    &json!({"page_size": 1000, "cursor": cursor}),
                )
                .await?;
            all.extend(page.info);
            if page.is_last || page.next_cursor.is_empty() {
                return Ok(all);
            }
            cursor = page.next_cursor;
        }
    }
}

/// A chat as `groupchat/list` names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ChatRef {
    pub chat_id: String,
    /// 0 normal, 1 owner left, 2 inheriting, 3 inherited.
    pub status: i64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ChatList {
    group_chat_list: Vec<ChatRef>,
    next_cursor: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Invitor {
    pub userid: String,
}

/// A member of a customer group chat: staff (type 1) or a customer (type 2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ChatMemberInfo {
    pub userid: String,
    #[serde(rename = "type")]
    pub member_type: i64,
    pub unionid: Option<String>,
    pub join_time: i64,
    /// 1 invited, 2 link, 3 QR code.
    pub join_scene: i64,
    pub invitor: Option<Invitor>,
    pub group_nickname: String,
    pub name: String,
    pub state: Option<String>,
}

/// A customer group chat (`groupchat/get`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct GroupChatInfo {
    pub chat_id: String,
    pub name: String,
    pub owner: String,
    pub create_time: i64,
    pub notice: String,
    pub member_list: Vec<ChatMemberInfo>,
    pub member_version: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ChatAnswer {
    group_chat: GroupChatInfo,
}

/// `groupchat/list` takes at most this many owners per call…
pub const OWNERS_PER_CHAT_LIST: usize = 100;
/// …and answers at most this many chats per page.
pub const CHATS_PER_PAGE: u32 = 1_000;

impl<H: WecomHost> WecomClient<H> {
    /// The customer group chats these members own (`groupchat/list`, every page).
    pub async fn group_chats(&self, owners: &[String]) -> Result<Vec<ChatRef>, WecomError> {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let page: ChatList = self
                .post(
                    "externalcontact/groupchat/list",
                    &json!({"status_filter": 0, "owner_filter": {"userid_list": owners},
                            "cursor": cursor, "limit": CHATS_PER_PAGE}),
                )
                .await?;
            all.extend(page.group_chat_list);
            if page.next_cursor.is_empty() {
                return Ok(all);
            }
            cursor = page.next_cursor;
        }
    }

    /// One chat with its members (`groupchat/get`, names included); `None` when WeCom
    /// knows no such chat (40050: dismissed).
    pub async fn group_chat(&self, chat_id: &str) -> Result<Option<GroupChatInfo>, WecomError> {
        match self
            .post::<_, ChatAnswer>(
                "externalcontact/groupchat/get",
                &json!({"chat_id": chat_id, "need_name": 1}),
            )
            .await
        {
            Ok(answer) => Ok(Some(answer.group_chat)),
            Err(WecomError::Call { errcode: 40050, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// What `message/send` answered: the receivers WeCom refused (`|`-separated).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AppMessageSent {
    pub invaliduser: String,
    pub msgid: String,
}

impl AppMessageSent {
    /// Whether WeCom refused this receiver.
    pub fn refused(&self, userid: &str) -> bool {
        self.invaliduser
            .split('|')
            .any(|u| u.eq_ignore_ascii_case(userid))
    }
}

/// How long WeCom drops a repeat of the same message to the same member (its duplicate
/// check): a try repeated after a crash between the call and its record sends nothing.
pub const APP_MESSAGE_DUPLICATE_CHECK_S: i64 = 1_800;

impl<H: WecomHost> WecomClient<H> {
    /// A text from the app to one member (`message/send`), with WeCom's duplicate check.
    pub async fn send_app_text(
        &self,
        agent_id: i64,
        userid: &str,
        text: &str,
    ) -> Result<AppMessageSent, WecomError> {
        self.post(
            "message/send",
            &json!({"touser": userid, "msgtype": "text", "agentid": agent_id,
                    "text": {"content": text}, "enable_duplicate_check": 1,
                    "duplicate_check_interval": APP_MESSAGE_DUPLICATE_CHECK_S}),
        )
        .await
    }
}
