//! Saved definitions (segments, tag rules, score settings) that name tags, sources and
//! units: the catalogs a definition is checked against, and rewriting definitions when
//! a name they use changes.

use std::collections::HashMap;

use serde_json::Value;
use siyu_audience::Condition;
use siyu_domain::audience::TagRule;

use crate::db::{now_ms, on_db};
use crate::tx::on_tx;
use crate::{Result, TenantScope};

/// A dynamic segment's stored definition.
#[derive(sqlx::FromRow)]
pub(crate) struct SegmentDefinitionRow {
    pub id: i64,
    pub name: String,
    /// The condition as JSON.
    pub definition: String,
}

impl TenantScope<'_> {
    /// The definitions of the tenant's dynamic segments, as stored (JSON), by id.
    pub(crate) async fn segment_definitions(&self) -> Result<Vec<SegmentDefinitionRow>> {
        Ok(on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT id, name, definition FROM segments \
                 WHERE tenant_id = $1 AND definition IS NOT NULL ORDER BY id",
            )
            .bind(self.tenant.0)
            .fetch_all(db)
            .await?
        }))
    }

    /// Source name → id, for segment definitions.
    pub async fn source_catalog(&self) -> Result<HashMap<String, i64>> {
        let rows: Vec<(String, i64)> = on_db!(self.store, |db| {
            sqlx::query_as("SELECT name, id FROM sources WHERE tenant_id = $1")
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?
        });
        Ok(rows.into_iter().collect())
    }

    /// Unit → the unit and every unit beneath it.
    pub async fn unit_catalog(&self) -> Result<HashMap<i64, Vec<i64>>> {
        let rows: Vec<(i64, Option<i64>)> = on_db!(self.store, |db| {
            sqlx::query_as("SELECT id, parent_id FROM units WHERE tenant_id = $1")
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?
        });
        let mut children: HashMap<i64, Vec<i64>> = HashMap::new();
        for (id, parent) in &rows {
            if let Some(p) = parent {
                children.entry(*p).or_default().push(*id);
            }
        }
        let mut catalog = HashMap::new();
        for (id, _) in &rows {
            let mut beneath = vec![*id];
            let mut i = 0;
            while i < beneath.len() {
                if let Some(kids) = children.get(&beneath[i]) {
                    beneath.extend(kids);
                }
                i += 1;
            }
            catalog.insert(*id, beneath);
        }
        Ok(catalog)
    }

    /// The saved segments and tag rules whose definitions name a unit.
    pub(crate) async fn definitions_using_unit(&self, unit: i64) -> Result<Vec<String>> {
        self.definitions_where(
            |c| {
                let mut found = false;
                c.walk(&mut |part| match part {
                    Condition::Unit(u) if *u == unit => found = true,
                    Condition::Orders(o) if o.unit == Some(unit) => found = true,
                    _ => {}
                });
                found
            },
            |_| false,
        )
        .await
    }

    /// The saved segments and tag rules that use something, named for an error
    /// (`segment 大客户 (3)`, `tag rule 上海 (1)`): those whose definition `uses`, and
    /// rules `rule_uses` otherwise (by the tags they change).
    pub(crate) async fn definitions_where(
        &self,
        uses: impl Fn(&Condition) -> bool,
        rule_uses: impl Fn(&TagRule) -> bool,
    ) -> Result<Vec<String>> {
        let mut users = Vec::new();
        for row in self.segment_definitions().await? {
            if serde_json::from_str::<Condition>(&row.definition).is_ok_and(|c| uses(&c)) {
                users.push(format!("segment {} ({})", row.name, row.id));
            }
        }
        for rule in self.tag_rules().await? {
            if rule_uses(&rule)
                || serde_json::from_value::<Condition>(rule.condition.clone())
                    .is_ok_and(|c| uses(&c))
            {
                users.push(format!("tag rule {} ({})", rule.name, rule.id.0));
            }
        }
        for (key, _, condition) in self.definition_settings().await? {
            if uses(&condition) {
                users.push(format!("the {key} setting"));
            }
        }
        Ok(users)
    }

    /// The tenant's settings that hold a segment definition (`{"definition": "…"}`, such
    /// as who counts as a KOC), with it parsed: renames rewrite them and deletions name
    /// them, as they do saved segments and tag rules.
    pub(crate) async fn definition_settings(&self) -> Result<Vec<(String, Value, Condition)>> {
        let rows: Vec<(String, String)> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT key, value FROM tenant_settings WHERE tenant_id = $1 ORDER BY key",
            )
            .bind(self.tenant.0)
            .fetch_all(db)
            .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(key, value)| {
                let value: Value = serde_json::from_str(&value).ok()?;
                let condition = siyu_audience::parse(value.get("definition")?.as_str()?).ok()?;
                Some((key, value, condition))
            })
            .collect())
    }

    /// Rewrites every saved segment's and tag rule's definition that `change` changes
    /// (a renamed source).
    pub(crate) async fn rewrite_definitions(
        &self,
        change: impl Fn(&Condition) -> Option<Condition>,
    ) -> Result<()> {
        let now = now_ms();
        for row in self.segment_definitions().await? {
            let Ok(condition) = serde_json::from_str::<Condition>(&row.definition) else {
                continue;
            };
            if let Some(new) = change(&condition) {
                on_db!(self.store, |db| {
                    sqlx::query("UPDATE segments SET definition = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4")
                        .bind(serde_json::to_string(&new).expect("serializable"))
                        .bind(now)
                        .bind(self.tenant.0)
                        .bind(row.id)
                        .execute(db)
                        .await?;
                });
            }
        }
        for rule in self.tag_rules().await? {
            let Ok(condition) = serde_json::from_value::<Condition>(rule.condition.clone()) else {
                continue;
            };
            if let Some(new) = change(&condition) {
                on_db!(self.store, |db| {
                    sqlx::query("UPDATE tag_rules SET condition = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4")
                        .bind(serde_json::to_string(&new).expect("serializable"))
                        .bind(now)
                        .bind(self.tenant.0)
                        .bind(rule.id.0)
                        .execute(db)
                        .await?;
                });
            }
        }
        let changed: Vec<(String, String)> = self
            .definition_settings()
            .await?
            .into_iter()
            .filter_map(|(key, value, condition)| {
                change(&condition).map(|new| (key, with_definition(value, &new)))
            })
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        // their new version tells other servers to reload the settings
        let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
        let version = crate::settings::next_version(&mut tx, self.tenant).await?;
        for (key, value) in &changed {
            on_tx!(&mut tx, |c| {
                sqlx::query("UPDATE tenant_settings SET value = $1, updated_at = $2 WHERE tenant_id = $3 AND key = $4")
                    .bind(value)
                    .bind(version)
                    .bind(self.tenant.0)
                    .bind(key)
                    .execute(&mut *c)
                    .await?
                    .rows_affected()
            });
        }
        tx.commit().await
    }
}

/// The same condition with every `source(old)` naming `new`, if it names `old`.
pub(crate) fn rename_source(condition: &Condition, old: &str, new: &str) -> Option<Condition> {
    let renamed = condition.map_leaves(&|leaf| match leaf {
        Condition::Source(name) if name == old => Some(Condition::Source(new.to_owned())),
        _ => None,
    });
    (renamed != *condition).then_some(renamed)
}

/// A definition setting's value with its definition changed, as stored.
pub(crate) fn with_definition(mut value: Value, condition: &Condition) -> String {
    value["definition"] = Value::String(condition.to_string());
    value.to_string()
}

/// The same condition with every `tag(old)` naming `new`.
pub(crate) fn rename_tag(condition: &Condition, old: &str, new: &str) -> Condition {
    condition.map_leaves(&|leaf| match leaf {
        Condition::Tag(name) if name == old => Some(Condition::Tag(new.to_owned())),
        _ => None,
    })
}
