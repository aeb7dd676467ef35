//! The audience recorders: what the index decides once for everyone.
//!
//! Every node keeps its own index (the follower), but segment entries and exits (with
//! their events), tag-rule actions, lifecycle stages and segment sizes over time are
//! recorded once. So on worker nodes, after each follower pass, the recorder takes per
//! tenant the lease on that tenant's recorder row (`siyu_store`'s `recording`): the
//! node holding it records, from its own index, the customers changed after the row's
//! `recorded_through` up to what its follower has seen, and moves the row on. A full
//! pass over every customer happens once when the tenant's day, its settings or its
//! RFM cut points moved since the last full pass (conditions relative to today, and
//! RFM classes against new cut points, change without the customers' data changing);
//! sizes are recorded once an hour. A node that dies loses its leases after
//! [`LEASE_MS`] and another takes over from the same row.
//!
//! Exactly once: the records themselves are not written in the transaction that moves
//! the row on, so a holder that dies between the two leaves changes to record again;
//! recording brings stored state in line with the index (memberships, tags and stages
//! are compared before they are written), so a
//! second recording of the same changes writes nothing (only a segment's size may be
//! recorded twice in that hour).

use std::time::Instant;

use siyu_audience::Condition;
use siyu_audience::catalog::{Catalog, SavedSegment};
use siyu_domain::audience::{SegmentId, TagOrigin, TagRule, TaggingResult};
use siyu_domain::audit::Actor;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::TenantId;
use siyu_store::StoreError;

use super::{Audiences, TenantAudience};

/// How long a recorder's lease lasts without being renewed (each follower pass renews
/// it).
pub const LEASE_MS: i64 = 30_000;
/// How often segment sizes are recorded.
const COUNT_EVERY_MS: i64 = 3_600_000;

impl Audiences {
    /// One recorder pass on a worker node: every tenant whose recorder this node holds
    /// or can take is brought up to date.
    pub async fn record(&self) -> Result<(), StoreError> {
        let Some(worker) = self.recorder.clone() else {
            return Ok(());
        };
        let seen_through = self.follower.lock().await.seen_through();
        for tenant in self.store.list_tenants().await? {
            if let Err(e) = self.record_tenant(tenant.id, &worker, seen_through).await {
                tracing::warn!(tenant = tenant.id.0, error = %e, "recording failed; will retry");
            }
        }
        Ok(())
    }

    async fn record_tenant(
        &self,
        tenant: TenantId,
        worker: &str,
        seen_through: i64,
    ) -> Result<(), StoreError> {
        let Some(mut state) = self.store.take_recorder(tenant, worker, LEASE_MS).await? else {
            return Ok(()); // another node records this tenant
        };
        let audience = self.built(tenant).await?;
        if self.has_pending(tenant) {
            return Ok(()); // this node's index is behind for some customers: next pass
        }
        let started = Instant::now();
        let day = i64::from(audience.today());
        let version = *audience.settings_version.lock().expect("not poisoned");
        let cut_points = {
            let index = audience.index.read().expect("not poisoned");
            serde_json::to_string(&index.cut_points()).ok()
        };
        let full = state.recorded_through == 0
            || state.full_pass_day != Some(day)
            || state.settings_version != Some(version)
            || state.cut_points != cut_points;
        if full {
            self.keep(tenant, &audience, None).await?;
            state.full_pass_day = Some(day);
            state.settings_version = Some(version);
            state.cut_points = cut_points;
        } else if seen_through > state.recorded_through {
            match self
                .store
                .changed_customers(tenant, state.recorded_through, seen_through)
                .await?
            {
                Some(changed) if changed.is_empty() => {}
                Some(changed) => self.keep(tenant, &audience, Some(&changed)).await?,
                None => self.keep(tenant, &audience, None).await?,
            }
        }
        state.recorded_through = state.recorded_through.max(seen_through);
        let now = siyu_store::now_ms();
        if state.counted_at.is_none_or(|at| now - at >= COUNT_EVERY_MS) {
            self.record_counts(tenant, &audience).await?;
            state.counted_at = Some(now);
        }
        if !self.store.save_recorder(tenant, worker, &state).await? {
            tracing::warn!(
                tenant = tenant.0,
                "the recorder's lease was lost while recording"
            );
        } else if full {
            tracing::info!(
                tenant = tenant.0,
                ms = started.elapsed().as_millis() as u64,
                "audiences recorded in full"
            );
        }
        Ok(())
    }

