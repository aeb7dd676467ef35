//! Erasure: nothing of the person is left, in the tables or outside them.

use serde_json::json;
use siyu_domain::audit::Actor;

use crate::support::{customer_of, fixture, item};

/// An erasure leaves nothing of the person outside the tables either: their entries set
/// aside are removed (others stay), applied entries are gone from the SQLite log file,
/// and with secure_delete and a truncating checkpoint their phone number is in no file.
#[tokio::test]
async fn an_erasure_removes_the_persons_raw_events_from_the_log_and_the_files() {
    let f = fixture().await;
    let phone = "13812349876";
    let stored = f
        .store
        .ingest(&[item(
            &f,
            json!({"type": "identify", "userId": "gone", "traits": {"phone": phone, "name": "李娜"}}),
        )])
        .await
        .unwrap();
    let customer = customer_of(stored[0].clone());
    // an event of theirs that failed on its own, and one of someone else
    f.store
        .log_events(&[item(
            &f,
            json!({"type": "track", "userId": "gone", "event": "Viewed", "properties": {"phone": phone}}),
        )])
        .await
        .unwrap();
    f.store.set_aside_oldest_logged("failed").await.unwrap();
    f.store
        .log_events(&[item(
            &f,
            json!({"type": "track", "userId": "stays", "event": "Viewed"}),
        )])
        .await
        .unwrap();
    f.store.set_aside_oldest_logged("failed").await.unwrap();
    // an applied event of theirs whose entry is still in the log file
    f.store
        .log_events(&[item(
            &f,
            json!({"type": "track", "userId": "gone", "event": "Called", "properties": {"phone": phone}}),
        )])
        .await
        .unwrap();
    f.store.apply_logged(100).await.unwrap();
    assert_eq!(f.store.dead_letters(100).await.unwrap().len(), 2);

    f.store
        .tenant(f.source.tenant)
        .erase_customer(siyu_domain::customer::CustomerId(customer), &Actor::cli())
        .await
        .unwrap();
    let left = f.store.dead_letters(100).await.unwrap();
    assert_eq!(left.len(), 1, "only the other person's entry stays");
    if !f._db.is_postgres() {
        let path = f
            ._db
            .url
            .trim_start_matches("sqlite://")
            .split('?')
            .next()
            .unwrap()
            .to_owned();
        for file in [
            path.clone(),
            format!("{path}-wal"),
            format!("{path}.ingest"),
            format!("{path}.ingest-wal"),
        ] {
            let Ok(bytes) = std::fs::read(&file) else {
                continue;
            };
            let found = bytes.windows(phone.len()).any(|w| w == phone.as_bytes());
            assert!(!found, "{file} still holds the erased phone number");
        }
    }
}
