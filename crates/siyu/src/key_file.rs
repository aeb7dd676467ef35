//! The secret key of an embedded database: without `SIYU_SECRET_KEY`, a SQLite database
//! gets a key file beside it (`PATH.key`, mode 0600, made once and reused), so connector
//! secrets can be sealed on the embedded default and opened after a restart. A server
//! on PostgreSQL has no such file: its key must be given, and storing a secret without
//! one is refused naming the setting.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use siyu_domain::secret::SecretKey;

/// Where the key of a SQLite database's file lives (`None` for PostgreSQL and for a
/// database in memory).
pub fn beside(url: &str) -> Option<PathBuf> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path.starts_with(":memory:") {
        return None;
    }
    Some(PathBuf::from(format!("{path}.key")))
}

/// A key read from its file, or made now.
pub struct LoadedKey {
    pub key: String,
    /// Made by this call: the database must not hold secrets sealed with another.
    pub created: bool,
}

/// Reads the key in `path`, or makes one there: written whole to a file readable by
/// its owner only from the start (mode 0600), then linked into place, so a crash leaves
/// no half-written key and two servers starting together end up with the same one.
pub fn load_or_create(path: &Path) -> anyhow::Result<LoadedKey> {
    if let Some(key) = read(path)? {
        return Ok(LoadedKey {
            key,
            created: false,
        });
    }
    let key = SecretKey::generate_base64();
    let staged = path.with_extension(format!("key.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&staged)
        .with_context(|| format!("cannot write a secret key to {}", staged.display()))?;
    file.write_all(format!("{key}\n").as_bytes())?;
    file.sync_all()?;
    drop(file);
    let linked = std::fs::hard_link(&staged, path);
    let _ = std::fs::remove_file(&staged);
    match linked {
        Ok(()) => Ok(LoadedKey { key, created: true }),
        // another process made it first: theirs is the key
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(LoadedKey {
            key: read(path)?.context("the secret key file is empty")?,
            created: false,
        }),
        Err(e) => {
            Err(e).with_context(|| format!("cannot write a secret key to {}", path.display()))
        }
    }
}

fn read(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(key) => {
            let key = key.trim().to_owned();
            SecretKey::from_base64(&key)
                .with_context(|| format!("the secret key in {} is not valid", path.display()))?;
            Ok(Some(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sqlite_file_has_its_key_beside_it_and_memory_or_postgres_none() {
        assert_eq!(
            beside("sqlite://data/siyu.db?mode=rwc"),
            Some(PathBuf::from("data/siyu.db.key"))
        );
        assert_eq!(beside("sqlite:siyu.db"), Some(PathBuf::from("siyu.db.key")));
        assert_eq!(beside("sqlite::memory:"), None);
        assert_eq!(beside("postgres://localhost/siyu"), None);
    }

    #[test]
    fn the_key_is_made_once_owner_only_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("siyu.db.key");
        let made = load_or_create(&path).unwrap();
        assert!(made.created);
        let again = load_or_create(&path).unwrap();
        assert_eq!((again.key, again.created), (made.key, false));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no staged file left"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        assert!(load_or_create(&path).is_err());
    }
}
