//! The HTTP face of siyu: the JSON API under `/api/v1`, sign-in, the OpenAPI document,
//! health checks and metrics, and the embedded web console at `/`.
//!
//! Handlers are thin: they check the caller's permission, call the domain and the store,
//! and shape the answer. Everything that can go wrong becomes an [`error::ApiError`] and
//! leaves through one `IntoResponse`. The server holds no state that must be unique to
//! one process (sessions and login throttling live in the database), so any number of
//! `siyu serve` nodes can run against one PostgreSQL.
//!
//! [`Application::build`] binds its own listener and reports its address, so tests start
//! the real application on port 0.

pub mod audience;
mod console;
pub mod error;
pub mod extract;
pub mod ingest;
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
use siyu_runtime::JobMetrics;
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
    /// How long a messageId is remembered per source to drop retried events.
    pub dedup_window_ms: i64,
    /// Tracking answers wait for their events to be applied to profiles, rather than
    /// answering once the events are durably logged (`queued`); see `ingest`.
    pub wait_for_profiles: bool,
    /// Tracking calls are answered 503 (SDKs retry) while this many events wait in the
    /// ingest log: the profiles are too far behind, and the log must not fill the disk.
    pub max_ingest_backlog: i64,
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
            dedup_window_ms: 7 * 24 * 3600 * 1000,
            wait_for_profiles: false,
            max_ingest_backlog: 5_000_000,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<Metrics>,
    /// What the job runner started beside this server counts (shown in `/metrics`).
    pub job_metrics: Arc<JobMetrics>,
    pub ingestor: ingest::Ingestor,
    pub audiences: audience::Audiences,
}

/// The OpenAPI document of every route, as `/api/openapi.json` serves it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::complete(routes::api_router().split_for_parts().1)
}

/// The whole router: API, operations endpoints and the middleware around them.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = routes::api_router().split_for_parts();
    let openapi = Arc::new(openapi::complete(openapi));
    Router::new()
        .merge(api)
        .merge(routes::ops::router(openapi))
        .fallback(console::fallback)
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
    job_metrics: Arc<JobMetrics>,
}

impl Application {
    /// Binds the listen address (port 0 picks a free port) and builds the router.
    pub async fn build(config: ServerConfig, store: Store) -> std::io::Result<Self> {
        let listener = TcpListener::bind(&config.listen).await?;
        let local_addr = listener.local_addr()?;
        let ingestor = ingest::Ingestor::start(
            store.clone(),
            config.dedup_window_ms,
            config.wait_for_profiles,
            config.max_ingest_backlog,
        );
        let audiences = audience::Audiences::start(store.clone())
            .await
            .map_err(std::io::Error::other)?;
        let job_metrics = Arc::new(JobMetrics::new());
        let state = AppState {
            audiences,
            store,
            config: Arc::new(config),
            metrics: Arc::new(Metrics::new(job_metrics.clone())),
            job_metrics: job_metrics.clone(),
            ingestor,
        };
        Ok(Self {
            listener,
            router: router(state),
            local_addr,
            job_metrics,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The job figures `/metrics` shows: hand them to the job runner started beside this
    /// server (`Runner::metrics`), so that its runs are counted there.
    pub fn job_metrics(&self) -> Arc<JobMetrics> {
        self.job_metrics.clone()
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
