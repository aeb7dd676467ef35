//! The `wecom.callback` job: one event WeCom sent to `/callbacks/wecom/{id}`, taken
//! once (the intake keys each by what it says), processed here.
//!
//! - `add_external_contact` / `add_half_external_contact`: the contact is read with
//!   `get` (every relation, corp and personal tags) and stored like a sync page, so the
//!   customer is made or linked (by external userid or unionid), the relation's
//!   `Contact Added` event carries the member, add way and `state` (as `channel_code`),
//!   a customer without an owner gets the member, and the corp tags go on. Then the
//!   `WelcomeCode`, if any, is answered once: the welcome of the channel code whose
//!   `state` it carries (names filled in), else the member's, else the connector's
//!   `welcome`, else a built-in greeting, unless the customer opted out of WeCom (recorded `refused`, not sent).
//!   The send is recorded with this job, so a try after a crash finds it and does not
//!   send again; 41050/41051 (the code used or expired) are recorded, not retried.
//! - `edit_external_contact`: the contact is read again (a member changed remarks or
//!   tags), relations and mirrored tags follow.
//! - `del_follow_user` (the customer deleted the member) and `del_external_contact`
//!   (the member deleted the customer): the relation ends and `Contact Deleted` says by
//!   whom; with `Source=DELETE_BY_TRANSFER` it is a transfer to another member,
//!   recorded as `Contact Transferred`, never as a deletion.
//! - `transfer_fail`: `Contact Transfer Failed` with WeCom's reason.
//! - `change_external_tag`: corp tags mirrored again.
//! - `change_external_chat`: the chat read again and stored (members who joined or
//!   left recorded on their profiles), or dismissed.
//! - anything else: logged.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use siyu_connect::wecom::callback::CallbackEvent;
use siyu_connect::wecom::{WecomClient, WecomError};
use siyu_domain::acquisition::render_welcome;
use siyu_domain::audit::Actor;
use siyu_domain::connector::{SendStatus, WecomConnector};
use siyu_domain::consent::ConsentChannel;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::{ConnectorId, TenantId};
use siyu_store::{NewConnectorSend, RelationEnd, TenantScope};

use super::contacts::{ContactReading, read_contact};
use super::host::StoreHost;
use super::sync::{client_for, job_error, tag_records};
use crate::Services;
use crate::runner::{JobContext, JobError, JobHandler, handler_fn};

/// The greeting sent when neither the member nor the connector has a welcome.
pub const BUILT_IN_WELCOME: &str = "您好，很高兴认识您！有任何问题随时联系我。";
/// The kind of a welcome send in `connector_sends`.
pub const WELCOME_SEND: &str = "welcome";

#[derive(Deserialize)]
struct Payload {
    connector_id: ConnectorId,
    event: CallbackEvent,
}

/// The callback job's handler.
pub fn handler(services: &Services) -> impl JobHandler {
    let services = services.clone();
    handler_fn(siyu_domain::jobs::kind::WECOM_CALLBACK, move |ctx| {
        let services = services.clone();
        async move { run(&services, ctx).await }
    })
}

async fn run(services: &Services, ctx: JobContext) -> Result<(), JobError> {
    let payload: Payload = ctx.payload()?;
    let tenant = ctx.job.tenant.ok_or_else(|| {
        JobError::permanent("a WeCom callback belongs to a tenant; this one to none")
    })?;
    let event = &payload.event;
    let id = payload.connector_id;
    // first of all: a connector deleted while this waited ends the job, nothing done
    let (client, wecom) = client_for(services, tenant, id).await?;
    let what = (
        event.event.as_deref().unwrap_or(""),
        event.change_type.as_deref().unwrap_or(""),
    );
    let work = Work {
        services,
        ctx: &ctx,
        tenant,
        id,
        event,
        client,
        wecom,
        actor: Actor::system(format!("WeCom connector {}", id.0)),
    };
    match what {
        ("change_external_contact", "add_external_contact" | "add_half_external_contact") => {
            work.contact_added().await
        }
        ("change_external_contact", "edit_external_contact") => {
            work.read_contact_again().await.map(|_| ())
        }
        ("change_external_contact", "del_external_contact") => {
            if event.source.as_deref() == Some("DELETE_BY_TRANSFER") {
                work.relation_ended("Contact Transferred", None, RelationEnd::Transferred)
                    .await
            } else {
                work.relation_ended("Contact Deleted", Some("member"), RelationEnd::ByMember)
                    .await
            }
        }
        ("change_external_contact", "del_follow_user") => {
            work.relation_ended("Contact Deleted", Some("customer"), RelationEnd::ByCustomer)
                .await
        }
        ("change_external_contact", "transfer_fail") => work.transfer_failed().await,
        ("change_external_tag", _) => work.mirror_tags().await,
        ("change_external_chat", change) => work.chat_changed(change).await,
        (name, change) => {
            tracing::info!(
                connector = id.0,
                event = name,
                change,
                "a WeCom event siyu does not act on yet"
            );
            Ok(())
        }
    }
}

