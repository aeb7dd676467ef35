//! Fresh databases for tests (feature `testing`).
//!
//! The backend follows `SIYU_TEST_DATABASE_URL`: unset, each test gets a SQLite file in a
//! temporary directory; set to a PostgreSQL URL, each test gets a new database on that
//! server (`siyu_t_<random>`), dropped when the test ends. So one suite runs unchanged on
//! both backends, and tests never share data.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{ConnectOptions, Connection};

use crate::{Store, StoreOptions};
use siyu_domain::secret::SecretKey;

pub const TEST_DATABASE_URL_VAR: &str = "SIYU_TEST_DATABASE_URL";

/// A database that exists for one test.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// Creates an empty database on the configured backend.
    pub async fn create() -> TestDatabase {
        match std::env::var(TEST_DATABASE_URL_VAR)
            .ok()
            .filter(|u| !u.is_empty())
        {
            Some(server) if server.starts_with("postgres") => {
                let name = format!("siyu_t_{}", uuid::Uuid::new_v4().simple());
                let mut admin = PgConnectOptions::from_str(&server)
                    .expect("SIYU_TEST_DATABASE_URL is a valid postgres url")
                    .connect()
                    .await
                    .expect("the test PostgreSQL server answers");
                sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut admin)
                    .await
                    .expect("can create a test database");
                let _ = admin.close().await;
                let url = with_database(&server, &name);
                TestDatabase {
                    url,
                    _dir: None,
                    postgres: Some((server, name)),
                }
            }
            Some(other) => panic!("{TEST_DATABASE_URL_VAR} must be a postgres:// url, not {other}"),
            None => {
                let dir = tempfile::tempdir().expect("can create a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("siyu.db").display());
                TestDatabase {
                    url,
                    _dir: Some(dir),
                    postgres: None,
                }
            }
        }
    }

    /// Opens the database as a migrated store, with a fresh secret key.
    pub async fn store(&self) -> Store {
        let options = StoreOptions {
            max_connections: 5,
            secret_key: Some(SecretKey::from_base64(&SecretKey::generate_base64()).unwrap()),
            ..StoreOptions::default()
        };
        let store = Store::connect(&self.url, options)
            .await
            .expect("test database opens");
        store.migrate().await.expect("migrations apply");
        store
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }
}

/// The same server URL with another database name.
fn with_database(server: &str, name: &str) -> String {
    let mut url = url::Url::parse(server).expect("valid postgres url");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((server, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs outside any async context we can rely on: use a thread of our own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let pool = PgPool::connect(&server).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&pool)
                    .await
                    .ok()?;
                pool.close().await;
                Some(())
            })
        })
        .join();
    }
}

pub mod module_graph;
