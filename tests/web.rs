//! The `web` provider (WhatsApp Web through `whatsapp-rust`) against endpoints that are not
//! WhatsApp: a refused port and a server that closes every connection. A session keeps
//! retrying with growing backoff, says why, keeps its queued messages queued, and a logout
//! wipes the keys the client generated.

mod common;

use std::time::{Duration, Instant};

use common::{Auth, TestApp};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::Value;
use uuid::Uuid;
use wagate::{
    provider::{store::DeviceStore, web::store::ns},
    service::device_store::DbDeviceStore,
};

/// A port nothing listens on.
fn refused_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("ws://{}/ws/chat", l.local_addr().unwrap())
}

/// A server that accepts connections and closes them at once.
async fn closing_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = l.accept().await {
            drop(socket);
        }
    });
    format!("ws://{addr}/ws/chat")
}

async fn session(app: &TestApp, token: &str, id: &str) -> Value {
    let r = app
        .get(&format!("/api/v1/whatsapp/{id}"), Auth::Bearer(token))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["data"].clone()
}

/// Polls until the session reports retry `n` (max 30 s); returns it and when it was seen.
async fn wait_attempt(app: &TestApp, token: &str, id: &str, n: i64) -> (Value, Instant) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = session(app, token, id).await;
        if s["reconnectAttempt"].as_i64().unwrap_or(0) >= n {
            return (s, Instant::now());
        }
        assert!(Instant::now() < deadline, "never reached retry {n}: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Marks the session as linked to `phone` before, as a session paired in an earlier run.
async fn mark_paired(app: &TestApp, id: &str, phone: &str) {
    entity::wa_session::Entity::update_many()
        .col_expr(
            entity::wa_session::Column::PhoneNumber,
            Expr::value(phone.to_owned()),
        )
        .filter(entity::wa_session::Column::Id.eq(id.parse::<Uuid>().unwrap()))
        .exec(&app.state.db)
        .await
        .unwrap();
}

async fn unreachable_whatsapp_is_retried_with_growing_backoff(ws_url: String) {
    let app = TestApp::spawn_web(ws_url).await;
    let (token, _, id) = app.web_session("unreachable@example.com").await;
    mark_paired(&app, &id, "14155550177").await;
    app.connect(&token, &id).await;

    let (s1, t1) = wait_attempt(&app, &token, &id, 1).await;
    assert_eq!(s1["status"], "connecting", "{s1}");
    let why = s1["lastError"].as_str().unwrap_or_default();
    assert!(why.starts_with("Cannot reach WhatsApp Web"), "{s1}");

    // A send meanwhile is accepted and waits, uncounted.
    let msg = app
        .queue_text(&token, &id, "+919876543210", "while away")
        .await;

    let (_, t2) = wait_attempt(&app, &token, &id, 2).await;
    let (s3, t3) = wait_attempt(&app, &token, &id, 3).await;
    assert_eq!(s3["status"], "connecting", "{s3}");
    assert_eq!(
        s3["phoneNumber"], "14155550177",
        "the pairing is kept: {s3}"
    );
    // 1 s, then 2 s (each with up to 20 % jitter): the second wait is the longer one.
    let (first, second) = (t2 - t1, t3 - t2);
    assert!(first >= Duration::from_millis(900), "{first:?}");
    assert!(second >= Duration::from_millis(1900), "{second:?}");
    assert!(second > first, "{first:?} then {second:?}");

    let m = app
        .get(&format!("/api/messages/{msg}"), Auth::Bearer(&token))
        .await;
    assert_eq!(m.body["data"]["status"], "queued", "{}", m.body);
    assert_eq!(m.body["data"]["attempts"], 0, "{}", m.body);

    // Disconnecting stops the retries for good.
    let r = app
        .post_empty(
            &format!("/api/v1/whatsapp/{id}/disconnect"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s = app.wait_status(&token, &id, "disconnected").await;
    assert_eq!(s["reconnectAttempt"], 0, "{s}");
}

#[tokio::test]
async fn a_refused_websocket_is_retried_with_growing_backoff_and_sends_wait() {
    unreachable_whatsapp_is_retried_with_growing_backoff(refused_url()).await;
}

#[tokio::test]
async fn a_server_that_closes_is_retried_with_growing_backoff_and_sends_wait() {
    unreachable_whatsapp_is_retried_with_growing_backoff(closing_url().await).await;
}

#[tokio::test]
async fn a_logout_wipes_the_device_keys_the_client_made() {
    let app = TestApp::spawn_web(refused_url()).await;
    let (token, tenant, id) = app.web_session("wipe@example.com").await;
    let store = DbDeviceStore::for_session(&app.state, tenant, id.parse().unwrap());
    assert!(store.list(ns::DEVICE).await.unwrap().is_empty());
    mark_paired(&app, &id, "14155550178").await;
    app.connect(&token, &id).await;
    // The client creates its identity (noise and identity keys, registration id) in our
    // store before it connects.
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.list(ns::DEVICE).await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the client stored no device");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_attempt(&app, &token, &id, 1).await;

    let r = app
        .post_empty(
            &format!("/api/v1/whatsapp/{id}/logout"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s = session(&app, &token, &id).await;
    assert_eq!(s["status"], "logged_out", "{s}");
    assert!(s["phoneNumber"].is_null(), "{s}");
    for ns in [ns::DEVICE, ns::PREKEY, ns::SIGNED_PREKEY, ns::IDENTITY] {
        assert!(
            store.list(ns).await.unwrap().is_empty(),
            "{ns} still holds keys"
        );
    }
}
