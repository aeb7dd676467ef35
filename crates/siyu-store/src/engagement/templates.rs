//! Message templates: stored as written, with their fallbacks (see
//! `siyu_domain::engagement::template` for the rules), and the values a customer gives
//! them (their name and traits, their owner member, the code that first brought them,
//! the brand).

use std::collections::{BTreeMap, HashMap};

use serde_json::json;
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::engagement::template::{
    MessageTemplate, MessageTemplateSpec, Variable, variables,
};
use siyu_domain::ids::{CustomerId, MessageTemplateId, StaffId};
use siyu_domain::page::{Page, PageRequest};

use crate::audit;
use crate::db::{id_list, now_ms, on_db};
use crate::tx::on_tx;
use crate::{Result, StoreError, TenantScope};

const TEMPLATE_COLUMNS: &str = "id, name, body, fallbacks, created_at, updated_at";
const NAME_TAKEN: &str = "a template of this name exists";

#[derive(sqlx::FromRow)]
struct TemplateRow {
    id: i64,
    name: String,
    body: String,
    fallbacks: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<TemplateRow> for MessageTemplate {
    type Error = StoreError;
    fn try_from(r: TemplateRow) -> Result<Self> {
        let fallbacks: BTreeMap<String, String> = serde_json::from_str(&r.fallbacks)
            .map_err(|e| StoreError::Corrupt(format!("fallbacks of template {}: {e}", r.id)))?;
        let named = variables(&r.body)
            .map_err(|e| StoreError::Corrupt(format!("template {}: {e}", r.id)))?;
        Ok(MessageTemplate {
            id: MessageTemplateId(r.id),
            name: r.name,
            body: r.body,
            fallbacks,
            per_customer: named.iter().any(Variable::per_customer),
            variables: named.iter().map(Variable::path).collect(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

fn fallbacks_text(spec: &MessageTemplateSpec) -> Result<String> {
    serde_json::to_string(&spec.fallbacks)
        .map_err(|e| StoreError::Corrupt(format!("fallbacks: {e}")))
}

/// What one customer gives a template's variables.
#[derive(Debug, Clone, Default)]
pub struct TemplateValues {
    pub customer_name: Option<String>,
    pub traits: serde_json::Map<String, serde_json::Value>,
    pub member_name: Option<String>,
    pub code_name: Option<String>,
    pub brand_name: Option<String>,
}

impl TemplateValues {
    /// The value of a variable; a trait that is not text or a number is none.
    pub fn value(&self, variable: &Variable) -> Option<String> {
        match variable {
            Variable::CustomerName => self.customer_name.clone(),
            Variable::CustomerTrait(key) => match self.traits.get(key)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                serde_json::Value::Bool(b) => Some(b.to_string()),
                _ => None,
            },
            Variable::MemberName => self.member_name.clone(),
            Variable::CodeName => self.code_name.clone(),
            Variable::BrandName => self.brand_name.clone(),
        }
    }
}

impl TenantScope<'_> {
    pub async fn create_message_template(
        &self,
        spec: &MessageTemplateSpec,
        created_by: Option<StaffId>,
        actor: &Actor,
    ) -> Result<MessageTemplate> {
        let now = now_ms();
        let fallbacks = fallbacks_text(spec)?;
        let mut tx = self.store.begin().await?;
        let id: i64 = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO message_templates (tenant_id, name, body, fallbacks, \
                 created_by_staff_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(&spec.name)
            .bind(&spec.body)
            .bind(&fallbacks)
            .bind(created_by.map(|s| s.0))
            .bind(now)
            .fetch_one(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, NAME_TAKEN, ""))?
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::MESSAGE_TEMPLATE_CREATED, "message_template", id)
                .with_details(json!({"name": spec.name})),
        )
        .await?;
        tx.commit().await?;
        self.get_message_template(MessageTemplateId(id)).await
    }

    /// A live template.
    pub async fn get_message_template(&self, id: MessageTemplateId) -> Result<MessageTemplate> {
        let sql = format!(
            "SELECT {TEMPLATE_COLUMNS} FROM message_templates \
             WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        let row: Option<TemplateRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        row.ok_or(StoreError::NotFound("message template"))?
            .try_into()
    }

    /// The live templates, by id.
    pub async fn list_message_templates(&self, page: PageRequest) -> Result<Page<MessageTemplate>> {
        let sql = format!(
            "SELECT {TEMPLATE_COLUMNS} FROM message_templates WHERE tenant_id = $1 \
             AND deleted_at IS NULL AND id > $2 ORDER BY id LIMIT $3"
        );
        let rows: Vec<TemplateRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(page.after_id())
                .bind(page.fetch_limit())
                .fetch_all(db)
                .await?
        });
        let templates = rows
            .into_iter()
            .map(MessageTemplate::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(templates, page, |t| t.id.0))
    }

    pub async fn update_message_template(
        &self,
        id: MessageTemplateId,
        spec: &MessageTemplateSpec,
        actor: &Actor,
    ) -> Result<MessageTemplate> {
        let fallbacks = fallbacks_text(spec)?;
        let mut tx = self.store.begin().await?;
        let changed = on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE message_templates SET name = $1, body = $2, fallbacks = $3, \
                 updated_at = $4 WHERE tenant_id = $5 AND id = $6 AND deleted_at IS NULL",
            )
            .bind(&spec.name)
            .bind(&spec.body)
            .bind(&fallbacks)
            .bind(now_ms())
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, NAME_TAKEN, ""))?
            .rows_affected()
        });
        if changed == 0 {
            return Err(StoreError::NotFound("message template"));
        }
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::MESSAGE_TEMPLATE_UPDATED, "message_template", id.0)
                .with_details(json!({"name": spec.name})),
        )
        .await?;
        tx.commit().await?;
        self.get_message_template(id).await
    }

    /// Deletes a template: gone from the library, kept for what used it.
    pub async fn delete_message_template(
        &self,
        id: MessageTemplateId,
        actor: &Actor,
    ) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let name: Option<String> = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "UPDATE message_templates SET deleted_at = $1 \
                 WHERE tenant_id = $2 AND id = $3 AND deleted_at IS NULL RETURNING name",
            )
            .bind(now_ms())
            .bind(self.tenant.0)
            .bind(id.0)
            .fetch_optional(&mut *c)
            .await?
        });
        let name = name.ok_or(StoreError::NotFound("message template"))?;
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::MESSAGE_TEMPLATE_DELETED, "message_template", id.0)
                .with_details(json!({"name": name})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// What a customer within reach gives a template: their name and traits, their
    /// owner member's name (or `member`'s, the member who sends), the code that first
    /// brought them, the brand's name.
    pub async fn template_values(
        &self,
        customer: CustomerId,
        member: Option<StaffId>,
    ) -> Result<TemplateValues> {
        let profile = self.get_customer(customer).await?;
        if let Some(member) = member {
            // a member named by the caller: one of the tenant's, within the caller's reach
            self.get_staff(member).await.map_err(|e| match e {
                StoreError::NotFound(_) => StoreError::Domain(siyu_domain::DomainError::invalid(
                    "member_id",
                    "no such staff member",
                )),
                e => e,
            })?;
            self.check_owner_within_reach(Some(member))?;
        }
        let member_name = match member.or(profile.owner_staff_id) {
            Some(staff) => match self.get_staff(staff).await {
                Ok(staff) => Some(staff.name),
                Err(StoreError::NotFound(_)) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let code_name: Option<String> = on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT c.name FROM channel_first_touch f JOIN channel_codes c \
                 ON c.id = f.code_id AND c.tenant_id = f.tenant_id \
                 WHERE f.tenant_id = $1 AND f.customer_id = $2",
            )
            .bind(self.tenant.0)
            .bind(profile.id.0)
            .fetch_optional(db)
            .await?
        });
        Ok(TemplateValues {
            customer_name: profile.name,
            traits: profile.traits,
            member_name,
            code_name,
            brand_name: Some(self.get().await?.name),
        })
    }
}

