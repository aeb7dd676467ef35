//! The audience index as one request may read it: every report and count taken through
//! a [`ScopedIndex`] is limited to the customers the request's scope reaches, so a
//! handler cannot forget the data scope (there is no other way for routes to reach the
//! index). Sets of members that [`super::Audiences::evaluate`] answers are within reach
//! already; reading ids out of them needs no more.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::RwLockReadGuard;

use roaring::RoaringBitmap;
use siyu_audience::condition::{LifecycleStage, RfmClass};
use siyu_audience::index::{
    AudienceIndex, ClassFigures, Dashboard, DashboardQuery, Pareto, ScoreSettings, UnitRole,
    ValueTier,
};
use siyu_audience::rfm::{CutPoints, RfmScore};
use siyu_store::TenantScope;

use super::TenantAudience;

/// A read of a tenant's index limited to a scope's reach.
pub struct ScopedIndex<'a> {
    index: RwLockReadGuard<'a, AudienceIndex>,
    /// The customers within reach; `None` for the whole tenant.
    among: Option<RoaringBitmap>,
}

impl TenantAudience {
    /// The index as the scope may read it (held for reading until dropped).
    pub fn read(&self, scope: &TenantScope<'_>) -> ScopedIndex<'_> {
        let index = self.index.read().expect("not poisoned");
        let among = scope
            .reach()
            .owners()
            .map(|owners| index.owned_by(owners.iter().map(|s| s.0)));
        ScopedIndex { index, among }
    }
}

impl ScopedIndex<'_> {
    // --- ids out of sets the caller got from an evaluation (within reach already) ---

    pub fn ids(&self, members: &RoaringBitmap, limit: usize) -> Vec<i64> {
        self.index.ids(&self.within(members), limit)
    }

    pub fn ids_after(&self, members: &RoaringBitmap, after: i64, limit: usize) -> Vec<i64> {
        self.index.ids_after(&self.within(members), after, limit)
    }

    pub fn contains(&self, members: &RoaringBitmap, id: i64) -> bool {
        self.index.contains(&self.within(members), id)
    }

    /// The customers of these ids the index holds and the scope reaches.
    pub fn set_of(&self, ids: impl IntoIterator<Item = i64>) -> RoaringBitmap {
        self.within(&self.index.set_of(ids)).into_owned()
    }

    pub fn settings(&self) -> &ScoreSettings {
        self.index.settings()
    }

    // --- reports, among the customers within reach ---

    pub fn rfm_report(
        &self,
        units: Option<&[i64]>,
    ) -> (CutPoints, HashMap<RfmClass, ClassFigures>) {
        self.index.rfm_report(units, self.among.as_ref())
    }

    pub fn stage_cohorts(
        &self,
        cohort_of: impl Fn(i32) -> i32,
    ) -> BTreeMap<i32, HashMap<LifecycleStage, u64>> {
        self.index.stage_cohorts(cohort_of, self.among.as_ref())
    }

    pub fn pareto(&self, units: Option<&[i64]>, days: Option<u32>) -> Pareto {
        self.index.pareto(units, days, self.among.as_ref())
    }

    /// A tag's customers within reach; `None` for the whole tenant (the store counts
    /// those).
    pub fn tag_count(&self, tag: i64) -> Option<u64> {
        self.among
            .as_ref()
            .map(|among| self.index.tag_count_among(tag, among))
    }

    /// One customer's RFM score and lifecycle stage (the customer was read through the
    /// scope).
    pub fn scores_of(&self, id: i64) -> Option<(Option<RfmScore>, LifecycleStage)> {
        self.index.scores_of(id)
    }

    /// One customer's value tier (the customer was read through the scope).
    pub fn value_tier(&self, id: i64, days: Option<u32>) -> ValueTier {
        self.index.value_tier(id, days)
    }

    /// One customer's roles per unit (the customer was read through the scope).
    pub fn unit_roles(
        &self,
        id: i64,
        units: &HashMap<i64, Vec<i64>>,
        days: Option<u32>,
    ) -> Vec<UnitRole> {
        self.index.unit_roles(id, units, days)
    }

    /// Customers who bought in these units or are owned by these staff (a dashboard's
    /// unit filter), within reach.
    pub fn of_units(&self, units: &[i64], staff: &[i64]) -> RoaringBitmap {
        let mut set = self.index.buyers_of_units(units);
        set |= self.index.owned_by(staff.iter().copied());
        self.within(&set).into_owned()
    }

    /// The dashboard over `customers` (all when `None`) within reach.
    pub fn dashboard(&self, query: &DashboardQuery<'_>) -> Dashboard {
        let limited = match (query.customers, &self.among) {
            (Some(customers), Some(among)) => Some(customers & among),
            (None, Some(among)) => Some(among.clone()),
            (customers, None) => customers.cloned(),
        };
        self.index.dashboard(&DashboardQuery {
            customers: limited.as_ref(),
            ..*query
        })
    }

    fn within<'s>(&self, set: &'s RoaringBitmap) -> Cow<'s, RoaringBitmap> {
        match &self.among {
            Some(among) => Cow::Owned(set & among),
            None => Cow::Borrowed(set),
        }
    }
}
