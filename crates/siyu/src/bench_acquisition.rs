//! `siyu bench acquisition`: a year of a brand's acquisition through a real server.
//!
//! The WeCom stand-in (its corp knowing every contact added, as WeCom would) and a
//! server on a fresh embedded store (or `--database-url`); the staff synced, then
//! 1,000 channel codes made through the API, each a WeCom contact way routed to a
//! member and tagging who comes through it. Then, timed: 1,000,000 add and delete
//! callbacks, encrypted and signed as WeCom sends them, through HTTP by concurrent
//! clients, CreateTimes spread over the past year, one in ten a deletion (by the
//! customer or the member) of an add made earlier. Printed:
//!
//! - callbacks **acknowledged** a second (answered `success`: kept);
//! - callbacks **applied** a second, from the first sent until the last is applied in
//!   siyu (customer linked, owned, tagged, attributed, counted for its code); the WeCom
//!   calls that follow (reading the contacts, moving contact ways on) run within
//!   WeCom's limits and are not part of it;
//! - then 200,000 orders through the tracking API by the customers added, and the
//!   time of the acquisition report over the year for all codes (median of runs);
//! - a tracked link followed at 1,000 requests a second for 10 s (open loop, see
//!   `bench_links`) once the codes are made, before the flood: the redirect's p50, p99
//!   and max latency, and its clicks counted; and again after the orders, with the
//!   work the flood left behind still running.
//!
//! The result is checked exact (every add, relation and deletion once, the report's
//! totals equal to what was sent). The last line is one JSON object.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use siyu_connect::wecom::crypto::CallbackCrypto;
use siyu_domain::audit::Actor;
use siyu_domain::connector::{ConnectorConfig, SyncScope, WecomSyncPayload};
use siyu_domain::customer::SourceKind;
use siyu_domain::ids::ConnectorId;
use siyu_domain::secret::SecretKey;
use siyu_server::{Application, ServerConfig};
use siyu_store::NewJob;
use siyu_wecom_standin::{
    Corp, ExternalContact, FollowInfo, GENERATED_CORP_ID, GENERATED_SECRET, GenerateSpec, Standin,
    event_xml,
};

use crate::config::FileConfig;

const TOKEN: &str = "benchToken";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const YEAR_S: u64 = 365 * 86_400;
/// A deletion ends a relation added at least this many callbacks before it, so that
/// concurrent clients never send it before its add.
const DELETE_AFTER: usize = 2_000;

pub struct AcquisitionBench {
    pub codes: usize,
    pub callbacks: usize,
    pub orders: usize,
    pub clients: usize,
    pub members: usize,
    /// Tracked-link redirects a second, and for how long.
    pub clicks_per_s: usize,
    pub click_seconds: u64,
}

/// One callback of the plan.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// Customer `n` adds the member of code `code`.
    Add { n: u32, code: u32 },
    /// The relation of customer `n` ends, by the customer or the member.
    Delete { n: u32, by_customer: bool },
}

/// The year's callbacks, in the order sent, and each customer's code.
struct Plan {
    changes: Vec<Change>,
    code_of: Vec<u32>,
    deletions: usize,
}

fn plan(bench: &AcquisitionBench) -> Plan {
    let mut rng = rand::rngs::StdRng::seed_from_u64(20);
    let mut changes = Vec::with_capacity(bench.callbacks);
    let mut code_of = Vec::new();
    // customers whose add is old enough to delete, not deleted yet
    let mut deletable: Vec<u32> = Vec::new();
    let mut ready = 0u32;
    let mut deletions = 0;
    for _ in 0..bench.callbacks {
        let delete = rng.gen_range(0..10) == 0;
        while (ready as usize) + DELETE_AFTER < code_of.len() {
            deletable.push(ready);
            ready += 1;
        }
        if delete && !deletable.is_empty() {
            let pick = rng.gen_range(0..deletable.len());
            let n = deletable.swap_remove(pick);
            changes.push(Change::Delete {
                n,
                by_customer: rng.gen_bool(0.7),
            });
            deletions += 1;
        } else {
            let code = rng.gen_range(0..bench.codes as u32);
            changes.push(Change::Add {
                n: code_of.len() as u32,
                code,
            });
            code_of.push(code);
        }
    }
    Plan {
        changes,
        code_of,
        deletions,
    }
}

