//! Acquisition's API: channel accounts and channel codes (rules at save time, the
//! caller's data scope), and a WeCom code's contact way made, changed and deleted with
//! it against the WeCom stand-in.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use siyu_wecom_standin::{Corp, GenerateSpec, Standin};

use crate::helpers::{PASSWORD, TestApp, answer};

/// A tag in a new 来源 (source) group, as codes put on.
async fn source_tag(app: &TestApp, name: &str) -> i64 {
    let group = app
        .post(
            "/api/v1/tag-groups",
            &app.admin_token,
            json!({"name": "来源"}),
        )
        .await
        .expect(201)
        .body["id"]
        .clone();
    app.post(
        "/api/v1/tags",
        &app.admin_token,
        json!({"name": name, "group_id": group}),
    )
    .await
    .expect(201)
    .body["id"]
        .as_i64()
        .unwrap()
}

pub(crate) fn field(body: &Value) -> &str {
    body["error"]["details"]["fields"][0]["field"]
        .as_str()
        .unwrap_or("")
}

#[tokio::test]
async fn channel_accounts_are_kept_per_platform_and_bad_ones_refused() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let douyin = app
        .post(
            "/api/v1/channel-accounts",
            token,
            json!({"platform": "douyin", "name": "品牌官方旗舰号", "handle": "brand_official"}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(
        douyin["domain_class"], "public",
        "the platform's usual class"
    );
    assert_eq!(douyin["handle"], "brand_official");
    let oa = app
        .post(
            "/api/v1/channel-accounts",
            token,
            json!({"platform": "official_account", "name": "品牌服务号"}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(oa["domain_class"], "hybrid");
    // the same name on the same platform: taken; on another platform: fine
    app.post(
        "/api/v1/channel-accounts",
        token,
        json!({"platform": "douyin", "name": "品牌官方旗舰号"}),
    )
    .await
    .expect(409);
    app.post(
        "/api/v1/channel-accounts",
        token,
        json!({"platform": "xiaohongshu", "name": "品牌官方旗舰号"}),
    )
    .await
    .expect(201);
    // bad input
    let bad = app
        .post(
            "/api/v1/channel-accounts",
            token,
            json!({"platform": "myspace", "name": "x"}),
        )
        .await
        .expect(422);
    assert!(bad.body.to_string().contains("platform"), "{}", bad.body);
    let bad = app
        .post(
            "/api/v1/channel-accounts",
            token,
            json!({"platform": "douyin", "name": "  "}),
        )
        .await
        .expect(422);
    assert_eq!(field(&bad.body), "name");
    for (body, named) in [
        (
            json!({"platform": "douyin", "name": "y", "owner_staff_id": 999_999}),
            "owner_staff_id",
        ),
        (
            json!({"platform": "douyin", "name": "y", "unit_id": 999_999}),
            "unit_id",
        ),
    ] {
        let bad = app
            .post("/api/v1/channel-accounts", token, body)
            .await
            .expect(422);
        assert_eq!(field(&bad.body), named, "{}", bad.body);
    }
    let id = douyin["id"].as_i64().unwrap();
    let changed = app
        .patch(
            &format!("/api/v1/channel-accounts/{id}"),
            token,
            json!({"name": "品牌抖音号", "domain_class": "hybrid"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(changed["name"], "品牌抖音号");
    assert_eq!(changed["domain_class"], "hybrid");
    assert_eq!(changed["platform"], "douyin", "left out: kept");
    let list = app
        .get("/api/v1/channel-accounts", token)
        .await
        .expect(200)
        .body;
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
    // an account a code names is kept
    app.post(
        "/api/v1/channel-codes",
        token,
        json!({"name": "抖音直播间", "state": "dy-live", "account_id": id}),
    )
    .await
    .expect(201);
    app.delete(&format!("/api/v1/channel-accounts/{id}"), token)
        .await
        .expect(409);
    let oa_id = oa["id"].as_i64().unwrap();
    app.delete(&format!("/api/v1/channel-accounts/{oa_id}"), token)
        .await
        .expect(204);
    app.get(&format!("/api/v1/channel-accounts/{oa_id}"), token)
        .await
        .expect(404);
}

#[tokio::test]
async fn channel_codes_need_a_name_and_a_good_state_and_keep_their_history() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let code = app
        .post(
            "/api/v1/channel-codes",
            token,
            json!({"name": "小红书笔记", "state": "xhs_note-01"}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(code["skip_verify"], true);
    assert_eq!(code["routing"]["mode"], "round_robin");
    assert!(code["contact_way"].is_null(), "no WeCom: no contact way");
    // a state that breaks the rule is refused at save time
    for state in ["", "抖音", "has space", "a/b", &"x".repeat(31)] {
        let bad = app
            .post(
                "/api/v1/channel-codes",
                token,
                json!({"name": "x", "state": state}),
            )
            .await
            .expect(422);
        assert_eq!(field(&bad.body), "state", "{state:?}: {}", bad.body);
    }
    // a live code's state is taken
    app.post(
        "/api/v1/channel-codes",
        token,
        json!({"name": "again", "state": "xhs_note-01"}),
    )
    .await
    .expect(409);
    // other bad input, each named
    let tag = source_tag(&app, "小红书来源").await;
    let cases = [
        (
            json!({"name": "x", "state": "a1", "welcome": "{name}你好"}),
            "welcome",
        ),
        (
            json!({"name": "x", "state": "a1", "members": [{"staff_id": 1, "weight": 0}]}),
            "members[0].weight",
        ),
        (
            json!({"name": "x", "state": "a1", "members": [{"staff_id": 1, "role": "backup"}]}),
            "members",
        ),
        (
            json!({"name": "x", "state": "a1", "members": [{"staff_id": 999999}]}),
            "members[0].staff_id",
        ),
        (
            json!({"name": "x", "state": "a1", "routing": {"working_hours": {"start": "9am", "end": "18:00"}}}),
            "routing.working_hours.start",
        ),
    ];
    for (body, expected) in cases {
        let bad = app
            .post("/api/v1/channel-codes", token, body.clone())
            .await
            .expect(422);
        assert_eq!(field(&bad.body), expected, "{body}: {}", bad.body);
    }
    // what a body names and the tenant lacks: 422 naming the field
    for (body, named) in [
        (
            json!({"name": "x", "state": "a1", "tag_ids": [tag, 999999]}),
            "tag_ids[1]",
        ),
        (
            json!({"name": "x", "state": "a1", "account_id": 999999}),
            "account_id",
        ),
        (
            json!({"name": "x", "state": "a1", "unit_id": 999999}),
            "unit_id",
        ),
        (
            json!({"name": "x", "state": "a1", "connector_id": 999999,
                   "members": [{"staff_id": 1}]}),
            "connector_id",
        ),
    ] {
        let bad = app
            .post("/api/v1/channel-codes", token, body.clone())
            .await
            .expect(422);
        assert_eq!(field(&bad.body), named, "{body}: {}", bad.body);
    }
    app.post(
        "/api/v1/channel-codes",
        token,
        json!({"name": "x", "state": "a1", "surprise": true}),
    )
    .await
    .expect(422);

    // a change: fields left out stay, the welcome may be cleared with null
    let id = code["id"].as_i64().unwrap();
    let changed = app
        .patch(
            &format!("/api/v1/channel-codes/{id}"),
            token,
            json!({"tag_ids": [tag], "welcome": "{customer}您好，我是{member}"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(changed["tag_ids"], json!([tag]));
    assert_eq!(changed["state"], "xhs_note-01");
    let cleared = app
        .patch(
            &format!("/api/v1/channel-codes/{id}"),
            token,
            json!({"welcome": null}),
        )
        .await
        .expect(200)
        .body;
    assert!(cleared["welcome"].is_null());
    assert_eq!(cleared["tag_ids"], json!([tag]), "left out: kept");

    // deleted: gone from the API, its state free again
    app.delete(&format!("/api/v1/channel-codes/{id}"), token)
        .await
        .expect(204);
    app.get(&format!("/api/v1/channel-codes/{id}"), token)
        .await
        .expect(404);
    app.post(
        "/api/v1/channel-codes",
        token,
        json!({"name": "小红书笔记 二期", "state": "xhs_note-01"}),
    )
    .await
    .expect(201);
    let list = app
        .get("/api/v1/channel-codes", token)
        .await
        .expect(200)
        .body;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

/// Signs in a new staff member with this role and data scope; answers their client
/// and id.
async fn signed_in(app: &TestApp, email: &str, role: &str, scope: &str) -> (reqwest::Client, i64) {
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    let id = app
        .post(
            "/api/v1/staff",
            &app.admin_token,
            json!({"unit_id": root.id, "role": role, "email": email, "name": email,
                   "password": PASSWORD, "data_scope": scope}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let (client, login) = app.login(email, PASSWORD).await;
    login.expect(200);
    (client, id)
}

#[tokio::test]
async fn a_code_is_seen_and_changed_only_within_the_callers_reach() {
    let app = TestApp::spawn().await;
    let (growth, growth_id) = signed_in(&app, "growth@acme.example.com", "growth", "own").await;
    let (_, other_id) = signed_in(&app, "other@acme.example.com", "service", "own").await;
    // the admin's code routing to someone else: not the growth member's to see
    let theirs = app
        .post(
            "/api/v1/channel-codes",
            &app.admin_token,
            json!({"name": "门店A", "state": "store-a", "members": [{"staff_id": other_id}]}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let call = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut request = growth.request(method, app.url(&path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    let mine = answer(
        call(
            reqwest::Method::POST,
            "/api/v1/channel-codes".into(),
            Some(
                json!({"name": "我的码", "state": "mine-1", "members": [{"staff_id": growth_id}]}),
            ),
        )
        .await
        .unwrap(),
    )
    .await
    .expect(201)
    .body;
    let list = answer(
        call(reqwest::Method::GET, "/api/v1/channel-codes".into(), None)
            .await
            .unwrap(),
    )
    .await
    .expect(200)
    .body;
    let ids: Vec<i64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![mine["id"].as_i64().unwrap()]);
    // both codes scanned once: the growth member's report shows theirs alone, and no
    // unknown code (the whole tenant's)
    for code in [
        &mine,
        &app.get(&format!("/api/v1/channel-codes/{theirs}"), &app.admin_token)
            .await
            .expect(200)
            .body,
    ] {
        let page = app
            .http
            .get(app.url(code["landing_path"].as_str().unwrap()))
            .header(
                reqwest::header::USER_AGENT,
                "Mozilla/5.0 (iPhone) MicroMessenger/8.0 NetType/WIFI",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
    }
    let today = chrono::Utc::now().date_naive();
    let range = format!(
        "from={}&to={}",
        today.pred_opt().unwrap(),
        today.succ_opt().unwrap()
    );
    let report = answer(
        call(
            reqwest::Method::GET,
            format!("/api/v1/acquisition/report?{range}"),
            None,
        )
        .await
        .unwrap(),
    )
    .await
    .expect(200)
    .body;
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{report}");
    assert_eq!(rows[0]["id"], mine["id"]);
    assert_eq!(report["total"]["scans"], 1);
    let everyone = app
        .get(
            &format!("/api/v1/acquisition/report?{range}"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(everyone["total"]["scans"], 2, "{everyone}");
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        answer(
            call(method, format!("/api/v1/channel-codes/{theirs}"), None)
                .await
                .unwrap(),
        )
        .await
        .expect(404);
    }
    // writes as strict as reads: no routing to staff out of reach
    let refused = answer(
        call(
            reqwest::Method::POST,
            "/api/v1/channel-codes".into(),
            Some(json!({"name": "抢", "state": "grab-1", "members": [{"staff_id": other_id}]})),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let mine_id = mine["id"].as_i64().unwrap();
    let refused = answer(
        call(
            reqwest::Method::PATCH,
            format!("/api/v1/channel-codes/{mine_id}"),
            Some(json!({"members": [{"staff_id": growth_id}, {"staff_id": other_id}]})),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    // the service role has no campaigns.read
    let service = app.token_with_role("service").await;
    app.get("/api/v1/channel-codes", &service).await.expect(403);
}

const TOKEN: &str = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo";
const AES_KEY: &str = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";

/// A WeCom corp of `members` members (`member001`…) in the stand-in, pushing its
/// callbacks to a new app whose connector (with this default welcome) has synced its
/// staff; and the members' staff ids by userid.
pub(crate) async fn wecom_corp(
    members: usize,
    welcome: Option<&str>,
) -> (TestApp, Standin, i64, HashMap<String, i64>) {
    let standin = Standin::start(Corp::generate(&GenerateSpec {
        members,
        contacts: 4,
        tag_groups: 1,
        tags_per_group: 1,
        tagged_share: 0.0,
        seed: 13,
    }))
    .unwrap();
    let app = TestApp::spawn().await;
    let connector = app
        .post(
            "/api/v1/connectors",
            &app.admin_token,
            json!({"kind": "wecom", "name": "企业微信", "config": {
                "corp_id": siyu_wecom_standin::GENERATED_CORP_ID,
                "secret": siyu_wecom_standin::GENERATED_SECRET,
                "token": TOKEN, "encoding_aes_key": AES_KEY,
                "api_base_url": standin.base_url(), "welcome": welcome}}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let sync = app
        .post(
            &format!("/api/v1/connectors/{connector}/sync"),
            &app.admin_token,
            json!({"scope": "staff"}),
        )
        .await
        .expect(202)
        .body;
    assert_eq!(app.job_finished(&sync["job_id"]).await["state"], "done");
    standin
        .set_callback(
            &app.url(&format!("/callbacks/wecom/{connector}")),
            TOKEN,
            AES_KEY,
        )
        .unwrap();
    let staff = app
        .store
        .tenant(app.tenant.id)
        .wecom_members(siyu_domain::ids::ConnectorId(connector))
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.userid, m.staff_id))
        .collect();
    (app, standin, connector, staff)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wecom_code_is_a_contact_way_made_changed_and_deleted_with_it() {
    let (app, standin, connector, staff) = wecom_corp(3, None).await;
    let token = &app.admin_token;
    let (first, second) = (staff["member001"], staff["member002"]);
    // someone who is not in the corp cannot be routed to
    let outsider = app
        .staff_with_role("outsider@acme.example.com", "service")
        .await;
    let bad = app
        .post(
            "/api/v1/channel-codes",
            token,
            json!({"name": "x", "state": "wx-1", "connector_id": connector,
                   "members": [{"staff_id": outsider}]}),
        )
        .await
        .expect(422);
    assert_eq!(field(&bad.body), "members[0].staff_id", "{}", bad.body);
    let bad = app
        .post(
            "/api/v1/channel-codes",
            token,
            json!({"name": "x", "state": "wx-1", "connector_id": connector}),
        )
        .await
        .expect(422);
    assert_eq!(field(&bad.body), "members");

    let code = app
        .post(
            "/api/v1/channel-codes",
            token,
            json!({"name": "抖音直播间引流码（十二月大促专用超长备注名）", "state": "dy-live-12",
                   "connector_id": connector, "skip_verify": false,
                   "members": [{"staff_id": first}, {"staff_id": second}]}),
        )
        .await
        .expect(201)
        .body;
    let id = code["id"].as_i64().unwrap();
    wecom_settled(&app).await;
    let ways = standin.contact_ways();
    assert_eq!(ways.len(), 1, "{ways:?}");
    let way = &ways[0];
    assert_eq!(way.state, "dy-live-12");
    assert_eq!(
        way.user,
        vec!["member001".to_owned()],
        "one member: siyu routes"
    );
    assert!(!way.skip_verify);
    assert!(way.remark.chars().count() <= 30);
    let code = app
        .get(&format!("/api/v1/channel-codes/{id}"), token)
        .await
        .expect(200)
        .body;
    assert_eq!(code["contact_way"]["config_id"], way.config_id);
    assert_eq!(code["contact_way"]["qr_code_url"], way.qr_code);
    assert_eq!(code["contact_way"]["current_staff_id"], first);
    assert!(code["contact_way"]["error"].is_null());

    // the first member taken off: the way routes to the second
    app.patch(
        &format!("/api/v1/channel-codes/{id}"),
        token,
        json!({"members": [{"staff_id": second}], "state": "dy-live-12b"}),
    )
    .await
    .expect(200);
    wecom_settled(&app).await;
    let ways = standin.contact_ways();
    assert_eq!(ways.len(), 1, "changed, not made again");
    assert_eq!(ways[0].user, vec!["member002".to_owned()]);
    assert_eq!(ways[0].state, "dy-live-12b");
    // WeCom refuses a change: shown on the code, kept for the next try
    standin.inject("externalcontact/update_contact_way", 40003, 1);
    app.patch(
        &format!("/api/v1/channel-codes/{id}"),
        token,
        json!({"name": "改个名"}),
    )
    .await
    .expect(200);
    let started = Instant::now();
    let shown = loop {
        let code = app
            .get(&format!("/api/v1/channel-codes/{id}"), token)
            .await
            .expect(200)
            .body;
        if !code["contact_way"]["error"].is_null() {
            break code;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{code}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        shown["contact_way"]["error"]
            .as_str()
            .unwrap()
            .contains("40003"),
        "{shown}"
    );
    assert_eq!(shown["contact_way"]["config_id"], ways[0].config_id, "kept");

    // the try after goes through and clears it
    wecom_settled(&app).await;
    let code = app
        .get(&format!("/api/v1/channel-codes/{id}"), token)
        .await
        .expect(200)
        .body;
    assert!(code["contact_way"]["error"].is_null(), "{code}");
    assert_eq!(standin.contact_ways()[0].remark, "改个名");
    // deleted with the code
    app.delete(&format!("/api/v1/channel-codes/{id}"), token)
        .await
        .expect(204);
    wecom_settled(&app).await;
    assert!(standin.contact_ways().is_empty(), "the way was deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_add_through_a_code_is_tagged_owned_welcomed_with_its_text_and_attributed() {
    let (app, standin, connector, _) = wecom_corp(2, Some("连接器欢迎语")).await;
    let token = &app.admin_token;
    let member = app
        .store
        .tenant(app.tenant.id)
        .wecom_member(siyu_domain::ids::ConnectorId(connector), "member001")
        .await
        .unwrap()
        .unwrap();
    let tag = source_tag(&app, "抖音直播").await;
    let account = app
        .post(
            "/api/v1/channel-accounts",
            token,
            json!({"platform": "douyin", "name": "品牌抖音号"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let code = app
        .post(
            "/api/v1/channel-codes",
            token,
            json!({"name": "抖音直播间", "state": "dy-live-01", "account_id": account,
                   "connector_id": connector, "tag_ids": [tag],
                   "welcome": "{customer}您好，我是{member}，直播间的福利请查收～",
                   "members": [{"staff_id": member.staff_id}]}),
        )
        .await
        .expect(201)
        .body;
    let code_id = code["id"].as_i64().unwrap();

    let added = standin
        .customer_adds(
            "member001",
            siyu_wecom_standin::ExternalContact::wechat("wmCODEADD000001", "李小姐"),
            Some("dy-live-01".into()),
            true,
        )
        .await;
    assert_eq!(added.delivered, Ok(200));
    // and one through a state no code has: kept, attributed to no code
    let unknown = standin
        .customer_adds(
            "member002",
            siyu_wecom_standin::ExternalContact::wechat("wmCODEADD000002", "王先生"),
            Some("gone-code".into()),
            true,
        )
        .await;
    assert_eq!(unknown.delivered, Ok(200));
    let started = Instant::now();
    loop {
        let jobs = app
            .get("/api/v1/jobs?kind=wecom.callback&limit=100", token)
            .await
            .expect(200)
            .body["items"]
            .as_array()
            .unwrap()
            .clone();
        if jobs.len() == 2 && jobs.iter().all(|j| j["state"] == "done") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{jobs:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let customer = app
        .get(
            "/api/v1/customers/lookup?kind=wecom_external_userid&value=wmCODEADD000001",
            token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(customer["owner_staff_id"], member.staff_id);
    let customer_id = customer["id"].as_i64().unwrap();
    let tags = app
        .get(&format!("/api/v1/customers/{customer_id}/tags"), token)
        .await
        .expect(200)
        .body;
    let tagged: Vec<&Value> = tags
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["tag_id"] == tag)
        .collect();
    assert_eq!(tagged.len(), 1, "{tags}");
    assert_eq!(tagged[0]["origin"], "channel_code");
    // the code's welcome, names in, once
    let welcomes = standin.welcome_messages();
    let to_her: Vec<_> = welcomes
        .iter()
        .filter(|w| Some(&w.welcome_code) == added.welcome_code.as_ref())
        .collect();
    assert_eq!(to_her.len(), 1, "{welcomes:?}");
    assert_eq!(
        to_her[0].text,
        format!("李小姐您好，我是{}，直播间的福利请查收～", member.name)
    );
    let to_him = welcomes
        .iter()
        .find(|w| Some(&w.welcome_code) == unknown.welcome_code.as_ref())
        .unwrap();
    assert_eq!(to_him.text, "连接器欢迎语", "no code: the connector's");
    // the Contact Added events
    let scope = app.store.tenant(app.tenant.id);
    let added_events = |customer: i64| {
        let scope = &scope;
        async move {
            scope
                .customer_timeline(
                    siyu_domain::customer::CustomerId(customer),
                    siyu_domain::page::PageRequest::first(50),
                )
                .await
                .unwrap()
                .items
                .into_iter()
                .filter_map(|entry| match entry {
                    siyu_domain::customer::TimelineEntry::Event(e) if e.name == "Contact Added" => {
                        Some(Value::Object(e.properties))
                    }
                    _ => None,
                })
                .collect::<Vec<Value>>()
        }
    };
    let hers = added_events(customer_id).await;
    assert_eq!(hers.len(), 1, "{hers:?}");
    assert_eq!(hers[0]["channel_code"], "dy-live-01");
    assert_eq!(hers[0]["channel_code_id"], code_id);
    assert_eq!(hers[0]["channel_code_name"], "抖音直播间");
    let him = app
        .get(
            "/api/v1/customers/lookup?kind=wecom_external_userid&value=wmCODEADD000002",
            token,
        )
        .await
        .expect(200)
        .body["id"]
        .as_i64()
        .unwrap();
    let his = added_events(him).await;
    assert_eq!(his.len(), 1);
    assert_eq!(his[0]["channel_code"], "gone-code");
    assert!(his[0].get("channel_code_id").is_none(), "{his:?}");

    // her first order after the add is the code's; one from before the add is not
    let now = siyu_store::now_ms();
    for (order_id, yuan, at) in [("DY-1", 199.0, now), ("DY-0", 50.0, now - 10 * 86_400_000)] {
        app.post(
            "/api/v1/orders",
            token,
            json!({"order_id": order_id, "customer_id": customer_id, "channel": "douyin_shop",
                   "amount": yuan, "ordered_at": siyu_domain::time::format_rfc3339(at)}),
        )
        .await
        .expect(201);
    }
    // he deletes the member: a loss of the unknown code's
    assert_eq!(
        standin
            .customer_deletes_member("member002", "wmCODEADD000002")
            .await,
        Ok(200)
    );
    wecom_settled(&app).await;
    let report = |by: &'static str| {
        let app = &app;
        async move {
            let day =
                |d: i64| siyu_domain::time::format_rfc3339(now + d * 86_400_000)[..10].to_owned();
            app.get(
                &format!(
                    "/api/v1/acquisition/report?from={}&to={}&by={by}",
                    day(-1),
                    day(1)
                ),
                &app.admin_token,
            )
            .await
            .expect(200)
            .body
        }
    };
    let by_code = report("code").await;
    let rows = by_code["rows"].as_array().unwrap();
    let ours = rows
        .iter()
        .find(|r| r["id"] == code_id)
        .expect("the code's row");
    assert_eq!(ours["name"], "抖音直播间");
    assert_eq!(ours["adds"], 1, "{by_code}");
    assert_eq!(ours["customers"], 1);
    assert_eq!(ours["first_orders"], 1);
    assert_eq!(
        ours["gmv"], 199.0,
        "the order before the add is not the code's"
    );
    assert_eq!(ours["net_adds"], 1);
    let unknown = rows
        .iter()
        .find(|r| r["id"] == 0)
        .expect("the unknown code's row");
    assert_eq!(unknown["name"], "unknown code");
    assert_eq!(unknown["adds"], 1);
    assert_eq!(unknown["deleted_by_customer"], 1);
    assert_eq!(unknown["net_adds"], 0);
    assert_eq!(by_code["total"]["adds"], 2);
    assert_eq!(by_code["order_window_days"], 30);
    let daily = by_code["daily"].as_array().unwrap();
    assert_eq!(daily.len(), 3, "every day of the range");
    let daily_adds: i64 = daily.iter().map(|d| d["adds"].as_i64().unwrap()).sum();
    assert_eq!(daily_adds, 2);
    let by_account = report("account").await;
    let account_row = by_account["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == account)
        .cloned()
        .expect("the account's row");
    assert_eq!(account_row["name"], "品牌抖音号");
    assert_eq!(account_row["gmv"], 199.0);
    let by_platform = report("platform").await;
    assert!(
        by_platform["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "douyin" && r["adds"] == 1),
        "{by_platform}"
    );
    let by_member = report("member").await;
    let member_row = by_member["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == member.staff_id)
        .cloned()
        .expect("the member's row");
    assert_eq!(member_row["adds"], 1);
    assert_eq!(member_row["first_orders"], 1);
    // bad ranges
    for bad in [
        "from=2026-02-30&to=2026-03-01",
        "from=2026-03-02&to=2026-03-01",
        "from=2020-01-01&to=2026-01-01",
        "from=2026-01-01&to=2026-01-02&by=store",
    ] {
        app.get(&format!("/api/v1/acquisition/report?{bad}"), token)
            .await
            .expect(422);
    }
}

/// Waits until no callback or contact way job is live (the way moved on after an add,
/// or made, changed or deleted with its code).
pub(crate) async fn wecom_settled(app: &TestApp) {
    let started = Instant::now();
    loop {
        let mut live = Vec::new();
        for kind in [
            "wecom.relation_changes",
            "wecom.callback",
            "wecom.contact_way",
        ] {
            let jobs = app
                .get(
                    &format!("/api/v1/jobs?kind={kind}&limit=200"),
                    &app.admin_token,
                )
                .await
                .expect(200)
                .body["items"]
                .as_array()
                .unwrap()
                .clone();
            live.extend(
                jobs.into_iter()
                    .filter(|j| ["waiting", "running"].contains(&j["state"].as_str().unwrap())),
            );
        }
        if live.is_empty() {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{live:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_routes_adds_in_turn_and_to_backups_when_its_members_are_full() {
    let (app, standin, connector, staff) = wecom_corp(4, None).await;
    let token = &app.admin_token;
    let userid_of = |staff_id: i64| {
        staff
            .iter()
            .find(|(_, s)| **s == staff_id)
            .map(|(u, _)| u.clone())
            .unwrap()
    };

    /// Customers add whoever the code's way holds, one after another; answers the
    /// members they added, in order.
    async fn adds_through(
        app: &TestApp,
        standin: &Standin,
        state: &str,
        customers: usize,
        prefix: &str,
    ) -> Vec<String> {
        let mut went = Vec::new();
        for n in 0..customers {
            wecom_settled(app).await;
            let way = standin
                .contact_ways()
                .into_iter()
                .find(|w| w.state == state)
                .expect("the code's way");
            let member = way.user[0].clone();
            let added = standin
                .customer_adds(
                    &member,
                    siyu_wecom_standin::ExternalContact::wechat(&format!("{prefix}{n:04}"), "客户"),
                    Some(state.into()),
                    false,
                )
                .await;
            assert_eq!(added.delivered, Ok(200));
            went.push(member);
        }
        wecom_settled(app).await;
        went
    }

    // round-robin over three members
    let members = ["member001", "member002", "member003"];
    app.post(
        "/api/v1/channel-codes",
        token,
        json!({"name": "轮流", "state": "rr-1", "connector_id": connector,
               "members": members.iter().map(|m| json!({"staff_id": staff[*m]})).collect::<Vec<_>>()}),
    )
    .await
    .expect(201);
    let went = adds_through(&app, &standin, "rr-1", 5, "wmRR").await;
    assert_eq!(
        went,
        vec![
            "member001",
            "member002",
            "member003",
            "member001",
            "member002"
        ]
    );
    // each customer owned by the member they added
    for (n, member) in went.iter().enumerate() {
        let customer = app
            .get(
                &format!("/api/v1/customers/lookup?kind=wecom_external_userid&value=wmRR{n:04}"),
                token,
            )
            .await
            .expect(200)
            .body;
        assert_eq!(customer["owner_staff_id"], staff[member], "{customer}");
    }

    // capacity: one add a day for the primary, then the backup, said so on the code
    let code = app
        .post(
            "/api/v1/channel-codes",
            token,
            json!({"name": "限量", "state": "cap-1", "connector_id": connector,
                   "members": [
                       {"staff_id": staff["member004"], "daily_capacity": 1},
                       {"staff_id": staff["member003"], "role": "backup"}]}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let went = adds_through(&app, &standin, "cap-1", 3, "wmCAP").await;
    assert_eq!(went, vec!["member004", "member003", "member003"]);
    let shown = app
        .get(&format!("/api/v1/channel-codes/{code}"), token)
        .await
        .expect(200)
        .body;
    assert_eq!(shown["contact_way"]["current_route"], "backup", "{shown}");
    assert_eq!(
        userid_of(shown["contact_way"]["current_staff_id"].as_i64().unwrap()),
        "member003"
    );
    // each member's adds today, to set against their capacity (ordered by staff id)
    let mut expected = vec![
        json!({"staff_id": staff["member003"], "adds": 2}),
        json!({"staff_id": staff["member004"], "adds": 1}),
    ];
    expected.sort_by_key(|m| m["staff_id"].as_i64());
    assert_eq!(shown["adds_today"], Value::Array(expected), "{shown}");
}
