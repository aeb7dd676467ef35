//! Signing in, sessions, tokens and throttling.

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, answer};

#[tokio::test]
async fn login_sets_a_safe_session_cookie_that_signs_requests_in() {
    let app = TestApp::spawn().await;
    let (client, a) = app.login(&app.admin_email.to_uppercase(), PASSWORD).await;
    let a = a.expect(200);
    assert_eq!(a.body["staff"]["email"], app.admin_email);
    assert_eq!(a.body["tenant"]["name"], "acme");
    let cookie = a.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("siyu_session="));
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain http without a trusted proxy: {cookie}"
    );

    let me = answer(client.get(app.url("/api/v1/me")).send().await.unwrap())
        .await
        .expect(200);
    assert_eq!(me.body["kind"], "staff");
    assert_eq!(me.body["role"], "admin");
    assert_eq!(me.body["data_scope"], "tenant");

    answer(
        client
            .post(app.url("/api/v1/auth/logout"))
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(204);
    let after = answer(client.get(app.url("/api/v1/me")).send().await.unwrap())
        .await
        .expect(401);
    assert_eq!(after.code(), "unauthenticated");

    let log = app
        .get("/api/v1/audit-log?action=auth.", &app.admin_token)
        .await
        .expect(200);
    let actions: Vec<_> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["auth.logout", "auth.login_succeeded"]);
    assert_eq!(log.body["items"][1]["actor"]["ip"], "127.0.0.1");
}

