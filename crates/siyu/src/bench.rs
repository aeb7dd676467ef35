//! `siyu bench ingest`: drives the tracking API of a real server with concurrent clients
//! and prints what it sustained. A benchmark is a command, not a test: run it on the
//! machine whose figures you want, with `--release`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use siyu_domain::audit::Actor;
use siyu_domain::customer::SourceKind;
use siyu_domain::tenancy::NewTenant;
use siyu_server::{Application, ServerConfig};

use crate::config::FileConfig;

pub struct IngestBench {
    pub seconds: u64,
    pub clients: usize,
    pub batch: usize,
    pub users: usize,
    /// Keep an audience index following while ingesting (a segment and a tag rule).
    pub audience: bool,
}

/// Prepared request bodies (each with its own users and events).
const TEMPLATES: u64 = 500;
/// Stands for a request's number in a prepared body's ids; as wide as the number.
const TAG: &str = "TTTTTTTTTTTTTT";

/// A prepared body and where its tags are.
struct Template {
    bytes: Vec<u8>,
    tags: Vec<usize>,
}

impl Template {
    fn new(seed: u64, size: usize, users: usize) -> Self {
        let bytes = serde_json::to_vec(&make_batch(seed, TAG, size, users))
            .expect("a JSON value serializes");
        let tags = bytes
            .windows(TAG.len())
            .enumerate()
            .filter(|(_, w)| *w == TAG.as_bytes())
            .map(|(at, _)| at)
            .collect();
        Self { bytes, tags }
    }

