//! Quick replies (`quick_replies`, `quick_reply_groups`, `quick_reply_uses`): the
//! tenant's library (no owner) and each member of staff's personal one.
//!
//! Who sees what is decided here, for every read and write: the tenant's library and
//! the caller's own personal library (`me`), never another's personal one (not found).
//! The tenant's library is changed only by callers with `content.write` (the route's
//! check), and, as the content library, by staff who reach whoever made the reply.
//!
//! Search reads the visible replies holding any of the query's terms (or the whole
//! query) and ranks them here (`siyu_domain::engagement::quick_reply::match_score`): a
//! library is hundreds or a few thousand replies, not millions.

use serde_json::json;
use siyu_domain::DomainError;
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::engagement::quick_reply::{
    QuickReply, QuickReplyGroup, QuickReplyGroupSpec, QuickReplyLibrary, QuickReplySpec,
    match_score, query_terms,
};
use siyu_domain::ids::{ContentItemId, QuickReplyGroupId, QuickReplyId, StaffId};
use siyu_domain::page::{Page, PageRequest};

use crate::audit;
use crate::db::{now_ms, on_db};
use crate::tx::on_tx;
use crate::{Result, StoreError, TenantScope};

const REPLY_COLUMNS: &str = "id, owner_staff_id, group_id, title, text, content_id, terms, \
     use_count, last_used_at, created_by_staff_id, created_at, updated_at";

/// A group with its number of replies (`g`: `quick_reply_groups`).
const GROUP_SELECT: &str = "SELECT g.id, g.owner_staff_id, g.name, g.position, g.created_at, \
     (SELECT COUNT(*) FROM quick_replies r \
      WHERE r.tenant_id = g.tenant_id AND r.group_id = g.id) AS replies \
     FROM quick_reply_groups g";

/// The most replies a search answers.
pub const MAX_SEARCH_RESULTS: usize = 50;
/// The most candidates a search ranks.
const MAX_CANDIDATES: i64 = 2_000;

