//! The `wecom.relation_changes` job: a connector's adds and deletions, taken from
//! callbacks, applied in bulk from what each callback says (see
//! `siyu_store::connectors::wecom_relation_changes` for what applying does and why it
//! is safe to stop anywhere).
//!
//! A customer adding a member is the callback that comes in floods (a live stream, an
//! ad), and WeCom's `get` allows 10,000 calls a minute per corp: reading every contact
//! before applying its add would hold the floods to WeCom's pace. So the add is applied
//! at once, and what needs WeCom follows as jobs: an add that carries a `WelcomeCode`
//! gets its `wecom.callback` job (at high priority: the code lasts 20 s), which reads
//! the contact with `get` and welcomes them; the others are read by the connector's
//! contacts sweep (`personal_tags`), which reads contacts never read first and paces
//! itself under WeCom's limits.

use serde::Deserialize;
use serde_json::json;
use siyu_connect::wecom::callback::CallbackEvent;
use siyu_domain::audit::Actor;
use siyu_domain::ids::{ConnectorId, TenantId};
use siyu_store::{
    NewJob, RelationChange, RelationChanges, RelationEnd, WecomContactRecord, WecomFollowRecord,
};

use crate::Services;
use crate::runner::{JobContext, JobError, JobHandler, handler_fn};

/// Changes applied in one transaction at most: large enough that each shared page is
/// written once for many, small enough that other writers wait well under a second.
pub const APPLY_GROUP: i64 = 2_000;
/// How soon after adds the sweep reads the contacts they brought: as after a sync, a
/// minute, so that a flood's callbacks and the welcomes go first (a read of WeCom that
/// lands after a newer one would bring back what the newer one changed).
pub const READ_ADDED_AFTER: std::time::Duration = super::personal_tags::AFTER_SYNC;

/// Whether a callback's event is a relation change this job applies (the callback
/// route takes those in bulk; every other event is a `wecom.callback` job of its own).
pub fn is_relation_change(event: &CallbackEvent) -> bool {
    matches!(
        (event.event.as_deref(), event.change_type.as_deref()),
        (
            Some("change_external_contact"),
            Some(
                "add_external_contact"
                    | "add_half_external_contact"
                    | "del_external_contact"
                    | "del_follow_user"
            )
        )
    ) && event
        .external_user_id
        .as_deref()
        .is_some_and(|e| !e.is_empty())
        && event.user_id.as_deref().is_some_and(|u| !u.is_empty())
}

/// The change an event tells of (`None` for an event that is not one).
pub fn relation_change(connector: ConnectorId, event: &CallbackEvent) -> Option<RelationChange> {
    if !is_relation_change(event) {
        return None;
    }
    let external_userid = event.external_user_id.clone().unwrap_or_default();
    let userid = event.user_id.clone().unwrap_or_default();
    let at = event
        .create_time
        .map_or_else(siyu_store::now_ms, |t| t.saturating_mul(1_000));
    let change_type = event.change_type.as_deref().unwrap_or("");
    let end = match change_type {
        "del_follow_user" => RelationEnd::ByCustomer,
        "del_external_contact" if event.source.as_deref() == Some("DELETE_BY_TRANSFER") => {
            RelationEnd::Transferred
        }
        "del_external_contact" => RelationEnd::ByMember,
        _ => {
            let state = event.state.clone().unwrap_or_default();
            return Some(RelationChange::Added(Box::new(WecomContactRecord {
                external_userid,
                unionid: None,
                name: String::new(),
                avatar: String::new(),
                gender: 0,
                contact_type: 0,
                corp_name: String::new(),
                follow: WecomFollowRecord {
                    userid,
                    remark: String::new(),
                    description: String::new(),
                    added_at: at,
                    tag_ids: Vec::new(),
                    add_way: 0,
                    state,
                    oper_userid: String::new(),
                    personal_tags: None,
                },
            })));
        }
    };
    let message_id = format!(
        "wecom-{change_type}-{}-{external_userid}-{userid}-{}",
        connector.0,
        event.create_time.unwrap_or(0)
    );
    Some(RelationChange::Ended {
        external_userid,
        userid,
        at,
        end,
        message_id,
    })
}

#[derive(Deserialize)]
struct Payload {
    connector_id: ConnectorId,
}

/// The job's handler.
pub fn handler(services: &Services) -> impl JobHandler {
    let services = services.clone();
    handler_fn(
        siyu_domain::jobs::kind::WECOM_RELATION_CHANGES,
        move |ctx| {
            let services = services.clone();
            async move { run(&services, ctx).await }
        },
    )
}

