//! `siyu bench wecom-sync`: a full WeCom sync of the benchmark corp (the stand-in, in
//! this process: 100,000 external contacts across 50 members, corp tags on most
//! relations) into a fresh embedded store, run as the `wecom.sync` job by a runner of
//! default settings. Prints the time, the calls made (and any 45009), contacts a
//! second, and checks the result is exact: every contact, relation and mirrored tag
//! once. The last line is one JSON object.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use siyu_domain::audit::Actor;
use siyu_domain::connector::{ConnectorConfig, SyncScope, WecomSyncPayload};
use siyu_domain::jobs::JobState;
use siyu_domain::secret::SecretKey;
use siyu_domain::tenancy::NewTenant;
use siyu_runtime::{Runner, Services};
use siyu_store::NewJob;
use siyu_wecom_standin::{Corp, GENERATED_CORP_ID, GENERATED_SECRET, GenerateSpec, Standin};

use crate::config::FileConfig;

pub struct WecomSyncBench {
    pub contacts: usize,
    pub members: usize,
}

pub async fn run(
    database_url: Option<String>,
    file: &FileConfig,
    bench: WecomSyncBench,
) -> anyhow::Result<()> {
    let spec = GenerateSpec {
        members: bench.members,
        contacts: bench.contacts,
        ..GenerateSpec::default()
    };
    let began = Instant::now();
    let corp = tokio::task::spawn_blocking(move || Corp::generate(&spec)).await?;
    let (contacts, relations) = (corp.contact_count(), corp.relation_count());
    println!(
        "stand-in corp: {contacts} contacts, {relations} follow relations, {} members (generated in {:.1} s)",
        bench.members,
        began.elapsed().as_secs_f64()
    );
    let standin = Standin::start(corp)?;
    let dir = tempfile::tempdir()?;
    let url = database_url
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let store = crate::open_store(&url, file, Some(SecretKey::generate_base64())).await?;
    println!("backend: {:?}", store.backend());
    let stamp = siyu_store::now_ms();
    let (tenant, _) = store
        .create_tenant(
            &NewTenant::new(
                &format!("wecom-bench-{stamp}"),
                &format!("admin-{stamp}@bench.example.com"),
                "bench-pass-7a9",
            )?,
            &Actor::cli(),
        )
        .await?;
    let scope = store.tenant(tenant.id);
    let config = ConnectorConfig::new(
        "wecom",
        "bench",
        &json!({
            "corp_id": GENERATED_CORP_ID,
            "secret": GENERATED_SECRET,
            "token": "benchToken",
            "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
            "api_base_url": standin.base_url(),
        }),
    )?;
    let connector = scope.create_connector(&config, &Actor::cli()).await?.id;
    let services = Services {
        store: store.clone(),
        audiences: siyu_runtime::audience::Audiences::start(store.clone(), None).await?,
        wecom: siyu_runtime::wecom::WecomCalls::new(),
    };
    let handle = Runner::new(store.clone(), format!("bench-wecom-{stamp}"))
        .handler(siyu_runtime::wecom::sync::handler(&services))
        .start();

    let began = Instant::now();
    let mut job = NewJob::new(
        siyu_domain::jobs::kind::WECOM_SYNC,
        serde_json::to_value(WecomSyncPayload {
            connector_id: connector,
            scope: SyncScope::All,
        })?,
    );
    job.tenant = Some(tenant.id);
    let job = store.enqueue(&[job]).await?[0].context("the sync job was not enqueued")?;
    let done = loop {
        let got = scope.get_job(job).await?;
        if got.state.is_finished() {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let seconds = began.elapsed().as_secs_f64();
    handle.shutdown().await;
    if done.state != JobState::Done {
        bail!("the sync ended {:?}: {:?}", done.state, done.last_error);
    }
    let counts = scope.wecom_counts(connector).await?;
    let mut calls: BTreeMap<String, u64> = BTreeMap::new();
    let mut refused_45009 = 0;
    for call in standin.call_log() {
        *calls.entry(call.path).or_default() += 1;
        if call.errcode == 45009 {
            refused_45009 += 1;
        }
    }
    let total_calls: u64 = calls.values().sum();
    let exact = counts.contacts as usize == contacts
        && counts.relations as usize == relations
        && counts.customers as usize == contacts;
    let rate = contacts as f64 / seconds;
    println!(
        "synced: {} contacts onto {} profiles, {} follow relations, {} mirrored tags, {} members",
        counts.contacts, counts.customers, counts.relations, counts.mirrored_tags, counts.members
    );
    println!(
        "time: {seconds:.1} s, {rate:.0} contacts/s; calls: {total_calls} ({} batch/get_by_user), 45009: {refused_45009}; exact: {exact}",
        calls
            .get("externalcontact/batch/get_by_user")
            .copied()
            .unwrap_or(0)
    );
    let summary = json!({
        "bench": "wecom-sync",
        "backend": format!("{:?}", store.backend()),
        "contacts": contacts,
        "relations": relations,
        "seconds": (seconds * 10.0).round() / 10.0,
        "contacts_per_s": rate.round(),
        "calls": total_calls,
        "calls_by_api": calls,
        "refused_45009": refused_45009,
        "exact": exact,
    });
    println!("{summary}");
    if !exact {
        bail!("the sync is not exact: {counts:?}");
    }
    Ok(())
}