#[derive(sqlx::FromRow)]
struct ReplyRow {
    id: i64,
    owner_staff_id: Option<i64>,
    group_id: Option<i64>,
    title: String,
    text: String,
    content_id: Option<i64>,
    terms: String,
    use_count: i64,
    last_used_at: Option<i64>,
    created_by_staff_id: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl From<ReplyRow> for QuickReply {
    fn from(r: ReplyRow) -> Self {
        QuickReply {
            id: QuickReplyId(r.id),
            library: library_of(r.owner_staff_id),
            group_id: r.group_id.map(QuickReplyGroupId),
            title: r.title,
            text: r.text,
            content_id: r.content_id.map(ContentItemId),
            use_count: r.use_count,
            last_used_at: r.last_used_at,
            created_by: r.created_by_staff_id.map(StaffId),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct GroupRow {
    id: i64,
    owner_staff_id: Option<i64>,
    name: String,
    position: i64,
    created_at: i64,
    replies: i64,
}

impl From<GroupRow> for QuickReplyGroup {
    fn from(r: GroupRow) -> Self {
        QuickReplyGroup {
            id: QuickReplyGroupId(r.id),
            library: library_of(r.owner_staff_id),
            name: r.name,
            position: r.position,
            replies: r.replies,
            created_at: r.created_at,
        }
    }
}

fn library_of(owner: Option<i64>) -> QuickReplyLibrary {
    match owner {
        None => QuickReplyLibrary::Tenant,
        Some(_) => QuickReplyLibrary::Personal,
    }
}

/// Which replies a list shows (all given must hold).
#[derive(Debug, Clone, Default)]
pub struct QuickReplyFilter {
    pub library: Option<QuickReplyLibrary>,
    pub group_id: Option<QuickReplyGroupId>,
}

/// The owner stored for a library: none for the tenant's, the caller for a personal one
/// (a caller who is not staff, an API token, has none).
fn owner_for(library: QuickReplyLibrary, me: Option<StaffId>) -> Result<Option<i64>> {
    match library {
        QuickReplyLibrary::Tenant => Ok(None),
        QuickReplyLibrary::Personal => me.map(|s| Some(s.0)).ok_or_else(|| {
            StoreError::Domain(DomainError::invalid(
                "library",
                "a personal library is a member of staff's: sign in as one, or use the tenant's",
            ))
        }),
    }
}

/// `me` as bound in `owner_staff_id = $n` (-1: nobody's).
fn me_or_nobody(me: Option<StaffId>) -> i64 {
    me.map_or(-1, |s| s.0)
}

impl TenantScope<'_> {
    /// The groups the caller sees (the tenant's and their own), by library, position
    /// and name, each with its number of replies.
    pub async fn list_quick_reply_groups(
        &self,
        me: Option<StaffId>,
    ) -> Result<Vec<QuickReplyGroup>> {
        let rows: Vec<GroupRow> = on_db!(self.store, |db| {
            sqlx::query_as(&format!(
                "{GROUP_SELECT} WHERE g.tenant_id = $1 \
                 AND (g.owner_staff_id IS NULL OR g.owner_staff_id = $2) \
                 ORDER BY (g.owner_staff_id IS NULL) DESC, g.position, g.name, g.id"
            ))
            .bind(self.tenant.0)
            .bind(me_or_nobody(me))
            .fetch_all(db)
            .await?
        });
        Ok(rows.into_iter().map(QuickReplyGroup::from).collect())
    }

    /// A group the caller sees.
    pub async fn get_quick_reply_group(
        &self,
        id: QuickReplyGroupId,
        me: Option<StaffId>,
    ) -> Result<QuickReplyGroup> {
        let row: Option<GroupRow> = on_db!(self.store, |db| {
            sqlx::query_as(&format!(
                "{GROUP_SELECT} WHERE g.tenant_id = $1 AND g.id = $2 \
                 AND (g.owner_staff_id IS NULL OR g.owner_staff_id = $3)"
            ))
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(me_or_nobody(me))
            .fetch_optional(db)
            .await?
        });
        row.map(QuickReplyGroup::from)
            .ok_or(StoreError::NotFound("quick reply group"))
    }

    pub async fn create_quick_reply_group(
        &self,
        spec: &QuickReplyGroupSpec,
        me: Option<StaffId>,
    ) -> Result<QuickReplyGroup> {
        let owner = owner_for(spec.library, me)?;
        let id: i64 = on_db!(self.store, |db| {
            sqlx::query_scalar(
                "INSERT INTO quick_reply_groups (tenant_id, owner_staff_id, name, position, \
                 created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(owner)
            .bind(&spec.name)
            .bind(spec.position)
            .bind(now_ms())
            .fetch_one(db)
            .await
            .map_err(|e| {
                StoreError::from_constraint(e, "a group of that name is in this library", "")
            })?
        });
        self.get_quick_reply_group(QuickReplyGroupId(id), me).await
    }

    /// Renames or moves a group the caller sees (the route checks who may change the
    /// tenant's library).
    pub async fn update_quick_reply_group(
        &self,
        group: &QuickReplyGroup,
        spec: &QuickReplyGroupSpec,
        me: Option<StaffId>,
    ) -> Result<QuickReplyGroup> {
        on_db!(self.store, |db| {
            sqlx::query(
                "UPDATE quick_reply_groups SET name = $1, position = $2 \
                 WHERE tenant_id = $3 AND id = $4",
            )
            .bind(&spec.name)
            .bind(spec.position)
            .bind(self.tenant.0)
            .bind(group.id.0)
            .execute(db)
            .await
            .map_err(|e| {
                StoreError::from_constraint(e, "a group of that name is in this library", "")
            })?;
        });
        self.get_quick_reply_group(group.id, me).await
    }

    /// Deletes an empty group (409 while it holds replies: move or delete them first).
    pub async fn delete_quick_reply_group(&self, group: &QuickReplyGroup) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let deleted = on_tx!(&mut tx, |c| {
            sqlx::query(
                "DELETE FROM quick_reply_groups WHERE tenant_id = $1 AND id = $2 \
                 AND NOT EXISTS (SELECT 1 FROM quick_replies \
                 WHERE tenant_id = $1 AND group_id = $2)",
            )
            .bind(self.tenant.0)
            .bind(group.id.0)
            .execute(&mut *c)
            .await
            .map_err(|e| {
                StoreError::from_constraint(
                    e,
                    "",
                    "the group holds replies: move or delete them first",
                )
            })?
            .rows_affected()
        });
        if deleted == 0 {
            return Err(StoreError::Conflict(
                "the group holds replies: move or delete them first".into(),
            ));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether what a reply names is the caller's to name: a group in the reply's own
    /// library, and a live item of the content library (422 naming the field). What a
    /// change leaves as it was (`before`) is not asked again: a reply whose item was
    /// deleted since keeps it and can still be changed otherwise.
    async fn check_quick_reply_spec(
        &self,
        spec: &QuickReplySpec,
        me: Option<StaffId>,
        before: Option<&QuickReply>,
    ) -> Result<()> {
        let group = spec
            .group_id
            .filter(|g| before.is_none_or(|b| b.group_id != Some(*g)));
        let item = spec
            .content_id
            .filter(|i| before.is_none_or(|b| b.content_id != Some(*i)));
        if let Some(group) = group {
            let found = self.get_quick_reply_group(group, me).await;
            match found {
                Ok(g) if g.library == spec.library => {}
                Ok(_) => {
                    return Err(StoreError::Domain(DomainError::invalid(
                        "group_id",
                        "the group is in the other library",
                    )));
                }
                Err(StoreError::NotFound(_)) => {
                    return Err(StoreError::Domain(DomainError::invalid(
                        "group_id",
                        "no such group",
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(item) = item {
            self.get_content_item(item).await.map_err(|e| match e {
                StoreError::NotFound(_) => {
                    StoreError::Domain(DomainError::invalid("content_id", "no such content item"))
                }
                e => e,
            })?;
        }
        Ok(())
    }

    /// Whether the caller may change a reply: their own personal one, or one of the
    /// tenant's made by staff they reach (or they reach the whole tenant).
    fn check_may_change_reply(&self, reply: &QuickReply) -> Result<()> {
        let allowed = reply.library == QuickReplyLibrary::Personal
            || self.reach().is_tenant_wide()
            || reply.created_by.is_some_and(|s| self.reaches(Some(s)));
        if allowed {
            Ok(())
        } else {
            Err(StoreError::OutOfReach(
                "only staff who reach whoever made a quick reply may change it".into(),
            ))
        }
    }

    pub async fn create_quick_reply(
        &self,
        spec: &QuickReplySpec,
        me: Option<StaffId>,
        actor: &Actor,
    ) -> Result<QuickReply> {
        let owner = owner_for(spec.library, me)?;
        self.check_quick_reply_spec(spec, me, None).await?;
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let id: i64 = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO quick_replies (tenant_id, owner_staff_id, group_id, title, text, \
                 content_id, terms, created_by_staff_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(owner)
            .bind(spec.group_id.map(|g| g.0))
            .bind(&spec.title)
            .bind(&spec.text)
            .bind(spec.content_id.map(|i| i.0))
            .bind(&spec.terms)
            .bind(me.map(|s| s.0))
            .bind(now)
            .fetch_one(&mut *c)
            .await?
        });
        if owner.is_none() {
            audit::record(
                &mut tx,
                self.tenant,
                actor,
                AuditRecord::new(action::QUICK_REPLY_CREATED, "quick_reply", id)
                    .with_details(json!({"title": spec.title})),
            )
            .await?;
        }
        tx.commit().await?;
        self.get_quick_reply(QuickReplyId(id), me).await
    }

    /// A reply the caller sees.
    pub async fn get_quick_reply(
        &self,
        id: QuickReplyId,
        me: Option<StaffId>,
    ) -> Result<QuickReply> {
        let sql = format!(
            "SELECT {REPLY_COLUMNS} FROM quick_replies WHERE tenant_id = $1 AND id = $2 \
             AND (owner_staff_id IS NULL OR owner_staff_id = $3)"
        );
        let row: Option<ReplyRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .bind(me_or_nobody(me))
                .fetch_optional(db)
                .await?
        });
        row.map(QuickReply::from)
            .ok_or(StoreError::NotFound("quick reply"))
    }

    /// The replies the caller sees that the filter keeps, newest first.
    pub async fn list_quick_replies(
        &self,
        filter: &QuickReplyFilter,
        me: Option<StaffId>,
        page: PageRequest,
    ) -> Result<Page<QuickReply>> {
        let sql = format!(
            "SELECT {REPLY_COLUMNS} FROM quick_replies WHERE tenant_id = $1 \
             AND (owner_staff_id IS NULL OR owner_staff_id = $2) AND id < $3 \
             AND ($4 IS NULL OR ($4 = 'tenant') = (owner_staff_id IS NULL)) \
             AND ($5 IS NULL OR group_id = $5) \
             ORDER BY id DESC LIMIT $6"
        );
        let before = match page.after_id() {
            0 => i64::MAX,
            after => after,
        };
        let rows: Vec<ReplyRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(me_or_nobody(me))
                .bind(before)
                .bind(filter.library.map(|l| l.as_str()))
                .bind(filter.group_id.map(|g| g.0))
                .bind(page.fetch_limit())
                .fetch_all(db)
                .await?
        });
        let replies = rows.into_iter().map(QuickReply::from).collect();
        Ok(Page::from_rows(replies, page, |r| r.id.0))
    }

    /// The replies the caller sees that match a query, best first (see the module
    /// docs), at most `limit` (and [`MAX_SEARCH_RESULTS`]).
    pub async fn search_quick_replies(
        &self,
        filter: &QuickReplyFilter,
        query: &str,
        me: Option<StaffId>,
        limit: usize,
    ) -> Result<Vec<QuickReply>> {
        let query = query.trim();
        let terms = query_terms(query);
        // $1–$5 as below, then one per term, then the limit; candidates are taken best
        // first by the same score as below, so a cap never drops a better match
        let whole =
            "(LOWER(title) LIKE LOWER($5) ESCAPE '\\' OR LOWER(text) LIKE LOWER($5) ESCAPE '\\')";
        let mut any = vec![whole.to_owned()];
        let mut score = vec![format!(
            "CASE WHEN {whole} THEN {} ELSE 0 END",
            terms.len().max(1)
        )];
        for n in 0..terms.len() {
            let held = format!("terms LIKE ${} ESCAPE '\\'", 6 + n);
            score.push(format!("CASE WHEN {held} THEN 1 ELSE 0 END"));
            any.push(held);
        }
        let sql = format!(
            "SELECT {REPLY_COLUMNS} FROM quick_replies WHERE tenant_id = $1 \
             AND (owner_staff_id IS NULL OR owner_staff_id = $2) \
             AND ($3 IS NULL OR ($3 = 'tenant') = (owner_staff_id IS NULL)) \
             AND ($4 IS NULL OR group_id = $4) \
             AND ({}) ORDER BY ({}) DESC, use_count DESC, id DESC LIMIT ${}",
            any.join(" OR "),
            score.join(" + "),
            6 + terms.len()
        );
        let whole_pattern = crate::engagement::content::contains_pattern(query);
        let term_patterns: Vec<String> = terms
            .iter()
            .map(|t| crate::engagement::content::contains_pattern(&format!(" {t} ")))
            .collect();
        let rows: Vec<ReplyRow> = on_db!(self.store, |db| {
            let mut q = sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(me_or_nobody(me))
                .bind(filter.library.map(|l| l.as_str()))
                .bind(filter.group_id.map(|g| g.0))
                .bind(&whole_pattern);
            for pattern in &term_patterns {
                q = q.bind(pattern);
            }
            q.bind(MAX_CANDIDATES).fetch_all(db).await?
        });
        let mut scored: Vec<(usize, ReplyRow)> = rows
            .into_iter()
            .map(|r| (match_score(&r.terms, &r.title, &r.text, query, &terms), r))
            .filter(|(score, _)| *score > 0)
            .collect();
        // stable: equals keep the database's order (most used, then newest)
        scored.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
        Ok(scored
            .into_iter()
            .take(limit.clamp(1, MAX_SEARCH_RESULTS))
            .map(|(_, r)| QuickReply::from(r))
            .collect())
    }

    /// Changes a reply the caller may change, as it was read (`reply`): a change made
    /// since is not overwritten (409).
    pub async fn update_quick_reply(
        &self,
        reply: &QuickReply,
        spec: &QuickReplySpec,
        me: Option<StaffId>,
        actor: &Actor,
    ) -> Result<QuickReply> {
        self.check_may_change_reply(reply)?;
        self.check_quick_reply_spec(spec, me, Some(reply)).await?;
        let mut tx = self.store.begin().await?;
        let changed = on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE quick_replies SET group_id = $1, title = $2, text = $3, \
                 content_id = $4, terms = $5, updated_at = $6 \
                 WHERE tenant_id = $7 AND id = $8 AND updated_at = $9",
            )
            .bind(spec.group_id.map(|g| g.0))
            .bind(&spec.title)
            .bind(&spec.text)
            .bind(spec.content_id.map(|i| i.0))
            .bind(&spec.terms)
            .bind(now_ms().max(reply.updated_at + 1))
            .bind(self.tenant.0)
            .bind(reply.id.0)
            .bind(reply.updated_at)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if changed == 0 {
            return Err(StoreError::Conflict(
                "the reply was changed or deleted since it was read: read it again".into(),
            ));
        }
        if reply.library == QuickReplyLibrary::Tenant {
            audit::record(
                &mut tx,
                self.tenant,
                actor,
                AuditRecord::new(action::QUICK_REPLY_UPDATED, "quick_reply", reply.id.0)
                    .with_details(json!({"title": spec.title})),
            )
            .await?;
        }
        tx.commit().await?;
        self.get_quick_reply(reply.id, me).await
    }

    /// Deletes a reply the caller may change, with its uses.
    pub async fn delete_quick_reply(&self, reply: &QuickReply, actor: &Actor) -> Result<()> {
        self.check_may_change_reply(reply)?;
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM quick_reply_uses WHERE tenant_id = $1 AND reply_id = $2")
                .bind(self.tenant.0)
                .bind(reply.id.0)
                .execute(&mut *c)
                .await?;
            sqlx::query("DELETE FROM quick_replies WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant.0)
                .bind(reply.id.0)
                .execute(&mut *c)
                .await?;
        });
        if reply.library == QuickReplyLibrary::Tenant {
            audit::record(
                &mut tx,
                self.tenant,
                actor,
                AuditRecord::new(action::QUICK_REPLY_DELETED, "quick_reply", reply.id.0)
                    .with_details(json!({"title": reply.title})),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Counts a use of a reply the caller sees, by them; answers the reply as counted.
    pub async fn record_quick_reply_use(
        &self,
        id: QuickReplyId,
        me: Option<StaffId>,
    ) -> Result<QuickReply> {
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let counted = on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE quick_replies SET use_count = use_count + 1, last_used_at = $1 \
                 WHERE tenant_id = $2 AND id = $3 \
                 AND (owner_staff_id IS NULL OR owner_staff_id = $4)",
            )
            .bind(now)
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(me_or_nobody(me))
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if counted == 0 {
            return Err(StoreError::NotFound("quick reply"));
        }
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "INSERT INTO quick_reply_uses (tenant_id, reply_id, staff_id, used_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(me.map(|s| s.0))
            .bind(now)
            .execute(&mut *c)
            .await?;
        });
        tx.commit().await?;
        self.get_quick_reply(id, me).await
    }
}
