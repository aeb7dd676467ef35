//! Channel codes: their rows, the members they route to, the tags they put on, and the
//! WeCom contact way each one is, as WeCom last took it.

use std::collections::HashMap;

use serde_json::json;
use siyu_domain::DomainError;
use siyu_domain::acquisition::landing::{QrSource, landing_path, new_landing_slug};
use siyu_domain::acquisition::routing::RouteReason;
use siyu_domain::acquisition::{
    ChannelCode, ChannelCodeSpec, CodeMember, CodeMemberRole, ContactWay, MemberAdds, Routing,
};
use siyu_domain::audience::TagId;
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::ids::{ChannelAccountId, ChannelCodeId, ConnectorId, StaffId, UnitId};
use siyu_domain::page::{Page, PageRequest};

use super::accounts::named;
use crate::audit;
use crate::db::{id_list, now_ms, on_db};
use crate::jobs::{NewJob, enqueue_in};
use crate::tx::{Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

const CODE_COLUMNS: &str = "c.id, c.name, c.state, c.account_id, c.connector_id, c.unit_id, \
     c.welcome, c.skip_verify, c.routing, c.config_id, c.qr_code_url, c.current_staff_id, \
     c.current_route, c.way_synced_at, c.way_error, c.created_at, c.updated_at, \
     c.landing_slug, c.landing_first, \
     EXISTS (SELECT 1 FROM channel_code_images i WHERE i.code_id = c.id) AS has_wecom_image";

#[derive(sqlx::FromRow)]
struct CodeRow {
    id: i64,
    name: String,
    state: String,
    account_id: Option<i64>,
    connector_id: Option<i64>,
    unit_id: Option<i64>,
    welcome: Option<String>,
    skip_verify: bool,
    routing: String,
    config_id: Option<String>,
    qr_code_url: Option<String>,
    current_staff_id: Option<i64>,
    current_route: Option<String>,
    way_synced_at: Option<i64>,
    way_error: Option<String>,
    created_at: i64,
    updated_at: i64,
    landing_slug: String,
    landing_first: bool,
    has_wecom_image: bool,
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    code_id: i64,
    staff_id: i64,
    role: String,
    weight: i64,
    daily_capacity: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct TagRow {
    code_id: i64,
    tag_id: i64,
}

/// What WeCom said of a code's contact way after siyu made or changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactWayUpdate {
    /// WeCom took it: its handle, QR image and the member it routes to now.
    Synced {
        config_id: String,
        qr_code_url: Option<String>,
        current_staff_id: Option<StaffId>,
        route: Option<RouteReason>,
    },
    /// WeCom refused it (kept until a change goes through).
    Failed(String),
}

/// A live code as an add through it needs it: to name it on the `Contact Added` event
/// and put its tags on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CodeRef {
    pub id: ChannelCodeId,
    pub name: String,
    pub tag_ids: Vec<TagId>,
    /// The connector whose contact way it is.
    pub connector_id: Option<ConnectorId>,
    /// Why the way holds the member it holds (what an add to them is recorded as).
    pub route: Option<String>,
    /// It routes to more than one member, so an add may move its way on.
    pub rotates: bool,
}

