//! Operations endpoints: liveness, readiness, metrics and the OpenAPI document. They sit
//! outside `/api/v1` and need no sign-in (put `/metrics` behind the proxy's ACL).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;

pub fn router(openapi: Arc<utoipa::openapi::OpenApi>) -> Router<AppState> {
    Router::new()
        .route("/api", get(index))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/api/openapi.json",
            get(move || async move { Json(openapi.as_ref().clone()) }),
        )
}

/// What this server is and where to go next.
async fn index() -> Json<serde_json::Value> {
    Json(json!({
        "name": "siyu",
        "version": env!("CARGO_PKG_VERSION"),
        "api": "/api/v1",
        "openapi": "/api/openapi.json",
        "health": "/healthz",
    }))
}

/// The process is up.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// The process can serve: the database answers.
async fn readyz(State(app): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    match app.store.ping().await {
        Ok(()) => Ok(Json(json!({"status": "ok", "database": "ok"}))),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            Err(ApiError::Unavailable("the database does not answer".into()))
        }
    }
}

async fn metrics(State(app): State<AppState>) -> Response {
    match app.store.log_backlog().await {
        Ok(waiting) => {
            app.metrics.ingest_backlog.set(waiting);
        }
        Err(err) => tracing::warn!(error = %err, "reading the ingest log's backlog failed"),
    }
    match app.store.job_queue_stats().await {
        Ok(stats) => app.metrics.set_job_queue(&stats, siyu_store::now_ms()),
        Err(err) => tracing::warn!(error = %err, "reading the job queue's backlog failed"),
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}
