//! Signing in and out, and who am I.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse};
use serde::{Deserialize, Serialize};
use siyu_domain::access::{DataScope, PrincipalKind, SESSION_MAX_AGE_MS};
use siyu_domain::audit::{Actor, ActorKind};
use siyu_domain::error::normalize_email;
use siyu_domain::password;
use siyu_domain::tenancy::{Staff, StaffChanges, StaffStatus, Tenant};
use utoipa::ToSchema;

use siyu_domain::ids::StaffId;
use siyu_store::Credentials;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, Auth, ClientInfo};
use crate::{AppState, CookieSecure, SESSION_COOKIE};

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// The tenant's name: needed only when the email and password are those of staff
    /// in several tenants (the answer is then 409 `tenant_required`, naming them).
    pub tenant: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    pub staff: Staff,
    pub tenant: Tenant,
}

fn session_cookie(app: &AppState, client: &ClientInfo, value: &str, max_age_secs: i64) -> String {
    let secure = match app.config.cookie_secure {
        CookieSecure::Always => true,
        CookieSecure::Never => false,
        CookieSecure::Auto => client.https,
    };
    format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Signs a staff member in with email and password and sets the session cookie.
///
/// A wrong email and a wrong password get the same answer. After repeated failures for an
/// email (or from an address) the endpoint answers 429 for a while, even to the right
/// password. An email is unique within a tenant only: when the password is right for
/// staff of several tenants, the answer is 409 `tenant_required` with their names in
/// `details.tenants`, and the sign-in is sent again with `tenant`.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "signed in; the `siyu_session` cookie is set", body = LoginResponse),
        (status = 401, description = "wrong email or password", body = ErrorBody),
        (status = 409, description = "staff of several tenants: name one in `tenant`", body = ErrorBody),
        (status = 429, description = "too many failed attempts", body = ErrorBody),
    ))]
