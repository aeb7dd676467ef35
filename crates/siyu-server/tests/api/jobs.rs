//! Background jobs through the API: listed and filtered within the tenant and the
//! caller's data scope, cancelled and retried by state (audited), refused without the
//! permissions; and the queue and the runner's figures in `/metrics`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use siyu_domain::ids::{JobId, StaffId};
use siyu_runtime::{JobError, Runner, handler_fn};
use siyu_store::NewJob;

use crate::helpers::{PASSWORD, TestApp, answer, create_tenant};

/// Enqueues one job of acme; answers its id.
async fn job(app: &TestApp, job: NewJob) -> i64 {
    app.store
        .tenant(app.tenant.id)
        .enqueue(&[job])
        .await
        .unwrap()[0]
        .unwrap()
        .0
}

/// A waiting, a running and a dead job of acme (enqueued in that order).
async fn three_jobs(app: &TestApp) -> (i64, i64, i64) {
    let waiting = job(app, NewJob::new("export", json!({"n": 1}))).await;
    let running = job(app, NewJob::new("sync", json!({}))).await;
    let claimed = app
        .store
        .claim_jobs("w", &["sync"], 5, 60_000)
        .await
        .unwrap();
    assert_eq!(claimed[0].id.0, running);
    app.store
        .set_progress(JobId(running), 40, Some(100), Some("40 of 100 accounts"))
        .await
        .unwrap();
    let dead = job(app, NewJob::new("mail", json!({})).max_attempts(1)).await;
    app.store
        .claim_jobs("w", &["mail"], 5, 60_000)
        .await
        .unwrap();
    app.store
        .fail_job("w", JobId(dead), "smtp refused")
        .await
        .unwrap();
    (waiting, running, dead)
}

