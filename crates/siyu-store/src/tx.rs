//! Transactions that span several statements on either database, and statements built
//! at run time (multi-row inserts).

use siyu_domain::ids::TenantId;
use sqlx::{Postgres, Sqlite};

use crate::db::Pool;
use crate::{Result, Store};

/// An open transaction on either database.
pub(crate) enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// Runs the same code on the transaction's connection, whichever database it is.
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            $crate::tx::Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::tx::Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

impl Store {
    pub(crate) async fn begin(&self) -> Result<Tx> {
        Ok(match &self.pool {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin().await?),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// A transaction that reads what it is about to change and must not be overtaken
    /// (claiming jobs): on SQLite it takes the write lock at once (`BEGIN IMMEDIATE`), so
    /// it never fails half-way upgrading a read to a write; on PostgreSQL it is a plain
    /// transaction, whose statements lock the rows they take.
    pub(crate) async fn begin_writing(&self) -> Result<Tx> {
        Ok(match &self.pool {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// A transaction that will change the customers of these tenants from what it reads
    /// of them (ingestion caches profiles; an erasure or an undo rewrites them). Such
    /// transactions take turns per tenant, so none writes back what another changed
    /// meanwhile: on SQLite by taking the database's write lock at once (`BEGIN
    /// IMMEDIATE`), on PostgreSQL by an advisory lock per tenant, taken in tenant order
    /// so two transactions cannot wait on each other.
    pub(crate) async fn begin_changing_customers(&self, tenants: &[TenantId]) -> Result<Tx> {
        Ok(match &self.pool {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(p) => {
                let mut tx = Tx::Postgres(p.begin().await?);
                lock_customers(&mut tx, tenants).await?;
                tx
            }
        })
    }
}

/// Takes the customer locks of these tenants inside a PostgreSQL transaction begun
/// otherwise (see [`Store::begin_changing_customers`]); on SQLite the transaction must
/// have been begun `IMMEDIATE`, which already excludes every other writer.
pub(crate) async fn lock_customers(tx: &mut Tx, tenants: &[TenantId]) -> Result<()> {
    if let Tx::Postgres(tx) = tx {
        let mut tenants = tenants.to_vec();
        tenants.sort();
        tenants.dedup();
        for tenant in tenants {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(CUSTOMER_LOCK | tenant.0)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

/// The class of PostgreSQL advisory locks that guard a tenant's customers ("SY" in the
/// high bytes, the tenant id in the low ones).
const CUSTOMER_LOCK: i64 = 0x5359_0000_0000_0000;
/// The class of PostgreSQL advisory locks that guard a connector's call counts ("SC").
const CONNECTOR_CALLS_LOCK: i64 = 0x5343_0000_0000_0000;
/// The class of PostgreSQL advisory locks that make taking a connector's relation
/// changes and applying them take turns ("SR").
const RELATION_CHANGES_LOCK: i64 = 0x5352_0000_0000_0000;
/// The class of PostgreSQL advisory locks that guard a tenant's unit tree ("SU").
const UNIT_TREE_LOCK: i64 = 0x5355_0000_0000_0000;

/// Takes the turn of these connectors' relation changes (in id order) in the caller's
/// transaction: on PostgreSQL their advisory locks; on SQLite a writing transaction
/// already has the turn.
pub(crate) async fn lock_relation_changes(
    tx: &mut Tx,
    connectors: &[siyu_domain::ids::ConnectorId],
) -> Result<()> {
    if let Tx::Postgres(tx) = tx {
        let mut ids: Vec<i64> = connectors.iter().map(|c| c.0).collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(RELATION_CHANGES_LOCK | id)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

impl Store {
    /// A transaction that counts calls through a connector from what it reads of the
    /// counts (every node's calls against one limit): on SQLite the write lock at once,
    /// on PostgreSQL the connector's advisory lock, so two nodes cannot both take the
    /// last of a window.
    pub(crate) async fn begin_connector_calls(
        &self,
        connector: siyu_domain::ids::ConnectorId,
    ) -> Result<Tx> {
        Ok(match &self.pool {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(CONNECTOR_CALLS_LOCK | connector.0)
                    .execute(&mut *tx)
                    .await?;
                Tx::Postgres(tx)
            }
        })
    }

    /// A transaction that will change a tenant's unit tree from what it reads of it (a
    /// move checked against the tree as it is). Such transactions take turns per tenant,
    /// so two moves on two servers cannot together make a cycle.
    pub(crate) async fn begin_changing_units(&self, tenant: TenantId) -> Result<Tx> {
        Ok(match &self.pool {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(UNIT_TREE_LOCK | tenant.0)
                    .execute(&mut *tx)
                    .await?;
                Tx::Postgres(tx)
            }
        })
    }
}

impl Tx {
    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// Placeholders for a statement built at run time, in the order they appear (which is
/// the order values are bound). SQLite gets anonymous `?`: sqlx looks each numbered one
/// up by name, which costs time proportional to the number of parameters, and
/// multi-row statements have thousands.
pub(crate) struct Placeholders {
    sqlite: bool,
    n: usize,
}

impl Placeholders {
    pub(crate) fn for_tx(tx: &Tx) -> Self {
        Self {
            sqlite: matches!(tx, Tx::Sqlite(_)),
            n: 0,
        }
    }

    pub(crate) fn for_backend(backend: crate::Backend) -> Self {
        Self {
            sqlite: matches!(backend, crate::Backend::Sqlite),
            n: 0,
        }
    }

    pub(crate) fn next(&mut self) -> String {
        self.n += 1;
        if self.sqlite {
            "?".to_owned()
        } else {
            format!("${}", self.n)
        }
    }

    /// `(p, p, …)` with `count` placeholders.
    pub(crate) fn row(&mut self, count: usize) -> String {
        let list: Vec<String> = (0..count).map(|_| self.next()).collect();
        format!("({})", list.join(","))
    }
}
