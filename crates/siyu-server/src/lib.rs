//! The HTTP face of siyu: the JSON API under `/api/v1`, sign-in, the OpenAPI document,
//! health checks and metrics, and the embedded web console at `/`.
//!
//! Handlers are thin: they check the caller's permission, call the domain and the store,
//! and shape the answer. Everything that can go wrong becomes an [`error::ApiError`] and
//! leaves through one `IntoResponse`. The server holds no state that must be unique to
//! one process (sessions and login throttling live in the database), so any number of
//! `siyu serve` nodes can run against one PostgreSQL.
//!
//! Background work (the ingest applier, the audience follower and recorders, jobs) is
//! not here: the server is given a started [`siyu_runtime::Node`] and reaches its
//! handles. On a `worker` node it serves health and metrics only.
//!
//! [`Application::build`] binds its own listener and reports its address, so tests start
//! the real application on port 0.

mod console;
pub mod error;
pub mod extract;
mod metrics;
mod middleware;
pub mod openapi;
mod routes;
#[cfg(test)]
mod structure_tests;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use siyu_runtime::audience::Audiences;
use siyu_runtime::ingest::Ingestor;
use siyu_runtime::{JobMetrics, Node};
use siyu_store::{LoginThrottle, Store};
use tokio::net::TcpListener;

pub use metrics::Metrics;

/// The name of the console session cookie.
pub const SESSION_COOKIE: &str = "siyu_session";

/// When the session cookie carries the `Secure` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CookieSecure {
    /// When the request came over HTTPS through a trusted proxy (`X-Forwarded-Proto`).
    Auto,
    Always,
    Never,
}

/// What the HTTP server needs to know.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: String,
    pub body_limit_bytes: usize,
    /// Trust `X-Forwarded-For` / `X-Forwarded-Proto` (set when behind a reverse proxy).
    pub trust_proxy_headers: bool,
    pub cookie_secure: CookieSecure,
    /// Where browsers reach the console (`https://scrm.brand.cn`, scheme, host and port);
    /// a cookie-signed request that may change something must come from there (its
    /// `Origin`). `None`: from the origin the request itself was sent to.
    pub public_url: Option<String>,
    pub login_throttle: LoginThrottle,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            body_limit_bytes: 1024 * 1024,
            trust_proxy_headers: false,
            cookie_secure: CookieSecure::Auto,
            public_url: None,
            login_throttle: LoginThrottle::default(),
        }
    }
}

/// What every handler can reach: one shared [`AppShared`], so that handing it to a
/// request (every extractor and middleware clones it) is one reference count, not one
/// per part (profiled under a flood of WeCom callbacks, cloning and dropping the parts
/// took about 4% of the CPU).
#[derive(Clone)]
pub struct AppState(Arc<AppShared>);

impl std::ops::Deref for AppState {
    type Target = AppShared;

    fn deref(&self) -> &AppShared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct AppShared {
    pub store: Store,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<Metrics>,
    /// What the node's job runner counts (shown in `/metrics`).
    pub job_metrics: Arc<JobMetrics>,
    pub ingestor: Ingestor,
    /// Takes WeCom's adds and deletions from callbacks, many to a transaction.
    pub relation_intake: siyu_runtime::wecom::intake::RelationIntake,
    /// WeCom connectors' callback crypto, kept briefly (see `routes::wecom_callbacks`).
    pub callback_connectors: Arc<routes::wecom_callbacks::CallbackConnectors>,
    /// Tracked links and tenants' link keys, kept briefly (see `link_redirect`).
    pub kept_links: Arc<routes::acquisition::link_redirect::KeptLinks>,
    pub audiences: Audiences,
}

/// The OpenAPI document of every route, as `/api/openapi.json` serves it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::complete(routes::api_router().split_for_parts().1)
}

/// The whole router: API, operations endpoints and the middleware around them; with
/// `serves_api` false (a worker node), the operations endpoints only.
pub fn router(state: AppState, serves_api: bool) -> Router {
    let (api, openapi) = routes::api_router().split_for_parts();
    let openapi = Arc::new(openapi::complete(openapi));
    let routes = if serves_api {
        Router::new()
            .merge(api)
            .merge(routes::ops::router(openapi))
            .fallback(console::fallback)
    } else {
        Router::new().merge(routes::ops::router(openapi))
    };
    routes
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes))
        .layer(axum::middleware::from_fn(middleware::json_errors))
        .layer(axum::middleware::from_fn(middleware::tracking_cors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(middleware::request_id_and_trace())
        .layer(axum::middleware::map_request(
            middleware::drop_bad_request_id,
        ))
        .with_state(state)
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    local_addr: SocketAddr,
}

impl Application {
    /// Binds the listen address (port 0 picks a free port) and builds the router over
    /// a started node.
    pub async fn build(config: ServerConfig, node: &Node) -> std::io::Result<Self> {
        let listener = TcpListener::bind(&config.listen).await?;
        let local_addr = listener.local_addr()?;
        let state = AppState(Arc::new(AppShared {
            audiences: node.audiences.clone(),
            store: node.store.clone(),
            config: Arc::new(config),
            metrics: Arc::new(Metrics::new(node.job_metrics.clone())),
            job_metrics: node.job_metrics.clone(),
            ingestor: node.ingestor.clone(),
            relation_intake: node.relation_intake.clone(),
            callback_connectors: Arc::default(),
            kept_links: Arc::default(),
        }));
        Ok(Self {
            listener,
            router: router(state, node.config.role.serves_api()),
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }
}
