//! Tags on customers: large taggings committed in parts, each part audited.

use serde_json::json;
use siyu_domain::audit::Actor;
use siyu_domain::page::PageRequest;
use siyu_store::IngestItem;

use crate::support::{customer_of, fixture, item};

/// A tagging of many customers commits in parts, and each part writes its own audit
/// entry with it: one interrupted after some parts leaves no tag unaccounted for.
#[tokio::test]
async fn each_part_of_a_large_tagging_is_audited_with_it() {
    let f = fixture().await;
    let n = 10_001;
    let mut customers = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(2_000) {
        let items: Vec<IngestItem> = chunk
            .iter()
            .map(|i| item(&f, json!({"type": "identify", "userId": format!("p-{i}"), "messageId": format!("p-{i}")})))
            .collect();
        for outcome in f.store.ingest(&items).await.unwrap() {
            customers.push(siyu_domain::customer::CustomerId(customer_of(outcome)));
        }
    }
    let scope = f.store.tenant(f.source.tenant);
    let group = scope
        .create_tag_group("g", None, 0, &Actor::cli())
        .await
        .unwrap();
    let tag = scope
        .create_tag(group.id, "bulk", "#1677ff", 0, &Actor::cli())
        .await
        .unwrap();
    let result = scope
        .change_tags(
            &customers,
            &[tag.id],
            &[],
            siyu_domain::audience::TagOrigin::Api,
            Some("a campaign"),
            &Actor::cli(),
        )
        .await
        .unwrap();
    assert_eq!(result.added, n as u64);
    let audit = scope
        .list_audit(
            PageRequest::parse(None, Some(100)).unwrap(),
            &siyu_store::AuditFilter {
                action: Some("customers.tagged".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut parts: Vec<(u64, u64, u64)> = audit
        .items
        .iter()
        .map(|e| {
            (
                e.details["part"].as_u64().unwrap(),
                e.details["parts"].as_u64().unwrap(),
                e.details["added"].as_u64().unwrap(),
            )
        })
        .collect();
    parts.sort();
    assert_eq!(parts, vec![(1, 3, 5_000), (2, 3, 5_000), (3, 3, 1)]);
}
