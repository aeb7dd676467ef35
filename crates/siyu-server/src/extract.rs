//! Extractors that turn every kind of bad input into the one error body.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use serde::de::DeserializeOwned;
use siyu_domain::FieldError;
use siyu_domain::access::{Permission, PermissionSet, Principal, Role};
use siyu_domain::audit::Actor;
use siyu_domain::page::PageRequest;

use crate::error::ApiError;
use crate::{AppState, SESSION_COOKIE, ServerConfig};
use siyu_runtime::ingest::WritingRequest;

/// A JSON body. Malformed JSON is a 400 `invalid_json`; JSON of the wrong shape is a 422
/// naming the field path (`items[2].price`); a body over the limit is a 413.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json")
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let limit = AppState::from_ref(state).config.body_limit_bytes;
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge(limit)
                } else {
                    ApiError::BadRequest(e.body_text())
                }
            })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses JSON, telling syntax errors (400) from shape errors (422 with the path).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    if value.is_ok() {
        // trailing characters after the value are a syntax error
        de.end().map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    }
    match value {
        Ok(value) => Ok(value),
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            match inner.classify() {
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                    Err(ApiError::InvalidJson(inner.to_string()))
                }
                _ => {
                    let message = strip_position(&inner.to_string());
                    let field = if path == "." {
                        missing_field(&message).unwrap_or_else(|| "$".to_owned())
                    } else {
                        match missing_field(&message) {
                            Some(missing) => format!("{path}.{missing}"),
                            None => path,
                        }
                    };
                    Err(ApiError::Validation(vec![FieldError::new(field, message)]))
                }
            }
        }
    }
}

/// serde_json appends " at line 1 column 42"; the field path says more to a client.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// serde reports a missing field at its parent; name the field itself.
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// Query parameters; a bad one is a 422 naming it.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let field = e.path().to_string();
                let message = e.into_inner().to_string();
                let field = if field == "." {
                    message
                        .strip_prefix("missing field `")
                        .and_then(|r| r.split('`').next())
                        .unwrap_or("query")
                        .to_owned()
                } else {
                    field
                };
                ApiError::field(field, message)
            })
    }
}

/// A path parameter; one that does not parse is a 422 naming it.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| ApiPath(p))
            .map_err(|e| {
                use axum::extract::path::ErrorKind;
                use axum::extract::rejection::PathRejection;
                let field = match &e {
                    PathRejection::FailedToDeserializePathParams(inner) => match inner.kind() {
                        ErrorKind::ParseErrorAtKey { key, .. } => key.clone(),
                        _ => "id".to_owned(),
                    },
                    _ => "path".to_owned(),
                };
                ApiError::field(field, e.body_text())
            })
    }
}

/// `?cursor=&limit=` of list endpoints.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    pub limit: Option<u32>,
}

impl PageParams {
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        Ok(PageRequest::parse(self.cursor.as_deref(), self.limit)?)
    }
}

/// The caller's address: the peer, or the first `X-Forwarded-For` hop when the server is
/// configured to trust its proxy.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Whether the client reached us over TLS (through a trusted proxy).
    pub https: bool,
}

impl<S> FromRequestParts<S> for ClientInfo
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let app = AppState::from_ref(state);
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        // the rightmost hop is the one our trusted proxy added; those left of it are
        // whatever the client claimed
        let forwarded = header("x-forwarded-for")
            .and_then(|v| v.rsplit(',').next().map(|s| s.trim().to_owned()))
            .and_then(|s| s.parse::<IpAddr>().ok());
        let trust = app.config.trust_proxy_headers;
        let ip = if trust { forwarded.or(peer) } else { peer };
        let https =
            trust && header("x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https"));
        Ok(ClientInfo {
            ip: ip.map(|ip| ip.to_string()),
            user_agent: header("user-agent"),
            https,
        })
    }
}

/// The signed-in principal: from `Authorization: Bearer TOKEN` for programs, or from
/// the session cookie for the console.
pub struct Auth {
    pub principal: Principal,
    pub client: ClientInfo,
    /// Held while a request that may write is answered: on SQLite the ingest applier
    /// lets it go first (see `crate::ingest`).
    _writes_first: Option<WritingRequest>,
}

