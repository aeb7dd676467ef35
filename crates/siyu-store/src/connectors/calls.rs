//! What calls through a connector leave behind, shared by every node: the access token
//! (fetched once, used by all until it expires), the calls counted per API and window
//! against the channel's limits, APIs paused after the channel said "too often", and
//! the connector's health.

use siyu_domain::ids::ConnectorId;

use crate::db::{now_ms, on_db};
use crate::tx::on_tx;
use crate::{Result, StoreError, TenantScope};

/// The calls a node may make on one API of one connector, per fixed window. They are
/// counted in the database, so every node together stays under them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    pub per_minute: i64,
    pub per_hour: i64,
}

/// An API paused after the channel refused calls as too frequent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiPause {
    pub api: String,
    /// Calls wait until then (ms).
    pub until: i64,
    /// Refusals in a row: each doubles the wait, from 1 s to 60 s, then an hour.
    pub strikes: i64,
    pub reason: String,
}

/// The answer to a request for calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallBudget {
    /// This many calls may be made now (at least one); `paused_before` says a pause
    /// had been recorded, which the first success should clear.
    Granted { calls: i64, paused_before: bool },
    /// None may be made before this time (ms): the window is spent or the API paused.
    WaitUntil { at: i64, paused: Option<ApiPause> },
}

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// A stored access token, opened.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub token: String,
    pub expires_at: i64,
    /// When it was fetched: names this token when dropping it.
    pub fetched_at: i64,
}

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredToken")
            .field("expires_at", &self.expires_at)
            .field("fetched_at", &self.fetched_at)
            .finish_non_exhaustive()
    }
}

