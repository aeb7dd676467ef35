//! The `siyu` binary as operators use it: its commands, its errors, `siyu demo`, and
//! several `siyu serve` processes sharing one database. Runs on SQLite by default and on
//! PostgreSQL when SIYU_TEST_DATABASE_URL is set.

use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::json;
use siyu_store::testing::TestDatabase;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const SIYU: &str = env!("CARGO_BIN_EXE_siyu");

async fn siyu(args: &[&str]) -> Output {
    Command::new(SIYU)
        .args(args)
        .env_remove("SIYU_DATABASE_URL")
        .env_remove("SIYU_SECRET_KEY")
        .env_remove("SIYU_LISTEN")
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("siyu runs")
}

fn last_line(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_healthy(base: &str) {
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{base} did not become healthy");
}

fn terminate(child: &Child) {
    let pid = child.id().expect("child is running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn every_command_has_help() {
    let commands: [&[&str]; 15] = [
        &[],
        &["serve"],
        &["migrate"],
        &["tenant"],
        &["tenant", "create"],
        &["tenant", "list"],
        &["token"],
        &["token", "create"],
        &["demo"],
        &["source"],
        &["source", "create"],
        &["source", "rotate-key"],
        &["jobs"],
        &["jobs", "list"],
        &["jobs", "enqueue"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let out = siyu(&args).await;
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: siyu"), "{args:?}: {text}");
        if !command.is_empty() {
            assert!(
                text.contains("--database-url"),
                "{args:?} takes --database-url"
            );
        }
    }
}

#[tokio::test]
async fn an_unreachable_database_is_one_line_naming_it_without_the_password() {
    for command in ["migrate", "serve"] {
        let out = siyu(&[
            command,
            "--database-url",
            "postgres://siyu:hunter2@127.0.0.1:1/siyu",
        ])
        .await;
        assert!(!out.status.success(), "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<_> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0].contains("postgres://siyu:***@127.0.0.1:1/siyu"),
            "{stderr}"
        );
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
    let out = siyu(&["migrate", "--database-url", "mysql://x@y/z"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database url"));
}

#[tokio::test]
async fn tenant_and_token_commands_print_their_result_last() {
    let db = TestDatabase::create().await;
    let url = db.url.as_str();
    let out = siyu(&["migrate", "--database-url", url]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = siyu(&[
        "tenant",
        "create",
        "acme",
        "--admin-email",
        "boss@acme.example.com",
        "--admin-password",
        "password-123",
        "--database-url",
        url,
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tenant_id: i64 = last_line(&out)
        .parse()
        .expect("the tenant id alone on the last line");

    let out = siyu(&[
        "token",
        "create",
        "--tenant",
        "acme",
        "--role",
        "analyst",
        "--name",
        "bi",
        "--database-url",
        url,
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = last_line(&out);
    assert!(
        token.starts_with("siyu_pat_") && !token.contains(' '),
        "{token}"
    );

    let list = siyu(&["tenant", "list", "--database-url", url]).await;
    assert_eq!(
        String::from_utf8_lossy(&list.stdout).trim(),
        format!("{tenant_id}\tacme")
    );

    let out = siyu(&[
        "source",
        "create",
        "--tenant",
        "acme",
        "--name",
        "mini-program",
        "--kind",
        "mini_program",
        "--database-url",
        url,
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = last_line(&out);
    assert!(key.starts_with("siyu_wk_") && !key.contains(' '), "{key}");
    let out = siyu(&[
        "source",
        "rotate-key",
        "--tenant",
        "acme",
        "--name",
        "mini-program",
        "--database-url",
        url,
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(last_line(&out), key);

    // bad input: each a clear error and a failing exit
    let cases: [(&[&str], &str); 7] = [
        (
            &[
                "tenant",
                "create",
                "acme",
                "--admin-email",
                "x@acme.example.com",
                "--admin-password",
                "password-123",
            ],
            "exists",
        ),
        (
            &[
                "tenant",
                "create",
                "b",
                "--admin-email",
                "not-an-email",
                "--admin-password",
                "password-123",
            ],
            "valid email",
        ),
        (
            &[
                "tenant",
                "create",
                "c",
                "--admin-email",
                "c@c.example.com",
                "--admin-password",
                "short",
            ],
            "at least 8",
        ),
        (
            &["token", "create", "--tenant", "nope", "--role", "admin"],
            "no tenant named",
        ),
        (
            &["token", "create", "--tenant", "acme", "--role", "wizard"],
            "no role named",
        ),
        (
            &[
                "source", "create", "--tenant", "acme", "--name", "x", "--kind", "fax",
            ],
            "unknown source kind",
        ),
        (
            &[
                "source",
                "create",
                "--tenant",
                "acme",
                "--name",
                "mini-program",
            ],
            "exists",
        ),
    ];
    for (args, message) in cases {
        let mut args = args.to_vec();
        args.extend(["--database-url", url]);
        let out = siyu(&args).await;
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn two_serve_processes_on_one_database_serve_the_same_data() {
    let db = TestDatabase::create().await;
    let url = db.url.as_str();
    let out = siyu(&[
        "tenant",
        "create",
        "acme",
        "--admin-email",
        "boss@acme.example.com",
        "--admin-password",
        "password-123",
        "--database-url",
        url,
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = last_line(
        &siyu(&[
            "token",
            "create",
            "--tenant",
            "acme",
            "--role",
            "admin",
            "--database-url",
            url,
        ])
        .await,
    );

    let mut nodes = vec![];
    for _ in 0..2 {
        let base = format!("127.0.0.1:{}", free_port());
        let child = Command::new(SIYU)
            .args(["serve", "--listen", &base, "--database-url", url])
            .env("RUST_LOG", "warn")
            .env_remove("SIYU_SECRET_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let base = format!("http://{base}");
        wait_healthy(&base).await;
        nodes.push((base, child));
    }
    let (a, b) = (&nodes[0].0, &nodes[1].0);
    let http = reqwest::Client::new();

    // a session opened on one node works on the other
    let login = http
        .post(format!("{a}/api/v1/auth/login"))
        .json(&json!({"email": "boss@acme.example.com", "password": "password-123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let me = http
        .get(format!("{b}/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    // a write on one node is read on the other
    let root: serde_json::Value = http
        .get(format!("{b}/api/v1/units"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let root_id = root["items"][0]["id"].as_i64().unwrap();
    let created = http
        .post(format!("{a}/api/v1/units"))
        .bearer_auth(&token)
        .json(&json!({"parent_id": root_id, "kind": "brand", "name": "露米茶饮"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let seen = http
        .get(format!("{b}/api/v1/units/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(seen.status(), 200);
    assert_eq!(
        seen.json::<serde_json::Value>().await.unwrap()["name"],
        "露米茶饮"
    );

    // failed logins on one node count on the other (throttling is shared)
    for node in [a, b, a, b, a] {
        let r = http
            .post(format!("{node}/api/v1/auth/login"))
            .json(&json!({"email": "boss@acme.example.com", "password": "wrong-password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let throttled = http
        .post(format!("{b}/api/v1/auth/login"))
        .json(&json!({"email": "boss@acme.example.com", "password": "password-123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(throttled.status(), 429);

    // SIGTERM stops each node cleanly
    for (_, mut child) in nodes {
        terminate(&child);
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "{status}");
    }
}

#[tokio::test]
async fn demo_serves_demo_data_and_prints_how_to_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    for run in ["new demo data", "existing demo data"] {
        let mut child = Command::new(SIYU)
            .args(["demo", "--listen", "127.0.0.1:0", "--database-url", &url])
            .args(["--customers", "300", "--seed", "7"])
            .env("RUST_LOG", "warn")
            .env_remove("SIYU_SECRET_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut printed = vec![];
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                printed.push(line.clone());
                if line.starts_with("http://") {
                    return line.trim_end_matches('/').to_owned();
                }
            }
            panic!("demo exited: {printed:?}");
        })
        .await
        .expect("demo prints its URL");
        assert!(printed[0].contains(run), "{printed:?}");
        let sign_in = printed
            .iter()
            .find(|l| l.contains("sign in:"))
            .expect("login printed");
        let creds: Vec<_> = sign_in.split_whitespace().collect();
        let (email, password) = (creds[creds.len() - 3], creds[creds.len() - 1]);

        let http = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let login = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 200);
        let units: serde_json::Value = http
            .get(format!("{base}/api/v1/units"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(units["items"].as_array().unwrap().len() >= 5, "{units}");
        let staff: serde_json::Value = http
            .get(format!("{base}/api/v1/staff"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(staff["items"].as_array().unwrap().len() >= 20, "{staff}");
        // acquisition: the brand's codes, and its tracked links with a month of clicks
        let get = |path: String| {
            let http = http.clone();
            let url = format!("{base}{path}");
            async move {
                http.get(url)
                    .send()
                    .await
                    .unwrap()
                    .json::<serde_json::Value>()
                    .await
                    .unwrap()
            }
        };
        let codes = get("/api/v1/channel-codes".into()).await;
        assert!(
            codes["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["state"] == "live-618"),
            "{codes}"
        );
        let now = siyu_store::now_ms();
        let day = |ms: i64| siyu_domain::time::format_rfc3339(ms)[..10].to_owned();
        let links = get(format!(
            "/api/v1/links/report?from={}&to={}",
            day(now - 40 * 86_400_000),
            day(now + 86_400_000)
        ))
        .await;
        assert_eq!(links["total"]["clicks"], 600, "{links}");
        assert!(
            links["total"]["personal_clicks"].as_i64().unwrap() > 0,
            "{links}"
        );
        // the demo's WeCom corp (a stand-in in the demo's process) is connected and
        // synced: its members are staff, its customers profiles
        let connectors: serde_json::Value = http
            .get(format!("{base}/api/v1/connectors"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let connector = connectors[0]["id"].as_i64().expect("a demo connector");
        let mut overview = serde_json::Value::Null;
        for _ in 0..300 {
            overview = http
                .get(format!("{base}/api/v1/connectors/{connector}/sync"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            // the chats are synced after the customers: wait for both
            if overview["customers"]["finished_at"].is_string()
                && overview["counts"]["group_chats"].as_i64() > Some(0)
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        assert!(
            overview["customers"]["finished_at"].is_string(),
            "{overview}"
        );
        assert_eq!(overview["counts"]["members"], 12, "{overview}");
        let wecom_customers = overview["counts"]["contacts"].as_u64().unwrap() as usize;
        assert_eq!(wecom_customers, 600, "{overview}");
        assert!(overview["counts"]["group_chats"].as_i64().unwrap() > 0);
        let mut customers = Vec::new();
        let mut cursor = String::new();
        loop {
            let page: serde_json::Value = http
                .get(format!("{base}/api/v1/customers?limit=200{cursor}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            customers.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => break,
            }
        }
        assert_eq!(
            customers.len(),
            300 + wecom_customers,
            "demo customers and WeCom's, created once"
        );
        // WeCom's customers have no phone: the demo's own are checked below
        customers.retain(|c| c["phone"].is_string());
        assert_eq!(customers.len(), 300, "demo customers, created once");
        assert!(
            customers
                .iter()
                .all(|c| c["phone"].as_str().unwrap().contains("****"))
        );
        let buyers = customers
            .iter()
            .filter(|c| c["orders"]["count"].as_i64().unwrap() > 0)
            .count();
        assert!(buyers >= 100, "demo customers have orders: {buyers}");
        let owned = customers
            .iter()
            .filter(|c| c["owner_staff_id"].is_i64())
            .count();
        assert!(owned >= 30, "store guides look after customers: {owned}");
        // every demo segment has members once the tag rules have run over the customers
        let mut segments = Vec::new();
        for _ in 0..50 {
            let list: serde_json::Value = http
                .get(format!("{base}/api/v1/segments"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            segments = list.as_array().unwrap().clone();
            if segments.iter().all(|s| s["count"].as_u64().unwrap() > 0) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        assert_eq!(segments.len(), 6, "demo segments, created once");
        for s in &segments {
            assert!(s["count"].as_u64().unwrap() > 0, "{s}");
        }
        // the tag rule tags those who shared, once the server has the index
        let count = |definition: &'static str| {
            let http = http.clone();
            let base = base.clone();
            async move {
                let preview: serde_json::Value = http
                    .post(format!("{base}/api/v1/segments/preview"))
                    .json(&serde_json::json!({ "definition": definition }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                preview["count"].as_u64().unwrap()
            }
        };
        let shared = count(r#"performed("Content Shared", last 90d)"#).await;
        assert!(shared > 0, "some demo customers shared lately");
        let mut sharers = 0;
        for _ in 0..50 {
            sharers = count(r#"tag("分享达人")"#).await;
            if sharers == shared {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        assert_eq!(sharers, shared, "the rule tagged everyone who shared");
        terminate(&child);
        assert!(child.wait().await.unwrap().success());
    }
    let key = dir.path().join("demo.db.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[tokio::test]
async fn logs_are_json_lines_with_the_request_id_when_asked() {
    let db = TestDatabase::create().await;
    let base = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(SIYU)
        .args(["serve", "--listen", &base, "--database-url", &db.url])
        .env("SIYU_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env_remove("SIYU_SECRET_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://{base}");
    wait_healthy(&base).await;
    let response = reqwest::Client::new()
        .get(format!("{base}/api/v1/nothing"))
        .header("x-request-id", "req-from-the-test")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    terminate(&child);
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert!(child.wait().await.unwrap().success());
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["message"] == "siyu is serving"),
        "{stderr}"
    );
    let access = lines
        .iter()
        .find(|l| l.to_string().contains("req-from-the-test"))
        .unwrap_or_else(|| panic!("no log line carries the request id: {stderr}"));
    assert_eq!(access["span"]["uri"], "/api/v1/nothing", "{access}");
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("shutdown"))),
        "{stderr}"
    );
}

#[tokio::test]
async fn demo_refuses_a_database_with_real_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("prod.db").display());
    let out = siyu(&[
        "tenant",
        "create",
        "acme",
        "--admin-email",
        "boss@acme.example.com",
        "--admin-password",
        "password-123",
        "--database-url",
        &url,
    ])
    .await;
    assert!(out.status.success());
    let out = siyu(&["demo", "--listen", "127.0.0.1:0", "--database-url", &url]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("other than the demo"));
    let list = siyu(&["tenant", "list", "--database-url", &url]).await;
    assert_eq!(
        String::from_utf8_lossy(&list.stdout).lines().count(),
        1,
        "no demo tenant was added"
    );
}

#[tokio::test]
async fn events_acknowledged_before_a_sigkill_are_all_there_once() {
    let db = TestDatabase::create().await;
    let url = db.url.as_str();
    let out = siyu(&[
        "tenant",
        "create",
        "acme",
        "--admin-email",
        "boss@acme.example.com",
        "--admin-password",
        "password-123",
        "--database-url",
        url,
    ])
    .await;
    assert!(out.status.success());
    let key = last_line(
        &siyu(&[
            "source",
            "create",
            "--tenant",
            "acme",
            "--name",
            "app",
            "--database-url",
            url,
        ])
        .await,
    );

    let start = |port: u16| {
        Command::new(SIYU)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                url,
            ])
            .env("RUST_LOG", "error")
            .env_remove("SIYU_SECRET_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let batch = |client: usize, n: usize| {
        let items: Vec<_> = (0..50)
            .map(|i| json!({"type": "track", "userId": format!("u{}", (client * 7 + i) % 40), "event": "Viewed",
                            "messageId": format!("c{client}-b{n}-e{i}")}))
            .collect();
        json!({"batch": items})
    };

    let port = free_port();
    let mut server = start(port);
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base).await;
    let http = reqwest::Client::new();
    let mut clients = vec![];
    for client in 0..4 {
        let (http, base, key) = (http.clone(), base.clone(), key.clone());
        clients.push(tokio::spawn(async move {
            let mut acknowledged = vec![];
            for n in 0.. {
                let body = batch(client, n);
                let sent = http
                    .post(format!("{base}/v1/batch"))
                    .basic_auth(&key, Some(""))
                    .json(&body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 200 => acknowledged.push(n),
                    _ => return (acknowledged, n),
                }
            }
            unreachable!()
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.start_kill().unwrap(); // SIGKILL: no shutdown, no flush
    server.wait().await.unwrap();
    let mut sent_batches = vec![];
    for (client, task) in clients.into_iter().enumerate() {
        let (acknowledged, attempted) = task.await.unwrap();
        assert!(
            !acknowledged.is_empty(),
            "client {client} got nothing acknowledged before the kill"
        );
        sent_batches.push((client, acknowledged, attempted));
    }

    // the old process may have died with acknowledged events logged and not applied:
    // a new one applies them, once
    let store = db.store().await;
    let waiting = store.log_backlog().await.unwrap();
    let port = free_port();
    let _server = start(port);
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base).await;
    all_applied(&store).await;
    let tenant = store.find_tenant_by_name("acme").await.unwrap().unwrap();
    let scope = store.tenant(tenant.id);
    let source = scope.find_source_by_name("app").await.unwrap().unwrap();
    let counts = scope.message_id_counts(source.id).await.unwrap();
    let mut acknowledged_events = 0;
    for (client, acknowledged, _) in &sent_batches {
        for n in acknowledged {
            for i in 0..50 {
                let id = format!("c{client}-b{n}-e{i}");
                assert_eq!(
                    counts.get(&id),
                    Some(&1),
                    "{id} ({waiting} waited in the log)"
                );
                acknowledged_events += 1;
            }
        }
    }
    assert!(counts.values().all(|c| *c == 1), "no event is stored twice");

    // the SDKs retry everything that was not acknowledged (and we resend the rest too):
    // nothing is doubled and nothing is missing
    let mut total = 0;
    for (client, _, attempted) in &sent_batches {
        for n in 0..=*attempted {
            let r = http
                .post(format!("{base}/v1/batch"))
                .basic_auth(&key, Some(""))
                .json(&batch(*client, n))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            total += 50;
        }
    }
    all_applied(&store).await;
    let counts = scope.message_id_counts(source.id).await.unwrap();
    assert_eq!(counts.len() as i64, total, "every event sent is stored");
    assert!(counts.values().all(|c| *c == 1), "none twice");
    let received = scope.get_source(source.id).await.unwrap().received;
    assert_eq!(
        received, total,
        "{acknowledged_events} acknowledged before the kill"
    );
}

/// Waits until the server has applied every event in the ingest log.
async fn all_applied(store: &siyu_store::Store) {
    for _ in 0..3000 {
        if store.log_backlog().await.unwrap() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the ingest log was not applied within 30 s");
}

/// Runs a command that must succeed; returns its stdout.
async fn ok(args: &[&str]) -> String {
    let out = siyu(args).await;
    assert!(
        out.status.success(),
        "siyu {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn import_and_export_files_idempotently_with_a_report_of_refused_rows() {
    let db = TestDatabase::create().await;
    let url = db.url.as_str();
    let dir = tempfile::tempdir().unwrap();
    ok(&[
        "tenant",
        "create",
        "acme",
        "--admin-email",
        "boss@acme.example.com",
        "--admin-password",
        "password-123",
        "--database-url",
        url,
    ])
    .await;
    let customers = dir.path().join("customers.csv");
    std::fs::write(
        &customers,
        "姓名,手机号,邮箱,会员卡,城市,consent:sms\n\
         李娜,13812341680,lina@brand.cn,M-01,上海,opt_in\n\
         王芳,not-a-phone,,M-02,杭州,\n\
         周敏,13900001111,,M-03,苏州,maybe\n\
         赵雷,13700002222,,M-04,北京,opt_out\n",
    )
    .unwrap();
    let rejects = dir.path().join("rejects.csv");
    let args = |file: &str, kind: &str| {
        vec![
            "import".to_owned(),
            kind.to_owned(),
            file.to_owned(),
            "--tenant".into(),
            "acme".into(),
            "--map".into(),
            "会员卡=identity:member_no".into(),
            "--rejects".into(),
            rejects.display().to_string(),
            "--database-url".into(),
            url.to_owned(),
        ]
    };
    let file = customers.display().to_string();
    let run = args(&file, "customers");
    let run: Vec<&str> = run.iter().map(String::as_str).collect();
    let first = ok(&run).await;
    assert!(
        first.contains("4 rows read, 2 stored, 0 already there, 2 refused"),
        "{first}"
    );
    let report = std::fs::read_to_string(&rejects).unwrap();
    assert!(report.starts_with("line,reason\n3,phone:"), "{report}");
    assert!(
        report.contains("4,consent:sms must be opt_in or opt_out"),
        "{report}"
    );
    // the same file again changes nothing
    let again = ok(&run).await;
    assert!(again.contains("0 stored, 2 already there"), "{again}");

    let orders = dir.path().join("orders.csv");
    std::fs::write(
        &orders,
        "order_id,phone,channel,ordered_at,sku,item_name,price,quantity\n\
         T-1,13812341680,tmall,2026-11-01 10:00,A,龙井,100,2\n\
         T-1,13812341680,tmall,2026-11-01 10:00,B,杯,20,1\n\
         T-2,13700002222,offline,2026-11-02,C,茶饼,58.5,1\n\
         T-3,13700002222,mars,2026-11-02,C,茶饼,1,1\n",
    )
    .unwrap();
    let file = orders.display().to_string();
    let run = args(&file, "orders");
    let run: Vec<&str> = run.iter().map(String::as_str).collect();
    let out = ok(&run).await;
    assert!(
        out.contains("2 stored, 0 already there, 1 refused"),
        "{out}"
    );
    let out = ok(&run).await;
    assert!(
        out.contains("0 stored, 2 already there, 1 refused"),
        "{out}"
    );

    let exported = dir.path().join("export.csv");
    ok(&[
        "export",
        "customers",
        "--tenant",
        "acme",
        "--output",
        exported.to_str().unwrap(),
        "--database-url",
        url,
    ])
    .await;
    let text = std::fs::read_to_string(&exported).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2, "{text}");
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let lina = rows.iter().find(|r| &r[col("name")] == "李娜").unwrap();
    assert_eq!(&lina[col("phone")], "+8613812341680");
    assert_eq!(&lina[col("order_count")], "1");
    assert_eq!(&lina[col("order_total")], "220.00");
    assert!(lina[col("identities")].contains("member_no:M-01"));
    assert!(lina[col("traits")].contains("上海"));
    // a file the importer cannot read at all is an error, and so is an unknown tenant
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "name,city\nx,y\n").unwrap();
    let out = siyu(&[
        "import",
        "customers",
        bad.to_str().unwrap(),
        "--tenant",
        "acme",
        "--database-url",
        url,
    ])
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no identity column"));
    let out = siyu(&[
        "export",
        "customers",
        "--tenant",
        "nobody",
        "--database-url",
        url,
    ])
    .await;
    assert!(!out.status.success());
}

/// Customers of a tenant stored without the sms opt-out every row of the import file
/// carries: a row stored in part.
async fn customers_missing_their_opt_out(url: &str) -> (i64, i64) {
    let count = "SELECT COUNT(*) FROM customers c WHERE c.merged_into_id IS NULL";
    let missing = "SELECT COUNT(*) FROM customers c WHERE c.merged_into_id IS NULL AND NOT EXISTS \
                   (SELECT 1 FROM consent_changes k WHERE k.tenant_id = c.tenant_id \
                   AND k.customer_id = c.id AND k.channel = 'sms' AND k.status = 'opt_out')";
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let all: i64 = sqlx::query_scalar(count).fetch_one(&pool).await.unwrap();
        let bad: i64 = sqlx::query_scalar(missing).fetch_one(&pool).await.unwrap();
        pool.close().await;
        (all, bad)
    } else {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let all: i64 = sqlx::query_scalar(count).fetch_one(&pool).await.unwrap();
        let bad: i64 = sqlx::query_scalar(missing).fetch_one(&pool).await.unwrap();
        pool.close().await;
        (all, bad)
    }
}

/// An import killed mid-file leaves every row it stored whole: no customer without the
/// opt-out of their row (an opted-out customer made contactable), however often it is
/// killed and run again, and the last run finishes the file.
#[tokio::test]
async fn an_import_killed_mid_file_stores_each_row_whole() {
    let db = TestDatabase::create().await;
    let url = db.url.as_str();
    let dir = tempfile::tempdir().unwrap();
    ok(&[
        "tenant",
        "create",
        "acme",
        "--admin-email",
        "boss@acme.example.com",
        "--admin-password",
        "import-boss-26",
        "--database-url",
        url,
    ])
    .await;
    let rows = 30_000;
    let mut csv = String::from("user_id,name,consent:sms\n");
    for n in 0..rows {
        csv.push_str(&format!("u-{n},客户{n},opt_out\n"));
    }
    let file = dir.path().join("customers.csv");
    std::fs::write(&file, csv).unwrap();
    let file = file.display().to_string();
    let args = [
        "import",
        "customers",
        file.as_str(),
        "--tenant",
        "acme",
        "--database-url",
        url,
    ];
    let mut kills = 0;
    for round in 0..4 {
        let mut child = Command::new(SIYU)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // wait until this run has stored more rows, then kill it mid-file
        let (before, _) = customers_missing_their_opt_out(url).await;
        let started = std::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(20 + 37 * round)).await;
            let (now, _) = customers_missing_their_opt_out(url).await;
            if now > before || started.elapsed() > Duration::from_secs(30) {
                break;
            }
        }
        if child.try_wait().unwrap().is_none() {
            child.start_kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().await.unwrap();
        let (stored, missing) = customers_missing_their_opt_out(url).await;
        assert_eq!(
            missing, 0,
            "round {round}: {missing} of {stored} customers stored without their row's opt-out"
        );
    }
    assert!(kills >= 2, "the import finished before it could be killed");
    // a last run finishes the file
    ok(&args).await;
    let (stored, missing) = customers_missing_their_opt_out(url).await;
    assert_eq!((stored, missing), (rows as i64, 0));
}

/// The process's resident memory, in bytes (Linux).
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kb * 1024
}

/// A tenant of 20,000 customers is sent 6,000 made-up trait names (identify calls with
/// hundreds of new keys each and a CSV row with a thousand columns): the trait limits
/// refuse most in the answers, and what is taken costs the audience index memory by the
/// few customers that have it. The server's resident memory grows by well under 60 MB
/// (each name as a dense column would take 80 KB: 480 MB for all of them).
#[tokio::test]
async fn made_up_trait_names_do_not_grow_the_server() {
    let db = TestDatabase::create().await;
    let url = db.url.as_str();
    ok(&[
        "tenant",
        "create",
        "acme",
        "--admin-email",
        "boss@acme.example.com",
        "--admin-password",
        "password-123",
        "--database-url",
        url,
    ])
    .await;
    let key = last_line(
        &siyu(&[
            "source",
            "create",
            "--tenant",
            "acme",
            "--name",
            "web",
            "--kind",
            "website",
            "--database-url",
            url,
        ])
        .await,
    );
    let token = last_line(
        &siyu(&[
            "token",
            "create",
            "--tenant",
            "acme",
            "--role",
            "admin",
            "--database-url",
            url,
        ])
        .await,
    );
    let port = free_port();
    let server = Command::new(SIYU)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", url])
        .env("RUST_LOG", "error")
        .env_remove("SIYU_SECRET_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = server.id().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base).await;
    let http = reqwest::Client::new();
    let track = async |body: serde_json::Value| -> serde_json::Value {
        let r = http
            .post(format!("{base}/v1/batch"))
            .basic_auth(&key, Some(""))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(status == 200 || status == 400, "{status}: {body}");
        body
    };
    let preview = async |definition: &str| -> u64 {
        let r = http
            .post(format!("{base}/api/v1/segments/preview"))
            .bearer_auth(&token)
            .json(&json!({"definition": definition, "sample": 0}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<serde_json::Value>().await.unwrap()["count"]
            .as_u64()
            .unwrap()
    };
    let waits_for = async |definition: &str, count: u64| {
        for _ in 0..600 {
            if preview(definition).await == count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{definition} never counted {count}");
    };

    // 20,000 customers with a few common traits, on the index
    const CUSTOMERS: usize = 20_000;
    const CITIES: [&str; 3] = ["上海", "北京", "杭州"];
    for chunk in 0..CUSTOMERS / 500 {
        let items: Vec<_> = (chunk * 500..(chunk + 1) * 500)
            .map(|n| {
                json!({"type": "identify", "userId": format!("u{n}"),
                            "traits": {"name": format!("客户{n}"), "city": CITIES[n % 3],
                                       "tier": n % 5, "member_since": "2025-03-01"}})
            })
            .collect();
        assert_eq!(track(json!({"batch": items})).await["accepted"], 500);
    }
    let store = db.store().await;
    all_applied(&store).await;
    waits_for("trait.tier >= 0", CUSTOMERS as u64).await;
    let before = resident_bytes(pid);

    // the attack: 6,000 names the tenant has never seen
    let mut rejected = 0;
    let mut taken = 0;
    let mut attempted = 0;
    let mut call = |customer: usize, names: std::ops::Range<usize>| {
        attempted += names.len();
        let traits: serde_json::Map<_, _> = names.map(|k| (format!("x{k:05}"), json!(k))).collect();
        json!({"batch": [{"type": "identify", "userId": format!("u{customer}"), "traits": traits}]})
    };
    let mut bodies = Vec::new();
    // ten calls of 300 new names each: over the per-event limit
    for i in 0..10 {
        bodies.push(call(i, i * 300..(i + 1) * 300));
    }
    // twenty-five calls of 80: under it, until the tenant has no more room
    for i in 0..25 {
        bodies.push(call(100 + i, 3_000 + i * 80..3_000 + (i + 1) * 80));
    }
    assert_eq!(attempted, 5_000);
    for body in bodies {
        let answer = track(body).await;
        let codes: Vec<_> = match answer["rejected"].as_array() {
            Some(r) => r.iter().map(|r| r["code"].clone()).collect(),
            None => answer["error"]["details"]["rejected"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["code"].clone())
                .collect(),
        };
        assert!(codes.iter().all(|c| c == "too_many_traits"), "{answer}");
        rejected += codes.len();
        taken += answer["accepted"].as_u64().unwrap_or(0);
    }
    assert!(rejected >= 11, "{rejected} refused, {taken} taken");
    assert!(taken > 0 && taken < 25, "{taken} taken");
    // and one CSV row of a thousand columns, imported beside the server
    let header: Vec<String> = (5_000..6_000).map(|k| format!("x{k:05}")).collect();
    let row: Vec<String> = (5_000..6_000).map(|k| k.to_string()).collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wide.csv");
    std::fs::write(
        &file,
        format!("user_id,{}\nu200,{}\n", header.join(","), row.join(",")),
    )
    .unwrap();
    let imported = siyu(&[
        "import",
        "customers",
        &file.display().to_string(),
        "--tenant",
        "acme",
        "--database-url",
        url,
    ])
    .await;
    let stderr = String::from_utf8_lossy(&imported.stderr);
    assert!(
        !imported.status.success(),
        "its one row is refused: {stderr}"
    );
    assert!(stderr.contains("line 2: too_many_traits"), "{stderr}");

    // what was taken is applied and on the index: the last call taken's first name
    all_applied(&store).await;
    let last_taken = 3_000 + (taken as usize - 1) * 80;
    waits_for(&format!("trait.x{last_taken:05} >= 0"), 1).await;
    let grown = resident_bytes(pid).saturating_sub(before);
    assert!(grown < 60 << 20, "the server grew by {} MB", grown >> 20);
    eprintln!(
        "resident memory {:.1} MB before the attack, changed by {:+.1} MB ({taken} calls taken, {rejected} refused)",
        before as f64 / 1048576.0,
        (resident_bytes(pid) as f64 - before as f64) / 1048576.0
    );
}

/// Orders in the database, and how many distinct order ids they have (SQL, either
/// database).
async fn orders_and_distinct_ids(url: &str) -> (i64, i64) {
    let sql = "SELECT COUNT(*), COUNT(DISTINCT order_id) FROM orders";
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let counts: (i64, i64) = sqlx::query_as(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        counts
    } else {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let counts: (i64, i64) = sqlx::query_as(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        counts
    }
}

/// A `siyu serve` killed with SIGKILL halfway through an import started through the API:
/// after a restart (its runner takes the job once the dead process's lease runs out)
/// the import completes, and every row is stored exactly once.
#[tokio::test]
async fn an_api_import_survives_sigkill_of_its_server_and_stores_every_row_once() {
    let db = TestDatabase::create().await;
    let url = db.url.as_str();
    ok(&[
        "tenant",
        "create",
        "acme",
        "--admin-email",
        "boss@acme.example.com",
        "--admin-password",
        "import-boss-26",
        "--database-url",
        url,
    ])
    .await;
    let token = last_line(
        &siyu(&[
            "token",
            "create",
            "--tenant",
            "acme",
            "--role",
            "admin",
            "--database-url",
            url,
        ])
        .await,
    );
    let serve = |port: u16| {
        Command::new(SIYU)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", url])
            .env("RUST_LOG", "warn")
            .env_remove("SIYU_SECRET_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = serve(port);
    wait_healthy(&base).await;
    let http = reqwest::Client::new();

    // 60,000 orders (120 parts), under 64 MB
    const ROWS: usize = 60_000;
    let mut csv = String::from("order_id,user_id,channel,ordered_at,sku,price,quantity\n");
    for i in 0..ROWS {
        csv.push_str(&format!(
            "K-{i:06},u-{},tmall,2026-06-18 20:00,S{},{}.00,1\n",
            i % 1_000,
            i % 7,
            i % 90 + 1
        ));
    }
    let job: serde_json::Value = http
        .post(format!("{base}/api/v1/imports?kind=orders"))
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(job["status"], "queued", "{job}");
    let id = job["id"].as_i64().expect("an import");
    let get = async |base: &str| -> serde_json::Value {
        http.get(format!("{base}/api/v1/imports/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    };

    // SIGKILL once some parts are stored
    let until = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let now = get(&base).await;
        let done = now["processed_rows"].as_i64().unwrap_or(0);
        assert!(
            now["status"] != "completed",
            "finished before the kill: {now}"
        );
        if done >= 5_000 {
            break;
        }
        assert!(std::time::Instant::now() < until, "no part stored: {now}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.start_kill().unwrap(); // SIGKILL
    server.wait().await.unwrap();
    let (stored, distinct) = orders_and_distinct_ids(url).await;
    assert_eq!(stored, distinct, "no order twice, even mid-import");
    assert!(
        (stored as usize) < ROWS,
        "killed halfway ({stored} of {ROWS} orders stored)"
    );

    // restarted, the import goes on where it stopped and completes
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = serve(port);
    wait_healthy(&base).await;
    let until = std::time::Instant::now() + Duration::from_secs(180);
    let done = loop {
        let now = get(&base).await;
        assert!(
            now["status"] == "queued" || now["status"] == "running" || now["status"] == "completed",
            "{now}"
        );
        if now["status"] == "completed" {
            break now;
        }
        assert!(std::time::Instant::now() < until, "not completed: {now}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        (
            &done["processed_rows"],
            &done["stored_rows"],
            &done["rejected_rows"]
        ),
        (&json!(ROWS), &json!(ROWS), &json!(0)),
        "every row counted once: {done}"
    );
    assert_eq!(
        orders_and_distinct_ids(url).await,
        (ROWS as i64, ROWS as i64),
        "every order stored, once"
    );
}

#[tokio::test]
async fn jobs_are_listed_shown_cancelled_retried_and_enqueued_by_hand() {
    let db = TestDatabase::create().await;
    let url = db.url.as_str();
    ok(&[
        "tenant",
        "create",
        "acme",
        "--admin-email",
        "boss@acme.example.com",
        "--admin-password",
        "password-123",
        "--database-url",
        url,
    ])
    .await;
    let enqueued = ok(&[
        "jobs",
        "enqueue",
        "--tenant",
        "acme",
        "--kind",
        "tags.backfill",
        "--payload",
        r#"{"all": true}"#,
        "--database-url",
        url,
    ])
    .await;
    let job: i64 = enqueued
        .lines()
        .last()
        .unwrap()
        .parse()
        .expect("the id last");
    let system: i64 = ok(&["jobs", "enqueue", "--kind", "sweep", "--database-url", url])
        .await
        .lines()
        .last()
        .unwrap()
        .parse()
        .unwrap();

    // newest first, the system's too, one tab-separated line each
    let listed = ok(&["jobs", "list", "--database-url", url]).await;
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(
        lines[0].starts_with(&format!("{system}\t(system)\tsweep\twaiting\t0/5\t")),
        "{listed}"
    );
    assert!(
        lines[1].starts_with(&format!("{job}\tacme\ttags.backfill\twaiting\t0/5\t")),
        "{listed}"
    );
    let acme = ok(&["jobs", "list", "--tenant", "acme", "--database-url", url]).await;
    assert_eq!(acme.lines().count(), 1, "{acme}");
    let none = ok(&["jobs", "list", "--status", "dead", "--database-url", url]).await;
    assert_eq!(none.trim(), "no jobs");
    let bad = siyu(&["jobs", "list", "--status", "queued", "--database-url", url]).await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown state \"queued\""));

    let shown: serde_json::Value =
        serde_json::from_str(&ok(&["jobs", "show", &job.to_string(), "--database-url", url]).await)
            .unwrap();
    assert_eq!(shown["state"], "waiting");
    assert_eq!(shown["payload"], json!({"all": true}));

    // a waiting job is not retried; cancelled, it is
    let refused = siyu(&["jobs", "retry", &job.to_string(), "--database-url", url]).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("the job is waiting"));
    ok(&["jobs", "cancel", &job.to_string(), "--database-url", url]).await;
    let cancelled = ok(&[
        "jobs",
        "list",
        "--status",
        "cancelled",
        "--database-url",
        url,
    ])
    .await;
    assert!(cancelled.starts_with(&format!("{job}\t")), "{cancelled}");
    let retried = ok(&["jobs", "retry", &job.to_string(), "--database-url", url]).await;
    assert!(retried.contains("waiting again"), "{retried}");
    let missing = siyu(&["jobs", "show", "999999", "--database-url", url]).await;
    assert!(String::from_utf8_lossy(&missing.stderr).contains("job not found"));
    let bad_kind = siyu(&[
        "jobs",
        "enqueue",
        "--kind",
        "Bad Kind",
        "--database-url",
        url,
    ])
    .await;
    assert!(!bad_kind.status.success());

    // what the operator did to the tenant's job is in its audit log
    let store = db.store().await;
    let tenant = store.find_tenant_by_name("acme").await.unwrap().unwrap();
    let log = store
        .tenant(tenant.id)
        .list_audit(
            siyu_domain::page::PageRequest::first(10),
            &siyu_store::AuditFilter {
                action: Some("job.".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = log
        .items
        .iter()
        .map(|e| (e.action.as_str(), e.actor.label.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("job.retried", "cli"),
            ("job.cancelled", "cli"),
            ("job.enqueued", "cli")
        ]
    );
}

/// `siyu serve` without SIYU_SECRET_KEY: on SQLite it makes a key file beside the
/// database (mode 0600) and reuses it after a restart, so connectors work on the
/// embedded default; on PostgreSQL creating a connector is refused naming the setting.
#[tokio::test]
async fn connectors_are_sealed_with_a_key_beside_sqlite_or_refused_on_postgres_without_one() {
    let db = TestDatabase::create().await;
    let url = db.url.as_str();
    siyu(&["migrate", "--database-url", url]).await;
    let out = siyu(&[
        "tenant",
        "create",
        "acme",
        "--admin-email",
        "boss@acme.example.com",
        "--admin-password",
        "password-123",
        "--database-url",
        url,
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = siyu(&[
        "token",
        "create",
        "--tenant",
        "acme",
        "--role",
        "admin",
        "--name",
        "t",
        "--database-url",
        url,
    ])
    .await;
    let token = last_line(&out);
    let connector = json!({"kind": "wecom", "name": "w", "config": {
        "corp_id": "ww1436e0e65a779aee", "secret": "s", "token": "t",
        "encoding_aes_key": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"}});
    let serve = || {
        let base = format!("127.0.0.1:{}", free_port());
        let child = Command::new(SIYU)
            .args(["serve", "--listen", &base, "--database-url", url])
            .env_remove("SIYU_SECRET_KEY")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        (child, format!("http://{base}"))
    };
    let http = reqwest::Client::new();
    let (child, base) = serve();
    wait_healthy(&base).await;
    let answer = http
        .post(format!("{base}/api/v1/connectors"))
        .bearer_auth(&token)
        .json(&connector)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let body: serde_json::Value = answer.json().await.unwrap();
    terminate(&child);
    if db.is_postgres() {
        assert_eq!(status, 409, "{body}");
        assert!(body.to_string().contains("SIYU_SECRET_KEY"), "{body}");
        return;
    }
    assert_eq!(status, 201, "{body}");
    let path = url.strip_prefix("sqlite://").unwrap();
    let key_path = format!("{}.key", path.split('?').next().unwrap());
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let key = std::fs::read_to_string(&key_path).unwrap();
    // a restart reuses the key: the connector's secrets still open (a change that keeps
    // the secret must open it)
    let (child, base) = serve();
    wait_healthy(&base).await;
    let id = body["id"].as_i64().unwrap();
    let changed = http
        .patch(format!("{base}/api/v1/connectors/{id}"))
        .bearer_auth(&token)
        .json(&json!({"name": "renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200, "{}", changed.text().await.unwrap());
    terminate(&child);
    assert_eq!(std::fs::read_to_string(&key_path).unwrap(), key);

    // the key file lost: a new key would open none of the sealed secrets, so the server
    // refuses to start and says why (and makes no file)
    std::fs::remove_file(&key_path).unwrap();
    let out = siyu(&["serve", "--listen", "127.0.0.1:0", "--database-url", url]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is missing") && stderr.contains("SIYU_SECRET_KEY"),
        "{stderr}"
    );
    assert!(std::fs::metadata(&key_path).is_err());
}
