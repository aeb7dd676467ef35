//! `siyu demo`: a ready-to-try siyu on the embedded store. The first run creates a demo
//! tenant with a unit tree, a few staff, customers with behaviour and orders, tags, a tag
//! rule and segments; later runs reuse it. Later capabilities add their demo data here.

use std::path::PathBuf;

use anyhow::Context;
use siyu_domain::access::DataScope;
use siyu_domain::audit::Actor;
use siyu_domain::secret::SecretKey;
use siyu_domain::tenancy::{NewStaff, NewTenant, NewUnit, UnitKind};
use siyu_store::Store;

use crate::config::FileConfig;

pub const DEMO_DATABASE_URL: &str = "sqlite://siyu-demo.db";
pub const DEMO_TENANT: &str = "demo";
pub const DEMO_ADMIN_EMAIL: &str = "admin@demo.siyu.local";
/// The demo's password, for every demo staff member. The demo listens on localhost only
/// unless told otherwise; never use a demo database in production.
pub const DEMO_PASSWORD: &str = "siyu-demo-2026";

pub async fn run(
    database_url: Option<String>,
    listen: Option<String>,
    file: &FileConfig,
) -> anyhow::Result<()> {
    let url = database_url.unwrap_or_else(|| DEMO_DATABASE_URL.to_owned());
    let secret_key = match file.secret_key() {
        Some(key) => key,
        None => load_or_create_key(&url)?,
    };
    let store = crate::open_store(&url, file, Some(secret_key)).await?;
    let created = seed(&store).await?;
    let config = file.server_config(listen);
    let banner = Box::new(move |addr: std::net::SocketAddr| {
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
        println!(
            "  other staff:     ops@, service@, content@, growth@, analyst@demo.siyu.local (same password)"
        );
        println!("http://{addr}/");
    });
    crate::serve(store, config, Some(banner)).await
}

