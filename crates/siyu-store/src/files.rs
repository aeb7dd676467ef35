//! Files kept for work that runs later, or on another node: an import's upload now;
//! exports and the content library later. A file is a row of `files` (migration 17:
//! tenant, name, content type, size, SHA-256, time) and its bytes.
//!
//! # Where the bytes are, and why the two databases differ
//! A file must be readable by whichever node runs the work it is for.
//! - **PostgreSQL**: in the row (`content`, `bytea`). Several `siyu serve` processes on
//!   several machines share the database and nothing else; a node's own disk is not
//!   where another node can read, and the database already is (and is backed up). A
//!   file is written in the caller's transaction, so it exists exactly when the change
//!   that made it (an import and its job) committed.
//! - **SQLite**: in the data directory, beside the database file (`PATH.files/`, as the
//!   ingest log is `PATH.ingest`). Every process of a SQLite database is on the machine
//!   that holds the file, so the directory is where they all read; and the bytes stay
//!   out of the database file, which runs with `secure_delete` and a write-ahead log
//!   (a large file would be written three times and zeroed once more when deleted). The
//!   bytes are written under a temporary name, synced, renamed and the directory synced
//!   **before** the row commits, so a row never names bytes that are not whole on disk.
//!   Bytes without a row (their transaction rolled back, or the process died between the
//!   two) are removed by [`Store::sweep_files`] an hour later, and bytes whose row was
//!   deleted are removed just after the delete commits (or by the sweep, after a crash).
//!   An in-memory database (tests) has no directory and keeps the bytes in the row.
//!
//! Reading a file checks its size and SHA-256: bytes changed or cut short on disk are
//! an error ([`StoreError::Corrupt`]), never imported.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use siyu_domain::DomainError;
use siyu_domain::ids::{FileId, TenantId};

use crate::db::{now_ms, on_db};
use crate::tx::{Tx, on_tx};
use crate::{Result, Store, StoreError, TenantScope};

/// A stored file, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub id: FileId,
    pub name: String,
    pub content_type: String,
    /// In bytes.
    pub size: i64,
    /// Lowercase hex.
    pub sha256: String,
    pub created_at: i64,
}

/// Bytes made ready to be recorded ([`Store::stage_file`]): on disk already (SQLite) or
/// to be written with the row.
pub(crate) struct StagedFile {
    key: Option<String>,
    size: i64,
    sha256: String,
}

/// Bytes on disk whose row was deleted: removed once the deleting transaction committed
/// ([`Store::discard_files`]).
#[must_use = "remove the bytes once the transaction committed"]
pub(crate) struct Discarded(Vec<String>);

/// How long bytes may sit in the directory without a row before the sweep removes them
/// (a put whose transaction is still open keeps its bytes well within it).
const ORPHAN_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);
/// The prefix of bytes being written.
const TEMP_PREFIX: &str = ".tmp-";

#[derive(sqlx::FromRow)]
struct FileRow {
    id: i64,
    name: String,
    content_type: String,
    size: i64,
    sha256: String,
    storage_key: Option<String>,
    created_at: i64,
}

impl From<&FileRow> for FileInfo {
    fn from(r: &FileRow) -> Self {
        FileInfo {
            id: FileId(r.id),
            name: r.name.clone(),
            content_type: r.content_type.clone(),
            size: r.size,
            sha256: r.sha256.clone(),
            created_at: r.created_at,
        }
    }
}

const FILE_COLUMNS: &str = "id, name, content_type, size, sha256, storage_key, created_at";

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn io_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Files {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `bytes` as `dir/key`, whole or not at all: a temporary name, synced, renamed,
/// and the directory synced so the rename survives a crash.
fn write_durably(dir: &Path, key: &str, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let temp = dir.join(format!("{TEMP_PREFIX}{key}"));
    let target = dir.join(key);
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(io_error(&temp, e));
    }
    std::fs::rename(&temp, &target).map_err(|e| io_error(&target, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, e))
}

impl Store {
    /// Where this store keeps the bytes of files: the directory beside a SQLite file;
    /// `None` for PostgreSQL and an in-memory SQLite database, which keep them in rows.
    pub fn files_dir(&self) -> Option<&Path> {
        self.files_dir.as_deref().map(PathBuf::as_path)
    }

