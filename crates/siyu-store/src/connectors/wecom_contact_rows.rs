//! The rows storing WeCom contacts reads and writes, many contacts a statement: which
//! of them siyu has linked, their relations, the profiles owning their ids, and the
//! follow relations upserted (from a read) or inserted (from an add's callback).

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use siyu_domain::customer::CustomerId;
use siyu_domain::identity::IdentityKind;
use siyu_domain::ids::ConnectorId;

use super::wecom_customers::{RecordDetail, WecomContactRecord};
use crate::Result;
use crate::tx::{Placeholders, Tx, on_tx};

/// Whether siyu marked a tag on a relation of these contacts at or after `read_at`, or
/// ended one then (a deletion applied since): what was read is stale.
pub(super) async fn marked_since(
    tx: &mut Tx,
    id: ConnectorId,
    external: &[&str],
    read_at: i64,
) -> Result<bool> {
    for chunk in external.chunks(300) {
        let mut p = Placeholders::for_tx(tx);
        // SQLite's placeholders are anonymous: each is bound once, in order
        let (connector, marked_at, ended_at) = (p.next(), p.next(), p.next());
        let sql = format!(
            "SELECT COUNT(*) FROM wecom_follows WHERE connector_id = {connector} \
             AND (marked_at >= {marked_at} \
             OR (deleted_at IS NOT NULL AND synced_at >= {ended_at})) \
             AND external_userid IN {}",
            p.row(chunk.len())
        );
        let marked: i64 = on_tx!(tx, |c| {
            let mut query = sqlx::query_scalar(&sql)
                .bind(id.0)
                .bind(read_at)
                .bind(read_at);
            for e in chunk {
                query = query.bind(*e);
            }
            query.fetch_one(&mut *c).await?
        });
        if marked > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The contacts of `external` already linked: their (live) profile and fingerprint.
pub(super) async fn known_contacts(
    tx: &mut Tx,
    id: ConnectorId,
    external: &[&str],
) -> Result<HashMap<String, (CustomerId, String)>> {
    let mut known = HashMap::new();
    for chunk in external.chunks(300) {
        let mut p = Placeholders::for_tx(tx);
        let connector = p.next();
        let sql = format!(
            "SELECT w.external_userid, COALESCE(c.merged_into_id, w.customer_id), w.fingerprint \
             FROM wecom_contacts w JOIN customers c ON c.tenant_id = w.tenant_id AND c.id = w.customer_id \
             WHERE w.connector_id = {connector} AND w.external_userid IN {}",
            p.row(chunk.len())
        );
        let rows: Vec<(String, i64, String)> = on_tx!(tx, |c| {
            let mut query = sqlx::query_as(&sql).bind(id.0);
            for e in chunk {
                query = query.bind(*e);
            }
            query.fetch_all(&mut *c).await?
        });
        for (external, customer, fingerprint) in rows {
            known.insert(external, (CustomerId(customer), fingerprint));
        }
    }
    Ok(known)
}

/// The relations of these contacts siyu has (live or ended).
pub(super) async fn known_relations(
    tx: &mut Tx,
    id: ConnectorId,
    external: &[&str],
) -> Result<HashSet<(String, String)>> {
    let mut known = HashSet::new();
    for chunk in external.chunks(300) {
        let mut p = Placeholders::for_tx(tx);
        let connector = p.next();
        let sql = format!(
            "SELECT external_userid, userid FROM wecom_follows \
             WHERE connector_id = {connector} AND deleted_at IS NULL AND external_userid IN {}",
            p.row(chunk.len())
        );
        let rows: Vec<(String, String)> = on_tx!(tx, |c| {
            let mut query = sqlx::query_as(&sql).bind(id.0);
            for e in chunk {
                query = query.bind(*e);
            }
            query.fetch_all(&mut *c).await?
        });
        known.extend(rows);
    }
    Ok(known)
}

/// The live profiles owning these external userids, read inside the transaction
/// (which may have just made them).
pub(super) async fn owners_in(
    tx: &mut Tx,
    tenant: siyu_domain::ids::TenantId,
    external: &[&str],
) -> Result<Vec<(String, CustomerId)>> {
    let mut owners = Vec::new();
    for chunk in external.chunks(300) {
        let mut p = Placeholders::for_tx(tx);
        let (tenant_p, kind_p) = (p.next(), p.next());
        let sql = format!(
            "SELECT i.value, COALESCE(c.merged_into_id, i.customer_id) FROM identities i \
             JOIN customers c ON c.tenant_id = i.tenant_id AND c.id = i.customer_id \
             WHERE i.tenant_id = {tenant_p} AND i.kind = {kind_p} AND i.value IN {}",
            p.row(chunk.len())
        );
        let rows: Vec<(String, i64)> = on_tx!(tx, |c| {
            let mut query = sqlx::query_as(&sql)
                .bind(tenant.0)
                .bind(IdentityKind::WECOM_EXTERNAL_USERID);
            for e in chunk {
                query = query.bind(*e);
            }
            query.fetch_all(&mut *c).await?
        });
        owners.extend(rows.into_iter().map(|(v, c)| (v, CustomerId(c))));
    }
    Ok(owners)
}

/// Links contacts to their profiles with what siyu knows of them (their fingerprint).
pub(super) async fn link_contacts(
    tx: &mut Tx,
    tenant: siyu_domain::ids::TenantId,
    id: ConnectorId,
    linked: &[(&str, CustomerId, &str)],
    now: i64,
) -> Result<()> {
    for chunk in linked.chunks(300) {
        let mut p = Placeholders::for_tx(tx);
        let values: Vec<String> = chunk.iter().map(|_| p.row(6)).collect();
        let sql = format!(
            "INSERT INTO wecom_contacts (connector_id, tenant_id, external_userid, \
             customer_id, fingerprint, synced_at) VALUES {} \
             ON CONFLICT (connector_id, external_userid) DO UPDATE SET \
             customer_id = excluded.customer_id, fingerprint = excluded.fingerprint, \
             synced_at = excluded.synced_at",
            values.join(",")
        );
        on_tx!(tx, |c| {
            let mut query = sqlx::query(&sql);
            for (external, customer, fingerprint) in chunk {
                query = query
                    .bind(id.0)
                    .bind(tenant.0)
                    .bind(*external)
                    .bind(customer.0)
                    .bind(*fingerprint)
                    .bind(now);
            }
            query.execute(&mut *c).await?;
        });
    }
    Ok(())
}

/// Writes the relations of `records` (live again if they had ended), one row per
/// relation (a page may repeat one: WeCom's cursor overlapping, or two adds in one
/// group of callbacks). A read from WeCom sets everything it says; an add's callback
/// ([`RecordDetail::Callback`]) tells only the relation, so what only a read knows
/// (remark, description, tags, personal tags) stays as it was.
pub(super) async fn write_follows(
    tx: &mut Tx,
    tenant: siyu_domain::ids::TenantId,
    id: ConnectorId,
    records: &[&WecomContactRecord],
    customers: &HashMap<&str, CustomerId>,
    detail: RecordDetail,
    now: i64,
) -> Result<()> {
    let mut rows: HashMap<(&str, &str), (&WecomContactRecord, CustomerId)> = HashMap::new();
    for contact in records {
        if let Some(customer) = customers.get(contact.external_userid.as_str()) {
            rows.insert(
                (
                    contact.external_userid.as_str(),
                    contact.follow.userid.as_str(),
                ),
                (contact, *customer),
            );
        }
    }
    let rows: Vec<_> = rows.into_values().collect();
    let updated = match detail {
        RecordDetail::Read => {
            "customer_id = excluded.customer_id, remark = excluded.remark, \
             description = excluded.description, add_way = excluded.add_way, \
             state = excluded.state, oper_userid = excluded.oper_userid, \
             added_at = excluded.added_at, tag_ids = excluded.tag_ids, \
             synced_at = excluded.synced_at, deleted_at = NULL, \
             personal_tags = COALESCE(excluded.personal_tags, wecom_follows.personal_tags), \
             personal_tags_at = COALESCE(excluded.personal_tags_at, wecom_follows.personal_tags_at)"
        }
        RecordDetail::Callback => {
            "customer_id = excluded.customer_id, add_way = excluded.add_way, \
             state = excluded.state, oper_userid = excluded.oper_userid, \
             added_at = excluded.added_at, synced_at = excluded.synced_at, deleted_at = NULL"
        }
    };
    for chunk in rows.chunks(200) {
        let mut p = Placeholders::for_tx(tx);
        let values: Vec<String> = chunk.iter().map(|_| p.row(15)).collect();
        let sql = format!(
            "INSERT INTO wecom_follows (connector_id, tenant_id, external_userid, userid, \
             customer_id, remark, description, add_way, state, oper_userid, added_at, tag_ids, \
             synced_at, personal_tags, personal_tags_at) VALUES {} \
             ON CONFLICT (connector_id, external_userid, userid) DO UPDATE SET {updated}",
            values.join(",")
        );
        on_tx!(tx, |c| {
            let mut query = sqlx::query(&sql);
            for (contact, customer) in chunk {
                let f = &contact.follow;
                query = query
                    .bind(id.0)
                    .bind(tenant.0)
                    .bind(&contact.external_userid)
                    .bind(&f.userid)
                    .bind(customer.0)
                    .bind(&f.remark)
                    .bind(&f.description)
                    .bind(f.add_way)
                    .bind(&f.state)
                    .bind(&f.oper_userid)
                    .bind(f.added_at)
                    .bind(Value::from(f.tag_ids.clone()).to_string())
                    .bind(now)
                    .bind(
                        f.personal_tags
                            .as_ref()
                            .map(|t| Value::from(t.clone()).to_string()),
                    )
                    .bind(f.personal_tags.as_ref().map(|_| now));
            }
            query.execute(&mut *c).await?;
        });
    }
    Ok(())
}