impl Auth {
    /// The caller's tenant, limited to the customers their data scope reaches (own
    /// customers, their unit subtree's, or all): how a handler reaches the store. Every
    /// read, list, count and change of customers through it stays within that reach
    /// without the handler doing anything; `TenantScope::whole_tenant` is the visible
    /// step for the few things a narrower principal may do over the whole tenant.
    pub async fn scope<'s>(
        &self,
        store: &'s siyu_store::Store,
    ) -> Result<siyu_store::TenantScope<'s>, ApiError> {
        Ok(store.scope_for(&self.principal).await?)
    }

    /// Refuses with 403 unless the principal holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.principal.can(permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "your role ({}) does not have the permission {permission}",
                self.principal.role
            )))
        }
    }

    /// Refuses with 403 unless the principal holds every one of `permissions`: nobody
    /// hands out, or acts on, more than they hold themselves.
    pub fn require_all(&self, permissions: &PermissionSet) -> Result<(), ApiError> {
        match permissions.iter().find(|p| !self.principal.can(*p)) {
            None => Ok(()),
            Some(missing) => Err(ApiError::Forbidden(format!(
                "that needs {missing}, which your role ({}) does not have",
                self.principal.role
            ))),
        }
    }

    /// [`Auth::require_all`] for the permissions of a role, naming the role.
    pub fn require_role_within(&self, role: &Role) -> Result<(), ApiError> {
        self.require_all(&role.permissions).map_err(|_| {
            ApiError::Forbidden(format!(
                "the role {} has permissions that your role ({}) lacks",
                role.name, self.principal.role
            ))
        })
    }

    /// The actor to record in the audit log.
    pub fn actor(&self) -> Actor {
        self.principal.actor(self.client.ip.clone())
    }
}

impl<S> FromRequestParts<S> for Auth
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let app = AppState::from_ref(state);
        let client = ClientInfo::from_request_parts(parts, state).await?;
        // a session is touched now and then while it is resolved, a write: every request
        // goes before the applier while it signs in, and one that may write until answered
        let signing_in = app.ingestor.writing();
        let principal = if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
            let token = auth
                .to_str()
                .ok()
                .and_then(bearer_token)
                .ok_or(ApiError::Unauthenticated)?;
            app.store
                .resolve_api_token(token)
                .await?
                .ok_or(ApiError::Unauthenticated)?
        } else {
            let session = cookie_value(parts, SESSION_COOKIE).ok_or(ApiError::Unauthenticated)?;
            if may_write(&parts.method) {
                check_same_origin(parts, &app.config, &client)?;
            }
            app.store
                .resolve_session(&session)
                .await?
                .ok_or(ApiError::Unauthenticated)?
        };
        // a read lets go of its turn here; `then_some` would drop it before resolving
        let writes_first = if may_write(&parts.method) {
            Some(signing_in)
        } else {
            drop(signing_in);
            None
        };
        Ok(Auth {
            principal,
            client,
            _writes_first: writes_first,
        })
    }
}

/// Refuses (403) a cookie-signed request that may write when the browser says it comes
/// from another site: its `Origin` must be the configured `public_url`'s, or, with none
/// set, the origin the request was sent to (`Host`, or a trusted proxy's
/// `X-Forwarded-Host`, with the scheme the proxy reports);
/// without `Origin`, `Sec-Fetch-Site` must be `same-origin` or `none`. SameSite=Lax
/// cookies already stay home on cross-site POSTs; this also covers sibling subdomains
/// (same site, other origin) and browsers without SameSite. Programs that send neither
/// header (curl with a cookie) are not browsers that a page could drive.
fn check_same_origin(
    parts: &Parts,
    config: &ServerConfig,
    client: &ClientInfo,
) -> Result<(), ApiError> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let refuse = || {
        Err(ApiError::Forbidden(
            "this request came from another site: changes are made from the console's own origin"
                .into(),
        ))
    };
    if let Some(origin) = header("origin") {
        return match public_origin(parts, config, client) {
            Some(expected) if origin.trim_end_matches('/').eq_ignore_ascii_case(&expected) => {
                Ok(())
            }
            _ => refuse(),
        };
    }
    match header("sec-fetch-site") {
        None | Some("same-origin") | Some("none") => Ok(()),
        Some(_) => refuse(),
    }
}

