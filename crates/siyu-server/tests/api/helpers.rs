//! `TestApp`: the real application on port 0 over a fresh database.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use siyu_domain::audit::Actor;
use siyu_domain::tenancy::{NewTenant, Tenant};
use siyu_server::{Application, ServerConfig};
use siyu_store::Store;
use siyu_store::testing::TestDatabase;

pub const PASSWORD: &str = "test-password-1";

pub struct TestApp {
    pub base: String,
    pub store: Store,
    pub tenant: Tenant,
    pub admin_email: String,
    /// An admin API token of `tenant`.
    pub admin_token: String,
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    // --- test-only job runner (imports are jobs). `siyu serve` starts the runner beside
    // the Application; until the Application starts it itself, tests start one here.
    _runner: siyu_runtime::RunnerHandle,
    // ---
    _db: TestDatabase,
}

/// A response: status, headers and the body as JSON (Null when empty or not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        self
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut ServerConfig)) -> TestApp {
        let db = TestDatabase::create().await;
        let store = db.store().await;
        let mut config = ServerConfig {
            listen: "127.0.0.1:0".into(),
            ..ServerConfig::default()
        };
        configure(&mut config);
        let app = Application::build(config, store.clone())
            .await
            .expect("server binds");
        let base = format!("http://{}", app.local_addr());
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stop.await;
        }));
        let (tenant, admin_email, admin_token) = create_tenant(&store, "acme").await;
        // --- test-only job runner (see the field): every kind of job, polling often
        let runner = siyu_runtime::Runner::new(store.clone(), "test-app")
            .handlers(siyu_runtime::job_handlers(&siyu_runtime::Services {
                store: store.clone(),
            }))
            .poll(std::time::Duration::from_millis(100))
            .start();
        // ---
        TestApp {
            base,
            store,
            tenant,
            admin_email,
            admin_token,
            http: reqwest::Client::new(),
            shutdown: Some(shutdown),
            server,
            _runner: runner,
            _db: db,
        }
    }

    /// Waits until every tracked event the server has answered for is applied to
    /// profiles (the ingest log is empty): tracking answers come once events are logged.
    pub async fn applied(&self) {
        let started = std::time::Instant::now();
        loop {
            if self.store.log_backlog().await.unwrap() == 0 {
                return;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "the ingest log was not applied within 30 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Asks the server to stop, as SIGTERM does: no new connections, in-flight requests
    /// finish.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Calls the API with a bearer token and an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.expect("request is sent")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Answer {
        self.call(Method::DELETE, path, token, None).await
    }

    /// A new API token of this tenant with the given role.
    pub async fn token_with_role(&self, role: &str) -> String {
        let scope = self.store.tenant(self.tenant.id);
        let role = scope.role_by_name(role).await.expect("role exists");
        scope
            .create_api_token(
                &format!("{} token", role.name),
                &role,
                None,
                None,
                &Actor::cli(),
            )
            .await
            .expect("token created")
            .1
    }

    /// A staff member of this tenant with a password, in the root unit.
    pub async fn staff_with_role(&self, email: &str, role: &str) -> i64 {
        let root = self.store.tenant(self.tenant.id).root_unit().await.unwrap();
        let created = self
            .post(
                "/api/v1/staff",
                &self.admin_token,
                serde_json::json!({"unit_id": root.id, "role": role, "email": email, "name": email,
                                   "password": PASSWORD, "data_scope": "tenant"}),
            )
            .await
            .expect(201);
        created.body["id"].as_i64().unwrap()
    }

    /// Signs in and returns a client that carries the session cookie.
    pub async fn login(&self, email: &str, password: &str) -> (reqwest::Client, Answer) {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let response = client
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        (client, answer(response).await)
    }
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

/// Creates a tenant with an admin (`admin@NAME.example.com`) and an admin API token.
pub async fn create_tenant(store: &Store, name: &str) -> (Tenant, String, String) {
    let email = format!("admin@{name}.example.com");
    let new = NewTenant::new(name, &email, PASSWORD).unwrap();
    let (tenant, _) = store.create_tenant(&new, &Actor::cli()).await.unwrap();
    let scope = store.tenant(tenant.id);
    let role = scope.role_by_name("admin").await.unwrap();
    let (_, token) = scope
        .create_api_token("admin token", &role, None, None, &Actor::cli())
        .await
        .unwrap();
    (tenant, email, token)
}