    /// The body of request number `request`: ids no other request has.
    fn body(&self, request: u64) -> Vec<u8> {
        let tag = format!("{request:014}");
        let mut body = self.bytes.clone();
        for &at in &self.tags {
            body[at..at + TAG.len()].copy_from_slice(tag.as_bytes());
        }
        body
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// A realistic batch: page views, product views, orders and identifies over a pool of
/// users, each with properties and context like the SDKs send. `tag` goes into every
/// messageId and order id.
fn make_batch(seed: u64, tag: &str, size: usize, users: usize) -> Value {
    let mut items = Vec::with_capacity(size);
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for i in 0..size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let user = (x % users as u64) as usize;
        let message_id = format!("bench-{tag}-{i}");
        let context = json!({"library": {"name": "analytics-python", "version": "2.4.0"},
                             "ip": "10.1.2.3", "locale": "zh-CN", "app": {"name": "露米茶饮", "version": "3.2.0"}});
        let item = match x % 10 {
            0 => {
                json!({"type": "identify", "userId": format!("u{user}"), "anonymousId": format!("a{user}"),
                "messageId": message_id, "context": context,
                "traits": {"name": format!("客户{user}"), "phone": format!("139{:08}", user), "city": "上海", "member_level": "银卡"}})
            }
            1 | 2 => {
                json!({"type": "page", "anonymousId": format!("a{user}"), "messageId": message_id, "name": "商品详情",
                "properties": {"path": "/products/tea-01", "referrer": "https://www.xiaohongshu.com/", "title": "桂花乌龙"},
                "context": context})
            }
            3 => {
                json!({"type": "track", "event": "Order Completed", "userId": format!("u{user}"), "messageId": message_id,
                "properties": {"order_id": format!("o-{tag}-{i}"), "total": 56.0, "currency": "CNY",
                               "products": [{"sku": "TEA-01", "name": "桂花乌龙", "price": 28.0, "quantity": 2}]},
                "context": context})
            }
            _ => {
                json!({"type": "track", "event": "Product Viewed", "userId": format!("u{user}"), "messageId": message_id,
                "properties": {"sku": "TEA-01", "name": "桂花乌龙", "price": 28.0, "category": "乌龙茶", "dwell_ms": 5400},
                "context": context})
            }
        };
        items.push(item);
    }
    json!({"batch": items, "sentAt": siyu_domain::time::format_rfc3339(siyu_store::now_ms())})
}

pub async fn ingest(
    database_url: Option<String>,
    file: &FileConfig,
    bench: IngestBench,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = database_url
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let store = crate::open_store(&url, file, None).await?;
    let tenant_name = format!("bench-{}", siyu_store::now_ms());
    let (tenant, _) = store
        .create_tenant(
            &NewTenant::new(
                &tenant_name,
                &format!("admin@{tenant_name}.example.com"),
                "bench-admin-pass-26",
            )?,
            &Actor::cli(),
        )
        .await?;
    let scope = store.tenant(tenant.id);
    let (_, key) = scope
        .create_source("bench", SourceKind::Server, &Actor::cli())
        .await?;
    let role = scope.role_by_name("analyst").await?;
    let (_, token) = scope
        .create_api_token("bench", &role, None, None, &Actor::cli())
        .await?;

    let config = ServerConfig {
        listen: "127.0.0.1:0".into(),
        ..file.server_config(None)
    };
    let node =
        siyu_runtime::Node::start(store.clone(), file.node_config(siyu_runtime::Role::All)).await?;
    let app = Application::build(config, &node).await?;
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));

    // prepared bodies, so the clients spend their time sending, not building JSON: each
    // request copies one and writes its own number into the ids' tag
    let prepared: Vec<Template> = (0..TEMPLATES)
        .map(|s| Template::new(s, bench.batch, bench.users))
        .collect();
    let prepared = Arc::new(prepared);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(bench.clients * 2)
        .build()?;
    // warm up: the first user ids exist, so the readers find profiles
    http.post(format!("{base}/v1/batch"))
        .basic_auth(&key, Some(""))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&make_batch(
            u64::MAX,
            "warm-up",
            bench.batch,
            bench.users.min(50),
        ))?)
        .send()
        .await?
        .error_for_status()
        .context("the warm-up batch failed")?;

    let admin = scope.role_by_name("admin").await?;
    let (_, admin_token) = scope
        .create_api_token("bench admin", &admin, None, None, &Actor::cli())
        .await?;
    // what the console writes while ingesting goes to a tag group of its own
    let console_group: i64 = http
        .post(format!("{base}/api/v1/tag-groups"))
        .bearer_auth(&admin_token)
        .json(&json!({"name": "bench console"}))
        .send()
        .await?
        .error_for_status()?
        .json::<serde_json::Value>()
        .await?["id"]
        .as_i64()
        .context("the tag group has an id")?;
    if bench.audience {
        // a dynamic segment and a tag rule: the server builds the tenant's audience
        // index and keeps it (and them) current while the events arrive
        let post = |path: &str, body: serde_json::Value| {
            http.post(format!("{base}{path}"))
                .bearer_auth(&admin_token)
                .json(&body)
                .send()
        };
        let group: serde_json::Value = post("/api/v1/tag-groups", json!({"name": "bench"}))
            .await?
            .error_for_status()?
            .json()
            .await?;
        let tag: serde_json::Value = post(
            "/api/v1/tags",
            json!({"group_id": group["id"], "name": "上海银卡"}),
        )
        .await?
        .error_for_status()?
        .json()
        .await?;
        post(
            "/api/v1/tag-rules",
            json!({"name": "上海银卡", "definition": "trait.city = \"上海\" and trait.member_level = \"银卡\"",
                   "add": [tag["id"]]}),
        )
        .await?
        .error_for_status()?;
        post(
            "/api/v1/segments",
            json!({"name": "看过商品", "definition": "performed(\"Product Viewed\", last 30d) >= 2"}),
        )
        .await?
        .error_for_status()?;
    }
    eprintln!(
        "ingesting for {} s with {} clients, batches of {} events, {} users, on {}",
        bench.seconds,
        bench.clients,
        bench.batch,
        bench.users,
        siyu_store::redact_url(&url)
    );
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut writers = Vec::new();
    for c in 0..bench.clients {
        let (http, base, key, prepared, stop) = (
            http.clone(),
            base.clone(),
            key.clone(),
            prepared.clone(),
            stop.clone(),
        );
        let batch = bench.batch;
        writers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut events = 0usize;
            let mut seq = c as u64;
            while !stop.load(Ordering::Relaxed) {
                // each request is a fresh batch (new messageIds): prepared bodies are
                // rotated with a per-request seed so no two requests repeat ids
                let body = prepared[seq as usize % prepared.len()].body(seq);
                seq += bench_stride();
                let t = Instant::now();
                let r = http
                    .post(format!("{base}/v1/batch"))
                    .basic_auth(&key, Some(""))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                        events += batch;
                    }
                    Ok(r) => eprintln!("batch answered {}", r.status()),
                    Err(e) => eprintln!("batch failed: {e}"),
                }
            }
            (latencies, events)
        }));
    }
    let reader = {
        let (http, base, token, stop) = (http.clone(), base.clone(), token.clone(), stop.clone());
        let users = bench.users.min(50);
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = http
                    .get(format!(
                        "{base}/api/v1/customers/lookup?kind=user_id&value=u{}",
                        i % users
                    ))
                    .bearer_auth(&token)
                    .send()
                    .await;
                if let Ok(r) = r {
                    let _ = r.bytes().await;
                    latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            latencies
        })
    };
    // a console user saving something (a new tag) five times a second: writes to the
    // main database wait for the applier's transaction, so this is what they wait
    let console = {
        let (http, base, token, stop) = (
            http.clone(),
            base.clone(),
            admin_token.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0usize;
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = http
                    .post(format!("{base}/api/v1/tags"))
                    .bearer_auth(&token)
                    .json(&json!({"group_id": console_group, "name": format!("bench-{i}")}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        latencies.push(t.elapsed().as_secs_f64() * 1000.0)
                    }
                    Ok(r) => {
                        failed += 1;
                        eprintln!("a console write answered {}", r.status());
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("a console write failed: {e}");
                    }
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (latencies, failed)
        })
    };
    tokio::time::sleep(Duration::from_secs(bench.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut batch_ms = Vec::new();
    let mut events = 0usize;
    for w in writers {
        let (l, e) = w.await?;
        batch_ms.extend(l);
        events += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut read_ms = reader.await?;
    let (mut write_ms, writes_failed) = console.await?;
    batch_ms.sort_by(f64::total_cmp);
    read_ms.sort_by(f64::total_cmp);
    write_ms.sort_by(f64::total_cmp);
    eprintln!(
        "load done: {events} events acknowledged in {elapsed:.1} s ({:.0} events/s, batch p99 {:.1} ms); \
         waiting for the profiles to catch up",
        events as f64 / elapsed,
        percentile(&batch_ms, 99.0)
    );
    // answers come once the events are in the ingest log: how long until the last of
    // them is on its profile
    let catch_up_started = Instant::now();
    while store.log_backlog().await? > 0 {
        if catch_up_started.elapsed() > Duration::from_secs(1800) {
            anyhow::bail!("the ingest log was not applied within 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let catch_up = catch_up_started.elapsed().as_secs_f64();
    let applied_per_sec = events as f64 / (elapsed + catch_up);
    // the same kind of events straight into the store, in groups of 1,000: what the data
    // layer sustains without HTTP, JSON and the clients sharing the CPU
    let source_ref = store
        .resolve_write_key(&key)
        .await?
        .context("the bench source resolves")?;
    let mut groups = Vec::new();
    for g in 0..20u64 {
        let mut items = Vec::with_capacity(1000);
        for b in 0..(1000 / bench.batch.max(1)).max(1) as u64 {
            let seed = 10_000_000 + g * 1000 + b;
            let body = make_batch(seed, &format!("direct-{seed}"), bench.batch, bench.users);
            for (n, raw) in body["batch"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .enumerate()
            {
                let event = siyu_domain::tracking::read_event(
                    n,
                    raw,
                    None,
                    &siyu_domain::tracking::BatchDefaults::default(),
                    siyu_store::now_ms(),
                    false,
                    String::new,
                )
                .map_err(|r| anyhow::anyhow!("bench event refused: {}", r.reason))?;
                items.push(siyu_store::IngestItem {
                    source: source_ref,
                    event,
                });
            }
        }
        groups.push(items);
    }
    let direct_started = Instant::now();
    let mut direct_events = 0;
    for group in &groups {
        direct_events += store.ingest(group).await?.len();
    }
    let direct_per_sec = direct_events as f64 / direct_started.elapsed().as_secs_f64();

    let stored: i64 = scope
        .list_sources(siyu_domain::page::PageRequest::first(10))
        .await?
        .items[0]
        .received;

    // how long the audience index takes to catch up once the load stops: until a
    // count over everyone stops moving
    let audience_catch_up_ms = if bench.audience {
        let started = Instant::now();
        let mut last = u64::MAX;
        let mut steady_since = Instant::now();
        loop {
            let count = http
                .post(format!("{base}/api/v1/segments/preview"))
                .bearer_auth(&token)
                .json(&json!({"definition": "bucket >= 0"}))
                .send()
                .await?
                .json::<serde_json::Value>()
                .await?["count"]
                .as_u64()
                .unwrap_or(0);
            if count != last {
                last = count;
                steady_since = Instant::now();
            } else if steady_since.elapsed() > Duration::from_secs(2) {
                break;
            }
            if started.elapsed() > Duration::from_secs(300) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(((steady_since - started).as_secs_f64() * 1000.0).round())
    } else {
        None
    };

    let figures = json!({
        "bench": "ingest",
        "backend": format!("{:?}", store.backend()).to_lowercase(),
        "seconds": (elapsed * 10.0).round() / 10.0,
        "clients": bench.clients,
        "batch_size": bench.batch,
        "events_acknowledged": events,
        "events_stored": stored,
        "events_per_sec": (events as f64 / elapsed).round(),
        "profiles_caught_up_ms": (catch_up * 1000.0).round(),
        "applied_events_per_sec": applied_per_sec.round(),
        "batch_p50_ms": (percentile(&batch_ms, 50.0) * 10.0).round() / 10.0,
        "batch_p99_ms": (percentile(&batch_ms, 99.0) * 10.0).round() / 10.0,
        "profile_read_p50_ms": (percentile(&read_ms, 50.0) * 10.0).round() / 10.0,
        "profile_read_p99_ms": (percentile(&read_ms, 99.0) * 10.0).round() / 10.0,
        "console_write_p50_ms": (percentile(&write_ms, 50.0) * 10.0).round() / 10.0,
        "console_write_max_ms": (write_ms.last().copied().unwrap_or(0.0) * 10.0).round() / 10.0,
        "console_writes_failed": writes_failed,
        "store_only_events_per_sec": direct_per_sec.round(),
        "audience_following": bench.audience,
        "audience_catch_up_ms": audience_catch_up_ms,
    });
    println!(
        "events/s:           {} (answered: durable in the ingest log)",
        figures["events_per_sec"]
    );
    println!(
        "on profiles:        {} events/s; the last {} ms after the load stopped",
        figures["applied_events_per_sec"], figures["profiles_caught_up_ms"]
    );
    println!(
        "batch latency:      p50 {} ms, p99 {} ms",
        figures["batch_p50_ms"], figures["batch_p99_ms"]
    );
    println!(
        "profile reads:      p50 {} ms, p99 {} ms (while ingesting)",
        figures["profile_read_p50_ms"], figures["profile_read_p99_ms"]
    );
    println!(
        "console writes:     p50 {} ms, max {} ms, {} failed (while ingesting)",
        figures["console_write_p50_ms"],
        figures["console_write_max_ms"],
        figures["console_writes_failed"]
    );
    println!(
        "store alone:        {} events/s (groups of 1,000, no HTTP)",
        figures["store_only_events_per_sec"]
    );
    if let Some(ms) = audience_catch_up_ms {
        println!("audience index:     caught up {ms} ms after the load stopped");
    }
    println!("{figures}");
    Ok(())
}

/// Clients step through the prepared bodies without overlapping: client c sends bodies
/// c, c + stride, c + 2·stride, …
fn bench_stride() -> u64 {
    64
}

/// A fresh tenant for a benchmark run (`{kind}-bench-{now}`), and an admin API token of it.
pub(crate) async fn bench_tenant(
    store: &siyu_store::Store,
    kind: &str,
) -> anyhow::Result<(siyu_domain::tenancy::Tenant, String)> {
    let stamp = siyu_store::now_ms();
    let (tenant, _) = store
        .create_tenant(
            &NewTenant::new(
                &format!("{kind}-bench-{stamp}"),
                &format!("admin-{stamp}@bench.example.com"),
                "bench-pass-7a9",
            )?,
            &Actor::cli(),
        )
        .await?;
    let scope = store.tenant(tenant.id);
    let admin = scope.role_by_name("admin").await?;
    let (_, token) = scope
        .create_api_token("bench", &admin, None, None, &Actor::cli())
        .await?;
    Ok((tenant, token))
}