/// The tenant's live codes of these states, by state, read in the caller's transaction.
pub(crate) async fn live_codes_by_state_in(
    tx: &mut Tx,
    tenant: siyu_domain::ids::TenantId,
    states: &[&str],
) -> Result<HashMap<String, CodeRef>> {
    let mut found = HashMap::new();
    for chunk in states.chunks(200) {
        #[derive(sqlx::FromRow)]
        struct StateRow {
            id: i64,
            name: String,
            state: String,
            connector_id: Option<i64>,
            current_route: Option<String>,
        }
        let mut p = crate::tx::Placeholders::for_tx(tx);
        let tenant_p = p.next();
        let sql = format!(
            "SELECT id, name, state, connector_id, current_route FROM channel_codes \
             WHERE tenant_id = {tenant_p} AND deleted_at IS NULL AND state IN {}",
            p.row(chunk.len())
        );
        let rows: Vec<StateRow> = on_tx!(tx, |c| {
            let mut q = sqlx::query_as(&sql).bind(tenant.0);
            for state in chunk {
                q = q.bind(*state);
            }
            q.fetch_all(&mut *c).await?
        });
        if rows.is_empty() {
            continue;
        }
        let ids = id_list(&rows.iter().map(|r| r.id).collect::<Vec<_>>());
        let tag_sql =
            format!("SELECT code_id, tag_id FROM channel_code_tags WHERE code_id IN ({ids})");
        let tags: Vec<TagRow> = on_tx!(tx, |c| {
            sqlx::query_as(&tag_sql).fetch_all(&mut *c).await?
        });
        let member_sql = format!(
            "SELECT code_id FROM channel_code_members WHERE code_id IN ({ids}) \
             GROUP BY code_id HAVING COUNT(*) > 1"
        );
        let rotating: Vec<i64> = on_tx!(tx, |c| {
            sqlx::query_scalar(&member_sql).fetch_all(&mut *c).await?
        });
        for r in rows {
            let tag_ids = tags
                .iter()
                .filter(|t| t.code_id == r.id)
                .map(|t| TagId(t.tag_id))
                .collect();
            found.insert(
                r.state,
                CodeRef {
                    id: ChannelCodeId(r.id),
                    name: r.name,
                    tag_ids,
                    connector_id: r.connector_id.map(ConnectorId),
                    route: r.current_route,
                    rotates: rotating.contains(&r.id),
                },
            );
        }
    }
    Ok(found)
}

/// The job that brings a code's WeCom contact way in line with the code, its routing
/// included (one waits per code; a change while it runs is seen by its next look).
pub(crate) fn contact_way_job(tenant: siyu_domain::ids::TenantId, id: ChannelCodeId) -> NewJob {
    NewJob::new(
        siyu_domain::jobs::kind::WECOM_CONTACT_WAY,
        json!({ "code_id": id.0 }),
    )
    .for_tenant(tenant)
    .unique_key(format!("contact_way:{}", id.0))
}

