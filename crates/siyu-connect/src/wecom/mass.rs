//! Corp mass messages to customers (WECOM.md "Mass messages", doc 92135): a message
//! becomes one task per member, whom WeCom asks to confirm it in the app; siyu follows
//! the tasks and each customer's result, reminds and cancels.
//!
//! `add_msg_template` has no idempotency key: a call whose answer was lost may have
//! made its message. [`WecomClient::corp_mass_messages`] lists what the corp made in a
//! window, for the caller to reconcile before it calls again.

use serde::Deserialize;
use serde_json::json;

use super::api::Nothing;
use super::client::{WecomClient, WecomHost};
use super::error::WecomError;

/// The most customers one `add_msg_template` names.
pub const CUSTOMERS_PER_MASS_MESSAGE: usize = 10_000;
/// WeCom answers this to reads of a message it is still dispatching: try later.
pub const STILL_DISPATCHING: i64 = 41063;
/// Reminders WeCom takes per message in 24 hours.
pub const REMINDERS_PER_DAY: usize = 3;
/// The longest window `get_groupmsg_list_v2` reads, in seconds (a month).
pub const LIST_WINDOW_S: i64 = 30 * 86_400;

/// What `add_msg_template` answered: the message's id and the customers WeCom would
/// not send to (unknown, or no relation with the sender).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct MassMessageMade {
    pub msgid: String,
    pub fail_list: Vec<String>,
}

/// One message of `get_groupmsg_list_v2`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListedMassMessage {
    pub msgid: String,
    /// Absent for messages made through the API.
    pub creator: Option<String>,
    /// Unix seconds.
    pub create_time: i64,
    pub create_type: i64,
    pub text: String,
}

#[derive(Deserialize)]
#[serde(default)]
struct ListedRaw {
    msgid: String,
    creator: Option<String>,
    /// A string in the doc's example, a number elsewhere: both read.
    create_time: serde_json::Value,
    create_type: i64,
    text: TextRaw,
}

impl Default for ListedRaw {
    fn default() -> Self {
        Self {
            msgid: String::new(),
            creator: None,
            create_time: serde_json::Value::Null,
            create_type: 0,
            text: TextRaw::default(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TextRaw {
    content: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListPage {
    group_msg_list: Vec<ListedRaw>,
    next_cursor: String,
}

/// The most attachments one message carries.
pub const MAX_ATTACHMENTS: usize = 9;

/// An attachment of a mass message (or a welcome), as WeCom takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MassAttachment {
    /// An image uploaded as media (`media/upload?type=image`).
    Image {
        media_id: String,
    },
    /// A link card; its picture a lasting URL (`media/uploadimg`).
    Link {
        title: String,
        url: String,
        picurl: Option<String>,
        desc: Option<String>,
    },
    /// A mini-program card; its picture uploaded as media.
    Miniprogram {
        title: String,
        pic_media_id: String,
        appid: String,
        page: String,
    },
    Video {
        media_id: String,
    },
    File {
        media_id: String,
    },
}

impl MassAttachment {
    /// WeCom's shape: `{"msgtype": "image", "image": {"media_id": …}}`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            MassAttachment::Image { media_id } => {
                json!({"msgtype": "image", "image": {"media_id": media_id}})
            }
            MassAttachment::Link {
                title,
                url,
                picurl,
                desc,
            } => {
                let mut link = json!({"title": title, "url": url});
                if let Some(picurl) = picurl {
                    link["picurl"] = json!(picurl);
                }
                if let Some(desc) = desc {
                    link["desc"] = json!(desc);
                }
                json!({"msgtype": "link", "link": link})
            }
            MassAttachment::Miniprogram {
                title,
                pic_media_id,
                appid,
                page,
            } => json!({"msgtype": "miniprogram", "miniprogram": {
                "title": title, "pic_media_id": pic_media_id, "appid": appid, "page": page}}),
            MassAttachment::Video { media_id } => {
                json!({"msgtype": "video", "video": {"media_id": media_id}})
            }
            MassAttachment::File { media_id } => {
                json!({"msgtype": "file", "file": {"media_id": media_id}})
            }
        }
    }
}

/// A member's task of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct MassTask {
    pub userid: String,
    /// 0 not sent, 2 sent.
    pub status: i64,
    pub send_time: i64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TaskPage {
    task_list: Vec<MassTask>,
    next_cursor: String,
}

/// What one customer got of a member's task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct MassResult {
    pub external_userid: String,
    pub userid: String,
    /// 0 not sent, 1 sent, 2 not a friend any more, 3 over the receive cap.
    pub status: i64,
    pub send_time: i64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResultPage {
    send_list: Vec<MassResult>,
    next_cursor: String,
}

impl<H: WecomHost> WecomClient<H> {
    /// A corp mass text, with its attachments (at most 9), to the named customers through
    /// one member (`add_msg_template`, at most [`CUSTOMERS_PER_MASS_MESSAGE`]): the
    /// member gets a task to confirm.
    pub async fn add_mass_message(
        &self,
        sender: &str,
        external_userids: &[String],
        text: &str,
        attachments: &[MassAttachment],
    ) -> Result<MassMessageMade, WecomError> {
        let mut body = json!({"chat_type": "single", "external_userid": external_userids,
                              "sender": sender, "text": {"content": text}});
        if !attachments.is_empty() {
            body["attachments"] = attachments.iter().map(MassAttachment::to_json).collect();
        }
        self.post("externalcontact/add_msg_template", &body).await
    }