fn external(n: u32) -> String {
    format!("wmBENCH{n:07}")
}

fn member_of(code: u32, members: usize) -> String {
    format!("member{:03}", code as usize % members + 1)
}

pub async fn run(
    database_url: Option<String>,
    file: &FileConfig,
    bench: AcquisitionBench,
) -> anyhow::Result<()> {
    let began = Instant::now();
    let plan = plan(&bench);
    let adds = plan.code_of.len();
    // WeCom's corp: the members, and every contact added (less those deleted)
    let mut corp = Corp::generate(&GenerateSpec {
        members: bench.members,
        contacts: 0,
        ..GenerateSpec::default()
    });
    let now_s = siyu_store::now_ms() as u64 / 1_000;
    let start_s = now_s - YEAR_S;
    let time_of = |i: usize| start_s + (i as u64 * YEAR_S) / bench.callbacks as u64;
    // relations deleted later are in WeCom's corp until their deletion is sent: the
    // contacts sweep reading one before then finds it, as it would at that moment
    for (i, change) in plan.changes.iter().enumerate() {
        if let Change::Add { n, code } = *change {
            corp.insert_contact(ExternalContact::wechat(&external(n), &format!("客户{n}")));
            {
                corp.insert_follow(
                    &member_of(code, bench.members),
                    &external(n),
                    FollowInfo {
                        createtime: time_of(i),
                        add_way: 1,
                        state: format!("bench-{code:04}"),
                        ..FollowInfo::default()
                    },
                );
            }
        }
    }
    println!(
        "plan: {} callbacks ({adds} adds, {} deletions) over a year, {} codes, {} members (made in {:.1} s)",
        bench.callbacks,
        plan.deletions,
        bench.codes,
        bench.members,
        began.elapsed().as_secs_f64()
    );
    let standin = Arc::new(Standin::start(corp)?);

    let dir = tempfile::tempdir()?;
    let url = database_url
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let store = crate::open_store(&url, file, Some(SecretKey::generate_base64())).await?;
    let (tenant, token) = crate::bench::bench_tenant(&store, "acquisition").await?;
    let scope = store.tenant(tenant.id);
    let (_, write_key) = scope
        .create_source("shop", SourceKind::Server, &Actor::cli())
        .await?;
    let config = ConnectorConfig::new(
        "wecom",
        "bench",
        &json!({
            "corp_id": GENERATED_CORP_ID, "secret": GENERATED_SECRET, "token": TOKEN,
            "encoding_aes_key": AES_KEY, "api_base_url": standin.base_url(),
        }),
    )?;
    let connector = scope.create_connector(&config, &Actor::cli()).await?.id;
    let node =
        siyu_runtime::Node::start(store.clone(), file.node_config(siyu_runtime::Role::All)).await?;
    let app = Application::build(
        ServerConfig {
            listen: "127.0.0.1:0".into(),
            ..file.server_config(None)
        },
        &node,
    )
    .await?;
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(bench.clients * 2)
        .build()?;

    // the staff, then the codes (each a contact way) with a tag each
    sync_staff(&store, tenant.id, connector).await?;
    let staff: std::collections::HashMap<String, i64> = scope
        .wecom_members(connector)
        .await?
        .into_iter()
        .map(|m| (m.userid, m.staff_id))
        .collect();
    let post = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let group = post("/api/v1/tag-groups", json!({"name": "渠道"}))
        .await?
        .error_for_status()?
        .json::<Value>()
        .await?["id"]
        .clone();
    let made = Instant::now();
    let mut tags = Vec::new();
    for t in 0..10 {
        let tag = post(
            "/api/v1/tags",
            json!({"group_id": group, "name": format!("渠道{t}")}),
        )
        .await?
        .error_for_status()?
        .json::<Value>()
        .await?["id"]
            .clone();
        tags.push(tag);
    }
    for code in 0..bench.codes as u32 {
        let member = member_of(code, bench.members);
        let staff_id = staff
            .get(&member)
            .with_context(|| format!("{member} was not synced"))?;
        post(
            "/api/v1/channel-codes",
            json!({"name": format!("活码{code:04}"), "state": format!("bench-{code:04}"),
                   "connector_id": connector.0, "members": [{"staff_id": staff_id}],
                   "tag_ids": [tags[code as usize % tags.len()]]}),
        )
        .await?
        .error_for_status()
        .with_context(|| format!("code {code}"))?;
    }
    println!(
        "made {} codes through the API in {:.1} s",
        bench.codes,
        made.elapsed().as_secs_f64()
    );

    // tracked links: the redirect at a steady rate, once the codes' contact ways are made
    let settled = Instant::now();
    while !jobs_settled(&scope).await? && settled.elapsed() < Duration::from_secs(300) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let redirects = crate::bench_links::measure(
        &base,
        &token,
        "quiet",
        bench.clicks_per_s,
        bench.click_seconds,
        &store,
    )
    .await?;
    print_redirects("redirects", &redirects, bench.clicks_per_s);

    // the year's callbacks
    let crypto = Arc::new(CallbackCrypto::new(TOKEN, AES_KEY, GENERATED_CORP_ID)?);
    let plan = Arc::new(plan);
    let next = Arc::new(AtomicUsize::new(0));
    let callback_url = format!("{base}/callbacks/wecom/{}", connector.0);
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..bench.clients {
        let (http, crypto, plan, next, url, standin) = (
            http.clone(),
            crypto.clone(),
            plan.clone(),
            next.clone(),
            callback_url.clone(),
            standin.clone(),
        );
        let members = bench.members;
        let total = bench.callbacks;
        clients.push(tokio::spawn(async move {
            let mut refused = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let created = start_s + (i as u64 * YEAR_S) / total as u64;
                let xml = match plan.changes[i] {
                    Change::Add { n, code } => event_xml(
                        GENERATED_CORP_ID,
                        created,
                        "change_external_contact",
                        "add_external_contact",
                        &[
                            ("UserID", &member_of(code, members)),
                            ("ExternalUserID", &external(n)),
                            ("State", &format!("bench-{code:04}")),
                        ],
                    ),
                    Change::Delete { n, by_customer } => {
                        // gone from WeCom as it tells of it
                        let member = member_of(plan.code_of[n as usize], members);
                        standin.with_corp(|corp| corp.remove_follow(&member, &external(n)));
                        event_xml(
                        GENERATED_CORP_ID,
                        created,
                        "change_external_contact",
                        if by_customer {
                            "del_follow_user"
                        } else {
                            "del_external_contact"
                        },
                            &[("UserID", &member), ("ExternalUserID", &external(n))],
                        )
                    }
                };
                let encrypted = crypto.encrypt(&xml);
                let (timestamp, nonce) = (created.to_string(), format!("{i}"));
                let signature = crypto.signature(&timestamp, &nonce, &encrypted);
                let body = format!(
                    "<xml><ToUserName><![CDATA[{GENERATED_CORP_ID}]]></ToUserName>\
                     <Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>"
                );
                let answered = http
                    .post(format!(
                        "{url}?msg_signature={signature}&timestamp={timestamp}&nonce={nonce}"
                    ))
                    .header("content-type", "text/xml; charset=utf-8")
                    .body(body)
                    .send()
                    .await;
                match answered {
                    Ok(r) if r.status() == 200 => {}
                    Ok(r) => {
                        refused += 1;
                        eprintln!("callback {i} answered {}", r.status());
                    }
                    Err(e) => {
                        refused += 1;
                        eprintln!("callback {i} failed: {e}");
                    }
                }
            }
            refused
        }));
    }
    let mut refused = 0;
    for client in clients {
        refused += client.await?;
    }
    let acked_s = started.elapsed().as_secs_f64();
    let acked_rate = bench.callbacks as f64 / acked_s;
    println!("acknowledged: {acked_s:.1} s, {acked_rate:.0} callbacks/s, refused: {refused}");
    loop {
        // whether any waits, not how many: a count of a backlog of hundreds of
        // thousands takes a core's tenth of a second, taken from the server it measures
        let waiting = scope.waiting_wecom_relation_changes(connector, 1).await?;
        if waiting.is_empty() && bulk_jobs_done(&scope).await? {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let applied_s = started.elapsed().as_secs_f64();
    let applied_rate = bench.callbacks as f64 / applied_s;
    println!("applied: {applied_s:.1} s, {applied_rate:.0} callbacks/s");
    let counts = scope.wecom_counts(connector).await?;
    let live = adds - plan.deletions;

    // orders by customers added, some within 30 days of their add
    let orders_started = Instant::now();
    let add_times: Vec<u64> = {
        let mut times = vec![0u64; adds];
        for (i, change) in plan.changes.iter().enumerate() {
            if let Change::Add { n, .. } = change {
                times[*n as usize] = start_s + (i as u64 * YEAR_S) / bench.callbacks as u64;
            }
        }
        times
    };
    send_orders(&http, &base, &write_key, &add_times, bench.orders, now_s).await?;
    while store.log_backlog().await? > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let orders_s = orders_started.elapsed().as_secs_f64();
    println!(
        "orders: {} sent and applied in {orders_s:.1} s ({:.0}/s)",
        bench.orders,
        bench.orders as f64 / orders_s
    );

    // the year's report for every code
    let today = siyu_domain::time::format_rfc3339(siyu_store::now_ms());
    let year_ago = siyu_domain::time::format_rfc3339((start_s as i64 - 86_400) * 1_000);
    let report_url = format!(
        "{base}/api/v1/acquisition/report?from={}&to={}&by=code",
        &year_ago[..10],
        &today[..10]
    );
    let mut times = Vec::new();
    let mut report = Value::Null;
    for _ in 0..7 {
        let t = Instant::now();
        report = http
            .get(&report_url)
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        times.push(t.elapsed().as_secs_f64() * 1_000.0);
    }
    times.sort_by(f64::total_cmp);
    let report_ms = times[times.len() / 2];
    let totals = &report["total"];
    let rows = report["rows"].as_array().map_or(0, Vec::len);
    println!(
        "report over the year, by code: {report_ms:.0} ms (median of {}), {rows} codes; totals: {totals}",
        times.len()
    );
    // tracked links again, with what the flood left behind still running (the
    // contacts sweep reading every contact added, its stand-in in this process too)
    let busy = crate::bench_links::measure(
        &base,
        &token,
        "after the flood",
        bench.clicks_per_s,
        bench.click_seconds,
        &store,
    )
    .await?;
    print_redirects("redirects after the flood", &busy, bench.clicks_per_s);
    let report_deletions = totals["deleted_by_customer"].as_i64().unwrap_or(-1)
        + totals["deleted_by_member"].as_i64().unwrap_or(-1);
    let exact = refused == 0
        && counts.contacts as usize == adds
        && counts.relations as usize == live
        && counts.relations_ended as usize == plan.deletions
        && totals["adds"].as_i64() == Some(adds as i64)
        && report_deletions == plan.deletions as i64
        && [&redirects, &busy]
            .iter()
            .all(|r| r.failed == 0 && r.counted == r.sent as i64);
    println!(
        "siyu: {} contacts, {} live relations, {} ended; exact: {exact}",
        counts.contacts, counts.relations, counts.relations_ended
    );
    let summary = json!({
        "bench": "acquisition",
        "backend": format!("{:?}", store.backend()),
        "codes": bench.codes,
        "callbacks": bench.callbacks,
        "adds": adds,
        "deletions": plan.deletions,
        "acked_per_s": acked_rate.round(),
        "applied_per_s": applied_rate.round(),
        "applied_s": (applied_s * 10.0).round() / 10.0,
        "orders": bench.orders,
        "first_orders": totals["first_orders"],
        "report_ms": (report_ms * 10.0).round() / 10.0,
        "redirects": redirects.sent + busy.sent,
        "redirects_per_s": bench.clicks_per_s,
        "redirect_p50_ms": (redirects.p50_ms * 100.0).round() / 100.0,
        "redirect_p99_ms": (redirects.p99_ms * 100.0).round() / 100.0,
        "redirect_max_ms": (redirects.max_ms * 10.0).round() / 10.0,
        "clicks_counted": redirects.counted + busy.counted,
        "redirect_p99_after_flood_ms": (busy.p99_ms * 100.0).round() / 100.0,
        "exact": exact,
    });
    node.shutdown().await;
    println!("{summary}");
    if !exact {
        bail!("the result is not exact: {counts:?}, report totals {totals}");
    }
    Ok(())
}

fn print_redirects(what: &str, r: &crate::bench_links::RedirectFigures, rate: usize) {
    println!(
        "{what}: {} at {rate}/s, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, {} failed; {} clicks counted",
        r.sent, r.p50_ms, r.p99_ms, r.max_ms, r.failed, r.counted
    );
}

/// Syncs the corp's staff (members onto staff) with the node's runner.
async fn sync_staff(
    store: &siyu_store::Store,
    tenant: siyu_domain::ids::TenantId,
    connector: ConnectorId,
) -> anyhow::Result<()> {
    let job = NewJob::new(
        siyu_domain::jobs::kind::WECOM_SYNC,
        serde_json::to_value(WecomSyncPayload {
            connector_id: connector,
            scope: SyncScope::Staff,
        })?,
    )
    .for_tenant(tenant);
    let job = store.enqueue(&[job]).await?[0].context("the staff sync was not enqueued")?;
    let scope = store.tenant(tenant);
    loop {
        let got = scope.get_job(job).await?;
        if got.state.is_finished() {
            if got.state != siyu_domain::jobs::JobState::Done {
                bail!("the staff sync ended {:?}: {:?}", got.state, got.last_error);
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether no relation changes job waits or runs.
/// Whether no job is due or running (jobs scheduled for later, such as a sweep's next
/// turn, do not count).
async fn jobs_settled(scope: &siyu_store::TenantScope<'_>) -> anyhow::Result<bool> {
    for state in [
        siyu_domain::jobs::JobState::Running,
        siyu_domain::jobs::JobState::Waiting,
    ] {
        let jobs = scope
            .list_jobs(
                siyu_domain::page::PageRequest::first(100),
                &siyu_store::JobFilter {
                    state: Some(state),
                    kind: None,
                },
            )
            .await?;
        let now = siyu_store::now_ms();
        if jobs.items.iter().any(|j| j.run_at <= now) {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn bulk_jobs_done(scope: &siyu_store::TenantScope<'_>) -> anyhow::Result<bool> {
    let jobs = scope
        .list_jobs(
            siyu_domain::page::PageRequest::first(100),
            &siyu_store::JobFilter {
                kind: Some(siyu_domain::jobs::kind::WECOM_RELATION_CHANGES.into()),
                ..Default::default()
            },
        )
        .await?;
    Ok(jobs.items.iter().all(|j| j.state.is_finished()))
}

/// Orders by the customers added, through `/v1/batch` (100 a request, 8 at a time),
/// each at a time after its customer's add: a third within 30 days of it.
async fn send_orders(
    http: &reqwest::Client,
    base: &str,
    write_key: &str,
    add_times: &[u64],
    orders: usize,
    now_s: u64,
) -> anyhow::Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut batches: Vec<Value> = Vec::new();
    let mut batch = Vec::new();
    for o in 0..orders {
        let n = rng.gen_range(0..add_times.len());
        let after = if rng.gen_range(0..3) == 0 {
            rng.gen_range(0..30 * 86_400)
        } else {
            rng.gen_range(0..120 * 86_400)
        };
        let at = (add_times[n] + 600 + after).min(now_s);
        let total = rng.gen_range(3_000..50_000) as f64 / 100.0;
        batch.push(json!({
            "type": "track", "event": "Order Completed", "messageId": format!("bench-order-{o}"),
            "anonymousId": format!("wx-{}", external(n as u32)),
            "timestamp": siyu_domain::time::format_rfc3339(at as i64 * 1_000),
            "context": {"externalIds": [{"id": external(n as u32), "type": "wecom_external_userid",
                                         "collection": "users", "encoding": "none"}]},
            "properties": {"order_id": format!("BO{o:07}"), "total": total, "currency": "CNY"},
        }));
        if batch.len() == 100 {
            batches.push(json!({"batch": std::mem::take(&mut batch)}));
        }
    }
    if !batch.is_empty() {
        batches.push(json!({"batch": batch}));
    }
    let batches = Arc::new(batches);
    let next = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..8 {
        let (http, batches, next) = (http.clone(), batches.clone(), next.clone());
        let (url, key) = (format!("{base}/v1/batch"), write_key.to_owned());
        senders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = batches.get(i) else {
                    return Ok::<(), anyhow::Error>(());
                };
                let answer = http
                    .post(&url)
                    .basic_auth(&key, Some(""))
                    .json(body)
                    .send()
                    .await?;
                if !answer.status().is_success() {
                    bail!(
                        "orders answered {}: {}",
                        answer.status(),
                        answer.text().await?
                    );
                }
            }
        }));
    }
    for sender in senders {
        sender.await??;
    }
    Ok(())
}
