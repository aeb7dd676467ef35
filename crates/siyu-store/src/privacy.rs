//! Personal data under PIPL: consent per channel, and data-subject requests (export
//! everything about a customer; erase their personal data, keeping anonymous figures).
//!
//! Consent is a history: each change is a row, and the newest per channel is in force,
//! so the record of when and where a customer opted out survives later changes.

use std::collections::HashMap;

use serde_json::{Value, json};
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::consent::{Consent, ConsentChannel, ConsentStatus, may_contact};
use siyu_domain::customer::CustomerId;
use siyu_domain::identity::{Identity, IdentityKind};
use siyu_domain::page::PageRequest;

use crate::audit;
use crate::db::{now_ms, on_db};
use crate::tx::{Placeholders, Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

#[derive(sqlx::FromRow)]
struct ConsentRow {
    channel: String,
    status: String,
    source: String,
    note: Option<String>,
    at: i64,
    actor_label: String,
}

/// A customer's event as a data export gives it.
#[derive(sqlx::FromRow)]
struct EventExportRow {
    id: i64,
    /// The event's `type` (track, page, screen, identify…).
    kind: String,
    name: String,
    properties: String,
    context: String,
    timestamp: i64,
    received_at: i64,
    source_id: i64,
    message_id: String,
}

/// The consent in force for a customer on a channel.
#[derive(sqlx::FromRow)]
struct InForceRow {
    customer_id: i64,
    channel: String,
    status: String,
}

fn consent_from_row(row: ConsentRow) -> Result<Consent> {
    let ConsentRow {
        channel,
        status,
        source,
        note,
        at,
        actor_label,
    } = row;
    Ok(Consent {
        channel: ConsentChannel::parse("channel", &channel)
            .map_err(|_| StoreError::Corrupt(format!("consent channel {channel}")))?,
        status: ConsentStatus::parse("status", &status)
            .map_err(|_| StoreError::Corrupt(format!("consent status {status}")))?,
        source,
        note,
        at,
        recorded_by: actor_label,
    })
}

/// A consent change to record.
#[derive(Debug, Clone)]
pub struct ConsentChange {
    pub channel: ConsentChannel,
    pub status: ConsentStatus,
    /// Where it came from: `api`, `console`, `import`, a channel.
    pub source: String,
    pub note: Option<String>,
    /// When the customer gave or withdrew it (now when absent).
    pub at: Option<i64>,
}

impl TenantScope<'_> {
    /// The consents in force for a customer, one per channel that has any.
    pub async fn consents(&self, id: CustomerId) -> Result<Vec<Consent>> {
        let customer = self.get_customer(id).await?;
        let rows: Vec<ConsentRow> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT channel, status, source, note, at, actor_label FROM consent_changes c \
                 WHERE tenant_id = $1 AND customer_id = $2 AND id = (SELECT MAX(id) FROM consent_changes d \
                 WHERE d.tenant_id = c.tenant_id AND d.customer_id = c.customer_id AND d.channel = c.channel) \
                 ORDER BY channel",
            )
            .bind(self.tenant.0)
            .bind(customer.id.0)
            .fetch_all(db)
            .await?
        });
        rows.into_iter().map(consent_from_row).collect()
    }

    /// Every consent change of a customer, newest first.
    pub async fn consent_history(&self, id: CustomerId) -> Result<Vec<Consent>> {
        let customer = self.get_customer(id).await?;
        let rows: Vec<ConsentRow> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT channel, status, source, note, at, actor_label FROM consent_changes \
                 WHERE tenant_id = $1 AND customer_id = $2 ORDER BY id DESC",
            )
            .bind(self.tenant.0)
            .bind(customer.id.0)
            .fetch_all(db)
            .await?
        });
        rows.into_iter().map(consent_from_row).collect()
    }

    /// Records a consent change (audited) and returns the consents in force.
    pub async fn record_consent(
        &self,
        id: CustomerId,
        change: &ConsentChange,
        actor: &Actor,
    ) -> Result<Vec<Consent>> {
        let customer = self.get_customer(id).await?;
        self.record_consents(&[(customer.id, change.clone())], false, actor)
            .await?;
        self.consents(customer.id).await
    }

    /// Records many consent changes at once, in one transaction (an import, the demo):
    /// each customer's changes in the order given, audited one by one like
    /// [`TenantScope::record_consent`]. With `only_changes`, a change that is already
    /// in force is skipped, so that importing the same file again adds nothing to the
    /// history. A change for a profile merged meanwhile goes to its survivor; one for a
    /// customer this tenant does not have is dropped. Returns how many were recorded.
    pub async fn record_consents(
        &self,
        changes: &[(CustomerId, ConsentChange)],
        only_changes: bool,
        actor: &Actor,
    ) -> Result<usize> {
        if changes.is_empty() {
            return Ok(0);
        }
        // in turn with ingestion and merges: what is read below stays true until commit
        let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
        let recorded = self
            .record_consents_in(&mut tx, changes, only_changes, actor)
            .await?;
        tx.commit().await?;
        Ok(recorded)
    }

    /// [`TenantScope::record_consents`] inside a transaction that holds the tenant's
    /// customer lock (an import records a row's profile, consents and tags together).
    pub(crate) async fn record_consents_in(
        &self,
        tx: &mut Tx,
        changes: &[(CustomerId, ConsentChange)],
        only_changes: bool,
        actor: &Actor,
    ) -> Result<usize> {
        if changes.is_empty() {
            return Ok(0);
        }
        let mut ids: Vec<i64> = changes.iter().map(|(c, _)| c.0).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut live: HashMap<i64, i64> = HashMap::new();
        for chunk in ids.chunks(300) {
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            // ids are our own integers: inlined
            let sql = format!(
                "SELECT id, COALESCE(merged_into_id, id) FROM customers \
                 WHERE tenant_id = $1 AND id IN ({list})"
            );
            let rows: Vec<(i64, i64)> = on_tx!(tx, |c| {
                sqlx::query_as(&sql)
                    .bind(self.tenant.0)
                    .fetch_all(&mut *c)
                    .await?
            });
            live.extend(rows);
        }
        let changes: Vec<(CustomerId, &ConsentChange)> = changes
            .iter()
            .filter_map(|(c, change)| live.get(&c.0).map(|l| (CustomerId(*l), change)))
            .collect();
        let mut in_force: HashMap<(i64, String), String> = HashMap::new();
        if only_changes {
            let mut ids: Vec<i64> = changes.iter().map(|(c, _)| c.0).collect();
            ids.sort_unstable();
            ids.dedup();
            for chunk in ids.chunks(300) {
                let mut p = Placeholders::for_tx(tx);
                let tenant_p = p.next();
                let sql = format!(
                    "SELECT customer_id, channel, status FROM consent_changes c \
                     WHERE tenant_id = {tenant_p} AND customer_id IN {} AND id = (SELECT MAX(id) \
                     FROM consent_changes d WHERE d.tenant_id = c.tenant_id \
                     AND d.customer_id = c.customer_id AND d.channel = c.channel)",
                    p.row(chunk.len())
                );
                let rows: Vec<InForceRow> = on_tx!(tx, |c| {
                    let mut query = sqlx::query_as(&sql).bind(self.tenant.0);
                    for id in chunk {
                        query = query.bind(*id);
                    }
                    query.fetch_all(&mut *c).await?
                });
                for row in rows {
                    in_force.insert((row.customer_id, row.channel), row.status);
                }
            }
        }
        let mut recorded = Vec::new();
        for (customer, change) in changes {
            let key = (customer.0, change.channel.as_str().to_owned());
            let status = change.status.as_str();
            if only_changes && in_force.get(&key).is_some_and(|s| s == status) {
                continue;
            }
            in_force.insert(key, status.to_owned());
            recorded.push((customer, change));
        }
        let now = now_ms();
        for chunk in recorded.chunks(100) {
            let mut p = Placeholders::for_tx(tx);
            let rows: Vec<String> = (0..chunk.len()).map(|_| p.row(8)).collect();
            let sql = format!(
                "INSERT INTO consent_changes (tenant_id, customer_id, channel, status, source, note, \
                 at, actor_label) VALUES {}",
                rows.join(",")
            );
            on_tx!(tx, |c| {
                let mut query = sqlx::query(&sql);
                for (customer, change) in chunk {
                    query = query
                        .bind(self.tenant.0)
                        .bind(customer.0)
                        .bind(change.channel.as_str())
                        .bind(change.status.as_str())
                        .bind(&change.source)
                        .bind(&change.note)
                        .bind(change.at.unwrap_or(now))
                        .bind(&actor.label);
                }
                query.execute(&mut *c).await?.rows_affected()
            });
            let audits: Vec<AuditRecord> = chunk
                .iter()
                .map(|(customer, change)| {
                    AuditRecord::new(action::CUSTOMER_CONSENT_CHANGED, "customer", *customer)
                        .with_details(json!({"channel": change.channel.as_str(),
                            "status": change.status.as_str(), "source": change.source}))
                })
                .collect();
            audit::insert_audits(tx, self.tenant, actor, &audits).await?;
        }
        let customers: Vec<CustomerId> = recorded.iter().map(|(c, _)| *c).collect();
        crate::feed::note_changed(tx, self.tenant, &customers).await?;
        Ok(recorded.len())
    }

    /// Whether a sender may contact the customer on a channel (see
    /// [`siyu_domain::consent::may_contact`]). Every sender asks this before sending.
    pub async fn may_contact(&self, id: CustomerId, channel: ConsentChannel) -> Result<bool> {
        Ok(may_contact(&self.consents(id).await?, channel))
    }

    /// Everything siyu holds about a customer, unmasked, as one JSON document (a
    /// data-subject access request). Audited.
    pub async fn export_customer_data(&self, id: CustomerId, actor: &Actor) -> Result<Value> {
        let customer = self.get_customer(id).await?;
        let id = customer.id;
        let mut events = Vec::new();
        let mut after = i64::MAX;
        loop {
            let rows: Vec<EventExportRow> = on_db!(self.store, |db| {
                sqlx::query_as(
                        "SELECT id, type AS kind, name, properties, context, timestamp, received_at, \
                         source_id, message_id FROM events WHERE tenant_id = $1 AND customer_id = $2 \
                         AND id < $3 ORDER BY id DESC LIMIT 1000",
                    )
                    .bind(self.tenant.0)
                    .bind(id.0)
                    .bind(after)
                    .fetch_all(db)
                    .await?
            });
            let Some(last) = rows.last() else { break };
            after = last.id;
            for e in rows {
                events.push(json!({
                    "id": e.id, "type": e.kind, "name": e.name,
                    "properties": serde_json::from_str::<Value>(&e.properties).unwrap_or(Value::Null),
                    "context": serde_json::from_str::<Value>(&e.context).unwrap_or(Value::Null),
                    "timestamp": siyu_domain::time::format_rfc3339(e.timestamp),
                    "received_at": siyu_domain::time::format_rfc3339(e.received_at),
                    "source_id": e.source_id, "message_id": e.message_id,
                }));
            }
        }
        let mut orders = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let list = self
                .list_orders(
                    &crate::OrderFilter {
                        customer: Some(id),
                        ..Default::default()
                    },
                    page,
                )
                .await?;
            for order in list.items {
                let after_sales = self.list_after_sales(order.id).await?;
                let mut value = serde_json::to_value(&order).unwrap_or(Value::Null);
                value["after_sales"] = serde_json::to_value(after_sales).unwrap_or(Value::Null);
                orders.push(value);
            }
            match list.next_cursor {
                Some(c) => {
                    page = PageRequest::parse(Some(&c), Some(500))?;
                }
                None => break,
            }
        }
        let document = json!({
            "exported_at": siyu_domain::time::format_rfc3339(now_ms()),
            "customer": customer,
            "activity": self.customer_activity(id).await?,
            "consent": self.consent_history(id).await?,
            "notes": self.customer_notes(id).await?,
            "orders": orders,
            "events": events,
        });
        self.audit(
            actor.clone(),
            AuditRecord::new(action::CUSTOMER_DATA_EXPORTED, "customer", id).with_details(
                json!({"events": events_len(&document), "orders": orders_len(&document)}),
            ),
        )
        .await?;
        Ok(document)
    }

    /// Erases a customer's personal data on request: identities, traits, name, phone and
    /// email, notes, group memberships, event properties and context, order properties.
    /// What stays is anonymous: the profile id, event names and times, order amounts and
    /// items, event counts, consent records. Later events naming the same person make a new profile.
    /// Audited; erasing twice changes nothing more.
    pub async fn erase_customer(&self, id: CustomerId, actor: &Actor) -> Result<()> {
        let customer = self.get_customer(id).await?;
        let id = customer.id;
        let now = now_ms();
        let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
        // what names them, to find their events set aside outside the tables
        let named: Vec<(String, String)> = on_tx!(&mut tx, |c| {
            sqlx::query_as(
                "SELECT kind, value FROM identities WHERE tenant_id = $1 AND (customer_id = $2 \
                 OR customer_id IN (SELECT id FROM customers WHERE tenant_id = $1 AND merged_into_id = $2))",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .fetch_all(&mut *c)
            .await?
        });
        let identities: Vec<Identity> = named
            .into_iter()
            .filter_map(|(kind, value)| {
                Some(Identity {
                    kind: IdentityKind::parse(&kind).ok()?,
                    value,
                })
            })
            .collect();
        for sql in [
            "DELETE FROM identities WHERE tenant_id = $1 AND (customer_id = $2 OR customer_id IN \
             (SELECT id FROM customers WHERE tenant_id = $1 AND merged_into_id = $2))",
            "DELETE FROM customer_notes WHERE tenant_id = $1 AND customer_id = $2",
            // a group's id and traits may name a person (a household, a family name)
            "DELETE FROM customer_groups WHERE tenant_id = $1 AND (customer_id = $2 OR customer_id IN \
             (SELECT id FROM customers WHERE tenant_id = $1 AND merged_into_id = $2))",
            // a code's `state` may name a person (an invite code, a phone)
            "DELETE FROM customer_channel_codes WHERE tenant_id = $1 AND customer_id = $2",
            "UPDATE events SET properties = '{}', context = '{}', user_id = NULL, anonymous_id = NULL \
             WHERE tenant_id = $1 AND customer_id = $2",
            "UPDATE orders SET properties = '{}' WHERE tenant_id = $1 AND customer_id = $2",
            "UPDATE consent_changes SET note = NULL WHERE tenant_id = $1 AND customer_id = $2",
            // merges keep both profiles as they were, for an undo: not after an erasure
            "UPDATE customer_merges SET merged_profile = NULL, survivor_profile = NULL \
             WHERE tenant_id = $1 AND (survivor_id = $2 OR merged_id = $2 \
             OR survivor_id IN (SELECT id FROM customers WHERE tenant_id = $1 AND merged_into_id = $2) \
             OR merged_id IN (SELECT id FROM customers WHERE tenant_id = $1 AND merged_into_id = $2))",
            // the reasons given for tags and after-sales are free text
            "UPDATE customer_tags SET reason = NULL WHERE tenant_id = $1 AND customer_id = $2",
            "UPDATE customer_tag_changes SET reason = NULL WHERE tenant_id = $1 AND (customer_id = $2 \
             OR customer_id IN (SELECT id FROM customers WHERE tenant_id = $1 AND merged_into_id = $2))",
            "UPDATE after_sales SET reason = NULL WHERE tenant_id = $1 AND order_ref IN \
             (SELECT id FROM orders WHERE tenant_id = $1 AND customer_id = $2)",
            "UPDATE customers SET traits = '{}', trait_times = '{}', name = NULL, email = NULL, \
             phone = NULL WHERE tenant_id = $1 AND (id = $2 OR merged_into_id = $2)",
        ] {
            on_tx!(&mut tx, |c| {
                sqlx::query(sql)
                    .bind(self.tenant.0)
                    .bind(id.0)
                    .execute(&mut *c)
                    .await?
                    .rows_affected()
            });
        }
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE customers SET erased_at = COALESCE(erased_at, $1), updated_at = $1 \
                 WHERE tenant_id = $2 AND id = $3",
            )
            .bind(now)
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::CUSTOMER_ERASED, "customer", id),
        )
        .await?;
        crate::feed::note_changed(&mut tx, self.tenant, &[id]).await?;
        tx.commit().await?;
        self.store.purge_erased(self.tenant, &identities).await?;
        Ok(())
    }
}

fn events_len(document: &Value) -> usize {
    document["events"].as_array().map_or(0, Vec::len)
}

fn orders_len(document: &Value) -> usize {
    document["orders"].as_array().map_or(0, Vec::len)
}
