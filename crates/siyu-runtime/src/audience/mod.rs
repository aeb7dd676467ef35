//! Each node keeps an audience index per tenant in memory and keeps it following the
//! database.
//!
//! A tenant's index is built on first use from the store. A background task follows
//! `customer_changes` (written in the same transaction as every change a segment can
//! test) every half second and replaces the changed customers' entries, so every
//! node on one database answers the same counts within about a second of a change.
//! Sequence numbers seen missing are asked for again for a while: on PostgreSQL a
//! transaction can commit after one that took a later number. Scores (RFM cut points,
//! lifecycle stages) are recomputed in the index when the day changes, every ten
//! minutes, and soon after customers change, since new orders move the quintiles.
//!
//! What is recorded once for everyone (segment entries and exits, tag-rule actions,
//! stages, sizes over time) is not done by every node: see [`recorder`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use roaring::RoaringBitmap;
use siyu_audience::Condition;
use siyu_audience::catalog::{Catalog, DefinitionError};
use siyu_audience::index::{AudienceIndex, IndexBuilder, ScoreSettings};
use siyu_audience::lifecycle::LifecycleSettings;
use siyu_audience::plain::{EvalInput, FilteredCounts};
use siyu_audience::rfm::RfmSettings;
use siyu_domain::ids::TenantId;
use siyu_domain::time::TimeZone;
use siyu_store::{Store, StoreError, TenantScope};
use tokio::sync::OnceCell;

pub mod recorder;
mod scoped;
pub use scoped::ScopedIndex;

/// How often the change log is read.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);
/// How long a missing sequence number is asked for again.
const GAP_PATIENCE: Duration = Duration::from_secs(30);
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
    /// The tenant's settings as last read (their version).
    settings_version: Mutex<i64>,
}

#[derive(Default)]
struct Slot {
    ready: OnceCell<Arc<TenantAudience>>,
    /// Customers changed while the index was being built: applied once it is.
    pending: Mutex<Vec<i64>>,
}

struct Follower {
    cursor: i64,
    gaps: HashMap<i64, Instant>,
}

impl Follower {
    /// Every change up to this sequence number has been seen (those still missing
    /// are past it).
    fn seen_through(&self) -> i64 {
        self.gaps
            .keys()
            .min()
            .map_or(self.cursor, |first_missing| first_missing - 1)
    }
}

/// The indexes of a node, and the task that keeps them following the database.
#[derive(Clone)]
pub struct Audiences {
    store: Store,
    slots: Arc<Mutex<HashMap<TenantId, Arc<Slot>>>>,
    follower: Arc<tokio::sync::Mutex<Follower>>,
    /// Set on a node that records (a worker node): its name, under which it holds
    /// recorders' leases.
    recorder: Option<Arc<str>>,
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

    /// Recomputes scores (RFM cut points, stages) for today.
    fn recompute(&self) {
        let day = self.today();
        self.changed_since_scored
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.index.write().expect("not poisoned").recompute(day);
        *self.scored_at.lock().expect("not poisoned") = (day, Instant::now());
    }
}

/// Why a condition could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum AudienceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// It names what the tenant does not have (a tag, a unit, a segment).
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    /// The index cannot evaluate it.
    #[error("{0}")]
    Evaluation(String),
}

