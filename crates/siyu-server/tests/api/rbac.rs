//! Each role is refused what it may not do, and nobody can grant more than they hold.

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, answer};

/// A method, a path and an optional body.
type Call<'a> = (&'a str, &'a str, Option<serde_json::Value>);

#[tokio::test]
async fn each_builtin_role_is_forbidden_what_it_lacks() {
    let app = TestApp::spawn().await;
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    let new_unit = json!({"parent_id": root.id, "kind": "brand", "name": "x"});
    let new_staff =
        json!({"unit_id": root.id, "role": "service", "email": "n@acme.example.com", "name": "n"});
    let new_role = json!({"name": "r", "permissions": ["units.read"]});
    let new_token = json!({"name": "t", "role": "analyst"});

    // (role, a thing it may do, a thing it may not)
    let cases: [(&str, Call, Call); 5] = [
        (
            "operations",
            ("GET", "/api/v1/units", None),
            ("POST", "/api/v1/api-tokens", Some(new_token.clone())),
        ),
        (
            "service",
            ("GET", "/api/v1/me", None),
            ("GET", "/api/v1/audit-log", None),
        ),
        (
            "content",
            ("GET", "/api/v1/me", None),
            ("POST", "/api/v1/units", Some(new_unit.clone())),
        ),
        (
            "growth",
            ("GET", "/api/v1/me", None),
            ("POST", "/api/v1/roles", Some(new_role.clone())),
        ),
        (
            "analyst",
            ("GET", "/api/v1/units", None),
            ("POST", "/api/v1/staff", Some(new_staff.clone())),
        ),
    ];
    for (role, (ok_method, ok_path, ok_body), (no_method, no_path, no_body)) in cases {
        let token = app.token_with_role(role).await;
        let allowed = app
            .call(ok_method.parse().unwrap(), ok_path, &token, ok_body)
            .await;
        assert_eq!(
            allowed.status, 200,
            "{role} {ok_method} {ok_path}: {}",
            allowed.body
        );
        let refused = app
            .call(no_method.parse().unwrap(), no_path, &token, no_body)
            .await;
        assert_eq!(
            refused.status, 403,
            "{role} {no_method} {no_path}: {}",
            refused.body
        );
        assert_eq!(refused.code(), "forbidden");
        assert!(
            refused.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(role)
        );
    }
    // nothing the refused calls asked for exists
    let units = app.get("/api/v1/units", &app.admin_token).await.expect(200);
    assert_eq!(units.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn admin_cannot_delete_or_disable_themselves() {
    let app = TestApp::spawn().await;
    let (client, login) = app.login(&app.admin_email, PASSWORD).await;
    let me = login.expect(200).body["staff"]["id"].as_i64().unwrap();
    let delete = client
        .delete(app.url(&format!("/api/v1/staff/{me}")))
        .send()
        .await
        .unwrap();
    assert_eq!(answer(delete).await.expect(403).code(), "forbidden");
    let disable = client
        .patch(app.url(&format!("/api/v1/staff/{me}")))
        .json(&json!({"status": "disabled"}))
        .send()
        .await
        .unwrap();
    answer(disable).await.expect(403);
}

#[tokio::test]
async fn nobody_grants_more_than_they_hold() {
    let app = TestApp::spawn().await;
    // a custom role that may manage staff and tokens but holds little else
    app.post(
        "/api/v1/roles",
        &app.admin_token,
        json!({"name": "hr", "description": "people team",
               "permissions": ["staff.read", "staff.write", "roles.read", "roles.write", "tokens.write", "units.read"]}),
    )
    .await
    .expect(201);
    let hr = app.token_with_role("hr").await;
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();

    let as_admin =
        json!({"unit_id": root.id, "role": "admin", "email": "x@acme.example.com", "name": "x"});
    let a = app.post("/api/v1/staff", &hr, as_admin).await.expect(403);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("admin")
    );
    app.post(
        "/api/v1/api-tokens",
        &hr,
        json!({"name": "t", "role": "admin"}),
    )
    .await
    .expect(403);
    app.post(
        "/api/v1/roles",
        &hr,
        json!({"name": "super", "permissions": ["audit.read"]}),
    )
    .await
    .expect(403);

    // nor act on someone who holds more: resetting the admin's password would make hr admin
    let admin = app
        .store
        .tenant(app.tenant.id)
        .find_staff_by_email(&app.admin_email)
        .await
        .unwrap()
        .unwrap();
    let reset = app
        .patch(
            &format!("/api/v1/staff/{}", admin.id),
            &hr,
            json!({"password": "taken-over-1"}),
        )
        .await
        .expect(403);
    assert_eq!(reset.code(), "forbidden");
    app.delete(&format!("/api/v1/staff/{}", admin.id), &hr)
        .await
        .expect(403);
    app.login(&app.admin_email, PASSWORD).await.1.expect(200);

    // within its own permissions it works
    let peer =
        json!({"unit_id": root.id, "role": "hr", "email": "y@acme.example.com", "name": "y"});
    app.post("/api/v1/staff", &hr, peer).await.expect(201);
    app.post(
        "/api/v1/roles",
        &hr,
        json!({"name": "viewer", "permissions": ["units.read"]}),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn a_custom_roles_permissions_apply_at_once() {
    let app = TestApp::spawn().await;
    let role = app
        .post(
            "/api/v1/roles",
            &app.admin_token,
            json!({"name": "auditor", "permissions": ["units.read"]}),
        )
        .await
        .expect(201);
    let id = role.body["id"].as_i64().unwrap();
    let token = app.token_with_role("auditor").await;
    app.get("/api/v1/units", &token).await.expect(200);
    app.get("/api/v1/audit-log", &token).await.expect(403);
    app.patch(
        &format!("/api/v1/roles/{id}"),
        &app.admin_token,
        json!({"permissions": ["audit.read"]}),
    )
    .await
    .expect(200);
    app.get("/api/v1/audit-log", &token).await.expect(200);
    app.get("/api/v1/units", &token).await.expect(403);
}

#[tokio::test]
async fn data_scope_limits_which_staff_one_sees() {
    let app = TestApp::spawn().await;
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    let brand = app
        .post(
            "/api/v1/units",
            &app.admin_token,
            json!({"parent_id": root.id, "kind": "brand", "name": "tea"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let shop = app
        .post(
            "/api/v1/units",
            &app.admin_token,
            json!({"parent_id": brand, "kind": "store", "name": "shop"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    app.post(
        "/api/v1/roles",
        &app.admin_token,
        json!({"name": "lead", "permissions": ["staff.read"]}),
    )
    .await
    .expect(201);
    let mk = |email: &str, unit: i64, scope: &str| json!({"unit_id": unit, "role": "lead", "email": email, "name": email, "password": PASSWORD, "data_scope": scope});
    app.post(
        "/api/v1/staff",
        &app.admin_token,
        mk("brandlead@acme.example.com", brand, "unit_subtree"),
    )
    .await
    .expect(201);
    let shop_staff = app
        .post(
            "/api/v1/staff",
            &app.admin_token,
            mk("shop@acme.example.com", shop, "own"),
        )
        .await
        .expect(201);
    let shop_id = shop_staff.body["id"].as_i64().unwrap();

    let (lead, a) = app.login("brandlead@acme.example.com", PASSWORD).await;
    a.expect(200);
    let seen = answer(lead.get(app.url("/api/v1/staff")).send().await.unwrap())
        .await
        .expect(200);
    let mut emails: Vec<_> = seen.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["email"].as_str().unwrap().to_owned())
        .collect();
    emails.sort();
    assert_eq!(
        emails,
        ["brandlead@acme.example.com", "shop@acme.example.com"]
    );

    let (own, a) = app.login("shop@acme.example.com", PASSWORD).await;
    a.expect(200);
    let seen = answer(own.get(app.url("/api/v1/staff")).send().await.unwrap())
        .await
        .expect(200);
    let items = seen.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], shop_id);
    let admin_id = app
        .store
        .tenant(app.tenant.id)
        .find_staff_by_email(&app.admin_email)
        .await
        .unwrap()
        .unwrap()
        .id;
    answer(
        own.get(app.url(&format!("/api/v1/staff/{admin_id}")))
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(404);
}

#[tokio::test]
async fn nobody_widens_a_data_scope_beyond_their_own() {
    let app = TestApp::spawn().await;
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    let brand = app
        .post(
            "/api/v1/units",
            &app.admin_token,
            json!({"parent_id": root.id, "kind": "brand", "name": "tea"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    app.post(
        "/api/v1/roles",
        &app.admin_token,
        json!({"name": "brand-admin", "permissions": ["staff.read", "staff.write", "units.read", "tokens.read", "tokens.write"]}),
    )
    .await
    .expect(201);
    let lead = json!({"unit_id": brand, "role": "brand-admin", "email": "lead@acme.example.com", "name": "lead",
                      "password": PASSWORD, "data_scope": "unit_subtree"});
    let lead_id = app
        .post("/api/v1/staff", &app.admin_token, lead)
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let (client, a) = app.login("lead@acme.example.com", PASSWORD).await;
    a.expect(200);
    let post = |body: serde_json::Value| {
        let client = client.clone();
        let url = app.url("/api/v1/staff");
        async move { answer(client.post(url).json(&body).send().await.unwrap()).await }
    };
    // a wider scope, or a unit outside their subtree: refused
    let wide = json!({"unit_id": brand, "role": "brand-admin", "email": "w@acme.example.com", "name": "w", "data_scope": "tenant"});
    post(wide).await.expect(403);
    let outside = json!({"unit_id": root.id, "role": "brand-admin", "email": "o@acme.example.com", "name": "o", "data_scope": "own"});
    post(outside).await.expect(403);
    let fine = json!({"unit_id": brand, "role": "brand-admin", "email": "f@acme.example.com", "name": "f", "data_scope": "unit_subtree"});
    post(fine).await.expect(201);
    // nor can they widen their own
    let own = client
        .patch(app.url(&format!("/api/v1/staff/{lead_id}")))
        .json(&json!({"data_scope": "tenant"}))
        .send()
        .await
        .unwrap();
    answer(own).await.expect(403);
    // tokens see the whole tenant, so a unit-scoped lead cannot make one
    let token = client
        .post(app.url("/api/v1/api-tokens"))
        .json(&json!({"name": "t", "role": "brand-admin"}))
        .send()
        .await
        .unwrap();
    answer(token).await.expect(403);
    // and their own password changes only through /me/password
    let pw = client
        .patch(app.url(&format!("/api/v1/staff/{lead_id}")))
        .json(&json!({"password": "another-pass-1"}))
        .send()
        .await
        .unwrap();
    answer(pw).await.expect(403);
}

#[tokio::test]
async fn tokens_end_with_their_creators_access_and_only_peers_revoke_them() {
    let app = TestApp::spawn().await;
    app.post(
        "/api/v1/roles",
        &app.admin_token,
        json!({"name": "integrator", "permissions": ["tokens.read", "tokens.write", "units.read"]}),
    )
    .await
    .expect(201);
    let id = app
        .staff_with_role("dev@acme.example.com", "integrator")
        .await;
    let (client, a) = app.login("dev@acme.example.com", PASSWORD).await;
    a.expect(200);
    let made = client
        .post(app.url("/api/v1/api-tokens"))
        .json(&json!({"name": "ci", "role": "integrator"}))
        .send()
        .await
        .unwrap();
    let secret = answer(made).await.expect(201).body["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get("/api/v1/units", &secret).await.expect(200);

    // the integrator cannot revoke the admin's token
    let admin_token_id = app
        .get("/api/v1/me", &app.admin_token)
        .await
        .expect(200)
        .body["token"]["id"]
        .as_i64()
        .unwrap();
    let revoke = client
        .delete(app.url(&format!("/api/v1/api-tokens/{admin_token_id}")))
        .send()
        .await
        .unwrap();
    answer(revoke).await.expect(403);

    // disabling the creator revokes the token they made
    app.patch(
        &format!("/api/v1/staff/{id}"),
        &app.admin_token,
        json!({"status": "disabled"}),
    )
    .await
    .expect(200);
    app.get("/api/v1/units", &secret).await.expect(401);
    app.get("/api/v1/me", &app.admin_token).await.expect(200);
}

/// Hardening: a member scoped to one brand's subtree acts on no unit outside it (no
/// moving another brand under theirs to see its customers), and on no staff member who
/// reaches wider than they do (no resetting a tenant-wide member's password to sign in
/// as them).
#[tokio::test]
async fn a_unit_scoped_member_acts_only_inside_their_reach() {
    let app = TestApp::spawn().await;
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    let unit = |parent: i64, kind: &str, name: &str| {
        let body = json!({"parent_id": parent, "kind": kind, "name": name});
        let app = &app;
        async move {
            app.post("/api/v1/units", &app.admin_token, body)
                .await
                .expect(201)
                .body["id"]
                .as_i64()
                .unwrap()
        }
    };
    let brand_a = unit(root.id.0, "brand", "tea").await;
    let brand_b = unit(root.id.0, "brand", "skin").await;
    let store_a = unit(brand_a, "store", "tea-1").await;
    app.post(
        "/api/v1/roles",
        &app.admin_token,
        json!({"name": "brand-admin", "permissions": ["staff.read", "staff.write", "units.read", "units.write"]}),
    )
    .await
    .expect(201);
    let mk = |email: &str, unit: i64, scope: &str| {
        json!({"unit_id": unit, "role": "brand-admin", "email": email, "name": email,
               "password": PASSWORD, "data_scope": scope})
    };
    app.post(
        "/api/v1/staff",
        &app.admin_token,
        mk("lead@acme.example.com", brand_a, "unit_subtree"),
    )
    .await
    .expect(201);
    // a tenant-wide member who works in the lead's store, and a peer in the same store
    let wide = app
        .post(
            "/api/v1/staff",
            &app.admin_token,
            mk("wide@acme.example.com", store_a, "tenant"),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let peer = app
        .post(
            "/api/v1/staff",
            &app.admin_token,
            mk("peer@acme.example.com", store_a, "unit_subtree"),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let (client, a) = app.login("lead@acme.example.com", PASSWORD).await;
    a.expect(200);
    let send = |method: reqwest::Method, path: String, body: Option<serde_json::Value>| {
        let mut request = client.request(method, app.url(&path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move { answer(request.send().await.unwrap()).await }
    };
    use reqwest::Method;

    // units outside the subtree: no moving, renaming, creating under or deleting
    let moved = send(
        Method::PATCH,
        format!("/api/v1/units/{brand_b}"),
        Some(json!({"parent_id": brand_a})),
    )
    .await
    .expect(403);
    assert_eq!(moved.code(), "forbidden");
    send(
        Method::PATCH,
        format!("/api/v1/units/{brand_b}"),
        Some(json!({"name": "mine now"})),
    )
    .await
    .expect(403);
    send(
        Method::POST,
        "/api/v1/units".into(),
        Some(json!({"parent_id": brand_b, "kind": "store", "name": "x"})),
    )
    .await
    .expect(403);
    send(
        Method::POST,
        "/api/v1/units".into(),
        Some(json!({"parent_id": root.id, "kind": "brand", "name": "x"})),
    )
    .await
    .expect(403);
    send(Method::DELETE, format!("/api/v1/units/{brand_b}"), None)
        .await
        .expect(403);
    // nor moving a unit of theirs out of their subtree
    send(
        Method::PATCH,
        format!("/api/v1/units/{store_a}"),
        Some(json!({"parent_id": brand_b})),
    )
    .await
    .expect(403);
    let b = app
        .get(&format!("/api/v1/units/{brand_b}"), &app.admin_token)
        .await
        .expect(200);
    assert_eq!(b.body["parent_id"], json!(root.id), "{}", b.body);
    assert_eq!(b.body["name"], "skin");
    // inside it they still work
    let new_store = send(
        Method::POST,
        "/api/v1/units".into(),
        Some(json!({"parent_id": brand_a, "kind": "store", "name": "tea-2"})),
    )
    .await
    .expect(201)
    .body["id"]
        .as_i64()
        .unwrap();
    send(
        Method::PATCH,
        format!("/api/v1/units/{new_store}"),
        Some(json!({"name": "tea-two"})),
    )
    .await
    .expect(200);
    send(Method::DELETE, format!("/api/v1/units/{new_store}"), None)
        .await
        .expect(204);

    // the tenant-wide member: visible, but not theirs to change, reset or delete
    send(Method::GET, format!("/api/v1/staff/{wide}"), None)
        .await
        .expect(200);
    for body in [
        json!({"password": "a-new-secret-phrase-9"}),
        json!({"name": "renamed"}),
        json!({"status": "disabled"}),
    ] {
        send(
            Method::PATCH,
            format!("/api/v1/staff/{wide}"),
            Some(body.clone()),
        )
        .await
        .expect(403);
    }
    send(Method::DELETE, format!("/api/v1/staff/{wide}"), None)
        .await
        .expect(403);
    let (_, still) = app.login("wide@acme.example.com", PASSWORD).await;
    still.expect(200);
    // a peer within their reach they may manage
    send(
        Method::PATCH,
        format!("/api/v1/staff/{peer}"),
        Some(json!({"name": "peer renamed"})),
    )
    .await
    .expect(200);
    send(Method::DELETE, format!("/api/v1/staff/{peer}"), None)
        .await
        .expect(204);
}
