//! Tracked links' public side: `/l/{slug}` and personal `/l/{slug}/{token}` redirect
//! (302) to the link's destination with its UTM parameters, and a person's click is a
//! `Link Clicked` event (`siyu_domain::acquisition::links`).
//!
//! The redirect is on the hot path of every campaign, so it reads nothing from the
//! main database in the common case: the link by its slug, the tenant's links source
//! and its personal-link key are kept in memory for [`KEEP`] (a changed or deleted link
//! takes that long to reach other nodes; this node forgets it at once), and the click
//! goes to the ingestor, whose log commits many requests' events together (group
//! commit), in a database file of its own on SQLite. The redirect is answered once the
//! click is in the log, so a click answered is never lost; the profile follows as the
//! log is applied. Were the ingestor to refuse (its backlog full), the person is still
//! sent on and the click is counted as dropped: a campaign's link must never fail
//! because siyu is busy.
//!
//! Crawlers fetching a preview card are sent on too (so the card shows the
//! destination) and counted apart, with no event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use siyu_domain::acquisition::landing::{is_crawler, is_landing_slug, new_landing_slug};
use siyu_domain::acquisition::links::{Click, LinkKey, click_event, is_link_slug};
use siyu_domain::audit::Actor;
use siyu_domain::ids::TenantId;
use siyu_store::{IngestItem, LinkRoute, SecretName, SourceRef};

use super::landing::VISITOR_COOKIE;
use crate::AppState;
use crate::extract::{ApiPath, cookie_in};

/// How long a link, a tenant's links source and its key are kept in memory.
pub const KEEP: Duration = Duration::from_secs(10);

/// What is kept per tenant.
#[derive(Clone)]
struct TenantLinks {
    source: SourceRef,
    /// None: no secret key is configured, so personal links do not verify.
    key: Option<LinkKey>,
    read_at: Instant,
}

/// A link as read (none: no link has the slug) and when.
type KeptLink = (Option<Arc<LinkRoute>>, Instant);

/// Links by slug and tenants' links source and key, kept for [`KEEP`].
#[derive(Default)]
pub struct KeptLinks {
    links: Mutex<HashMap<String, KeptLink>>,
    tenants: Mutex<HashMap<TenantId, TenantLinks>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl KeptLinks {
    /// The link of a slug (none: no such link), as kept unless older than [`KEEP`].
    async fn link(&self, app: &AppState, slug: &str) -> siyu_store::Result<Option<Arc<LinkRoute>>> {
        if let Some((link, read_at)) = lock(&self.links).get(slug)
            && read_at.elapsed() < KEEP
        {
            return Ok(link.clone());
        }
        let link = app.store.link_by_slug(slug).await?.map(Arc::new);
        let mut links = lock(&self.links);
        if links.len() > 100_000 {
            links.retain(|_, (_, read_at)| read_at.elapsed() < KEEP);
        }
        links.insert(slug.to_owned(), (link.clone(), Instant::now()));
        Ok(link)
    }

    /// Forgets a link on this node (it was changed or deleted here).
    pub fn forget(&self, slug: &str) {
        lock(&self.links).remove(slug);
    }

    /// The tenant's links source and key (the key made the first time it is needed).
    async fn tenant(&self, app: &AppState, tenant: TenantId) -> siyu_store::Result<TenantLinks> {
        if let Some(kept) = lock(&self.tenants).get(&tenant)
            && kept.read_at.elapsed() < KEEP
        {
            return Ok(kept.clone());
        }
        let scope = app.store.tenant(tenant);
        let actor = Actor::system("tracked links");
        let source = scope.links_source(&actor).await?;
        let name = SecretName::new(LinkKey::SECRET_NAME).expect("a valid secret name");
        let key = match scope.secret_or_put(&name, LinkKey::generate, &actor).await {
            Ok(bytes) => LinkKey::from_bytes(&bytes),
            Err(siyu_store::StoreError::NoSecretKey) => None,
            Err(e) => return Err(e),
        };
        let kept = TenantLinks {
            source,
            key,
            read_at: Instant::now(),
        };
        lock(&self.tenants).insert(tenant, kept.clone());
        Ok(kept)
    }

    /// The tenant's key for personal links (none without a secret key).
    pub async fn key(
        &self,
        app: &AppState,
        tenant: TenantId,
    ) -> siyu_store::Result<Option<LinkKey>> {
        Ok(self.tenant(app, tenant).await?.key)
    }
}

/// Follows a tracked link: 302 to its destination, the click recorded.
#[utoipa::path(get, path = "/l/{slug}", tag = "acquisition", security(()),
    params(("slug" = String, Path, description = "the link's slug (its `path`)")),
    responses(
        (status = 302, description = "to the link's `target`; the click is a `Link Clicked` event \
            (a crawler's fetch is counted apart)"),
        (status = 404, description = "no link has this slug", content_type = "text/html", body = String),
        (status = 410, description = "the link was deleted", content_type = "text/html", body = String)))]