impl Audiences {
    /// Starts following changes from now; indexes are built on first use. With
    /// `recorder` (a worker node's name), the node also records (see [`recorder`]).
    pub async fn start(store: Store, recorder: Option<String>) -> Result<Self, StoreError> {
        let cursor = store.last_customer_change().await?;
        let audiences = Self {
            store,
            slots: Arc::default(),
            follower: Arc::new(tokio::sync::Mutex::new(Follower {
                cursor,
                gaps: HashMap::new(),
            })),
            recorder: recorder.map(Arc::from),
        };
        let follower = audiences.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FOLLOW_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = follower.follow().await {
                    tracing::warn!(error = %e, "following customer changes failed; retrying");
                }
                if let Err(e) = follower.record().await {
                    tracing::warn!(error = %e, "recording audiences failed; retrying");
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

    /// The tenant's index, built now if this node has none yet, and current: changes
    /// committed before the call are in it (a read after a write sees the write).
    pub async fn tenant(&self, tenant: TenantId) -> Result<Arc<TenantAudience>, StoreError> {
        let audience = self.built(tenant).await?;
        self.catch_up().await?;
        // scores against cut points from before the changes would be wrong figures
        if audience
            .changed_since_scored
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            audience.recompute();
        }
        Ok(audience)
    }

    /// Follows now if changes were committed that the follower has not read.
    async fn catch_up(&self) -> Result<(), StoreError> {
        let last = self.store.last_customer_change().await?;
        if last > self.follower.lock().await.cursor {
            self.follow().await?;
        }
        Ok(())
    }

    /// The tenant's index, built now if this node has none yet.
    async fn built(&self, tenant: TenantId) -> Result<Arc<TenantAudience>, StoreError> {
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
                    settings_version: Mutex::new(scope.settings_version().await?),
                }))
            })
            .await?
            .clone();
        // what changed while it was built is the follower's to apply
        Ok(audience)
    }

    /// The per-customer counts of the filtered `performed(…)` leaves of a condition (the
    /// index keeps unfiltered counts only), among some customers or all.
    async fn filtered_counts(
        &self,
        tenant: TenantId,
        catalog: &Catalog,
        condition: &Condition,
        day: i32,
        among: Option<&[i64]>,
    ) -> Result<FilteredCounts, StoreError> {
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
        Ok(filtered)
    }

    /// The customers among `among` (all when `None`) who match a condition now; `None`
    /// for a condition that no longer evaluates (it names a renamed source or a deleted
    /// unit): nothing is decided from it.
    pub(crate) async fn matches_among(
        &self,
        tenant: TenantId,
        audience: &TenantAudience,
        catalog: &Catalog,
        condition: &Condition,
        among: Option<&[i64]>,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        let day = audience.today();
        let filtered = self
            .filtered_counts(tenant, catalog, condition, day, among)
            .await?;
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
            if let Err(e) = self.maintain(tenant, &audience, &changed).await {
                // kept for the next pass: a failure loses no change
                tracing::warn!(tenant = tenant.0, error = %e, "following customer changes failed; will retry");
                slot.pending.lock().expect("not poisoned").extend(changed);
            }
        }
        Ok(())
    }

    /// One follower pass over one tenant's index: settings changed (through any node)
    /// are picked up, changed customers replaced, scores recomputed when due.
    async fn maintain(
        &self,
        tenant: TenantId,
        audience: &TenantAudience,
        changed: &[i64],
    ) -> Result<(), StoreError> {
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
        let day = audience.today();
        use std::sync::atomic::Ordering;
        if !changed.is_empty() {
            audience.changed_since_scored.store(true, Ordering::SeqCst);
        }
        let due = {
            let scored = audience.scored_at.lock().expect("not poisoned");
            let changes_waiting = audience.changed_since_scored.load(Ordering::SeqCst)
                && scored.1.elapsed() > RESCORE_AFTER_CHANGES;
            scored.0 != day || scored.1.elapsed() > RESCORE_EVERY || changes_waiting
        };
        if due {
            audience.recompute();
        }
        Ok(())
    }

    /// Whether changes to a tenant's customers wait to be applied to this node's index.
    fn has_pending(&self, tenant: TenantId) -> bool {
        self.slots
            .lock()
            .expect("not poisoned")
            .get(&tenant)
            .is_some_and(|slot| !slot.pending.lock().expect("not poisoned").is_empty())
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

    /// Every customer within the scope's reach.
    pub async fn everyone(
        &self,
        scope: &TenantScope<'_>,
    ) -> Result<(RoaringBitmap, Arc<TenantAudience>), AudienceError> {
        let audience = self.tenant(scope.id()).await?;
        let members = {
            let index = audience.index.read().expect("not poisoned");
            let mut members = index.everyone();
            if let Some(owners) = scope.reach().owners() {
                members &= index.owned_by(owners.iter().map(|s| s.0));
            }
            members
        };
        Ok((members, audience))
    }

    /// The customers who match a condition, within the scope's reach.
    pub async fn evaluate(
        &self,
        scope: &TenantScope<'_>,
        condition: &Condition,
    ) -> Result<(RoaringBitmap, Arc<TenantAudience>), AudienceError> {
        let tenant = scope.id();
        let catalog = self.catalog(tenant).await?;
        catalog.check(condition)?;
        let audience = self.tenant(tenant).await?;
        let day = audience.today();
        let filtered = self
            .filtered_counts(tenant, &catalog, condition, day, None)
            .await?;
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
                .map_err(|e| AudienceError::Evaluation(e.to_string()))?;
            if let Some(owners) = scope.reach().owners() {
                members &= index.owned_by(owners.iter().map(|s| s.0));
            }
            members
        };
        Ok((members, audience))
    }
}
