//! A `web` session moves to another instance when its owner is killed: two real gateway
//! processes on one PostgreSQL database, a fake WhatsApp Web server in the test. The survivor
//! opens the session's WhatsApp connection itself, with the device identity the first owner
//! created and stored in the database (same noise key in its QR code), and shows the QR codes.
//!
//! Needs `TEST_DATABASE_URL` (several processes share one database) and the `fake-whatsapp`
//! feature (`cargo test --all-features --test web_failover`).

mod common;
#[path = "common/fake_wa/mod.rs"]
mod fake_wa;

use std::time::{Duration, Instant};

use common::{WEB_VERSION, on_postgres, postgres_schema, process::Gateway, skipped};
use fake_wa::{FakeWhatsApp, Seen};
use serde_json::{Value, json};

/// What a gateway process needs to offer `web` sessions against the fake.
fn env(ws_url: &str) -> Vec<(&'static str, String)> {
    let (a, b, c) = WEB_VERSION;
    vec![
        ("WAGATE_SESSION_LEASE", "2s".into()),
        ("WAGATE_SESSION_HEARTBEAT", "500ms".into()),
        ("WAGATE_PROVIDERS", "sandbox,web".into()),
        ("WAGATE_WEB_WS_URL", ws_url.into()),
        ("WAGATE_WEB_VERSION", format!("{a}.{b}.{c}")),
    ]
}

/// Polls the session's QR code on `gw` until one is pending (max `within`).
async fn pending_qr(
    gw: &Gateway,
    c: &reqwest::Client,
    token: &str,
    id: &str,
    within: Duration,
) -> Value {
    let end = Instant::now() + within;
    loop {
        let r = gw.get(c, &format!("/api/v1/whatsapp/{id}/qr"), token).await;
        if r["data"]["code"].is_string() {
            return r["data"].clone();
        }
        assert!(Instant::now() < end, "no QR code on {}: {r}", gw.instance);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The noise key a QR code carries (its second part).
fn noise_key(qr: &Value) -> String {
    qr["code"]
        .as_str()
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_owners_web_session_connects_again_on_a_survivor_with_the_same_identity() {
    if !on_postgres() {
        skipped("web failover: needs TEST_DATABASE_URL (several processes share one database)");
        return;
    }
    let db = postgres_schema(&std::env::var("TEST_DATABASE_URL").unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let mut wa = FakeWhatsApp::start().await;
    let owned = env(&wa.url());
    let env: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let mut a = Gateway::start("a", dir.path(), &db, None, &env).await;
    let (status, reg) = a
        .post(
            &c,
            "/api/auth/register",
            "",
            json!({"email": "web-failover@example.com", "password": "password123", "name": "W"}),
        )
        .await;
    assert_eq!(status, 201, "{reg}");
    let token = reg["data"]["accessToken"].as_str().unwrap().to_owned();
    let (status, s) = a
        .post(
            &c,
            "/api/v1/whatsapp",
            &token,
            json!({"name": "phone", "provider": "web"}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
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

    // Instance a holds the WhatsApp connection and shows its QR code.
    let first = wa
        .wait_for("a's handshake", Duration::from_secs(20), |s| match s {
            Seen::Handshake { conn, .. } => Some(conn),
            _ => None,
        })
        .await;
    let qr_a = pending_qr(&a, &c, &token, &id, Duration::from_secs(10)).await;
    let s = a.get(&c, &format!("/api/v1/whatsapp/{id}"), &token).await;
    assert_eq!(s["data"]["ownerInstance"], "a", "{s}");

    // b starts, a is killed: no shutdown code runs, its lease lapses.
    let b = Gateway::start("b", dir.path(), &db, None, &env).await;
    a.kill9();
    let killed = Instant::now();

    // b opens a new WhatsApp connection for the session and shows QR codes again.
    let second = wa
        .wait_for("b's handshake", Duration::from_secs(30), |s| match s {
            Seen::Handshake { conn, .. } if conn != first => Some(conn),
            _ => None,
        })
        .await;
    assert!(second > first);
    let qr_b = pending_qr(&b, &c, &token, &id, Duration::from_secs(10)).await;
    let took = killed.elapsed();
    let s = b.get(&c, &format!("/api/v1/whatsapp/{id}"), &token).await;
    assert_eq!(s["data"]["ownerInstance"], "b", "{s}");
    assert_eq!(s["data"]["status"], "qr_pending", "{s}");
    assert!(took < Duration::from_secs(10), "took over in {took:?}");
    // The same device identity, read from the database: keys follow the session.
    assert_eq!(noise_key(&qr_b), noise_key(&qr_a));
}