    /// Makes bytes ready to be recorded by [`insert_file_in`], and hands them back: their
    /// SHA-256 is taken, and on SQLite with a directory they are written to it now,
    /// before the transaction that records them begins (it may hold the database's
    /// write lock; writing and syncing megabytes is not done under it). Both on a
    /// blocking thread, off the async workers.
    pub(crate) async fn stage_file(&self, bytes: Vec<u8>) -> Result<(StagedFile, Vec<u8>)> {
        let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        let dir = self.files_dir.clone();
        tokio::task::spawn_blocking(move || {
            let sha256 = sha256_hex(&bytes);
            let key = match dir {
                Some(dir) => {
                    let key = uuid::Uuid::new_v4().simple().to_string();
                    write_durably(&dir, &key, &bytes)?;
                    Some(key)
                }
                None => None,
            };
            Ok((StagedFile { key, size, sha256 }, bytes))
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("writing a file stopped: {e}")))?
    }

    /// Removes the bytes of deleted files from the directory (after the deleting
    /// transaction committed). A failure is logged: the sweep removes them later.
    pub(crate) async fn discard_files(&self, discarded: Discarded) {
        let (Some(dir), false) = (self.files_dir.clone(), discarded.0.is_empty()) else {
            return;
        };
        let _ = tokio::task::spawn_blocking(move || {
            for key in discarded.0 {
                let path = dir.join(&key);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot remove a deleted file's bytes")
                    }
                }
            }
        })
        .await;
    }

    /// Removes bytes in the files directory (SQLite) that no row names and that are over
    /// an hour old: those of a transaction that rolled back, or of a process that died
    /// between writing them and committing, or between deleting a row and its bytes.
    /// Answers how many were removed. Run when the store is migrated (each start).
    pub async fn sweep_files(&self) -> Result<u64> {
        let Some(dir) = self.files_dir.clone() else {
            return Ok(0);
        };
        let listed = dir.clone();
        let old: Vec<(String, PathBuf)> = tokio::task::spawn_blocking(move || {
            let entries = match std::fs::read_dir(listed.as_path()) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io_error(listed.as_path(), e)),
            };
            let mut old = Vec::new();
            for entry in entries.flatten() {
                let aged = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > ORPHAN_AFTER);
                if aged {
                    old.push((
                        entry.file_name().to_string_lossy().into_owned(),
                        entry.path(),
                    ));
                }
            }
            Ok(old)
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("listing files stopped: {e}")))??;
        let mut orphans = Vec::new();
        for chunk in old.chunks(500) {
            let keys: Vec<&str> = chunk
                .iter()
                .map(|(k, _)| k.as_str())
                .filter(|k| !k.starts_with(TEMP_PREFIX))
                .collect();
            let known: Vec<String> = if keys.is_empty() {
                Vec::new()
            } else {
                let marks = (1..=keys.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(",");
                let sql = format!("SELECT storage_key FROM files WHERE storage_key IN ({marks})");
                on_db!(self, |db| {
                    let mut query = sqlx::query_scalar(&sql);
                    for key in &keys {
                        query = query.bind(*key);
                    }
                    query.fetch_all(db).await?
                })
            };
            orphans.extend(
                chunk
                    .iter()
                    .filter(|(key, _)| !known.contains(key))
                    .map(|(key, _)| key.clone()),
            );
        }
        let n = orphans.len() as u64;
        if n > 0 {
            tracing::info!(files = n, dir = %dir.display(), "removing bytes no file row names");
            self.discard_files(Discarded(orphans)).await;
        }
        Ok(n)
    }
}

/// Records a file in the caller's transaction: it exists if and only if the transaction
/// commits (its bytes were staged by [`Store::stage_file`]; on PostgreSQL they go in the
/// row here).
pub(crate) async fn insert_file_in(
    tx: &mut Tx,
    tenant: TenantId,
    name: &str,
    content_type: &str,
    staged: StagedFile,
    bytes: &[u8],
) -> Result<FileInfo> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(
            DomainError::invalid("name", "a file needs a name of 1 to 255 characters").into(),
        );
    }
    if content_type.is_empty() || content_type.len() > 255 {
        return Err(DomainError::invalid("content_type", "1 to 255 characters").into());
    }
    let content = staged.key.is_none().then_some(bytes);
    let now = now_ms();
    let sql = format!(
        "INSERT INTO files (tenant_id, name, content_type, size, sha256, storage_key, content, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {FILE_COLUMNS}"
    );
    let row: FileRow = on_tx!(tx, |c| {
        sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(name)
            .bind(content_type)
            .bind(staged.size)
            .bind(&staged.sha256)
            .bind(&staged.key)
            .bind(content)
            .bind(now)
            .fetch_one(&mut *c)
            .await?
    });
    Ok(FileInfo::from(&row))
}

