//! People doing things in the WeCom app, and the encrypted callbacks WeCom pushes about
//! them: a customer adds a member (with a welcome code), a member edits tags, either
//! side deletes the other, the admin changes corp tags, group chats change.
//!
//! Each arrangement changes the corp first, then pushes the event — encrypted and signed
//! with `siyu-connect`'s `CallbackCrypto`, as WeCom would — to the URL given to
//! [`Standin::set_callback`], and answers the HTTP status siyu gave. The XML is written
//! by hand: a handful of elements, strings in CDATA. [`Standin::encrypted_callback`]
//! hands out the query and body instead, for tests that send (or tamper with) them
//! themselves.

use siyu_connect::wecom::crypto::{CallbackCrypto, CryptoError};

use crate::corp::{ExternalContact, FollowInfo};
use crate::server::{ALNUM, Callback, random_string};
use crate::ways::WelcomeCode;
use crate::{Standin, tags};

/// Why an arrangement could not be done or its callback not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StandinError {
    #[error("no callback URL is set (Standin::set_callback)")]
    NoCallback,
    #[error("{0}")]
    NotFound(String),
    #[error("the callback was not delivered: {0}")]
    Http(String),
}

/// A callback the stand-in pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedEvent {
    /// The XML before encryption.
    pub plaintext: String,
    /// The HTTP status siyu answered (None: no answer).
    pub status: Option<u16>,
}

/// What `customer_adds` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOutcome {
    /// The welcome code pushed with the event (valid 20 s, single use).
    pub welcome_code: Option<String>,
    /// The HTTP status siyu answered to the callback.
    pub delivered: Result<u16, StandinError>,
}

/// `s` as CDATA (a `]]>` inside is split across two sections).
pub fn cdata(s: &str) -> String {
    format!("<![CDATA[{}]]>", s.replace("]]>", "]]]]><![CDATA[>"))
}

/// An event's plaintext XML as a self-built app receives it: string fields in CDATA.
pub fn event_xml(
    corp_id: &str,
    create_time: u64,
    event: &str,
    change_type: &str,
    fields: &[(&str, &str)],
) -> String {
    event_xml_with(corp_id, create_time, event, change_type, fields, "")
}

fn event_xml_with(
    corp_id: &str,
    create_time: u64,
    event: &str,
    change_type: &str,
    fields: &[(&str, &str)],
    raw: &str,
) -> String {
    let mut xml = format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{create_time}</CreateTime>\
         <MsgType>{}</MsgType><Event>{}</Event><ChangeType>{}</ChangeType>",
        cdata(corp_id),
        cdata("sys"),
        cdata("event"),
        cdata(event),
        cdata(change_type),
    );
    for (name, value) in fields {
        xml.push_str(&format!("<{name}>{}</{name}>", cdata(value)));
    }
    xml.push_str(raw);
    xml.push_str("</xml>");
    xml
}

fn not_found(what: String) -> StandinError {
    StandinError::NotFound(what)
}

impl Standin {
    /// Where callbacks go, and the token and EncodingAESKey siyu was configured with.
    pub fn set_callback(
        &self,
        url: &str,
        token: &str,
        encoding_aes_key: &str,
    ) -> Result<(), CryptoError> {
        let corp_id = self.shared.lock().corp.corp_id.clone();
        let crypto = CallbackCrypto::new(token, encoding_aes_key, &corp_id)?;
        self.shared.lock().rt.callback = Some(Callback {
            url: url.to_owned(),
            crypto,
        });
        Ok(())
    }

    /// An event's plaintext for this corp, created now on the stand-in's clock.
    pub fn build_event_xml(
        &self,
        event: &str,
        change_type: &str,
        fields: &[(&str, &str)],
    ) -> String {
        let state = self.shared.lock();
        event_xml(
            &state.corp.corp_id,
            state.rt.now_ms() / 1000,
            event,
            change_type,
            fields,
        )
    }

