//! `siyu bench audience`: builds the audience index of a synthetic tenant (by default
//! 1,000,000 customers, 10,000,000 events, 3,000,000 orders, 200 tags) and measures what
//! a marketer waits for: the live count of a five-clause segment while typing, a full
//! RFM recompute, and the memory the index takes.

use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;
use siyu_audience::catalog::Catalog;
use siyu_audience::facts::day_of;
use siyu_audience::index::{DashboardQuery, IndexBuilder, Period, ScoreSettings};
use siyu_audience::plain::{EvalInput, FilteredCounts};
use siyu_audience::random::{SyntheticShape, synthetic_customer};

pub struct AudienceBench {
    pub customers: u64,
    pub events: u64,
    pub orders: u64,
    pub tags: i64,
    pub previews: usize,
    pub seed: u64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn run(b: AudienceBench) -> anyhow::Result<()> {
    let today = day_of(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as i64,
    );
    let shape = SyntheticShape {
        today,
        customers: b.customers,
        events_per_customer: b.events as f64 / b.customers.max(1) as f64,
        orders_per_customer: b.orders as f64 / b.customers.max(1) as f64,
        tags: b.tags,
        units: vec![2, 3, 4, 5],
    };
    let mut rng = StdRng::seed_from_u64(b.seed);
    let rss_before = resident_bytes();
    let mut builder = IndexBuilder::new(ScoreSettings::default(), today);
    let (mut events, mut orders) = (0u64, 0u64);
    let mut building = std::time::Duration::ZERO;
    println!(
        "generating {} customers, ~{} events, ~{} orders, {} tags",
        b.customers, b.events, b.orders, b.tags
    );
    const CHUNK: u64 = 50_000;
    let mut id = 0;
    while id < b.customers {
        let chunk: Vec<_> = (id..(id + CHUNK).min(b.customers))
            .map(|i| synthetic_customer(&mut rng, i as i64 + 1, &shape))
            .collect();
        id += chunk.len() as u64;
        let started = Instant::now();
        for (facts, n) in &chunk {
            events += n;
            orders += facts.orders.len() as u64;
            builder.add(facts);
        }
        building += started.elapsed();
    }
    let started = Instant::now();
    let index = builder.finish();
    building += started.elapsed();
    let rss_after = resident_bytes();
    println!(
        "index of {} customers, {events} events, {orders} orders built in {:.0} ms",
        index.len(),
        building.as_secs_f64() * 1000.0
    );

    let mut catalog = Catalog::default();
    for t in 1..=b.tags {
        catalog.tags.insert(format!("tag{t}"), t);
    }
    for u in [2, 3, 4, 5] {
        catalog.units.insert(u, vec![u]);
    }
    let filtered = FilteredCounts::new();
    let input = EvalInput {
        today,
        zone: siyu_domain::time::TimeZone::UTC,
        catalog: &catalog,
        filtered: &filtered,
    };
    // the issue's definition plus an RFM clause, and one with no tag to narrow it
    // first (every clause scans columns); tags and windows vary per run, as they do
    // while a marketer types
    let time = |make: &dyn Fn(usize) -> String| -> anyhow::Result<(f64, f64, u64, u64)> {
        let mut latencies = Vec::with_capacity(b.previews);
        let mut counts = Vec::new();
        for i in 0..b.previews {
            let text = make(i);
            let started = Instant::now();
            let condition = siyu_audience::parse(&text)?;
            catalog.check(&condition)?;
            let members = index.evaluate(&condition, &input)?;
            let count = members.len();
            let sample = index.ids(&members, 20);
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            counts.push(count);
            std::hint::black_box(sample);
        }
        latencies.sort_by(f64::total_cmp);
        Ok((
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            counts.iter().copied().min().unwrap_or(0),
            counts.iter().copied().max().unwrap_or(0),
        ))
    };
    let (p50, p99, low, high) = time(&|i| {
        let tag = 1 + (i as i64 * 7) % 20;
        let days = [30, 60, 90, 180][i % 4];
        format!(
            r#"tag("tag{tag}") and orders.count(last {days}d) >= 2 and not performed("Complaint Filed", last 30d) and trait.city in ("上海", "杭州") and rfm.r >= 3"#
        )
    })?;
    println!(
        "preview of a five-clause definition ({} runs, {low}–{high} members): p50 {p50:.2} ms, p99 {p99:.2} ms",
        b.previews
    );
    let (scan_p50, scan_p99, low, high) = time(&|i| {
        let days = [30, 60, 90, 180][i % 4];
        let views = 1 + i % 3;
        format!(
            r#"orders.count(last {days}d) >= 2 and trait.city in ("上海", "杭州") and performed("Product Viewed", last 90d) >= {views} and rfm.r >= 3 and consent("sms")"#
        )
    })?;
    println!(
        "preview of a five-clause definition with no tag ({} runs, {low}–{high} members): p50 {scan_p50:.2} ms, p99 {scan_p99:.2} ms",
        b.previews
    );

    let mut index = index;
    let mut rfm_runs = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        index.recompute_rfm(today);
        rfm_runs.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    rfm_runs.sort_by(f64::total_cmp);
    let rfm_ms = rfm_runs[rfm_runs.len() / 2];
    let (_, report) = index.rfm_report(None, None);
    let buyers: u64 = report.values().map(|f| f.customers).sum();
    println!("full RFM recompute over {buyers} buyers: {rfm_ms:.1} ms (median of 5)");
    let started = Instant::now();
    index.recompute_stages(today);
    let stages_ms = started.elapsed().as_secs_f64() * 1000.0;
    println!("lifecycle stages recomputed in {stages_ms:.1} ms");

    // the operations dashboard over the last year, as the console asks for it
    let sources: std::collections::HashMap<i64, String> =
        (1..=8).map(|s| (s, format!("source {s}"))).collect();
    let private_sources: std::collections::HashSet<i64> = (1..=5).collect();
    let private_channels = vec!["wecom".to_string(), "mini_shop".to_string()];
    let mut dashboard_runs = Vec::new();
    let mut acquired = 0;
    for period in [Period::Week, Period::Month, Period::Week] {
        let started = Instant::now();
        let dash = index.dashboard(&DashboardQuery {
            from: today - 364,
            to: today,
            customers: None,
            units: None,
            source_channels: &sources,
            private_sources: &private_sources,
            private_order_channels: &private_channels,
            period,
            retention_channel: None,
        });
        dashboard_runs.push(started.elapsed().as_secs_f64() * 1000.0);
        acquired = dash.funnel.acquired;
    }
    dashboard_runs.sort_by(f64::total_cmp);
    let dashboard_ms = dashboard_runs[1];
    println!(
        "operations dashboard over a year ({acquired} customers acquired): {dashboard_ms:.1} ms (median of 3)"
    );

    let index_bytes = index.memory_bytes();
    let rss = match (rss_before, rss_after) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => 0,
    };
    println!(
        "index memory: {:.0} MB counted, {:.0} MB resident growth while building",
        index_bytes as f64 / 1e6,
        rss as f64 / 1e6
    );
    println!(
        "{}",
        json!({
            "customers": index.len(),
            "events": events,
            "orders": orders,
            "tags": b.tags,
            "index_build_ms": (building.as_secs_f64() * 1000.0).round(),
            "preview_p50_ms": (p50 * 100.0).round() / 100.0,
            "preview_p99_ms": (p99 * 100.0).round() / 100.0,
            "untagged_preview_p50_ms": (scan_p50 * 100.0).round() / 100.0,
            "untagged_preview_p99_ms": (scan_p99 * 100.0).round() / 100.0,
            "rfm_recompute_ms": (rfm_ms * 10.0).round() / 10.0,
            "lifecycle_recompute_ms": (stages_ms * 10.0).round() / 10.0,
            "dashboard_ms": (dashboard_ms * 10.0).round() / 10.0,
            "index_memory_mb": (index_bytes as f64 / 1e6).round(),
            "resident_growth_mb": (rss as f64 / 1e6).round(),
        })
    );
    Ok(())
}
