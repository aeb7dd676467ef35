//! Units, staff, roles and tokens through the API, and the audit trail they leave.

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp};

#[tokio::test]
async fn units_form_a_tree_through_the_api() {
    let app = TestApp::spawn().await;
    let t = &app.admin_token;
    let root = app.get("/api/v1/units", t).await.expect(200).body["items"][0].clone();
    assert_eq!(root["kind"], "group");
    assert!(root["parent_id"].is_null());
    let root_id = root["id"].as_i64().unwrap();

    let brand = app
        .post(
            "/api/v1/units",
            t,
            json!({"parent_id": root_id, "kind": "brand", "name": "露米茶饮"}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(brand["name"], "露米茶饮");
    assert!(brand["created_at"].as_str().unwrap().ends_with('Z'));
    let brand_id = brand["id"].as_i64().unwrap();
    let shop = app
        .post(
            "/api/v1/units",
            t,
            json!({"parent_id": brand_id, "kind": "store", "name": "静安店"}),
        )
        .await
        .expect(201)
        .body;
    let shop_id = shop["id"].as_i64().unwrap();

    let renamed = app
        .patch(
            &format!("/api/v1/units/{shop_id}"),
            t,
            json!({"name": "上海静安店"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(renamed["name"], "上海静安店");
    assert_eq!(renamed["parent_id"], brand_id);
    let cycle = app
        .patch(
            &format!("/api/v1/units/{brand_id}"),
            t,
            json!({"parent_id": shop_id}),
        )
        .await
        .expect(422);
    assert_eq!(
        cycle.body["error"]["details"]["fields"][0]["field"],
        "parent_id"
    );
    let busy = app
        .delete(&format!("/api/v1/units/{brand_id}"), t)
        .await
        .expect(409);
    assert_eq!(busy.code(), "conflict");
    app.delete(&format!("/api/v1/units/{root_id}"), t)
        .await
        .expect(409);
    app.delete(&format!("/api/v1/units/{shop_id}"), t)
        .await
        .expect(204);
    app.get(&format!("/api/v1/units/{shop_id}"), t)
        .await
        .expect(404);
    app.post(
        "/api/v1/units",
        t,
        json!({"parent_id": 999_999, "kind": "store", "name": "x"}),
    )
    .await
    .expect(404);

    let log = app
        .get("/api/v1/audit-log?target_kind=unit", t)
        .await
        .expect(200)
        .body;
    let actions: Vec<_> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "unit.deleted",
            "unit.updated",
            "unit.created",
            "unit.created"
        ]
    );
    assert_eq!(log["items"][0]["actor"]["kind"], "api_token");
}

#[tokio::test]
async fn staff_are_added_changed_and_removed() {
    let app = TestApp::spawn().await;
    let t = &app.admin_token;
    let root_id = app
        .store
        .tenant(app.tenant.id)
        .root_unit()
        .await
        .unwrap()
        .id
        .0;
    let created = app
        .post(
            "/api/v1/staff",
            t,
            json!({"unit_id": root_id, "role": "service", "email": " Li.Na@Acme.example.com ",
                                         "name": "李娜", "password": PASSWORD}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(created["email"], "li.na@acme.example.com");
    assert_eq!(created["role"], "service");
    assert_eq!(created["data_scope"], "unit_subtree");
    assert_eq!(created["status"], "active");
    assert!(created.get("password_hash").is_none());
    let id = created["id"].as_i64().unwrap();

    let dup = app.post("/api/v1/staff", t, json!({"unit_id": root_id, "role": "service", "email": "li.na@acme.example.com", "name": "x"})).await.expect(409);
    assert_eq!(dup.code(), "conflict");
    let bad_role = app.post("/api/v1/staff", t, json!({"unit_id": root_id, "role": "wizard", "email": "w@acme.example.com", "name": "w"})).await.expect(422);
    assert_eq!(
        bad_role.body["error"]["details"]["fields"][0]["field"],
        "role"
    );
    let bad_email = app
        .post(
            "/api/v1/staff",
            t,
            json!({"unit_id": root_id, "role": "service", "email": "not-an-email", "name": "w"}),
        )
        .await
        .expect(422);
    assert_eq!(
        bad_email.body["error"]["details"]["fields"][0]["field"],
        "email"
    );
    let short = app.post("/api/v1/staff", t, json!({"unit_id": root_id, "role": "service", "email": "s@acme.example.com", "name": "s", "password": "123"})).await.expect(422);
    assert_eq!(
        short.body["error"]["details"]["fields"][0]["field"],
        "password"
    );

    let changed = app
        .patch(
            &format!("/api/v1/staff/{id}"),
            t,
            json!({"role": "operations", "data_scope": "own"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(changed["role"], "operations");
    assert_eq!(changed["data_scope"], "own");
    let listed = app.get("/api/v1/staff?limit=1", t).await.expect(200).body;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let next = listed["next_cursor"].as_str().unwrap();
    let second = app
        .get(&format!("/api/v1/staff?limit=1&cursor={next}"), t)
        .await
        .expect(200)
        .body;
    assert_eq!(second["items"][0]["id"], id);
    assert!(second["next_cursor"].is_null());

    app.delete(&format!("/api/v1/staff/{id}"), t)
        .await
        .expect(204);
    app.get(&format!("/api/v1/staff/{id}"), t).await.expect(404);
    let log = app
        .get("/api/v1/audit-log?target_kind=staff", t)
        .await
        .expect(200)
        .body;
    let actions: Vec<_> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "staff.deleted",
            "staff.role_changed",
            "staff.updated",
            "staff.created"
        ]
    );
    assert_eq!(
        log["items"][1]["details"],
        json!({"from": "service", "to": "operations"})
    );
}

#[tokio::test]
async fn roles_and_permissions_round_trip() {
    let app = TestApp::spawn().await;
    let t = &app.admin_token;
    let perms = app.get("/api/v1/permissions", t).await.expect(200).body;
    assert!(
        perms
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "customers.reveal")
    );
    let roles = app.get("/api/v1/roles", t).await.expect(200).body;
    assert_eq!(roles["items"].as_array().unwrap().len(), 6);
    let admin_role = roles["items"][0]["id"].as_i64().unwrap();
    app.patch(
        &format!("/api/v1/roles/{admin_role}"),
        t,
        json!({"description": "x"}),
    )
    .await
    .expect(409);
    app.delete(&format!("/api/v1/roles/{admin_role}"), t)
        .await
        .expect(409);

    let role = app
        .post("/api/v1/roles", t, json!({"name": "store-manager", "description": "runs a store",
                                          "permissions": ["units.read", "staff.read", "units.read"]}))
        .await
        .expect(201)
        .body;
    assert_eq!(role["permissions"], json!(["units.read", "staff.read"]));
    assert_eq!(role["builtin"], false);
    app.post(
        "/api/v1/roles",
        t,
        json!({"name": "store-manager", "permissions": []}),
    )
    .await
    .expect(409);
    app.post(
        "/api/v1/roles",
        t,
        json!({"name": "admin", "permissions": []}),
    )
    .await
    .expect(422);
    app.post(
        "/api/v1/roles",
        t,
        json!({"name": "Bad Name", "permissions": []}),
    )
    .await
    .expect(422);
    let id = role["id"].as_i64().unwrap();
    let updated = app
        .patch(
            &format!("/api/v1/roles/{id}"),
            t,
            json!({"permissions": ["audit.read"]}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(updated["permissions"], json!(["audit.read"]));
    assert_eq!(updated["description"], "runs a store");
    app.delete(&format!("/api/v1/roles/{id}"), t)
        .await
        .expect(204);
}

#[tokio::test]
async fn tokens_show_their_secret_once() {
    let app = TestApp::spawn().await;
    let t = &app.admin_token;
    let created = app
        .post(
            "/api/v1/api-tokens",
            t,
            json!({"name": "mini-program", "role": "growth", "expires_in_days": 30}),
        )
        .await
        .expect(201)
        .body;
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with(created["token"]["display_prefix"].as_str().unwrap()));
    assert!(created["token"]["expires_at"].is_string());
    let id = created["token"]["id"].as_i64().unwrap();
    let listed = app.get("/api/v1/api-tokens", t).await.expect(200).body;
    assert!(!listed.to_string().contains(secret));
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == id)
    );
    app.post(
        "/api/v1/api-tokens",
        t,
        json!({"name": "x", "role": "growth", "expires_in_days": 0}),
    )
    .await
    .expect(422);
    app.post(
        "/api/v1/api-tokens",
        t,
        json!({"name": "", "role": "growth"}),
    )
    .await
    .expect(422);
    app.post(
        "/api/v1/api-tokens",
        t,
        json!({"name": "x", "role": "nope"}),
    )
    .await
    .expect(422);
}
