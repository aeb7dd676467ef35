//! `siyu bench broadcast`: one mass send to every customer of a tenant through the
//! sandbox channel, on a server of its own (this binary's `serve`, a child process),
//! timed from the request: planning (consent, the frequency cap, one per person), the
//! send rate, and the whole. With `--kill-at F` it kills that server with SIGKILL once
//! a fraction F of the recipients is recorded as sent, starts it again on the same
//! database, and lets the send finish. Either way it then counts what the sandbox
//! received: `doubled` (messages beyond one per customer) and `missed` (recipients with
//! none) must both be 0. The last line is one JSON object.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use siyu_domain::audit::Actor;
use siyu_domain::consent::{ConsentChannel, ConsentStatus};
use siyu_domain::engagement::broadcast::BroadcastState;
use siyu_domain::ids::BroadcastId;
use siyu_domain::secret::SecretKey;
use siyu_store::ConsentChange;
use tokio::process::{Child, Command};

use crate::config::FileConfig;

pub struct BroadcastBench {
    pub customers: usize,
    /// One customer in this many has opted out of WeCom (and so of the sandbox).
    pub opted_out_every: usize,
    /// Kill the server once this fraction of the recipients is recorded as sent.
    pub kill_at: Option<f64>,
}

/// The server under test: this binary's `serve` on a port of its own.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn start(url: &str, key: &str, config: &std::path::Path) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(std::env::current_exe()?)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("SIYU_DATABASE_URL", url)
            .env("SIYU_SECRET_KEY", key)
            .env("SIYU_CONFIG", config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the server")?;
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{}/health", server.base)).send().await
                && r.status().is_success()
            {
                return Ok(server);
            }
            anyhow::ensure!(Instant::now() < until, "the server did not answer in 60 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown, no released jobs, as a crash.
    async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

pub async fn run(
    database_url: Option<String>,
    file: &FileConfig,
    bench: BroadcastBench,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = database_url
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let key = SecretKey::generate_base64();
    let store = crate::open_store(&url, file, Some(key.clone())).await?;
    println!("backend: {:?}", store.backend());
    let (tenant, token) = crate::bench::bench_tenant(&store, "broadcast").await?;
    let scope = store.tenant(tenant.id);

    // the customers, outside the timed part
    let began = Instant::now();
    let ids = scope
        .seed_customers(&format!("{}-", tenant.name), bench.customers)
        .await?;
    let opt_outs: Vec<_> = ids
        .iter()
        .step_by(bench.opted_out_every.max(1))
        .map(|id| {
            let change = ConsentChange {
                channel: ConsentChannel::Wecom,
                status: ConsentStatus::OptOut,
                source: "bench".into(),
                note: None,
                at: None,
            };
            (*id, change)
        })
        .collect();
    for part in opt_outs.chunks(5_000) {
        scope.record_consents(part, false, &Actor::cli()).await?;
    }
    println!(
        "customers: {} made in {:.1} s, {} opted out",
        ids.len(),
        began.elapsed().as_secs_f64(),
        opt_outs.len()
    );

    // the server: jobs of a killed worker are taken again after a 5 s lease
    let config = dir.path().join("bench.toml");
    std::fs::write(&config, "job_lease_secs = 5\n")?;
    let mut server = Server::start(&url, &key, &config).await?;
    let http = reqwest::Client::new();
    let everyone = json!("everyone");
    // the audience index is built on first use, outside the timed part
    let began = Instant::now();
    let preview: Value = http
        .post(format!("{}/api/v1/broadcasts/preview", server.base))
        .bearer_auth(&token)
        .json(&json!({"audience": everyone}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    println!(
        "preview (index built): {} recipients in {:.1} s",
        preview["recipients"],
        began.elapsed().as_secs_f64()
    );

    // timed: the request, planning, every batch
    let began = Instant::now();
    let made: Value = http
        .post(format!("{}/api/v1/broadcasts", server.base))
        .bearer_auth(&token)
        .json(&json!({"name": "bench", "audience": everyone, "text": "双十二，老朋友专享"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = BroadcastId(made["id"].as_i64().context("the send's id")?);
    let mut planned_at = None;
    let mut killed = None;
    let send = loop {
        let send = scope.get_broadcast(id).await?;
        if planned_at.is_none() && send.recipients.is_some() {
            planned_at = Some(began.elapsed());
        }
        if let (Some(fraction), None, Some(recipients)) = (bench.kill_at, killed, send.recipients)
            && send.sent as f64 >= fraction * recipients as f64
        {
            let at = began.elapsed();
            server.kill().await?;
            println!(
                "killed the server (SIGKILL) at {} of {recipients} sent, {:.1} s in",
                send.sent,
                at.as_secs_f64()
            );
            server = Server::start(&url, &key, &config).await?;
            killed = Some(send.sent);
        }
        if matches!(send.state, BroadcastState::Sent | BroadcastState::Cancelled) {
            break send;
        }
        anyhow::ensure!(
            began.elapsed() < Duration::from_secs(1_800),
            "the send did not finish in 30 minutes: {} of {:?} sent",
            send.sent,
            send.recipients
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let end_to_end = began.elapsed();
    server.kill().await?;
    let planning = planned_at.unwrap_or(end_to_end);
    let recipients = send.recipients.unwrap_or(0);
    let sending_s = (end_to_end - planning).as_secs_f64();
    let send_per_s = recipients as f64 / sending_s.max(1e-9);
    let received = scope.sandbox_count(id).await?;
    let doubled = received.messages - received.customers;
    // recipients the sandbox holds no message for, and anyone it holds one for who is
    // no recipient (counted as missed too: the count must be of the right people)
    let missed = received.missed + received.strangers;
    println!(
        "planning: {:.2} s ({recipients} recipients, left out: {:?})",
        planning.as_secs_f64(),
        send.excluded
    );
    println!(
        "sending: {recipients} in {sending_s:.2} s, {send_per_s:.0} messages/s recorded as sent"
    );
    println!(
        "end to end: {:.2} s; the sandbox holds {} messages for {} customers: {doubled} doubled, {missed} missed",
        end_to_end.as_secs_f64(),
        received.messages,
        received.customers
    );
    store.close().await;
    let summary = json!({
        "bench": "broadcast",
        "backend": format!("{:?}", store.backend()).to_lowercase(),
        "customers": bench.customers,
        "recipients": recipients,
        "planning_s": (planning.as_secs_f64() * 100.0).round() / 100.0,
        "send_per_s": send_per_s.round(),
        "end_to_end_s": (end_to_end.as_secs_f64() * 100.0).round() / 100.0,
        "killed_at_sent": killed,
        "doubled": doubled,
        "missed": missed,
    });
    println!("{summary}");
    anyhow::ensure!(
        doubled == 0 && missed == 0,
        "not exactly once: {doubled} doubled, {missed} missed"
    );
    Ok(())
}
