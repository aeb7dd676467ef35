//! `siyu demo`: a ready-to-try siyu on the embedded store. The first run creates a demo
//! tenant — a group with two brands and their stores, staff in every built-in role and
//! store guides, 50,000 customers with a year of behaviour and orders
//! ([`crate::demo_data`]), tags, tag rules and segments — and later runs reuse it. A
//! WeCom stand-in runs in the same process as the demo's corp (members, customers, corp
//! tags, group chats), connected and synced, and pushes its callbacks to the server.
//! Later capabilities add their demo data here.

use anyhow::Context;
use siyu_domain::access::DataScope;
use siyu_domain::audit::Actor;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::StaffId;
use siyu_domain::tenancy::{NewStaff, NewTenant, NewUnit, UnitKind};
use siyu_store::Store;

use crate::config::FileConfig;
use crate::demo_data::{self, Brand};

const DAY_MS: i64 = 86_400_000;

/// How big a demo to make, and from which seed.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    pub customers: usize,
    pub seed: u64,
}

pub const DEMO_DATABASE_URL: &str = "sqlite://siyu-demo.db";
pub const DEMO_TENANT: &str = "demo";
pub const DEMO_ADMIN_EMAIL: &str = "admin@demo.siyu.local";
/// The demo's password, for every demo staff member. The demo listens on localhost only
/// unless told otherwise; never use a demo database in production.
pub const DEMO_PASSWORD: &str = "siyu-demo-2026";

pub async fn run(
    database_url: Option<String>,
    listen: Option<String>,
    options: DemoOptions,
    file: &FileConfig,
) -> anyhow::Result<()> {
    let url = database_url.unwrap_or_else(|| DEMO_DATABASE_URL.to_owned());
    let secret_key = match file.secret_key() {
        Some(key) => key,
        // beside a SQLite demo database (restarts open what earlier runs sealed)
        None => {
            crate::key_file::load_or_create(
                &crate::key_file::beside(&url).unwrap_or_else(|| "siyu-demo.key".into()),
            )?
            .key
        }
    };
    let store = crate::open_store(&url, file, Some(secret_key)).await?;
    let created = seed(&store, options).await?;
    // WeCom, in this process: the demo tenant's corp with members, customers, corp tags
    // and group chats, synced into siyu, and pushing its callbacks to this server
    let standin = std::sync::Arc::new(
        siyu_wecom_standin::Standin::start(siyu_wecom_standin::Corp::generate(&DEMO_CORP))
            .context("cannot start the demo's WeCom stand-in")?,
    );
    let connector = demo_connector(&store, &standin.base_url()).await?;
    let config = file.server_config(listen);
    let pushing = standin.clone();
    let banner = Box::new(move |addr: std::net::SocketAddr| {
        let callback = format!("http://{addr}/callbacks/wecom/{}", connector.0);
        if let Err(e) = pushing.set_callback(&callback, DEMO_WECOM_TOKEN, DEMO_WECOM_AES_KEY) {
            tracing::warn!(error = %e, "the demo's WeCom stand-in cannot push callbacks");
        }
        println!(
            "siyu demo ({}) on {}",
            if created {
                "new demo data"
            } else {
                "existing demo data"
            },
            siyu_store::redact_url(&url)
        );
        println!("  console and API: http://{addr}/");
        println!("  API reference:   http://{addr}/api/openapi.json");
        println!("  sign in:         {DEMO_ADMIN_EMAIL} / {DEMO_PASSWORD}");
        println!("  operations lead: ops@demo.siyu.local / {DEMO_PASSWORD}");
        println!("  service agent:   service@demo.siyu.local / {DEMO_PASSWORD}");
        println!(
            "  other staff:     content@, growth@, analyst@, guide01@ … guide20@demo.siyu.local (same password)"
        );
        println!(
            "  WeCom:           a stand-in corp at {} (connector {}, synced on first run)",
            pushing.base_url(),
            connector.0
        );
        println!("http://{addr}/");
    });
    let node = file.node_config(siyu_runtime::Role::All);
    let served = crate::serve(store, config, node, Some(banner)).await;
    drop(standin);
    served
}

