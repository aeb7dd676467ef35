//! The one error type of the HTTP layer, and the one place errors become responses.
//!
//! Every error leaves as `{"error":{"code","message","details"}}` with a stable snake_case
//! code. Internal errors are logged with their cause and shown to clients only as
//! `internal_error`, so nothing about the database leaks.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use siyu_audience::catalog::DefinitionError;
use siyu_domain::{DomainError, FieldError};
use siyu_runtime::audience::AudienceError;
use siyu_store::StoreError;
use utoipa::ToSchema;

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{}", .0.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; "))]
    Validation(Vec<FieldError>),
    #[error("sign in first: send a session cookie or an `Authorization: Bearer` token")]
    Unauthenticated,
    #[error("the email or the password is wrong")]
    InvalidCredentials,
    #[error(
        "send a valid write key: HTTP Basic with the key as the user name, or `writeKey` in the body"
    )]
    InvalidWriteKey,
    /// A channel's callback whose signature does not match the connector's token.
    #[error("the signature does not match this connector's token")]
    InvalidSignature,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("send the body as JSON with `Content-Type: application/json`")]
    UnsupportedMediaType,
    #[error("too many failed attempts; try again in {retry_after_secs} seconds")]
    TooManyAttempts { retry_after_secs: u64 },
    /// The email and password are those of staff in several tenants.
    #[error("you are staff of several tenants: choose one ({})", .tenants.join(", "))]
    TenantRequired { tenants: Vec<String> },
    /// A segment definition that does not parse, or names what the tenant lacks.
    #[error("{message}")]
    InvalidDefinition {
        line: Option<usize>,
        column: Option<usize>,
        /// The offending part, in the text form.
        part: Option<String>,
        message: String,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

/// The error body, for the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable snake_case code, such as `validation_failed` or `not_found`.
    pub code: String,
    /// A readable explanation.
    pub message: String,
    /// More about the error; for `validation_failed`, `{"fields":[{"field","message"}]}`;
    /// for `invalid_definition` also `line` and `column` (1-based) or `part`, the
    /// offending part of a segment definition.
    pub details: Value,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidJson(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) | ApiError::InvalidDefinition { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Unauthenticated
            | ApiError::InvalidCredentials
            | ApiError::InvalidWriteKey
            | ApiError::InvalidSignature => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::TenantRequired { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Validation(_) => "validation_failed",
            ApiError::InvalidDefinition { .. } => "invalid_definition",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::InvalidWriteKey => "invalid_write_key",
            ApiError::InvalidSignature => "invalid_signature",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::TooManyAttempts { .. } => "too_many_attempts",
            ApiError::TenantRequired { .. } => "tenant_required",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    fn details(&self) -> Value {
        match self {
            ApiError::Validation(fields) => json!({ "fields": fields }),
            ApiError::TooManyAttempts { retry_after_secs } => {
                json!({ "retry_after_secs": retry_after_secs })
            }
            ApiError::TenantRequired { tenants } => json!({ "tenants": tenants }),
            // shaped like a validation error (the field is `definition`), with where
            ApiError::InvalidDefinition {
                line,
                column,
                part,
                message,
            } => json!({
                "fields": [{"field": "definition", "message": message}],
                "line": line, "column": column, "part": part,
            }),
            _ => Value::Null,
        }
    }
}

/// The JSON error body for a status and message; also used for errors that arise
/// outside handlers (unknown routes, wrong methods).
pub fn error_response(status: StatusCode, code: &str, message: &str, details: Value) -> Response {
    let body = json!({"error": {"code": code, "message": message, "details": details}});
    (status, Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = %cause, "request failed");
        }
        let mut response = error_response(
            self.status(),
            self.code(),
            &self.to_string(),
            self.details(),
        );
        if let ApiError::TooManyAttempts { retry_after_secs } = self
            && let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::Invalid(field) => ApiError::Validation(vec![field]),
            DomainError::Conflict(message) => ApiError::Conflict(message),
        }
    }
}

/// A definition the tenant cannot use, as the API reports it.
pub fn definition_error(e: DefinitionError) -> ApiError {
    ApiError::InvalidDefinition {
        line: None,
        column: None,
        part: Some(e.part),
        message: e.message,
    }
}

impl From<AudienceError> for ApiError {
    fn from(e: AudienceError) -> Self {
        match e {
            AudienceError::Store(e) => e.into(),
            AudienceError::Definition(e) => definition_error(e),
            AudienceError::Evaluation(message) => ApiError::field("definition", message),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::OutOfReach(message) => ApiError::Forbidden(message),
            StoreError::AlreadyExists(message) | StoreError::Conflict(message) => {
                ApiError::Conflict(message)
            }
            StoreError::Domain(err) => err.into(),
            // a setting the operator must make: 409 with the setting named in the message
            StoreError::NoSecretKey => ApiError::Conflict(err.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}
