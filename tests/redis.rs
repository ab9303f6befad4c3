//! The Redis event bus: two instances share events; a Redis restart is survived.

mod common;

use std::time::Duration;

use common::{Auth, GqlWs, TestApp, own_redis::OwnRedis};
use reqwest::StatusCode;
use serde_json::{Value, json};

const STATUS_SUB: &str =
    "subscription SessionStatus { sessionStatus { sessionId status phoneNumber connected } }";
const QR_SUB: &str = "subscription SessionQr($id: ID!) { sessionQr(sessionId: $id) { code } }";

async fn next_for(ws: &mut GqlWs, id: &str) -> Value {
    ws.next_data(id).await
}

/// Starts a second instance on the same configuration (database, data dir, Redis).
async fn second_instance(a: &TestApp) -> TestApp {
    TestApp::start(
        a.cfg.clone(),
        std::sync::Arc::new(tempfile::tempdir().unwrap()),
        a.clock.clone(),
    )
    .await
}

#[tokio::test]
async fn two_instances_share_live_events() {
    let Some(url) = common::redis_url_or_skip("two_instances_share_live_events").await else {
        return;
    };
    let a = TestApp::spawn_with(|c| c.redis_url = Some(url.into())).await;
    let b = second_instance(&a).await;
    assert_eq!(
        a.get("/readyz", Auth::None).await.body["data"]["redis"],
        "ok"
    );
    assert_eq!(
        b.get("/readyz", Auth::None).await.body["data"]["redis"],
        "ok"
    );

    // One account, tokens valid on both (shared secret from the config/data dir).
    let reg = b.register("two@example.com").await;
    let token = reg["accessToken"].as_str().unwrap().to_owned();
    let tenant = reg["tenant"]["id"].as_str().unwrap().to_owned();
    let id = b.create_session(&token, "shared").await;

    let mut ws = GqlWs::connect(
        &a,
        "graphql-transport-ws",
        json!({"Authorization": format!("Bearer {token}")}),
    )
    .await
    .expect("ack on instance A");
    ws.subscribe("st", STATUS_SUB, json!({})).await;
    ws.subscribe("qr", QR_SUB, json!({"id": id})).await;
    a.wait_subscribers(&tenant, 2).await;

    // Everything below happens on instance B.
    let r = b
        .post_empty(
            &format!("/api/v1/whatsapp/{id}/connect"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.body["data"]["status"], "qr_pending", "{}", r.body);
    let code = b
        .get(&format!("/api/v1/whatsapp/{id}/qr"), Auth::Bearer(&token))
        .await
        .body["data"]["code"]
        .clone();
    b.post(
        &format!("/api/v1/whatsapp/{id}/sandbox/scan"),
        Auth::Bearer(&token),
        json!({"phoneNumber": "919800011122"}),
    )
    .await;
    let (mut statuses, mut codes) = (Vec::new(), Vec::new());
    while statuses.last().map(String::as_str) != Some("CONNECTED") {
        let msg = ws.next_json().await;
        assert_eq!(msg["type"], "next", "{msg}");
        let data = &msg["payload"]["data"];
        if msg["id"] == "qr" {
            codes.push(data["sessionQr"]["code"].clone());
        } else {
            let s = &data["sessionStatus"];
            assert_eq!(s["sessionId"], id.as_str());
            statuses.push(s["status"].as_str().unwrap().to_owned());
            if s["status"] == "CONNECTED" {
                assert_eq!(s["phoneNumber"], "919800011122");
            }
        }
    }
    assert_eq!(statuses, ["CONNECTING", "QR_PENDING", "CONNECTED"]);
    assert_eq!(codes, [code], "A's subscriber got B's QR code");
    // Instance A reads the same state.
    let r = a
        .get(
            &format!("/api/v1/whatsapp/{id}/status"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.body["data"]["connected"], true);

    // Message events cross instances too: an inbound message and a send on B reach A.
    ws.subscribe(
        "msg",
        "subscription MessageEvents { messageEvents { type message { id status text } } }",
        json!({}),
    )
    .await;
    a.wait_subscribers(&tenant, 3).await;
    b.post(
        &format!("/api/v1/whatsapp/{id}/sandbox/inbound"),
        Auth::Bearer(&token),
        json!({"from": "919876543210", "text": "via redis"}),
    )
    .await;
    let ev = next_for(&mut ws, "msg").await["messageEvents"].clone();
    assert_eq!(ev["type"], "RECEIVED");
    assert_eq!(ev["message"]["text"], "via redis");
    let sent = b.queue_text(&token, &id, "919876543210", "hello").await;
    let ev = next_for(&mut ws, "msg").await["messageEvents"].clone();
    assert_eq!(ev["message"]["id"], sent.as_str());
    assert_eq!(ev["message"]["status"], "SENT");
}

async fn wait_redis_subscribed(app: &TestApp) {
    for _ in 0..300 {
        if app.state.bus.redis_status().is_some_and(|s| s.subscribed) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the event bus did not resubscribe to Redis");
}

#[tokio::test]
async fn survives_a_redis_restart() {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Some(mut redis) = OwnRedis::start(port) else {
        assert!(!ci, "redis-server is required under CI");
        common::skipped("survives_a_redis_restart: no redis-server binary");
        return;
    };
    redis.wait_up().await;
    let a = TestApp::spawn_with(|c| c.redis_url = Some(redis.url().into())).await;
    let b = second_instance(&a).await;
    let reg = a.register("restart-redis@example.com").await;
    let token = reg["accessToken"].as_str().unwrap().to_owned();
    let tenant = reg["tenant"]["id"].as_str().unwrap().to_owned();
    let mut ws = GqlWs::connect(
        &a,
        "graphql-transport-ws",
        json!({"Authorization": format!("Bearer {token}")}),
    )
    .await
    .expect("ack");
    ws.subscribe("st", STATUS_SUB, json!({})).await;
    a.wait_subscribers(&tenant, 1).await;

    // Redis goes away: the API keeps working, readiness says so, local events still flow.
    redis.kill();
    let r = a.get("/readyz", Auth::None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body["data"]["redis"], "down");
    let id = a.create_session(&token, "during outage").await;
    let r = a
        .post_empty(
            &format!("/api/v1/whatsapp/{id}/connect"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        next_for(&mut ws, "st").await["sessionStatus"]["status"],
        "CONNECTING"
    );

    // Redis comes back on the same address: both instances reconnect by themselves.
    let _redis = {
        let r = OwnRedis::start(port).expect("restart redis-server");
        r.wait_up().await;
        r
    };
    wait_redis_subscribed(&a).await;
    wait_redis_subscribed(&b).await;
    let r = a.get("/readyz", Auth::None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // An event caused on B reaches A's subscriber, so it went through Redis.
    let other = b.create_session(&token, "after outage").await;
    b.post_empty(
        &format!("/api/v1/whatsapp/{other}/connect"),
        Auth::Bearer(&token),
    )
    .await;
    loop {
        let s = next_for(&mut ws, "st").await["sessionStatus"].clone();
        if s["sessionId"] == other.as_str() {
            assert_eq!(s["status"], "CONNECTING");
            break;
        }
    }
}