fn ids(body: &Value) -> Vec<i64> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn jobs_are_listed_newest_first_filtered_and_read() {
    let app = TestApp::spawn().await;
    let (waiting, running, dead) = three_jobs(&app).await;
    let token = &app.admin_token;

    let all = app.get("/api/v1/jobs", token).await.expect(200).body;
    assert_eq!(ids(&all), [dead, running, waiting]);
    assert_eq!(all["next_cursor"], Value::Null);
    let page = app
        .get("/api/v1/jobs?limit=2", token)
        .await
        .expect(200)
        .body;
    assert_eq!(ids(&page), [dead, running]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = app
        .get(&format!("/api/v1/jobs?limit=2&cursor={cursor}"), token)
        .await
        .expect(200)
        .body;
    assert_eq!(ids(&rest), [waiting]);

    for (query, expected) in [
        ("status=waiting", vec![waiting]),
        ("status=running", vec![running]),
        ("status=dead", vec![dead]),
        ("status=done", vec![]),
        ("kind=sync", vec![running]),
        ("kind=mail&status=dead", vec![dead]),
        ("kind=mail&status=waiting", vec![]),
    ] {
        let found = app
            .get(&format!("/api/v1/jobs?{query}"), token)
            .await
            .expect(200)
            .body;
        assert_eq!(ids(&found), expected, "{query}");
    }
    let bad = app
        .get("/api/v1/jobs?status=queued", token)
        .await
        .expect(422);
    assert_eq!(bad.body["error"]["details"]["fields"][0]["field"], "status");

    let one = app
        .get(&format!("/api/v1/jobs/{running}"), token)
        .await
        .expect(200)
        .body;
    assert_eq!(one["kind"], "sync");
    assert_eq!(one["state"], "running");
    assert_eq!(one["attempts"], 1);
    assert_eq!(
        one["progress"],
        json!({"done": 40, "total": 100, "message": "40 of 100 accounts"})
    );
    let failed = app
        .get(&format!("/api/v1/jobs/{dead}"), token)
        .await
        .expect(200)
        .body;
    assert_eq!(failed["last_error"], "smtp refused");
    assert!(failed["finished_at"].as_str().unwrap().ends_with('Z'));
    app.get(&format!("/api/v1/jobs/{}", dead + 100), token)
        .await
        .expect(404);

    // another tenant sees none of them
    let (_, _, rival) = create_tenant(&app.store, "rival").await;
    let theirs = app.get("/api/v1/jobs", &rival).await.expect(200).body;
    assert!(ids(&theirs).is_empty());
    let answer = app.get(&format!("/api/v1/jobs/{waiting}"), &rival).await;
    assert_eq!((answer.status.as_u16(), answer.code()), (404, "not_found"));
}

#[tokio::test]
async fn cancel_and_retry_follow_the_state_stay_in_the_tenant_and_are_audited() {
    let app = TestApp::spawn().await;
    let (waiting, running, dead) = three_jobs(&app).await;
    let token = &app.admin_token;
    let (_, _, rival) = create_tenant(&app.store, "rival").await;

    // another tenant cannot touch them: 404, and nothing changes
    for id in [waiting, dead] {
        for action in ["cancel", "retry"] {
            let a = app
                .post(&format!("/api/v1/jobs/{id}/{action}"), &rival, json!({}))
                .await
                .expect(404);
            assert_eq!(a.code(), "not_found");
        }
    }
    let state = |id: i64| {
        let app = &app;
        async move {
            app.get(&format!("/api/v1/jobs/{id}"), &app.admin_token)
                .await
                .expect(200)
                .body["state"]
                .clone()
        }
    };
    assert_eq!(state(waiting).await, "waiting");
    assert_eq!(state(dead).await, "dead");

    // retrying a job that is running or waiting is a conflict; so is cancelling one
    // that is not waiting
    for (id, action, why) in [
        (running, "retry", "running"),
        (waiting, "retry", "waiting"),
        (running, "cancel", "running"),
        (dead, "cancel", "dead"),
    ] {
        let a = app
            .post(&format!("/api/v1/jobs/{id}/{action}"), token, json!({}))
            .await
            .expect(409);
        assert_eq!(a.code(), "conflict");
        assert!(
            a.body["error"]["message"].as_str().unwrap().contains(why),
            "{}",
            a.body
        );
    }

    let cancelled = app
        .post(&format!("/api/v1/jobs/{waiting}/cancel"), token, json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(cancelled["state"], "cancelled");
    assert!(cancelled["finished_at"].is_string());
    let retried = app
        .post(&format!("/api/v1/jobs/{dead}/retry"), token, json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(
        (
            &retried["state"],
            &retried["attempts"],
            &retried["finished_at"]
        ),
        (&json!("waiting"), &json!(0), &Value::Null)
    );
    // the dead job is due again: a worker takes it
    let claimed = app
        .store
        .claim_jobs("w", &["mail"], 5, 60_000)
        .await
        .unwrap();
    assert_eq!(claimed[0].id.0, dead);
    let again = app
        .post(&format!("/api/v1/jobs/{waiting}/retry"), token, json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(again["state"], "waiting");

    // each change is in the audit log, by the token that made it
    let log = app
        .get("/api/v1/audit-log?action=job.", token)
        .await
        .expect(200)
        .body;
    let entries: Vec<(String, String, String)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["target_id"].as_str().unwrap().to_owned(),
                e["actor"]["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let entry = |action: &str, id: i64| (action.to_owned(), id.to_string(), "api_token".into());
    assert_eq!(
        entries,
        [
            entry("job.retried", waiting),
            entry("job.retried", dead),
            entry("job.cancelled", waiting),
        ]
    );
}

#[tokio::test]
async fn jobs_need_jobs_read_and_changes_need_jobs_manage() {
    let app = TestApp::spawn().await;
    let waiting = job(&app, NewJob::new("export", json!({}))).await;
    for role in ["service", "content", "growth", "analyst"] {
        let token = app.token_with_role(role).await;
        let a = app.get("/api/v1/jobs", &token).await.expect(403);
        assert_eq!(a.code(), "forbidden");
        app.get(&format!("/api/v1/jobs/{waiting}"), &token)
            .await
            .expect(403);
        app.post(&format!("/api/v1/jobs/{waiting}/cancel"), &token, json!({}))
            .await
            .expect(403);
    }
    // a role that may look but not touch
    app.post(
        "/api/v1/roles",
        &app.admin_token,
        json!({"name": "watcher", "permissions": ["jobs.read"]}),
    )
    .await
    .expect(201);
    let watcher = app.token_with_role("watcher").await;
    assert_eq!(
        ids(&app.get("/api/v1/jobs", &watcher).await.expect(200).body),
        [waiting]
    );
    for action in ["cancel", "retry"] {
        let a = app
            .post(
                &format!("/api/v1/jobs/{waiting}/{action}"),
                &watcher,
                json!({}),
            )
            .await
            .expect(403);
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("jobs.manage"),
            "{}",
            a.body
        );
    }
    // operations holds both
    let operations = app.token_with_role("operations").await;
    app.get("/api/v1/jobs", &operations).await.expect(200);
    app.post(
        &format!("/api/v1/jobs/{waiting}/cancel"),
        &operations,
        json!({}),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn staff_who_see_their_own_customers_see_only_the_jobs_they_made() {
    let app = TestApp::spawn().await;
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    let mut staff = Vec::new();
    for name in ["ann", "bob"] {
        let id = app
            .post(
                "/api/v1/staff",
                &app.admin_token,
                json!({"unit_id": root.id, "role": "operations", "name": name,
                       "email": format!("{name}@acme.example.com"),
                       "password": PASSWORD, "data_scope": "own"}),
            )
            .await
            .expect(201)
            .body["id"]
            .as_i64()
            .unwrap();
        staff.push(StaffId(id));
    }
    let anns = job(&app, NewJob::new("export", json!({})).created_by(staff[0])).await;
    let bobs = job(&app, NewJob::new("export", json!({})).created_by(staff[1])).await;
    let nobodys = job(&app, NewJob::new("export", json!({}))).await;

    let (ann, signed_in) = app.login("ann@acme.example.com", PASSWORD).await;
    signed_in.expect(200);
    let get = |path: String| {
        let ann = &ann;
        let app = &app;
        async move { answer(ann.get(app.url(&path)).send().await.unwrap()).await }
    };
    let listed = get("/api/v1/jobs".into()).await.expect(200).body;
    assert_eq!(ids(&listed), [anns]);
    let own = get(format!("/api/v1/jobs/{anns}")).await.expect(200).body;
    assert_eq!(own["created_by_staff_id"], staff[0].0);
    for other in [bobs, nobodys] {
        get(format!("/api/v1/jobs/{other}")).await.expect(404);
        let cancel = ann
            .post(app.url(&format!("/api/v1/jobs/{other}/cancel")))
            .send()
            .await
            .unwrap();
        assert_eq!(answer(cancel).await.expect(404).code(), "not_found");
    }
    let cancel = ann
        .post(app.url(&format!("/api/v1/jobs/{anns}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(answer(cancel).await.expect(200).body["state"], "cancelled");

    // a tenant-wide caller sees everyone's, and bob's is still waiting
    let all = app
        .get("/api/v1/jobs?status=waiting", &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(ids(&all), [nobodys, bobs]);
}

/// `/metrics` as text.
async fn metrics(app: &TestApp) -> String {
    app.http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of a sample line (`name{labels} value`).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_backlog_by_kind_and_what_the_runner_ran() {
    let app = TestApp::spawn().await;
    let now = siyu_store::now_ms();
    // two due mail jobs, one of another tenant's, the older due 30 s ago; one not due
    let (rival, _, _) = create_tenant(&app.store, "rival").await;
    app.store
        .enqueue(&[
            NewJob::new("mail", json!({"ok": true}))
                .for_tenant(app.tenant.id)
                .run_at(now - 30_000),
            NewJob::new("mail", json!({"ok": false}))
                .for_tenant(rival.id)
                .run_at(now - 1_000)
                .max_attempts(1),
            NewJob::new("mail", json!({})).run_at(now + 3_600_000),
        ])
        .await
        .unwrap();
    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, r#"siyu_jobs_waiting{kind="mail"}"#),
        Some(2.0),
        "{text}"
    );
    let waited = sample(&text, r#"siyu_jobs_oldest_waiting_seconds{kind="mail"}"#).unwrap();
    assert!((30.0..60.0).contains(&waited), "{waited}");
    assert!(
        text.contains("# TYPE siyu_job_run_seconds histogram"),
        "{text}"
    );

    // a runner counts into the figures the server shows
    let runner = Runner::new(app.store.clone(), "metrics-test")
        .metrics(app.job_metrics.clone())
        .handler(handler_fn("mail", |ctx| async move {
            let payload: Value = ctx.payload()?;
            if payload["ok"] == true {
                Ok(())
            } else {
                Err(JobError::retry("mailbox full"))
            }
        }))
        .start();
    let until = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = metrics(&app).await;
        if sample(&text, r#"siyu_jobs_runs_total{kind="mail"}"#) == Some(2.0)
            && sample(&text, r#"siyu_jobs_waiting{kind="mail"}"#) == Some(0.0)
        {
            break text;
        }
        assert!(Instant::now() < until, "the runs were not counted: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    runner.shutdown().await;
    assert_eq!(
        sample(&text, r#"siyu_jobs_failures_total{kind="mail"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"siyu_job_run_seconds_count{kind="mail"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"siyu_job_run_seconds_bucket{le="+Inf",kind="mail"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"siyu_jobs_oldest_waiting_seconds{kind="mail"}"#),
        Some(0.0),
        "a kind whose backlog is gone shows 0"
    );
}
