//! WeCom's callback URL, `/callbacks/wecom/{id}`: what a connector's admin pastes into
//! WeCom (接收事件服务器), so WeCom calls it, with no session or token. Its credential is
//! the signature: WeCom signs every call with the connector's callback token and
//! encrypts it with its EncodingAESKey for its corp id, and a call that does not check
//! out is refused (401 for the signature, 400 for the rest), logged, and nothing kept.
//!
//! - `GET` is the URL check WeCom makes when the URL is saved: the `echostr`'s plaintext
//!   is the answer.
//! - `POST` is an event. WeCom sends it again when it has no answer within 5 s, so the
//!   handler only takes it: the event is read (`siyu_connect::wecom::callback`) and
//!   kept, once per event however often it comes (the store keeps its key), and the
//!   answer is `success`; jobs do the work. Adds and deletions, which come in floods,
//!   are kept many to a transaction (`siyu_runtime::wecom::intake`) and applied in bulk
//!   (`siyu_runtime::wecom::relation_changes`); any other event gets a `wecom.callback`
//!   job of its own.
//!
//! The connector is found by its id in any tenant (`Store::connector_for_callback`):
//! that tenant's scope is the whole tenant, as for any work of the system.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use serde::Deserialize;
use serde_json::json;
use siyu_connect::wecom::callback::{CallbackError, read_callback};
use siyu_connect::wecom::crypto::{CallbackCrypto, CryptoError};
use siyu_domain::connector::{ConnectorKind, WecomConnector};
use siyu_domain::ids::{ConnectorId, TenantId};
use siyu_domain::jobs::kind;
use siyu_runtime::wecom::relation_changes::is_relation_change;
use siyu_store::{NewJob, TenantScope};
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};

/// How WeCom signs a callback (`?msg_signature=&timestamp=&nonce=`).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Signed {
    /// SHA-1 of the token, timestamp, nonce and encrypted text.
    pub msg_signature: String,
    pub timestamp: String,
    pub nonce: String,
}

/// The URL check's parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UrlCheck {
    /// SHA-1 of the token, timestamp, nonce and `echostr`.
    pub msg_signature: String,
    pub timestamp: String,
    pub nonce: String,
    /// The encrypted text whose plaintext is the answer.
    pub echostr: String,
}

/// WeCom's URL check, made when the URL is saved in WeCom's admin.
///
/// Answers the `echostr`'s plaintext when the signature is the connector's.
#[utoipa::path(get, path = "/callbacks/wecom/{id}", tag = "connectors", security(()),
    params(("id" = i64, Path, description = "the connector"), UrlCheck),
    responses(
        (status = 200, description = "the echostr's plaintext", body = String, content_type = "text/plain"),
        (status = 400, description = "the echostr does not decrypt for this connector's corp (`bad_request`)", body = ErrorBody),
        (status = 401, description = "the signature is not the connector's (`invalid_signature`)", body = ErrorBody),
        (status = 404, description = "no such connector (`not_found`)", body = ErrorBody),
    ))]
pub async fn verify_wecom_url(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(check): ApiQuery<UrlCheck>,
) -> ApiResult<String> {
    let id = ConnectorId(id);
    let (_, crypto) = wecom_connector(&app, id).await?;
    // a `+` sent unencoded reads as a space in a query; base64 has no spaces
    let echostr = check.echostr.replace(' ', "+");
    crypto
        .verify_url(
            &check.msg_signature,
            &check.timestamp,
            &check.nonce,
            &echostr,
        )
        .map_err(|e| refused(id, CallbackError::Crypto(e)))
}

/// A WeCom event: taken once and answered `success`.
///
/// An add or a deletion is kept with others and applied in bulk by the connector's
/// `wecom.relation_changes` job; any other event gets a `wecom.callback` job of its
/// own. A repeat of an event taken before changes nothing and is answered `success`
/// too.
#[utoipa::path(post, path = "/callbacks/wecom/{id}", tag = "connectors", security(()),
    params(("id" = i64, Path, description = "the connector"), Signed),
    request_body(content = String, content_type = "text/xml",
        description = "`<xml><ToUserName/><Encrypt/><AgentID/></xml>`, the event encrypted in `Encrypt`"),
    responses(
        (status = 200, description = "taken (or taken before): `success`", body = String, content_type = "text/plain"),
        (status = 400, description = "not XML with an `Encrypt`, not for this connector's corp, or not an event (`bad_request`)", body = ErrorBody),
        (status = 401, description = "the signature is not the connector's (`invalid_signature`)", body = ErrorBody),
        (status = 404, description = "no such connector (`not_found`)", body = ErrorBody),
    ))]
