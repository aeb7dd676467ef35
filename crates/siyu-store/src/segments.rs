//! Saved segments: their definitions, counts over time, and recorded memberships
//! (entry and exit events).

use std::collections::HashMap;

use serde_json::json;
use siyu_audience::Condition;
use siyu_audience::catalog::SavedSegment;
use siyu_domain::audience::{Segment, SegmentEvent, SegmentId, SegmentKind};
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::error::check_name;
use siyu_domain::ids::CustomerId;
use siyu_domain::page::{Page, PageRequest};

use crate::audit;
use crate::db::id_list;
use crate::db::{now_ms, on_db};
use crate::tx::on_tx;
use crate::{Result, StoreError, TenantScope};

#[derive(sqlx::FromRow)]
struct SegmentRow {
    id: i64,
    name: String,
    description: Option<String>,
    kind: String,
    /// A dynamic segment's condition as JSON; none for a static one.
    definition: Option<String>,
    created_by: String,
    created_at: i64,
    updated_at: i64,
}

fn segment_of(row: SegmentRow) -> Result<Segment> {
    let kind = SegmentKind::parse("kind", &row.kind)
        .map_err(|_| StoreError::Corrupt(format!("segment {}: kind", row.id)))?;
    let (definition, condition) = match row.definition {
        Some(json) => {
            let condition: Condition = serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("segment {}: {e}", row.id)))?;
            (
                Some(condition.to_string()),
                Some(serde_json::to_value(&condition).expect("serializable")),
            )
        }
        None => (None, None),
    };
    Ok(Segment {
        id: SegmentId(row.id),
        name: row.name,
        description: row.description,
        kind,
        definition,
        condition,
        created_by: row.created_by,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

#[derive(sqlx::FromRow)]
struct SegmentEventRow {
    id: i64,
    customer_id: i64,
    /// `entered` or `exited`.
    action: String,
    at: i64,
}

const SEGMENT_SELECT: &str = "SELECT id, name, description, kind, definition, created_by, created_at, updated_at \
     FROM segments WHERE tenant_id = $1";

/// A segment to save.
#[derive(Debug, Clone)]
pub struct NewSegment {
    pub name: String,
    pub description: Option<String>,
    /// The definition of a dynamic segment; a static one has none.
    pub condition: Option<Condition>,
    /// The members of a static segment; those of a dynamic one when it is made.
    pub members: Vec<CustomerId>,
}

impl TenantScope<'_> {
    // --- segments ---

    async fn segment_rows(&self) -> Result<Vec<SegmentRow>> {
        let sql = format!("{SEGMENT_SELECT} ORDER BY id");
        Ok(on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?
        }))
    }

    pub async fn segments(&self) -> Result<Vec<Segment>> {
        self.segment_rows()
            .await?
            .into_iter()
            .map(segment_of)
            .collect()
    }

    pub async fn get_segment(&self, id: SegmentId) -> Result<Segment> {
        let sql = format!("{SEGMENT_SELECT} AND id = $2");
        let row: Option<SegmentRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        segment_of(row.ok_or(StoreError::NotFound("segment"))?)
    }

    /// Every saved segment as conditions refer to it: dynamic ones by definition, static
    /// ones by their members.
    pub async fn segment_catalog(&self) -> Result<HashMap<i64, SavedSegment>> {
        let mut catalog = HashMap::new();
        let mut statics = Vec::new();
        for row in self.segment_rows().await? {
            match row.definition {
                Some(json) => {
                    let condition: Condition = serde_json::from_str(&json)
                        .map_err(|e| StoreError::Corrupt(format!("segment {}: {e}", row.id)))?;
                    catalog.insert(row.id, SavedSegment::Dynamic(condition));
                }
                None => statics.push(row.id),
            }
        }
        if !statics.is_empty() {
            let rows: Vec<(i64, i64)> = on_db!(self.store, |db| {
                sqlx::query_as(&format!(
                    "SELECT segment_id, customer_id FROM segment_members WHERE tenant_id = $1 AND segment_id IN ({})",
                    id_list(&statics)
                ))
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?
            });
            for id in statics {
                catalog.insert(id, SavedSegment::Static(Vec::new()));
            }
            for (segment, customer) in rows {
                if let Some(SavedSegment::Static(members)) = catalog.get_mut(&segment) {
                    members.push(customer);
                }
            }
        }
        Ok(catalog)
    }

    /// Saves a segment. Its definition must already be checked against the tenant (the
    /// caller holds the catalog); a static segment's members are frozen now.
    pub async fn create_segment(&self, new: &NewSegment, actor: &Actor) -> Result<Segment> {
        let name = check_name("name", &new.name, 80)?;
        let kind = if new.condition.is_some() {
            SegmentKind::Dynamic
        } else {
            SegmentKind::Static
        };
        let definition = new
            .condition
            .as_ref()
            .map(|c| serde_json::to_string(c).expect("serializable"));
        let now = now_ms();
        let tenant = self.tenant;
        let mut tx = self.store.begin().await?;
        let id: i64 = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO segments (tenant_id, name, description, kind, definition, created_by, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
            )
            .bind(tenant.0)
            .bind(&name)
            .bind(&new.description)
            .bind(kind.as_str())
            .bind(&definition)
            .bind(&actor.label)
            .bind(now)
            .fetch_one(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a segment of that name exists", ""))?
        });
        let mut members: Vec<i64> = new.members.iter().map(|c| c.0).collect();
        members.sort_unstable();
        members.dedup();
        for chunk in members.chunks(500) {
            // a static segment's list; a dynamic one's members now (entering it later
            // is an event; being in it when it was made is not)
            let table = if new.condition.is_some() {
                "segment_memberships (tenant_id, segment_id, customer_id, entered_at)"
            } else {
                "segment_members (tenant_id, segment_id, customer_id, added_at)"
            };
            let sql = format!(
                "INSERT INTO {table} \
                 SELECT tenant_id, {id}, id, {now} FROM customers WHERE tenant_id = $1 AND merged_into_id IS NULL \
                 AND id IN ({})",
                id_list(chunk)
            );
            on_tx!(&mut tx, |c| sqlx::query(&sql)
                .bind(tenant.0)
                .execute(&mut *c)
                .await?
                .rows_affected());
        }
        audit::record(
            &mut tx,
            tenant,
            actor,
            AuditRecord::new(action::SEGMENT_CREATED, "segment", id).with_details(
                json!({"name": name, "kind": kind.as_str(), "members": members.len()}),
            ),
        )
        .await?;
        tx.commit().await?;
        self.get_segment(SegmentId(id)).await
    }

    /// Changes a segment's name, description or (for a dynamic one) definition.
    pub async fn update_segment(
        &self,
        id: SegmentId,
        name: Option<&str>,
        description: Option<Option<&str>>,
        condition: Option<&Condition>,
        actor: &Actor,
    ) -> Result<Segment> {
        let current = self.get_segment(id).await?;
        let name = match name {
            Some(n) => check_name("name", n, 80)?,
            None => current.name.clone(),
        };
        let description = match description {
            Some(d) => d.map(str::to_owned),
            None => current.description.clone(),
        };
        if condition.is_some() && current.kind == SegmentKind::Static {
            return Err(StoreError::Conflict(
                "a static segment is a frozen list: it has no definition".into(),
            ));
        }
        let definition = match condition {
            Some(c) => Some(serde_json::to_string(c).expect("serializable")),
            None => current.condition.as_ref().map(|c| c.to_string()),
        };
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE segments SET name = $1, description = $2, definition = $3, updated_at = $4 \
                 WHERE tenant_id = $5 AND id = $6",
            )
            .bind(&name)
            .bind(&description)
            .bind(&definition)
            .bind(now_ms())
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a segment of that name exists", ""))?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::SEGMENT_UPDATED, "segment", id.0)
                .with_details(json!({"name": name})),
        )
        .await?;
        tx.commit().await?;
        self.get_segment(id).await
    }

    /// Deletes a segment no other segment uses.
    pub async fn delete_segment(&self, id: SegmentId, actor: &Actor) -> Result<()> {
        let segment = self.get_segment(id).await?;
        let users = self
            .definitions_where(|c| c.segments().contains(&id.0), |_| false)
            .await?;
        if !users.is_empty() {
            return Err(StoreError::Conflict(format!(
                "the segment is used by {}: change them first",
                users.join(", ")
            )));
        }
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            for sql in [
                "DELETE FROM segment_members WHERE tenant_id = $1 AND segment_id = $2",
                "DELETE FROM segment_counts WHERE tenant_id = $1 AND segment_id = $2",
                "DELETE FROM segment_memberships WHERE tenant_id = $1 AND segment_id = $2",
                "DELETE FROM segments WHERE tenant_id = $1 AND id = $2",
            ] {
                sqlx::query(sql)
                    .bind(self.tenant.0)
                    .bind(id.0)
                    .execute(&mut *c)
                    .await?;
            }
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::SEGMENT_DELETED, "segment", id.0)
                .with_details(json!({"name": segment.name})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a segment's size now (its size over time is a chart).
    pub async fn record_segment_count(&self, id: SegmentId, count: u64) -> Result<()> {
        on_db!(self.store, |db| {
            sqlx::query(
                "INSERT INTO segment_counts (tenant_id, segment_id, at, count) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, segment_id, at) DO UPDATE SET count = excluded.count",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(now_ms())
            .bind(count as i64)
            .execute(db)
            .await?;
        });
        Ok(())
    }

    /// A segment's recorded sizes, oldest first (the last 500).
    pub async fn segment_counts(&self, id: SegmentId) -> Result<Vec<(i64, i64)>> {
        self.get_segment(id).await?;
        let mut rows: Vec<(i64, i64)> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT at, count FROM segment_counts WHERE tenant_id = $1 AND segment_id = $2 ORDER BY at DESC LIMIT 500",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .fetch_all(db)
            .await?
        });
        rows.reverse();
        Ok(rows)
    }

    /// Brings a dynamic segment's recorded members in line with what it matches now,
    /// among `checked` customers (all of them when `None`): those who came in get an
    /// `entered` event, those who left an `exited` one. Each is recorded once even when
    /// several servers sync at the same time (the insert or delete that changes the row
    /// is the one that writes the event). Answers (entered, exited).
    pub async fn sync_memberships(
        &self,
        segment: SegmentId,
        checked: Option<&[i64]>,
        members_now: &[i64],
    ) -> Result<(u64, u64)> {
        let tenant = self.tenant;
        let now = now_ms();
        let recorded: Vec<i64> = match checked {
            Some([]) => return Ok((0, 0)),
            Some(ids) => {
                let mut found = Vec::new();
                for chunk in ids.chunks(500) {
                    let rows: Vec<i64> = on_db!(self.store, |db| {
                        sqlx::query_scalar(&format!(
                            "SELECT customer_id FROM segment_memberships WHERE tenant_id = $1 AND segment_id = $2 \
                             AND customer_id IN ({})",
                            id_list(chunk)
                        ))
                        .bind(tenant.0)
                        .bind(segment.0)
                        .fetch_all(db)
                        .await?
                    });
                    found.extend(rows);
                }
                found
            }
            None => on_db!(self.store, |db| {
                sqlx::query_scalar(
                    "SELECT customer_id FROM segment_memberships WHERE tenant_id = $1 AND segment_id = $2",
                )
                .bind(tenant.0)
                .bind(segment.0)
                .fetch_all(db)
                .await?
            }),
        };
        let recorded: std::collections::HashSet<i64> = recorded.into_iter().collect();
        let now_set: std::collections::HashSet<i64> = members_now.iter().copied().collect();
        let coming: Vec<i64> = members_now
            .iter()
            .copied()
            .filter(|id| !recorded.contains(id))
            .collect();
        let leaving: Vec<i64> = recorded
            .iter()
            .copied()
            .filter(|id| !now_set.contains(id))
            .collect();
        if coming.is_empty() && leaving.is_empty() {
            return Ok((0, 0));
        }
        let mut tx = self.store.begin().await?;
        let mut entered = Vec::new();
        for chunk in coming.chunks(500) {
            let values: Vec<String> = chunk
                .iter()
                .map(|id| format!("({}, {}, {id}, {now})", tenant.0, segment.0))
                .collect();
            let sql = format!(
                "INSERT INTO segment_memberships (tenant_id, segment_id, customer_id, entered_at) VALUES {} \
                 ON CONFLICT (tenant_id, segment_id, customer_id) DO NOTHING RETURNING customer_id",
                values.join(",")
            );
            let rows: Vec<i64> = on_tx!(&mut tx, |c| sqlx::query_scalar(&sql)
                .fetch_all(&mut *c)
                .await?);
            entered.extend(rows);
        }
        let mut exited = Vec::new();
        for chunk in leaving.chunks(500) {
            let sql = format!(
                "DELETE FROM segment_memberships WHERE tenant_id = $1 AND segment_id = $2 AND customer_id IN ({}) \
                 RETURNING customer_id",
                id_list(chunk)
            );
            let rows: Vec<i64> = on_tx!(&mut tx, |c| {
                sqlx::query_scalar(&sql)
                    .bind(tenant.0)
                    .bind(segment.0)
                    .fetch_all(&mut *c)
                    .await?
            });
            exited.extend(rows);
        }
        for (action, ids) in [("entered", &entered), ("exited", &exited)] {
            for chunk in ids.chunks(500) {
                let values: Vec<String> = chunk
                    .iter()
                    .map(|id| format!("({}, {}, {id}, '{action}', {now})", tenant.0, segment.0))
                    .collect();
                let sql = format!(
                    "INSERT INTO segment_events (tenant_id, segment_id, customer_id, action, at) VALUES {}",
                    values.join(",")
                );
                on_tx!(&mut tx, |c| sqlx::query(&sql)
                    .execute(&mut *c)
                    .await?
                    .rows_affected());
            }
        }
        tx.commit().await?;
        Ok((entered.len() as u64, exited.len() as u64))
    }

    /// Entries into and exits from a segment, oldest first, after the event id `after`.
    pub async fn segment_events(
        &self,
        segment: SegmentId,
        page: PageRequest,
    ) -> Result<Page<SegmentEvent>> {
        self.get_segment(segment).await?;
        let rows: Vec<SegmentEventRow> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT id, customer_id, action, at FROM segment_events WHERE tenant_id = $1 AND segment_id = $2 \
                 AND id > $3 ORDER BY id LIMIT $4",
            )
            .bind(self.tenant.0)
            .bind(segment.0)
            .bind(page.after.unwrap_or(0))
            .bind(page.fetch_limit())
            .fetch_all(db)
            .await?
        });
        let events = rows
            .into_iter()
            .map(|r| SegmentEvent {
                id: r.id,
                segment_id: segment,
                customer_id: CustomerId(r.customer_id),
                action: r.action,
                at: r.at,
            })
            .collect();
        Ok(Page::from_rows(events, page, |e: &SegmentEvent| e.id))
    }
}
