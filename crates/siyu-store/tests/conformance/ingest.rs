//! Ingestion: deduplication by messageId, and the ingest log (applied once, in order;
//! entries set aside and replayed).

use serde_json::json;
use siyu_store::{IngestItem, IngestOutcome, Store};

use crate::support::{Fixture, fixture, item};

#[tokio::test]
async fn a_retried_message_id_is_stored_once() {
    let f = fixture().await;
    let e = json!({"type": "track", "event": "Product Viewed", "anonymousId": "a1", "messageId": "m-1"});
    let first = f.store.ingest(&[item(&f, e.clone())]).await.unwrap();
    assert!(matches!(first[0], IngestOutcome::Stored(_)));
    // the retry, and a duplicate inside one batch
    let again = f
        .store
        .ingest(&[item(&f, e.clone()), item(&f, e)])
        .await
        .unwrap();
    assert_eq!(again, [IngestOutcome::Duplicate, IngestOutcome::Duplicate]);
    let scope = f.store.tenant(f.source.tenant);
    assert_eq!(
        scope
            .count_events_with_message_id(f.source.source, "m-1")
            .await
            .unwrap(),
        1
    );
    let source = scope.get_source(f.source.source).await.unwrap();
    assert_eq!(source.received, 1);
    assert!(source.last_event_at.is_some());
    // past the window, the id is forgotten
    assert_eq!(f.store.prune_message_ids(-60_000).await.unwrap(), 1);
}

fn tracked(f: &Fixture, n: usize, prefix: &str) -> Vec<IngestItem> {
    (0..n)
        .map(|i| {
            item(
                f,
                json!({"type": "track", "event": "Viewed", "userId": format!("log-u{}", i % 7),
                       "messageId": format!("{prefix}-{i}")}),
            )
        })
        .collect()
}

async fn stored_ids(f: &Fixture) -> std::collections::HashMap<String, i64> {
    f.store
        .tenant(f.source.tenant)
        .message_id_counts(f.source.source)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn the_ingest_log_is_applied_once_in_order_and_survives_reopening() {
    let f = fixture().await;
    let first = f.store.log_events(&tracked(&f, 30, "a")).await.unwrap();
    let second = f.store.log_events(&tracked(&f, 20, "b")).await.unwrap();
    assert_eq!(first.len(), 30);
    assert!(
        first.windows(2).all(|w| w[0] < w[1]) && first[29] < second[0],
        "numbered in order"
    );
    assert_eq!(f.store.log_backlog().await.unwrap(), 50);
    // logged is not applied: nothing is on a profile yet
    assert!(stored_ids(&f).await.is_empty());

    let applied = f.store.apply_logged(40).await.unwrap();
    let seqs: Vec<i64> = applied.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [&first[..], &second[..10]].concat(), "oldest first");
    assert!(
        applied
            .iter()
            .all(|(_, o)| matches!(o, IngestOutcome::Stored(_)))
    );
    assert_eq!(f.store.log_backlog().await.unwrap(), 10);

    // a new store on the same database (a restart) finds the rest, and only the rest
    let again = Store::connect(&f._db.url, siyu_store::StoreOptions::default())
        .await
        .unwrap();
    again.migrate().await.unwrap();
    assert_eq!(again.log_backlog().await.unwrap(), 10);
    let rest = again.apply_logged(1000).await.unwrap();
    assert_eq!(
        rest.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        second[10..].to_vec()
    );
    assert!(again.apply_logged(1000).await.unwrap().is_empty());
    let ids = stored_ids(&f).await;
    assert_eq!(ids.len(), 50);
    assert!(ids.values().all(|c| *c == 1));

    // logging the same messageIds again: applied as duplicates
    f.store.log_events(&tracked(&f, 5, "a")).await.unwrap();
    let dup = f.store.apply_logged(1000).await.unwrap();
    assert_eq!(dup.len(), 5);
    assert!(dup.iter().all(|(_, o)| *o == IngestOutcome::Duplicate));

    // applied entries are deleted from the log; numbering never goes back
    if f.store.backend() == siyu_store::Backend::Sqlite {
        assert!(
            f.store.trim_log().await.unwrap() > 0,
            "applied entries trimmed"
        );
    }
    let later = f.store.log_events(&tracked(&f, 1, "c")).await.unwrap();
    assert!(later[0] > second[19]);
    assert_eq!(f.store.apply_logged(10).await.unwrap().len(), 1);
    assert_eq!(stored_ids(&f).await.len(), 51);
}