/// The demo's secret key lives beside a SQLite demo database (mode 0600), so restarts
/// can open the secrets earlier runs sealed.
fn load_or_create_key(url: &str) -> anyhow::Result<String> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .map(|p| PathBuf::from(format!("{}.key", p.split('?').next().unwrap_or(p))))
        .unwrap_or_else(|| PathBuf::from("siyu-demo.key"));
    if let Ok(key) = std::fs::read_to_string(&path) {
        return Ok(key.trim().to_owned());
    }
    let key = SecretKey::generate_base64();
    std::fs::write(&path, format!("{key}\n"))
        .with_context(|| format!("cannot write the demo secret key to {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(key)
}

/// Creates the demo tenant unless it exists; says whether it did.
pub async fn seed(store: &Store) -> anyhow::Result<bool> {
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
            &NewTenant::new(DEMO_TENANT, DEMO_ADMIN_EMAIL, DEMO_PASSWORD)?,
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
    scope
        .create_unit(&unit(tea.id, UnitKind::Store, "杭州西湖店")?, &actor)
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
    scope
        .create_unit(&unit(east.id, UnitKind::Store, "南京新街口店")?, &actor)
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
    for (email, name, role, unit_id, data_scope) in staff {
        let new = NewStaff::new(unit_id, role, email, name, Some(DEMO_PASSWORD), data_scope)?;
        scope.create_staff(&new, &actor).await?;
    }
    seed_customers(store, tenant.id).await?;
    Ok(true)
}

/// A mini-program source and a few dozen customers with a month of behaviour, sent
/// through the same ingestion path the tracking API uses.
async fn seed_customers(store: &Store, tenant: siyu_domain::ids::TenantId) -> anyhow::Result<()> {
    use serde_json::json;
    use siyu_domain::customer::SourceKind;
    use siyu_domain::tracking::{BatchDefaults, read_event};

    let scope = store.tenant(tenant);
    let (_, key) = scope
        .create_source("露米茶饮小程序", SourceKind::MiniProgram, &Actor::cli())
        .await?;
    let source = store
        .resolve_write_key(&key)
        .await?
        .context("the demo source's key resolves")?;
    let family = [
        "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙",
    ];
    let given = ["芳", "娜", "敏", "静", "伟", "强", "磊", "洋", "艳", "军"];
    let cities = ["上海", "杭州", "南京", "苏州", "北京", "深圳"];
    let levels = ["普通", "银卡", "金卡"];
    let products = [
        ("TEA-01", "桂花乌龙", 28),
        ("TEA-02", "茉莉绿茶", 22),
        ("GIFT-01", "中秋礼盒", 168),
    ];
    let now = siyu_store::now_ms();
    let day = 24 * 3600 * 1000;
    let mut items = Vec::new();
    for i in 0..36usize {
        let user = format!("demo-user-{i:03}");
        let anonymous = format!("demo-device-{i:03}");
        let name = format!(
            "{}{}",
            family[i % family.len()],
            given[(i * 7) % given.len()]
        );
        let phone = format!("1380000{:04}", 1000 + i);
        let mut events = vec![
            json!({"type": "page", "name": "首页", "anonymousId": anonymous,
            "timestamp": siyu_domain::time::format_rfc3339(now - (30 - (i % 30) as i64) * day)}),
        ];
        events.push(json!({"type": "identify", "userId": user, "anonymousId": anonymous,
            "traits": {"name": name, "phone": phone, "city": cities[i % cities.len()], "member_level": levels[i % 3]},
            "timestamp": siyu_domain::time::format_rfc3339(now - (29 - (i % 29) as i64) * day)}));
        for k in 0..(i % 5) {
            let (sku, product, price) = products[(i + k) % products.len()];
            let at = now - ((i + k * 3) % 28) as i64 * day;
            events.push(
                json!({"type": "track", "event": "Product Viewed", "userId": user,
                "properties": {"sku": sku, "name": product, "price": price},
                "timestamp": siyu_domain::time::format_rfc3339(at)}),
            );
            if k % 2 == 1 {
                events.push(json!({"type": "track", "event": "Order Completed", "userId": user,
                    "properties": {"order_id": format!("demo-{i}-{k}"), "total": price * 2, "currency": "CNY",
                                   "products": [{"sku": sku, "name": product, "price": price, "quantity": 2}]},
                    "timestamp": siyu_domain::time::format_rfc3339(at + 3_600_000)}));
            }
        }
        if i % 4 == 0 {
            events.push(
                json!({"type": "track", "event": "Content Shared", "userId": user,
                "properties": {"content_id": "autumn-tea-guide", "channel": "wechat_moments"}}),
            );
        }
        for (n, event) in events.into_iter().enumerate() {
            let message_id = format!("demo-{i}-{n}");
            let event = read_event(
                n,
                event,
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
        }
    }
    let stored = store.ingest(&items).await?;
    // a few customers opted out of SMS, and one has a note from service
    let mut customers: Vec<siyu_domain::customer::CustomerId> = stored
        .iter()
        .filter_map(|o| match o {
            siyu_store::IngestOutcome::Stored(c) => Some(*c),
            siyu_store::IngestOutcome::Duplicate => None,
        })
        .collect();
    customers.dedup();
    for customer in customers.iter().step_by(7) {
        scope
            .record_consent(
                *customer,
                &siyu_store::ConsentChange {
                    channel: siyu_domain::consent::ConsentChannel::Sms,
                    status: siyu_domain::consent::ConsentStatus::OptOut,
                    source: "短信回复TD".into(),
                    note: None,
                    at: None,
                },
                &Actor::cli(),
            )
            .await?;
    }
    if let Some(first) = customers.first() {
        scope
            .add_note(*first, "喜欢桂花乌龙，中秋前联系推荐礼盒", &Actor::cli())
            .await?;
    }
    seed_audiences(store, tenant, &customers).await
}

/// Tag groups and tags on some customers, a tag rule, and saved segments (dynamic and
/// static), so the audience pages have something to show.
async fn seed_audiences(
    store: &Store,
    tenant: siyu_domain::ids::TenantId,
    customers: &[siyu_domain::customer::CustomerId],
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
    let every = |step: usize, from: usize| -> Vec<siyu_domain::customer::CustomerId> {
        customers.iter().skip(from).step_by(step).copied().collect()
    };
    for (who, tag_index, reason) in [
        (every(5, 3), 0, "年消费高"),
        (every(3, 1), 1, "半年内多次购买"),
        (every(2, 0), 4, "常看乌龙茶"),
        (every(6, 2), 5, "咨询过中秋礼盒"),
    ] {
        scope
            .change_tags(
                &who,
                &[tag(tag_index)],
                &[],
                TagOrigin::Manual,
                Some(reason),
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
