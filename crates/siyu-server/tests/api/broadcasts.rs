//! Mass sends end to end on the sandbox channel: a preview says who would receive one
//! and why the rest would not; a send is planned once (opt-outs left out, the frequency
//! cap kept, each person once) and every recipient gets exactly one message; a
//! scheduled send changes before its time only; bad sends are refused with a reason;
//! staff send within their reach and see their own sends.

use serde_json::{Value, json};
use siyu_domain::ids::BroadcastId;

use crate::audiences::customer;
use crate::helpers::{PASSWORD, TestApp};
use crate::tracking::source;

/// Waits (up to 30 s) until a send is sent or cancelled, and answers it.
pub(crate) async fn finished(app: &TestApp, id: i64) -> Value {
    let started = std::time::Instant::now();
    loop {
        let send = app
            .get(&format!("/api/v1/broadcasts/{id}"), &app.admin_token)
            .await
            .expect(200)
            .body;
        if ["sent", "cancelled"].contains(&send["state"].as_str().unwrap()) {
            return send;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "send {id} did not finish: {send}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn inbox(app: &TestApp, id: i64) -> (i64, i64) {
    let count = app
        .store
        .tenant(app.tenant.id)
        .sandbox_count(BroadcastId(id))
        .await
        .unwrap();
    (count.messages, count.customers)
}

async fn opt_out(app: &TestApp, customer: i64, channel: &str) {
    app.post(
        &format!("/api/v1/customers/{customer}/consent"),
        &app.admin_token,
        json!({"channel": channel, "status": "opt_out"}),
    )
    .await
    .expect(200);
}

fn field_of(body: &Value) -> &str {
    body["error"]["details"]["fields"][0]["field"]
        .as_str()
        .unwrap_or("")
}

#[tokio::test]
async fn a_send_reaches_each_customer_once_and_says_why_the_rest_do_not_receive_it() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let (_, key) = source(&app).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(customer(&app, &key, &format!("b-{n}"), json!({"level": "金卡"})).await);
    }
    opt_out(&app, ids[2], "wecom").await;
    opt_out(&app, ids[3], "all").await;
    // an opt-out of e-mail leaves WeCom (and so the sandbox) open
    opt_out(&app, ids[4], "email").await;
    let audience =
        json!({"customers": [ids[0], ids[1], ids[2], ids[3], ids[4], ids[0], 99_999_999]});

    let preview = app
        .post(
            "/api/v1/broadcasts/preview",
            token,
            json!({"audience": audience}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(preview["recipients"], 3, "{preview}");
    assert_eq!(
        preview["excluded"],
        json!({"duplicate": 1, "opted_out": 2, "not_found": 1})
    );

    let made = app
        .post(
            "/api/v1/broadcasts",
            token,
            json!({"name": "双十二预告", "audience": audience, "text": "双十二，老朋友专享"}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(made["channel"], "sandbox");
    assert_eq!(made["frequency_cap"], "days_in_month");
    let id = made["id"].as_i64().unwrap();
    let send = finished(&app, id).await;
    assert_eq!(send["state"], "sent", "{send}");
    assert_eq!(
        (
            &send["recipients"],
            &send["sent"],
            &send["batches"],
            &send["batches_sent"]
        ),
        (&json!(3), &json!(3), &json!(1), &json!(1))
    );
    assert_eq!(send["excluded"], preview["excluded"]);
    assert!(send["finished_at"].is_string(), "{send}");
    assert_eq!(inbox(&app, id).await, (3, 3));
    let listed = app.get("/api/v1/broadcasts", token).await.expect(200).body;
    assert_eq!(listed["items"][0]["id"], id);

    // a segment's members: everyone with the trait, the opted out left out
    let segment = app
        .post(
            "/api/v1/segments",
            token,
            json!({"name": "金卡", "definition": "trait.level = \"金卡\""}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let by_segment = json!({"condition": {"segment": segment}});
    // one a day: those who got today's first send are over the cap
    let capped = app
        .post(
            "/api/v1/broadcasts/preview",
            token,
            json!({"audience": by_segment, "frequency_cap": "one_a_day"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(capped["recipients"], 0, "{capped}");
    assert_eq!(capped["excluded"], json!({"capped": 3, "opted_out": 2}));
    let refused = app
        .post(
            "/api/v1/broadcasts",
            token,
            json!({"name": "再发", "audience": by_segment, "text": "再见", "frequency_cap": "one_a_day"}),
        )
        .await
        .expect(422)
        .body;
    assert_eq!(field_of(&refused), "audience");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("3 capped"),
        "{refused}"
    );
    // WeCom's default cap (the month's days) lets a second send through
    let second = app
        .post(
            "/api/v1/broadcasts",
            token,
            json!({"name": "再发", "audience": by_segment, "text": "再见"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let send = finished(&app, second).await;
    assert_eq!((&send["recipients"], &send["sent"]), (&json!(3), &json!(3)));
    assert_eq!(inbox(&app, second).await, (3, 3));

    // audited
    let audit = app
        .get(
            &format!("/api/v1/audit-log?action=broadcast.created&target_id={id}"),
            token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
}

#[tokio::test]
async fn bad_sends_are_refused_and_a_scheduled_send_changes_only_before_its_time() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let (_, key) = source(&app).await;
    let one = customer(&app, &key, "s-1", json!({})).await;
    let gone = customer(&app, &key, "s-2", json!({})).await;
    opt_out(&app, gone, "all").await;
    let app_ref = &app;
    let send = |body: Value| async move {
        let answer = app_ref
            .post("/api/v1/broadcasts", &app_ref.admin_token, body)
            .await;
        (answer.status, answer.body)
    };
    let list = json!({"customers": [one]});
    for (body, field) in [
        (
            json!({"name": "空", "audience": list, "text": "   "}),
            "text",
        ),
        (
            json!({"name": "空", "audience": {"customers": []}, "text": "你好"}),
            "audience",
        ),
        (
            json!({"name": "模板", "audience": list, "text": "你好 {{customer.name}}"}),
            "text",
        ),
        (
            json!({"name": "时间", "audience": list, "text": "你好", "send_at": "明天"}),
            "send_at",
        ),
        (
            json!({"name": "", "audience": list, "text": "你好"}),
            "name",
        ),
        (
            json!({"name": "退订", "audience": {"customers": [gone]}, "text": "你好"}),
            "audience",
        ),
        (
            json!({"name": "无标签", "audience": {"condition": {"tag": "没有这个标签"}}, "text": "你好"}),
            "",
        ),
    ] {
        let (status, answer) = send(body.clone()).await;
        assert_eq!(status, 422, "{body} → {answer}");
        if !field.is_empty() {
            assert_eq!(field_of(&answer), field, "{body} → {answer}");
        }
    }
    let (status, _) =
        send(json!({"name": "x", "audience": list, "text": "你好", "channel": "sms"})).await;
    assert_eq!(status, 422);
    assert_eq!(
        app.get("/api/v1/broadcasts", token).await.expect(200).body["items"],
        json!([]),
        "nothing refused was stored"
    );

    // scheduled an hour ahead: it waits, and changes
    let later = siyu_domain::time::format_rfc3339(siyu_store::now_ms() + 3_600_000);
    let made = app
        .post(
            "/api/v1/broadcasts",
            token,
            json!({"name": "晚上好", "audience": list, "text": "晚上好", "send_at": later}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(made["state"], "scheduled");
    let id = made["id"].as_i64().unwrap();
    let url = format!("/api/v1/broadcasts/{id}");
    let changed = app
        .patch(
            &url,
            token,
            json!({"text": "晚上好呀", "frequency_cap": "one_a_day"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(
        (&changed["text"], &changed["frequency_cap"]),
        (&json!("晚上好呀"), &json!("one_a_day"))
    );
    assert_eq!(changed["send_at"], made["send_at"]);
    app.patch(&url, token, json!({"text": ""}))
        .await
        .expect(422);
    // moved to now: planned and sent at once, by the job of the new time
    let now = siyu_domain::time::format_rfc3339(siyu_store::now_ms());
    app.patch(&url, token, json!({"send_at": now}))
        .await
        .expect(200);
    let sent = finished(&app, id).await;
    assert_eq!((&sent["state"], &sent["sent"]), (&json!("sent"), &json!(1)));
    assert_eq!(inbox(&app, id).await, (1, 1));
    // after its time: refused, unchanged
    let refused = app
        .patch(&url, token, json!({"text": "改"}))
        .await
        .expect(409);
    assert_eq!(
        refused.body["error"]["code"], "conflict",
        "{}",
        refused.body
    );
    app.post(&format!("{url}/cancel"), token, json!({}))
        .await
        .expect(409);
    assert_eq!(
        app.get(&url, token).await.expect(200).body["text"],
        "晚上好呀"
    );

    // cancelled before its time: never planned, never sent
    let waiting = app
        .post(
            "/api/v1/broadcasts",
            token,
            json!({"name": "取消", "audience": list, "text": "取消我", "send_at": later}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let cancelled = app
        .post(
            &format!("/api/v1/broadcasts/{waiting}/cancel"),
            token,
            json!({}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(cancelled["state"], "cancelled");
    app.patch(
        &format!("/api/v1/broadcasts/{waiting}"),
        token,
        json!({"text": "x"}),
    )
    .await
    .expect(409);
    assert_eq!(inbox(&app, waiting).await, (0, 0));
    assert_eq!(cancelled["recipients"], Value::Null);
}

#[tokio::test]
async fn staff_send_within_their_reach_and_see_their_own_sends() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let (_, key) = source(&app).await;
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    let own = app
        .post(
            "/api/v1/staff",
            token,
            json!({"unit_id": root.id, "role": "operations", "email": "own@example.com",
                   "name": "own", "password": PASSWORD, "data_scope": "own"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let mine = customer(&app, &key, "r-1", json!({})).await;
    let theirs = customer(&app, &key, "r-2", json!({})).await;
    app.post(
        "/api/v1/customers/assign",
        token,
        json!({"customer_ids": [mine], "owner_staff_id": own}),
    )
    .await
    .expect(200);
    let (client, _) = app.login("own@example.com", PASSWORD).await;
    let post = |path: &'static str, body: Value| {
        let client = client.clone();
        let url = app.url(path);
        async move {
            let r = client.post(url).json(&body).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // a customer out of reach counts as not found, and a send to them alone is refused
    let (status, preview) = post(
        "/api/v1/broadcasts/preview",
        json!({"audience": {"customers": [mine, theirs]}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (&preview["recipients"], &preview["excluded"]),
        (&json!(1), &json!({"not_found": 1}))
    );
    let (status, _) = post(
        "/api/v1/broadcasts",
        json!({"name": "越界", "audience": {"customers": [theirs]}, "text": "你好"}),
    )
    .await;
    assert_eq!(status, 422);
    // everyone: only their own customers
    let (status, made) = post(
        "/api/v1/broadcasts",
        json!({"name": "全部", "audience": "everyone", "text": "你好"}),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_i64().unwrap();
    let send = finished(&app, id).await;
    assert_eq!(
        (&send["recipients"], &send["sent"]),
        (&json!(1), &json!(1)),
        "{send}"
    );
    assert_eq!(inbox(&app, id).await, (1, 1));

    // the admin's send is not theirs to see or cancel
    let admins = app
        .post(
            "/api/v1/broadcasts",
            token,
            json!({"name": "总部", "audience": {"customers": [theirs]}, "text": "你好",
                   "send_at": siyu_domain::time::format_rfc3339(siyu_store::now_ms() + 3_600_000)}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let seen = client
        .get(app.url(&format!("/api/v1/broadcasts/{admins}")))
        .send()
        .await
        .unwrap();
    assert_eq!(seen.status(), 404);
    let listed: Value = client
        .get(app.url("/api/v1/broadcasts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed: Vec<i64> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, vec![id]);
    let cancel = client
        .post(app.url(&format!("/api/v1/broadcasts/{admins}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 404);

    // a manager whose reach is their unit sees a colleague's send (made by someone in
    // the unit) but cannot point it at other customers: it is planned within the
    // maker's reach, which is the whole tenant
    for (email, scope) in [
        ("manager@example.com", "unit_subtree"),
        ("wide@example.com", "tenant"),
    ] {
        app.post(
            "/api/v1/staff",
            token,
            json!({"unit_id": root.id, "role": "operations", "email": email, "name": email,
                   "password": PASSWORD, "data_scope": scope}),
        )
        .await
        .expect(201);
    }
    let (wide, _) = app.login("wide@example.com", PASSWORD).await;
    let later = siyu_domain::time::format_rfc3339(siyu_store::now_ms() + 3_600_000);
    let colleague: Value = wide
        .post(app.url("/api/v1/broadcasts"))
        .json(&json!({"name": "同事的", "audience": {"customers": [mine]}, "text": "你好", "send_at": later}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let colleague = colleague["id"].as_i64().unwrap();
    let (manager, _) = app.login("manager@example.com", PASSWORD).await;
    let url = app.url(&format!("/api/v1/broadcasts/{colleague}"));
    assert_eq!(manager.get(&url).send().await.unwrap().status(), 200);
    let repointed = manager
        .patch(&url)
        .json(&json!({"audience": "everyone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(repointed.status(), 403);
    assert_eq!(
        app.get(&format!("/api/v1/broadcasts/{colleague}"), token)
            .await
            .expect(200)
            .body["audience"],
        json!({"customers": [mine]})
    );

    // roles: content staff see sends but make none
    let content = app.token_with_role("content").await;
    app.get("/api/v1/broadcasts", &content).await.expect(200);
    app.post(
        "/api/v1/broadcasts",
        &content,
        json!({"name": "x", "audience": {"customers": [mine]}, "text": "你好"}),
    )
    .await
    .expect(403);
    app.post(
        "/api/v1/broadcasts/preview",
        &content,
        json!({"audience": {"customers": [mine]}}),
    )
    .await
    .expect(403);
}

#[tokio::test]
async fn a_template_send_renders_each_customers_values_as_the_template_was_when_made() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let (_, key) = source(&app).await;
    let named = customer(
        &app,
        &key,
        "tpl-1",
        json!({"name": "王芳", "level": "金卡"}),
    )
    .await;
    let bare = customer(&app, &key, "tpl-2", json!({"level": " "})).await;
    let template = app
        .post(
            "/api/v1/message-templates",
            token,
            json!({"name": "会员日", "body": "{{ customer.name }}，您的{{ customer.traits.level }}权益已到账",
                   "fallbacks": {"customer.name": "亲爱的会员", "customer.traits.level": "会员"}}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    // scheduled for later; the template changes meanwhile; the send keeps what it was
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let id = app
        .post(
            "/api/v1/broadcasts",
            token,
            json!({"name": "模板群发", "audience": {"customers": [named, bare]},
                   "template_id": template, "send_at": later}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(id["template_id"], template);
    assert_eq!(
        id["text"],
        "{{ customer.name }}，您的{{ customer.traits.level }}权益已到账"
    );
    let id = id["id"].as_i64().unwrap();
    app.patch(
        &format!("/api/v1/message-templates/{template}"),
        token,
        json!({"body": "{{ customer.name }}，活动已结束"}),
    )
    .await
    .expect(200);
    let now = chrono::Utc::now().to_rfc3339();
    app.patch(
        &format!("/api/v1/broadcasts/{id}"),
        token,
        json!({"send_at": now}),
    )
    .await
    .expect(200);
    assert_eq!(finished(&app, id).await["state"], "sent");
    let scope = app.store.tenant(app.tenant.id);
    assert_eq!(
        scope.sandbox_texts(BroadcastId(id), named).await.unwrap(),
        vec!["王芳，您的金卡权益已到账"]
    );
    // no name and a blank trait: the fallbacks, never an empty greeting or {{…}}
    assert_eq!(
        scope.sandbox_texts(BroadcastId(id), bare).await.unwrap(),
        vec!["亲爱的会员，您的会员权益已到账"]
    );

    // a text and a template, neither, or a template that is not one: refused
    for (body, field) in [
        (
            json!({"name": "x", "audience": {"customers": [named]}, "text": "你好",
                   "template_id": template}),
            "template_id",
        ),
        (
            json!({"name": "x", "audience": {"customers": [named]}, "template_id": 999_999}),
            "template_id",
        ),
        (
            json!({"name": "x", "audience": {"customers": [named]}}),
            "text",
        ),
    ] {
        let answer = app
            .post("/api/v1/broadcasts", token, body)
            .await
            .expect(422);
        assert_eq!(field_of(&answer.body), field, "{}", answer.body);
    }
}

/// `HH:MM` (UTC, the test tenant's zone) `minutes` from now.
pub fn utc_clock(minutes: i64) -> String {
    let at = siyu_store::now_ms() / 60_000 + minutes;
    let of_day = at.rem_euclid(24 * 60);
    format!("{:02}:{:02}", of_day / 60, of_day % 60)
}

#[tokio::test]
async fn sandbox_messages_wait_out_quiet_hours_until_someone_sends_them_anyway() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    // off until set
    let off = app
        .get("/api/v1/settings/quiet-hours", token)
        .await
        .expect(200)
        .body;
    assert_eq!(off["enabled"], false);
    for (body, field) in [
        (
            json!({"enabled": true, "start": "25:00", "end": "09:00"}),
            "start",
        ),
        (
            json!({"enabled": true, "start": "21:00", "end": "21:00"}),
            "end",
        ),
        (
            json!({"enabled": true, "start": "21:00", "end": "9"}),
            "end",
        ),
    ] {
        let refused = app
            .put("/api/v1/settings/quiet-hours", token, body)
            .await
            .expect(422);
        assert_eq!(field_of(&refused.body), field);
    }
    app.put(
        "/api/v1/settings/quiet-hours",
        token,
        json!({"enabled": true, "start": "21:00"}),
    )
    .await
    .expect(422);
    let service = app.token_with_role("service").await;
    app.put(
        "/api/v1/settings/quiet-hours",
        &service,
        json!({"enabled": true, "start": "21:00", "end": "09:00"}),
    )
    .await
    .expect(403);

    // quiet from an hour ago to an hour from now
    let (start, end) = (utc_clock(-60), utc_clock(60));
    app.put(
        "/api/v1/settings/quiet-hours",
        token,
        json!({"enabled": true, "start": start, "end": end}),
    )
    .await
    .expect(200);
    let audit = app
        .get("/api/v1/audit-log?action=settings.changed", token)
        .await
        .expect(200);
    assert!(audit.body["items"][0]["details"]["key"] == "quiet_hours");
    let (_, key) = source(&app).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(customer(&app, &key, &format!("q-{n}"), json!({})).await);
    }
    let made = app
        .post(
            "/api/v1/broadcasts",
            token,
            json!({"name": "夜间", "audience": {"customers": ids}, "text": "晚安"}),
        )
        .await
        .expect(201)
        .body;
    let id = made["id"].as_i64().unwrap();
    // the batch waits, its try not counted, until the quiet hours end
    let started = std::time::Instant::now();
    let held = loop {
        let jobs = app
            .get("/api/v1/jobs?kind=broadcast.batch", token)
            .await
            .expect(200)
            .body;
        if let Some(job) = jobs["items"].as_array().unwrap().iter().find(|j| {
            j["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("quiet hours"))
        }) {
            break job.clone();
        }
        assert!(started.elapsed().as_secs() < 30, "no batch held: {jobs}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(held["state"], "waiting", "{held}");
    assert_eq!(held["attempts"], 0, "{held}");
    let resume = siyu_domain::time::format_rfc3339((siyu_store::now_ms() / 60_000 + 60) * 60_000);
    assert_eq!(held["run_at"].as_str().unwrap(), resume, "{held}");
    let send = app
        .get(&format!("/api/v1/broadcasts/{id}"), token)
        .await
        .expect(200)
        .body;
    assert_eq!(send["sent"], 0);
    assert_eq!(inbox(&app, id).await, (0, 0));

    // someone sends it anyway: the job cancelled and run again, quiet hours off
    app.put(
        "/api/v1/settings/quiet-hours",
        token,
        json!({"enabled": false, "start": start, "end": end}),
    )
    .await
    .expect(200);
    let job = held["id"].as_i64().unwrap();
    app.post(&format!("/api/v1/jobs/{job}/cancel"), token, json!({}))
        .await
        .expect(200);
    app.post(&format!("/api/v1/jobs/{job}/retry"), token, json!({}))
        .await
        .expect(200);
    let sent = finished(&app, id).await;
    assert_eq!(sent["state"], "sent", "{sent}");
    assert_eq!(inbox(&app, id).await, (3, 3));
}