pub async fn follow_link(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiPath(slug): ApiPath<String>,
) -> Response {
    follow(&app, &method, &headers, &slug, None).await
}

/// Follows a personal link: as `/l/{slug}`, the click tied to the customer the token was
/// made for (a token that does not verify makes it an anonymous click; the person is
/// sent on all the same).
#[utoipa::path(get, path = "/l/{slug}/{token}", tag = "acquisition", security(()),
    params(("slug" = String, Path, description = "the link's slug"),
        ("token" = String, Path, description = "the personal token (`POST /api/v1/links/{id}/personal`)")),
    responses(
        (status = 302, description = "to the link's `target`; the click is the customer's `Link Clicked` event"),
        (status = 404, description = "no link has this slug", content_type = "text/html", body = String),
        (status = 410, description = "the link was deleted", content_type = "text/html", body = String)))]
pub async fn follow_personal_link(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiPath((slug, token)): ApiPath<(String, String)>,
) -> Response {
    follow(&app, &method, &headers, &slug, Some(&token)).await
}

async fn follow(
    app: &AppState,
    method: &Method,
    headers: &HeaderMap,
    slug: &str,
    token: Option<&str>,
) -> Response {
    if !is_link_slug(slug) {
        return page(StatusCode::NOT_FOUND);
    }
    let link = match app.kept_links.link(app, slug).await {
        Ok(Some(link)) => link,
        Ok(None) => return page(StatusCode::NOT_FOUND),
        Err(e) => {
            tracing::error!(slug, error = %e, "a tracked link could not be read");
            return page(StatusCode::SERVICE_UNAVAILABLE);
        }
    };
    if link.deleted {
        return page(StatusCode::GONE);
    }
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let crawler = *method != Method::GET || is_crawler(agent);
    let known = cookie_in(headers, VISITOR_COOKIE).filter(|v| is_landing_slug(v));
    let visitor = known.clone().unwrap_or_else(new_landing_slug);
    if crawler {
        if let Err(e) = count_crawler(app, &link).await {
            tracing::warn!(slug, error = %e, "a crawler's fetch of a link was not counted");
        }
    } else if let Err(e) = record_click(app, &link, headers, agent, &visitor, token).await {
        app.metrics.link_clicks_dropped.inc();
        tracing::warn!(slug, error = %e, "a link click was not recorded");
    }
    let mut response = (
        StatusCode::FOUND,
        [
            (header::LOCATION, link.target.clone()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response();
    if known.is_none() && !crawler {
        let cookie =
            format!("{VISITOR_COOKIE}={visitor}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax");
        response
            .headers_mut()
            .insert(header::SET_COOKIE, cookie.parse().expect("a header value"));
    }
    response
}

/// Counts a crawler's fetch on today's date in the tenant's zone (kept with its source).
async fn count_crawler(app: &AppState, link: &LinkRoute) -> siyu_store::Result<()> {
    let zone = app
        .kept_links
        .tenant(app, link.tenant)
        .await?
        .source
        .time_zone;
    app.store
        .tenant(link.tenant)
        .count_link_crawler_fetch(link.link, zone.day_of(siyu_store::now_ms()))
        .await
}

/// Hands the click's event to the ingestor and waits until it is in the log.
async fn record_click(
    app: &AppState,
    link: &LinkRoute,
    headers: &HeaderMap,
    agent: Option<&str>,
    visitor: &str,
    token: Option<&str>,
) -> Result<(), String> {
    let tenant = app
        .kept_links
        .tenant(app, link.tenant)
        .await
        .map_err(|e| e.to_string())?;
    let customer = match (token, &tenant.key) {
        (Some(token), Some(key)) => key.verify(link.link, token),
        _ => None,
    };
    let referrer = headers.get(header::REFERER).and_then(|v| v.to_str().ok());
    let click = Click {
        link: link.link,
        slug: &link.slug,
        name: &link.name,
        target: &link.target,
        utm: &link.utm,
        customer,
        visitor,
        user_agent: agent,
        referrer,
    };
    let event = click_event(
        &click,
        uuid::Uuid::new_v4().to_string(),
        siyu_store::now_ms(),
    );
    app.ingestor
        .submit(vec![IngestItem {
            source: tenant.source,
            event,
        }])
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The small page of a link that leads nowhere.
fn page(status: StatusCode) -> Response {
    let text = match status {
        StatusCode::GONE => "<p>此链接已停用</p><p class=\"en\">This link is no longer in use</p>",
        StatusCode::NOT_FOUND => "<p>未找到此链接</p><p class=\"en\">There is no such link</p>",
        _ => "<p>请稍后再试</p><p class=\"en\">Please try again shortly</p>",
    };
    (
        status,
        Html(format!(
            "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta name=\"robots\" content=\"noindex\"><title>siyu</title>\
             <style>body{{font-family:system-ui,sans-serif;text-align:center;margin:0;\
             padding:48px 16px;color:#1f2329}}.en{{color:#646a73;font-size:14px}}</style>\
             </head><body>{text}</body></html>"
        )),
    )
        .into_response()
}
