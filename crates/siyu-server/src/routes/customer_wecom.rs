//! A customer's WeCom relations on their profile: which members have them as a contact,
//! with remarks, corp tags and personal tags. Personal tags are not in WeCom's bulk
//! sync (`batch/get_by_user` has corp tags only), so they are read lazily: opening a
//! profile whose relations were not read with `get` in the last day asks for a read
//! (a `wecom.callback` job as for a member's edit, one per contact while it waits),
//! which the next opening shows.

use axum::Json;
use axum::extract::State;
use serde_json::json;
use siyu_connect::wecom::callback::CallbackEvent;
use siyu_domain::access::Permission;
use siyu_domain::connector::WecomRelationView;
use siyu_domain::customer::CustomerId;
use siyu_domain::jobs::kind;
use siyu_store::NewJob;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, Auth};

/// How long personal tags read with `get` are shown before a profile opened asks again.
pub const PERSONAL_TAGS_FRESH_MS: i64 = 86_400_000;

#[utoipa::path(get, path = "/api/v1/customers/{id}/wecom", tag = "customers",
    params(("id" = i64, Path)),
    responses((status = 200, description = "follow relations, live first", body = Vec<WecomRelationView>),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn customer_wecom_relations(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<WecomRelationView>>> {
    auth.require(Permission::CustomersRead)?;
    let scope = auth.scope(&app.store).await?;
    let customer = scope.get_customer(CustomerId(id)).await?;
    let relations = scope.wecom_relations_for_customer(customer.id).await?;
    let now = siyu_store::now_ms();
    let mut asked: Vec<NewJob> = Vec::new();
    for relation in relations.iter().filter(|r| {
        r.deleted_at.is_none()
            && r.personal_tags_at
                .is_none_or(|at| now - at > PERSONAL_TAGS_FRESH_MS)
    }) {
        let key = format!(
            "read:{}:{}",
            relation.connector_id.0, relation.external_userid
        );
        if asked
            .iter()
            .any(|j| j.unique_key.as_deref() == Some(key.as_str()))
        {
            continue;
        }
        let event = CallbackEvent {
            event: Some("change_external_contact".into()),
            change_type: Some("edit_external_contact".into()),
            user_id: Some(relation.member.clone()),
            external_user_id: Some(relation.external_userid.clone()),
            ..CallbackEvent::default()
        };
        asked.push(
            NewJob::new(
                kind::WECOM_CALLBACK,
                json!({"connector_id": relation.connector_id.0, "event": event}),
            )
            .for_tenant(scope.id())
            .unique_key(key),
        );
    }
    if !asked.is_empty() {
        // a read that cannot be asked for now is asked for at the next opening
        if let Err(e) = scope.enqueue(&asked).await {
            tracing::warn!(customer = id, error = %e, "cannot ask WeCom for personal tags");
        }
    }
    Ok(Json(relations))
}
