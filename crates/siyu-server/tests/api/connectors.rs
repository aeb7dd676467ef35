//! Connector accounts through the API: created with their secrets sealed and never
//! shown, changed field by field, deleted; bad configurations refused naming the
//! field; reading and changing under their permissions, within the tenant.

use serde_json::{Value, json};
use siyu_domain::ids::ConnectorId;

use crate::helpers::{TestApp, create_tenant};

fn wecom(name: &str) -> Value {
    json!({
        "kind": "wecom",
        "name": name,
        "config": {
            "corp_id": "ww1436e0e65a779aee",
            "secret": "app-secret-CLEAR-42",
            "token": "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
            "encoding_aes_key": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
            "agent_id": 1000002,
            "welcome": "你好，欢迎！"
        }
    })
}

#[tokio::test]
async fn a_wecom_connector_is_created_shown_without_secrets_changed_and_deleted() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let created = app
        .post("/api/v1/connectors", token, wecom("企业微信"))
        .await
        .expect(201)
        .body;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["kind"], "wecom");
    assert_eq!(created["config"]["corp_id"], "ww1436e0e65a779aee");
    assert_eq!(
        created["config"]["api_base_url"],
        "https://qyapi.weixin.qq.com"
    );
    assert_eq!(created["config"]["member_role"], "service");
    assert_eq!(created["callback_path"], format!("/callbacks/wecom/{id}"));
    assert_eq!(created["health"]["healthy"], true);
    let text = created.to_string();
    for secret in [
        "app-secret-CLEAR-42",
        "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
        "6qkdMrq68nTKd",
    ] {
        assert!(!text.contains(secret), "{secret} shown");
    }
    let listed = app.get("/api/v1/connectors", token).await.expect(200).body;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains("app-secret-CLEAR-42"));

    // the secrets are sealed at rest and open to the runtime
    let scope = app.store.tenant(app.tenant.id);
    let opened = scope.connector_secrets(ConnectorId(id)).await.unwrap();
    let secrets: Value = serde_json::from_slice(&opened.secrets).unwrap();
    assert_eq!(secrets["secret"], "app-secret-CLEAR-42");

    // a change keeps what it leaves out, the secret included
    let changed = app
        .patch(
            &format!("/api/v1/connectors/{id}"),
            token,
            json!({"name": "WeCom", "config": {"welcome": "欢迎光临"}}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(changed["name"], "WeCom");
    assert_eq!(changed["config"]["welcome"], "欢迎光临");
    // pointing it elsewhere takes the secrets again: the kept one is sent nowhere else
    let moved = app
        .patch(
            &format!("/api/v1/connectors/{id}"),
            token,
            json!({"config": {"api_base_url": "http://attacker.example"}}),
        )
        .await
        .expect(422);
    assert_eq!(
        moved.body["error"]["details"]["fields"][0]["field"],
        "config.secret"
    );
    let opened = scope.connector_secrets(ConnectorId(id)).await.unwrap();
    let secrets: Value = serde_json::from_slice(&opened.secrets).unwrap();
    assert_eq!(secrets["secret"], "app-secret-CLEAR-42");
    let rotated = app
        .patch(
            &format!("/api/v1/connectors/{id}"),
            token,
            json!({"config": {"secret": "rotated-secret"}}),
        )
        .await
        .expect(200);
    assert!(!rotated.body.to_string().contains("rotated-secret"));
    let opened = scope.connector_secrets(ConnectorId(id)).await.unwrap();
    let secrets: Value = serde_json::from_slice(&opened.secrets).unwrap();
    assert_eq!(secrets["secret"], "rotated-secret");

    let audit = app
        .get("/api/v1/audit-log?action=connector.updated", token)
        .await
        .expect(200)
        .body;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2);
    assert!(!audit.to_string().contains("rotated-secret"));

    app.delete(&format!("/api/v1/connectors/{id}"), token)
        .await
        .expect(204);
    app.get(&format!("/api/v1/connectors/{id}"), token)
        .await
        .expect(404);
}

