//! WeCom's callback URL, called as WeCom calls it: by the stand-in (a customer adds a
//! member, the URL check) and by hand for what WeCom would never send. Each event is
//! taken once however often it comes (adds and deletions kept for the connector's bulk
//! job, others as a `wecom.callback` job each); what does not check out (signature,
//! corp, body) is refused and leaves nothing.

use serde_json::{Value, json};
use siyu_connect::wecom::crypto::CallbackCrypto;
use siyu_wecom_standin::{Corp, ExternalContact, Member, Standin, event_xml};

use crate::helpers::TestApp;
use crate::wecom_flow::{callbacks_done, customer_of, events};

const CORP: &str = "ww1436e0e65a779aee";
const TOKEN: &str = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo";
const KEY: &str = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";

/// A WeCom connector for the stand-in's corp (set A of the published vectors), and the
/// stand-in calling its callback URL.
async fn connector(app: &TestApp) -> (i64, Standin) {
    let standin = Standin::start(
        Corp::new(CORP)
            .add_secret("app-secret")
            .add_department(1, "总部", 0)
            .add_member(Member::new("zhangsan", "张三", 1)),
    )
    .unwrap();
    let id = app
        .post(
            "/api/v1/connectors",
            &app.admin_token,
            json!({"kind": "wecom", "name": "企业微信", "config": {
                "corp_id": CORP, "secret": "app-secret", "token": TOKEN,
                "encoding_aes_key": KEY, "api_base_url": standin.base_url(),
            }}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    standin
        .set_callback(&app.url(&format!("/callbacks/wecom/{id}")), TOKEN, KEY)
        .unwrap();
    (id, standin)
}

/// The tenant's `wecom.relation_changes` jobs.
async fn bulk_jobs(app: &TestApp) -> Vec<Value> {
    app.get("/api/v1/jobs?kind=wecom.relation_changes", &app.admin_token)
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// The tenant's `wecom.callback` jobs, oldest first.
async fn callback_jobs(app: &TestApp) -> Vec<Value> {
    let mut jobs = app
        .get("/api/v1/jobs?kind=wecom.callback", &app.admin_token)
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .clone();
    jobs.reverse();
    jobs
}

/// Sends a callback as WeCom does: the query, and the body as XML. Answers the status
/// and the body as text.
async fn send(app: &TestApp, id: i64, query: &str, body: Option<String>) -> (u16, String) {
    let url = app.url(&format!("/callbacks/wecom/{id}?{query}"));
    let request = match body {
        Some(body) => app
            .http
            .post(url)
            .header("content-type", "text/xml; charset=utf-8")
            .body(body),
        None => app.http.get(url),
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn the_url_check_answers_the_echo_and_a_bad_signature_is_refused() {
    let app = TestApp::spawn().await;
    let (id, standin) = connector(&app).await;
    assert!(standin.verify_callback_url().await.unwrap());

    // the published sample, its `+` encoded as WeCom encodes it, and left raw
    let echostr =
        "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==";
    let encoded: String = form_urlencoded::byte_serialize(echostr.as_bytes()).collect();
    let signed = "msg_signature=012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb\
                  &timestamp=1476416373&nonce=47744683";
    for echostr in [encoded.as_str(), echostr] {
        let (status, body) = send(&app, id, &format!("{signed}&echostr={echostr}"), None).await;
        assert_eq!((status, body.as_str()), (200, "1288432023552776189"));
    }

    let forged = format!(
        "msg_signature=012bc692d0a58dd4b10f8dfe5c4ac00ae211ebec\
         &timestamp=1476416373&nonce=47744683&echostr={encoded}"
    );
    let (status, body) = send(&app, id, &forged, None).await;
    assert_eq!(status, 401, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "invalid_signature");
    let (status, _) = send(&app, id, signed, None).await;
    assert_eq!(status, 422, "no echostr");
    let (status, _) = send(&app, id + 1, &format!("{signed}&echostr={encoded}"), None).await;
    assert_eq!(status, 404, "no such connector");
    assert!(callback_jobs(&app).await.is_empty());
}

#[tokio::test]
async fn an_added_customer_is_taken_once_and_applied_in_bulk() {
    let app = TestApp::spawn().await;
    let (id, standin) = connector(&app).await;
    let added = standin
        .customer_adds(
            "zhangsan",
            ExternalContact::wechat("wmEXT0001", "李娜"),
            Some("spring".into()),
            true,
        )
        .await;
    assert_eq!(added.delivered, Ok(200));
    // kept before the answer: the connector's bulk job waits or runs for it
    let bulk = app
        .get("/api/v1/jobs?kind=wecom.relation_changes", &app.admin_token)
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(bulk.len(), 1, "{bulk:?}");
    assert_eq!(bulk[0]["payload"]["connector_id"], id);

    // WeCom sends it again (no answer within 5 s): answered, and nothing twice
    let plaintext = standin.pushed()[0].plaintext.clone();
    assert_eq!(standin.push_raw(&plaintext).await, Ok(200));
    let (query, body) = standin.encrypted_callback(&plaintext).unwrap();
    assert_eq!(
        send(&app, id, &query, Some(body)).await,
        (200, "success".into())
    );
    // the welcome code's job follows the add, once, with the event as WeCom sent it
    let jobs = callbacks_done(&app).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let payload = &jobs[0]["payload"];
    assert_eq!(payload["connector_id"], id);
    let event = &payload["event"];
    assert_eq!(event["Event"], "change_external_contact");
    assert_eq!(event["ChangeType"], "add_external_contact");
    assert_eq!(event["UserID"], "zhangsan");
    assert_eq!(event["ExternalUserID"], "wmEXT0001");
    assert_eq!(event["State"], "spring");
    assert_eq!(event["WelcomeCode"].as_str(), added.welcome_code.as_deref());
    assert!(event["CreateTime"].as_i64().unwrap() > 1_600_000_000);

    // the deletion is applied too, and the profile tells each once
    let deleted = standin.build_event_xml(
        "change_external_contact",
        "del_follow_user",
        &[("UserID", "zhangsan"), ("ExternalUserID", "wmEXT0001")],
    );
    let (query, body) = standin.encrypted_callback(&deleted).unwrap();
    for _ in 0..2 {
        assert_eq!(
            send(&app, id, &query, Some(body.clone())).await,
            (200, "success".into())
        );
    }
    assert_eq!(callbacks_done(&app).await.len(), 1, "no job of its own");
    let customer = customer_of(&app, "wmEXT0001").await["id"].as_i64().unwrap();
    assert_eq!(events(&app, customer, "Contact Added").await.len(), 1);
    let deletions = events(&app, customer, "Contact Deleted").await;
    assert_eq!(deletions.len(), 1, "{deletions:?}");
    assert_eq!(deletions[0]["by"], "customer");
    let waiting = app
        .store
        .tenant(app.tenant.id)
        .waiting_wecom_relation_change_count(siyu_domain::ids::ConnectorId(id))
        .await
        .unwrap();
    assert_eq!(waiting, 0, "applied changes are not kept");
}

#[tokio::test]
async fn callbacks_that_do_not_check_out_are_refused_and_make_no_job() {
    let app = TestApp::spawn().await;
    let (id, standin) = connector(&app).await;
    let event = event_xml(
        CORP,
        1_700_000_000,
        "change_external_contact",
        "add_external_contact",
        &[("UserID", "zhangsan"), ("ExternalUserID", "wmEXT0001")],
    );
    let (query, body) = standin.encrypted_callback(&event).unwrap();

    // a signature that is not the connector's
    let forged = query.replacen("msg_signature=", "msg_signature=0", 1);
    let (status, answer) = send(&app, id, &forged, Some(body.clone())).await;
    assert_eq!(status, 401, "{answer}");
    assert!(answer.contains("invalid_signature"), "{answer}");
    let (status, _) = send(
        &app,
        id,
        &query.replace("nonce=", "nonce=1"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 401, "the nonce is signed");

    // signed with the connector's token, encrypted for another corp
    let other = CallbackCrypto::new(TOKEN, KEY, "ww-another-corp").unwrap();
    let encrypted = other.encrypt(&event);
    let signature = other.signature("1700000000", "42", &encrypted);
    let (status, answer) = send(
        &app,
        id,
        &format!("msg_signature={signature}&timestamp=1700000000&nonce=42"),
        Some(format!(
            "<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        )),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("ww-another-corp"), "{answer}");

    // bodies that are not XML with an <Encrypt>, and a message that is not an event
    let text_message = standin
        .encrypted_callback("<xml><MsgType>text</MsgType><Content>你好</Content></xml>")
        .unwrap();
    for (query, body) in [
        (query.clone(), "<xml><Encrypt>".to_owned()),
        (query.clone(), "{\"Encrypt\": \"x\"}".to_owned()),
        (
            query.clone(),
            "<xml><ToUserName>ww</ToUserName></xml>".to_owned(),
        ),
        (query.clone(), String::new()),
        text_message,
    ] {
        let (status, answer) = send(&app, id, &query, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
    }

    // unsigned, or for no connector
    let (status, _) = send(&app, id, "timestamp=1&nonce=2", Some(body.clone())).await;
    assert_eq!(status, 422);
    let (status, _) = send(&app, id + 1, &query, Some(body.clone())).await;
    assert_eq!(status, 404);
    let (status, _) = send(&app, 999_999, &query, Some(body.clone())).await;
    assert_eq!(status, 404);
    assert!(callback_jobs(&app).await.is_empty());

    assert!(bulk_jobs(&app).await.is_empty());

    // and the untouched callback is taken and applied
    assert_eq!(
        send(&app, id, &query, Some(body)).await,
        (200, "success".into())
    );
    assert_eq!(bulk_jobs(&app).await.len(), 1);
    callbacks_done(&app).await;
    assert!(
        customer_of(&app, "wmEXT0001").await["id"]
            .as_i64()
            .is_some()
    );
}

#[tokio::test]
async fn a_connector_of_another_tenant_answers_with_its_own_secrets_only() {
    let app = TestApp::spawn().await;
    let (id, standin) = connector(&app).await;
    // another tenant's connector with other secrets: the stand-in's signature is not its
    let (_, _, other_token) = crate::helpers::create_tenant(&app.store, "globex").await;
    let theirs = app
        .post(
            "/api/v1/connectors",
            &other_token,
            json!({"kind": "wecom", "name": "企业微信", "config": {
                "corp_id": CORP, "secret": "s", "token": "anotherToken42",
                "encoding_aes_key": KEY,
            }}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let event = standin.build_event_xml(
        "change_external_tag",
        "create",
        &[("Id", "etTAG1"), ("TagType", "tag")],
    );
    let (query, body) = standin.encrypted_callback(&event).unwrap();
    let (status, _) = send(&app, theirs, &query, Some(body.clone())).await;
    assert_eq!(status, 401);
    assert_eq!(
        send(&app, id, &query, Some(body)).await,
        (200, "success".into())
    );
    let other_jobs = app
        .get("/api/v1/jobs?kind=wecom.callback", &other_token)
        .await
        .expect(200)
        .body;
    assert_eq!(other_jobs["items"].as_array().unwrap().len(), 0);
    let jobs = callback_jobs(&app).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["payload"]["event"]["Id"], "etTAG1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_adds_and_deletions_is_applied_in_the_order_it_came() {
    let app = TestApp::spawn().await;
    let (id, standin) = connector(&app).await;
    let at = 1_700_000_000;
    let mut events: Vec<String> = (0..40)
        .map(|n| {
            event_xml(
                CORP,
                at + n,
                "change_external_contact",
                "add_external_contact",
                &[
                    ("UserID", "zhangsan"),
                    ("ExternalUserID", &format!("wmFLOOD{n:03}")),
                    ("State", "live-0601"),
                ],
            )
        })
        .collect();
    // the first customer deletes the member and adds them again; the second is deleted
    // by the member; a third goes by a transfer, which is no deletion
    for (n, change, user, extra) in [
        (0, "del_follow_user", "zhangsan", None),
        (0, "add_external_contact", "zhangsan", None),
        (1, "del_external_contact", "zhangsan", None),
        (
            2,
            "del_external_contact",
            "zhangsan",
            Some("DELETE_BY_TRANSFER"),
        ),
    ] {
        let external = format!("wmFLOOD{n:03}");
        let mut fields = vec![("UserID", user), ("ExternalUserID", external.as_str())];
        if let Some(source) = extra {
            fields.push(("Source", source));
        }
        let t = at + 100 + events.len() as u64;
        events.push(event_xml(
            CORP,
            t,
            "change_external_contact",
            change,
            &fields,
        ));
    }
    for event in &events {
        let (query, body) = standin.encrypted_callback(event).unwrap();
        assert_eq!(
            send(&app, id, &query, Some(body)).await,
            (200, "success".into())
        );
    }
    callbacks_done(&app).await;
    let scope = app.store.tenant(app.tenant.id);
    let counts = scope
        .wecom_counts(siyu_domain::ids::ConnectorId(id))
        .await
        .unwrap();
    assert_eq!((counts.contacts, counts.customers), (40, 40), "{counts:?}");
    assert_eq!(counts.relations, 38, "{counts:?}");
    assert_eq!(counts.relations_ended, 2, "{counts:?}");
    let again = customer_of(&app, "wmFLOOD000").await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(events_named(&app, again, "Contact Added").await, 2);
    assert_eq!(events_named(&app, again, "Contact Deleted").await, 1);
    let deleted = customer_of(&app, "wmFLOOD001").await["id"]
        .as_i64()
        .unwrap();
    let by = crate::wecom_flow::events(&app, deleted, "Contact Deleted").await;
    assert_eq!(by.len(), 1);
    assert_eq!(by[0]["by"], "member");
    let moved = customer_of(&app, "wmFLOOD002").await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(events_named(&app, moved, "Contact Transferred").await, 1);
    assert_eq!(events_named(&app, moved, "Contact Deleted").await, 0);
    let rest = customer_of(&app, "wmFLOOD039").await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(events_named(&app, rest, "Contact Added").await, 1);
    assert_eq!(
        scope
            .waiting_wecom_relation_change_count(siyu_domain::ids::ConnectorId(id))
            .await
            .unwrap(),
        0
    );
}

async fn events_named(app: &TestApp, customer: i64, name: &str) -> usize {
    events(app, customer, name).await.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_told_after_the_relation_was_found_gone_is_still_recorded() {
    let app = TestApp::spawn().await;
    let (id, standin) = connector(&app).await;
    let connector = siyu_domain::ids::ConnectorId(id);
    let fields = [("UserID", "zhangsan"), ("ExternalUserID", "wmGONE001")];
    let added = event_xml(
        CORP,
        1_700_000_000,
        "change_external_contact",
        "add_external_contact",
        &fields,
    );
    let (query, body) = standin.encrypted_callback(&added).unwrap();
    assert_eq!(send(&app, id, &query, Some(body)).await.0, 200);
    callbacks_done(&app).await;
    // a read of the contact found the relation gone before WeCom's deletion came
    let scope = app.store.tenant(app.tenant.id);
    scope
        .end_wecom_relation(
            connector,
            "wmGONE001",
            "zhangsan",
            siyu_store::now_ms(),
            siyu_store::RelationEnd::Unseen,
        )
        .await
        .unwrap();
    let customer = customer_of(&app, "wmGONE001").await["id"].as_i64().unwrap();
    assert_eq!(events_named(&app, customer, "Contact Deleted").await, 0);
    let deleted = event_xml(
        CORP,
        1_700_000_100,
        "change_external_contact",
        "del_follow_user",
        &fields,
    );
    let (query, body) = standin.encrypted_callback(&deleted).unwrap();
    assert_eq!(send(&app, id, &query, Some(body)).await.0, 200);
    callbacks_done(&app).await;
    let said = events(&app, customer, "Contact Deleted").await;
    assert_eq!(said.len(), 1, "the deletion is told: {said:?}");
    assert_eq!(said[0]["by"], "customer");
    let counts = scope.wecom_counts(connector).await.unwrap();
    assert_eq!((counts.relations, counts.relations_ended), (0, 1));
}
