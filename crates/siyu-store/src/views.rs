//! Saved views: each staff member's own named searches of a list. Scoped by tenant and
//! staff member in every statement, so nobody reads or deletes another's.

use siyu_domain::ids::{SavedViewId, StaffId};
use siyu_domain::view::{MAX_VIEWS_PER_LIST, NewView, SavedView};

use crate::db::{now_ms, on_db};
use crate::tx::on_tx;
use crate::{Result, StoreError, TenantScope};

#[derive(sqlx::FromRow)]
struct ViewRow {
    id: i64,
    list: String,
    name: String,
    q: Option<String>,
    filter: Option<String>,
    updated_at: i64,
}

fn view_of(row: ViewRow) -> SavedView {
    SavedView {
        id: SavedViewId(row.id),
        list: row.list,
        name: row.name,
        q: row.q,
        filter: row.filter,
        updated_at: row.updated_at,
    }
}

impl TenantScope<'_> {
    /// A staff member's views of a list, by name.
    pub async fn list_views(&self, staff: StaffId, list: &str) -> Result<Vec<SavedView>> {
        let rows: Vec<ViewRow> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT id, list, name, q, filter, updated_at FROM saved_views \
                 WHERE tenant_id = $1 AND staff_id = $2 AND list = $3 ORDER BY name",
            )
            .bind(self.tenant.0)
            .bind(staff.0)
            .bind(list)
            .fetch_all(db)
            .await?
        });
        Ok(rows.into_iter().map(view_of).collect())
    }

    /// Saves a view under its name, replacing the staff member's view of that name.
    pub async fn save_view(&self, staff: StaffId, view: &NewView) -> Result<SavedView> {
        let now = now_ms();
        // it counts, then writes: on SQLite a deferred transaction whose read another
        // writer overtakes cannot become a writer (SQLITE_BUSY), so it takes the lock first
        let mut tx = self.store.begin_writing().await?;
        let row: ViewRow = on_tx!(&mut tx, |c| {
            let kept: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM saved_views WHERE tenant_id = $1 AND staff_id = $2 \
                 AND list = $3 AND name <> $4",
            )
            .bind(self.tenant.0)
            .bind(staff.0)
            .bind(&view.list)
            .bind(&view.name)
            .fetch_one(&mut *c)
            .await?;
            if kept >= MAX_VIEWS_PER_LIST {
                return Err(StoreError::Conflict(format!(
                    "you keep {MAX_VIEWS_PER_LIST} views of this list already: delete one first"
                )));
            }
            sqlx::query_as(
                "INSERT INTO saved_views (tenant_id, staff_id, list, name, q, filter, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (tenant_id, staff_id, list, name) \
                 DO UPDATE SET q = excluded.q, filter = excluded.filter, updated_at = excluded.updated_at \
                 RETURNING id, list, name, q, filter, updated_at",
            )
            .bind(self.tenant.0)
            .bind(staff.0)
            .bind(&view.list)
            .bind(&view.name)
            .bind(&view.q)
            .bind(&view.filter)
            .bind(now)
            .fetch_one(&mut *c)
            .await?
        });
        tx.commit().await?;
        Ok(view_of(row))
    }

    /// Deletes one of the staff member's views.
    pub async fn delete_view(&self, staff: StaffId, id: SavedViewId) -> Result<()> {
        let deleted = on_db!(self.store, |db| {
            sqlx::query(
                "DELETE FROM saved_views WHERE tenant_id = $1 AND staff_id = $2 AND id = $3",
            )
            .bind(self.tenant.0)
            .bind(staff.0)
            .bind(id.0)
            .execute(db)
            .await?
            .rows_affected()
        });
        if deleted == 0 {
            return Err(StoreError::NotFound("view"));
        }
        Ok(())
    }
}
