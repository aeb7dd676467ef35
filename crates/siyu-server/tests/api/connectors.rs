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
