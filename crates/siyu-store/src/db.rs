//! The plumbing every concern shares: the pool of either database, the macro that runs
//! one block of code on it, the clock every stored time comes from, and small helpers for
//! statements built at run time. Depends on no other module of the store.

use serde_json::{Map, Value};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same code on whichever pool the store has. `$db` is bound to the concrete
/// pool, so `sqlx::query(...).fetch_one($db)` compiles for each driver. Statements that
/// belong together run in a transaction instead: `Store::begin` and `on_tx!` (`tx`).
macro_rules! on_db {
    ($store:expr, |$db:ident| $body:expr) => {
        match &$store.pool {
            $crate::db::Pool::Sqlite($db) => $body,
            $crate::db::Pool::Postgres($db) => $body,
        }
    };
}
pub(crate) use on_db;

/// The current time in milliseconds since the Unix epoch, the unit of every stored time.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A list of ids for an `IN (…)` clause (ids are numbers, so nothing to escape).
pub(crate) fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// A JSON object stored as text (traits, properties); an unreadable one reads as empty.
pub(crate) fn parse_map(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}
