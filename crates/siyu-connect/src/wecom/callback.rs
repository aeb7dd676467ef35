//! WeCom's event callbacks as siyu takes them at `/callbacks/wecom/{id}`: the POST body
//! (`<xml><ToUserName/><Encrypt/><AgentID/></xml>`), its `<Encrypt>` checked against
//! the query's signature and opened with the connector's [`CallbackCrypto`] (which also
//! refuses a message for another corp), and the event inside read into a
//! [`CallbackEvent`] that a job can carry.
//!
//! The events are those of `WECOM.md` ("Callback events"): `change_external_contact`,
//! `change_external_chat`, `change_external_tag`. Every field is optional, because each
//! event and change type carries its own few; an event of another kind is read too (its
//! fields that are known), and the job that processes it decides. What is not an event
//! (`MsgType` other than `event`, or no `Event`) is refused: siyu's app takes no
//! messages.
//!
//! The XML is read with quick-xml, which expands no entities but XML's own five and
//! fetches nothing, so a body cannot make the server read a file or grow without bound
//! (its size is the router's body limit). Numbers are read leniently (an empty or
//! malformed number is left out rather than refusing the event: WeCom would only send
//! it again).

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use super::crypto::{CallbackCrypto, CryptoError};

/// Why a callback was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// The body is not XML with an `<Encrypt>` element.
    #[error("the body is not XML with an <Encrypt> element: {0}")]
    NotEncrypted(String),
    /// The signature, the ciphertext or the receiver is wrong.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// It decrypted to something other than an event.
    #[error("the message is not an event: {0}")]
    NotAnEvent(String),
}

/// A callback event, as WeCom sent it. Serialized (a job's payload) with WeCom's element
/// names as keys, so the payload reads like WeCom's documentation; fields left out are
/// absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackEvent {
    /// The corp id.
    #[serde(
        rename = "ToUserName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub to_user_name: Option<String>,
    /// `sys` for events.
    #[serde(
        rename = "FromUserName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub from_user_name: Option<String>,
    /// When it happened, in seconds since the epoch.
    #[serde(
        rename = "CreateTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub create_time: Option<i64>,
    /// `event`.
    #[serde(rename = "MsgType", default, skip_serializing_if = "Option::is_none")]
    pub msg_type: Option<String>,
    /// `change_external_contact`, `change_external_chat`, `change_external_tag` …
    #[serde(rename = "Event", default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// `add_external_contact`, `del_follow_user`, `update`, `create`, `shuffle` …
    #[serde(
        rename = "ChangeType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub change_type: Option<String>,
    /// The member (staff) concerned.
    #[serde(rename = "UserID", default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The customer concerned.
    #[serde(
        rename = "ExternalUserID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub external_user_id: Option<String>,
    /// The contact way's (or acquisition link's) `state` the customer came through.
    #[serde(rename = "State", default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// For send_welcome_msg, valid 20 s after the event.
    #[serde(
        rename = "WelcomeCode",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub welcome_code: Option<String>,
    /// `DELETE_BY_TRANSFER` when a transfer deleted the relation.
    #[serde(rename = "Source", default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Why a transfer failed: `customer_refused`, `customer_limit_exceed`.
    #[serde(
        rename = "FailReason",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub fail_reason: Option<String>,
    /// The customer group chat concerned.
    #[serde(rename = "ChatId", default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    /// What changed in a chat: `add_member`, `del_member`, `change_owner`, `change_name`,
    /// `change_notice`.
    #[serde(
        rename = "UpdateDetail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub update_detail: Option<String>,
    /// How members joined (WeCom's code), with `add_member`.
    #[serde(rename = "JoinScene", default, skip_serializing_if = "Option::is_none")]
    pub join_scene: Option<i64>,
    /// How members left (WeCom's code), with `del_member`.
    #[serde(rename = "QuitScene", default, skip_serializing_if = "Option::is_none")]
    pub quit_scene: Option<i64>,
    /// How many members joined or left.
    #[serde(
        rename = "MemChangeCnt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub mem_change_cnt: Option<i64>,
    /// The members who joined or left (`<MemChangeList><Item>…</Item>…`).
    #[serde(
        rename = "MemChangeList",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mem_change_list: Vec<String>,
    /// The chat's member version before the change.
    #[serde(
        rename = "LastMemVer",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_mem_ver: Option<String>,
    /// The chat's member version after the change.
    #[serde(rename = "CurMemVer", default, skip_serializing_if = "Option::is_none")]
    pub cur_mem_ver: Option<String>,
    /// The corp tag or tag group concerned.
    #[serde(rename = "Id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `tag` or `tag_group`.
    #[serde(rename = "TagType", default, skip_serializing_if = "Option::is_none")]
    pub tag_type: Option<String>,
    /// The rule group of a rule-group tag.
    #[serde(
        rename = "StrategyId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub strategy_id: Option<String>,
}

