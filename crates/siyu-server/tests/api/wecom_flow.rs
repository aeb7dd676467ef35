//! WeCom end to end: the stand-in pushes encrypted callbacks to a real server, whose
//! job runner processes them against the stand-in's API. A customer who adds a member
//! through a channel code is made, attributed (`channel_code`), owned by the member and
//! welcomed exactly once, a repeated callback included; an opted-out customer is never
//! welcomed; a used welcome code is recorded, not retried; a member's tag edit and the
//! customer's deletion reach the profile.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use siyu_domain::audience::TagOrigin;
use siyu_domain::customer::{CustomerId, TimelineEntry};
use siyu_domain::page::PageRequest;
use siyu_wecom_standin::{Corp, ExternalContact, GenerateSpec, Standin};

use crate::helpers::TestApp;

const TOKEN: &str = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo";
const AES_KEY: &str = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";
const WELCOME: &str = "欢迎来到思域茶饮！";

/// The app, the stand-in pushing to it, and a synced connector.
pub(crate) async fn connected() -> (TestApp, Standin, i64) {
    let standin = Standin::start(Corp::generate(&GenerateSpec {
        members: 2,
        contacts: 10,
        tag_groups: 1,
        tags_per_group: 3,
        tagged_share: 0.0,
        seed: 5,
    }))
    .unwrap();
    let app = TestApp::spawn().await;
    let id = app
        .post(
            "/api/v1/connectors",
            &app.admin_token,
            json!({"kind": "wecom", "name": "企业微信", "config": {
                "corp_id": siyu_wecom_standin::GENERATED_CORP_ID,
                "secret": siyu_wecom_standin::GENERATED_SECRET,
                "token": TOKEN, "encoding_aes_key": AES_KEY,
                "api_base_url": standin.base_url(), "welcome": WELCOME,
                "agent_id": 1000002}}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let sync = app
        .post(
            &format!("/api/v1/connectors/{id}/sync"),
            &app.admin_token,
            json!({}),
        )
        .await
        .expect(202)
        .body;
    assert_eq!(app.job_finished(&sync["job_id"]).await["state"], "done");
    standin
        .set_callback(&app.url(&format!("/callbacks/wecom/{id}")), TOKEN, AES_KEY)
        .unwrap();
    (app, standin, id)
}

/// Waits until every callback's work has finished (adds and deletions applied in bulk,
/// then each other event's job and each welcome), and answers the callback jobs.
pub(crate) async fn callbacks_done(app: &TestApp) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let mut jobs = Vec::new();
        for kind in ["wecom.relation_changes", "wecom.callback"] {
            jobs.push(
                app.get(
                    &format!("/api/v1/jobs?kind={kind}&limit=100"),
                    &app.admin_token,
                )
                .await
                .expect(200)
                .body["items"]
                    .as_array()
                    .unwrap()
                    .clone(),
            );
        }
        if jobs
            .iter()
            .flatten()
            .all(|j| ["done", "dead", "cancelled"].contains(&j["state"].as_str().unwrap()))
        {
            return jobs.pop().unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "callbacks still being worked: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn customer_of(app: &TestApp, external: &str) -> Value {
    app.get(
        &format!("/api/v1/customers/lookup?kind=wecom_external_userid&value={external}"),
        &app.admin_token,
    )
    .await
    .expect(200)
    .body
}

/// The customer's events of this name, newest first.
pub(crate) async fn events(app: &TestApp, customer: i64, name: &str) -> Vec<Value> {
    let scope = app.store.tenant(app.tenant.id);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_add_through_a_channel_code_makes_attributes_owns_and_welcomes_once() {
    let (app, standin, id) = connected().await;
    let member = "member001";
    let added = standin
        .customer_adds(
            member,
            ExternalContact::wechat("wmNEWcustomer01", "新客户"),
            Some("douyin-live-01".into()),
            true,
        )
        .await;
    assert_eq!(added.delivered, Ok(200));
    let code = added.welcome_code.unwrap();
    callbacks_done(&app).await;
    // WeCom repeats the callback (it did not hear the answer): processed once
    let plaintext = standin.pushed().last().unwrap().plaintext.clone();
    assert_eq!(standin.push_raw(&plaintext).await, Ok(200));
    let jobs = callbacks_done(&app).await;
    assert_eq!(jobs.len(), 1, "one job for the callback and its repeat");
    assert_eq!(jobs[0]["state"], "done", "{jobs:?}");

    let welcomes = standin.welcome_messages();
    assert_eq!(welcomes.len(), 1, "{welcomes:?}");
    assert_eq!(welcomes[0].welcome_code, code);
    assert_eq!(welcomes[0].text, WELCOME);

    let customer = customer_of(&app, "wmNEWcustomer01").await;
    let staff = app
        .store
        .tenant(app.tenant.id)
        .wecom_members(siyu_domain::ids::ConnectorId(id))
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.userid == member)
        .unwrap()
        .staff_id;
    assert_eq!(customer["owner_staff_id"], staff, "{customer}");
    let customer_id = customer["id"].as_i64().unwrap();
    let added = events(&app, customer_id, "Contact Added").await;
    assert_eq!(added.len(), 1, "{added:?}");
    assert_eq!(added[0]["member"], member);
    assert_eq!(added[0]["state"], "douyin-live-01");
    assert_eq!(added[0]["channel_code"], "douyin-live-01");
    // applied from the callback, which does not say how they added
    assert!(added[0].get("add_way").is_none(), "{added:?}");
    // the welcome's read of the contact brought what only `get` knows
    let relations = app
        .get(
            &format!("/api/v1/customers/{customer_id}/wecom"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(relations[0]["add_way"], 1, "{relations}");
    assert_eq!(customer["traits"]["name"], "新客户", "{customer}");
    // the send is on record
    let sends = app
        .store
        .tenant(app.tenant.id)
        .connector_sends_to(
            siyu_domain::ids::ConnectorId(id),
            "welcome",
            "wmNEWcustomer01",
        )
        .await
        .unwrap();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].status, "sent");

    // the segment language sees the channel code
    let preview = {
        let started = Instant::now();
        loop {
            let body = app
                .post(
                    "/api/v1/segments/preview",
                    &app.admin_token,
                    json!({"definition": "channel_code(\"douyin-live-01\")"}),
                )
                .await
                .expect(200)
                .body;
            if body["count"] == 1 || started.elapsed() > Duration::from_secs(10) {
                break body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(preview["count"], 1, "{preview}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opted_out_customer_is_never_welcomed_and_a_used_code_is_recorded_not_retried() {
    let (app, standin, id) = connected().await;
    let first = standin
        .customer_adds(
            "member001",
            ExternalContact::wechat("wmOPTOUT000001", "不打扰"),
            None,
            false,
        )
        .await;
    assert_eq!(first.delivered, Ok(200));
    callbacks_done(&app).await;
    let customer = customer_of(&app, "wmOPTOUT000001").await["id"].clone();
    app.post(
        &format!("/api/v1/customers/{customer}/consent"),
        &app.admin_token,
        json!({"channel": "wecom", "status": "opt_out"}),
    )
    .await
    .expect(200);
    // they add a second member: WeCom offers a welcome code, siyu does not use it
    let again = standin
        .customer_adds(
            "member002",
            ExternalContact::wechat("wmOPTOUT000001", "不打扰"),
            None,
            true,
        )
        .await;
    assert_eq!(again.delivered, Ok(200));
    callbacks_done(&app).await;
    assert!(
        standin.welcome_messages().is_empty(),
        "an opted-out customer was welcomed"
    );
    let scope = app.store.tenant(app.tenant.id);
    let connector = siyu_domain::ids::ConnectorId(id);
    let sends = scope
        .connector_sends_to(connector, "welcome", "wmOPTOUT000001")
        .await
        .unwrap();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].status, "refused");

    // a code WeCom calls used (41051): recorded as failed, the job not tried again
    standin.inject("externalcontact/send_welcome_msg", 41051, 1);
    let used = standin
        .customer_adds(
            "member001",
            ExternalContact::wechat("wmUSEDCODE0001", "晚到"),
            None,
            true,
        )
        .await;
    assert_eq!(used.delivered, Ok(200));
    let jobs = callbacks_done(&app).await;
    assert!(jobs.iter().all(|j| j["state"] == "done"), "{jobs:?}");
    assert!(jobs.iter().all(|j| j["attempts"] == 1), "{jobs:?}");
    let sends = scope
        .connector_sends_to(connector, "welcome", "wmUSEDCODE0001")
        .await
        .unwrap();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].status, "failed");
    assert!(sends[0].detail.as_deref().unwrap().starts_with("41051"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_edits_and_deletions_in_wecom_reach_the_profile() {
    let (app, standin, id) = connected().await;
    standin
        .customer_adds(
            "member001",
            ExternalContact::wechat("wmTAGGED000001", "标签客户"),
            None,
            false,
        )
        .await
        .delivered
        .unwrap();
    callbacks_done(&app).await;
    let tag = standin.with_corp(|c| c.tag_ids()[0].clone());
    assert_eq!(
        standin
            .member_edits_tags("member001", "wmTAGGED000001", &[&tag], &[])
            .await,
        Ok(200)
    );
    callbacks_done(&app).await;
    let scope = app.store.tenant(app.tenant.id);
    let connector = siyu_domain::ids::ConnectorId(id);
    let mirrored = scope.wecom_tag_map(connector).await.unwrap()[&tag];
    let customer = CustomerId(
        customer_of(&app, "wmTAGGED000001").await["id"]
            .as_i64()
            .unwrap(),
    );
    let tags = scope.customer_tags(customer).await.unwrap();
    assert_eq!(tags.len(), 1, "{tags:?}");
    assert_eq!(
        (tags[0].tag_id, tags[0].origin),
        (mirrored, TagOrigin::Wecom)
    );
    // the member takes it off again
    standin
        .member_edits_tags("member001", "wmTAGGED000001", &[], &[&tag])
        .await
        .unwrap();
    callbacks_done(&app).await;
    assert!(scope.customer_tags(customer).await.unwrap().is_empty());

    // the customer deletes the member: the relation ends, the profile says by whom
    standin
        .customer_deletes_member("member001", "wmTAGGED000001")
        .await
        .unwrap();
    callbacks_done(&app).await;
    let deleted = events(&app, customer.0, "Contact Deleted").await;
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(deleted[0]["by"], "customer");
    assert_eq!(deleted[0]["member"], "member001");
    let counts = scope.wecom_counts(connector).await.unwrap();
    assert_eq!(counts.relations_ended, 1);
}

/// Waits until every job of the tenant has finished, but the personal tags sweep a sync
/// asks for a minute later (background reading, not part of what a test waits for).
pub(crate) async fn all_jobs_done(app: &TestApp) {
    let started = Instant::now();
    loop {
        let jobs = app
            .get("/api/v1/jobs?limit=200", &app.admin_token)
            .await
            .expect(200)
            .body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["kind"] != "wecom.personal_tags")
            .cloned()
            .collect::<Vec<Value>>();
        let live: Vec<&Value> = jobs
            .iter()
            .filter(|j| ["waiting", "running"].contains(&j["state"].as_str().unwrap()))
            .collect();
        if live.is_empty() {
            assert!(
                jobs.iter().all(|j| j["state"] == "done"),
                "a job did not succeed: {jobs:?}"
            );
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "jobs still live: {live:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corp_tags_changed_on_both_sides_at_once_end_the_same_on_both() {
    let (app, standin, id) = connected().await;
    let ext = "wmRACE00000001";
    for member in ["member001", "member002"] {
        standin
            .customer_adds(member, ExternalContact::wechat(ext, "两边改"), None, false)
            .await
            .delivered
            .unwrap();
        all_jobs_done(&app).await;
    }
    let scope = app.store.tenant(app.tenant.id);
    let connector = siyu_domain::ids::ConnectorId(id);
    let map = scope.wecom_tag_map(connector).await.unwrap();
    let (a, b) = standin.with_corp(|c| (c.tag_ids()[0].clone(), c.tag_ids()[1].clone()));
    let (siyu_a, siyu_b) = (map[&a], map[&b]);
    let customer = CustomerId(customer_of(&app, ext).await["id"].as_i64().unwrap());
    let tags_url = format!("/api/v1/customers/{}/tags", customer.0);
    let siyu_tags = || async {
        let mut tags: Vec<i64> = scope
            .customer_tags(customer)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.tag_id.0)
            .collect();
        tags.sort();
        tags
    };
    let wecom_tags = |member: &str| {
        let mut tags = standin.follow_relation(member, ext).unwrap().tag_ids;
        tags.sort();
        tags
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    for round in 0..3u64 {
        // siyu puts A on while the member puts B on in WeCom
        let (siyu, wecom) = tokio::join!(
            app.post(&tags_url, &app.admin_token, json!({"add": [siyu_a]})),
            async {
                tokio::time::sleep(Duration::from_millis(round * 7)).await;
                standin
                    .member_edits_tags("member001", ext, &[&b], &[])
                    .await
            }
        );
        siyu.expect(200);
        assert_eq!(wecom, Ok(200));
        all_jobs_done(&app).await;
        let mut both = vec![siyu_a.0, siyu_b.0];
        both.sort();
        assert_eq!(siyu_tags().await, both, "round {round}: siyu has both");
        assert_eq!(
            wecom_tags("member001"),
            sorted(vec![a.clone(), b.clone()]),
            "round {round}: the member's relation has both"
        );
        assert_eq!(
            wecom_tags("member002"),
            vec![a.clone()],
            "round {round}: siyu's tag is on every relation"
        );
        // siyu takes A off while the member takes B off
        let (siyu, wecom) = tokio::join!(
            app.post(&tags_url, &app.admin_token, json!({"remove": [siyu_a]})),
            async {
                tokio::time::sleep(Duration::from_millis(round * 5)).await;
                standin
                    .member_edits_tags("member001", ext, &[], &[&b])
                    .await
            }
        );
        siyu.expect(200);
        assert_eq!(wecom, Ok(200));
        all_jobs_done(&app).await;
        assert_eq!(
            siyu_tags().await,
            Vec::<i64>::new(),
            "round {round}: none left"
        );
        assert!(wecom_tags("member001").is_empty(), "round {round}");
        assert!(wecom_tags("member002").is_empty(), "round {round}");
    }
    // a full sync afterwards changes nothing
    let sync = app
        .post(
            &format!("/api/v1/connectors/{id}/sync"),
            &app.admin_token,
            json!({"scope": "customers"}),
        )
        .await
        .expect(202)
        .body;
    assert_eq!(app.job_finished(&sync["job_id"]).await["state"], "done");
    assert_eq!(siyu_tags().await, Vec::<i64>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_chats_follow_joins_leaves_and_dismissal() {
    use siyu_wecom_standin::ChatMember;
    let (app, standin, id) = connected().await;
    let chats = app
        .get(
            &format!("/api/v1/connectors/{id}/group-chats"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    let chat = chats[0].clone();
    let chat_id = chat["chat_id"].as_str().unwrap().to_owned();
    let customers_before = chat["customers"].as_i64().unwrap();
    assert!(customers_before > 0, "{chats}");

    // a customer joins by the group's QR code, carrying the join way's state
    standin
        .customer_adds(
            "member001",
            ExternalContact::wechat("wmCHATJOIN0001", "进群"),
            None,
            false,
        )
        .await
        .delivered
        .unwrap();
    all_jobs_done(&app).await;
    let join_time = standin
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(
        standin
            .chat_members_join(
                &chat_id,
                vec![ChatMember {
                    userid: "wmCHATJOIN0001".into(),
                    type_: 2,
                    join_time,
                    join_scene: 3,
                    state: Some("group-code-7".into()),
                    ..ChatMember::default()
                }],
            )
            .await,
        Ok(200)
    );
    all_jobs_done(&app).await;
    let customer = customer_of(&app, "wmCHATJOIN0001").await["id"]
        .as_i64()
        .unwrap();
    let joined = events(&app, customer, "Group Chat Joined").await;
    assert_eq!(joined.len(), 1, "{joined:?}");
    assert_eq!(joined[0]["chat_id"], chat_id.as_str());
    assert_eq!(joined[0]["state"], "group-code-7");
    assert_eq!(joined[0]["join_scene"], 3);
    let chat_now = |chats: Value| {
        chats
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["chat_id"] == chat_id.as_str())
            .unwrap()
            .clone()
    };
    let url = format!("/api/v1/connectors/{id}/group-chats");
    let after = chat_now(app.get(&url, &app.admin_token).await.expect(200).body);
    assert_eq!(after["customers"].as_i64().unwrap(), customers_before + 1);

    // they leave; then the owner dismisses the chat
    standin
        .chat_members_quit(&chat_id, &["wmCHATJOIN0001"])
        .await
        .unwrap();
    all_jobs_done(&app).await;
    assert_eq!(events(&app, customer, "Group Chat Left").await.len(), 1);
    let after = chat_now(app.get(&url, &app.admin_token).await.expect(200).body);
    assert_eq!(after["customers"].as_i64().unwrap(), customers_before);
    standin.chat_dismissed(&chat_id).await.unwrap();
    all_jobs_done(&app).await;
    let after = chat_now(app.get(&url, &app.admin_token).await.expect(200).body);
    assert!(after["dismissed_at"].is_string(), "{after}");
    assert_eq!(after["members"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_messages_reach_members_within_wecoms_limits_and_bad_ones_are_refused() {
    let (app, standin, id) = connected().await;
    let token = &app.admin_token;
    let scope = app.store.tenant(app.tenant.id);
    let members = scope
        .wecom_members(siyu_domain::ids::ConnectorId(id))
        .await
        .unwrap();
    let (first, second) = (members[0].staff_id, members[1].staff_id);
    let url = format!("/api/v1/connectors/{id}/app-messages");
    let sent = app
        .post(
            &url,
            token,
            json!({"staff_ids": [first, second, first], "text": "今天 3 位客户待回访"}),
        )
        .await
        .expect(202)
        .body;
    assert_eq!(app.job_finished(&sent["job_id"]).await["state"], "done");
    let delivered = standin.app_messages();
    assert_eq!(delivered.len(), 2, "one each: {delivered:?}");
    assert!(delivered.iter().all(|m| m.content == "今天 3 位客户待回访"));

    // many to one member: siyu keeps under WeCom's 30 a minute, nothing is dropped
    let mut jobs = Vec::new();
    for n in 0..18 {
        let job = app
            .post(
                &url,
                token,
                json!({"staff_ids": [second], "text": format!("提醒 {n}")}),
            )
            .await
            .expect(202)
            .body["job_id"]
            .clone();
        jobs.push(job);
    }
    let started = Instant::now();
    let (done, waiting) = loop {
        let mut done = 0;
        let mut waiting = 0;
        for job in &jobs {
            let job = app
                .get(&format!("/api/v1/jobs/{job}"), token)
                .await
                .expect(200)
                .body;
            match job["state"].as_str().unwrap() {
                "done" => done += 1,
                "waiting"
                    if job["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains("wait")) =>
                {
                    waiting += 1
                }
                _ => {}
            }
        }
        if done + waiting == jobs.len() {
            break (done, waiting);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{done} done, {waiting} waiting"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(standin.app_messages_dropped(), 0, "WeCom dropped none");
    // the member had one already: 15 in siyu's minute (more only if a minute began)
    assert!(done >= 14, "{done} sent");
    assert!(done <= 18 && done + waiting == 18);
    let to_second = standin
        .app_messages()
        .iter()
        .filter(|m| m.userid == members[1].userid)
        .count();
    assert_eq!(to_second, 1 + done);

    // bad input
    app.post(&url, token, json!({"staff_ids": [first], "text": "  "}))
        .await
        .expect(422);
    app.post(
        &url,
        token,
        json!({"staff_ids": [first], "text": "长".repeat(700)}),
    )
    .await
    .expect(422);
    app.post(&url, token, json!({"staff_ids": [], "text": "x"}))
        .await
        .expect(422);
    let not_member = app
        .post(&url, token, json!({"staff_ids": [987654], "text": "x"}))
        .await
        .expect(422)
        .body;
    assert!(not_member.to_string().contains("staff_ids"), "{not_member}");
    app.post(
        "/api/v1/connectors/987654/app-messages",
        token,
        json!({"staff_ids": [first], "text": "x"}),
    )
    .await
    .expect(404);
    let service = app.token_with_role("service").await;
    app.post(&url, &service, json!({"staff_ids": [first], "text": "x"}))
        .await
        .expect(403);
    let no_agent = app
        .post(
            "/api/v1/connectors",
            token,
            json!({"kind": "wecom", "name": "没有应用", "config": {
                "corp_id": "ww2", "secret": "s", "token": "t", "encoding_aes_key": AES_KEY}}),
        )
        .await
        .expect(201)
        .body["id"]
        .clone();
    let refused = app
        .post(
            &format!("/api/v1/connectors/{no_agent}/app-messages"),
            token,
            json!({"staff_ids": [first], "text": "x"}),
        )
        .await
        .expect(422)
        .body;
    assert!(refused.to_string().contains("agent_id"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_shows_its_wecom_relations_and_reads_personal_tags_lazily() {
    let (app, standin, _) = connected().await;
    let ext = standin.with_corp(|c| {
        let ext = c.customers_of("member001")[0].clone();
        let mut info = c.relation("member001", &ext).unwrap().clone();
        info.personal_tags = vec!["爱喝绿茶".into()];
        info.remark = "王姐 13812345678".into();
        c.insert_follow("member001", &ext, info);
        ext
    });
    let customer = customer_of(&app, &ext).await["id"].as_i64().unwrap();
    let url = format!("/api/v1/customers/{customer}/wecom");
    let first = app.get(&url, &app.admin_token).await.expect(200).body;
    let relation = first
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["member"] == "member001")
        .unwrap_or_else(|| panic!("{first}"))
        .clone();
    assert!(
        relation["personal_tags"].is_null(),
        "the sync reads none: {relation}"
    );
    assert!(relation["member_name"].is_string());
    all_jobs_done(&app).await;
    let again = app.get(&url, &app.admin_token).await.expect(200).body;
    let relation = again
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["member"] == "member001")
        .unwrap()
        .clone();
    assert_eq!(relation["personal_tags"], json!(["爱喝绿茶"]), "{relation}");
    let remark = relation["remark"].as_str().unwrap();
    assert!(
        !remark.contains("13812345678"),
        "a mobile in a remark is masked: {remark}"
    );
    // read once a day: opening it again asks for nothing
    app.get(&url, &app.admin_token).await.expect(200);
    let reads = app
        .get(
            "/api/v1/jobs?kind=wecom.callback&limit=100",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(reads, 1, "one read for the opening");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_own_welcome_comes_before_the_connectors() {
    let (app, standin, id) = connected().await;
    let members = app
        .get(
            &format!("/api/v1/connectors/{id}/members"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    let members = members.as_array().unwrap();
    assert_eq!(members.len(), 2, "{members:?}");
    assert!(members.iter().all(|m| m["welcome"].is_null()));
    let own = "我是小王，您的专属顾问，有事随时找我～";
    let set = app
        .patch(
            &format!("/api/v1/connectors/{id}/members/member001"),
            &app.admin_token,
            json!({"welcome": own}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(set["welcome"], own);
    assert_eq!(set["userid"], "member001");

    // bad input: refused, nothing changed
    let path = format!("/api/v1/connectors/{id}/members/member001");
    let too_long = app
        .patch(
            &path,
            &app.admin_token,
            json!({"welcome": "欢".repeat(1400)}),
        )
        .await
        .expect(422);
    assert_eq!(
        too_long.body["error"]["details"]["fields"][0]["field"], "welcome",
        "{}",
        too_long.body
    );
    app.patch(&path, &app.admin_token, json!({"welcome": 5}))
        .await
        .expect(422);
    app.patch(&path, &app.admin_token, json!({}))
        .await
        .expect(422);
    app.patch(
        &path,
        &app.admin_token,
        json!({"welcome": "x", "name": "y"}),
    )
    .await
    .expect(422);
    app.patch(
        &format!("/api/v1/connectors/{id}/members/nobody"),
        &app.admin_token,
        json!({"welcome": "x"}),
    )
    .await
    .expect(404);
    // a member signed in may set their own welcome, not another's
    let member002 = app
        .store
        .tenant(app.tenant.id)
        .wecom_members(siyu_domain::ids::ConnectorId(id))
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.userid == "member002")
        .unwrap()
        .staff_id;
    app.patch(
        &format!("/api/v1/staff/{member002}"),
        &app.admin_token,
        json!({"email": "member002@acme.example.com", "password": crate::helpers::PASSWORD}),
    )
    .await
    .expect(200);
    let (client, signed_in) = app
        .login("member002@acme.example.com", crate::helpers::PASSWORD)
        .await;
    signed_in.expect(200);
    let as_member = |userid: &str, welcome: Value| {
        client
            .patch(app.url(&format!("/api/v1/connectors/{id}/members/{userid}")))
            .json(&json!({ "welcome": welcome }))
            .send()
    };
    let refused =
        crate::helpers::answer(as_member("member001", json!("抢来的欢迎语")).await.unwrap())
            .await
            .expect(403);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("own"),
        "{}",
        refused.body
    );
    crate::helpers::answer(as_member("member002", json!("我是二号")).await.unwrap())
        .await
        .expect(200);

    // customers who add member001 get member001's welcome; member002's get theirs
    for (member, external, text) in [
        ("member001", "wmOWNWELCOME001", own),
        ("member002", "wmOWNWELCOME002", "我是二号"),
    ] {
        let added = standin
            .customer_adds(
                member,
                ExternalContact::wechat(external, "新客户"),
                None,
                true,
            )
            .await;
        assert_eq!(added.delivered, Ok(200));
        callbacks_done(&app).await;
        let sent = standin
            .welcome_messages()
            .into_iter()
            .find(|w| Some(&w.welcome_code) == added.welcome_code.as_ref())
            .expect("welcomed");
        assert_eq!(sent.text, text);
    }
    // cleared: the connector's again
    app.patch(&path, &app.admin_token, json!({"welcome": null}))
        .await
        .expect(200);
    let added = standin
        .customer_adds(
            "member001",
            ExternalContact::wechat("wmOWNWELCOME003", "新客户"),
            None,
            true,
        )
        .await;
    assert_eq!(added.delivered, Ok(200));
    callbacks_done(&app).await;
    let sent = standin
        .welcome_messages()
        .into_iter()
        .find(|w| Some(&w.welcome_code) == added.welcome_code.as_ref())
        .expect("welcomed");
    assert_eq!(sent.text, WELCOME);
}
