//! Each server process keeps an audience index per tenant in memory and keeps it
//! following the database.
//!
//! A tenant's index is built on first use from the store. A background task follows
//! `customer_changes` (written in the same transaction as every change a segment can
//! test) every half second and replaces the changed customers' entries, so every
//! process on one database answers the same counts within about a second of a change.
//! Sequence numbers seen missing are asked for again for a while: on PostgreSQL a
//! transaction can commit after one that took a later number. Scores (RFM, lifecycle)
//! are recomputed when the day changes and every ten minutes, since new orders move the
//! quintiles.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use roaring::RoaringBitmap;
use siyu_audience::Condition;
use siyu_audience::catalog::{Catalog, DefinitionError, SavedSegment};
use siyu_audience::index::{AudienceIndex, IndexBuilder, ScoreSettings};
use siyu_audience::lifecycle::LifecycleSettings;
use siyu_audience::plain::{EvalInput, FilteredCounts};
use siyu_audience::rfm::RfmSettings;
use siyu_domain::audience::{SegmentId, TagOrigin, TagRule, TaggingResult};
use siyu_domain::audit::Actor;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::TenantId;
use siyu_domain::time::TimeZone;
use siyu_store::{Store, StoreError, TenantScope};
use tokio::sync::OnceCell;

use crate::error::ApiError;

mod scoped;
pub use scoped::ScopedIndex;

/// How often the change log is read.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);
/// How long a missing sequence number is asked for again.
const GAP_PATIENCE: Duration = Duration::from_secs(30);
/// How often every segment's size is recorded (its size over time).
const COUNT_EVERY: Duration = Duration::from_secs(3600);
/// How often scores are recomputed with fresh cut points when nothing changed (stages
/// move with time alone).
const RESCORE_EVERY: Duration = Duration::from_secs(600);
/// How soon after customers change RFM cut points are recomputed: quintiles move as
/// orders arrive, and a score against stale cut points is a wrong figure. A full
/// recompute takes under 100 ms on a million customers, so at most once this often.
const RESCORE_AFTER_CHANGES: Duration = Duration::from_secs(2);

pub const RFM_SETTINGS: &str = "rfm";
pub const LIFECYCLE_SETTINGS: &str = "lifecycle";
pub const KOC_SETTINGS: &str = "koc";

/// Who counts as a seed user / KOC unless the tenant says otherwise: those who spread
/// the word (shares, invites, content), whatever they spend.
pub const DEFAULT_KOC: &str = r#"performed("Content Shared", last 90d) >= 3 or performed("Friend Invited", last 90d) >= 1 or performed("Comment Posted", last 90d) >= 5"#;

/// One tenant's index.
pub struct TenantAudience {
    /// Read by routes only through [`TenantAudience::read`], limited to a scope.
    index: RwLock<AudienceIndex>,
    /// The tenant's time zone: its days start at midnight there.
    pub time_zone: TimeZone,
    scored_at: Mutex<(i32, Instant)>,
    /// Customers changed since scores were last recomputed.
    changed_since_scored: std::sync::atomic::AtomicBool,
    /// When segment sizes were last recorded (hourly).
    counted_at: Mutex<Option<Instant>>,
    /// The tenant's settings as last read (their newest change time).
    settings_version: Mutex<i64>,
}

#[derive(Default)]
struct Slot {
    ready: OnceCell<Arc<TenantAudience>>,
    /// Whether the first full pass of segments and rules has started.
    kept: std::sync::atomic::AtomicBool,
    /// Customers changed while the index was being built: applied once it is.
    pending: Mutex<Vec<i64>>,
}

struct Follower {
    cursor: i64,
    gaps: HashMap<i64, Instant>,
}

#[derive(Clone)]
pub struct Audiences {
    store: Store,
    slots: Arc<Mutex<HashMap<TenantId, Arc<Slot>>>>,
    follower: Arc<tokio::sync::Mutex<Follower>>,
}

/// Today's number in a time zone.
fn local_day(zone: TimeZone) -> i32 {
    zone.day_of(siyu_store::now_ms()) as i32
}

