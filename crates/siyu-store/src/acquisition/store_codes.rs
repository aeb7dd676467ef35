//! Store codes: a channel code made for every store under a unit that lacks one
//! (`siyu_domain::acquisition::store_codes`). Each is made by `create_channel_code`, so
//! it is checked, audited and (with a connector) made a contact way like any code; a
//! store whose code cannot be made (no staff to route to, staff out of the caller's
//! reach) is reported, and the others are made all the same.

use std::collections::{HashMap, HashSet};

use siyu_domain::acquisition::store_codes::{NewStoreCodes, SkippedStore, StoreCodes, store_state};
use siyu_domain::acquisition::{ChannelCode, CodeMember, CodeMemberRole, NewChannelCode};
use siyu_domain::audit::Actor;
use siyu_domain::ids::{StaffId, UnitId};
use siyu_domain::page::PageRequest;
use siyu_domain::tenancy::{StaffStatus, Unit, UnitKind};

use super::accounts::named;
use crate::{Result, StoreError, TenantScope};

/// Pages read at a time when walking the units and a store's staff.
const PAGE: u32 = 500;

impl TenantScope<'_> {
    /// Every unit of the tenant.
    pub(crate) async fn all_units(&self) -> Result<Vec<Unit>> {
        let mut units = Vec::new();
        let mut page = PageRequest::first(PAGE);
        loop {
            let got = self.list_units(page).await?;
            let last = got.items.last().map(|u| u.id.0);
            let more = got.next_cursor.is_some();
            units.extend(got.items);
            match (more, last) {
                (true, Some(last)) => page.after = Some(last),
                _ => return Ok(units),
            }
        }
    }

    /// The stores among `root` and the units below it (every store with no root).
    pub(crate) async fn stores_under(&self, root: Option<UnitId>) -> Result<Vec<Unit>> {
        let units = self.all_units().await?;
        let Some(root) = root else {
            return Ok(units
                .into_iter()
                .filter(|u| u.kind == UnitKind::Store)
                .collect());
        };
        let mut children: HashMap<UnitId, Vec<UnitId>> = HashMap::new();
        for unit in &units {
            if let Some(parent) = unit.parent_id {
                children.entry(parent).or_default().push(unit.id);
            }
        }
        let mut under = HashSet::from([root]);
        let mut next = vec![root];
        while let Some(unit) = next.pop() {
            for child in children.get(&unit).into_iter().flatten() {
                if under.insert(*child) {
                    next.push(*child);
                }
            }
        }
        Ok(units
            .into_iter()
            .filter(|u| u.kind == UnitKind::Store && under.contains(&u.id))
            .collect())
    }

    /// The active staff of one unit.
    async fn active_staff_of(&self, unit: UnitId) -> Result<Vec<StaffId>> {
        let mut staff = Vec::new();
        let mut page = PageRequest::first(PAGE);
        loop {
            let got = self.list_staff(page, Some(&[unit])).await?;
            let last = got.items.last().map(|s| s.id.0);
            let more = got.next_cursor.is_some();
            staff.extend(
                got.items
                    .into_iter()
                    .filter(|s| s.status == StaffStatus::Active)
                    .map(|s| s.id),
            );
            match (more, last) {
                (true, Some(last)) => page.after = Some(last),
                _ => return Ok(staff),
            }
        }
    }

    /// The live codes within reach of the stores under `root` (every store with none),
    /// each with its store, by store name: what the printable sheet shows.
    pub async fn store_codes_under(
        &self,
        root: Option<UnitId>,
    ) -> Result<Vec<(Unit, ChannelCode)>> {
        let stores: HashMap<UnitId, Unit> = self
            .stores_under(root)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let mut found = Vec::new();
        let mut page = PageRequest::first(PAGE);
        loop {
            let got = self.list_channel_codes(page).await?;
            let last = got.items.last().map(|c| c.id.0);
            let more = got.next_cursor.is_some();
            for code in got.items {
                if let Some(store) = code.unit_id.and_then(|u| stores.get(&u)) {
                    found.push((store.clone(), code));
                }
            }
            match (more, last) {
                (true, Some(last)) => page.after = Some(last),
                _ => break,
            }
        }
        found.sort_by(|(a, x), (b, y)| a.name.cmp(&b.name).then(x.id.0.cmp(&y.id.0)));
        Ok(found)
    }

    /// Makes a code for every store under the spec's unit that has none (see the
    /// module's documentation); `made_by` is who makes them (their reach).
    pub async fn create_store_codes(
        &self,
        spec: &NewStoreCodes,
        made_by: Option<StaffId>,
        actor: &Actor,
    ) -> Result<StoreCodes> {
        if let Some(unit) = spec.unit_id {
            self.get_unit(unit)
                .await
                .map_err(|e| named(e, "unit_id", "no such unit"))?;
        }
        // with a connector, only the members of its corp who have not left
        let in_corp: Option<HashSet<i64>> = match spec.connector_id {
            Some(connector) => Some(
                self.wecom_members(connector)
                    .await
                    .map_err(|e| named(e, "connector_id", "no such connector"))?
                    .into_iter()
                    .filter(|m| m.left_at.is_none() && matches!(m.status, 1 | 4))
                    .map(|m| m.staff_id)
                    .collect(),
            ),
            None => None,
        };
        let mut done = StoreCodes {
            created: Vec::new(),
            existing: Vec::new(),
            skipped: Vec::new(),
        };
        for store in self.stores_under(spec.unit_id).await? {
            let state = store_state(store.id);
            if let Some(code) = self.channel_code_by_state(&state).await? {
                done.existing.push(code.id);
                continue;
            }
            let members: Vec<CodeMember> = self
                .active_staff_of(store.id)
                .await?
                .into_iter()
                .filter(|s| in_corp.as_ref().is_none_or(|corp| corp.contains(&s.0)))
                .map(|staff_id| CodeMember {
                    staff_id,
                    role: CodeMemberRole::Primary,
                    weight: 1,
                    daily_capacity: None,
                })
                .collect();
            if members.is_empty() {
                done.skipped.push(SkippedStore {
                    unit_id: store.id,
                    name: store.name,
                    reason: if in_corp.is_some() {
                        "no active staff of the store is a member of the WeCom corp".into()
                    } else {
                        "the store has no active staff".into()
                    },
                });
                continue;
            }
            let code = NewChannelCode {
                name: format!("{} 门店活码", store.name),
                state,
                account_id: spec.account_id,
                connector_id: spec.connector_id,
                unit_id: Some(store.id),
                members,
                tag_ids: spec.tag_ids.clone(),
                welcome: spec.welcome.clone(),
                skip_verify: None,
                routing: None,
                landing_first: None,
            };
            let made = match code.check() {
                Ok(checked) => self.create_channel_code(&checked, made_by, actor).await,
                Err(e) => Err(e.into()),
            };
            match made {
                Ok(code) => done.created.push(code),
                // what is wrong with this store's code: said, and the others made
                Err(
                    e @ (StoreError::Domain(_)
                    | StoreError::OutOfReach(_)
                    | StoreError::Conflict(_)
                    | StoreError::AlreadyExists(_)
                    | StoreError::NotFound(_)),
                ) => done.skipped.push(SkippedStore {
                    unit_id: store.id,
                    name: store.name,
                    reason: e.to_string(),
                }),
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}