async fn run(services: &Services, ctx: JobContext) -> Result<(), JobError> {
    let payload: Payload = ctx.payload()?;
    let tenant = ctx.job.tenant.ok_or_else(|| {
        JobError::permanent("a connector's relation changes belong to a tenant; these to none")
    })?;
    let id = payload.connector_id;
    let scope = services.store.tenant(tenant);
    let actor = Actor::system(format!("WeCom connector {}", id.0));
    let context = scope.wecom_context(id, &actor).await?;
    loop {
        let waiting = scope
            .waiting_wecom_relation_changes(id, APPLY_GROUP)
            .await?;
        let mut through = 0;
        let mut changes = Vec::with_capacity(waiting.len());
        let mut follow_ups = Vec::new();
        // relations ended among these: one added again after its end waits for the
        // next group, so that adds can go first within a group
        let mut ended: std::collections::HashSet<(String, String)> = Default::default();
        for row in &waiting {
            let event: CallbackEvent = match serde_json::from_str(&row.event) {
                Ok(event) => event,
                Err(e) => {
                    // the route wrote it from a read event: not one to retry
                    tracing::error!(connector = id.0, change = row.id, error = %e,
                        "a taken relation change is not an event; dropped");
                    through = row.id;
                    continue;
                }
            };
            let Some(change) = relation_change(id, &event) else {
                through = row.id;
                continue;
            };
            match &change {
                RelationChange::Added(record) => {
                    let key = (record.external_userid.clone(), record.follow.userid.clone());
                    if ended.contains(&key) {
                        break;
                    }
                    if event.welcome_code.as_deref().is_some_and(|c| !c.is_empty()) {
                        follow_ups.push(welcome_job(tenant, id, &event));
                    }
                }
                RelationChange::Ended {
                    external_userid,
                    userid,
                    ..
                } => {
                    ended.insert((external_userid.clone(), userid.clone()));
                }
            }
            changes.push(change);
            through = row.id;
        }
        if changes
            .iter()
            .any(|c| matches!(c, RelationChange::Added(_)))
        {
            follow_ups.push(super::personal_tags::sweep_job(
                tenant,
                id,
                READ_ADDED_AFTER,
            ));
        }
        let began = std::time::Instant::now();
        let applied = scope
            .apply_wecom_relation_changes(
                id,
                &context,
                &RelationChanges {
                    first: waiting.first().map_or(0, |w| w.id),
                    through,
                    changes: &changes,
                    follow_ups,
                },
                ctx.id(),
                &ctx.job.worker,
                &actor,
            )
            .await?;
        tracing::debug!(
            connector = id.0,
            changes = changes.len(),
            added = applied.added,
            ended = applied.ended,
            ms = began.elapsed().as_millis() as u64,
            "relation changes applied"
        );
        if applied.drained {
            return Ok(());
        }
    }
}

/// The job that reads an added contact and answers its `WelcomeCode` within WeCom's
/// 20 seconds (the callback job, ahead of other work).
fn welcome_job(tenant: TenantId, id: ConnectorId, event: &CallbackEvent) -> NewJob {
    NewJob::new(
        siyu_domain::jobs::kind::WECOM_CALLBACK,
        json!({"connector_id": id.0, "event": event}),
    )
    .for_tenant(tenant)
    .with_priority(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(change_type: &str, source: Option<&str>) -> CallbackEvent {
        CallbackEvent {
            event: Some("change_external_contact".into()),
            change_type: Some(change_type.into()),
            user_id: Some("zhangsan".into()),
            external_user_id: Some("wmEXT".into()),
            state: Some("douyin-01".into()),
            create_time: Some(1_700_000_000),
            source: source.map(str::to_owned),
            ..CallbackEvent::default()
        }
    }

    #[test]
    fn an_add_is_the_relation_its_callback_tells_of() {
        let Some(RelationChange::Added(record)) =
            relation_change(ConnectorId(3), &event("add_external_contact", None))
        else {
            panic!("an add");
        };
        assert_eq!(record.external_userid, "wmEXT");
        assert_eq!(record.follow.userid, "zhangsan");
        assert_eq!(record.follow.state, "douyin-01");
        assert_eq!(record.follow.added_at, 1_700_000_000_000);
    }

    #[test]
    fn deletions_say_who_ended_the_relation_and_a_transfer_is_no_deletion() {
        let end =
            |change: &str, source| match relation_change(ConnectorId(3), &event(change, source)) {
                Some(RelationChange::Ended {
                    end, message_id, ..
                }) => (end, message_id),
                other => panic!("an end, not {other:?}"),
            };
        assert_eq!(end("del_follow_user", None).0, RelationEnd::ByCustomer);
        assert_eq!(end("del_external_contact", None).0, RelationEnd::ByMember);
        assert_eq!(
            end("del_external_contact", Some("DELETE_BY_TRANSFER")).0,
            RelationEnd::Transferred
        );
        assert_eq!(
            end("del_follow_user", None).1,
            "wecom-del_follow_user-3-wmEXT-zhangsan-1700000000"
        );
    }

    #[test]
    fn other_events_and_changes_naming_nobody_are_not_applied_in_bulk() {
        assert!(!is_relation_change(&event("edit_external_contact", None)));
        let mut nameless = event("add_external_contact", None);
        nameless.external_user_id = Some(String::new());
        assert!(!is_relation_change(&nameless));
        let mut chat = event("add_external_contact", None);
        chat.event = Some("change_external_chat".into());
        assert!(!is_relation_change(&chat));
    }
}
