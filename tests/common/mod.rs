//! Test harness: a real gateway on 127.0.0.1:0 with its own database.
//!
//! SQLite (a file in a temp dir) by default; with `TEST_DATABASE_URL` set, a fresh PostgreSQL
//! schema per test. `TEST_REDIS_URL` names the Redis used by Redis tests.
#![allow(dead_code)]

pub mod own_redis;
pub mod process;
pub mod receiver;

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use reqwest::{Method, StatusCode, header::HeaderMap};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use wagate::{
    clock::{Clock, ManualClock},
    config::Config,
    state::{AppState, Overrides},
};

/// A running gateway.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    pub cfg: Config,
    pub clock: ManualClock,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    background: tokio_util::sync::CancellationToken,
    dir: Arc<tempfile::TempDir>,
}

/// How to authenticate a request.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    Key(&'a str),
}

/// A response, read whole.
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

/// True when tests run against PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("TEST_DATABASE_URL").is_ok_and(|v| !v.is_empty())
}

/// A fresh PostgreSQL schema; the URL that selects it.
pub async fn postgres_schema(base: &str) -> String {
    let schema = format!("wt_{}", uuid::Uuid::new_v4().simple());
    let conn = Database::connect(base)
        .await
        .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}"));
    conn.execute_unprepared(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    conn.close().await.unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// Configuration for a new test app: temp data dir, own database.
pub async fn test_config(dir: &std::path::Path) -> Config {
    let mut cfg = Config::with_data_dir(dir);
    cfg.addr = "127.0.0.1:0".parse().unwrap();
    cfg.sandbox.connect_delay = std::time::Duration::from_millis(10);
    cfg.sandbox.delivered_after = std::time::Duration::from_millis(30);
    cfg.sandbox.read_after = std::time::Duration::from_millis(30);
    cfg.messaging.dispatch.poll_interval = std::time::Duration::from_millis(50);
    cfg.webhooks.allow_private = true;
    cfg.webhooks.poll_interval = std::time::Duration::from_millis(50);
    // A stop waits this long at most for sends a test provider never finishes.
    cfg.runtime.shutdown_grace = std::time::Duration::from_secs(2);
    // Tests make many requests as one caller; the rate-limit tests turn limiting back on.
    cfg.limits.rate_per_minute = 0;
    if let Ok(base) = std::env::var("TEST_DATABASE_URL")
        && !base.is_empty()
    {
        cfg.database_url = postgres_schema(&base).await.into();
        cfg.db_max_connections = 5;
    }
    cfg
}

impl TestApp {
    /// A gateway with default test configuration.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// A gateway whose configuration `f` may adjust.
    pub async fn spawn_with(f: impl FnOnce(&mut Config)) -> TestApp {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let mut cfg = test_config(dir.path()).await;
        f(&mut cfg);
        Self::start(cfg, dir, ManualClock::default()).await
    }

    /// Starts a gateway with exactly this configuration (e.g. a restart on the same data).
    pub async fn start(cfg: Config, dir: Arc<tempfile::TempDir>, clock: ManualClock) -> TestApp {
        Self::start_with(cfg, dir, clock, None).await
    }

    /// Like [`TestApp::start`], with replacement providers.
    pub async fn start_with(
        cfg: Config,
        dir: Arc<tempfile::TempDir>,
        clock: ManualClock,
        providers: Option<wagate::provider::Providers>,
    ) -> TestApp {
        let overrides = Overrides {
            clock: Some(Arc::new(clock.clone()) as Arc<dyn Clock>),
            providers,
            ..Overrides::default()
        };
        let background = tokio_util::sync::CancellationToken::new();
        let state = wagate::build_state(cfg.clone(), overrides, background.clone())
            .await
            .expect("build state");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(wagate::serve(state.clone(), listener, async move {
            let _ = rx.await;
        }));
        TestApp {
            addr,
            client: reqwest::Client::new(),
            state,
            cfg,
            clock,
            shutdown: Some(tx),
            handle: Some(handle),
            background,
            dir,
        }
    }

    /// Stops the server gracefully and returns what a restart needs.
    pub async fn stop(mut self) -> (Config, Arc<tempfile::TempDir>, ManualClock) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
        self.background.cancel();
        (self.cfg.clone(), self.dir.clone(), self.clock.clone())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a request with an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        req = match auth {
            Auth::None => req,
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::Key(k) => req.header("X-API-Key", k),
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        Resp::read(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, auth: Auth<'_>) -> Resp {
        self.call(Method::GET, path, auth, None).await
    }

    pub async fn post(&self, path: &str, auth: Auth<'_>, body: Value) -> Resp {
        self.call(Method::POST, path, auth, Some(body)).await
    }

    pub async fn delete(&self, path: &str, auth: Auth<'_>) -> Resp {
        self.call(Method::DELETE, path, auth, None).await
    }

    /// Registers a tenant owner; returns the `data` of the response.
    pub async fn register(&self, email: &str) -> Value {
        let r = self
            .post(
                "/api/auth/register",
                Auth::None,
                json!({"email": email, "password": "correct-horse-battery", "name": "Test User", "company": "Acme"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "register failed: {}", r.body);
        r.body["data"].clone()
    }

    /// Registers and returns the access token.
    pub async fn token(&self, email: &str) -> String {
        self.register(email).await["accessToken"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates an API key with a user token; returns the secret key.
    pub async fn api_key(&self, token: &str, name: &str) -> String {
        let r = self
            .post(
                "/api/external/api-keys",
                Auth::Bearer(token),
                json!({"name": name}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["data"]["key"].as_str().unwrap().to_owned()
    }

    /// Runs a GraphQL operation over HTTP.
    pub async fn graphql(&self, auth: Auth<'_>, query: &str, variables: Value) -> Value {
        let r = self
            .post(
                "/graphql",
                auth,
                json!({"query": query, "variables": variables}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.background.cancel();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Resp {
    pub async fn read(res: reqwest::Response) -> Resp {
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{status}: body is not JSON: {:?}",
                String::from_utf8_lossy(&bytes)
            )
        });
        Resp {
            status,
            headers,
            body,
        }
    }

    /// Asserts the documented error envelope with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.body["success"], false, "body: {}", self.body);
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "body: {}",
            self.body
        );
        assert!(
            self.headers
                .get("content-type")
                .is_some_and(|v| v.to_str().unwrap().starts_with("application/json")),
            "error bodies are JSON"
        );
    }
}

/// Says that a test is skipped where the test harness does not hide it: straight to standard
/// error (libtest captures only `print!`/`eprint!` output).
pub fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {why}");
}

/// The Redis URL for Redis tests. Under CI (`CI` set) a missing or unreachable Redis fails
/// the test; elsewhere the test is skipped with a notice.
pub async fn redis_url_or_skip(test: &str) -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    let reachable = match &url {
        Some(u) => match redis::Client::open(u.as_str()) {
            Ok(c) => c.get_multiplexed_async_connection().await.is_ok(),
            Err(_) => false,
        },
        None => false,
    };
    if reachable {
        return url;
    }
    if ci {
        panic!("{test}: Redis is required under CI but TEST_REDIS_URL={url:?} is not reachable");
    }
    skipped(&format!(
        "{test}: set TEST_REDIS_URL to a reachable Redis to run it"
    ));
    None
}

/// A GraphQL-over-WebSocket test client.
pub struct GqlWs {
    pub ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    /// Messages read while waiting for another operation's, in arrival order.
    stash: std::collections::VecDeque<Value>,
}

/// Why a connection_init was not acknowledged.
#[derive(Debug)]
pub enum InitRefused {
    /// The server closed the socket (graphql-transport-ws), with this reason.
    Closed(String),
    /// The server sent `connection_error` (legacy graphql-ws).
    Error(Value),
}

impl GqlWs {
    /// Connects with `protocol` (`graphql-transport-ws` or `graphql-ws`) and sends
    /// `connection_init` with `payload`; Ok once acknowledged.
    pub async fn connect(
        app: &TestApp,
        protocol: &str,
        payload: Value,
    ) -> Result<GqlWs, InitRefused> {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = format!("ws://{}/graphql/ws", app.addr)
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
        let (ws, resp) = tokio_tungstenite::connect_async(req)
            .await
            .expect("websocket upgrade");
        assert_eq!(resp.headers()["sec-websocket-protocol"], protocol);
        let mut c = GqlWs {
            ws,
            stash: Default::default(),
        };
        c.ws.send(tokio_tungstenite::tungstenite::Message::text(
            json!({"type": "connection_init", "payload": payload}).to_string(),
        ))
        .await
        .unwrap();
        loop {
            match c.next_raw().await {
                Some(Ok(v)) if v["type"] == "connection_ack" => return Ok(c),
                Some(Ok(v)) if v["type"] == "ka" => continue,
                Some(Ok(v)) if v["type"] == "connection_error" => {
                    return Err(InitRefused::Error(v));
                }
                Some(Ok(v)) => panic!("unexpected message before ack: {v}"),
                Some(Err(reason)) => return Err(InitRefused::Closed(reason)),
                None => return Err(InitRefused::Closed(String::new())),
            }
        }
    }

    /// Connects with `graphql-transport-ws`, authenticated by an access token.
    pub async fn with_token(app: &TestApp, token: &str) -> GqlWs {
        GqlWs::connect(
            app,
            "graphql-transport-ws",
            json!({"Authorization": format!("Bearer {token}")}),
        )
        .await
        .expect("ack")
    }

    /// The next JSON message (Err(reason) on a close frame), within 10 s.
    pub async fn next_raw(&mut self) -> Option<Result<Value, String>> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let msg = tokio::time::timeout(std::time::Duration::from_secs(10), self.ws.next())
                .await
                .expect("no websocket message within 10 s")?;
            match msg {
                Ok(Message::Text(t)) => return Some(Ok(serde_json::from_str(&t).unwrap())),
                Ok(Message::Close(frame)) => {
                    return Some(Err(frame.map(|f| f.reason.to_string()).unwrap_or_default()));
                }
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Ok(other) => panic!("unexpected frame {other:?}"),
                Err(e) => return Some(Err(e.to_string())),
            }
        }
    }

    /// The next JSON message, skipping keep-alives; panics on close.
    pub async fn next_json(&mut self) -> Value {
        loop {
            match self.next_raw().await {
                Some(Ok(v)) if v["type"] == "ka" || v["type"] == "ping" || v["type"] == "pong" => {
                    continue;
                }
                Some(Ok(v)) => return v,
                other => panic!("websocket ended: {other:?}"),
            }
        }
    }

    /// The next message of operation `id` (any type), keeping other operations' messages
    /// for their own readers: streams of one socket are not ordered relative to each other.
    pub async fn next_of(&mut self, id: &str) -> Value {
        if let Some(pos) = self.stash.iter().position(|m| m["id"] == id) {
            return self.stash.remove(pos).unwrap_or_default();
        }
        loop {
            let msg = self.next_json().await;
            if msg["id"] == id {
                return msg;
            }
            self.stash.push_back(msg);
        }
    }

    /// The next `next` payload's `data` for operation `id`.
    pub async fn next_data(&mut self, id: &str) -> Value {
        let msg = self.next_of(id).await;
        assert_eq!(msg["type"], "next", "{msg}");
        msg["payload"]["data"].clone()
    }

    /// Sends a raw JSON message.
    pub async fn send(&mut self, v: Value) {
        use futures_util::SinkExt;
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::text(v.to_string()))
            .await
            .unwrap();
    }

    /// Starts an operation with `graphql-transport-ws` framing.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}}))
            .await;
    }
}

impl TestApp {
    pub async fn patch(&self, path: &str, auth: Auth<'_>, body: Value) -> Resp {
        self.call(Method::PATCH, path, auth, Some(body)).await
    }

    /// POST without a body (like the documented connect/disconnect calls).
    pub async fn post_empty(&self, path: &str, auth: Auth<'_>) -> Resp {
        self.call(Method::POST, path, auth, None).await
    }

    /// Creates a session; returns its id.
    pub async fn create_session(&self, token: &str, name: &str) -> String {
        let r = self
            .post(
                "/api/v1/whatsapp",
                Auth::Bearer(token),
                json!({"name": name}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["data"]["id"].as_str().unwrap().to_owned()
    }

    /// `POST /api/v1/whatsapp/{id}/connect`, asserting a 200; its `data`.
    pub async fn connect(&self, token: &str, id: &str) -> Value {
        let r = self
            .post_empty(
                &format!("/api/v1/whatsapp/{id}/connect"),
                Auth::Bearer(token),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["data"].clone()
    }

    /// Connect + sandbox scan: returns the connected session.
    pub async fn connected_session(&self, token: &str, phone: &str) -> String {
        let id = self.create_session(token, "Connected line").await;
        let data = self.connect(token, &id).await;
        assert_eq!(data["status"], "qr_pending", "{data}");
        let r = self
            .post(
                &format!("/api/v1/whatsapp/{id}/sandbox/scan"),
                Auth::Bearer(token),
                json!({"phoneNumber": phone}),
            )
            .await;
        assert_eq!(r.body["data"]["status"], "connected", "{}", r.body);
        id
    }

    /// Waits until `n` local subscribers listen to the tenant's events.
    pub async fn wait_subscribers(&self, tenant: &str, n: usize) {
        let tenant = wagate::domain::ids::TenantId(uuid::Uuid::parse_str(tenant).unwrap());
        for _ in 0..200 {
            if self.state.bus.local_subscribers(tenant) >= n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("subscribers never reached {n}");
    }

    /// Polls a session's status until it is `want` (max 10 s).
    pub async fn wait_status(&self, token: &str, id: &str, want: &str) -> Value {
        for _ in 0..400 {
            let r = self
                .get(&format!("/api/v1/whatsapp/{id}"), Auth::Bearer(token))
                .await;
            if r.body["data"]["status"] == want {
                return r.body["data"].clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("session {id} never became {want}");
    }
}

impl TestApp {
    /// `POST /api/messages/send-text` with a bearer token.
    pub async fn send_text(&self, token: &str, session: &str, to: &str, text: &str) -> Resp {
        self.post(
            "/api/messages/send-text",
            Auth::Bearer(token),
            json!({"sessionId": session, "to": to, "text": text}),
        )
        .await
    }

    /// Sends a text and returns the new message id (asserting the documented shape).
    pub async fn queue_text(&self, token: &str, session: &str, to: &str, text: &str) -> String {
        let r = self.send_text(token, session, to, text).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["data"]["status"], "queued", "{}", r.body);
        r.body["data"]["id"].as_str().unwrap().to_owned()
    }

    /// Polls a message until `pred` holds on its `data` (max 10 s); returns it.
    pub async fn wait_message(
        &self,
        token: &str,
        id: &str,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let mut last = Value::Null;
        for _ in 0..400 {
            let r = self
                .get(&format!("/api/messages/{id}"), Auth::Bearer(token))
                .await;
            if pred(&r.body["data"]) {
                return r.body["data"].clone();
            }
            last = r.body;
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("message {id} never became {what}: {last}");
    }

    /// The body of an unauthenticated `GET` as text.
    pub async fn get_text(&self, path: &str) -> String {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `POST /api/contacts/import` with the CSV as a `text/csv` body.
    pub async fn post_csv(&self, token: &str, csv: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(self.url("/api/contacts/import"))
            .bearer_auth(token)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap()
    }

    /// Posts a multipart form.
    pub async fn multipart(
        &self,
        path: &str,
        auth: Auth<'_>,
        form: reqwest::multipart::Form,
    ) -> Resp {
        let mut req = self.client.post(self.url(path)).multipart(form);
        req = match auth {
            Auth::None => req,
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::Key(k) => req.header("X-API-Key", k),
        };
        Resp::read(req.send().await.unwrap()).await
    }
}

/// A tiny valid PNG (1×1, transparent).
pub const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

impl TestApp {
    /// A tenant named `name` with one disconnected sandbox session, straight through the
    /// repositories (for tests of the layers below HTTP).
    pub async fn tenant_with_session(
        &self,
        name: &str,
    ) -> (wagate::domain::ids::TenantId, uuid::Uuid) {
        let now = self.clock.now();
        let tenant = wagate::domain::ids::TenantId::new();
        wagate::repo::tenants::insert(&self.state.db, tenant, name, now)
            .await
            .unwrap();
        let session = wagate::repo::sessions::insert(
            &self.state.db,
            tenant,
            wagate::repo::sessions::NewSession {
                name: "line",
                provider: "sandbox",
                status: "disconnected",
                settings: None,
            },
            now,
        )
        .await
        .unwrap();
        (tenant, session.id)
    }
}

/// A pinned WhatsApp Web version, so the `web` client never asks the internet for one.
pub const WEB_VERSION: (u32, u32, u32) = (2, 3000, 1_023_456_789);

impl TestApp {
    /// A gateway that also offers the `web` provider, whose client talks to `ws_url`.
    pub async fn spawn_web(ws_url: String) -> TestApp {
        Self::spawn_with(|cfg| {
            cfg.providers = vec![
                wagate::domain::ProviderKind::Sandbox,
                wagate::domain::ProviderKind::Web,
            ];
            cfg.web.ws_url = ws_url;
            cfg.web.version = Some(WEB_VERSION);
        })
        .await
    }

    /// Registers `email` and creates a `web` session: (token, tenant, session id).
    pub async fn web_session(
        &self,
        email: &str,
    ) -> (String, wagate::domain::ids::TenantId, String) {
        let reg = self.register(email).await;
        let token = reg["accessToken"].as_str().unwrap().to_owned();
        let tenant: uuid::Uuid = reg["tenant"]["id"].as_str().unwrap().parse().unwrap();
        let r = self
            .post(
                "/api/v1/whatsapp",
                Auth::Bearer(&token),
                json!({"name": "Phone", "provider": "web"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["data"]["provider"], "web", "{}", r.body);
        let id = r.body["data"]["id"].as_str().unwrap().to_owned();
        (token, tenant.into(), id)
    }
}