impl TenantScope<'_> {
    /// ` AND (…)` keeping codes within reach: made by, or routing to, staff it reaches.
    pub(super) fn code_reach_clause(&self) -> String {
        match self.reach.owners() {
            None => String::new(),
            Some([]) => " AND 1 = 0".to_owned(),
            Some(owners) => {
                let ids = id_list(&owners.iter().map(|s| s.0).collect::<Vec<_>>());
                format!(
                    " AND (c.created_by_staff_id IN ({ids}) OR EXISTS (SELECT 1 FROM \
                     channel_code_members m WHERE m.code_id = c.id AND m.staff_id IN ({ids})))"
                )
            }
        }
    }

    /// Whether what a code names exists and its members are within reach (and, for a
    /// WeCom code, members of that corp who have not left).
    async fn check_code_spec(&self, spec: &ChannelCodeSpec) -> Result<()> {
        if let Some(account) = spec.account_id {
            self.get_channel_account(account)
                .await
                .map_err(|e| named(e, "account_id", "no such channel account"))?;
        }
        if let Some(unit) = spec.unit_id {
            self.get_unit(unit)
                .await
                .map_err(|e| named(e, "unit_id", "no such unit"))?;
        }
        for (i, tag) in spec.tag_ids.iter().enumerate() {
            self.get_tag(*tag)
                .await
                .map_err(|e| named(e, &format!("tag_ids[{i}]"), "no such tag"))?;
        }
        let wecom_members: Option<HashMap<i64, bool>> = match spec.connector_id {
            Some(connector) => Some(
                self.wecom_members(connector)
                    .await
                    .map_err(|e| named(e, "connector_id", "no such connector"))?
                    .into_iter()
                    .map(|m| (m.staff_id, m.left_at.is_none() && matches!(m.status, 1 | 4)))
                    .collect(),
            ),
            None => None,
        };
        for (i, member) in spec.members.iter().enumerate() {
            self.get_staff(member.staff_id)
                .await
                .map_err(|e| named(e, &format!("members[{i}].staff_id"), "no such staff member"))?;
            self.check_owner_within_reach(Some(member.staff_id))?;
            if let Some(members) = &wecom_members {
                match members.get(&member.staff_id.0) {
                    Some(true) => {}
                    Some(false) => {
                        return Err(StoreError::Domain(DomainError::invalid(
                            format!("members[{i}].staff_id"),
                            "has left WeCom or is disabled there",
                        )));
                    }
                    None => {
                        return Err(StoreError::Domain(DomainError::invalid(
                            format!("members[{i}].staff_id"),
                            "is not a member of the connector's WeCom corp (sync its staff first)",
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Creates a code; `made_by` is the staff member who made it (its reach).
    pub async fn create_channel_code(
        &self,
        spec: &ChannelCodeSpec,
        made_by: Option<StaffId>,
        actor: &Actor,
    ) -> Result<ChannelCode> {
        self.check_code_spec(spec).await?;
        let now = now_ms();
        let routing = serde_json::to_string(&spec.routing).expect("routing serializes");
        let mut tx = self.store.begin().await?;
        let id: i64 = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO channel_codes (tenant_id, name, state, account_id, connector_id, \
                 unit_id, welcome, skip_verify, routing, created_by_staff_id, created_at, \
                 updated_at, landing_slug, landing_first) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13) \
                 RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(&spec.name)
            .bind(&spec.state)
            .bind(spec.account_id.map(|a| a.0))
            .bind(spec.connector_id.map(|c| c.0))
            .bind(spec.unit_id.map(|u| u.0))
            .bind(spec.welcome.as_deref())
            .bind(spec.skip_verify)
            .bind(&routing)
            .bind(made_by.map(|s| s.0))
            .bind(now)
            .bind(new_landing_slug())
            .bind(spec.landing_first)
            .fetch_one(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, STATE_TAKEN, ""))?
        });
        let id = ChannelCodeId(id);
        self.write_code_parts(&mut tx, id, spec).await?;
        if spec.connector_id.is_some() {
            enqueue_in(&mut tx, &[self.contact_way_job(id)]).await?;
        }
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::CHANNEL_CODE_CREATED, "channel_code", id.0)
                .with_details(json!({"name": spec.name, "state": spec.state})),
        )
        .await?;
        tx.commit().await?;
        self.get_channel_code(id).await
    }

    /// Replaces a code's members and tags with the spec's.
    async fn write_code_parts(
        &self,
        tx: &mut Tx,
        id: ChannelCodeId,
        spec: &ChannelCodeSpec,
    ) -> Result<()> {
        on_tx!(tx, |c| {
            sqlx::query("DELETE FROM channel_code_members WHERE code_id = $1")
                .bind(id.0)
                .execute(&mut *c)
                .await?;
            sqlx::query("DELETE FROM channel_code_tags WHERE code_id = $1")
                .bind(id.0)
                .execute(&mut *c)
                .await?;
            for (position, m) in spec.members.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO channel_code_members (code_id, tenant_id, position, staff_id, \
                     role, weight, daily_capacity) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(id.0)
                .bind(self.tenant.0)
                .bind(position as i64)
                .bind(m.staff_id.0)
                .bind(m.role.as_str())
                .bind(i64::from(m.weight))
                .bind(m.daily_capacity.map(i64::from))
                .execute(&mut *c)
                .await?;
            }
            for tag in &spec.tag_ids {
                sqlx::query("INSERT INTO channel_code_tags (code_id, tag_id) VALUES ($1, $2)")
                    .bind(id.0)
                    .bind(tag.0)
                    .execute(&mut *c)
                    .await?;
            }
        });
        Ok(())
    }

    /// A live code within reach.
    pub async fn get_channel_code(&self, id: ChannelCodeId) -> Result<ChannelCode> {
        let sql = format!(
            "SELECT {CODE_COLUMNS} FROM channel_codes c WHERE c.tenant_id = $1 AND c.id = $2 \
             AND c.deleted_at IS NULL{}",
            self.code_reach_clause()
        );
        let row: Option<CodeRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        let row = row.ok_or(StoreError::NotFound("channel code"))?;
        let mut codes = self.codes_from_rows(vec![row]).await?;
        Ok(codes.remove(0))
    }

    /// The live code of this state, whoever's it is (an add through it is attributed
    /// to it whatever the reach of who reads).
    pub async fn channel_code_by_state(&self, state: &str) -> Result<Option<ChannelCode>> {
        let sql = format!(
            "SELECT {CODE_COLUMNS} FROM channel_codes c WHERE c.tenant_id = $1 AND c.state = $2 \
             AND c.deleted_at IS NULL"
        );
        let row: Option<CodeRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(state)
                .fetch_optional(db)
                .await?
        });
        match row {
            Some(row) => Ok(self.codes_from_rows(vec![row]).await?.pop()),
            None => Ok(None),
        }
    }

    /// The live codes within reach, by id.
    pub async fn list_channel_codes(&self, page: PageRequest) -> Result<Page<ChannelCode>> {
        let sql = format!(
            "SELECT {CODE_COLUMNS} FROM channel_codes c WHERE c.tenant_id = $1 AND c.id > $2 \
             AND c.deleted_at IS NULL{} ORDER BY c.id LIMIT $3",
            self.code_reach_clause()
        );
        let rows: Vec<CodeRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(page.after_id())
                .bind(page.fetch_limit())
                .fetch_all(db)
                .await?
        });
        let codes = self.codes_from_rows(rows).await?;
        Ok(Page::from_rows(codes, page, |c| c.id.0))
    }

    async fn codes_from_rows(&self, rows: Vec<CodeRow>) -> Result<Vec<ChannelCode>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids = id_list(&rows.iter().map(|r| r.id).collect::<Vec<_>>());
        let member_sql = format!(
            "SELECT code_id, staff_id, role, weight, daily_capacity FROM channel_code_members \
             WHERE code_id IN ({ids}) ORDER BY code_id, position"
        );
        let tag_sql = format!(
            "SELECT code_id, tag_id FROM channel_code_tags WHERE code_id IN ({ids}) \
             ORDER BY code_id, tag_id"
        );
        let members: Vec<MemberRow> = on_db!(self.store, |db| {
            sqlx::query_as(&member_sql).fetch_all(db).await?
        });
        let tags: Vec<TagRow> = on_db!(self.store, |db| {
            sqlx::query_as(&tag_sql).fetch_all(db).await?
        });
        let mut members_of: HashMap<i64, Vec<CodeMember>> = HashMap::new();
        for m in members {
            let role = CodeMemberRole::parse("role", &m.role)
                .map_err(|_| StoreError::Corrupt(format!("code member role {:?}", m.role)))?;
            members_of.entry(m.code_id).or_default().push(CodeMember {
                staff_id: StaffId(m.staff_id),
                role,
                weight: u32::try_from(m.weight).unwrap_or(1),
                daily_capacity: m.daily_capacity.and_then(|c| u32::try_from(c).ok()),
            });
        }
        let mut tags_of: HashMap<i64, Vec<TagId>> = HashMap::new();
        for t in tags {
            tags_of.entry(t.code_id).or_default().push(TagId(t.tag_id));
        }
        let mut adds_today = self.adds_today_of(&ids).await?;
        rows.into_iter()
            .map(|r| {
                let routing: Routing = serde_json::from_str(&r.routing)
                    .map_err(|e| StoreError::Corrupt(format!("a code's routing: {e}")))?;
                let contact_way =
                    (r.config_id.is_some() || r.way_error.is_some()).then(|| ContactWay {
                        config_id: r.config_id,
                        qr_code_url: r.qr_code_url,
                        current_staff_id: r.current_staff_id.map(StaffId),
                        current_route: r.current_route.as_deref().and_then(RouteReason::parse),
                        synced_at: r.way_synced_at,
                        error: r.way_error,
                    });
                Ok(ChannelCode {
                    id: ChannelCodeId(r.id),
                    name: r.name,
                    state: r.state,
                    account_id: r.account_id.map(ChannelAccountId),
                    connector_id: r.connector_id.map(ConnectorId),
                    unit_id: r.unit_id.map(UnitId),
                    members: members_of.remove(&r.id).unwrap_or_default(),
                    tag_ids: tags_of.remove(&r.id).unwrap_or_default(),
                    welcome: r.welcome,
                    skip_verify: r.skip_verify,
                    routing,
                    contact_way,
                    landing_path: landing_path(&r.landing_slug),
                    landing_first: r.landing_first,
                    qr_source: QrSource::of(r.has_wecom_image, r.landing_first),
                    adds_today: adds_today.remove(&r.id).unwrap_or_default(),
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                })
            })
            .collect()
    }

    /// Each code's adds today per member (`ids`: a list of code ids for SQL).
    async fn adds_today_of(&self, ids: &str) -> Result<HashMap<i64, Vec<MemberAdds>>> {
        #[derive(sqlx::FromRow)]
        struct TodayRow {
            code_id: i64,
            staff_id: i64,
            adds: i64,
        }
        let zone = self.time_zone().await?;
        let today = zone.start_of_day(zone.day_of(now_ms()));
        let sql = format!(
            "SELECT code_id, staff_id, COUNT(*) AS adds FROM channel_code_adds \
             WHERE code_id IN ({ids}) AND added_at >= $1 AND staff_id IS NOT NULL \
             GROUP BY code_id, staff_id ORDER BY code_id, staff_id"
        );
        let rows: Vec<TodayRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql).bind(today).fetch_all(db).await?
        });
        let mut of: HashMap<i64, Vec<MemberAdds>> = HashMap::new();
        for r in rows {
            of.entry(r.code_id).or_default().push(MemberAdds {
                staff_id: StaffId(r.staff_id),
                adds: u32::try_from(r.adds).unwrap_or(u32::MAX),
            });
        }
        Ok(of)
    }

    /// Changes a code within reach; its new members must be within reach too.
    pub async fn update_channel_code(
        &self,
        id: ChannelCodeId,
        spec: &ChannelCodeSpec,
        actor: &Actor,
    ) -> Result<ChannelCode> {
        let before = self.get_channel_code(id).await?;
        self.check_code_spec(spec).await?;
        if before.connector_id.is_some() && before.connector_id != spec.connector_id {
            return Err(StoreError::Domain(DomainError::invalid(
                "connector_id",
                "a WeCom code stays with its connector: make a new code for another",
            )));
        }
        let routing = serde_json::to_string(&spec.routing).expect("routing serializes");
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE channel_codes SET name = $1, state = $2, account_id = $3, \
                 connector_id = $4, unit_id = $5, welcome = $6, skip_verify = $7, routing = $8, \
                 updated_at = $9, landing_first = $10 WHERE tenant_id = $11 AND id = $12",
            )
            .bind(&spec.name)
            .bind(&spec.state)
            .bind(spec.account_id.map(|a| a.0))
            .bind(spec.connector_id.map(|c| c.0))
            .bind(spec.unit_id.map(|u| u.0))
            .bind(spec.welcome.as_deref())
            .bind(spec.skip_verify)
            .bind(&routing)
            .bind(now_ms())
            .bind(spec.landing_first)
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, STATE_TAKEN, ""))?;
        });
        self.write_code_parts(&mut tx, id, spec).await?;
        if spec.connector_id.is_some() {
            enqueue_in(&mut tx, &[self.contact_way_job(id)]).await?;
        }
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::CHANNEL_CODE_UPDATED, "channel_code", id.0)
                .with_details(json!({"name": spec.name, "state": spec.state})),
        )
        .await?;
        tx.commit().await?;
        self.get_channel_code(id).await
    }

    /// Deletes a code within reach: it stops routing (its members let go) but its row
    /// stays, so what it brought stays attributed to it. Answers it as it was.
    pub async fn delete_channel_code(
        &self,
        id: ChannelCodeId,
        actor: &Actor,
    ) -> Result<ChannelCode> {
        let before = self.get_channel_code(id).await?;
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE channel_codes SET deleted_at = $1, updated_at = $1 \
                 WHERE tenant_id = $2 AND id = $3 AND deleted_at IS NULL",
            )
            .bind(now_ms())
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *c)
            .await?;
            sqlx::query("DELETE FROM channel_code_members WHERE code_id = $1")
                .bind(id.0)
                .execute(&mut *c)
                .await?;
        });
        if before.connector_id.is_some() {
            enqueue_in(&mut tx, &[self.contact_way_job(id)]).await?;
        }
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::CHANNEL_CODE_DELETED, "channel_code", id.0)
                .with_details(json!({"name": before.name, "state": before.state})),
        )
        .await?;
        tx.commit().await?;
        Ok(before)
    }

    fn contact_way_job(&self, id: ChannelCodeId) -> NewJob {
        contact_way_job(self.tenant, id)
    }

    /// A code, deleted or not, whoever's it is, and when it was deleted: what the
    /// contact way job brings WeCom in line with.
    pub async fn channel_code_for_wecom(
        &self,
        id: ChannelCodeId,
    ) -> Result<(ChannelCode, Option<i64>)> {
        let sql = format!(
            "SELECT {CODE_COLUMNS}, c.deleted_at FROM channel_codes c \
             WHERE c.tenant_id = $1 AND c.id = $2"
        );
        #[derive(sqlx::FromRow)]
        struct Deleted {
            #[sqlx(flatten)]
            row: CodeRow,
            deleted_at: Option<i64>,
        }
        let found: Option<Deleted> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        let found = found.ok_or(StoreError::NotFound("channel code"))?;
        let mut codes = self.codes_from_rows(vec![found.row]).await?;
        Ok((codes.remove(0), found.deleted_at))
    }

    /// A code's adds since `since` (ms), per member: what routing's capacities count.
    pub async fn channel_code_adds_since(
        &self,
        id: ChannelCodeId,
        since: i64,
    ) -> Result<HashMap<StaffId, u32>> {
        #[derive(sqlx::FromRow)]
        struct AddsRow {
            staff_id: i64,
            adds: i64,
        }
        let rows: Vec<AddsRow> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT staff_id, COUNT(*) AS adds FROM channel_code_adds \
                 WHERE tenant_id = $1 AND code_id = $2 AND added_at >= $3 \
                 AND staff_id IS NOT NULL GROUP BY staff_id",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(since)
            .fetch_all(db)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    StaffId(r.staff_id),
                    u32::try_from(r.adds).unwrap_or(u32::MAX),
                )
            })
            .collect())
    }

    /// The member the code's latest add went to.
    pub async fn channel_code_last_add(&self, id: ChannelCodeId) -> Result<Option<StaffId>> {
        let last: Option<Option<i64>> = on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT staff_id FROM channel_code_adds WHERE tenant_id = $1 AND code_id = $2 \
                 ORDER BY added_at DESC, id DESC LIMIT 1",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .fetch_optional(db)
            .await?
        });
        Ok(last.flatten().map(StaffId))
    }

    /// Records what WeCom said of a code's contact way (deleted codes included: a
    /// deletion's answer comes after).
    pub async fn record_contact_way(
        &self,
        id: ChannelCodeId,
        update: &ContactWayUpdate,
    ) -> Result<()> {
        let now = now_ms();
        on_db!(self.store, |db| {
            match update {
                ContactWayUpdate::Synced {
                    config_id,
                    qr_code_url,
                    current_staff_id,
                    route,
                } => {
                    sqlx::query(
                        "UPDATE channel_codes SET config_id = $1, \
                         qr_code_url = COALESCE($2, qr_code_url), current_staff_id = $3, \
                         current_route = $4, way_synced_at = $5, way_error = NULL \
                         WHERE tenant_id = $6 AND id = $7",
                    )
                    .bind(config_id)
                    .bind(qr_code_url.as_deref())
                    .bind(current_staff_id.map(|s| s.0))
                    .bind(route.map(RouteReason::as_str))
                    .bind(now)
                    .bind(self.tenant.0)
                    .bind(id.0)
                    .execute(db)
                    .await?;
                }
                ContactWayUpdate::Failed(error) => {
                    sqlx::query(
                        "UPDATE channel_codes SET way_error = $1 WHERE tenant_id = $2 AND id = $3",
                    )
                    .bind(error)
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

const STATE_TAKEN: &str = "a live channel code has this state";