impl TenantScope<'_> {
    /// What each of many customers gives a template (a send rendering one per
    /// customer): their name and traits, their owner's name, the code that first brought
    /// them, the brand's name; read a chunk of customers a query. Erased or unknown ids
    /// are left out (they render the fallbacks).
    pub async fn template_values_of(
        &self,
        customers: &[i64],
    ) -> Result<HashMap<i64, TemplateValues>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: i64,
            name: Option<String>,
            traits: String,
            member_name: Option<String>,
            code_name: Option<String>,
        }
        let brand = self.get().await?.name;
        let mut values = HashMap::with_capacity(customers.len());
        for chunk in customers.chunks(1_000) {
            let sql = format!(
                "SELECT c.id, c.name, c.traits, s.name AS member_name, cc.name AS code_name \
                 FROM customers c \
                 LEFT JOIN staff s ON s.tenant_id = c.tenant_id AND s.id = c.owner_staff_id \
                 LEFT JOIN channel_first_touch f ON f.tenant_id = c.tenant_id AND f.customer_id = c.id \
                 LEFT JOIN channel_codes cc ON cc.tenant_id = f.tenant_id AND cc.id = f.code_id \
                 WHERE c.tenant_id = $1 AND c.erased_at IS NULL AND c.id IN ({})",
                id_list(chunk)
            );
            let rows: Vec<Row> = on_db!(self.store, |db| {
                sqlx::query_as(&sql)
                    .bind(self.tenant.0)
                    .fetch_all(db)
                    .await?
            });
            for r in rows {
                let traits = match serde_json::from_str(&r.traits) {
                    Ok(serde_json::Value::Object(traits)) => traits,
                    _ => serde_json::Map::new(),
                };
                values.insert(
                    r.id,
                    TemplateValues {
                        customer_name: r.name,
                        traits,
                        member_name: r.member_name,
                        code_name: r.code_name,
                        brand_name: Some(brand.clone()),
                    },
                );
            }
        }
        Ok(values)
    }
}