    /// The query (`msg_signature=…&timestamp=…&nonce=…`) and body WeCom would send for
    /// `plaintext`.
    pub fn encrypted_callback(&self, plaintext: &str) -> Result<(String, String), StandinError> {
        let (callback, corp_id, now) = {
            let state = self.shared.lock();
            let callback = state.rt.callback.clone().ok_or(StandinError::NoCallback)?;
            (
                callback,
                state.corp.corp_id.clone(),
                state.rt.now_ms() / 1000,
            )
        };
        let timestamp = now.to_string();
        let nonce = random_string(10, b"0123456789");
        let encrypted = callback.crypto.encrypt(plaintext);
        let signature = callback.crypto.signature(&timestamp, &nonce, &encrypted);
        let query = format!("msg_signature={signature}&timestamp={timestamp}&nonce={nonce}");
        let body = format!(
            "<xml><ToUserName>{}</ToUserName><Encrypt>{}</Encrypt><AgentID>{}</AgentID></xml>",
            cdata(&corp_id),
            cdata(&encrypted),
            cdata("")
        );
        Ok((query, body))
    }

    fn callback_url(&self, query: &str) -> Result<String, StandinError> {
        let state = self.shared.lock();
        let url = &state
            .rt
            .callback
            .as_ref()
            .ok_or(StandinError::NoCallback)?
            .url;
        let sep = if url.contains('?') { '&' } else { '?' };
        Ok(format!("{url}{sep}{query}"))
    }

    /// Pushes any event plaintext, encrypted, to the callback URL: siyu's HTTP status.
    pub async fn push_raw(&self, plaintext: &str) -> Result<u16, StandinError> {
        let (query, body) = self.encrypted_callback(plaintext)?;
        let url = self.callback_url(&query)?;
        let sent = self
            .shared
            .http
            .post(url)
            .header("content-type", "text/xml; charset=utf-8")
            .body(body)
            .send()
            .await;
        let status = sent.as_ref().ok().map(|r| r.status().as_u16());
        self.shared.lock().rt.pushed.push(crate::PushedEvent {
            plaintext: plaintext.to_owned(),
            status,
        });
        sent.map(|r| r.status().as_u16())
            .map_err(|e| StandinError::Http(e.to_string()))
    }