/// Keys longer than this are hashed (a key is a primary key column).
const MAX_KEY_LEN: usize = 256;

impl CallbackEvent {
    /// Whether processing the event reads WeCom's current state again (an edit of a
    /// relation, a corp tag changed, a chat's members): processing it twice is harmless, and two such
    /// events alike within one second (a member adding a tag, then taking it off) must
    /// both be processed, or the second change would be lost behind the first's key.
    /// These are not keyed: a repeat costs one more read.
    pub fn reads_state_again(&self) -> bool {
        matches!(
            (self.event.as_deref(), self.change_type.as_deref()),
            (
                Some("change_external_contact"),
                Some("edit_external_contact")
            ) | (Some("change_external_tag"), _)
        )
    }

    /// What makes two deliveries the same event, so that a repeat makes no second job.
    ///
    /// WeCom sends an event it thinks unanswered again (after 5 s, up to 3 tries), each
    /// time encrypted afresh, with a new nonce and timestamp in the query: only the event
    /// itself is the same. WeCom gives events no id, so the key is what the event says
    /// and when: `Event`, `ChangeType` and `UpdateDetail` / `TagType` (what happened),
    /// `UserID` with `ExternalUserID`, `ChatId`, `Id` and `StrategyId` (to whom: the
    /// relation, the chat, the tag), the chat's new member version and the members
    /// changed (two joins of one chat in one second are two events), and `CreateTime`
    /// (so the same change made again later is a new event). Two events alike in all of
    /// these, within one second, say the same thing: the job reads the current state
    /// from WeCom, which holds both. Parts are written as a JSON array, so no value can
    /// run into the next.
    pub fn dedupe_key(&self) -> String {
        let create_time = self.create_time.map(|t| t.to_string());
        let members = self.mem_change_list.join(",");
        let parts: [Option<&str>; 12] = [
            self.event.as_deref(),
            self.change_type.as_deref(),
            self.update_detail.as_deref(),
            self.tag_type.as_deref(),
            self.user_id.as_deref(),
            self.external_user_id.as_deref(),
            self.chat_id.as_deref(),
            self.id.as_deref(),
            self.strategy_id.as_deref(),
            self.cur_mem_ver.as_deref(),
            (!members.is_empty()).then_some(members.as_str()),
            create_time.as_deref(),
        ];
        let key = serde_json::to_string(&parts).expect("strings serialize");
        if key.len() <= MAX_KEY_LEN {
            key
        } else {
            let digest = Sha1::digest(key.as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            format!("sha1:{hex}")
        }
    }

    /// Reads an event's decrypted XML.
    pub fn from_xml(xml: &str) -> Result<Self, CallbackError> {
        let raw: XmlEvent =
            quick_xml::de::from_str(xml).map_err(|e| CallbackError::NotAnEvent(e.to_string()))?;
        let event = raw.into_event();
        if event.msg_type.as_deref() != Some("event") {
            return Err(CallbackError::NotAnEvent(format!(
                "MsgType is {:?}, not \"event\"",
                event.msg_type.as_deref().unwrap_or("")
            )));
        }
        if event.event.is_none() {
            return Err(CallbackError::NotAnEvent("it names no Event".into()));
        }
        Ok(event)
    }
}

/// Reads a callback's POST: the body's `<Encrypt>`, checked against the query's
/// signature, decrypted for this connector's corp, and read as an event.
pub fn read_callback(
    crypto: &CallbackCrypto,
    msg_signature: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> Result<CallbackEvent, CallbackError> {
    let body = std::str::from_utf8(body)
        .map_err(|_| CallbackError::NotEncrypted("the body is not UTF-8".into()))?;
    let envelope: Envelope =
        quick_xml::de::from_str(body).map_err(|e| CallbackError::NotEncrypted(e.to_string()))?;
    let encrypted = envelope
        .encrypt
        .filter(|e| !e.trim().is_empty())
        .ok_or_else(|| CallbackError::NotEncrypted("no <Encrypt> element".into()))?;
    let xml = crypto.decrypt(msg_signature, timestamp, nonce, &encrypted)?;
    CallbackEvent::from_xml(&xml)
}

/// The POST body: `<Encrypt>` is all siyu reads (ToUserName and AgentID may be there).
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Encrypt", default)]
    encrypt: Option<String>,
}

/// The decrypted XML as text, before numbers are read and empty elements dropped.
#[derive(Deserialize)]
struct XmlEvent {
    #[serde(rename = "ToUserName", default)]
    to_user_name: Option<String>,
    #[serde(rename = "FromUserName", default)]
    from_user_name: Option<String>,
    #[serde(rename = "CreateTime", default)]
    create_time: Option<String>,
    #[serde(rename = "MsgType", default)]
    msg_type: Option<String>,
    #[serde(rename = "Event", default)]
    event: Option<String>,
    #[serde(rename = "ChangeType", default)]
    change_type: Option<String>,
    #[serde(rename = "UserID", default)]
    user_id: Option<String>,
    #[serde(rename = "ExternalUserID", default)]
    external_user_id: Option<String>,
    #[serde(rename = "State", default)]
    state: Option<String>,
    #[serde(rename = "WelcomeCode", default)]
    welcome_code: Option<String>,
    #[serde(rename = "Source", default)]
    source: Option<String>,
    #[serde(rename = "FailReason", default)]
    fail_reason: Option<String>,
    #[serde(rename = "ChatId", default)]
    chat_id: Option<String>,
    #[serde(rename = "UpdateDetail", default)]
    update_detail: Option<String>,
    #[serde(rename = "JoinScene", default)]
    join_scene: Option<String>,
    #[serde(rename = "QuitScene", default)]
    quit_scene: Option<String>,
    #[serde(rename = "MemChangeCnt", default)]
    mem_change_cnt: Option<String>,
    #[serde(rename = "MemChangeList", default)]
    mem_change_list: Option<XmlItems>,
    #[serde(rename = "LastMemVer", default)]
    last_mem_ver: Option<String>,
    #[serde(rename = "CurMemVer", default)]
    cur_mem_ver: Option<String>,
    #[serde(rename = "Id", default)]
    id: Option<String>,
    #[serde(rename = "TagType", default)]
    tag_type: Option<String>,
    #[serde(rename = "StrategyId", default)]
    strategy_id: Option<String>,
}

#[derive(Deserialize)]
struct XmlItems {
    #[serde(rename = "Item", default)]
    items: Vec<String>,
}

/// An element left empty is as one left out.
fn text(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

fn number(value: Option<String>) -> Option<i64> {
    value.and_then(|v| v.trim().parse().ok())
}

impl XmlEvent {
    fn into_event(self) -> CallbackEvent {
        CallbackEvent {
            to_user_name: text(self.to_user_name),
            from_user_name: text(self.from_user_name),
            create_time: number(self.create_time),
            msg_type: text(self.msg_type),
            event: text(self.event),
            change_type: text(self.change_type),
            user_id: text(self.user_id),
            external_user_id: text(self.external_user_id),
            state: text(self.state),
            welcome_code: text(self.welcome_code),
            source: text(self.source),
            fail_reason: text(self.fail_reason),
            chat_id: text(self.chat_id),
            update_detail: text(self.update_detail),
            join_scene: number(self.join_scene),
            quit_scene: number(self.quit_scene),
            mem_change_cnt: number(self.mem_change_cnt),
            mem_change_list: self
                .mem_change_list
                .map(|list| list.items.into_iter().filter(|i| !i.is_empty()).collect())
                .unwrap_or_default(),
            last_mem_ver: text(self.last_mem_ver),
            cur_mem_ver: text(self.cur_mem_ver),
            id: text(self.id),
            tag_type: text(self.tag_type),
            strategy_id: text(self.strategy_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crypto(corp: &str) -> CallbackCrypto {
        CallbackCrypto::new(
            "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
            "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
            corp,
        )
        .unwrap()
    }

    const ADD: &str = "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\
        <FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1700000000</CreateTime>\
        <MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event>\
        <ChangeType><![CDATA[add_external_contact]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID>\
        <ExternalUserID><![CDATA[woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA]]></ExternalUserID>\
        <State><![CDATA[spring]]></State><WelcomeCode><![CDATA[CALLBACKCODE]]></WelcomeCode></xml>";

    /// The body as WeCom posts it, signed at timestamp 1 with nonce 2.
    fn posted(crypto: &CallbackCrypto, xml: &str) -> (String, String) {
        let encrypted = crypto.encrypt(xml);
        let signature = crypto.signature("1", "2", &encrypted);
        let body = format!(
            "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\
             <Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>"
        );
        (signature, body)
    }

    #[test]
    fn an_added_customer_is_read_from_its_encrypted_body() {
        let crypto = crypto("ww1436e0e65a779aee");
        let (signature, body) = posted(&crypto, ADD);
        let event = read_callback(&crypto, &signature, "1", "2", body.as_bytes()).unwrap();
        assert_eq!(event.event.as_deref(), Some("change_external_contact"));
        assert_eq!(event.change_type.as_deref(), Some("add_external_contact"));
        assert_eq!(event.user_id.as_deref(), Some("zhangsan"));
        assert_eq!(
            event.external_user_id.as_deref(),
            Some("woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA")
        );
        assert_eq!(event.state.as_deref(), Some("spring"));
        assert_eq!(event.welcome_code.as_deref(), Some("CALLBACKCODE"));
        assert_eq!(event.create_time, Some(1_700_000_000));
        // as a job's payload: WeCom's names, and back
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["ExternalUserID"], "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA");
        assert_eq!(json["CreateTime"], 1_700_000_000);
        assert!(json.get("ChatId").is_none(), "{json}");
        assert_eq!(
            serde_json::from_value::<CallbackEvent>(json).unwrap(),
            event
        );
    }

    #[test]
    fn chat_and_tag_events_are_read_without_cdata_too() {
        let chat = CallbackEvent::from_xml(
            "<xml><ToUserName>ww1</ToUserName><FromUserName>sys</FromUserName>\
             <CreateTime>1700000001</CreateTime><MsgType>event</MsgType>\
             <Event>change_external_chat</Event><ChatId>wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA</ChatId>\
             <ChangeType>update</ChangeType><UpdateDetail>add_member</UpdateDetail>\
             <JoinScene>1</JoinScene><QuitScene></QuitScene><MemChangeCnt>2</MemChangeCnt>\
             <MemChangeList><Item>Jack</Item><Item>Rose</Item></MemChangeList>\
             <LastMemVer>9c3f97c2ada667dfb5f6d03308d963e1</LastMemVer>\
             <CurMemVer>71217227bbd112ecfe3a49c482195cb4</CurMemVer></xml>",
        )
        .unwrap();
        assert_eq!(chat.update_detail.as_deref(), Some("add_member"));
        assert_eq!(chat.join_scene, Some(1));
        assert_eq!(chat.quit_scene, None, "an empty element is left out");
        assert_eq!(chat.mem_change_cnt, Some(2));
        assert_eq!(chat.mem_change_list, ["Jack", "Rose"]);
        assert_eq!(
            chat.cur_mem_ver.as_deref(),
            Some("71217227bbd112ecfe3a49c482195cb4")
        );
        let tag = CallbackEvent::from_xml(
            "<xml><ToUserName>ww1</ToUserName><FromUserName>sys</FromUserName>\
             <CreateTime>1700000002</CreateTime><MsgType>event</MsgType>\
             <Event>change_external_tag</Event><Id>etXXXX</Id><TagType>tag</TagType>\
             <ChangeType>create</ChangeType><StrategyId>1</StrategyId></xml>",
        )
        .unwrap();
        assert_eq!(tag.id.as_deref(), Some("etXXXX"));
        assert_eq!(tag.tag_type.as_deref(), Some("tag"));
        assert_eq!(tag.strategy_id.as_deref(), Some("1"));
    }

    #[test]
    fn the_dedupe_key_tells_events_apart_and_not_their_deliveries() {
        let crypto = crypto("ww1436e0e65a779aee");
        let read = |xml: &str| {
            let (signature, body) = posted(&crypto, xml);
            read_callback(&crypto, &signature, "1", "2", body.as_bytes()).unwrap()
        };
        // delivered twice: encrypted afresh each time, the same key
        let first = read(ADD);
        assert_eq!(first.dedupe_key(), read(ADD).dedupe_key());
        assert_eq!(
            first.dedupe_key(),
            r#"["change_external_contact","add_external_contact",null,null,"zhangsan","woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA",null,null,null,null,null,"1700000000"]"#
        );
        // another second, customer, member or change: another event
        for (from, to) in [
            ("1700000000", "1700000001"),
            ("woAJ2GCAAAX", "woAJ2GCAAAY"),
            ("zhangsan", "lisi"),
            ("add_external_contact", "del_follow_user"),
        ] {
            assert_ne!(
                first.dedupe_key(),
                read(&ADD.replace(from, to)).dedupe_key(),
                "{to}"
            );
        }
        // two joins of one chat in one second
        let join = |member: &str| CallbackEvent {
            event: Some("change_external_chat".into()),
            change_type: Some("update".into()),
            update_detail: Some("add_member".into()),
            chat_id: Some("wr1".into()),
            mem_change_list: vec![member.into()],
            create_time: Some(1),
            ..CallbackEvent::default()
        };
        assert_ne!(join("Jack").dedupe_key(), join("Rose").dedupe_key());
        // a value cannot run into the next
        let a = CallbackEvent {
            user_id: Some("a\",\"b".into()),
            ..CallbackEvent::default()
        };
        let b = CallbackEvent {
            user_id: Some("a".into()),
            external_user_id: Some("b".into()),
            ..CallbackEvent::default()
        };
        assert_ne!(a.dedupe_key(), b.dedupe_key());
        // a long key is hashed, and stays the same
        let long = CallbackEvent {
            mem_change_list: vec!["m".repeat(300)],
            ..join("x")
        };
        assert!(long.dedupe_key().starts_with("sha1:"));
        assert_eq!(long.dedupe_key(), long.clone().dedupe_key());
        assert_eq!(long.dedupe_key().len(), 45);
    }

    #[test]
    fn what_is_not_an_encrypted_event_is_refused_with_its_reason() {
        let crypto = crypto("ww1436e0e65a779aee");
        for body in [
            "",
            "not xml",
            "{\"Encrypt\":\"x\"}",
            "<xml><ToUserName>x</ToUserName></xml>",
            "<xml><Encrypt></Encrypt></xml>",
            "<xml><Encrypt>x</Encrypt",
        ] {
            assert!(
                matches!(
                    read_callback(&crypto, "s", "1", "2", body.as_bytes()),
                    Err(CallbackError::NotEncrypted(_))
                ),
                "{body:?}"
            );
        }
        assert!(matches!(
            read_callback(
                &crypto,
                "s",
                "1",
                "2",
                b"<xml><Encrypt>\xff</Encrypt></xml>"
            ),
            Err(CallbackError::NotEncrypted(_))
        ));
        let (signature, body) = posted(&crypto, ADD);
        assert_eq!(
            read_callback(&crypto, &signature, "1", "3", body.as_bytes()),
            Err(CallbackError::Crypto(CryptoError::BadSignature))
        );
        // signed with the right token, encrypted for another corp
        let other = self::crypto("ww-another-corp");
        let (signature, body) = posted(&other, ADD);
        assert_eq!(
            read_callback(&crypto, &signature, "1", "2", body.as_bytes()),
            Err(CallbackError::Crypto(CryptoError::WrongReceiver(
                "ww-another-corp".into()
            )))
        );
        // messages that are not events
        for xml in [
            "plain text",
            "<xml><MsgType>text</MsgType><Content>你好</Content></xml>",
            "<xml><MsgType>event</MsgType></xml>",
            "<xml><MsgType>event</MsgType><Event></Event></xml>",
        ] {
            let (signature, body) = posted(&crypto, xml);
            assert!(
                matches!(
                    read_callback(&crypto, &signature, "1", "2", body.as_bytes()),
                    Err(CallbackError::NotAnEvent(_))
                ),
                "{xml}"
            );
        }
    }
}
