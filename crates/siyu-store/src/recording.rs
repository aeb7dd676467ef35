//! Where the audience recorders are, per tenant.
//!
//! What the audience index decides once for everyone (segment entries and exits with
//! their events, tag-rule actions, lifecycle stages, segment sizes over time) must be
//! recorded once, though every node keeps an index. So per tenant one worker node holds
//! a lease on the tenant's row here and records, from its own index, the customers
//! changed after `recorded_through`; a node that dies loses the lease when it runs out
//! and another takes over from the same place. The row also says what the last full
//! pass saw (the tenant's day, settings version, RFM cut points), so a full pass happens
//! once when one of them moves, not once per node.

use crate::db::{now_ms, on_db};
use crate::{Result, Store};
use siyu_domain::ids::TenantId;

/// A tenant's recorder, as its holder reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct RecorderState {
    /// Every customer change up to this sequence number has been recorded.
    pub recorded_through: i64,
    /// The tenant's day of the last full pass.
    pub full_pass_day: Option<i64>,
    /// The settings version the last full pass saw.
    pub settings_version: Option<i64>,
    /// The RFM cut points the last full pass saw (their text).
    pub cut_points: Option<String>,
    /// When segment sizes were last recorded.
    pub counted_at: Option<i64>,
}

impl Store {
    /// Takes (or keeps) the lease on a tenant's recorder for `worker`, for `lease_ms`;
    /// `None` while another worker holds it.
    pub async fn take_recorder(
        &self,
        tenant: TenantId,
        worker: &str,
        lease_ms: i64,
    ) -> Result<Option<RecorderState>> {
        let now = now_ms();
        let state: Option<RecorderState> = on_db!(self, |db| {
            sqlx::query(
                "INSERT INTO audience_recorders (tenant_id) VALUES ($1) ON CONFLICT (tenant_id) DO NOTHING",
            )
            .bind(tenant.0)
            .execute(db)
            .await?;
            sqlx::query_as(
                "UPDATE audience_recorders SET holder = $1, lease_until = $2 \
                 WHERE tenant_id = $3 AND (holder = $1 OR holder IS NULL OR lease_until < $4) \
                 RETURNING recorded_through, full_pass_day, settings_version, cut_points, counted_at",
            )
            .bind(worker)
            .bind(now + lease_ms)
            .bind(tenant.0)
            .bind(now)
            .fetch_optional(db)
            .await?
        });
        Ok(state)
    }

    /// Saves what the holder recorded; `false` when `worker` no longer holds the lease
    /// (another took it: what was recorded meanwhile is recorded again, which changes
    /// nothing, as recording brings stored state in line with the index).
    pub async fn save_recorder(
        &self,
        tenant: TenantId,
        worker: &str,
        state: &RecorderState,
    ) -> Result<bool> {
        let saved = on_db!(self, |db| {
            sqlx::query(
                "UPDATE audience_recorders SET recorded_through = $1, full_pass_day = $2, \
                 settings_version = $3, cut_points = $4, counted_at = $5 \
                 WHERE tenant_id = $6 AND holder = $7",
            )
            .bind(state.recorded_through)
            .bind(state.full_pass_day)
            .bind(state.settings_version)
            .bind(&state.cut_points)
            .bind(state.counted_at)
            .bind(tenant.0)
            .bind(worker)
            .execute(db)
            .await?
            .rows_affected()
        });
        Ok(saved == 1)
    }

    /// Gives up the leases `worker` holds (it is shutting down): others take over now.
    pub async fn release_recorders(&self, worker: &str) -> Result<()> {
        on_db!(self, |db| {
            sqlx::query(
                "UPDATE audience_recorders SET holder = NULL, lease_until = 0 WHERE holder = $1",
            )
            .bind(worker)
            .execute(db)
            .await?;
        });
        Ok(())
    }

    /// The customers of a tenant changed after `after` up to `through` (sequence
    /// numbers), each once; `None` when changes after `after` were already pruned (the
    /// recorder fell too far behind: a full pass is needed).
    pub async fn changed_customers(
        &self,
        tenant: TenantId,
        after: i64,
        through: i64,
    ) -> Result<Option<Vec<i64>>> {
        let oldest: Option<i64> = on_db!(self, |db| {
            sqlx::query_scalar("SELECT MIN(seq) FROM customer_changes")
                .fetch_one(db)
                .await?
        });
        if oldest.is_some_and(|oldest| oldest > after + 1) && after > 0 {
            return Ok(None);
        }
        let ids: Vec<i64> = on_db!(self, |db| {
            sqlx::query_scalar(
                "SELECT DISTINCT customer_id FROM customer_changes \
                 WHERE tenant_id = $1 AND seq > $2 AND seq <= $3",
            )
            .bind(tenant.0)
            .bind(after)
            .bind(through)
            .fetch_all(db)
            .await?
        });
        Ok(Some(ids))
    }
}