pub async fn receive_wecom_event(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(signed): ApiQuery<Signed>,
    body: Bytes,
) -> ApiResult<&'static str> {
    let id = ConnectorId(id);
    let read = |connector: &KeptConnector| {
        read_callback(
            &connector.crypto,
            &signed.msg_signature,
            &signed.timestamp,
            &signed.nonce,
            &body,
        )
    };
    let mut connector = app.callback_connectors.get(&app, id, false).await?;
    let event = match read(&connector) {
        // secrets changed since they were kept: read them again, once
        Err(CallbackError::Crypto(CryptoError::BadSignature)) => {
            connector = app.callback_connectors.get(&app, id, true).await?;
            read(&connector)
        }
        read => read,
    }
    .map_err(|e| refused(id, e))?;
    let scope = app.store.tenant(connector.tenant);
    // taking it writes: it goes before the ingest applier (SQLite)
    let _writes_first = app.ingestor.writing();
    let key = event.dedupe_key();
    if is_relation_change(&event) {
        // adds and deletions: kept with many others, applied in bulk
        let event = serde_json::to_string(&event)
            .map_err(|e| ApiError::Internal(format!("a read event: {e}")))?;
        let taken = app
            .relation_intake
            .take(scope.id(), id, key.clone(), event)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        if !taken {
            tracing::debug!(connector = id.0, key = %key, "wecom callback repeated");
        }
        return Ok("success");
    }
    let job = NewJob::new(
        kind::WECOM_CALLBACK,
        json!({"connector_id": id.0, "event": event}),
    )
    .for_tenant(scope.id())
    // a welcome code lasts 20 s: its add goes before other work
    .with_priority(if event.welcome_code.is_some() { 10 } else { 0 });
    if event.reads_state_again() {
        // processed again, it reads WeCom again: never dropped as a repeat
        scope.enqueue(&[job]).await?;
        return Ok("success");
    }
    let taken = scope.accept_connector_callback(id, &key, job).await?;
    if taken.is_none() {
        tracing::debug!(connector = id.0, key = %key, "wecom callback repeated");
    }
    Ok("success")
}

/// How long a connector's callback crypto is kept: callbacks come in floods, and each
/// would otherwise read the connector and open its secrets. A callback whose signature
/// does not check out with what is kept reads them again, so changed secrets take at
/// once; a deleted connector's are kept at most this long (its callbacks then fail to
/// be kept).
const KEEP_CONNECTOR: Duration = Duration::from_secs(10);

/// A connector's tenant and callback crypto, as kept.
pub struct KeptConnector {
    tenant: TenantId,
    crypto: CallbackCrypto,
    read_at: Instant,
}

/// WeCom connectors' callback crypto, kept for [`KEEP_CONNECTOR`].
#[derive(Default)]
pub struct CallbackConnectors {
    kept: Mutex<HashMap<ConnectorId, Arc<KeptConnector>>>,
}

impl CallbackConnectors {
    /// The connector's tenant and crypto: as kept unless older than [`KEEP_CONNECTOR`]
    /// or `fresh` is asked; 404 for no such WeCom connector.
    async fn get(
        &self,
        app: &AppState,
        id: ConnectorId,
        fresh: bool,
    ) -> ApiResult<Arc<KeptConnector>> {
        if !fresh
            && let Some(kept) = self.kept().get(&id)
            && kept.read_at.elapsed() < KEEP_CONNECTOR
        {
            return Ok(kept.clone());
        }
        let (scope, crypto) = wecom_connector(app, id).await?;
        let kept = Arc::new(KeptConnector {
            tenant: scope.id(),
            crypto,
            read_at: Instant::now(),
        });
        let mut all = self.kept();
        all.retain(|_, k| k.read_at.elapsed() < KEEP_CONNECTOR);
        all.insert(id, kept.clone());
        Ok(kept)
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<ConnectorId, Arc<KeptConnector>>> {
        self.kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The connector's tenant (its whole scope) and callback crypto; 404 for no such WeCom
/// connector.
async fn wecom_connector(
    app: &AppState,
    id: ConnectorId,
) -> ApiResult<(TenantScope<'_>, CallbackCrypto)> {
    let connector = app
        .store
        .connector_for_callback(id)
        .await?
        .filter(|c| c.kind == ConnectorKind::Wecom)
        .ok_or(ApiError::NotFound("connector"))?;
    let scope = app.store.tenant(connector.tenant);
    let stored = scope.connector_secrets(id).await?;
    let wecom = WecomConnector::read(&stored.connector.config, &stored.secrets)
        .map_err(|e| ApiError::Internal(format!("connector {id}: {e}")))?;
    let crypto = CallbackCrypto::new(
        &wecom.secrets.token,
        &wecom.secrets.encoding_aes_key,
        &wecom.settings.corp_id,
    )
    .map_err(|e| ApiError::Internal(format!("connector {id}: {e}")))?;
    Ok((scope, crypto))
}

/// A callback that does not check out: logged (someone is calling with the wrong
/// secrets, or is not WeCom) and refused.
fn refused(id: ConnectorId, error: CallbackError) -> ApiError {
    tracing::warn!(connector = id.0, error = %error, "wecom callback refused");
    match error {
        CallbackError::Crypto(CryptoError::BadSignature) => ApiError::InvalidSignature,
        other => ApiError::BadRequest(other.to_string()),
    }
}