/// Deletes a file's row in the caller's transaction; answers whether there was one, and
/// the bytes to remove from disk once it commits ([`Store::discard_files`]).
pub(crate) async fn delete_file_in(
    tx: &mut Tx,
    tenant: TenantId,
    id: FileId,
) -> Result<(bool, Discarded)> {
    let key: Option<Option<String>> = on_tx!(tx, |c| {
        sqlx::query_scalar(
            "DELETE FROM files WHERE tenant_id = $1 AND id = $2 RETURNING storage_key",
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_optional(&mut *c)
        .await?
    });
    Ok(match key {
        None => (false, Discarded(Vec::new())),
        Some(key) => (true, Discarded(key.into_iter().collect())),
    })
}

impl TenantScope<'_> {
    /// Stores a file of the tenant; see the module docs for where its bytes go.
    pub async fn put_file(&self, name: &str, content_type: &str, bytes: &[u8]) -> Result<FileInfo> {
        let (staged, bytes) = self.store.stage_file(bytes.to_vec()).await?;
        let mut tx = self.store.begin().await?;
        let info = insert_file_in(&mut tx, self.tenant, name, content_type, staged, &bytes).await?;
        tx.commit().await?;
        Ok(info)
    }

    /// A file of the tenant, without its bytes; another tenant's is not found.
    pub async fn file_info(&self, id: FileId) -> Result<FileInfo> {
        Ok(FileInfo::from(&self.file_row(id).await?))
    }

    async fn file_row(&self, id: FileId) -> Result<FileRow> {
        let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE tenant_id = $1 AND id = $2");
        let row: Option<FileRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        row.ok_or(StoreError::NotFound("file"))
    }

    /// A file of the tenant with its bytes, checked against its size and SHA-256.
    pub async fn get_file(&self, id: FileId) -> Result<(FileInfo, Vec<u8>)> {
        let row = self.file_row(id).await?;
        let info = FileInfo::from(&row);
        let bytes = match (&row.storage_key, &self.store.files_dir) {
            (Some(key), Some(dir)) => {
                let path = dir.join(key);
                tokio::task::spawn_blocking(move || {
                    std::fs::read(&path).map_err(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => StoreError::Corrupt(format!(
                            "file {}: its bytes are missing from {}",
                            id,
                            path.display()
                        )),
                        _ => io_error(&path, e),
                    })
                })
                .await
                .map_err(|e| StoreError::Corrupt(format!("reading a file stopped: {e}")))??
            }
            (Some(_), None) => {
                return Err(StoreError::Corrupt(format!(
                    "file {id} is kept in a files directory this database has none of"
                )));
            }
            (None, _) => {
                let content: Option<Option<Vec<u8>>> = on_db!(self.store, |db| {
                    sqlx::query_scalar("SELECT content FROM files WHERE tenant_id = $1 AND id = $2")
                        .bind(self.tenant.0)
                        .bind(id.0)
                        .fetch_optional(db)
                        .await?
                });
                content
                    .ok_or(StoreError::NotFound("file"))?
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "file {id} has neither bytes nor a place on disk"
                        ))
                    })?
            }
        };
        if bytes.len() as i64 != info.size || sha256_hex(&bytes) != info.sha256 {
            return Err(StoreError::Corrupt(format!(
                "file {id}: its bytes do not match their size and SHA-256 (changed or cut short)"
            )));
        }
        Ok((info, bytes))
    }

    /// Deletes a file of the tenant and its bytes; another tenant's is not found.
    pub async fn delete_file(&self, id: FileId) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let (found, discarded) = delete_file_in(&mut tx, self.tenant, id).await?;
        tx.commit().await?;
        self.store.discard_files(discarded).await;
        if found {
            Ok(())
        } else {
            Err(StoreError::NotFound("file"))
        }
    }
}