impl TenantAudience {
    /// Today, in the tenant's time zone.
    pub fn today(&self) -> i32 {
        local_day(self.time_zone)
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

impl Audiences {
    /// Starts following changes from now; indexes are built on first use.
    pub async fn start(store: Store) -> Result<Self, StoreError> {
        let cursor = store.last_customer_change().await?;
        let audiences = Self {
            store,
            slots: Arc::default(),
            follower: Arc::new(tokio::sync::Mutex::new(Follower {
                cursor,
                gaps: HashMap::new(),
            })),
        };
        let follower = audiences.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FOLLOW_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut pruned = Instant::now();
            loop {
                tick.tick().await;
                if let Err(e) = follower.follow().await {
                    tracing::warn!(error = %e, "following customer changes failed; retrying");
                }
                if pruned.elapsed() > Duration::from_secs(3600) {
                    pruned = Instant::now();
                    let _ = follower
                        .store
                        .prune_customer_changes(24 * 3600 * 1000)
                        .await;
                }
            }
        });
        Ok(audiences)
    }

    async fn settings(&self, tenant: TenantId) -> Result<ScoreSettings, StoreError> {
        let scope = self.store.tenant(tenant);
        let rfm = match scope.setting(RFM_SETTINGS).await? {
            Some(v) => serde_json::from_value::<RfmSettings>(v).unwrap_or_default(),
            None => RfmSettings::default(),
        };
        let lifecycle = match scope.setting(LIFECYCLE_SETTINGS).await? {
            Some(v) => serde_json::from_value::<LifecycleSettings>(v).unwrap_or_default(),
            None => LifecycleSettings::default(),
        };
        Ok(ScoreSettings { rfm, lifecycle })
    }

    /// The tenant's index, built now if this process has none yet.
    pub async fn tenant(&self, tenant: TenantId) -> Result<Arc<TenantAudience>, StoreError> {
        let slot = self
            .slots
            .lock()
            .expect("not poisoned")
            .entry(tenant)
            .or_default()
            .clone();
        let audience = slot
            .ready
            .get_or_try_init(|| async {
                let started = Instant::now();
                let scope = self.store.tenant(tenant);
                let time_zone = scope.time_zone().await?;
                let day = local_day(time_zone);
                let mut builder = IndexBuilder::new(self.settings(tenant).await?, day);
                let mut after = 0;
                loop {
                    let page = scope.audience_facts(after, 5000).await?;
                    let Some(last) = page.last() else { break };
                    after = last.id;
                    for facts in &page {
                        builder.add(facts);
                    }
                }
                let index = builder.finish();
                tracing::info!(
                    tenant = tenant.0,
                    customers = index.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "audience index built"
                );
                Ok::<_, StoreError>(Arc::new(TenantAudience {
                    index: RwLock::new(index),
                    time_zone,
                    scored_at: Mutex::new((day, Instant::now())),
                    changed_since_scored: std::sync::atomic::AtomicBool::new(false),
                    counted_at: Mutex::new(None),
                    settings_version: Mutex::new(scope.settings_version().await?),
                }))
            })
            .await?
            .clone();
        // what changed while it was built, and a first full pass of segments and tag
        // rules (catching up what changed while no server ran), are the follower's:
        // one task does all keeping, so passes never race each other
        Ok(audience)
    }