impl TenantScope<'_> {
    /// The connector is this tenant's (every statement below names it by id alone).
    pub(super) async fn check_connector(&self, id: ConnectorId) -> Result<()> {
        self.get_connector(id).await.map(|_| ())
    }

    fn token_context(&self, id: ConnectorId) -> String {
        format!(
            "siyu:tenant:{}:connector:{}:access_token",
            self.tenant.0, id.0
        )
    }

    /// The access token every node shares, if one is stored and not expired.
    pub async fn connector_token(&self, id: ConnectorId) -> Result<Option<StoredToken>> {
        let Some(key) = self.store.secret_key.as_ref() else {
            return Err(StoreError::NoSecretKey);
        };
        let row: Option<(Vec<u8>, i64, i64)> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT t.sealed, t.expires_at, t.fetched_at FROM connector_tokens t \
                 JOIN connectors c ON c.id = t.connector_id \
                 WHERE c.tenant_id = $1 AND t.connector_id = $2",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .fetch_optional(db)
            .await?
        });
        let Some((sealed, expires_at, fetched_at)) = row else {
            return Ok(None);
        };
        if expires_at <= now_ms() {
            return Ok(None);
        }
        let token = key.open(&sealed, &self.token_context(id))?;
        let token = String::from_utf8(token)
            .map_err(|_| StoreError::Corrupt("a stored access token is not UTF-8".into()))?;
        Ok(Some(StoredToken {
            token,
            expires_at,
            fetched_at,
        }))
    }

    /// Keeps a freshly fetched token for every node.
    pub async fn save_connector_token(
        &self,
        id: ConnectorId,
        token: &str,
        expires_at: i64,
    ) -> Result<StoredToken> {
        let key = self
            .store
            .secret_key
            .as_ref()
            .ok_or(StoreError::NoSecretKey)?;
        self.check_connector(id).await?;
        let sealed = key.seal(token.as_bytes(), &self.token_context(id));
        let now = now_ms();
        on_db!(self.store, |db| {
            sqlx::query(
                "INSERT INTO connector_tokens (connector_id, sealed, expires_at, fetched_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (connector_id) DO UPDATE \
                 SET sealed = excluded.sealed, expires_at = excluded.expires_at, \
                 fetched_at = excluded.fetched_at",
            )
            .bind(id.0)
            .bind(&sealed)
            .bind(expires_at)
            .bind(now)
            .execute(db)
            .await?;
        });
        Ok(StoredToken {
            token: token.to_owned(),
            expires_at,
            fetched_at: now,
        })
    }

    /// Forgets the token fetched at `fetched_at` (the channel called it invalid); a
    /// newer one another node fetched meanwhile stays.
    pub async fn drop_connector_token(&self, id: ConnectorId, fetched_at: i64) -> Result<()> {
        self.check_connector(id).await?;
        on_db!(self.store, |db| {
            sqlx::query("DELETE FROM connector_tokens WHERE connector_id = $1 AND fetched_at = $2")
                .bind(id.0)
                .bind(fetched_at)
                .execute(db)
                .await?;
        });
        Ok(())
    }

    /// Asks for up to `wanted` calls of `api` now, within `limits` per minute and per
    /// hour (fixed windows) and outside any pause. Granted calls are counted at once.
    pub async fn reserve_connector_calls(
        &self,
        id: ConnectorId,
        api: &str,
        wanted: i64,
        limits: CallLimits,
    ) -> Result<CallBudget> {
        self.check_connector(id).await?;
        let now = now_ms();
        let minute = now - now.rem_euclid(MINUTE_MS);
        let hour = now - now.rem_euclid(HOUR_MS);
        let mut tx = self.store.begin_connector_calls(id).await?;
        let budget = on_tx!(&mut tx, |c| {
            let pause: Option<(i64, i64, String)> = sqlx::query_as(
                "SELECT until, strikes, reason FROM connector_api_pauses \
                 WHERE connector_id = $1 AND api = $2",
            )
            .bind(id.0)
            .bind(api)
            .fetch_optional(&mut *c)
            .await?;
            let paused_before = pause.is_some();
            if let Some((until, strikes, reason)) = pause
                && until > now
            {
                CallBudget::WaitUntil {
                    at: until,
                    paused: Some(ApiPause {
                        api: api.to_owned(),
                        until,
                        strikes,
                        reason,
                    }),
                }
            } else {
                let used = |span: &'static str, start: i64| {
                    sqlx::query_scalar::<_, i64>(
                        "SELECT used FROM connector_call_windows WHERE connector_id = $1 \
                         AND api = $2 AND span = $3 AND window_start = $4",
                    )
                    .bind(id.0)
                    .bind(api)
                    .bind(span)
                    .bind(start)
                };
                let in_minute = used("minute", minute)
                    .fetch_optional(&mut *c)
                    .await?
                    .unwrap_or(0);
                let in_hour = used("hour", hour)
                    .fetch_optional(&mut *c)
                    .await?
                    .unwrap_or(0);
                let calls = wanted
                    .min(limits.per_minute - in_minute)
                    .min(limits.per_hour - in_hour);
                // windows before the last hour count nothing any more
                sqlx::query(
                    "DELETE FROM connector_call_windows WHERE connector_id = $1 AND api = $2 \
                     AND window_start < $3",
                )
                .bind(id.0)
                .bind(api)
                .bind(hour - HOUR_MS)
                .execute(&mut *c)
                .await?;
                if calls <= 0 {
                    let at = if in_hour >= limits.per_hour {
                        hour + HOUR_MS
                    } else {
                        minute + MINUTE_MS
                    };
                    CallBudget::WaitUntil { at, paused: None }
                } else {
                    for (span, start) in [("minute", minute), ("hour", hour)] {
                        sqlx::query(
                            "INSERT INTO connector_call_windows \
                             (connector_id, api, span, window_start, used) \
                             VALUES ($1, $2, $3, $4, $5) \
                             ON CONFLICT (connector_id, api, span, window_start) \
                             DO UPDATE SET used = connector_call_windows.used + excluded.used",
                        )
                        .bind(id.0)
                        .bind(api)
                        .bind(span)
                        .bind(start)
                        .bind(calls)
                        .execute(&mut *c)
                        .await?;
                    }
                    CallBudget::Granted {
                        calls,
                        paused_before,
                    }
                }
            }
        });
        tx.commit().await?;
        Ok(budget)
    }

    /// Records that the channel refused a call of `api` as too frequent: the API waits
    /// 1 s, then twice as long at each refusal in a row up to 60 s, and past that an hour.
    pub async fn pause_connector_api(
        &self,
        id: ConnectorId,
        api: &str,
        reason: &str,
    ) -> Result<ApiPause> {
        self.check_connector(id).await?;
        let now = now_ms();
        let mut tx = self.store.begin_connector_calls(id).await?;
        let pause = on_tx!(&mut tx, |c| {
            let strikes: i64 = sqlx::query_scalar(
                "SELECT strikes FROM connector_api_pauses WHERE connector_id = $1 AND api = $2",
            )
            .bind(id.0)
            .bind(api)
            .fetch_optional(&mut *c)
            .await?
            .unwrap_or(0)
                + 1;
            let until = now + pause_ms(strikes);
            sqlx::query(
                "INSERT INTO connector_api_pauses (connector_id, api, until, strikes, reason) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (connector_id, api) DO UPDATE \
                 SET until = excluded.until, strikes = excluded.strikes, reason = excluded.reason",
            )
            .bind(id.0)
            .bind(api)
            .bind(until)
            .bind(strikes)
            .bind(reason)
            .execute(&mut *c)
            .await?;
            ApiPause {
                api: api.to_owned(),
                until,
                strikes,
                reason: reason.to_owned(),
            }
        });
        tx.commit().await?;
        Ok(pause)
    }

    /// A call of `api` went through after a pause: the back-off starts over.
    pub async fn clear_connector_api_pause(&self, id: ConnectorId, api: &str) -> Result<()> {
        self.check_connector(id).await?;
        on_db!(self.store, |db| {
            sqlx::query("DELETE FROM connector_api_pauses WHERE connector_id = $1 AND api = $2")
                .bind(id.0)
                .bind(api)
                .execute(db)
                .await?;
        });
        Ok(())
    }

    /// The APIs of a connector paused now or recently (for the console).
    pub async fn connector_api_pauses(&self, id: ConnectorId) -> Result<Vec<ApiPause>> {
        let rows: Vec<(String, i64, i64, String)> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT p.api, p.until, p.strikes, p.reason FROM connector_api_pauses p \
                 JOIN connectors c ON c.id = p.connector_id \
                 WHERE c.tenant_id = $1 AND p.connector_id = $2 ORDER BY p.api",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .fetch_all(db)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(api, until, strikes, reason)| ApiPause {
                api,
                until,
                strikes,
                reason,
            })
            .collect())
    }

    /// Records how a call through the connector went: a success makes it healthy; an
    /// error is kept as the last error, and a configuration error (a revoked secret)
    /// makes it unhealthy until a call succeeds.
    pub async fn record_connector_outcome(
        &self,
        id: ConnectorId,
        outcome: Result<(), (&str, bool)>,
    ) -> Result<()> {
        let now = now_ms();
        on_db!(self.store, |db| {
            match outcome {
                Ok(()) => {
                    sqlx::query(
                        "UPDATE connectors SET healthy = TRUE, last_success_at = $1 \
                         WHERE tenant_id = $2 AND id = $3",
                    )
                    .bind(now)
                    .bind(self.tenant.0)
                    .bind(id.0)
                    .execute(db)
                    .await?;
                }
                Err((message, configuration)) => {
                    sqlx::query(
                        "UPDATE connectors SET last_error_at = $1, last_error = $2, \
                         healthy = CASE WHEN $3 THEN FALSE ELSE healthy END \
                         WHERE tenant_id = $4 AND id = $5",
                    )
                    .bind(now)
                    .bind(message)
                    .bind(configuration)
                    .bind(self.tenant.0)
                    .bind(id.0)
                    .execute(db)
                    .await?;
                }
            }
        });
        Ok(())
    }
}

/// How long an API waits after `strikes` refusals in a row.
fn pause_ms(strikes: i64) -> i64 {
    if strikes > 7 {
        HOUR_MS
    } else {
        (1_000i64 << (strikes - 1).clamp(0, 6)).min(60_000)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_pause_doubles_to_a_minute_then_takes_an_hour() {
        let waits: Vec<i64> = (1..=9).map(super::pause_ms).collect();
        assert_eq!(
            waits,
            [
                1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 3_600_000, 3_600_000
            ]
        );
    }
}