    /// The corp-made mass messages to customers created between two times (unix
    /// seconds, at most [`LIST_WINDOW_S`] apart), every page (`get_groupmsg_list_v2`
    /// with `filter_type` 0).
    pub async fn corp_mass_messages(
        &self,
        start: i64,
        end: i64,
    ) -> Result<Vec<ListedMassMessage>, WecomError> {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let page: ListPage = self
                .post(
                    "externalcontact/get_groupmsg_list_v2",
                    &json!({"chat_type": "single", "start_time": start, "end_time": end,
                            "filter_type": 0, "limit": 100, "cursor": cursor}),
                )
                .await?;
            all.extend(page.group_msg_list.into_iter().map(|m| ListedMassMessage {
                msgid: m.msgid,
                creator: m.creator.filter(|c| !c.is_empty()),
                create_time: match &m.create_time {
                    serde_json::Value::String(s) => s.parse().unwrap_or(0),
                    other => other.as_i64().unwrap_or(0),
                },
                create_type: m.create_type,
                text: m.text.content,
            }));
            if page.next_cursor.is_empty() {
                return Ok(all);
            }
            cursor = page.next_cursor;
        }
    }

    /// Each member's task of a message, every page (`get_groupmsg_task`).
    pub async fn mass_tasks(&self, msgid: &str) -> Result<Vec<MassTask>, WecomError> {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let page: TaskPage = self
                .post(
                    "externalcontact/get_groupmsg_task",
                    &json!({"msgid": msgid, "limit": 1000, "cursor": cursor}),
                )
                .await?;
            all.extend(page.task_list);
            if page.next_cursor.is_empty() {
                return Ok(all);
            }
            cursor = page.next_cursor;
        }
    }

    /// What each customer of one member's task got, every page
    /// (`get_groupmsg_send_result`).
    pub async fn mass_results(
        &self,
        msgid: &str,
        userid: &str,
    ) -> Result<Vec<MassResult>, WecomError> {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let page: ResultPage = self
                .post(
                    "externalcontact/get_groupmsg_send_result",
                    &json!({"msgid": msgid, "userid": userid, "limit": 1000, "cursor": cursor}),
                )
                .await?;
            all.extend(page.send_list);
            if page.next_cursor.is_empty() {
                return Ok(all);
            }
            cursor = page.next_cursor;
        }
    }

    /// Reminds the members who have not sent a message (`remind_groupmsg_send`; WeCom
    /// takes [`REMINDERS_PER_DAY`] a message a day).
    pub async fn remind_mass_message(&self, msgid: &str) -> Result<(), WecomError> {
        self.post::<_, Nothing>(
            "externalcontact/remind_groupmsg_send",
            &json!({"msgid": msgid}),
        )
        .await
        .map(|_| ())
    }

    /// Stops what members have not sent of a message (`cancel_groupmsg_send`).
    pub async fn cancel_mass_message(&self, msgid: &str) -> Result<(), WecomError> {
        self.post::<_, Nothing>(
            "externalcontact/cancel_groupmsg_send",
            &json!({"msgid": msgid}),
        )
        .await
        .map(|_| ())
    }
}