#[tokio::test]
async fn bad_connectors_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    for (patch, field) in [
        (json!({"kind": "fax"}), "kind"),
        (json!({"name": " "}), "name"),
        (json!({"config": "x"}), "config"),
        (json!({"config": {"corp_id": "ww1"}}), "config.secret"),
    ] {
        let mut body = wecom("w");
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let refused = app
            .post("/api/v1/connectors", token, body)
            .await
            .expect(422);
        assert_eq!(
            refused.body["error"]["details"]["fields"][0]["field"], field,
            "{patch}"
        );
    }
    let mut short_key = wecom("w");
    short_key["config"]["encoding_aes_key"] = json!("tooshort");
    let refused = app
        .post("/api/v1/connectors", token, short_key)
        .await
        .expect(422);
    assert_eq!(
        refused.body["error"]["details"]["fields"][0]["field"],
        "config.encoding_aes_key"
    );
    app.post("/api/v1/connectors", token, wecom("w"))
        .await
        .expect(201);
    app.post("/api/v1/connectors", token, wecom("w"))
        .await
        .expect(409);
    let id = app.get("/api/v1/connectors", token).await.body[0]["id"]
        .as_i64()
        .unwrap();
    let refused = app
        .patch(
            &format!("/api/v1/connectors/{id}"),
            token,
            json!({"config": {"api_base_url": "javascript:alert(1)"}}),
        )
        .await
        .expect(422);
    assert_eq!(
        refused.body["error"]["details"]["fields"][0]["field"],
        "config.api_base_url"
    );
}

#[tokio::test]
async fn connectors_need_their_permissions_and_stay_in_their_tenant() {
    let app = TestApp::spawn().await;
    let id = app
        .post("/api/v1/connectors", &app.admin_token, wecom("w"))
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let operations = app.token_with_role("operations").await;
    app.get("/api/v1/connectors", &operations).await.expect(200);
    app.post("/api/v1/connectors", &operations, wecom("x"))
        .await
        .expect(403);
    app.patch(
        &format!("/api/v1/connectors/{id}"),
        &operations,
        json!({"name": "y"}),
    )
    .await
    .expect(403);
    app.delete(&format!("/api/v1/connectors/{id}"), &operations)
        .await
        .expect(403);
    let service = app.token_with_role("service").await;
    app.get("/api/v1/connectors", &service).await.expect(403);

    let (_, _, other_token) = create_tenant(&app.store, "other").await;
    let theirs = app
        .get("/api/v1/connectors", &other_token)
        .await
        .expect(200);
    assert_eq!(theirs.body, json!([]));
    app.get(&format!("/api/v1/connectors/{id}"), &other_token)
        .await
        .expect(404);
    app.delete(&format!("/api/v1/connectors/{id}"), &other_token)
        .await
        .expect(404);
}

