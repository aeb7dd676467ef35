//! Signing in: credentials, sessions, API token resolution and login throttling.
//!
//! These run before a tenant is known, so they live on [`Store`]. All state is in the
//! database (sessions, failure counts), so any number of `siyu serve` nodes agree.

use std::collections::HashMap;

use serde_json::json;
use siyu_domain::access::{
    DataScope, Principal, PrincipalKind, SESSION_IDLE_MS, SESSION_MAX_AGE_MS,
};
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::ids::{ApiTokenId, RoleId, SessionId, StaffId, TenantId, UnitId};
use siyu_domain::tenancy::StaffStatus;
use siyu_domain::token;

use crate::access::role_permissions;
use crate::audit;
use crate::db::{now_ms, on_db};
use crate::tx::on_tx;
use crate::{Result, Store, StoreError};

/// What a login checks a password against.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub tenant_id: TenantId,
    /// The tenant's name, by which a sign-in names it when the email is staff of several.
    pub tenant_name: String,
    pub staff_id: StaffId,
    pub email: String,
    pub password_hash: Option<String>,
    pub status: StaffStatus,
}

/// Limits on failed logins, counted over a sliding window.
#[derive(Debug, Clone, Copy)]
pub struct LoginThrottle {
    pub window_ms: i64,
    pub max_failures_per_email: i64,
    pub max_failures_per_ip: i64,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            window_ms: 15 * 60 * 1000,
            max_failures_per_email: 5,
            max_failures_per_ip: 50,
        }
    }
}

#[derive(sqlx::FromRow)]
struct CredentialsRow {
    tenant_id: i64,
    tenant_name: String,
    id: i64,
    email: String,
    password_hash: Option<String>,
    status: String,
}

#[derive(sqlx::FromRow)]
struct SessionPrincipalRow {
    session_id: i64,
    tenant_id: i64,
    staff_id: i64,
    email: String,
    unit_id: i64,
    data_scope: String,
    status: String,
    role_id: i64,
    role: String,
    builtin: bool,
    permissions: String,
    expires_at: i64,
    last_seen_at: i64,
}

#[derive(sqlx::FromRow)]
struct TokenPrincipalRow {
    id: i64,
    tenant_id: i64,
    name: String,
    role_id: i64,
    role: String,
    builtin: bool,
    permissions: String,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

/// How stale a last-used time may get before it is written again: one write a minute
/// per session or token, not one per request.
const TOUCH_EVERY_MS: i64 = 60 * 1000;

impl Store {
    /// The staff accounts with this email, one per tenant that has it (an email is
    /// unique within a tenant only), in tenant order.
    pub async fn find_credentials(&self, email: &str) -> Result<Vec<Credentials>> {
        let rows: Vec<CredentialsRow> = on_db!(self, |db| {
            sqlx::query_as(
                "SELECT s.tenant_id, t.name AS tenant_name, s.id, s.email, s.password_hash, s.status \
                 FROM staff s JOIN tenants t ON t.id = s.tenant_id WHERE s.email = $1 \
                 ORDER BY s.tenant_id",
            )
            .bind(email.trim().to_lowercase())
            .fetch_all(db)
            .await?
        });
        rows.into_iter()
            .map(|r| {
                Ok(Credentials {
                    tenant_id: TenantId(r.tenant_id),
                    tenant_name: r.tenant_name,
                    staff_id: StaffId(r.id),
                    email: r.email,
                    password_hash: r.password_hash,
                    status: StaffStatus::parse(&r.status).ok_or_else(|| {
                        StoreError::Corrupt(format!("staff status {:?}", r.status))
                    })?,
                })
            })
            .collect()
    }

    /// Failed logins for this email and this address within the window.
    pub async fn recent_login_failures(
        &self,
        email: &str,
        ip: Option<&str>,
        throttle: LoginThrottle,
    ) -> Result<(i64, i64)> {
        let since = now_ms() - throttle.window_ms;
        on_db!(self, |db| {
            let by_email: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM login_failures WHERE email = $1 AND at > $2 AND staff_id IS NULL",
            )
            .bind(email.trim().to_lowercase())
            .bind(since)
            .fetch_one(db)
            .await?;
            let by_ip: i64 = match ip {
                Some(ip) => {
                    sqlx::query_scalar(
                        "SELECT COUNT(*) FROM login_failures WHERE ip = $1 AND at > $2 AND staff_id IS NULL",
                    )
                    .bind(ip)
                    .bind(since)
                    .fetch_one(db)
                    .await?
                }
                None => 0,
            };
            Ok((by_email, by_ip))
        })
    }

