//! Sessions across real gateway processes on one PostgreSQL database (and Redis): a live
//! peer's sessions are never taken; a killed owner's are connected again elsewhere, and the
//! messages it was sending all end sent, none failed.
//!
//! Needs `TEST_DATABASE_URL` (several processes share one database); skipped without it.

mod common;

use std::time::{Duration, Instant};

use common::{on_postgres, postgres_schema, process::Gateway, skipped};
use serde_json::{Value, json};

const LEASE: &str = "2s";
const HEARTBEAT: &str = "500ms";

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("WAGATE_SESSION_LEASE", LEASE),
        ("WAGATE_SESSION_HEARTBEAT", HEARTBEAT),
        ("WAGATE_SANDBOX_CONNECT_DELAY", "10ms"),
        ("WAGATE_SANDBOX_DELIVERED_AFTER", "20ms"),
        ("WAGATE_SANDBOX_READ_AFTER", "20ms"),
        ("WAGATE_DISPATCH_POLL_INTERVAL", "50ms"),
    ]
}

async fn session(gw: &Gateway, c: &reqwest::Client, token: &str, id: &str) -> Value {
    gw.get(c, &format!("/api/v1/whatsapp/{id}"), token).await["data"].clone()
}

/// Polls `f` every 50 ms for up to `within`; the first `Some`.
async fn until<T, F: std::future::Future<Output = Option<T>>>(
    within: Duration,
    mut f: impl FnMut() -> F,
) -> Option<T> {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if let Some(v) = f().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_owners_session_moves_to_a_survivor_and_its_messages_are_all_sent() {
    if !on_postgres() {
        skipped("failover: needs TEST_DATABASE_URL (several processes share one database)");
        return;
    }
    let db = postgres_schema(&std::env::var("TEST_DATABASE_URL").unwrap()).await;
    let redis = common::redis_url_or_skip("failover").await;
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let env = env();

    let mut a = Gateway::start("a", dir.path(), &db, redis.as_deref(), &env).await;
    let (status, reg) = a
        .post(
            &c,
            "/api/auth/register",
            "",
            json!({"email": "failover@example.com", "password": "password123", "name": "F"}),
        )
        .await;
    assert_eq!(status, 201, "{reg}");
    let token = reg["data"]["accessToken"].as_str().unwrap().to_owned();
    let (_, s) = a
        .post(&c, "/api/v1/whatsapp", &token, json!({"name": "line"}))
        .await;
    let id = s["data"]["id"].as_str().unwrap().to_owned();
    let (status, r) = a
        .post(
            &c,
            &format!("/api/v1/whatsapp/{id}/connect"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let (status, r) = a
        .post(
            &c,
            &format!("/api/v1/whatsapp/{id}/sandbox/scan"),
            &token,
            json!({"phoneNumber": "+14155550100"}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let s = session(&a, &c, &token, &id).await;
    assert_eq!(s["status"], "connected", "{s}");
    assert_eq!(s["ownerInstance"], "a", "{s}");

    // A second instance starts while the owner lives: it must not take the session. It runs
    // several heartbeats here, each able to claim: the window is three leases, longer than
    // the takeover measured below (asserted at the end).
    let b = Gateway::start("b", dir.path(), &db, redis.as_deref(), &env).await;
    let window = Duration::from_secs(6);
    let watched = Instant::now();
    while watched.elapsed() < window {
        let s = session(&b, &c, &token, &id).await;
        assert_eq!(
            s["ownerInstance"], "a",
            "a live owner lost its session: {s}"
        );
        assert_eq!(s["status"], "connected", "{s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 1,000 messages to 20 chats, queued through both instances, 16 at a time.
    use futures_util::StreamExt;
    let ids: Vec<String> = futures_util::stream::iter(0..1000)
        .map(|i| {
            let (gw, c, token, id) = (if i % 2 == 0 { &a } else { &b }, &c, &token, &id);
            async move {
                let to = format!("+1415555{:04}", 2000 + i % 20);
                let body = json!({"sessionId": id, "to": to, "text": format!("m{i}")});
                let (status, r) = gw.post(c, "/api/messages/send-text", token, body).await;
                assert!((200..300).contains(&status), "{status} {r}");
                r["data"]["id"].as_str().unwrap().to_owned()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert_eq!(ids.len(), 1000);
    // Kill the owner while it sends.
    until(Duration::from_secs(60), || {
        let (c, token) = (&c, &token);
        let b = &b;
        async move {
            let r = b.get(c, "/api/messages?status=queued&limit=1", token).await;
            (r["pagination"]["total"].as_u64().is_some_and(|n| n < 950)).then_some(())
        }
    })
    .await
    .expect("nothing was sent");
    a.kill9();
    let killed = Instant::now();

    let took_over = until(Duration::from_secs(60), || {
        let (c, token, id, b) = (&c, &token, &id, &b);
        async move {
            let s = session(b, c, token, id).await;
            (s["status"] == "connected" && s["ownerInstance"] == "b").then_some(killed.elapsed())
        }
    })
    .await
    .expect("the session was never connected on the survivor");
    assert!(
        took_over < window,
        "takeover took {took_over:?}, longer than the no-takeover window"
    );

    // Every message leaves the queue, none fails.
    let pending = until(Duration::from_secs(120), || {
        let (c, token, b) = (&c, &token, &b);
        async move {
            let q = b.get(c, "/api/messages?status=queued&limit=1", token).await;
            (q["pagination"]["total"].as_u64() == Some(0)).then_some(())
        }
    })
    .await;
    assert!(pending.is_some(), "messages stayed queued");
    let failed = b
        .get(&c, "/api/messages?status=failed&limit=5", &token)
        .await;
    assert_eq!(failed["pagination"]["total"], 0, "{failed}");
    for m in ids.iter().step_by(50) {
        let r = b.get(&c, &format!("/api/messages/{m}"), &token).await;
        let st = r["data"]["status"].as_str().unwrap_or("").to_owned();
        assert!(["sent", "delivered", "read"].contains(&st.as_str()), "{r}");
    }
    // Counted by the provider: the sandbox records each message id it accepted in the
    // session's device store, once per id on any instance; a second delivery of one id (two
    // connections sending it) would write the entry again, raising its version.
    use sea_orm::{ConnectionTrait, Database, Statement};
    let conn = Database::connect(db.as_str()).await.unwrap();
    let row = conn
        .query_one_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT COUNT(*) AS n, COALESCE(MAX(version), 0) AS v FROM device_keys \
             WHERE namespace = 'sandbox-sent'",
        ))
        .await
        .unwrap()
        .unwrap();
    let (sent, max_version): (i64, i64) =
        (row.try_get("", "n").unwrap(), row.try_get("", "v").unwrap());
    assert_eq!(sent, 1000, "every message was accepted by the provider");
    assert_eq!(max_version, 1, "no message was delivered twice");
    eprintln!("failover: takeover {took_over:?} after kill -9");
}