    /// The URL check WeCom makes when the callback URL is saved: true when siyu answered
    /// 200 with the echostr's plaintext.
    pub async fn verify_callback_url(&self) -> Result<bool, StandinError> {
        let (callback, now) = {
            let state = self.shared.lock();
            let callback = state.rt.callback.clone().ok_or(StandinError::NoCallback)?;
            (callback, state.rt.now_ms() / 1000)
        };
        let echo = random_string(19, b"0123456789");
        let encrypted = callback.crypto.encrypt(&echo);
        let (timestamp, nonce) = (now.to_string(), random_string(10, b"0123456789"));
        let signature = callback.crypto.signature(&timestamp, &nonce, &encrypted);
        let echostr: String = form_urlencoded::byte_serialize(encrypted.as_bytes()).collect();
        let url = self.callback_url(&format!(
            "msg_signature={signature}&timestamp={timestamp}&nonce={nonce}&echostr={echostr}"
        ))?;
        let response = self
            .shared
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| StandinError::Http(e.to_string()))?;
        let ok = response.status().is_success();
        let body = response
            .text()
            .await
            .map_err(|e| StandinError::Http(e.to_string()))?;
        Ok(ok && body.trim() == echo)
    }

    pub(crate) fn event_now(
        &self,
        event: &str,
        change_type: &str,
        fields: &[(&str, &str)],
        raw: &str,
    ) -> String {
        let state = self.shared.lock();
        event_xml_with(
            &state.corp.corp_id,
            state.rt.now_ms() / 1000,
            event,
            change_type,
            fields,
            raw,
        )
    }

    /// A customer adds `userid` (the relation is created now) and WeCom pushes
    /// `add_external_contact` with the State and, when asked, a fresh welcome code.
    pub async fn customer_adds(
        &self,
        userid: &str,
        contact: ExternalContact,
        state: Option<String>,
        with_welcome_code: bool,
    ) -> AddOutcome {
        let ext = contact.external_userid.clone();
        let welcome_code = {
            let mut st = self.shared.lock();
            let now_ms = st.rt.now_ms();
            st.corp.insert_contact(contact);
            let info = FollowInfo {
                createtime: now_ms / 1000,
                add_way: u32::from(state.is_some()),
                state: state.clone().unwrap_or_default(),
                oper_userid: ext.clone(),
                ..FollowInfo::default()
            };
            st.corp.insert_follow(userid, &ext, info);
            with_welcome_code.then(|| {
                let code = random_string(43, ALNUM);
                st.rt.welcome_codes.insert(
                    code.clone(),
                    WelcomeCode {
                        userid: userid.to_owned(),
                        external_userid: ext.clone(),
                        issued_ms: now_ms,
                        used: false,
                    },
                );
                code
            })
        };
        let mut fields = vec![("UserID", userid), ("ExternalUserID", ext.as_str())];
        if let Some(s) = &state {
            fields.push(("State", s));
        }
        if let Some(c) = &welcome_code {
            fields.push(("WelcomeCode", c));
        }
        let xml = self.event_now(
            "change_external_contact",
            "add_external_contact",
            &fields,
            "",
        );
        let delivered = self.push_raw(&xml).await;
        AddOutcome {
            welcome_code,
            delivered,
        }
    }

    /// A customer scans the contact way `config_id`: they add its (first) member, with
    /// its state.
    pub async fn customer_scans(
        &self,
        config_id: &str,
        contact: ExternalContact,
        with_welcome_code: bool,
    ) -> Result<AddOutcome, StandinError> {
        let (userid, state) = {
            let st = self.shared.lock();
            let way = st
                .rt
                .contact_ways
                .get(config_id)
                .ok_or_else(|| not_found(format!("no contact way {config_id}")))?;
            let userid = way.user.first().cloned().or_else(|| {
                st.corp
                    .members
                    .values()
                    .find(|m| m.department.iter().any(|d| way.party.contains(d)))
                    .map(|m| m.userid.clone())
            });
            let userid = userid
                .ok_or_else(|| not_found(format!("contact way {config_id} has no member")))?;
            (userid, (!way.state.is_empty()).then(|| way.state.clone()))
        };
        Ok(self
            .customer_adds(&userid, contact, state, with_welcome_code)
            .await)
    }

    /// The member adds and removes corp tags in the app: `edit_external_contact`.
    pub async fn member_edits_tags(
        &self,
        userid: &str,
        external_userid: &str,
        add: &[&str],
        remove: &[&str],
    ) -> Result<u16, StandinError> {
        {
            let mut st = self.shared.lock();
            let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
            let remove: Vec<String> = remove.iter().map(|s| s.to_string()).collect();
            tags::apply_tags(&mut st.corp, userid, external_userid, &add, &remove)
                .map_err(|e| not_found(e.errmsg))?;
        }
        let fields = [("UserID", userid), ("ExternalUserID", external_userid)];
        let xml = self.event_now(
            "change_external_contact",
            "edit_external_contact",
            &fields,
            "",
        );
        self.push_raw(&xml).await
    }

    fn remove_relation(&self, userid: &str, external_userid: &str) -> Result<(), StandinError> {
        self.shared
            .lock()
            .corp
            .remove_follow(userid, external_userid)
            .map(drop)
            .ok_or_else(|| not_found(format!("{external_userid} is not {userid}'s customer")))
    }

    /// The customer deletes the member: `del_follow_user`.
    pub async fn customer_deletes_member(
        &self,
        userid: &str,
        external_userid: &str,
    ) -> Result<u16, StandinError> {
        self.remove_relation(userid, external_userid)?;
        let fields = [("UserID", userid), ("ExternalUserID", external_userid)];
        let xml = self.event_now("change_external_contact", "del_follow_user", &fields, "");
        self.push_raw(&xml).await
    }

    /// The member deletes the customer: `del_external_contact`.
    pub async fn member_deletes_customer(
        &self,
        userid: &str,
        external_userid: &str,
    ) -> Result<u16, StandinError> {
        self.remove_relation(userid, external_userid)?;
        let fields = [("UserID", userid), ("ExternalUserID", external_userid)];
        let xml = self.event_now(
            "change_external_contact",
            "del_external_contact",
            &fields,
            "",
        );
        self.push_raw(&xml).await
    }

    async fn push_tag_event(
        &self,
        id: &str,
        tag_type: &str,
        change_type: &str,
    ) -> Result<u16, StandinError> {
        let fields = [("Id", id), ("TagType", tag_type)];
        let xml = self.event_now("change_external_tag", change_type, &fields, "");
        self.push_raw(&xml).await
    }

    /// The admin creates a tag (and its group when new) in the admin console:
    /// `change_external_tag` create, for the tag or for the new group. The tag's id and
    /// the delivery.
    pub async fn admin_adds_tag(
        &self,
        group_name: &str,
        tag_name: &str,
    ) -> (String, Result<u16, StandinError>) {
        let (tag_id, event_id, tag_type) = {
            let mut st = self.shared.lock();
            let now = st.rt.now_ms() / 1000;
            let existing = st
                .corp
                .tag_groups
                .values()
                .find(|g| !g.deleted && g.group_name == group_name)
                .map(|g| g.group_id.clone());
            match existing {
                Some(gid) => {
                    let id = st.corp.create_tag(&gid, tag_name, 0, now);
                    (id.clone(), id, "tag")
                }
                None => {
                    let gid = st.corp.create_group(group_name, 0, now);
                    (st.corp.create_tag(&gid, tag_name, 0, now), gid, "tag_group")
                }
            }
        };
        let delivered = self.push_tag_event(&event_id, tag_type, "create").await;
        (tag_id, delivered)
    }

    /// The admin renames a tag or a group: `change_external_tag` update.
    pub async fn admin_renames_tag(&self, id: &str, name: &str) -> Result<u16, StandinError> {
        let tag_type = {
            let mut st = self.shared.lock();
            if let Some(t) = st.corp.tags.get_mut(id).filter(|t| !t.deleted) {
                t.name = name.to_owned();
                "tag"
            } else if let Some(g) = st.corp.tag_groups.get_mut(id).filter(|g| !g.deleted) {
                g.group_name = name.to_owned();
                "tag_group"
            } else {
                return Err(not_found(format!("no tag or group {id}")));
            }
        };
        self.push_tag_event(id, tag_type, "update").await
    }

    /// The admin deletes a tag or a whole group: `change_external_tag` delete. The tags
    /// leave every customer.
    pub async fn admin_deletes_tag(&self, id: &str) -> Result<u16, StandinError> {
        let tag_type = {
            let mut st = self.shared.lock();
            if st.corp.live_tag(id).is_some() {
                st.corp.delete_tags(&[id.to_owned()]);
                "tag"
            } else if let Some(g) = st.corp.tag_groups.get(id).filter(|g| !g.deleted) {
                let ids = g.tag_ids.clone();
                st.corp.delete_tags(&ids);
                if let Some(g) = st.corp.tag_groups.get_mut(id) {
                    g.deleted = true;
                }
                "tag_group"
            } else {
                return Err(not_found(format!("no tag or group {id}")));
            }
        };
        self.push_tag_event(id, tag_type, "delete").await
    }

    /// Pushes what WeCom pushes for the transfers completed so far (once each):
    /// `del_external_contact` with Source `DELETE_BY_TRANSFER` for the handover, then
    /// `add_external_contact` for the takeover unless they already had the customer.
    /// Transfers complete when the clock passes their takeover time, without a push:
    /// call this after `advance_clock`.
    pub async fn push_transfer_callbacks(&self) -> Vec<Result<u16, StandinError>> {
        let done = std::mem::take(&mut self.shared.lock().rt.transfer_events);
        let mut delivered = Vec::new();
        for (t, already_friends) in done {
            let ext = t.external_userid.as_str();
            let fields = [
                ("UserID", t.handover_userid.as_str()),
                ("ExternalUserID", ext),
                ("Source", "DELETE_BY_TRANSFER"),
            ];
            let xml = self.event_now(
                "change_external_contact",
                "del_external_contact",
                &fields,
                "",
            );
            delivered.push(self.push_raw(&xml).await);
            if !already_friends {
                let fields = [
                    ("UserID", t.takeover_userid.as_str()),
                    ("ExternalUserID", ext),
                ];
                let xml = self.event_now(
                    "change_external_contact",
                    "add_external_contact",
                    &fields,
                    "",
                );
                delivered.push(self.push_raw(&xml).await);
            }
        }
        delivered
    }
}
