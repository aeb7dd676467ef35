//! The data layer's error type, with database error codes mapped once to what they mean.

use siyu_domain::DomainError;
use siyu_domain::secret::SecretError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such object in this tenant (whether it exists elsewhere is not said).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique constraint refused the write; the text names what is taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// Other rows still refer to the object, or a rule of the data forbids the change.
    #[error("{0}")]
    Conflict(String),
    /// The change would reach past the customers the scope may reach (handing customers
    /// to staff outside it, undoing a merge that brings back someone outside it).
    #[error("{0}")]
    OutOfReach(String),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("cannot open the database at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("unsupported database url {url}: use sqlite://PATH or postgres://HOST/DB")]
    UnsupportedUrl { url: String },
    #[error("cannot apply migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("no secret key is configured (set SIYU_SECRET_KEY) so secrets cannot be stored")]
    NoSecretKey,
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// Reading or writing the bytes of a stored file on disk failed (SQLite's files
    /// directory; see `files`).
    #[error("cannot use the stored file {path}: {source}")]
    Files {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A stored value that the schema should have made impossible.
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// Whether trying again later may well succeed: the database busy or locked,
    /// unreachable, out of connections, or a transaction picked as a deadlock or
    /// serialization victim. Anything else is about the data or the code.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Connect { .. } => true,
            StoreError::Database(sqlx::Error::Database(e)) => matches!(
                e.code().as_deref(),
                // SQLite: BUSY, LOCKED and their extended codes
                Some("5" | "6" | "261" | "262" | "517" | "773")
                // PostgreSQL: serialization failure, deadlock, lock not available,
                // shutting down, too many connections
                | Some("40001" | "40P01" | "55P03" | "57P01" | "57P03" | "53300")
            ),
            StoreError::Database(
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed,
            ) => true,
            _ => false,
        }
    }

    /// Turns a unique or foreign-key violation into the error a caller can act on.
    /// `taken` is said when a unique constraint fails, `in_use` when a foreign key does.
    pub(crate) fn from_constraint(err: sqlx::Error, taken: &str, in_use: &str) -> StoreError {
        if let sqlx::Error::Database(db) = &err {
            if db.is_unique_violation() {
                return StoreError::AlreadyExists(taken.to_owned());
            }
            if db.is_foreign_key_violation() {
                return StoreError::Conflict(in_use.to_owned());
            }
        }
        StoreError::Database(err)
    }
}

/// A database URL safe to print: the password, if any, replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => match url.split_once('@') {
            // unparseable but might hold credentials: keep only what follows them
            Some((_, rest)) => format!("***@{rest}"),
            None => url.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_print() {
        assert_eq!(
            redact_url("postgres://siyu:hunter2@db:5432/siyu"),
            "postgres://siyu:***@db:5432/siyu"
        );
        assert_eq!(
            redact_url("postgres://127.0.0.1:5432/test"),
            "postgres://127.0.0.1:5432/test"
        );
        assert_eq!(redact_url("sqlite://siyu.db"), "sqlite://siyu.db");
        assert!(!redact_url("postgres://u:p@ss w@rd@h/db").contains("ss w"));
    }

    #[test]
    fn only_a_busy_or_unreachable_database_is_transient() {
        assert!(StoreError::Database(sqlx::Error::PoolTimedOut).is_transient());
        assert!(
            StoreError::Database(sqlx::Error::Io(std::io::ErrorKind::BrokenPipe.into()))
                .is_transient()
        );
        assert!(!StoreError::Database(sqlx::Error::RowNotFound).is_transient());
        assert!(!StoreError::Corrupt("bad".into()).is_transient());
        assert!(!StoreError::NotFound("customer").is_transient());
    }
}