    /// Counts a login attempt before its password is checked, so that parallel guesses
    /// see each other in [`Store::recent_login_failures`]; a successful attempt is taken
    /// back with [`Store::forget_login_attempt`]. Prunes attempts older than a day.
    pub async fn begin_login_attempt(&self, email: &str, ip: Option<&str>) -> Result<i64> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let id: i64 = on_tx!(&mut tx, |c| {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO login_failures (email, ip, at) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(email.trim().to_lowercase())
            .bind(ip)
            .bind(now)
            .fetch_one(&mut *c)
            .await?;
            sqlx::query("DELETE FROM login_failures WHERE at < $1")
                .bind(now - 24 * 3600 * 1000)
                .execute(&mut *c)
                .await?;
            id
        });
        tx.commit().await?;
        Ok(id)
    }

    /// Failed passwords per staff account within the window: those counted against one
    /// account of an email while the same password opened another (see
    /// [`Store::count_account_failure`]).
    pub async fn recent_account_failures(
        &self,
        staff: &[StaffId],
        throttle: LoginThrottle,
    ) -> Result<HashMap<StaffId, i64>> {
        if staff.is_empty() {
            return Ok(HashMap::new());
        }
        // ids are our own integers: inlined
        let list = staff
            .iter()
            .map(|s| s.0.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "SELECT staff_id, COUNT(*) FROM login_failures WHERE staff_id IN ({list}) \
             AND at > $1 GROUP BY staff_id"
        );
        let rows: Vec<(i64, i64)> = on_db!(self, |db| {
            sqlx::query_as(&sql)
                .bind(now_ms() - throttle.window_ms)
                .fetch_all(db)
                .await?
        });
        Ok(rows.into_iter().map(|(s, n)| (StaffId(s), n)).collect())
    }

    /// Counts a failed password against one staff account: an email that is staff of
    /// several tenants, where the password opened another account (or none).
    pub async fn count_account_failure(
        &self,
        email: &str,
        ip: Option<&str>,
        staff: StaffId,
    ) -> Result<()> {
        on_db!(self, |db| {
            sqlx::query(
                "INSERT INTO login_failures (email, ip, at, staff_id) VALUES ($1, $2, $3, $4)",
            )
            .bind(email.trim().to_lowercase())
            .bind(ip)
            .bind(now_ms())
            .bind(staff.0)
            .execute(db)
            .await?;
        });
        Ok(())
    }

    /// Takes back the attempt of a login that succeeded.
    pub async fn forget_login_attempt(&self, attempt: i64) -> Result<()> {
        on_db!(self, |db| {
            sqlx::query("DELETE FROM login_failures WHERE id = $1")
                .bind(attempt)
                .execute(db)
                .await?;
        });
        Ok(())
    }

    /// Records a failed or throttled login in the tenant's audit log when the email
    /// belongs to a staff member (an unknown email belongs to no tenant's log).
    pub async fn audit_login_failure(
        &self,
        known: Option<&Credentials>,
        actor: &Actor,
        throttled: bool,
    ) -> Result<()> {
        let Some(known) = known else { return Ok(()) };
        let action = if throttled {
            action::LOGIN_THROTTLED
        } else {
            action::LOGIN_FAILED
        };
        let mut tx = self.begin().await?;
        audit::record(
            &mut tx,
            known.tenant_id,
            actor,
            AuditRecord::new(action, "staff", known.staff_id)
                .with_details(json!({"email": known.email})),
        )
        .await?;
        tx.commit().await
    }

    /// Opens a console session for a staff member who proved their password; returns
    /// the session secret for the cookie.
    pub async fn create_session(
        &self,
        who: &Credentials,
        actor: &Actor,
        user_agent: Option<&str>,
    ) -> Result<String> {
        let secret = token::generate_session_id();
        let now = now_ms();
        let user_agent = user_agent.map(|ua| ua.chars().take(300).collect::<String>());
        let mut tx = self.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "INSERT INTO sessions (tenant_id, staff_id, token_hash, ip, user_agent, \
                 created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
            )
            .bind(who.tenant_id.0)
            .bind(who.staff_id.0)
            .bind(token::hash(&secret))
            .bind(&actor.ip)
            .bind(&user_agent)
            .bind(now)
            .bind(now + SESSION_MAX_AGE_MS)
            .execute(&mut *c)
            .await?;
            sqlx::query("UPDATE staff SET last_login_at = $1 WHERE tenant_id = $2 AND id = $3")
                .bind(now)
                .bind(who.tenant_id.0)
                .bind(who.staff_id.0)
                .execute(&mut *c)
                .await?;
            sqlx::query(
                "DELETE FROM sessions WHERE tenant_id = $1 AND staff_id = $2 AND expires_at < $3",
            )
            .bind(who.tenant_id.0)
            .bind(who.staff_id.0)
            .bind(now)
            .execute(&mut *c)
            .await?;
        });
        audit::record(
            &mut tx,
            who.tenant_id,
            actor,
            AuditRecord::new(action::LOGIN_SUCCEEDED, "staff", who.staff_id),
        )
        .await?;
        tx.commit().await?;
        Ok(secret)
    }

    /// The staff member behind a session secret, if the session is live and they are
    /// active.
    pub async fn resolve_session(&self, secret: &str) -> Result<Option<Principal>> {
        let now = now_ms();
        let row: Option<SessionPrincipalRow> = on_db!(self, |db| {
            sqlx::query_as(
                "SELECT se.id AS session_id, se.tenant_id, s.id AS staff_id, s.email, s.unit_id, \
                 s.data_scope, s.status, r.id AS role_id, r.name AS role, r.builtin, \
                 r.permissions, se.expires_at, se.last_seen_at \
                 FROM sessions se \
                 JOIN staff s ON s.tenant_id = se.tenant_id AND s.id = se.staff_id \
                 JOIN roles r ON r.tenant_id = s.tenant_id AND r.id = s.role_id \
                 WHERE se.token_hash = $1",
            )
            .bind(token::hash(secret))
            .fetch_optional(db)
            .await?
        });
        let Some(row) = row else { return Ok(None) };
        if row.expires_at <= now
            || row.last_seen_at + SESSION_IDLE_MS <= now
            || row.status != StaffStatus::Active.as_str()
        {
            return Ok(None);
        }
        if row.last_seen_at + TOUCH_EVERY_MS < now {
            on_db!(self, |db| {
                sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(row.session_id)
                    .execute(db)
                    .await?;
            });
        }
        Ok(Some(Principal {
            tenant_id: TenantId(row.tenant_id),
            permissions: role_permissions(&row.role, row.builtin, &row.permissions),
            role_id: RoleId(row.role_id),
            role: row.role,
            kind: PrincipalKind::Staff {
                staff_id: StaffId(row.staff_id),
                email: row.email,
                unit_id: UnitId(row.unit_id),
                data_scope: DataScope::parse(&row.data_scope).ok_or_else(|| {
                    StoreError::Corrupt(format!("data scope {:?}", row.data_scope))
                })?,
                session_id: SessionId(row.session_id),
            },
        }))
    }

    /// Ends a session (logout).
    pub async fn end_session(&self, principal: &Principal, actor: &Actor) -> Result<()> {
        let PrincipalKind::Staff {
            session_id,
            staff_id,
            ..
        } = &principal.kind
        else {
            return Ok(());
        };
        let mut tx = self.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND id = $2")
                .bind(principal.tenant_id.0)
                .bind(session_id.0)
                .execute(&mut *c)
                .await?;
        });
        audit::record(
            &mut tx,
            principal.tenant_id,
            actor,
            AuditRecord::new(action::LOGOUT, "staff", staff_id),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The principal behind an API token, if it is neither revoked nor expired.
    pub async fn resolve_api_token(&self, secret: &str) -> Result<Option<Principal>> {
        let now = now_ms();
        let row: Option<TokenPrincipalRow> = on_db!(self, |db| {
            sqlx::query_as(
                "SELECT t.id, t.tenant_id, t.name, r.id AS role_id, r.name AS role, r.builtin, \
                 r.permissions, t.expires_at, t.last_used_at, t.revoked_at \
                 FROM api_tokens t JOIN roles r ON r.tenant_id = t.tenant_id AND r.id = t.role_id \
                 WHERE t.token_hash = $1",
            )
            .bind(token::hash(secret))
            .fetch_optional(db)
            .await?
        });
        let Some(row) = row else { return Ok(None) };
        if row.revoked_at.is_some() || row.expires_at.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        if row.last_used_at.is_none_or(|t| t + TOUCH_EVERY_MS < now) {
            on_db!(self, |db| {
                sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(row.id)
                    .execute(db)
                    .await?;
            });
        }
        Ok(Some(Principal {
            tenant_id: TenantId(row.tenant_id),
            permissions: role_permissions(&row.role, row.builtin, &row.permissions),
            role_id: RoleId(row.role_id),
            role: row.role,
            kind: PrincipalKind::ApiToken {
                token_id: ApiTokenId(row.id),
                name: row.name,
            },
        }))
    }
}