/// The demo's WeCom corp: a dozen members with 600 customers, three corp tag groups,
/// and the group chats the generator makes.
const DEMO_CORP: siyu_wecom_standin::GenerateSpec = siyu_wecom_standin::GenerateSpec {
    members: 12,
    contacts: 600,
    tag_groups: 3,
    tags_per_group: 4,
    tagged_share: 0.6,
    seed: 2026,
};
const DEMO_CONNECTOR: &str = "演示企业微信";
const DEMO_WECOM_TOKEN: &str = "siyuDemoCallbackToken2026";
const DEMO_WECOM_AES_KEY: &str = "c2l5dURlbW9FbmNvZGluZ0FFU0tleUZvclRoZVN0YW4";

/// The demo tenant's WeCom connector, pointed at the stand-in (its port changes from
/// run to run); made, and its first sync asked for, on the first run.
async fn demo_connector(
    store: &Store,
    api_base_url: &str,
) -> anyhow::Result<siyu_domain::ids::ConnectorId> {
    let tenant = store
        .find_tenant_by_name(DEMO_TENANT)
        .await?
        .context("the demo tenant is missing")?;
    let scope = store.tenant(tenant.id);
    let actor = Actor::cli();
    let config = serde_json::json!({
        "corp_id": siyu_wecom_standin::GENERATED_CORP_ID,
        "secret": siyu_wecom_standin::GENERATED_SECRET,
        "token": DEMO_WECOM_TOKEN,
        "encoding_aes_key": DEMO_WECOM_AES_KEY,
        "api_base_url": api_base_url,
        "agent_id": 1000002,
        "welcome": "您好，我是露米茶饮的专属顾问，很高兴认识您！",
    });
    let existing = scope
        .list_connectors()
        .await?
        .into_iter()
        .find(|c| c.name == DEMO_CONNECTOR);
    if let Some(connector) = existing {
        let stored = scope.connector_secrets(connector.id).await?;
        let changed = siyu_domain::connector::ConnectorConfig::changed(
            stored.connector.kind,
            &stored.connector.name,
            &stored.connector.config,
            &stored.secrets,
            None,
            Some(&config),
        )?;
        scope
            .update_connector(connector.id, &changed, &actor)
            .await?;
        return Ok(connector.id);
    }
    let new = siyu_domain::connector::ConnectorConfig::new("wecom", DEMO_CONNECTOR, &config)?;
    let connector = scope.create_connector(&new, &actor).await?;
    let payload = serde_json::to_value(siyu_domain::connector::WecomSyncPayload {
        connector_id: connector.id,
        scope: siyu_domain::connector::SyncScope::All,
    })?;
    scope
        .ask_connector_sync(
            connector.id,
            siyu_domain::jobs::kind::WECOM_SYNC,
            payload,
            None,
            &actor,
        )
        .await?;
    Ok(connector.id)
}