struct Work<'a> {
    services: &'a Services,
    ctx: &'a JobContext,
    tenant: TenantId,
    id: ConnectorId,
    event: &'a CallbackEvent,
    client: WecomClient<StoreHost>,
    wecom: WecomConnector,
    actor: Actor,
}

impl Work<'_> {
    fn scope(&self) -> TenantScope<'_> {
        self.services.store.tenant(self.tenant)
    }

    fn external_userid(&self) -> Result<&str, JobError> {
        self.event
            .external_user_id
            .as_deref()
            .filter(|e| !e.is_empty())
            .ok_or_else(|| JobError::permanent("the event names no ExternalUserID"))
    }

    /// When the event happened (ms), WeCom's CreateTime.
    fn at(&self) -> i64 {
        self.event
            .create_time
            .map_or_else(siyu_store::now_ms, |t| t.saturating_mul(1_000))
    }

    /// Reads the contact with `get` and stores it; answers its profile. A contact
    /// WeCom no longer relates to anyone (deleted before this ran) is left to the
    /// deletion's own event.
    async fn read_contact_again(&self) -> Result<Option<CustomerId>, JobError> {
        let external = self.external_userid()?;
        let scope = self.scope();
        let context = scope.wecom_context(self.id, &self.actor).await?;
        match read_contact(
            &self.client,
            &scope,
            self.id,
            &context,
            external,
            &self.actor,
        )
        .await?
        {
            ContactReading::Stored(customer) => Ok(customer),
            ContactReading::Gone => Ok(scope.wecom_customer(self.id, external).await?),
        }
    }

    async fn contact_added(&self) -> Result<(), JobError> {
        let customer = self.read_contact_again().await?;
        let Some(code) = self.event.welcome_code.as_deref().filter(|c| !c.is_empty()) else {
            return Ok(());
        };
        self.welcome(customer, code).await
    }

    /// Answers a WelcomeCode once (see the module's documentation).
    async fn welcome(&self, customer: Option<CustomerId>, code: &str) -> Result<(), JobError> {
        let external = self.external_userid()?;
        let scope = self.scope();
        let earlier = scope
            .connector_sends_to(self.id, WELCOME_SEND, external)
            .await?;
        if earlier.iter().any(|s| s.job_id == Some(self.ctx.id())) {
            return Ok(()); // an earlier try of this job answered it
        }
        let member = self.event.user_id.clone().unwrap_or_default();
        let member = scope.wecom_member(self.id, &member).await?;
        let staff = member
            .as_ref()
            .map(|m| siyu_domain::ids::StaffId(m.staff_id));
        let mut send = NewConnectorSend {
            connector: self.id,
            kind: WELCOME_SEND.into(),
            customer,
            staff,
            recipient: external.to_owned(),
            status: SendStatus::Sent,
            detail: None,
            job: Some(self.ctx.id()),
        };
        let allowed = match customer {
            Some(c) => scope.may_contact(c, ConsentChannel::Wecom).await?,
            None => true,
        };
        if !allowed {
            send.status = SendStatus::Refused;
            send.detail = Some("the customer opted out of WeCom".into());
            scope.record_connector_send(&send).await?;
            return Ok(());
        }
        let by_code = self.code_welcome(customer, member.as_ref()).await?;
        let text = welcome_text(
            by_code
                .as_deref()
                .or(member.as_ref().and_then(|m| m.welcome.as_deref())),
            self.wecom.settings.welcome.as_deref(),
        );
        match self.client.send_welcome(code, text).await {
            Ok(()) => {}
            // the code was used or its 20 s ran out: trying again cannot help
            Err(WecomError::Call {
                errcode, message, ..
            }) => {
                send.status = SendStatus::Failed;
                send.detail = Some(format!("{errcode} {message}"));
            }
            Err(e) => return Err(job_error(e)),
        }
        scope.record_connector_send(&send).await?;
        Ok(())
    }

    /// The welcome of the live channel code the add came through, with the customer's
    /// and the member's names in; none when it has none.
    async fn code_welcome(
        &self,
        customer: Option<CustomerId>,
        member: Option<&siyu_store::WecomMemberRow>,
    ) -> Result<Option<String>, JobError> {
        let Some(state) = self.event.state.as_deref().filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let scope = self.scope();
        let Some(template) = scope
            .channel_code_by_state(state)
            .await?
            .filter(|c| c.connector_id == Some(self.id))
            .and_then(|c| c.welcome)
        else {
            return Ok(None);
        };
        let customer_name = match customer {
            Some(c) => scope
                .get_customer(c)
                .await?
                .traits
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or("")
                .to_owned(),
            None => String::new(),
        };
        let member_name = member.map(|m| m.name.as_str()).unwrap_or("");
        Ok(Some(render_welcome(&template, &customer_name, member_name)))
    }

    async fn relation_ended(
        &self,
        name: &str,
        by: Option<&str>,
        end: RelationEnd,
    ) -> Result<(), JobError> {
        let external = self.external_userid()?;
        let member = self.event.user_id.clone().unwrap_or_default();
        let scope = self.scope();
        let at = self.at();
        let customer = scope
            .end_wecom_relation(self.id, external, &member, at, end)
            .await?;
        if customer.is_none() {
            // a contact siyu never had: nothing on a profile to say it ended
            return Ok(());
        }
        let mut properties = Map::new();
        properties.insert("member".into(), json!(member));
        if let Some(by) = by {
            properties.insert("by".into(), json!(by));
        }
        properties.insert("connector_id".into(), json!(self.id.0));
        let context = scope.wecom_context(self.id, &self.actor).await?;
        let message_id = format!(
            "wecom-{}-{}-{}-{}-{}",
            self.event.change_type.as_deref().unwrap_or("change"),
            self.id.0,
            external,
            member,
            self.event.create_time.unwrap_or(0)
        );
        scope
            .record_wecom_event(&context, external, name, properties, at, message_id)
            .await?;
        if let Some(customer) = scope.wecom_customer(self.id, external).await? {
            scope
                .match_wecom_tags(self.id, customer, &self.actor)
                .await?;
        }
        Ok(())
    }

    async fn transfer_failed(&self) -> Result<(), JobError> {
        let external = self.external_userid()?;
        let scope = self.scope();
        if scope.wecom_customer(self.id, external).await?.is_none() {
            return Ok(());
        }
        let member = self.event.user_id.clone().unwrap_or_default();
        let mut properties = Map::new();
        properties.insert("member".into(), json!(member));
        properties.insert(
            "reason".into(),
            Value::from(self.event.fail_reason.clone().unwrap_or_default()),
        );
        let context = scope.wecom_context(self.id, &self.actor).await?;
        let message_id = format!(
            "wecom-transfer_fail-{}-{external}-{member}-{}",
            self.id.0,
            self.event.create_time.unwrap_or(0)
        );
        scope
            .record_wecom_event(
                &context,
                external,
                "Contact Transfer Failed",
                properties,
                self.at(),
                message_id,
            )
            .await?;
        Ok(())
    }

    async fn chat_changed(&self, change: &str) -> Result<(), JobError> {
        let chat_id = self
            .event
            .chat_id
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| JobError::permanent("the event names no ChatId"))?;
        let scope = self.scope();
        if change == "dismiss" {
            scope.dismiss_wecom_chat(self.id, chat_id).await?;
            return Ok(());
        }
        let context = scope.wecom_context(self.id, &self.actor).await?;
        super::chats::read_chat(&self.client, &scope, self.id, &context, chat_id).await?;
        Ok(())
    }

    async fn mirror_tags(&self) -> Result<(), JobError> {
        let groups = self.client.corp_tags().await.map_err(job_error)?;
        self.scope()
            .mirror_wecom_tags(self.id, &tag_records(&groups), &self.actor)
            .await?;
        Ok(())
    }
}

/// The welcome a customer who added a member is sent: the member's, else the
/// connector's, else the built-in greeting (a blank one counts as none).
pub fn welcome_text<'a>(member: Option<&'a str>, connector: Option<&'a str>) -> &'a str {
    [member, connector]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|w| !w.is_empty())
        .unwrap_or(BUILT_IN_WELCOME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_members_welcome_comes_before_the_connectors_and_the_built_in_one() {
        assert_eq!(welcome_text(Some("我是小王"), Some("欢迎")), "我是小王");
        assert_eq!(welcome_text(None, Some("欢迎")), "欢迎");
        assert_eq!(
            welcome_text(Some("  "), Some("欢迎")),
            "欢迎",
            "blank is none"
        );
        assert_eq!(welcome_text(None, None), BUILT_IN_WELCOME);
        assert_eq!(welcome_text(Some(""), Some(" ")), BUILT_IN_WELCOME);
    }
}
