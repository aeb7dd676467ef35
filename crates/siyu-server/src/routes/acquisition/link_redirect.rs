//! Tracked links' public side: `/l/{slug}` and personal `/l/{slug}/{token}` redirect
//! (302) to the link's destination with its UTM parameters, and a person's click is a
//! `Link Clicked` event (`siyu_domain::acquisition::links`).
//!
//! The redirect is on the hot path of every campaign, so it reads nothing from the
//! main database in the common case: the link by its slug, the tenant's links source
//! and its personal-link key are kept in memory for [`KEEP`] (a changed or deleted link
//! takes that long to reach other nodes, twice that at most while the database is slow
//! to answer; this node forgets it at once). Once a kept value is older, one request reads it again while the others go
//! on with it, so a database busy with other work (a flood being applied, jobs after
//! it) delays that one redirect rather than every redirect meanwhile. The click
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
use std::sync::atomic::{AtomicU64, Ordering};
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

/// How long a link, a tenant's links source and its key are kept in memory before they
/// are read again.
pub const KEEP: Duration = Duration::from_secs(10);
/// How long past [`KEEP`] a kept value still answers while one request reads it again
/// (or when reading it fails), so that a busy database slows that one request, not every
/// redirect meanwhile: a change reaches other nodes within 20 s at most.
const STALE_AT_MOST: Duration = Duration::from_secs(10);
/// How long one request's reading again is waited for before another request tries.
const READ_AGAIN_AFTER: Duration = Duration::from_secs(5);

/// What is kept per tenant.
#[derive(Clone)]
struct TenantLinks {
    source: SourceRef,
    /// None: no secret key is configured, so personal links do not verify.
    key: Option<LinkKey>,
}

/// A value as read and when, and since when a request reads it again (if one does).
struct Kept<V> {
    value: V,
    read_at: Instant,
    reading_since: Option<Instant>,
}

/// Values read from the database, kept for [`KEEP`]; once older, the first request to
/// need one reads it again while the others go on with the kept one (for at most
/// [`STALE_AT_MOST`]).
struct KeptMap<K, V> {
    kept: Mutex<HashMap<K, Kept<V>>>,
    /// Moved on by every [`KeptMap::forget`]: a read begun before one is not kept.
    forgotten: AtomicU64,
}

impl<K, V> Default for KeptMap<K, V> {
    fn default() -> Self {
        Self {
            kept: Mutex::new(HashMap::new()),
            forgotten: AtomicU64::new(0),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone> KeptMap<K, V> {
    /// The kept value if it may still answer; otherwise reads it (this request being the
    /// one that reads again).
    async fn get<F, Fut>(&self, key: &K, read: F) -> siyu_store::Result<V>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = siyu_store::Result<V>>,
    {
        let stale = {
            let mut kept = lock(&self.kept);
            match kept.get_mut(key) {
                Some(k) if k.read_at.elapsed() < KEEP => return Ok(k.value.clone()),
                Some(k) if k.read_at.elapsed() < KEEP + STALE_AT_MOST => {
                    if k.reading_since
                        .is_some_and(|at| at.elapsed() < READ_AGAIN_AFTER)
                    {
                        return Ok(k.value.clone());
                    }
                    k.reading_since = Some(Instant::now());
                    Some(k.value.clone())
                }
                _ => None,
            }
        };
        let forgotten = self.forgotten.load(Ordering::Acquire);
        match read().await {
            // a value read across a change made here may be the old one: not kept
            Ok(value) if self.forgotten.load(Ordering::Acquire) != forgotten => Ok(value),
            Ok(value) => {
                let mut kept = lock(&self.kept);
                if kept.len() > 100_000 {
                    kept.retain(|_, k| k.read_at.elapsed() < KEEP + STALE_AT_MOST);
                }
                kept.insert(
                    key.clone(),
                    Kept {
                        value: value.clone(),
                        read_at: Instant::now(),
                        reading_since: None,
                    },
                );
                Ok(value)
            }
            Err(e) => match stale {
                Some(value) => {
                    tracing::warn!(error = %e, "reading a tracked link again failed: the kept one answers");
                    Ok(value)
                }
                None => Err(e),
            },
        }
    }

    fn forget(&self, key: &K) {
        let mut kept = lock(&self.kept);
        self.forgotten.fetch_add(1, Ordering::AcqRel);
        kept.remove(key);
    }
}

/// Links by slug (none: no link has the slug) and tenants' links source and key.
#[derive(Default)]
pub struct KeptLinks {
    links: KeptMap<String, Option<Arc<LinkRoute>>>,
    tenants: KeptMap<TenantId, TenantLinks>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl KeptLinks {
    /// The link of a slug (none: no such link).
    async fn link(&self, app: &AppState, slug: &str) -> siyu_store::Result<Option<Arc<LinkRoute>>> {
        self.links
            .get(&slug.to_owned(), || async {
                Ok(app.store.link_by_slug(slug).await?.map(Arc::new))
            })
            .await
    }

    /// Forgets a link on this node (it was changed or deleted here).
    pub fn forget(&self, slug: &str) {
        self.links.forget(&slug.to_owned());
    }

    /// The tenant's links source and key (the key made the first time it is needed).
    async fn tenant(&self, app: &AppState, tenant: TenantId) -> siyu_store::Result<TenantLinks> {
        self.tenants
            .get(&tenant, || async {
                let scope = app.store.tenant(tenant);
                let actor = Actor::system("tracked links");
                let source = scope.links_source(&actor).await?;
                let name = SecretName::new(LinkKey::SECRET_NAME).expect("a valid secret name");
                let key = match scope.secret_or_put(&name, LinkKey::generate, &actor).await {
                    Ok(bytes) => LinkKey::from_bytes(&bytes),
                    Err(siyu_store::StoreError::NoSecretKey) => None,
                    Err(e) => return Err(e),
                };
                Ok(TenantLinks { source, key })
            })
            .await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn values_are_kept_and_one_read_across_a_forget_is_not() {
        let map: KeptMap<u32, u32> = KeptMap::default();
        let reads = AtomicU64::new(0);
        let read = |v: u32| {
            reads.fetch_add(1, Ordering::SeqCst);
            async move { Ok(v) }
        };
        assert_eq!(map.get(&1, || read(10)).await.unwrap(), 10);
        assert_eq!(map.get(&1, || read(11)).await.unwrap(), 10, "kept");
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        // a forget made while a read is on its way: what it read may be old
        let overtaken = map
            .get(&2, || async {
                map.forget(&1);
                Ok(20)
            })
            .await;
        assert_eq!(overtaken.unwrap(), 20);
        assert_eq!(map.get(&2, || read(21)).await.unwrap(), 21, "not kept");
        assert_eq!(map.get(&1, || read(12)).await.unwrap(), 12, "forgotten");
        // a failed read with nothing kept is the caller's error
        let failed = map
            .get(&3, || async {
                Err(siyu_store::StoreError::NotFound("link"))
            })
            .await;
        assert!(failed.is_err());
    }
}