/// Creates the demo tenant unless it exists; says whether it did.
pub async fn seed(store: &Store, options: DemoOptions) -> anyhow::Result<bool> {
    let tenants = store.list_tenants().await?;
    if tenants.iter().any(|t| t.name != DEMO_TENANT) {
        // the demo's admin has a published password: never seed it beside real tenants
        anyhow::bail!(
            "this database holds tenants other than the demo; `siyu demo` runs only on a demo \
             database (leave out --database-url and SIYU_DATABASE_URL to use {DEMO_DATABASE_URL})"
        );
    }
    if !tenants.is_empty() {
        return Ok(false);
    }
    let actor = Actor::cli();
    let (tenant, _) = store
        .create_tenant(
            &NewTenant::new(DEMO_TENANT, DEMO_ADMIN_EMAIL, DEMO_PASSWORD)?.in_time_zone(
                siyu_domain::time::TimeZone::parse("time_zone", "Asia/Shanghai")?,
            ),
            &actor,
        )
        .await?;
    let scope = store.tenant(tenant.id);
    let root = scope.root_unit().await?;
    let unit = |parent, kind, name: &str| NewUnit::new(parent, kind, name);

    let tea = scope
        .create_unit(
            &unit(root.id, UnitKind::Brand, "露米茶饮 Lumi Tea")?,
            &actor,
        )
        .await?;
    let jingan = scope
        .create_unit(&unit(tea.id, UnitKind::Store, "上海静安店")?, &actor)
        .await?;
    let xihu = scope
        .create_unit(&unit(tea.id, UnitKind::Store, "杭州西湖店")?, &actor)
        .await?;
    let guanqian = scope
        .create_unit(&unit(tea.id, UnitKind::Store, "苏州观前店")?, &actor)
        .await?;
    let skin = scope
        .create_unit(
            &unit(root.id, UnitKind::Brand, "云杉护肤 Yunshan Skin")?,
            &actor,
        )
        .await?;
    let east = scope
        .create_unit(&unit(skin.id, UnitKind::Subsidiary, "华东子公司")?, &actor)
        .await?;
    let xinjiekou = scope
        .create_unit(&unit(east.id, UnitKind::Store, "南京新街口店")?, &actor)
        .await?;
    let huaihai = scope
        .create_unit(&unit(skin.id, UnitKind::Store, "上海淮海路店")?, &actor)
        .await?;

    let staff = [
        (
            "ops@demo.siyu.local",
            "王芳",
            "operations",
            root.id,
            DataScope::Tenant,
        ),
        (
            "service@demo.siyu.local",
            "李娜",
            "service",
            jingan.id,
            DataScope::Own,
        ),
        (
            "content@demo.siyu.local",
            "陈晨",
            "content",
            tea.id,
            DataScope::UnitSubtree,
        ),
        (
            "growth@demo.siyu.local",
            "赵磊",
            "growth",
            root.id,
            DataScope::Tenant,
        ),
        (
            "analyst@demo.siyu.local",
            "刘洋",
            "analyst",
            root.id,
            DataScope::Tenant,
        ),
    ];
    let mut service_agent = None;
    for (email, name, role, unit_id, data_scope) in staff {
        let new = NewStaff::new(unit_id, role, email, name, Some(DEMO_PASSWORD), data_scope)?;
        let created = scope.create_staff(&new, &actor).await?;
        if role == "service" {
            service_agent = Some(created.id);
        }
    }
    // four store guides (导购) per store, each looking after their own customers
    let stores = [
        (0, jingan.id),
        (0, xihu.id),
        (0, guanqian.id),
        (1, xinjiekou.id),
        (1, huaihai.id),
    ];
    let names = [
        "周婷", "吴杰", "郑雪", "孙浩", "马琳", "朱悦", "胡博", "林佳", "何颖", "高宇",
    ];
    let mut guides: Vec<Vec<StaffId>> = vec![Vec::new(), Vec::new()];
    // the demo's service agent is a tea guide too, so their customer list is not empty
    guides[0].extend(service_agent);
    for (n, (brand, store_id)) in stores.iter().flat_map(|s| [*s; 4]).enumerate() {
        let new = NewStaff::new(
            store_id,
            "service",
            &format!("guide{:02}@demo.siyu.local", n + 1),
            &format!("{}{}", names[n % names.len()], n / names.len() + 1),
            Some(DEMO_PASSWORD),
            DataScope::Own,
        )?;
        guides[brand].push(scope.create_staff(&new, &actor).await?.id);
    }
    let brands = [
        Brand::tea(tea.id.0, vec![jingan.id.0, xihu.id.0, guanqian.id.0]),
        Brand::skin(skin.id.0, vec![xinjiekou.id.0, huaihai.id.0]),
    ];
    seed_customers(store, tenant.id, &brands, &guides, &options).await?;
    Ok(true)
}