    /// Gives up this node's recorders (it is stopping): another node takes them now.
    pub async fn release_recorders(&self) {
        if let Some(worker) = &self.recorder
            && let Err(e) = self.store.release_recorders(worker).await
        {
            tracing::warn!(error = %e, "the recorders' leases were not given up; they lapse");
        }
    }

    /// Keeps tag rules applied and dynamic segments' memberships (with their entry and
    /// exit events) in line with the data, for these customers (all when `None`).
    /// Rules go first: the tags they add can move customers into segments (the next
    /// pass sees those, as the tagging is itself a change).
    pub async fn keep(
        &self,
        tenant: TenantId,
        audience: &TenantAudience,
        changed: Option<&[i64]>,
    ) -> Result<(), StoreError> {
        let scope = self.store.tenant(tenant);
        let rules: Vec<TagRule> = scope
            .tag_rules()
            .await?
            .into_iter()
            .filter(|r| r.enabled)
            .collect();
        let catalog = self.catalog(tenant).await?;
        let mut segments: Vec<(i64, Condition)> = catalog
            .segments
            .iter()
            .filter_map(|(id, s)| match s {
                SavedSegment::Dynamic(c) => Some((*id, c.clone())),
                SavedSegment::Static(_) => None,
            })
            .collect();
        segments.sort_by_key(|(id, _)| *id);
        for rule in &rules {
            self.apply_rule_among(tenant, audience, &catalog, rule, changed)
                .await?;
        }
        for (id, condition) in &segments {
            // a segment that no longer evaluates keeps its recorded members
            if let Some(members) = self
                .matches_among(tenant, audience, &catalog, condition, changed)
                .await?
            {
                scope
                    .sync_memberships(SegmentId(*id), changed, &members)
                    .await?;
            }
        }
        let stages = {
            let index = audience.index.read().expect("not poisoned");
            match changed {
                Some(ids) => index.stages_of(ids),
                None => index.all_stages(),
            }
        };
        let stages: Vec<(i64, &str)> = stages.iter().map(|(id, s)| (*id, s.code())).collect();
        scope.sync_stages(&stages, changed).await?;
        Ok(())
    }

    async fn apply_rule_among(
        &self,
        tenant: TenantId,
        audience: &TenantAudience,
        catalog: &Catalog,
        rule: &TagRule,
        among: Option<&[i64]>,
    ) -> Result<TaggingResult, StoreError> {
        let Ok(condition) = serde_json::from_value::<Condition>(rule.condition.clone()) else {
            return Ok(TaggingResult {
                added: 0,
                removed: 0,
            });
        };
        let ids = self
            .matches_among(tenant, audience, catalog, &condition, among)
            .await?
            .unwrap_or_default();
        if ids.is_empty() {
            return Ok(TaggingResult {
                added: 0,
                removed: 0,
            });
        }
        let customers: Vec<CustomerId> = ids.into_iter().map(CustomerId).collect();
        self.store
            .tenant(tenant)
            .change_tags(
                &customers,
                &rule.add,
                &rule.remove,
                TagOrigin::Rule,
                Some(&format!("tag rule {}", rule.name)),
                &Actor::system(format!("tag rule {}", rule.id.0)),
            )
            .await
    }

    /// Records the size of every saved segment now.
    async fn record_counts(
        &self,
        tenant: TenantId,
        audience: &TenantAudience,
    ) -> Result<(), StoreError> {
        let catalog = self.catalog(tenant).await?;
        let mut ids: Vec<i64> = catalog.segments.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(members) = self
                .matches_among(tenant, audience, &catalog, &Condition::Segment(id), None)
                .await?
            {
                self.store
                    .tenant(tenant)
                    .record_segment_count(SegmentId(id), members.len() as u64)
                    .await?;
            }
        }
        Ok(())
    }

    /// Brings a dynamic segment's recorded members in line with a new definition: who
    /// came in and who left get their events.
    pub async fn sync_segment(
        &self,
        tenant: TenantId,
        segment: SegmentId,
        condition: &Condition,
    ) -> Result<(), StoreError> {
        let members = self.members_now(tenant, condition).await?;
        self.store
            .tenant(tenant)
            .sync_memberships(segment, None, &members)
            .await?;
        Ok(())
    }
}