#[tokio::test]
async fn cookie_is_secure_behind_a_tls_proxy() {
    let app = TestApp::spawn_with(|c| c.trust_proxy_headers = true).await;
    let response = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
        .json(&json!({"email": app.admin_email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let a = answer(response).await.expect(200);
    assert!(
        a.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );
    let log = app
        .get(
            "/api/v1/audit-log?action=auth.login_succeeded",
            &app.admin_token,
        )
        .await
        .expect(200);
    // the hop our proxy added, not what the client claimed before it
    assert_eq!(log.body["items"][0]["actor"]["ip"], "203.0.113.7");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_401() {
    let app = TestApp::spawn().await;
    let (_, wrong) = app.login(&app.admin_email, "not-the-password").await;
    let (_, unknown) = app
        .login("nobody@acme.example.com", "not-the-password")
        .await;
    let wrong = wrong.expect(401);
    let unknown = unknown.expect(401);
    assert_eq!(wrong.code(), "invalid_credentials");
    assert_eq!(wrong.body, unknown.body);
    assert!(wrong.headers.get("set-cookie").is_none());
    let log = app
        .get(
            "/api/v1/audit-log?action=auth.login_failed",
            &app.admin_token,
        )
        .await
        .expect(200);
    assert_eq!(log.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn repeated_failures_throttle_even_the_right_password() {
    let app = TestApp::spawn_with(|c| c.login_throttle.max_failures_per_email = 3).await;
    for _ in 0..3 {
        app.login(&app.admin_email, "wrong-password")
            .await
            .1
            .expect(401);
    }
    let (_, a) = app.login(&app.admin_email, PASSWORD).await;
    let a = a.expect(429);
    assert_eq!(a.code(), "too_many_attempts");
    assert_eq!(a.headers["retry-after"], "900");
    // other accounts are not locked by one account's failures
    app.staff_with_role("ops@acme.example.com", "operations")
        .await;
    app.login("ops@acme.example.com", PASSWORD)
        .await
        .1
        .expect(200);
    let log = app
        .get(
            "/api/v1/audit-log?action=auth.login_throttled",
            &app.admin_token,
        )
        .await
        .expect(200);
    assert_eq!(log.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn disabled_staff_cannot_sign_in_and_lose_their_sessions() {
    let app = TestApp::spawn().await;
    let id = app.staff_with_role("svc@acme.example.com", "service").await;
    let (client, a) = app.login("svc@acme.example.com", PASSWORD).await;
    a.expect(200);
    app.patch(
        &format!("/api/v1/staff/{id}"),
        &app.admin_token,
        json!({"status": "disabled"}),
    )
    .await
    .expect(200);
    answer(client.get(app.url("/api/v1/me")).send().await.unwrap())
        .await
        .expect(401);
    app.login("svc@acme.example.com", PASSWORD)
        .await
        .1
        .expect(401);
}

#[tokio::test]
async fn revoked_expired_and_garbage_tokens_are_401() {
    let app = TestApp::spawn().await;
    app.get("/api/v1/me", "siyu_pat_made-up").await.expect(401);
    let a = app.get("/api/v1/me", "").await.expect(401);
    assert_eq!(a.code(), "unauthenticated");
    let no_auth = answer(app.http.get(app.url("/api/v1/units")).send().await.unwrap())
        .await
        .expect(401);
    assert_eq!(no_auth.code(), "unauthenticated");

    let created = app
        .post(
            "/api/v1/api-tokens",
            &app.admin_token,
            json!({"name": "etl", "role": "analyst"}),
        )
        .await
        .expect(201);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    let id = created.body["token"]["id"].as_i64().unwrap();
    let me = app.get("/api/v1/me", &secret).await.expect(200);
    assert_eq!(me.body["kind"], "api_token");
    assert_eq!(me.body["role"], "analyst");
    app.delete(&format!("/api/v1/api-tokens/{id}"), &app.admin_token)
        .await
        .expect(204);
    app.get("/api/v1/me", &secret).await.expect(401);
    let token = app
        .get(&format!("/api/v1/api-tokens/{id}"), &app.admin_token)
        .await
        .expect(200);
    assert!(token.body["revoked_at"].is_string());
    assert!(token.body["last_used_at"].is_string());
    assert!(token.body.get("secret").is_none());

    let scope = app.store.tenant(app.tenant.id);
    let role = scope.role_by_name("analyst").await.unwrap();
    let (_, expired) = scope
        .create_api_token(
            "old",
            &role,
            Some(siyu_store::now_ms() - 1000),
            None,
            &siyu_domain::audit::Actor::cli(),
        )
        .await
        .unwrap();
    app.get("/api/v1/me", &expired).await.expect(401);
}

#[tokio::test]
async fn staff_change_their_own_password() {
    let app = TestApp::spawn().await;
    app.staff_with_role("me@acme.example.com", "content").await;
    let (client, a) = app.login("me@acme.example.com", PASSWORD).await;
    a.expect(200);
    let wrong = client
        .put(app.url("/api/v1/me/password"))
        .json(&json!({"current_password": "nope-nope", "new_password": "brand-new-pass"}))
        .send()
        .await
        .unwrap();
    answer(wrong).await.expect(403);
    let short = client
        .put(app.url("/api/v1/me/password"))
        .json(&json!({"current_password": PASSWORD, "new_password": "short"}))
        .send()
        .await
        .unwrap();
    let short = answer(short).await.expect(422);
    assert_eq!(
        short.body["error"]["details"]["fields"][0]["field"],
        "password"
    );
    let ok = client
        .put(app.url("/api/v1/me/password"))
        .json(&json!({"current_password": PASSWORD, "new_password": "brand-new-pass"}))
        .send()
        .await
        .unwrap();
    answer(ok).await.expect(204);
    answer(client.get(app.url("/api/v1/me")).send().await.unwrap())
        .await
        .expect(401);
    app.login("me@acme.example.com", PASSWORD)
        .await
        .1
        .expect(401);
    app.login("me@acme.example.com", "brand-new-pass")
        .await
        .1
        .expect(200);
}

/// Wrong current passwords count as failed sign-ins of that email: an open session
/// cannot guess the password faster than the sign-in page allows.
#[tokio::test]
async fn password_changes_are_throttled_like_sign_ins() {
    let app = TestApp::spawn_with(|c| c.login_throttle.max_failures_per_email = 3).await;
    app.staff_with_role("me@acme.example.com", "content").await;
    let (client, a) = app.login("me@acme.example.com", PASSWORD).await;
    a.expect(200);
    let change = |current: &str| {
        let request = client
            .put(app.url("/api/v1/me/password"))
            .json(&json!({"current_password": current, "new_password": "brand-new-pass"}));
        async move { answer(request.send().await.unwrap()).await }
    };
    for _ in 0..3 {
        change("guess-guess").await.expect(403);
    }
    let throttled = change("guess-guess").await.expect(429);
    assert_eq!(throttled.code(), "too_many_attempts");
    // even the right password waits now, and so does signing in
    change(PASSWORD).await.expect(429);
    app.login("me@acme.example.com", PASSWORD)
        .await
        .1
        .expect(429);
}

#[tokio::test]
async fn one_email_may_be_staff_of_several_tenants_and_names_one_to_sign_in() {
    let app = TestApp::spawn().await;
    let (other, _, other_token) = crate::helpers::create_tenant(&app.store, "globex").await;
    let root = |token: String| {
        let app = &app;
        async move { app.get("/api/v1/units", &token).await.expect(200).body["items"][0]["id"].clone() }
    };
    let staff =
        |token: String, unit: serde_json::Value, email: &'static str, password: &'static str| {
            let app = &app;
            async move {
                app.post(
                    "/api/v1/staff",
                    &token,
                    json!({"unit_id": unit, "role": "analyst", "email": email, "name": "顾问",
                       "password": password, "data_scope": "tenant"}),
                )
                .await
            }
        };
    let acme_root = root(app.admin_token.clone()).await;
    let globex_root = root(other_token.clone()).await;
    // the same address in two tenants is no conflict; twice in one tenant it is
    staff(
        app.admin_token.clone(),
        acme_root.clone(),
        "pat@agency.example.com",
        "acme-password-1",
    )
    .await
    .expect(201);
    staff(
        other_token.clone(),
        globex_root.clone(),
        "Pat@Agency.example.com",
        "globex-password-1",
    )
    .await
    .expect(201);
    let twice = staff(
        other_token.clone(),
        globex_root,
        "pat@agency.example.com",
        "x-password-12",
    )
    .await
    .expect(409);
    assert!(
        twice.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("email")
    );

    // each password signs in to its own tenant
    for (password, tenant) in [("acme-password-1", "acme"), ("globex-password-1", "globex")] {
        let (_, answer) = app.login("pat@agency.example.com", password).await;
        let answer = answer.expect(200);
        assert_eq!(answer.body["tenant"]["name"], tenant);
    }
    let (_, wrong) = app
        .login("pat@agency.example.com", "neither-password")
        .await;
    wrong.expect(401);

    // one password for both: the sign-in names the tenants and waits for a choice
    let acme_pat = app
        .get("/api/v1/staff?limit=100", &app.admin_token)
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["email"] == "pat@agency.example.com")
        .unwrap()["id"]
        .clone();
    app.patch(
        &format!("/api/v1/staff/{acme_pat}"),
        &app.admin_token,
        json!({"password": "globex-password-1"}),
    )
    .await
    .expect(200);
    let (_, choose) = app
        .login("pat@agency.example.com", "globex-password-1")
        .await;
    let choose = choose.expect(409);
    assert_eq!(choose.body["error"]["code"], "tenant_required");
    assert_eq!(
        choose.body["error"]["details"]["tenants"],
        json!(["acme", "globex"])
    );
    let named = |tenant: &'static str| {
        let app = &app;
        async move {
            let response = app
                .http
                .post(app.url("/api/v1/auth/login"))
                .json(
                    &json!({"email": "pat@agency.example.com", "password": "globex-password-1",
                               "tenant": tenant}),
                )
                .send()
                .await
                .unwrap();
            crate::helpers::answer(response).await
        }
    };
    let globex = named("globex").await.expect(200);
    assert_eq!(globex.body["tenant"]["id"], other.id.0);
    assert_eq!(
        named("acme").await.expect(200).body["tenant"]["name"],
        "acme"
    );
    named("initech").await.expect(401);

    // a failed sign-in to an email of several tenants is written to neither tenant's
    // audit log (either account may be someone else's with this address)
    let failures = |token: String| {
        let app = &app;
        async move {
            app.get("/api/v1/audit-log?action=auth.login_failed", &token)
                .await
                .expect(200)
                .body["items"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    let before = (
        failures(app.admin_token.clone()).await,
        failures(other_token.clone()).await,
    );
    let (_, wrong) = app
        .login("pat@agency.example.com", "no-such-password")
        .await;
    wrong.expect(401);
    assert_eq!(
        (
            failures(app.admin_token.clone()).await,
            failures(other_token.clone()).await
        ),
        before
    );

    // globex's admin cannot use their own account with the address to test passwords of
    // acme's without limit: each guess that opens globex's account and not acme's counts
    // against acme's, and past the limit acme's account is no longer tried
    let globex_pat = app
        .get("/api/v1/staff?limit=100", &other_token)
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["email"] == "pat@agency.example.com")
        .unwrap()["id"]
        .clone();
    let set_globex_password = |password: String| {
        let app = &app;
        let (token, id) = (other_token.clone(), globex_pat.clone());
        async move {
            app.patch(
                &format!("/api/v1/staff/{id}"),
                &token,
                json!({"password": password}),
            )
            .await
            .expect(200);
        }
    };
    for guess in 0..5 {
        let password = format!("guess-number-{guess}");
        set_globex_password(password.clone()).await;
        let (_, answer) = app.login("pat@agency.example.com", &password).await;
        assert_eq!(answer.expect(200).body["tenant"]["name"], "globex");
    }
    // the right guess no longer shows: acme's account is not tried
    set_globex_password("globex-password-1".into()).await;
    let (_, answer) = app
        .login("pat@agency.example.com", "globex-password-1")
        .await;
    assert_eq!(answer.expect(200).body["tenant"]["name"], "globex");
    // and acme's account, named, waits out the window
    named("acme").await.expect(429);
}