/// The demo's customers ([`crate::demo_data`]): one source per acquisition channel,
/// every event sent through the same ingestion path the tracking API uses, then owners
/// for the customers store staff look after, consent and a note.
async fn seed_customers(
    store: &Store,
    tenant: siyu_domain::ids::TenantId,
    brands: &[Brand],
    guides: &[Vec<StaffId>],
    options: &DemoOptions,
) -> anyhow::Result<()> {
    use siyu_domain::customer::SourceKind;
    use siyu_domain::tracking::{BatchDefaults, read_event};

    let started = std::time::Instant::now();
    let scope = store.tenant(tenant);
    let mut sources = Vec::new();
    for channel in demo_data::CHANNELS {
        let kind = SourceKind::parse(channel.kind).context("a demo source kind")?;
        let (_, key) = scope
            .create_source(channel.source, kind, &Actor::cli())
            .await?;
        sources.push(
            store
                .resolve_write_key(&key)
                .await?
                .context("the demo source's key resolves")?,
        );
    }
    let now = siyu_store::now_ms();
    // yesterday, so that no generated event lies ahead of the clock
    let today = now - now.rem_euclid(DAY_MS) - DAY_MS;
    let customers = demo_data::generate(options.seed, options.customers, today, brands);
    let total: usize = customers.iter().map(|c| c.events.len()).sum();
    let bar = indicatif::ProgressBar::new(total as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "demo data {bar:40} {pos}/{len} events ({per_sec}, {eta})",
        )?,
    );
    let mut ids: Vec<Option<CustomerId>> = vec![None; customers.len()];
    let mut items = Vec::with_capacity(2000);
    let mut owners_of_items: Vec<usize> = Vec::with_capacity(2000);
    for (i, customer) in customers.iter().enumerate() {
        let source = sources[customer.channel];
        for (n, event) in customer.events.iter().enumerate() {
            let message_id = format!("demo-{i}-{n}");
            let event = read_event(
                n,
                event.clone(),
                None,
                &BatchDefaults::default(),
                now,
                false,
                || message_id.clone(),
            )
            .map_err(|r| anyhow::anyhow!("demo event refused: {}", r.reason))?
            .with_commerce(source.kind.sales_channel())
            .map_err(|reason| anyhow::anyhow!("demo order refused: {reason}"))?;
            items.push(siyu_store::IngestItem { source, event });
            owners_of_items.push(i);
        }
        if items.len() >= 2000 || i + 1 == customers.len() {
            let outcomes = store.ingest(&items).await?;
            for (outcome, &who) in outcomes.iter().zip(&owners_of_items) {
                if let siyu_store::IngestOutcome::Stored(c) = outcome {
                    ids[who] = Some(*c);
                }
            }
            bar.inc(items.len() as u64);
            items.clear();
            owners_of_items.clear();
        }
    }
    bar.finish_and_clear();
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        "demo events stored"
    );
    let ids: Vec<CustomerId> = ids
        .into_iter()
        .map(|id| id.context("every demo customer is stored"))
        .collect::<anyhow::Result<_>>()?;

    // store guides look after the WeCom friends and some mini-program customers of their
    // brand, in turn
    let mut assigned: std::collections::HashMap<StaffId, Vec<CustomerId>> = Default::default();
    let mut turn = vec![0usize; guides.len()];
    for (customer, id) in customers.iter().zip(&ids) {
        let staff = &guides[customer.brand];
        if customer.owned && !staff.is_empty() {
            let guide = staff[turn[customer.brand] % staff.len()];
            turn[customer.brand] += 1;
            assigned.entry(guide).or_default().push(*id);
        }
    }
    for (guide, customers) in &assigned {
        scope
            .assign_owner(customers, Some(*guide), &Actor::cli())
            .await?;
    }
    let mut opt_outs = Vec::new();
    for (customer, id) in customers.iter().zip(&ids) {
        let channel = if customer.all_opt_out {
            siyu_domain::consent::ConsentChannel::All
        } else if customer.sms_opt_out {
            siyu_domain::consent::ConsentChannel::Sms
        } else {
            continue;
        };
        opt_outs.push((
            *id,
            siyu_store::ConsentChange {
                channel,
                status: siyu_domain::consent::ConsentStatus::OptOut,
                source: "短信回复TD".into(),
                note: None,
                at: None,
            },
        ));
    }
    scope
        .record_consents(&opt_outs, false, &Actor::cli())
        .await?;
    if let Some(first) = ids.first() {
        scope
            .add_note(*first, "喜欢桂花乌龙，中秋前联系推荐礼盒", &Actor::cli())
            .await?;
    }
    let oolong: Vec<CustomerId> = customers
        .iter()
        .zip(&ids)
        .filter(|(c, _)| c.likes_oolong)
        .map(|(_, id)| *id)
        .collect();
    seed_audiences(store, tenant, &ids, &oolong).await?;
    crate::demo_acquisition::seed(store, tenant, &ids, &guides[0]).await?;
    crate::demo_content::seed(store, tenant).await?;
    eprintln!(
        "demo data: {} customers, {total} events in {:.1} s",
        ids.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Tag groups and tags on some customers, a tag rule, and saved segments (dynamic and
/// static), so the audience pages have something to show.
async fn seed_audiences(
    store: &Store,
    tenant: siyu_domain::ids::TenantId,
    customers: &[siyu_domain::customer::CustomerId],
    oolong: &[siyu_domain::customer::CustomerId],
) -> anyhow::Result<()> {
    use siyu_domain::audience::{TagId, TagOrigin};
    use siyu_store::{NewSegment, NewTagRule};

    let scope = store.tenant(tenant);
    let actor = Actor::cli();
    let value = scope.create_tag_group("客户价值", None, 0, &actor).await?;
    let interest = scope.create_tag_group("兴趣偏好", None, 1, &actor).await?;
    let mut tags = Vec::new();
    for (group, name, colour) in [
        (value.id, "高净值", "#f5222d"),
        (value.id, "复购", "#fa8c16"),
        (value.id, "流失预警", "#8c8c8c"),
        (value.id, "分享达人", "#722ed1"),
        (interest.id, "乌龙茶", "#52c41a"),
        (interest.id, "礼盒", "#1677ff"),
    ] {
        tags.push(scope.create_tag(group, name, colour, 0, &actor).await?.id);
    }
    let tag = |n: usize| -> TagId { tags[n] };
    scope
        .change_tags(
            oolong,
            &[tag(4)],
            &[],
            TagOrigin::Manual,
            Some("常看乌龙茶"),
            &actor,
        )
        .await?;
    let gift_seekers: Vec<_> = customers.iter().skip(2).step_by(9).copied().collect();
    scope
        .change_tags(
            &gift_seekers,
            &[tag(5)],
            &[],
            TagOrigin::Manual,
            Some("咨询过中秋礼盒"),
            &actor,
        )
        .await?;
    for (name, definition, tag_index) in [
        ("高净值", "orders.sum(last 365d) >= 2000", 0),
        ("复购", "orders.count(last 180d) >= 2", 1),
        (
            "流失预警",
            r#"lifecycle = "lapsed" and orders.count() >= 1"#,
            2,
        ),
    ] {
        scope
            .create_tag_rule(
                &NewTagRule {
                    name: name.into(),
                    condition: siyu_audience::parse(definition)?,
                    add: vec![tag(tag_index)],
                    remove: Vec::new(),
                    enabled: true,
                },
                &actor,
            )
            .await?;
    }
    scope
        .create_tag_rule(
            &NewTagRule {
                name: "分享达人".into(),
                condition: siyu_audience::parse(r#"performed("Content Shared", last 90d)"#)?,
                add: vec![tag(3)],
                remove: Vec::new(),
                enabled: true,
            },
            &actor,
        )
        .await?;
    for (name, description, definition) in [
        (
            "江浙金卡会员",
            "南京、杭州、苏州的金卡会员",
            r#"trait.city in ("南京", "杭州", "苏州") and trait.member_level = "金卡""#,
        ),
        (
            "高净值复购",
            "高净值且 90 天内下过单",
            r#"tag("高净值") and orders.count(last 90d) >= 1"#,
        ),
        (
            "爱喝乌龙未下单",
            "常看乌龙茶但还没有订单",
            r#"tag("乌龙茶") and orders.count() = 0"#,
        ),
        ("可短信触达", "没有退订短信的客户", r#"consent("sms")"#),
        (
            "618直播活码未下单",
            "扫了 618 直播间活码、还没有下单",
            r#"channel_code("live-618") and orders.count() = 0"#,
        ),
    ] {
        scope
            .create_segment(
                &NewSegment {
                    name: name.into(),
                    description: Some(description.into()),
                    condition: Some(siyu_audience::parse(definition)?),
                    members: Vec::new(),
                },
                &actor,
            )
            .await?;
    }
    scope
        .create_segment(
            &NewSegment {
                name: "中秋礼盒试用名单".into(),
                description: Some("门店推荐的试用客户".into()),
                condition: None,
                members: customers.iter().take(5).copied().collect(),
            },
            &actor,
        )
        .await?;
    Ok(())
}
