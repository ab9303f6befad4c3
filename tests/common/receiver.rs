//! A real HTTP webhook receiver for tests: records every request, answers with a status the
//! test sets, can be slow, and can be stopped and started again on the same port.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Hit {
    pub path: String,
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub raw: String,
    pub body: Value,
}

#[derive(Default)]
struct Shared {
    hits: Mutex<Vec<Hit>>,
    status: AtomicU16,
    delay_ms: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// The receiver.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    server: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

async fn hook(
    State(s): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (axum::http::StatusCode, &'static str) {
    let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    s.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let delay = s.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let raw = String::from_utf8_lossy(&body).into_owned();
    s.hits.lock().unwrap().push(Hit {
        path: uri.path().to_owned(),
        id: h("webhook-id"),
        timestamp: h("webhook-timestamp"),
        signature: h("webhook-signature"),
        body: serde_json::from_str(&raw).unwrap_or(Value::Null),
        raw,
    });
    s.in_flight.fetch_sub(1, Ordering::SeqCst);
    let status = axum::http::StatusCode::from_u16(s.status.load(Ordering::SeqCst))
        .unwrap_or(axum::http::StatusCode::OK);
    (status, "thanks")
}

impl Receiver {
    /// A receiver on a free port, answering 200.
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let shared = Arc::new(Shared::default());
        shared.status.store(200, Ordering::SeqCst);
        let mut r = Receiver {
            addr: listener.local_addr().unwrap(),
            shared,
            server: None,
        };
        r.serve(listener);
        r
    }

    /// A port that nobody listens on yet (the receiver is down until [`Receiver::up`]).
    pub async fn down() -> Receiver {
        let mut r = Receiver::start().await;
        r.stop().await;
        r
    }

    fn serve(&mut self, listener: TcpListener) {
        let app = Router::new()
            .route("/{*path}", post(hook))
            .with_state(self.shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        self.server = Some((tx, handle));
    }

    /// Stops listening and closes its connections.
    pub async fn stop(&mut self) {
        if let Some((tx, handle)) = self.server.take() {
            let _ = tx.send(());
            let _ = tokio::time::timeout(Duration::from_secs(5), handle).await;
        }
    }

    /// Listens again on the same port.
    pub async fn up(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    /// The URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answer with this status from now on.
    pub fn answer(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// Take this long to answer.
    pub fn delay(&self, d: Duration) {
        self.shared
            .delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// Requests being handled now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// Most requests handled at once so far.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Everything received so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap().clone()
    }

    /// Requests to `path` so far.
    pub fn hits_on(&self, path: &str) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.path == path).collect()
    }

    /// Waits until `path` got at least `n` requests; panics after 10 s.
    pub async fn wait_for(&self, path: &str, n: usize) -> Vec<Hit> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let hits = self.hits_on(path);
            if hits.len() >= n {
                return hits;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} got {} of {n} requests: {:#?}",
                hits.len(),
                hits.iter().map(|h| &h.body["type"]).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Checks a request's Standard Webhooks signature against `secret` (`whsec_…`).
pub fn verify(secret: &str, hit: &Hit) -> bool {
    let engine = base64::engine::general_purpose::STANDARD;
    let key = engine
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", hit.id, hit.timestamp, hit.raw).as_bytes());
    let expected = format!("v1,{}", engine.encode(mac.finalize().into_bytes()));
    hit.signature.split(' ').any(|s| s == expected)
}
