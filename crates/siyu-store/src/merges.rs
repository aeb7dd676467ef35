//! Merging profiles that turn out to be one person, and undoing a merge that was wrong.
//!
//! A merge moves the merged profile's identities, events, orders, notes, consent, tags and
//! group memberships to the survivor, keeps each trait's newest value, and points the
//! merged profile at the survivor. It records what it moved (`customer_merge_moves`) and
//! both profiles as they were, so an admin can undo it: the rows go back, the merged
//! profile comes back as it was, and the survivor keeps the traits it had plus any set
//! after the merge. A group both belonged to stays one membership of the survivor's.
//! An undone pair is kept apart: events naming both never merge them again.

use serde_json::{Map, Value, json};
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::customer::{CustomerId, merge_traits};
use siyu_domain::ids::TenantId;

use crate::db::now_ms;
use crate::db::parse_map;
use crate::profiles::{load_profile, save_profile};
use crate::tx::{Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

/// The tables whose rows follow a profile in a merge: (kind, table).
const MOVED: [(&str, &str); 7] = [
    ("identity", "identities"),
    ("event", "events"),
    ("order", "orders"),
    ("note", "customer_notes"),
    ("consent", "consent_changes"),
    ("tag", "customer_tags"),
    ("source", "customer_sources"),
];

/// Whether an admin has kept these two profiles apart.
pub(crate) async fn kept_apart(
    tx: &mut Tx,
    tenant: TenantId,
    a: CustomerId,
    b: CustomerId,
) -> Result<bool> {
    let (low, high) = (a.min(b), a.max(b));
    let found: Option<i64> = on_tx!(tx, |c| {
        sqlx::query_scalar(
            "SELECT customer_a FROM customer_kept_apart WHERE tenant_id = $1 AND customer_a = $2 AND customer_b = $3",
        )
        .bind(tenant.0)
        .bind(low.0)
        .bind(high.0)
        .fetch_optional(&mut *c)
        .await?
    });
    Ok(found.is_some())
}

/// A profile's state as a merge records it.
async fn snapshot(tx: &mut Tx, tenant: TenantId, customer: CustomerId) -> Result<Value> {
    let p = load_profile(tx, tenant, customer).await?;
    Ok(json!({
        "traits": parse_map(&p.traits),
        "trait_times": parse_map(&p.trait_times),
        "first_seen_at": p.first_seen_at,
        "last_seen_at": p.last_seen_at,
    }))
}

fn map_of(value: &Value, key: &str) -> Map<String, Value> {
    value
        .get(key)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Merges `merged` into `survivor` (see the module documentation).
pub(crate) async fn merge_into(
    tx: &mut Tx,
    tenant: TenantId,
    merged: CustomerId,
    survivor: CustomerId,
    message_id: &str,
) -> Result<()> {
    let from = snapshot(tx, tenant, merged).await?;
    let into = snapshot(tx, tenant, survivor).await?;
    let mut traits = map_of(&into, "traits");
    let mut times = map_of(&into, "trait_times");
    let from_times = map_of(&from, "trait_times");
    for (key, value) in map_of(&from, "traits") {
        let at = from_times
            .get(&key)
            .and_then(Value::as_i64)
            .unwrap_or(i64::MIN);
        let mut one = Map::new();
        one.insert(key, value);
        merge_traits(&mut traits, &mut times, &one, at);
    }
    let merge_id: i64 = on_tx!(tx, |c| {
        sqlx::query_scalar(
            "INSERT INTO customer_merges (tenant_id, survivor_id, merged_id, message_id, reason, at, \
             merged_profile, survivor_profile) VALUES ($1, $2, $3, $4, 'shared identity', $5, $6, $7) \
             RETURNING id",
        )
        .bind(tenant.0)
        .bind(survivor.0)
        .bind(merged.0)
        .bind(message_id)
        .bind(now_ms())
        .bind(from.to_string())
        .bind(into.to_string())
        .fetch_one(&mut *c)
        .await?
    });
    // a tag both profiles have stays the survivor's; the merged profile's copy goes
    on_tx!(tx, |c| {
        sqlx::query(
            "DELETE FROM customer_tags WHERE tenant_id = $2 AND customer_id = $3 AND tag_id IN \
             (SELECT tag_id FROM customer_tags WHERE tenant_id = $2 AND customer_id = $1)",
        )
        .bind(survivor.0)
        .bind(tenant.0)
        .bind(merged.0)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    on_tx!(tx, |c| {
        sqlx::query(
            "DELETE FROM customer_sources WHERE tenant_id = $2 AND customer_id = $3 AND source_id IN \
             (SELECT source_id FROM customer_sources WHERE tenant_id = $2 AND customer_id = $1)",
        )
        .bind(survivor.0)
        .bind(tenant.0)
        .bind(merged.0)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    crate::traits::merge_memberships(tx, tenant, merge_id, merged, survivor).await?;
    // what moves is written down first
    for (kind, table) in MOVED {
        let sql = format!(
            "INSERT INTO customer_merge_moves (merge_id, kind, row_id) \
             SELECT $1, '{kind}', id FROM {table} WHERE tenant_id = $2 AND customer_id = $3"
        );
        on_tx!(tx, |c| {
            sqlx::query(&sql)
                .bind(merge_id)
                .bind(tenant.0)
                .bind(merged.0)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
    }
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO customer_merge_moves (merge_id, kind, row_id) \
             SELECT $1, 'pointer', id FROM customers WHERE tenant_id = $2 AND merged_into_id = $3",
        )
        .bind(merge_id)
        .bind(tenant.0)
        .bind(merged.0)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    for sql in [
        "UPDATE identities SET customer_id = $1 WHERE tenant_id = $2 AND customer_id = $3",
        "UPDATE events SET customer_id = $1 WHERE tenant_id = $2 AND customer_id = $3",
        "UPDATE customer_notes SET customer_id = $1 WHERE tenant_id = $2 AND customer_id = $3",
        "UPDATE consent_changes SET customer_id = $1 WHERE tenant_id = $2 AND customer_id = $3",
        "UPDATE customer_tags SET customer_id = $1 WHERE tenant_id = $2 AND customer_id = $3",
        "UPDATE customer_sources SET customer_id = $1 WHERE tenant_id = $2 AND customer_id = $3",
        // static segments the merged profile was in now hold the survivor (the merged
        // profile's rows stay, for an undo)
        "INSERT INTO segment_members (tenant_id, segment_id, customer_id, added_at) \
         SELECT tenant_id, segment_id, $1, added_at FROM segment_members \
         WHERE tenant_id = $2 AND customer_id = $3 \
         ON CONFLICT (tenant_id, segment_id, customer_id) DO NOTHING",
        // event counts: added to the survivor's day by day, then dropped from the merged
        "INSERT INTO customer_event_days (tenant_id, customer_id, name, day, count, last_at) \
         SELECT tenant_id, $1, name, day, count, last_at FROM customer_event_days \
         WHERE tenant_id = $2 AND customer_id = $3 \
         ON CONFLICT (tenant_id, customer_id, name, day) DO UPDATE SET \
         count = customer_event_days.count + excluded.count, \
         last_at = CASE WHEN customer_event_days.last_at > excluded.last_at \
         THEN customer_event_days.last_at ELSE excluded.last_at END",
        "DELETE FROM customer_event_days WHERE tenant_id = $2 AND customer_id = $3 AND $1 <> $3",
        // channel codes likewise, each first seen at the earlier time (an undo rebuilds
        // both profiles' codes from their events)
        "INSERT INTO customer_channel_codes (tenant_id, customer_id, code, first_at) \
         SELECT tenant_id, $1, code, first_at FROM customer_channel_codes \
         WHERE tenant_id = $2 AND customer_id = $3 \
         ON CONFLICT (tenant_id, customer_id, code) DO UPDATE SET \
         first_at = CASE WHEN customer_channel_codes.first_at > excluded.first_at \
         THEN excluded.first_at ELSE customer_channel_codes.first_at END",
        "DELETE FROM customer_channel_codes WHERE tenant_id = $2 AND customer_id = $3 AND $1 <> $3",
        "UPDATE customers SET merged_into_id = $1 WHERE tenant_id = $2 AND (id = $3 OR merged_into_id = $3)",
    ] {
        on_tx!(tx, |c| {
            sqlx::query(sql)
                .bind(survivor.0)
                .bind(tenant.0)
                .bind(merged.0)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
    }
    crate::orders::move_orders(tx, tenant, merged, survivor).await?;
    crate::feed::note_changed(tx, tenant, &[merged, survivor]).await?;
    let seen = |v: &Value, k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
    save_profile(
        tx,
        tenant,
        survivor,
        &traits,
        &times,
        seen(&into, "first_seen_at").min(seen(&from, "first_seen_at")),
        seen(&into, "last_seen_at").max(seen(&from, "last_seen_at")),
    )
    .await
}

/// Rebuilds a profile's per-day event counts from its events, days in the tenant's time
/// zone (worked out here, not in SQL: a zone with daylight saving has no one offset).
async fn recount_event_days(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
    zone: siyu_domain::time::TimeZone,
) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query("DELETE FROM customer_event_days WHERE tenant_id = $1 AND customer_id = $2")
            .bind(tenant.0)
            .bind(customer.0)
            .execute(&mut *c)
            .await?
            .rows_affected()
    });
    let events: Vec<(String, i64)> = on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT CASE type WHEN 'track' THEN name WHEN 'page' THEN 'Page Viewed' \
             ELSE 'Screen Viewed' END, timestamp FROM events \
             WHERE tenant_id = $1 AND customer_id = $2 AND type IN ('track', 'page', 'screen')",
        )
        .bind(tenant.0)
        .bind(customer.0)
        .fetch_all(&mut *c)
        .await?
    });
    // (name, day) → (count, last time)
    let mut days: std::collections::BTreeMap<(String, i64), (i64, i64)> = Default::default();
    for (name, at) in events {
        let entry = days.entry((name, zone.day_of(at))).or_insert((0, at));
        entry.0 += 1;
        entry.1 = entry.1.max(at);
    }
    let rows: Vec<((String, i64), (i64, i64))> = days.into_iter().collect();
    for chunk in rows.chunks(200) {
        let mut p = crate::tx::Placeholders::for_tx(tx);
        let values: Vec<String> = chunk.iter().map(|_| p.row(6)).collect();
        let sql = format!(
            "INSERT INTO customer_event_days (tenant_id, customer_id, name, day, count, last_at) \
             VALUES {}",
            values.join(",")
        );
        on_tx!(tx, |c| {
            let mut query = sqlx::query(&sql);
            for ((name, day), (count, last)) in chunk {
                query = query
                    .bind(tenant.0)
                    .bind(customer.0)
                    .bind(name)
                    .bind(*day)
                    .bind(*count)
                    .bind(*last);
            }
            query.execute(&mut *c).await?.rows_affected()
        });
    }
    Ok(())
}

/// A merge as recorded, with both profiles as they were before it (for its undo).
#[derive(sqlx::FromRow)]
struct MergeSnapshotRow {
    survivor_id: i64,
    merged_id: i64,
    at: i64,
    merged_profile: Option<String>,
    survivor_profile: Option<String>,
    undone_at: Option<i64>,
}

impl TenantScope<'_> {
    /// Undoes a merge: see the module documentation. Returns the survivor and the
    /// profile brought back. A merge undone already, or whose survivor has since been
    /// merged or erased, cannot be undone (undo the later merge first). Audited.
    pub async fn undo_merge(&self, merge: i64, actor: &Actor) -> Result<(CustomerId, CustomerId)> {
        // both profiles come back: one may lie outside a narrower reach
        self.check_tenant_wide("undoing a merge")?;
        let zone = self.time_zone().await?;
        let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
        let tenant = self.tenant;
        let row: Option<MergeSnapshotRow> = on_tx!(&mut tx, |c| {
            sqlx::query_as(
                "SELECT survivor_id, merged_id, at, merged_profile, survivor_profile, undone_at \
                 FROM customer_merges WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(merge)
            .fetch_optional(&mut *c)
            .await?
        });
        let MergeSnapshotRow {
            survivor_id,
            merged_id,
            at,
            merged_profile,
            survivor_profile,
            undone_at,
        } = row.ok_or(StoreError::NotFound("merge"))?;
        let (survivor, merged) = (CustomerId(survivor_id), CustomerId(merged_id));
        if undone_at.is_some() {
            return Err(StoreError::Conflict("this merge was undone already".into()));
        }
        let (Some(merged_profile), Some(survivor_profile)) = (merged_profile, survivor_profile)
        else {
            return Err(StoreError::Conflict(
                "this merge can no longer be undone: it predates undo, or its customer's \
                 personal data was erased"
                    .into(),
            ));
        };
        let state: (Option<i64>, Option<i64>) = on_tx!(&mut tx, |c| {
            sqlx::query_as(
                "SELECT merged_into_id, erased_at FROM customers WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(survivor.0)
            .fetch_one(&mut *c)
            .await?
        });
        if let (Some(later), _) = state {
            return Err(StoreError::Conflict(format!(
                "customer {survivor} was merged into {later} since; undo that merge first"
            )));
        }
        if state.1.is_some() {
            return Err(StoreError::Conflict(format!(
                "customer {survivor} was erased"
            )));
        }
        // group memberships moved (those both belonged to stayed put; see
        // `traits::merge_memberships`)
        for (kind, table) in MOVED.into_iter().chain([("group", "customer_groups")]) {
            let sql = format!(
                "UPDATE {table} SET customer_id = $1 WHERE tenant_id = $2 AND customer_id = $3 \
                 AND id IN (SELECT row_id FROM customer_merge_moves WHERE merge_id = $4 AND kind = '{kind}')"
            );
            on_tx!(&mut tx, |c| {
                sqlx::query(&sql)
                    .bind(merged.0)
                    .bind(tenant.0)
                    .bind(survivor.0)
                    .bind(merge)
                    .execute(&mut *c)
                    .await?
                    .rows_affected()
            });
        }
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE customers SET merged_into_id = $1 WHERE tenant_id = $2 AND merged_into_id = $3 \
                 AND id IN (SELECT row_id FROM customer_merge_moves WHERE merge_id = $4 AND kind = 'pointer')",
            )
            .bind(merged.0)
            .bind(tenant.0)
            .bind(survivor.0)
            .bind(merge)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE customers SET merged_into_id = NULL WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(merged.0)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        // the merged profile as it was; the survivor as it was, plus what was set since
        let merged_profile: Value = serde_json::from_str(&merged_profile)
            .map_err(|_| StoreError::Corrupt(format!("merge {merge}: merged profile")))?;
        let before: Value = serde_json::from_str(&survivor_profile)
            .map_err(|_| StoreError::Corrupt(format!("merge {merge}: survivor profile")))?;
        let now_profile = load_profile(&mut tx, tenant, survivor).await?;
        let mut traits = map_of(&before, "traits");
        let mut times = map_of(&before, "trait_times");
        let current_times = parse_map(&now_profile.trait_times);
        for (key, value) in parse_map(&now_profile.traits) {
            let set_at = current_times.get(&key).and_then(Value::as_i64).unwrap_or(0);
            if set_at > at {
                traits.insert(key.clone(), value);
                times.insert(key, Value::from(set_at));
            }
        }
        let seen = |v: &Value, k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
        save_profile(
            &mut tx,
            tenant,
            merged,
            &map_of(&merged_profile, "traits"),
            &map_of(&merged_profile, "trait_times"),
            seen(&merged_profile, "first_seen_at"),
            seen(&merged_profile, "last_seen_at"),
        )
        .await?;
        save_profile(
            &mut tx,
            tenant,
            survivor,
            &traits,
            &times,
            seen(&before, "first_seen_at").min(now_profile.first_seen_at),
            now_profile.last_seen_at,
        )
        .await?;
        crate::feed::rebuild_channel_codes(&mut tx, tenant, &[survivor, merged]).await?;
        for customer in [survivor, merged] {
            recount_event_days(&mut tx, tenant, customer, zone).await?;
            crate::orders::refresh_order_stats(&mut tx, tenant, customer).await?;
        }
        let now = now_ms();
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE customer_merges SET undone_at = $1, undone_by = $2 WHERE tenant_id = $3 AND id = $4",
            )
            .bind(now)
            .bind(&actor.label)
            .bind(tenant.0)
            .bind(merge)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "INSERT INTO customer_kept_apart (tenant_id, customer_a, customer_b, at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, customer_a, customer_b) DO NOTHING",
            )
            .bind(tenant.0)
            .bind(survivor.min(merged).0)
            .bind(survivor.max(merged).0)
            .bind(now)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        crate::audit::record(
            &mut tx,
            tenant,
            actor,
            AuditRecord::new(action::CUSTOMER_MERGE_UNDONE, "customer", survivor)
                .with_details(json!({"merge": merge, "restored": merged.0})),
        )
        .await?;
        crate::feed::note_changed(&mut tx, tenant, &[survivor, merged]).await?;
        tx.commit().await?;
        Ok((survivor, merged))
    }
}
