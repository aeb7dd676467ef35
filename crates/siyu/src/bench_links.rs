//! The tracked-link part of `siyu bench acquisition`: the redirect latency of a tracked
//! link at a steady rate of requests.
//!
//! Open loop: requests are started on a fixed schedule (`rate` a second for `seconds`),
//! whether or not earlier ones were answered, and each one's latency is measured from
//! the moment it was due, so a stall shows in the figures instead of slowing the load
//! (no coordinated omission). Visitors come from a pool, as people return; each click
//! is answered once its event is in the ingest log. Then the clicks are checked on the
//! link's report once applied: every click answered counted once.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// What the redirect phase measured.
pub struct RedirectFigures {
    pub sent: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Requests answered with anything but a 302 to the link's target.
    pub failed: usize,
    /// Clicks the link's report counts once applied.
    pub counted: i64,
}

/// Registers the destination (once), makes a link named `name` through the API and
/// follows it at `rate` a second for `seconds`.
pub async fn measure(
    base: &str,
    token: &str,
    name: &str,
    rate: usize,
    seconds: u64,
    store: &siyu_store::Store,
) -> anyhow::Result<RedirectFigures> {
    let api = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        api.post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let registered = post(
        "/api/v1/link-destinations",
        json!({"url_prefix": "https://shop.example.com/"}),
    )
    .await?;
    if registered.status() != reqwest::StatusCode::CONFLICT {
        registered
            .error_for_status()
            .context("registering the destination")?;
    }
    let link: Value = post(
        "/api/v1/links",
        json!({"name": name, "destination": "https://shop.example.com/promo",
               "utm_source": "douyin", "utm_campaign": "bench"}),
    )
    .await?
    .error_for_status()
    .context("making the link")?
    .json()
    .await?;
    let url = format!("{base}{}", link["path"].as_str().context("a link path")?);
    let target = link["target"].as_str().context("a target")?.to_owned();

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(256)
        .build()?;
    let total = rate * seconds as usize;
    let every = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = started + every * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let (client, url, target) = (client.clone(), url.clone(), target.clone());
        // a pool of 5,000 returning visitors
        let visitor = format!("{:016x}", (i % 5_000) as u64 + 0xbe00_0000_0000);
        requests.spawn(async move {
            let answer = client
                .get(&url)
                .header(
                    reqwest::header::USER_AGENT,
                    "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 Mobile/15E148 \
                     MicroMessenger/8.0.47 NetType/WIFI",
                )
                .header(reqwest::header::COOKIE, format!("siyu_visitor={visitor}"))
                .send()
                .await;
            let ok = matches!(&answer, Ok(a) if a.status() == 302
                && a.headers().get("location").and_then(|l| l.to_str().ok()) == Some(target.as_str()));
            (due.elapsed(), ok)
        });
    }
    let mut latencies = Vec::with_capacity(total);
    let mut failed = 0;
    while let Some(done) = requests.join_next().await {
        let (latency, ok) = done?;
        latencies.push(latency.as_secs_f64() * 1_000.0);
        failed += usize::from(!ok);
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    while store.log_backlog().await? > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let today = siyu_domain::time::format_rfc3339(siyu_store::now_ms());
    let yesterday = siyu_domain::time::format_rfc3339(siyu_store::now_ms() - 86_400_000);
    let report: Value = api
        .get(format!(
            "{base}/api/v1/links/report?from={}&to={}",
            &yesterday[..10],
            &today[..10]
        ))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let counted = report["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["link_id"] == link["id"]))
        .and_then(|row| row["clicks"].as_i64())
        .unwrap_or(-1);
    if latencies.is_empty() {
        bail!("no redirect was measured");
    }
    Ok(RedirectFigures {
        sent: total,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: latencies[latencies.len() - 1],
        failed,
        counted,
    })
}