/// A connector on the stand-in's generated corp.
async fn standin_connector(app: &TestApp, standin: &siyu_wecom_standin::Standin) -> i64 {
    app.post(
        "/api/v1/connectors",
        &app.admin_token,
        json!({
            "kind": "wecom",
            "name": "stand-in",
            "config": {
                "corp_id": siyu_wecom_standin::GENERATED_CORP_ID,
                "secret": siyu_wecom_standin::GENERATED_SECRET,
                "token": "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
                "encoding_aes_key": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
                "api_base_url": standin.base_url(),
            }
        }),
    )
    .await
    .expect(201)
    .body["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_is_asked_once_followed_and_brings_staff_customers_and_departments() {
    use siyu_wecom_standin::{Corp, GenerateSpec, Member, Standin};
    let standin = Standin::start(Corp::generate(&GenerateSpec {
        members: 3,
        contacts: 120,
        tag_groups: 2,
        tags_per_group: 3,
        tagged_share: 0.5,
        seed: 3,
    }))
    .unwrap();
    standin.set_latency(std::time::Duration::from_millis(30));
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let id = standin_connector(&app, &standin).await;

    let asked = app
        .post(&format!("/api/v1/connectors/{id}/sync"), token, json!({}))
        .await
        .expect(202)
        .body;
    assert_eq!(asked["created"], true);
    let again = app
        .post(
            &format!("/api/v1/connectors/{id}/sync"),
            token,
            json!({"scope": "customers"}),
        )
        .await
        .expect(202)
        .body;
    assert_eq!(again["created"], false, "one sync at a time: {again}");
    assert_eq!(again["job_id"], asked["job_id"]);
    let job = app.job_finished(&asked["job_id"]).await;
    assert_eq!(job["state"], "done", "{job}");

    let overview = app
        .get(&format!("/api/v1/connectors/{id}/sync"), token)
        .await
        .expect(200)
        .body;
    assert_eq!(overview["counts"]["members"], 3, "{overview}");
    assert_eq!(overview["counts"]["contacts"], 120);
    assert_eq!(overview["counts"]["mirrored_tags"], 6);
    assert_eq!(
        overview["counts"]["relations"].as_i64().unwrap() as usize,
        standin.with_corp(|c| c.relation_count())
    );
    assert!(overview["customers"]["finished_at"].is_string());
    assert_eq!(overview["job"]["state"], "done");
    assert_eq!(overview["paused"], json!([]));
    let staff = app
        .get("/api/v1/staff?limit=50", token)
        .await
        .expect(200)
        .body;
    let synced: Vec<&Value> = staff["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["email"].is_null())
        .collect();
    assert_eq!(synced.len(), 3, "{staff}");

    // a department mapped onto a unit: members synced after join it
    let departments = app
        .get(&format!("/api/v1/connectors/{id}/departments"), token)
        .await
        .expect(200)
        .body;
    assert!(departments.as_array().unwrap().len() >= 2, "{departments}");
    let root = app.get("/api/v1/units", token).await.expect(200).body["items"][0]["id"].clone();
    let unit = app
        .post(
            "/api/v1/units",
            token,
            json!({"name": "华东门店", "parent_id": root, "kind": "subsidiary"}),
        )
        .await
        .expect(201)
        .body["id"]
        .clone();
    let mapped = app
        .patch(
            &format!("/api/v1/connectors/{id}/departments/2"),
            token,
            json!({"unit_id": unit}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(mapped["unit_id"], unit);
    app.patch(
        &format!("/api/v1/connectors/{id}/departments/999"),
        token,
        json!({"unit_id": unit}),
    )
    .await
    .expect(404);
    app.patch(
        &format!("/api/v1/connectors/{id}/departments/2"),
        token,
        json!({"unit_id": 987654}),
    )
    .await
    .expect(404);
    standin.with_corp(|c| c.insert_member(Member::new("newbie", "新同事", 2)));
    let staff_sync = app
        .post(
            &format!("/api/v1/connectors/{id}/sync"),
            token,
            json!({"scope": "staff"}),
        )
        .await
        .expect(202)
        .body;
    assert_eq!(
        app.job_finished(&staff_sync["job_id"]).await["state"],
        "done"
    );
    let staff = app
        .get("/api/v1/staff?limit=50", token)
        .await
        .expect(200)
        .body;
    let newbie = staff["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "新同事")
        .unwrap_or_else(|| panic!("the new member is staff: {staff}"));
    assert_eq!(newbie["unit_id"], unit);
    assert_eq!(newbie["data_scope"], "own");
}

#[tokio::test]
async fn asking_a_sync_is_checked() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let id = app
        .post("/api/v1/connectors", token, wecom("企业微信"))
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    app.post(
        &format!("/api/v1/connectors/{id}/sync"),
        token,
        json!({"scope": "everything"}),
    )
    .await
    .expect(422);
    app.post("/api/v1/connectors/987654/sync", token, json!({}))
        .await
        .expect(404);
    let service = app.token_with_role("service").await;
    app.post(
        &format!("/api/v1/connectors/{id}/sync"),
        &service,
        json!({}),
    )
    .await
    .expect(403);
    app.get(&format!("/api/v1/connectors/{id}/sync"), &service)
        .await
        .expect(403);
    // nothing synced yet: counts of nothing
    let overview = app
        .get(&format!("/api/v1/connectors/{id}/sync"), token)
        .await
        .expect(200)
        .body;
    assert_eq!(overview["counts"]["contacts"], 0);
    assert!(overview["customers"].is_null());
}
