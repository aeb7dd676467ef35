//! The file store: bytes kept whole, checked when read, within their tenant; on SQLite in
//! the directory beside the database (an in-memory one keeps them in the row), on
//! PostgreSQL in the row; bytes no row names swept after an hour.

use std::time::{Duration, SystemTime};

use siyu_domain::ids::FileId;
use siyu_store::testing::TestDatabase;
use siyu_store::{Backend, Store, StoreError, StoreOptions};

use crate::support::{invalid_field, tenant};

/// A few megabytes that are not text, and differ everywhere.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[tokio::test]
async fn files_are_kept_whole_read_back_and_deleted_within_their_tenant() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let acme = store.tenant(tenant(&store, "acme").await.id);
    let other = store.tenant(tenant(&store, "other").await.id);
    let bytes = payload(3 << 20);
    let info = acme.put_file("会员.csv", "text/csv", &bytes).await.unwrap();
    assert_eq!(info.name, "会员.csv");
    assert_eq!(
        (info.size, info.content_type.as_str()),
        (3 << 20, "text/csv")
    );
    assert_eq!(info.sha256.len(), 64);
    let empty = acme.put_file("empty.csv", "text/csv", b"").await.unwrap();
    assert_ne!(empty.id, info.id);
    assert_eq!(acme.get_file(empty.id).await.unwrap().1, b"");

    let (read, back) = acme.get_file(info.id).await.unwrap();
    assert_eq!(read, info);
    assert!(back == bytes, "the bytes read back are the bytes stored");
    assert_eq!(acme.file_info(info.id).await.unwrap(), info);

    // where the bytes are
    match store.backend() {
        Backend::Sqlite => {
            let dir = store
                .files_dir()
                .expect("a SQLite file keeps a files directory");
            assert!(dir.to_string_lossy().ends_with(".db.files"), "{dir:?}");
            let on_disk: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
            assert_eq!(
                on_disk.len(),
                2,
                "one file per stored file, no temporaries left"
            );
            assert!(
                on_disk
                    .iter()
                    .any(|e| std::fs::read(e.path()).unwrap() == bytes)
            );
        }
        Backend::Postgres => assert!(store.files_dir().is_none()),
    }

    // another tenant's file is not found, whatever is asked of it
    for result in [
        other.get_file(info.id).await.map(|_| ()),
        other.file_info(info.id).await.map(|_| ()),
        other.delete_file(info.id).await,
    ] {
        assert!(
            matches!(result, Err(StoreError::NotFound("file"))),
            "{result:?}"
        );
    }
    assert!(acme.get_file(info.id).await.is_ok(), "still there");

    acme.delete_file(info.id).await.unwrap();
    assert!(matches!(
        acme.get_file(info.id).await,
        Err(StoreError::NotFound("file"))
    ));
    assert!(matches!(
        acme.delete_file(info.id).await,
        Err(StoreError::NotFound("file"))
    ));
    if let Some(dir) = store.files_dir() {
        assert_eq!(
            std::fs::read_dir(dir).unwrap().count(),
            1,
            "the deleted file's bytes are gone from the directory"
        );
    }
    assert_eq!(acme.get_file(empty.id).await.unwrap().0, empty);

    // a file needs a name
    assert_eq!(
        invalid_field(acme.put_file(" ", "text/csv", b"x").await),
        "name"
    );
    assert!(matches!(
        acme.get_file(FileId(i64::MAX)).await,
        Err(StoreError::NotFound("file"))
    ));
}

#[tokio::test]
async fn bytes_changed_on_disk_are_refused_and_bytes_without_a_row_are_swept() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let Some(dir) = store.files_dir().map(|d| d.to_path_buf()) else {
        return; // PostgreSQL keeps the bytes in the row
    };
    let scope = store.tenant(tenant(&store, "acme").await.id);
    let kept = scope
        .put_file("a.csv", "text/csv", b"a,b\n1,2\n")
        .await
        .unwrap();
    let cut = scope
        .put_file("b.csv", "text/csv", b"a,b\n3,4\n")
        .await
        .unwrap();
    let path_of = |bytes: &[u8]| {
        std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .find(|e| std::fs::read(e.path()).unwrap() == bytes)
            .unwrap()
            .path()
    };
    let cut_path = path_of(b"a,b\n3,4\n");
    std::fs::write(&cut_path, b"a,b\n3,").unwrap();
    assert!(
        matches!(scope.get_file(cut.id).await, Err(StoreError::Corrupt(_))),
        "bytes cut short are not read as the file"
    );
    std::fs::write(&cut_path, b"a,b\n3,5\n").unwrap();
    assert!(matches!(
        scope.get_file(cut.id).await,
        Err(StoreError::Corrupt(_))
    ));
    std::fs::remove_file(&cut_path).unwrap();
    assert!(matches!(
        scope.get_file(cut.id).await,
        Err(StoreError::Corrupt(_))
    ));

    // bytes no row names: an hour old, swept; newer, left (their row may yet commit);
    // a stored file's bytes are kept however old
    let aged = |path: &std::path::Path| {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(7_200))
            .unwrap();
    };
    let old_orphan = dir.join("0123456789abcdef0123456789abcdef");
    let new_orphan = dir.join("fedcba9876543210fedcba9876543210");
    let old_temp = dir.join(".tmp-00000000000000000000000000000000");
    for path in [&old_orphan, &new_orphan, &old_temp] {
        std::fs::write(path, b"left behind").unwrap();
    }
    aged(&old_orphan);
    aged(&old_temp);
    aged(&path_of(b"a,b\n1,2\n"));
    assert_eq!(store.sweep_files().await.unwrap(), 2);
    assert!(!old_orphan.exists() && !old_temp.exists());
    assert!(new_orphan.exists());
    assert_eq!(scope.get_file(kept.id).await.unwrap().1, b"a,b\n1,2\n");
}

#[tokio::test]
async fn an_in_memory_database_keeps_the_bytes_in_the_row() {
    let store = Store::connect("sqlite::memory:", StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    assert!(store.files_dir().is_none());
    let scope = store.tenant(tenant(&store, "mem").await.id);
    let bytes = payload(100_000);
    let info = scope
        .put_file("x.bin", "application/octet-stream", &bytes)
        .await
        .unwrap();
    assert!(scope.get_file(info.id).await.unwrap().1 == bytes);
    scope.delete_file(info.id).await.unwrap();
    assert!(scope.get_file(info.id).await.is_err());
}
