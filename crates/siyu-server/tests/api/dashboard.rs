//! The operations dashboard's figures against a tenant worked out by hand.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::tracking::send;

async fn source(app: &TestApp, name: &str, kind: &str) -> String {
    app.post(
        "/api/v1/sources",
        &app.admin_token,
        json!({"name": name, "kind": kind}),
    )
    .await
    .expect(201)
    .body["write_key"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn track(app: &TestApp, key: &str, user: &str, event: &str, at: &str) -> i64 {
    send(
        app,
        "/v1/track",
        key,
        json!({"userId": user, "event": event, "timestamp": at}),
    )
    .await
    .expect(200);
    app.get(
        &format!("/api/v1/customers/lookup?kind=user_id&value={user}"),
        &app.admin_token,
    )
    .await
    .expect(200)
    .body["id"]
        .as_i64()
        .unwrap()
}

async fn order(
    app: &TestApp,
    id: &str,
    customer: i64,
    channel: &str,
    yuan: f64,
    at: &str,
    unit: Option<i64>,
) {
    app.post(
        "/api/v1/orders",
        &app.admin_token,
        json!({"order_id": id, "customer_id": customer, "channel": channel, "amount": yuan,
               "ordered_at": at, "unit_id": unit}),
    )
    .await
    .expect(201);
}

/// Polls until the index has followed every write (the last one is the owner change).
async fn dashboard_when(app: &TestApp, query: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        last = app
            .get(
                &format!("/api/v1/reports/dashboard?{query}"),
                &app.admin_token,
            )
            .await
            .expect(200)
            .body;
        if ready(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the dashboard never caught up: {last:#}");
}

/// Four customers (June 2026; 2026-06-01 is a Monday):
/// 1. mini program, events 06-02 and 06-20, orders: WeCom ¥100 (06-03), mini shop ¥300 (06-20)
/// 2. server source, event 06-02, Tmall order ¥200 (06-05) in the store unit
/// 3. server source, only active 2026-03-05: lapses (is lost) 90 days later, on 06-03
/// 4. server source, shared content 06-10, looked after by a staff member (private domain)
#[tokio::test]
async fn the_dashboard_matches_a_hand_computed_tenant() {
    let app = TestApp::spawn().await;
    let mini = source(&app, "小程序", "mini_program").await;
    let server = source(&app, "ERP", "server").await;
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    let store_unit = app
        .post(
            "/api/v1/units",
            &app.admin_token,
            json!({"parent_id": root.id, "kind": "store", "name": "静安店"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();

    let c1 = track(&app, &mini, "d-1", "Page Viewed", "2026-06-02T02:00:00Z").await;
    track(&app, &mini, "d-1", "Page Viewed", "2026-06-20T02:00:00Z").await;
    order(
        &app,
        "D-1",
        c1,
        "wecom",
        100.0,
        "2026-06-03T02:00:00Z",
        None,
    )
    .await;
    order(
        &app,
        "D-2",
        c1,
        "mini_shop",
        300.0,
        "2026-06-20T03:00:00Z",
        None,
    )
    .await;
    let c2 = track(
        &app,
        &server,
        "d-2",
        "Product Viewed",
        "2026-06-02T05:00:00Z",
    )
    .await;
    order(
        &app,
        "D-3",
        c2,
        "tmall",
        200.0,
        "2026-06-05T02:00:00Z",
        Some(store_unit),
    )
    .await;
    track(&app, &server, "d-3", "Page Viewed", "2026-03-05T02:00:00Z").await;
    let c4 = track(
        &app,
        &server,
        "d-4",
        "Content Shared",
        "2026-06-10T02:00:00Z",
    )
    .await;
    let agent = app.staff_with_role("owner@example.com", "service").await;
    app.patch(
        &format!("/api/v1/customers/{c4}"),
        &app.admin_token,
        json!({"owner_staff_id": agent}),
    )
    .await
    .expect(200);

    let june = "from=2026-06-01&to=2026-06-30";
    let d = dashboard_when(&app, june, |d| {
        d["sales"]["orders"] == 3 && d["repurchase"]["private_domain"]["customers"] == 2
    })
    .await;
    assert_eq!(d["from"], "2026-06-01");
    assert_eq!(d["period"], "week");
    assert_eq!(
        d["growth"],
        json!([
            {"date": "2026-06-02", "channel": "ERP", "added": 1, "lost": 0, "net": 1},
            {"date": "2026-06-02", "channel": "小程序", "added": 1, "lost": 0, "net": 1},
            {"date": "2026-06-03", "channel": "ERP", "added": 0, "lost": 1, "net": -1},
            {"date": "2026-06-10", "channel": "ERP", "added": 1, "lost": 0, "net": 1},
        ])
    );
    // all three June customers are lapsed today (their last activity is months old)
    assert_eq!(
        d["funnel"],
        json!({"acquired": 3, "activated": 3, "retained": 1, "revenue": 2, "referral": 1, "lapsed": 3})
    );
    let retention = d["retention"].as_array().unwrap();
    assert_eq!(retention.len(), 2);
    assert_eq!(retention[0]["start"], "2026-06-01");
    assert_eq!(retention[0]["customers"], 2);
    let active = |c: &Value| -> Vec<u64> {
        c["active"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };
    // week 0: both; week 2 (06-15..21): customer 1; every later week up to now: nobody
    let first = active(&retention[0]);
    assert_eq!(&first[..3], &[2, 0, 1]);
    assert!(first.len() > 20 && first[3..].iter().all(|&n| n == 0));
    assert_eq!(retention[1]["start"], "2026-06-08");
    assert_eq!(retention[1]["customers"], 1);
    assert_eq!(active(&retention[1])[0], 1);
    assert_eq!(
        d["repurchase"]["private_domain"],
        json!({"customers": 2, "buyers": 1, "repeat_buyers": 1, "orders": 2, "gmv": 400.0,
               "repurchase_rate": 1.0, "frequency": 2.0})
    );
    assert_eq!(
        d["repurchase"]["others"],
        json!({"customers": 2, "buyers": 1, "repeat_buyers": 0, "orders": 1, "gmv": 200.0,
               "repurchase_rate": 0.0, "frequency": 1.0})
    );
    let sales = &d["sales"];
    assert_eq!(sales["gmv"], 600.0);
    assert_eq!(sales["orders"], 3);
    assert_eq!(sales["private_gmv"], 400.0);
    assert!((sales["private_share"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(sales["average_order_value"], 200.0);
    assert_eq!(
        sales["by_channel"],
        json!([
            {"channel": "mini_shop", "private_domain": true, "gmv": 300.0},
            {"channel": "tmall", "private_domain": false, "gmv": 200.0},
            {"channel": "wecom", "private_domain": true, "gmv": 100.0},
        ])
    );
    assert_eq!(d["channels"], json!(["ERP", "小程序"]));

    // monthly cohorts: June's three customers were all active in June, none since
    let m = dashboard_when(&app, &format!("{june}&period=month"), |_| true).await;
    let months = m["retention"].as_array().unwrap();
    assert_eq!(months.len(), 1);
    assert_eq!(months[0]["start"], "2026-06-01");
    let by_month = active(&months[0]);
    assert_eq!(by_month[0], 3);
    assert!(by_month.len() >= 6 && by_month[1..].iter().all(|&n| n == 0));

    // one acquisition channel's cohorts
    let mp = dashboard_when(
        &app,
        &format!("{june}&channel={}", url_escape("小程序")),
        |_| true,
    )
    .await;
    assert_eq!(mp["retention"].as_array().unwrap().len(), 1);
    assert_eq!(mp["retention"][0]["customers"], 1);

    // the store: its buyer (customer 2) and its orders only
    let s = dashboard_when(&app, &format!("{june}&unit_id={store_unit}"), |_| true).await;
    assert_eq!(s["funnel"]["acquired"], 1);
    assert_eq!(s["sales"]["gmv"], 200.0);
    assert_eq!(s["sales"]["orders"], 1);
    assert_eq!(s["repurchase"]["others"]["buyers"], 1);
    assert_eq!(s["repurchase"]["private_domain"]["customers"], 0);

    // a range without customers is empty, not an error
    let empty = dashboard_when(&app, "from=2025-01-01&to=2025-01-31", |_| true).await;
    assert_eq!(empty["growth"], json!([]));
    assert_eq!(empty["sales"]["gmv"], 0.0);
    assert_eq!(empty["sales"]["average_order_value"], 0.0);
}

#[tokio::test]
async fn bad_dashboard_queries_get_clear_errors() {
    let app = TestApp::spawn().await;
    for (query, field) in [
        ("from=2026-02-30&to=2026-03-10", "from"),
        ("from=2026-3-01&to=2026-03-10", "from"),
        ("from=2026-03-01&to=yesterday", "to"),
        ("from=2026-03-10&to=2026-03-01", "from"),
        ("from=2020-01-01&to=2026-03-01", "from"),
        ("period=day", "period"),
    ] {
        let answer = app
            .get(
                &format!("/api/v1/reports/dashboard?{query}"),
                &app.admin_token,
            )
            .await
            .expect(422);
        assert_eq!(answer.code(), "validation_failed", "{query}");
        assert_eq!(
            answer.body["error"]["details"]["fields"][0]["field"], field,
            "{query}"
        );
    }
    app.get("/api/v1/reports/dashboard?unit_id=999999", &app.admin_token)
        .await
        .expect(404);
    // a service agent does not read dashboards
    let agent = app.token_with_role("service").await;
    app.get("/api/v1/reports/dashboard", &agent)
        .await
        .expect(403);
    // the default range is the last 30 days, ending today
    let before = siyu_domain::time::format_rfc3339(siyu_store::now_ms());
    let d = app
        .get("/api/v1/reports/dashboard", &app.admin_token)
        .await
        .expect(200)
        .body;
    let after = siyu_domain::time::format_rfc3339(siyu_store::now_ms());
    let to = d["to"].as_str().unwrap();
    assert!(to == &before[..10] || to == &after[..10], "{to}"); // (midnight may pass)
}

fn url_escape(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Staff who see only their own customers see only their figures, on the dashboard and
/// in the RFM, Pareto and lifecycle reports beside it.
#[tokio::test]
async fn reports_keep_to_the_callers_data_scope() {
    let app = TestApp::spawn().await;
    let key = source(&app, "小程序", "mini_program").await;
    let mine = track(&app, &key, "s-1", "Page Viewed", "2026-06-02T02:00:00Z").await;
    order(
        &app,
        "S-1",
        mine,
        "wecom",
        100.0,
        "2026-06-03T02:00:00Z",
        None,
    )
    .await;
    let theirs = track(&app, &key, "s-2", "Page Viewed", "2026-06-02T03:00:00Z").await;
    order(
        &app,
        "S-2",
        theirs,
        "wecom",
        900.0,
        "2026-06-04T02:00:00Z",
        None,
    )
    .await;
    order(
        &app,
        "S-3",
        theirs,
        "wecom",
        900.0,
        "2026-06-05T02:00:00Z",
        None,
    )
    .await;
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    let lead = app
        .post(
            "/api/v1/staff",
            &app.admin_token,
            json!({"unit_id": root.id, "role": "operations", "email": "lead@example.com",
                   "name": "lead", "password": crate::helpers::PASSWORD, "data_scope": "own"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    app.patch(
        &format!("/api/v1/customers/{mine}"),
        &app.admin_token,
        json!({"owner_staff_id": lead}),
    )
    .await
    .expect(200);
    // the admin sees both
    let all = dashboard_when(&app, "from=2026-06-01&to=2026-06-30", |d| {
        d["sales"]["orders"] == 3 && d["repurchase"]["private_domain"]["customers"] == 2
    })
    .await;
    assert_eq!(all["funnel"]["acquired"], 2);

    let (client, _) = app
        .login("lead@example.com", crate::helpers::PASSWORD)
        .await;
    let get = |path: &'static str| {
        let client = client.clone();
        let url = app.url(path);
        async move {
            let r = client.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.json::<Value>().await.unwrap()
        }
    };
    let d = get("/api/v1/reports/dashboard?from=2026-06-01&to=2026-06-30").await;
    assert_eq!(d["funnel"]["acquired"], 1);
    assert_eq!(d["sales"]["gmv"], 100.0);
    assert_eq!(d["sales"]["orders"], 1);
    let pareto = get("/api/v1/reports/pareto?days=0").await;
    assert_eq!(pareto["buyers"], 1);
    assert_eq!(pareto["gmv"], 100.0);
    let rfm = get("/api/v1/rfm").await;
    let counted: u64 = rfm["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["customers"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 1);
    let lifecycle = get("/api/v1/lifecycle").await;
    let staged: u64 = lifecycle["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["customers"].as_u64().unwrap())
        .sum();
    assert_eq!(staged, 1);
}

/// A tenant in Asia/Shanghai counts its days from midnight there: what happens at 00:30
/// on 双11 in Shanghai (16:30 UTC on the 10th) is on the 11th, in the dashboard, the
/// per-customer event counts and the segment windows.
#[tokio::test]
async fn a_tenants_days_start_at_midnight_in_its_time_zone() {
    use siyu_domain::audit::Actor;
    use siyu_domain::tenancy::NewTenant;
    use siyu_domain::time::TimeZone;

    let app = TestApp::spawn().await;
    let shanghai = TimeZone::parse("time_zone", "Asia/Shanghai").unwrap();
    let new = NewTenant::new("shanghai", "admin@sh.example.com", crate::helpers::PASSWORD)
        .unwrap()
        .in_time_zone(shanghai);
    let (tenant, _) = app.store.create_tenant(&new, &Actor::cli()).await.unwrap();
    assert_eq!(tenant.time_zone, "Asia/Shanghai");
    let scope = app.store.tenant(tenant.id);
    let role = scope.role_by_name("admin").await.unwrap();
    let (_, token) = scope
        .create_api_token("admin", &role, None, None, &Actor::cli())
        .await
        .unwrap();
    let me = app.get("/api/v1/me", &token).await.expect(200).body;
    assert_eq!(me["tenant"]["time_zone"], "Asia/Shanghai");
    let key = app
        .post(
            "/api/v1/sources",
            &token,
            json!({"name": "小程序", "kind": "mini_program"}),
        )
        .await
        .expect(201)
        .body["write_key"]
        .as_str()
        .unwrap()
        .to_owned();
    send(
        &app,
        "/v1/track",
        &key,
        json!({"userId": "night-owl", "event": "Product Viewed",
               "timestamp": "2026-11-10T16:30:00Z"}),
    )
    .await
    .expect(200);
    let id = app
        .get(
            "/api/v1/customers/lookup?kind=user_id&value=night-owl",
            &token,
        )
        .await
        .expect(200)
        .body["id"]
        .as_i64()
        .unwrap();
    app.post(
        "/api/v1/orders",
        &token,
        json!({"order_id": "D11-1", "customer_id": id, "channel": "mini_shop",
               "amount": 1111.0, "ordered_at": "2026-11-10T16:40:00Z"}),
    )
    .await
    .expect(201);

    let mut d = Value::Null;
    for _ in 0..100 {
        d = app
            .get(
                "/api/v1/reports/dashboard?from=2026-11-10&to=2026-11-11",
                &token,
            )
            .await
            .expect(200)
            .body;
        if d["sales"]["orders"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        d["growth"],
        json!([{"date": "2026-11-11", "channel": "小程序", "added": 1, "lost": 0, "net": 1}])
    );
    assert_eq!(d["sales"]["gmv"], 1111.0);
    let only_the_10th = app
        .get(
            "/api/v1/reports/dashboard?from=2026-11-10&to=2026-11-10",
            &token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(
        only_the_10th["sales"]["orders"], 0,
        "the order is on the 11th"
    );
    assert_eq!(only_the_10th["growth"], json!([]));
    // the same instant in a UTC tenant is on the 10th
    let utc_key = source(&app, "小程序", "mini_program").await;
    send(
        &app,
        "/v1/track",
        &utc_key,
        json!({"userId": "night-owl", "event": "Product Viewed",
               "timestamp": "2026-11-10T16:30:00Z"}),
    )
    .await
    .expect(200);
    let utc = dashboard_when(&app, "from=2026-11-10&to=2026-11-10", |d| {
        d["growth"].as_array().is_some_and(|g| !g.is_empty())
    })
    .await;
    assert_eq!(utc["growth"][0]["date"], "2026-11-10");
}

#[tokio::test]
async fn the_dashboard_shows_what_codes_brought_to_those_who_may_see_codes() {
    let app = TestApp::spawn().await;
    let code = app
        .post(
            "/api/v1/channel-codes",
            &app.admin_token,
            json!({"name": "看板活码", "state": "dash-1"}),
        )
        .await
        .expect(201)
        .body;
    // a person visits its landing page: a scan
    let visit = app
        .http
        .get(app.url(code["landing_path"].as_str().unwrap()))
        .header(
            reqwest::header::USER_AGENT,
            "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 MicroMessenger/8.0.47 NetType/WIFI",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(visit.status(), 200);
    let dash = app
        .get("/api/v1/reports/dashboard", &app.admin_token)
        .await
        .expect(200)
        .body;
    let section = &dash["acquisition"];
    assert_eq!(section["scans"], 1, "{section}");
    assert_eq!(section["adds"], 0);
    assert_eq!(section["relations_lost_by_customer"], 0);
    // content staff read the dashboard but not codes: no section
    let content = app.token_with_role("content").await;
    let dash = app
        .get("/api/v1/reports/dashboard", &content)
        .await
        .expect(200)
        .body;
    assert!(dash["acquisition"].is_null(), "{}", dash["acquisition"]);
}