/// Where browsers reach siyu (`scheme://host[:port]`): the configured `public_url`'s
/// origin, or, with none set, the origin the request was sent to (`Host`, or a trusted
/// proxy's `X-Forwarded-Host`, with the scheme the proxy reports).
fn public_origin(parts: &Parts, config: &ServerConfig, client: &ClientInfo) -> Option<String> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    match &config.public_url {
        Some(url) => origin_of(url),
        None => (if config.trust_proxy_headers {
            header("x-forwarded-host").or_else(|| header("host"))
        } else {
            header("host")
        })
        .map(|host| {
            let scheme = if client.https { "https" } else { "http" };
            format!("{scheme}://{}", host.to_ascii_lowercase())
        }),
    }
}

/// Where browsers reach siyu (see [`public_origin`]): what the URLs siyu prints into QR
/// codes and links start with.
#[derive(Debug, Clone)]
pub struct PublicOrigin(pub String);

impl<S> FromRequestParts<S> for PublicOrigin
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let client = ClientInfo::from_request_parts(parts, state).await?;
        public_origin(parts, &app.config, &client)
            .map(PublicOrigin)
            .ok_or_else(|| {
                ApiError::BadRequest(
                    "the request names no host: set public_url so that siyu knows its address"
                        .into(),
                )
            })
    }
}

/// Where browsers reach siyu when it is known: a handler that needs it only sometimes
/// (a send's link cards) takes `Option<PublicOrigin>`, and a request without a host is
/// refused only where it is needed.
impl<S> axum::extract::OptionalFromRequestParts<S> for PublicOrigin
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let app = AppState::from_ref(state);
        let client = ClientInfo::from_request_parts(parts, state).await?;
        Ok(public_origin(parts, &app.config, &client).map(PublicOrigin))
    }
}

/// `scheme://host[:port]` of a URL, lowercased, without a path.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let host = rest.split('/').next()?;
    (!host.is_empty()).then(|| {
        format!(
            "{}://{}",
            scheme.to_ascii_lowercase(),
            host.to_ascii_lowercase()
        )
    })
}

/// The token of an `Authorization: Bearer TOKEN` header; the scheme is
/// case-insensitive (RFC 9110 §11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether a signed-in request may write to the main database: any method but GET,
/// HEAD and OPTIONS.
fn may_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub fn cookie_value(parts: &Parts, name: &str) -> Option<String> {
    cookie_in(&parts.headers, name)
}

/// A cookie's value among request headers.
pub fn cookie_in(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Item {
        sku: String,
        price: i64,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Order {
        id: String,
        items: Vec<Item>,
    }

    fn fields(err: ApiError) -> Vec<String> {
        match err {
            ApiError::Validation(f) => f.into_iter().map(|f| f.field).collect(),
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn json_errors_name_the_field_path() {
        let err = parse_json::<Order>(
            br#"{"id":"1","items":[{"sku":"a","price":1},{"sku":"b","price":"x"}]}"#,
        )
        .unwrap_err();
        assert_eq!(fields(err), vec!["items[1].price"]);
        let err = parse_json::<Order>(br#"{"items":[]}"#).unwrap_err();
        assert_eq!(fields(err), vec!["id"]);
        let err = parse_json::<Order>(br#"{"id":"1","items":[{"sku":"a"}]}"#).unwrap_err();
        assert_eq!(fields(err), vec!["items[0].price"]);
    }

    #[test]
    fn malformed_json_is_invalid_json() {
        assert!(matches!(
            parse_json::<Order>(b"{\"id\":"),
            Err(ApiError::InvalidJson(_))
        ));
        assert!(matches!(
            parse_json::<Order>(br#"{"id":"1","items":[]} trailing"#),
            Err(ApiError::InvalidJson(_))
        ));
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for header in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR  abc "] {
            assert_eq!(bearer_token(header), Some("abc"), "{header}");
        }
        for header in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", "abc"] {
            assert_eq!(bearer_token(header), None, "{header}");
        }
    }

    #[test]
    fn signed_in_requests_by_any_method_but_get_head_and_options_may_write() {
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(may_write(&method), "{method}");
        }
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(!may_write(&method), "{method}");
        }
    }
}