    /// The customers among `among` (all when `None`) who match a condition now; `None`
    /// for a condition that no longer evaluates (it names a renamed source or a deleted
    /// unit): nothing is decided from it.
    async fn matches_among(
        &self,
        tenant: TenantId,
        audience: &TenantAudience,
        catalog: &Catalog,
        condition: &Condition,
        among: Option<&[i64]>,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        let day = audience.today();
        let mut filtered = FilteredCounts::new();
        for leaf in catalog.filtered_events(condition) {
            if let Condition::Performed(p) = &leaf {
                let counts = self
                    .store
                    .tenant(tenant)
                    .filtered_event_counts(p, day, among)
                    .await?;
                filtered.insert(leaf.to_string(), counts);
            }
        }
        let index = audience.index.read().expect("not poisoned");
        let input = EvalInput {
            today: day,
            zone: audience.time_zone,
            catalog,
            filtered: &filtered,
        };
        let set = match among {
            Some(ids) => {
                index.evaluate_among(condition, &input, &index.set_of(ids.iter().copied()))
            }
            None => index.evaluate(condition, &input),
        };
        match set {
            Ok(set) => Ok(Some(index.ids(&set, usize::MAX))),
            Err(e) => {
                tracing::warn!(tenant = tenant.0, %condition, error = %e, "a saved condition no longer evaluates");
                Ok(None)
            }
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

    /// Applies a tag rule to every customer it matches now (when it is saved).
    pub async fn apply_rule(
        &self,
        tenant: TenantId,
        rule: &TagRule,
    ) -> Result<TaggingResult, StoreError> {
        let audience = self.tenant(tenant).await?;
        let catalog = self.catalog(tenant).await?;
        self.apply_rule_among(tenant, &audience, &catalog, rule, None)
            .await
    }

    /// Everyone (whatever the caller's data scope) who matches a condition now.
    pub async fn members_now(
        &self,
        tenant: TenantId,
        condition: &Condition,
    ) -> Result<Vec<i64>, StoreError> {
        let audience = self.tenant(tenant).await?;
        let catalog = self.catalog(tenant).await?;
        Ok(self
            .matches_among(tenant, &audience, &catalog, condition, None)
            .await?
            .unwrap_or_default())
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

    async fn apply(
        &self,
        tenant: TenantId,
        audience: &TenantAudience,
        ids: &[i64],
    ) -> Result<(), StoreError> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        for chunk in ids.chunks(1000) {
            let facts = self.store.tenant(tenant).audience_facts_of(chunk).await?;
            let mut index = audience.index.write().expect("not poisoned");
            let mut present = std::collections::HashSet::new();
            for f in &facts {
                present.insert(f.id);
                index.upsert(f);
            }
            for id in chunk {
                if !present.contains(id) {
                    index.remove(*id);
                }
            }
        }
        Ok(())
    }

    /// Reads new changes and applies them to the indexes this process holds.
    pub async fn follow(&self) -> Result<(), StoreError> {
        let mut follower = self.follower.lock().await;
        follower
            .gaps
            .retain(|_, noticed| noticed.elapsed() < GAP_PATIENCE);
        let gaps: Vec<i64> = follower.gaps.keys().copied().collect();
        let changes = self
            .store
            .customer_changes(follower.cursor, &gaps, 20_000)
            .await?;
        let mut per_tenant: HashMap<TenantId, Vec<i64>> = HashMap::new();
        let mut expected = follower.cursor + 1;
        for change in &changes {
            follower.gaps.remove(&change.seq);
            if change.seq > follower.cursor {
                for missing in expected..change.seq {
                    follower.gaps.insert(missing, Instant::now());
                }
                expected = change.seq + 1;
                follower.cursor = change.seq;
            }
            per_tenant
                .entry(change.tenant)
                .or_default()
                .push(change.customer.0);
        }
        let slots: Vec<(TenantId, Arc<Slot>)> = self
            .slots
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|(t, s)| (*t, s.clone()))
            .collect();
        for (tenant, slot) in slots {
            let mut changed = per_tenant.remove(&tenant).unwrap_or_default();
            // pending and changes are handled under one lock, so none slips between the
            // build finishing and the follower looking
            let ready = {
                let mut pending = slot.pending.lock().expect("not poisoned");
                match slot.ready.get() {
                    Some(audience) => {
                        changed.append(&mut pending);
                        Some(audience.clone())
                    }
                    None => {
                        pending.append(&mut changed);
                        None
                    }
                }
            };
            let Some(audience) = ready else { continue };
            if let Err(e) = self.keep_tenant(tenant, &slot, &audience, &changed).await {
                // kept for the next pass: a failure loses no change
                tracing::warn!(tenant = tenant.0, error = %e, "following customer changes failed; will retry");
                slot.pending.lock().expect("not poisoned").extend(changed);
            }
        }
        Ok(())
    }

    /// One follower pass over one tenant's index.
    async fn keep_tenant(
        &self,
        tenant: TenantId,
        slot: &Slot,
        audience: &TenantAudience,
        changed: &[i64],
    ) -> Result<(), StoreError> {
        // settings changed through another server (or this one) are picked up
        let version = self.store.tenant(tenant).settings_version().await?;
        let reload = {
            let mut known = audience.settings_version.lock().expect("not poisoned");
            let changed = *known != version;
            *known = version;
            changed
        };
        if reload {
            let settings = self.settings(tenant).await?;
            audience
                .index
                .write()
                .expect("not poisoned")
                .set_settings(settings);
        }
        if !changed.is_empty() {
            self.apply(tenant, audience, changed).await?;
        }
        let first_pass = !slot.kept.swap(true, std::sync::atomic::Ordering::SeqCst);
        if first_pass || reload {
            self.keep(tenant, audience, None).await?;
        } else if !changed.is_empty() {
            self.keep(tenant, audience, Some(changed)).await?;
        }
        let day = audience.today();
        use std::sync::atomic::Ordering;
        if !changed.is_empty() {
            audience.changed_since_scored.store(true, Ordering::SeqCst);
        }
        let (new_day, due) = {
            let scored = audience.scored_at.lock().expect("not poisoned");
            let changes_waiting = audience.changed_since_scored.load(Ordering::SeqCst)
                && scored.1.elapsed() > RESCORE_AFTER_CHANGES;
            (
                scored.0 != day,
                scored.0 != day || scored.1.elapsed() > RESCORE_EVERY || changes_waiting,
            )
        };
        let mut cuts_moved = false;
        if due {
            audience.changed_since_scored.store(false, Ordering::SeqCst);
            let mut index = audience.index.write().expect("not poisoned");
            let before = index.cut_points();
            index.recompute(day);
            cuts_moved = index.cut_points() != before;
            drop(index);
            *audience.scored_at.lock().expect("not poisoned") = (day, Instant::now());
        }
        if new_day || cuts_moved {
            // conditions relative to today, and RFM classes against new cut points,
            // change without the customers' data changing
            self.keep(tenant, audience, None).await?;
        }
        let count_due = audience
            .counted_at
            .lock()
            .expect("not poisoned")
            .is_none_or(|at| at.elapsed() > COUNT_EVERY);
        if count_due {
            *audience.counted_at.lock().expect("not poisoned") = Some(Instant::now());
            self.record_counts(tenant, audience).await?;
        }
        Ok(())
    }

    /// Applies a tenant's changed score settings to this process's index now (every
    /// process's follower also picks them up within a second, by their change time).
    pub async fn rescore(&self, tenant: TenantId) -> Result<(), StoreError> {
        let settings = self.settings(tenant).await?;
        let audience = self.tenant(tenant).await?;
        audience
            .index
            .write()
            .expect("not poisoned")
            .set_settings(settings);
        Ok(())
    }

    /// The tenant's catalog: tags, units and saved segments.
    pub async fn catalog(&self, tenant: TenantId) -> Result<Catalog, StoreError> {
        let scope = self.store.tenant(tenant);
        Ok(Catalog {
            tags: scope.tag_catalog().await?,
            units: scope.unit_catalog().await?,
            sources: scope.source_catalog().await?,
            segments: scope.segment_catalog().await?,
        })
    }

    /// The tenant's definition of a seed user / KOC.
    pub async fn koc_condition(&self, tenant: TenantId) -> Result<Condition, StoreError> {
        let text = self
            .store
            .tenant(tenant)
            .setting(KOC_SETTINGS)
            .await?
            .and_then(|v| {
                v.get("definition")
                    .and_then(|d| d.as_str())
                    .map(str::to_owned)
            });
        let parsed = text.as_deref().and_then(|t| siyu_audience::parse(t).ok());
        Ok(
            parsed
                .unwrap_or_else(|| siyu_audience::parse(DEFAULT_KOC).expect("the default parses")),
        )
    }

    /// The customers who match a condition, within the scope's reach.
    pub async fn evaluate(
        &self,
        scope: &TenantScope<'_>,
        condition: &Condition,
    ) -> Result<(RoaringBitmap, Arc<TenantAudience>), ApiError> {
        let tenant = scope.id();
        let catalog = self.catalog(tenant).await?;
        catalog.check(condition).map_err(definition_error)?;
        let audience = self.tenant(tenant).await?;
        let day = audience.today();
        let mut filtered = FilteredCounts::new();
        for leaf in catalog.filtered_events(condition) {
            if let Condition::Performed(p) = &leaf {
                let counts = self
                    .store
                    .tenant(tenant)
                    .filtered_event_counts(p, day, None)
                    .await?;
                filtered.insert(leaf.to_string(), counts);
            }
        }
        let members = {
            let index = audience.index.read().expect("not poisoned");
            let input = EvalInput {
                today: day,
                zone: audience.time_zone,
                catalog: &catalog,
                filtered: &filtered,
            };
            let mut members = index
                .evaluate(condition, &input)
                .map_err(|e| ApiError::field("definition", e.to_string()))?;
            if let Some(owners) = scope.reach().owners() {
                members &= index.owned_by(owners.iter().map(|s| s.0));
            }
            members
        };
        Ok((members, audience))
    }
}