pub async fn login(
    State(app): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<impl IntoResponse> {
    // signing in writes (attempts, the session): it goes before the ingest applier
    let _writes_first = app.ingestor.writing();
    let throttle = app.config.login_throttle;
    let email =
        normalize_email("email", &body.email).unwrap_or_else(|_| body.email.trim().to_lowercase());
    let actor = Actor {
        kind: ActorKind::Anonymous,
        id: None,
        label: email.clone(),
        ip: client.ip.clone(),
    };
    let tenant = body
        .tenant
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let candidates: Vec<Credentials> = app
        .store
        .find_credentials(&email)
        .await?
        .into_iter()
        .filter(|c| tenant.is_none_or(|t| c.tenant_name == t))
        .collect();

    // count this attempt first, so that parallel guesses see each other
    let attempt = app
        .store
        .begin_login_attempt(&email, client.ip.as_deref())
        .await?;
    let (by_email, by_ip) = app
        .store
        .recent_login_failures(&email, client.ip.as_deref(), throttle)
        .await?;
    // With several accounts for the email and none named, the tenants' audit logs are
    // left alone: any of them may have been made by someone else with this address, who
    // must not learn of the owner's failed sign-ins. Operators see them in the log.
    let audited = candidates.len() == 1 || tenant.is_some();
    if by_email > throttle.max_failures_per_email || by_ip > throttle.max_failures_per_ip {
        if audited {
            for known in &candidates {
                app.store
                    .audit_login_failure(Some(known), &actor, true)
                    .await?;
            }
        }
        tracing::warn!(email = %email, ip = ?client.ip, "login throttled");
        return Err(ApiError::TooManyAttempts {
            retry_after_secs: (throttle.window_ms / 1000) as u64,
        });
    }
    // an account with too many failed passwords of its own is not tried: a password that
    // opens one account of an email cannot be used to test another's without limit
    let staff_ids: Vec<StaffId> = candidates.iter().map(|c| c.staff_id).collect();
    let account_failures = app
        .store
        .recent_account_failures(&staff_ids, throttle)
        .await?;
    let tried: Vec<bool> = candidates
        .iter()
        .map(|c| {
            account_failures.get(&c.staff_id).copied().unwrap_or(0)
                < throttle.max_failures_per_email
        })
        .collect();
    if !candidates.is_empty() && !tried.contains(&true) {
        tracing::warn!(email = %email, ip = ?client.ip, "login throttled for every account");
        return Err(ApiError::TooManyAttempts {
            retry_after_secs: (throttle.window_ms / 1000) as u64,
        });
    }

    let hashes: Vec<Option<String>> = candidates
        .iter()
        .zip(&tried)
        .map(|(c, tried)| {
            (*tried && c.status == StaffStatus::Active)
                .then(|| c.password_hash.clone())
                .flatten()
        })
        .collect();
    let password_given = body.password.clone();
    // argon2 takes tens of milliseconds of CPU: keep it off the async workers. Every
    // candidate is checked (and one dummy with none). The time still grows with the
    // number of tenants that have the email.
    let verified: Vec<bool> = tokio::task::spawn_blocking(move || {
        if hashes.is_empty() {
            password::verify_dummy(&password_given);
        }
        hashes
            .iter()
            .map(|hash| match hash {
                Some(hash) => password::verify(&password_given, hash),
                None => {
                    password::verify_dummy(&password_given);
                    false
                }
            })
            .collect()
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut proven: Vec<Credentials> = candidates
        .iter()
        .zip(&verified)
        .filter(|(_, ok)| **ok)
        .map(|(c, _)| c.clone())
        .collect();
    if candidates.len() > 1 && !proven.is_empty() {
        // the password opened an account: each it did not open counts a failure of its own
        for (known, ok) in candidates.iter().zip(&verified) {
            if !ok {
                app.store
                    .count_account_failure(&email, client.ip.as_deref(), known.staff_id)
                    .await?;
            }
        }
    }

    if proven.len() > 1 {
        // the password proves several accounts: which one is meant is for the user to say
        app.store.forget_login_attempt(attempt).await?;
        return Err(ApiError::TenantRequired {
            tenants: proven.into_iter().map(|c| c.tenant_name).collect(),
        });
    }
    let Some(credentials) = proven.pop() else {
        if audited {
            for known in &candidates {
                app.store
                    .audit_login_failure(Some(known), &actor, false)
                    .await?;
            }
        } else {
            tracing::warn!(email = %email, ip = ?client.ip, accounts = candidates.len(),
                "failed sign-in to an email that is staff of several tenants");
        }
        return Err(ApiError::InvalidCredentials);
    };
    app.store.forget_login_attempt(attempt).await?;
    let actor = Actor {
        kind: ActorKind::Staff,
        id: Some(credentials.staff_id.0),
        label: credentials.email.clone(),
        ip: client.ip.clone(),
    };
    let secret = app
        .store
        .create_session(&credentials, &actor, client.user_agent.as_deref())
        .await?;
    let scope = app.store.tenant(credentials.tenant_id);
    let response = LoginResponse {
        staff: scope.get_staff(credentials.staff_id).await?,
        tenant: scope.get().await?,
    };
    let cookie = session_cookie(&app, &client, &secret, SESSION_MAX_AGE_MS / 1000);
    Ok((
        AppendHeaders([(header::SET_COOKIE, cookie)]),
        Json(response),
    ))
}

/// Ends the current console session and clears the cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "signed out"), (status = 401, body = ErrorBody)))]
pub async fn logout(State(app): State<AppState>, auth: Auth) -> ApiResult<impl IntoResponse> {
    app.store
        .end_session(&auth.principal, &auth.actor())
        .await?;
    let cookie = session_cookie(&app, &auth.client, "", 0);
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([(header::SET_COOKIE, cookie)]),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct TokenSummary {
    pub id: i64,
    pub name: String,
}

/// Who the caller is and what they may do.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// `staff` for a console session, `api_token` for a program.
    pub kind: String,
    pub tenant: Tenant,
    /// The tenant currency, in which every figure is kept (CNY unless set).
    pub currency: String,
    pub staff: Option<Staff>,
    pub token: Option<TokenSummary>,
    pub role: String,
    pub permissions: Vec<String>,
    pub data_scope: DataScope,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(State(app): State<AppState>, auth: Auth) -> ApiResult<Json<Me>> {
    let scope = auth.scope(&app.store).await?;
    let (kind, staff, token) = match &auth.principal.kind {
        PrincipalKind::Staff { staff_id, .. } => {
            ("staff", Some(scope.get_staff(*staff_id).await?), None)
        }
        PrincipalKind::ApiToken { token_id, name } => (
            "api_token",
            None,
            Some(TokenSummary {
                id: token_id.0,
                name: name.clone(),
            }),
        ),
    };
    Ok(Json(Me {
        kind: kind.into(),
        tenant: scope.get().await?,
        currency: scope.currency_settings().await?.currency,
        staff,
        token,
        role: auth.principal.role.clone(),
        permissions: auth
            .principal
            .permissions
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
        data_scope: auth.principal.data_scope(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

/// Changes the signed-in staff member's own password. Every session of theirs ends,
/// this one included: sign in again with the new password. A wrong current password
/// counts as a failed sign-in of that email, so a session left open cannot be used to
/// guess the password faster than the sign-in page allows.
#[utoipa::path(put, path = "/api/v1/me/password", tag = "auth", request_body = ChangePassword,
    responses((status = 204, description = "changed"), (status = 401, body = ErrorBody),
        (status = 403, description = "wrong current password or not a staff session", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, description = "too many wrong passwords", body = ErrorBody)))]
pub async fn change_password(
    State(app): State<AppState>,
    client: ClientInfo,
    auth: Auth,
    ApiJson(body): ApiJson<ChangePassword>,
) -> ApiResult<StatusCode> {
    let PrincipalKind::Staff {
        staff_id, email, ..
    } = &auth.principal.kind
    else {
        return Err(ApiError::Forbidden("API tokens have no password".into()));
    };
    let throttle = app.config.login_throttle;
    let attempt = app
        .store
        .begin_login_attempt(email, client.ip.as_deref())
        .await?;
    let (by_email, by_ip) = app
        .store
        .recent_login_failures(email, client.ip.as_deref(), throttle)
        .await?;
    if by_email > throttle.max_failures_per_email || by_ip > throttle.max_failures_per_ip {
        tracing::warn!(email = %email, ip = ?client.ip, "password change throttled");
        return Err(ApiError::TooManyAttempts {
            retry_after_secs: (throttle.window_ms / 1000) as u64,
        });
    }
    let credentials = app
        .store
        .find_credentials(email)
        .await?
        .into_iter()
        .find(|c| c.tenant_id == auth.principal.tenant_id)
        .ok_or(ApiError::Unauthenticated)?;
    let current = body.current_password.clone();
    let hash = credentials.password_hash.clone();
    let ok =
        tokio::task::spawn_blocking(move || hash.is_some_and(|h| password::verify(&current, &h)))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    if !ok {
        return Err(ApiError::Forbidden("the current password is wrong".into()));
    }
    app.store.forget_login_attempt(attempt).await?;
    let mut changes = StaffChanges::default();
    let new_password = body.new_password.clone();
    let changes =
        tokio::task::spawn_blocking(move || changes.set_password(&new_password).map(|()| changes))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))??;
    auth.scope(&app.store)
        .await?
        .update_staff(*staff_id, &changes, &auth.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
