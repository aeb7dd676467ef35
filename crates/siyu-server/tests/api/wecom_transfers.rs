//! Customer transfers between WeCom members through the API, against the stand-in and
//! a real job runner: an in-office transfer waits for WeCom's takeover a day later,
//! then the owner moves to the takeover's staff and the new relation is stored; a
//! customer's refusal and WeCom's 40128 are recorded; a third in-office transfer of a
//! customer within 90 days is refused by siyu without asking WeCom; a member who left
//! leaves customers that `/resigned` lists (through later syncs too) and a resigned
//! transfer assigns; bad requests, customers out of reach and unknown members are
//! refused.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use siyu_domain::customer::{CustomerId, TimelineEntry};
use siyu_domain::ids::ConnectorId;
use siyu_domain::page::PageRequest;
use siyu_domain::transfer::{CUSTOMER_REFUSED, TRANSFERRED_TWICE};
use siyu_wecom_standin::{
    Corp, ExternalContact, FollowInfo, GENERATED_CORP_ID, GENERATED_SECRET, Member, Standin,
};

use crate::helpers::{PASSWORD, TestApp, answer};

const DAY_AND_A_BIT: Duration = Duration::from_secs(86_400 + 60);

/// 张三 has five customers (wmZS01…05), 李四 two (wmLS01, wmLS02), 王五 none.
fn corp() -> Corp {
    let mut corp = Corp::new(GENERATED_CORP_ID)
        .add_secret(GENERATED_SECRET)
        .add_department(1, "总部", 0)
        .add_member(Member::new("zhangsan", "张三", 1))
        .add_member(Member::new("lisi", "李四", 1))
        .add_member(Member::new("wangwu", "王五", 1));
    let customers = (1..=5)
        .map(|n| ("zhangsan", format!("wmZS{n:02}")))
        .chain((1..=2).map(|n| ("lisi", format!("wmLS{n:02}"))));
    for (n, (member, external)) in customers.enumerate() {
        corp = corp
            .add_contact(ExternalContact::wechat(&external, &format!("客户{n}")))
            .follow(
                member,
                &external,
                FollowInfo {
                    createtime: 1_700_000_000 + n as u64,
                    oper_userid: external.clone(),
                    ..FollowInfo::default()
                },
            );
    }
    corp
}

struct World {
    app: TestApp,
    standin: Standin,
    id: i64,
    /// userid → staff id
    staff: HashMap<String, i64>,
}