#[tokio::test]
async fn a_lost_sqlite_log_file_starts_after_the_last_entry_applied() {
    let f = fixture().await;
    if f._db.is_postgres() {
        return; // PostgreSQL keeps the log in the database itself
    }
    let seqs = f.store.log_events(&tracked(&f, 10, "x")).await.unwrap();
    f.store.apply_logged(100).await.unwrap();
    f.store.close().await;
    let path = f._db.url.trim_start_matches("sqlite://").to_owned();
    std::fs::remove_file(format!("{path}.ingest")).expect("the log is a file of its own");
    for suffix in [".ingest-wal", ".ingest-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    let store = Store::connect(&f._db.url, siyu_store::StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let fresh = store.log_events(&tracked(&f, 3, "y")).await.unwrap();
    assert!(fresh[0] > seqs[9], "{fresh:?} after {seqs:?}");
    assert_eq!(store.apply_logged(100).await.unwrap().len(), 3);
    let ids = store
        .tenant(f.source.tenant)
        .message_id_counts(f.source.source)
        .await
        .unwrap();
    assert_eq!(ids.len(), 13, "the new entries were applied, not skipped");
}

#[tokio::test]
async fn two_appliers_take_each_logged_event_once() {
    let f = fixture().await;
    let other = Store::connect(&f._db.url, siyu_store::StoreOptions::default())
        .await
        .unwrap();
    let mut logged = Vec::new();
    for round in 0..10 {
        logged.extend(
            f.store
                .log_events(&tracked(&f, 40, &format!("r{round}")))
                .await
                .unwrap(),
        );
    }
    let apply = |store: Store| async move {
        let mut seen = Vec::new();
        loop {
            let got = store.apply_logged(25).await.unwrap();
            if got.is_empty() {
                return seen;
            }
            seen.extend(got.into_iter().map(|(s, _)| s));
        }
    };
    // in turns: each takes up where the other stopped
    let mut turns = Vec::new();
    for round in 0..4 {
        let store = if round % 2 == 0 { &f.store } else { &other };
        let got = store.apply_logged(25).await.unwrap();
        assert_eq!(got.len(), 25, "round {round}");
        turns.extend(got.into_iter().map(|(s, _)| s));
    }
    assert_eq!(turns, logged[..100].to_vec());
    // side by side for the rest
    let (a, b) = tokio::join!(
        tokio::spawn(apply(f.store.clone())),
        tokio::spawn(apply(other.clone()))
    );
    let mut all: Vec<i64> = turns
        .into_iter()
        .chain(a.unwrap())
        .chain(b.unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, logged, "every entry applied, none twice");
    assert_eq!(f.store.log_backlog().await.unwrap(), 0);
    let ids = stored_ids(&f).await;
    assert_eq!(ids.len(), 400);
    assert!(ids.values().all(|c| *c == 1));
}

#[tokio::test]
async fn an_entry_set_aside_is_kept_out_of_profiles_and_the_rest_go_on() {
    let f = fixture().await;
    let seqs = f.store.log_events(&tracked(&f, 3, "poison")).await.unwrap();
    assert_eq!(f.store.logged_through().await.unwrap(), seqs[2]);
    assert!(!f.store.applied_through(seqs[0]).await.unwrap());
    let aside = f
        .store
        .set_aside_oldest_logged("it failed on its own")
        .await
        .unwrap();
    assert_eq!(aside, Some(seqs[0]));
    assert!(f.store.applied_through(seqs[0]).await.unwrap());
    assert!(!f.store.applied_through(seqs[2]).await.unwrap());
    let applied = f.store.apply_logged(100).await.unwrap();
    assert_eq!(
        applied.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        seqs[1..].to_vec()
    );
    assert!(f.store.applied_through(seqs[2]).await.unwrap());
    let ids = stored_ids(&f).await;
    assert!(!ids.contains_key("poison-0") && ids.contains_key("poison-1"));
    assert_eq!(
        f.store.set_aside_oldest_logged("nothing").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn entries_set_aside_are_listed_and_replayed_once_what_failed_them_is_fixed() {
    let f = fixture().await;
    let seqs = f.store.log_events(&tracked(&f, 4, "aside")).await.unwrap();
    for error in ["first failure", "second failure"] {
        f.store.set_aside_oldest_logged(error).await.unwrap();
    }
    f.store.apply_logged(100).await.unwrap();
    let aside = f.store.dead_letters(100).await.unwrap();
    assert_eq!(
        aside
            .iter()
            .map(|d| (d.seq, d.error.as_str()))
            .collect::<Vec<_>>(),
        [(seqs[0], "first failure"), (seqs[1], "second failure")]
    );
    assert!(
        aside
            .iter()
            .all(|d| d.tenant_id == f.source.tenant.0 && d.source_id == f.source.source.0)
    );
    assert!(!stored_ids(&f).await.contains_key("aside-0"));
    // one of them, by its number; then the rest
    assert_eq!(
        f.store.replay_dead_letters(Some(&[seqs[1]])).await.unwrap(),
        1
    );
    assert_eq!(f.store.dead_letters(100).await.unwrap().len(), 1);
    let applied = f.store.apply_logged(100).await.unwrap();
    assert_eq!(applied.len(), 1);
    assert!(applied[0].0 > seqs[3], "logged again at the end");
    assert!(stored_ids(&f).await.contains_key("aside-1"));
    assert_eq!(f.store.replay_dead_letters(None).await.unwrap(), 1);
    assert!(f.store.dead_letters(100).await.unwrap().is_empty());
    f.store.apply_logged(100).await.unwrap();
    let ids = stored_ids(&f).await;
    assert!(
        (0..4).all(|i| ids.get(&format!("aside-{i}")) == Some(&1)),
        "{ids:?}"
    );
    assert_eq!(f.store.replay_dead_letters(None).await.unwrap(), 0);
}