impl World {
    async fn new() -> World {
        let standin = Standin::start(corp()).unwrap();
        let app =
            TestApp::spawn_with_node(|n| n.wecom_transfer_poll = Duration::from_millis(100)).await;
        let id = app
            .post(
                "/api/v1/connectors",
                &app.admin_token,
                json!({"kind": "wecom", "name": "企业微信", "config": {
                    "corp_id": GENERATED_CORP_ID, "secret": GENERATED_SECRET,
                    "token": "callbackToken1",
                    "encoding_aes_key": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
                    "api_base_url": standin.base_url()}}),
            )
            .await
            .expect(201)
            .body["id"]
            .as_i64()
            .unwrap();
        let mut world = World {
            app,
            standin,
            id,
            staff: HashMap::new(),
        };
        world.sync("all").await;
        world.staff = world
            .app
            .store
            .tenant(world.app.tenant.id)
            .wecom_members(ConnectorId(id))
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.userid, m.staff_id))
            .collect();
        world
    }

    async fn sync(&self, scope: &str) {
        let app = &self.app;
        let job = app
            .post(
                &format!("/api/v1/connectors/{}/sync", self.id),
                &app.admin_token,
                json!({"scope": scope}),
            )
            .await
            .expect(202)
            .body["job_id"]
            .clone();
        assert_eq!(app.job_finished(&job).await["state"], "done");
    }

    fn path(&self, what: &str) -> String {
        format!("/api/v1/connectors/{}/{what}", self.id)
    }

    async fn customer(&self, external: &str) -> Value {
        self.app
            .get(
                &format!("/api/v1/customers/lookup?kind=wecom_external_userid&value={external}"),
                &self.app.admin_token,
            )
            .await
            .expect(200)
            .body
    }

    async fn customer_id(&self, external: &str) -> i64 {
        self.customer(external).await["id"].as_i64().unwrap()
    }

    async fn owner(&self, external: &str) -> Value {
        self.customer(external).await["owner_staff_id"].clone()
    }

    /// Asks as the admin; answers the 202's body.
    async fn transfer(&self, body: Value) -> Value {
        self.app
            .post(&self.path("transfers"), &self.app.admin_token, body)
            .await
            .expect(202)
            .body
    }

    async fn transfers(&self, query: &str) -> Vec<Value> {
        self.app
            .get(
                &format!("{}?limit=500{query}", self.path("transfers")),
                &self.app.admin_token,
            )
            .await
            .expect(200)
            .body["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Waits until `n` transfers are in `status`, and answers them.
    async fn until_status(&self, status: &str, n: usize) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let found = self.transfers(&format!("&status={status}")).await;
            if found.len() >= n {
                assert_eq!(found.len(), n, "{found:?}");
                return found;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{n} transfers {status}: {:?}",
                self.transfers("").await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn resigned(&self) -> Vec<Value> {
        self.app
            .get(&self.path("resigned"), &self.app.admin_token)
            .await
            .expect(200)
            .body["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The customer's events of this name.
    async fn events(&self, customer: i64, name: &str) -> Vec<Value> {
        let scope = self.app.store.tenant(self.app.tenant.id);
        let timeline = scope
            .customer_timeline(CustomerId(customer), PageRequest::first(100))
            .await
            .unwrap();
        timeline
            .items
            .into_iter()
            .filter_map(|entry| match entry {
                TimelineEntry::Event(e) if e.name == name => Some(Value::Object(e.properties)),
                _ => None,
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_office_transfer_waits_for_the_takeover_then_moves_the_owner() {
    let w = World::new().await;
    let (zhangsan, lisi, wangwu) = (w.staff["zhangsan"], w.staff["lisi"], w.staff["wangwu"]);
    let c1 = w.customer_id("wmZS01").await;
    let c2 = w.customer_id("wmZS02").await;
    assert_eq!(w.owner("wmZS01").await, zhangsan);

    let asked = w
        .transfer(json!({"kind": "in_office", "handover_userid": "zhangsan",
                         "takeover_staff_id": lisi, "customer_ids": [c1, c2, c1],
                         "message": "您好，我是李四，今后由我为您服务"}))
        .await;
    assert_eq!(asked["asked"], 2, "{asked}");
    assert_eq!(asked["refused"], json!([]));
    assert_eq!(w.app.job_finished(&asked["job_id"]).await["state"], "done");
    let waiting = w.until_status("waiting", 2).await;
    for t in &waiting {
        assert_eq!(t["kind"], "in_office");
        assert_eq!(t["handover_userid"], "zhangsan");
        assert_eq!(t["takeover_staff_id"], lisi);
        assert_eq!(t["job_id"], asked["job_id"]);
    }
    let calls = w.standin.call_log();
    let call = calls
        .iter()
        .find(|c| c.path == "externalcontact/transfer_customer")
        .unwrap();
    assert_eq!(call.body["external_userid"], json!(["wmZS01", "wmZS02"]));
    assert_eq!(
        call.body["transfer_success_msg"],
        "您好，我是李四，今后由我为您服务"
    );
    // nothing moves before WeCom's takeover
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(w.owner("wmZS01").await, zhangsan);

    w.standin.advance_clock(DAY_AND_A_BIT);
    let done = w.until_status("succeeded", 2).await;
    assert!(
        done.iter().all(|t| t["finished_at"].is_string()),
        "{done:?}"
    );
    assert_eq!(w.owner("wmZS01").await, lisi);
    assert_eq!(w.owner("wmZS02").await, lisi);
    // the new relation is siyu's too: added by 李四, the handover's ended
    let added = w.events(c1, "Contact Added").await;
    assert!(added.iter().any(|e| e["member"] == "lisi"), "{added:?}");
    let counts = w
        .app
        .get(&w.path("sync"), &w.app.admin_token)
        .await
        .expect(200)
        .body["counts"]
        .clone();
    assert_eq!(counts["relations"], 7, "{counts}");
    assert_eq!(counts["relations_ended"], 2, "{counts}");
    let audit = w
        .app
        .get(
            "/api/v1/audit-log?action=customer.assigned",
            &w.app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");
    assert!(audit.to_string().contains("wecom_transfer_id"));
    let asked_audit = w
        .app
        .get(
            "/api/v1/audit-log?action=connector.transfer_asked",
            &w.app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(asked_audit["items"].as_array().unwrap().len(), 1);

    // a customer who refuses keeps their member and owner
    let asked = w
        .transfer(json!({"kind": "in_office", "handover_staff_id": zhangsan,
                         "takeover_userid": "wangwu", "external_userids": ["wmZS03"]}))
        .await;
    assert_eq!(w.app.job_finished(&asked["job_id"]).await["state"], "done");
    w.until_status("waiting", 1).await;
    assert!(w.standin.customer_refuses_transfer("wmZS03"));
    let refused = w.until_status("refused", 1).await;
    assert_eq!(refused[0]["external_userid"], "wmZS03");
    assert_eq!(refused[0]["reason"], CUSTOMER_REFUSED);
    assert_eq!(w.owner("wmZS03").await, zhangsan);

    // WeCom refusing a third transfer (40128, here for a transfer siyu did not know of)
    // is recorded with the same reason siyu gives
    w.standin
        .inject("externalcontact/transfer_customer", 40128, 1);
    let asked = w
        .transfer(json!({"kind": "in_office", "handover_userid": "zhangsan",
                         "takeover_staff_id": wangwu, "external_userids": ["wmZS04"]}))
        .await;
    assert_eq!(w.app.job_finished(&asked["job_id"]).await["state"], "done");
    let refused = w.until_status("refused", 2).await;
    let by_wecom = refused
        .iter()
        .find(|t| t["external_userid"] == "wmZS04")
        .unwrap();
    assert_eq!(by_wecom["errcode"], 40128);
    assert_eq!(by_wecom["reason"], TRANSFERRED_TWICE);
    assert_eq!(w.transfers("").await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_in_office_transfer_within_90_days_is_refused_before_wecom_is_asked() {
    let w = World::new().await;
    let (zhangsan, lisi) = (w.staff["zhangsan"], w.staff["lisi"]);
    let c1 = w.customer_id("wmZS01").await;
    for (from, to) in [("zhangsan", lisi), ("lisi", zhangsan)] {
        let asked = w
            .transfer(json!({"kind": "in_office", "handover_userid": from,
                             "takeover_staff_id": to, "customer_ids": [c1]}))
            .await;
        assert_eq!(asked["asked"], 1, "{asked}");
        assert_eq!(w.app.job_finished(&asked["job_id"]).await["state"], "done");
        let succeeded = w.transfers("&status=succeeded").await.len();
        w.standin.advance_clock(DAY_AND_A_BIT);
        w.until_status("succeeded", succeeded + 1).await;
        assert_eq!(w.owner("wmZS01").await, to);
    }
    // while one transfer waits, another of the same customer is refused
    let c2 = w.customer_id("wmZS02").await;
    let asked = w
        .transfer(json!({"kind": "in_office", "handover_userid": "zhangsan",
                         "takeover_staff_id": lisi, "customer_ids": [c2]}))
        .await;
    assert_eq!(w.app.job_finished(&asked["job_id"]).await["state"], "done");
    let called = w.standin.calls("externalcontact/transfer_customer");
    assert_eq!(called, 3);

    let third = w
        .transfer(json!({"kind": "in_office", "handover_userid": "zhangsan",
                         "takeover_staff_id": lisi, "customer_ids": [c1, c2]}))
        .await;
    assert_eq!(third["job_id"], Value::Null, "{third}");
    assert_eq!(third["asked"], 0);
    let refused = third["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 2, "{third}");
    assert_eq!(refused[0]["customer_id"], c1);
    assert_eq!(refused[0]["external_userid"], "wmZS01");
    assert_eq!(refused[0]["code"], "transferred_twice");
    assert_eq!(refused[0]["reason"], TRANSFERRED_TWICE);
    assert_eq!(refused[1]["customer_id"], c2);
    assert_eq!(refused[1]["code"], "already_being_transferred");
    // WeCom was not asked
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.standin.calls("externalcontact/transfer_customer"), called);
    let bodies: Vec<Value> = w
        .standin
        .call_log()
        .into_iter()
        .filter(|c| c.path == "externalcontact/transfer_customer")
        .map(|c| c.body)
        .collect();
    let asked_for_c1 = bodies
        .iter()
        .filter(|b| b.to_string().contains("wmZS01"))
        .count();
    assert_eq!(asked_for_c1, 2, "{bodies:?}");
    assert_eq!(w.owner("wmZS01").await, zhangsan);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resigned_members_customers_are_listed_and_assigned() {
    let w = World::new().await;
    let wangwu = w.staff["wangwu"];
    assert_eq!(w.resigned().await, Vec::<Value>::new());
    assert!(w.standin.member_leaves("lisi"));
    w.sync("staff").await;
    // later syncs keep the customers WeCom keeps for the member who left
    w.sync("customers").await;
    let unassigned = w.resigned().await;
    let mut external: Vec<&str> = unassigned
        .iter()
        .map(|u| u["external_userid"].as_str().unwrap())
        .collect();
    external.sort_unstable();
    assert_eq!(external, ["wmLS01", "wmLS02"], "{unassigned:?}");
    assert!(unassigned.iter().all(|u| u["handover_userid"] == "lisi"
        && u["handover_staff_id"] == w.staff["lisi"]
        && u["handover_name"] == "李四"
        && u["last_transfer_status"].is_null()));
    let one = w
        .app
        .get(
            &format!("{}?handover_userid=zhangsan", w.path("resigned")),
            &w.app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(one["items"], json!([]));

    // an in-office transfer from someone who left is the wrong kind
    let wrong = w
        .app
        .post(
            &w.path("transfers"),
            &w.app.admin_token,
            json!({"kind": "in_office", "handover_userid": "lisi",
                   "takeover_userid": "wangwu", "external_userids": ["wmLS01"]}),
        )
        .await
        .expect(422);
    assert_eq!(wrong.body["error"]["details"]["fields"][0]["field"], "kind");

    let ids: Vec<Value> = unassigned
        .iter()
        .map(|u| u["customer_id"].clone())
        .collect();
    let asked = w
        .transfer(json!({"kind": "resigned", "handover_userid": "lisi",
                         "takeover_staff_id": wangwu, "customer_ids": ids}))
        .await;
    assert_eq!(asked["asked"], 2, "{asked}");
    // being assigned: no longer listed
    assert_eq!(w.resigned().await, Vec::<Value>::new());
    assert_eq!(w.app.job_finished(&asked["job_id"]).await["state"], "done");
    assert_eq!(
        w.standin
            .calls("externalcontact/resigned/transfer_customer"),
        1
    );
    assert_eq!(w.standin.calls("externalcontact/transfer_customer"), 0);
    let waiting = w.until_status("waiting", 2).await;
    assert!(waiting.iter().all(|t| t["kind"] == "resigned"));
    w.standin.advance_clock(DAY_AND_A_BIT);
    w.until_status("succeeded", 2).await;
    assert_eq!(w.owner("wmLS01").await, wangwu);
    assert_eq!(w.owner("wmLS02").await, wangwu);
    assert_eq!(w.resigned().await, Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transfers_are_refused_and_reach_is_kept() {
    let w = &World::new().await;
    let app = &w.app;
    let zhangsan = w.staff["zhangsan"];
    let c1 = w.customer_id("wmZS01").await;
    let ls1 = w.customer_id("wmLS01").await;
    let base = json!({"kind": "in_office", "handover_userid": "zhangsan",
                      "takeover_userid": "lisi", "customer_ids": [c1]});
    let with = |patch: Value| {
        let mut body = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    let post =
        |body: Value| async move { app.post(&w.path("transfers"), &app.admin_token, body).await };
    let field = |a: &crate::helpers::Answer| {
        a.body["error"]["details"]["fields"][0]["field"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };

    app.post(
        "/api/v1/connectors/999999/transfers",
        &app.admin_token,
        base.clone(),
    )
    .await
    .expect(404);
    app.get("/api/v1/connectors/999999/resigned", &app.admin_token)
        .await
        .expect(404);
    // unknown staff: not found; staff who is no member of the corp: refused
    let a = post(with(
        json!({"takeover_userid": null, "takeover_staff_id": 999999}),
    ))
    .await;
    assert_eq!(a.expect(404).code(), "not_found");
    let admin_staff = app.staff_with_role("boss@acme.example.com", "admin").await;
    let a = post(with(
        json!({"takeover_userid": null, "takeover_staff_id": admin_staff}),
    ))
    .await;
    assert_eq!(field(&a.expect(422)), "takeover_staff_id");
    let a = post(with(json!({"takeover_userid": "nobody"}))).await;
    assert_eq!(field(&a.expect(422)), "takeover_userid");
    // the same member on both sides, by userid or by staff id
    let a = post(with(json!({"takeover_userid": "zhangsan"}))).await;
    assert_eq!(field(&a.expect(422)), "takeover");
    let a = post(with(
        json!({"takeover_userid": null, "takeover_staff_id": zhangsan}),
    ))
    .await;
    assert_eq!(field(&a.expect(422)), "takeover");
    // no customers, too many, both lists, neither
    let a = post(with(json!({"customer_ids": []}))).await;
    assert_eq!(field(&a.expect(422)), "customer_ids");
    let many: Vec<i64> = (1..=1001).collect();
    let a = post(with(json!({"customer_ids": many}))).await;
    assert_eq!(field(&a.expect(422)), "customer_ids");
    let a = post(with(json!({"external_userids": ["wmZS01"]}))).await;
    assert_eq!(field(&a.expect(422)), "customer_ids");
    let a = post(with(json!({"customer_ids": null}))).await;
    assert_eq!(field(&a.expect(422)), "customer_ids");
    let a = post(with(json!({"kind": "sideways"}))).await;
    assert_eq!(field(&a.expect(422)), "kind");
    let a = post(with(json!({"kind": "resigned"}))).await;
    assert_eq!(field(&a.expect(422)), "kind");
    let a = post(with(json!({"message": "好".repeat(201)}))).await;
    assert_eq!(field(&a.expect(422)), "message");
    post(with(json!({"handover": "zhangsan"})))
        .await
        .expect(422);
    // customers siyu does not have: not found
    post(with(json!({"customer_ids": [c1, 999999]})))
        .await
        .expect(404);
    post(with(
        json!({"customer_ids": null, "external_userids": ["wmNOBODY"]}),
    ))
    .await
    .expect(404);
    // a customer the handover does not have is refused in the answer, WeCom not asked
    let a = post(with(json!({"customer_ids": [ls1]}))).await.expect(202);
    assert_eq!(a.body["job_id"], Value::Null);
    assert_eq!(a.body["refused"][0]["code"], "not_handovers_customer");
    assert_eq!(a.body["refused"][0]["customer_id"], ls1);
    // listing: bad status
    app.get(
        &format!("{}?status=lost", w.path("transfers")),
        &app.admin_token,
    )
    .await
    .expect(422);
    assert_eq!(w.standin.calls("externalcontact/transfer_customer"), 0);

    // without customers.write: forbidden
    let analyst = app.token_with_role("analyst").await;
    app.post(&w.path("transfers"), &analyst, base.clone())
        .await
        .expect(403);

    // a staff member who reaches only their own customers
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    let own = app
        .post(
            "/api/v1/staff",
            &app.admin_token,
            json!({"unit_id": root.id, "role": "operations", "email": "own@acme.example.com",
                   "name": "own", "password": PASSWORD, "data_scope": "own"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let (client, signed_in) = app.login("own@acme.example.com", PASSWORD).await;
    signed_in.expect(200);
    let as_own = |body: Value| {
        let client = client.clone();
        async move {
            answer(
                client
                    .post(app.url(&w.path("transfers")))
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    // 张三's customer is out of reach: not found
    assert_eq!(as_own(base.clone()).await.expect(404).code(), "not_found");
    // one of their own, handed to 李四's staff (outside their reach): forbidden
    let c5 = w.customer_id("wmZS05").await;
    app.post(
        "/api/v1/customers/assign",
        &app.admin_token,
        json!({"customer_ids": [c5], "owner_staff_id": own}),
    )
    .await
    .expect(200);
    as_own(with(json!({"customer_ids": [c5]})))
        .await
        .expect(403);
    // they see no transfer of customers outside their reach
    w.transfer(with(json!({"customer_ids": [c1]}))).await;
    let listed = answer(
        client
            .get(app.url(&w.path("transfers")))
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(200)
    .body;
    assert_eq!(listed["items"], json!([]), "{listed}");
    assert_eq!(w.transfers("").await.len(), 1);
    assert_eq!(w.owner("wmZS05").await, own);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_ask_takes_what_wecom_started_as_started() {
    let w = World::new().await;
    let lisi = w.staff["lisi"];
    // a try that started the transfer and stopped before recording it, as WeCom saw it
    let http = reqwest::Client::new();
    let token: Value = http
        .get(format!("{}/cgi-bin/gettoken", w.standin.base_url()))
        .query(&[
            ("corpid", GENERATED_CORP_ID),
            ("corpsecret", GENERATED_SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let started: Value = http
        .post(format!(
            "{}/cgi-bin/externalcontact/transfer_customer",
            w.standin.base_url()
        ))
        .query(&[("access_token", token["access_token"].as_str().unwrap())])
        .json(
            &json!({"handover_userid": "zhangsan", "takeover_userid": "lisi",
                      "external_userid": ["wmZS01"]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(started["customer"][0]["errcode"], 0, "{started}");
    // siyu's first try finds WeCom busy; the next one reads what WeCom started
    w.standin.inject("externalcontact/transfer_customer", -1, 4);
    let asked = w
        .transfer(json!({"kind": "in_office", "handover_userid": "zhangsan",
                         "takeover_staff_id": lisi,
                         "external_userids": ["wmZS01", "wmZS02"]}))
        .await;
    let job = w.app.job_finished(&asked["job_id"]).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    let waiting = w.until_status("waiting", 2).await;
    assert!(
        waiting.iter().all(|t| t["errcode"].is_null()),
        "{waiting:?}"
    );
    let asked_again: Vec<Value> = w
        .standin
        .call_log()
        .into_iter()
        .filter(|c| c.path == "externalcontact/transfer_customer" && c.errcode == 0)
        .map(|c| c.body["external_userid"].clone())
        .collect();
    assert_eq!(asked_again, [json!(["wmZS01"]), json!(["wmZS02"])]);
    w.standin.advance_clock(DAY_AND_A_BIT);
    w.until_status("succeeded", 2).await;
    assert_eq!(w.owner("wmZS01").await, lisi);
}
