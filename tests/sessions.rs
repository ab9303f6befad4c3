//! Sessions over REST: documented shapes, the lifecycle and its conflicts, isolation, restarts.

mod common;

use std::sync::Arc;

use common::{Auth, TestApp};
use reqwest::StatusCode;
use serde_json::json;
use wagate::provider::{
    Capabilities, Connection, OutboundMessage, Provider, ProviderError, ProviderEvent,
    ProviderKind, Providers, SendError, SentMessage, SessionContext,
};

#[tokio::test]
async fn shapes_match_the_documented_examples() {
    let app = TestApp::spawn().await;
    let token = app.token("shapes@example.com").await;
    let r = app
        .post(
            "/api/v1/whatsapp",
            Auth::Bearer(&token),
            json!({"name": "Support Line"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["success"], true);
    let d = &r.body["data"];
    assert!(uuid::Uuid::parse_str(d["id"].as_str().unwrap()).is_ok());
    assert_eq!(d["name"], "Support Line");
    assert_eq!(d["status"], "disconnected");
    assert_eq!(d["phoneNumber"], serde_json::Value::Null);
    assert_eq!(d["provider"], "sandbox");
    let id = d["id"].as_str().unwrap().to_owned();

    let r = app.get("/api/v1/whatsapp", Auth::Bearer(&token)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["success"], true);
    let item = &r.body["data"][0];
    assert_eq!(item["id"], id.as_str());
    assert_eq!(item["name"], "Support Line");
    assert_eq!(item["status"], "disconnected");
    assert_eq!(item["connected"], false);
    assert_eq!(
        r.body["pagination"],
        json!({"page": 1, "limit": 20, "total": 1, "totalPages": 1})
    );

    let r = app
        .post_empty(
            &format!("/api/v1/whatsapp/{id}/connect"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"success": true, "data": {"status": "qr_pending", "message": "Scan QR code in dashboard"}})
    );

    let r = app
        .get(&format!("/api/v1/whatsapp/{id}/qr"), Auth::Bearer(&token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let q = &r.body["data"];
    assert!(q["code"].as_str().unwrap().starts_with("2@"));
    assert_eq!(q["code"].as_str().unwrap().split(',').count(), 4);
    assert!(q["svg"].as_str().unwrap().contains("<svg"));
    assert!(
        q["png"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    let expires = chrono::DateTime::parse_from_rfc3339(q["expiresAt"].as_str().unwrap()).unwrap();
    let ttl = expires
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!((50..=61).contains(&ttl), "first QR lives 60 s, got {ttl}");

    let r = app
        .post(
            &format!("/api/v1/whatsapp/{id}/sandbox/scan"),
            Auth::Bearer(&token),
            json!({"phoneNumber": "+91 98765 43210"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["status"], "connected");

    let r = app
        .get(
            &format!("/api/v1/whatsapp/{id}/status"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"success": true, "data": {"id": id, "status": "connected", "phoneNumber": "919876543210", "connected": true}})
    );
    app.get(&format!("/api/v1/whatsapp/{id}/qr"), Auth::Bearer(&token))
        .await
        .assert_error(404, "NOT_FOUND");

    let r = app
        .post_empty(
            &format!("/api/v1/whatsapp/{id}/disconnect"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"success": true, "message": "Session disconnected"})
    );

    // The API-key list.
    let key = app.api_key(&token, "sessions").await;
    let r = app.get("/api/external/sessions", Auth::Key(&key)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["data"][0]["id"], id.as_str());
    assert_eq!(r.body["data"][0]["status"], "disconnected");
    app.get("/api/external/sessions", Auth::Bearer(&token))
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.get("/api/v1/whatsapp", Auth::Key(&key))
        .await
        .assert_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn lifecycle_and_every_conflict() {
    let app = TestApp::spawn().await;
    let token = app.token("life@example.com").await;
    let t = Auth::Bearer(&token);
    let id = app.create_session(&token, "Life").await;
    let path = |action: &str| format!("/api/v1/whatsapp/{id}/{action}");

    // From disconnected (never paired).
    app.post_empty(&path("disconnect"), t)
        .await
        .assert_error(409, "CONFLICT");
    app.post_empty(&path("logout"), t)
        .await
        .assert_error(409, "CONFLICT");
    app.post(&path("sandbox/scan"), t, json!({}))
        .await
        .assert_error(409, "CONFLICT");
    app.get(&path("qr"), t).await.assert_error(404, "NOT_FOUND");

    // qr_pending.
    app.post_empty(&path("connect"), t).await;
    app.post_empty(&path("connect"), t)
        .await
        .assert_error(409, "CONFLICT");

    // connected.
    let r = app.post_empty(&path("sandbox/scan"), t).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "a scan body is optional: {}",
        r.body
    );
    let phone = r.body["data"]["phoneNumber"].as_str().unwrap().to_owned();
    assert!(phone.starts_with("919") && phone.len() == 12, "{phone}");
    app.post_empty(&path("connect"), t)
        .await
        .assert_error(409, "CONFLICT");
    app.post(&path("sandbox/scan"), t, json!({}))
        .await
        .assert_error(409, "CONFLICT");

    // disconnect keeps the pairing: connecting again needs no QR.
    assert_eq!(
        app.post_empty(&path("disconnect"), t).await.status,
        StatusCode::OK
    );
    let s = app.get(&path("status"), t).await.body["data"].clone();
    assert_eq!(s["status"], "disconnected");
    assert_eq!(s["connected"], false);
    app.post_empty(&path("disconnect"), t)
        .await
        .assert_error(409, "CONFLICT");
    let r = app.post_empty(&path("connect"), t).await;
    assert_eq!(
        r.body["data"],
        json!({"status": "connected", "message": "Session connected"}),
        "{}",
        r.body
    );
    assert_eq!(
        app.get(&path("status"), t).await.body["data"]["phoneNumber"],
        phone.as_str()
    );

    // logout forgets it: the next connect shows a QR again.
    let r = app.post_empty(&path("logout"), t).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["message"], "Session logged out");
    assert_eq!(r.body["data"]["status"], "logged_out");
    assert_eq!(r.body["data"]["phoneNumber"], serde_json::Value::Null);
    app.post_empty(&path("logout"), t)
        .await
        .assert_error(409, "CONFLICT");
    app.post_empty(&path("disconnect"), t)
        .await
        .assert_error(409, "CONFLICT");
    let r = app.post_empty(&path("connect"), t).await;
    assert_eq!(r.body["data"]["status"], "qr_pending");

    // disconnect from qr_pending, then rename and delete.
    assert_eq!(
        app.post_empty(&path("disconnect"), t).await.status,
        StatusCode::OK
    );
    app.get(&path("qr"), t).await.assert_error(404, "NOT_FOUND");
    let r = app
        .patch(
            &format!("/api/v1/whatsapp/{id}"),
            t,
            json!({"name": "Renamed"}),
        )
        .await;
    assert_eq!(r.body["data"]["name"], "Renamed");
    let r = app.delete(&format!("/api/v1/whatsapp/{id}"), t).await;
    assert_eq!(
        r.body,
        json!({"success": true, "message": "Session deleted"})
    );
    app.get(&format!("/api/v1/whatsapp/{id}"), t)
        .await
        .assert_error(404, "NOT_FOUND");
    app.delete(&format!("/api/v1/whatsapp/{id}"), t)
        .await
        .assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn bad_input_is_a_validation_error() {
    let app = TestApp::spawn().await;
    let token = app.token("badinput@example.com").await;
    let t = Auth::Bearer(&token);
    let r = app.post("/api/v1/whatsapp", t, json!({"name": "  "})).await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(r.body["errors"]["name"].is_string());
    let r = app.post("/api/v1/whatsapp", t, json!({})).await;
    assert!(r.body["errors"]["name"].is_string());
    let r = app
        .post(
            "/api/v1/whatsapp",
            t,
            json!({"name": "x", "provider": "telegram"}),
        )
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(r.body["errors"]["provider"].is_string(), "{}", r.body);
    let r = app
        .post(
            "/api/v1/whatsapp",
            t,
            json!({"name": "x", "provider": "web"}),
        )
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(
        r.body["errors"]["provider"]
            .as_str()
            .unwrap()
            .contains("not available")
    );

    let id = app.create_session(&token, "v").await;
    app.post_empty(&format!("/api/v1/whatsapp/{id}/connect"), t)
        .await;
    let r = app
        .post(
            &format!("/api/v1/whatsapp/{id}/sandbox/scan"),
            t,
            json!({"phoneNumber": "abc"}),
        )
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert_eq!(
        r.body["errors"]["phoneNumber"],
        "Valid phone number is required"
    );
    let r = app
        .patch(&format!("/api/v1/whatsapp/{id}"), t, json!({"name": ""}))
        .await;
    r.assert_error(400, "VALIDATION_ERROR");

    for (query, field) in [
        ("page=0", "page"),
        ("limit=500", "limit"),
        ("page=abc", "page"),
        ("limit=-1", "limit"),
    ] {
        let r = app.get(&format!("/api/v1/whatsapp?{query}"), t).await;
        r.assert_error(400, "VALIDATION_ERROR");
        assert!(r.body["errors"][field].is_string(), "{query}: {}", r.body);
    }
    app.get("/api/v1/whatsapp/not-a-uuid", t)
        .await
        .assert_error(400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn pagination_is_stable_and_complete() {
    let app = TestApp::spawn().await;
    let token = app.token("pages@example.com").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.create_session(&token, &format!("s{i}")).await);
    }
    let mut seen = Vec::new();
    for page in 1..=3 {
        let r = app
            .get(
                &format!("/api/v1/whatsapp?page={page}&limit=2"),
                Auth::Bearer(&token),
            )
            .await;
        assert_eq!(
            r.body["pagination"],
            json!({"page": page, "limit": 2, "total": 5, "totalPages": 3})
        );
        for s in r.body["data"].as_array().unwrap() {
            seen.push(s["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(seen, ids, "oldest first, each exactly once");
}

#[tokio::test]
async fn another_tenants_session_is_not_found_everywhere() {
    let app = TestApp::spawn().await;
    let a = app.token("owner-a@example.com").await;
    let b = app.token("owner-b@example.com").await;
    let id = app.create_session(&a, "A's line").await;
    app.post_empty(&format!("/api/v1/whatsapp/{id}/connect"), Auth::Bearer(&a))
        .await;
    let tb = Auth::Bearer(&b);
    let base = format!("/api/v1/whatsapp/{id}");
    app.get(&base, tb).await.assert_error(404, "NOT_FOUND");
    app.patch(&base, tb, json!({"name": "stolen"}))
        .await
        .assert_error(404, "NOT_FOUND");
    for action in ["connect", "disconnect", "logout", "sandbox/scan"] {
        app.post_empty(&format!("{base}/{action}"), tb)
            .await
            .assert_error(404, "NOT_FOUND");
    }
    for action in ["status", "qr"] {
        app.get(&format!("{base}/{action}"), tb)
            .await
            .assert_error(404, "NOT_FOUND");
    }
    app.delete(&base, tb).await.assert_error(404, "NOT_FOUND");
    let r = app.get("/api/v1/whatsapp", tb).await;
    assert_eq!(r.body["data"], json!([]));
    assert_eq!(r.body["pagination"]["total"], 0);
    let key_b = app.api_key(&b, "b").await;
    assert_eq!(
        app.get("/api/external/sessions", Auth::Key(&key_b))
            .await
            .body["data"],
        json!([])
    );
    // Untouched for A.
    let r = app.get(&base, Auth::Bearer(&a)).await;
    assert_eq!(r.body["data"]["status"], "qr_pending");
    assert_eq!(r.body["data"]["name"], "A's line");
}

#[tokio::test]
async fn qr_codes_rotate_then_give_up() {
    let app = TestApp::spawn_with(|c| {
        c.sandbox.qr_first_ttl = std::time::Duration::from_millis(500);
        c.sandbox.qr_ttl = std::time::Duration::from_millis(500);
        c.sandbox.qr_rotations = 3;
    })
    .await;
    let token = app.token("rotate-qr@example.com").await;
    let id = app.create_session(&token, "rot").await;
    let qr_path = format!("/api/v1/whatsapp/{id}/qr");
    app.post_empty(
        &format!("/api/v1/whatsapp/{id}/connect"),
        Auth::Bearer(&token),
    )
    .await;
    let first = app.get(&qr_path, Auth::Bearer(&token)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let first = first.body["data"]["code"].clone();
    // A different code replaces it while the session keeps waiting for a scan.
    let mut rotated = false;
    for _ in 0..200 {
        let r = app.get(&qr_path, Auth::Bearer(&token)).await;
        if r.status == StatusCode::OK && r.body["data"]["code"] != first {
            rotated = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(rotated, "the QR code never rotated");
    let s = app.wait_status(&token, &id, "disconnected").await;
    assert_eq!(s["lastError"], "QR code was not scanned in time");
    app.get(&qr_path, Auth::Bearer(&token))
        .await
        .assert_error(404, "NOT_FOUND");
    // And it can be connected again.
    let r = app
        .post_empty(
            &format!("/api/v1/whatsapp/{id}/connect"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.body["data"]["status"], "qr_pending");
}

#[tokio::test]
async fn sessions_are_taken_over_after_a_restart_without_a_new_qr() {
    let app = TestApp::spawn().await;
    let token = app.token("survive@example.com").await;
    let connected = app.connected_session(&token, "+14155550123").await;
    let pending = app.create_session(&token, "pending at shutdown").await;
    app.post_empty(
        &format!("/api/v1/whatsapp/{pending}/connect"),
        Auth::Bearer(&token),
    )
    .await;

    let qr_before = app
        .get(
            &format!("/api/v1/whatsapp/{pending}/qr"),
            Auth::Bearer(&token),
        )
        .await
        .body["data"]["code"]
        .clone();
    assert!(qr_before.is_string());

    let (cfg, dir, clock) = app.stop().await;
    // The pending QR has long expired by the time the gateway is back.
    clock.advance(chrono::Duration::minutes(5));
    let app = TestApp::start(cfg, dir, clock).await;
    let me = app.state.cfg.runtime.instance_id.clone();
    // The stopped instance handed its sessions back; this one takes them over: the paired
    // one reconnects with its pairing, the pending one shows a new QR code.
    let id = uuid::Uuid::parse_str(&connected).unwrap();
    for _ in 0..500 {
        if app.state.runtime.is_running(id) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(app.state.runtime.is_running(id));
    let s = app.wait_status(&token, &connected, "connected").await;
    assert_eq!(s["phoneNumber"], "14155550123");
    let s = app
        .get(
            &format!("/api/v1/whatsapp/{connected}"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(s.body["data"]["ownerInstance"], me.as_str(), "{}", s.body);
    app.wait_status(&token, &pending, "qr_pending").await;
    let qr_after = app
        .get(
            &format!("/api/v1/whatsapp/{pending}/qr"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(qr_after.status, StatusCode::OK, "{}", qr_after.body);
    assert_ne!(qr_after.body["data"]["code"], qr_before);
    // The restored session disconnects and reconnects without a QR.
    app.post_empty(
        &format!("/api/v1/whatsapp/{connected}/disconnect"),
        Auth::Bearer(&token),
    )
    .await;
    let r = app
        .post_empty(
            &format!("/api/v1/whatsapp/{connected}/connect"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.body["data"]["status"], "connected");
}

/// A provider that refuses to connect, or accepts and then reports a failure.
struct Broken {
    refuse: bool,
}

/// The connection `Broken` hands out before it reports the failure.
struct BrokenConnection;

#[async_trait::async_trait]
impl Connection for BrokenConnection {
    async fn send(&self, _msg: OutboundMessage) -> Result<SentMessage, SendError> {
        Err(SendError::Transient("not connected".into()))
    }
    async fn logout(&self) -> Result<(), ProviderError> {
        Ok(())
    }
    async fn close(&self) {}
}

#[async_trait::async_trait]
impl Provider for Broken {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Sandbox
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    async fn start(&self, ctx: SessionContext) -> Result<Arc<dyn Connection>, ProviderError> {
        if self.refuse {
            return Err(ProviderError::Unavailable(
                "upstream refused the connection".into(),
            ));
        }
        tokio::spawn(async move {
            ctx.events
                .report(ProviderEvent::Failed {
                    error: "device banned".into(),
                })
                .await
        });
        Ok(Arc::new(BrokenConnection))
    }
}

#[tokio::test]
async fn provider_failures_are_502_and_failed() {
    for refuse in [true, false] {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let cfg = common::test_config(dir.path()).await;
        let providers = Providers::default().with(Arc::new(Broken { refuse }));
        let app = TestApp::start_with(cfg, dir, Default::default(), Some(providers)).await;
        let token = app.token("broken@example.com").await;
        let id = app.create_session(&token, "broken").await;
        let r = app
            .post_empty(
                &format!("/api/v1/whatsapp/{id}/connect"),
                Auth::Bearer(&token),
            )
            .await;
        r.assert_error(502, "WHATSAPP_UNAVAILABLE");
        let s = app
            .get(&format!("/api/v1/whatsapp/{id}"), Auth::Bearer(&token))
            .await
            .body["data"]
            .clone();
        assert_eq!(s["status"], "failed");
        let expected = if refuse {
            "upstream refused the connection"
        } else {
            "device banned"
        };
        assert_eq!(s["lastError"], expected);
        // failed → connect is allowed again (and fails again).
        let r = app
            .post_empty(
                &format!("/api/v1/whatsapp/{id}/connect"),
                Auth::Bearer(&token),
            )
            .await;
        r.assert_error(502, "WHATSAPP_UNAVAILABLE");
        app.post_empty(
            &format!("/api/v1/whatsapp/{id}/disconnect"),
            Auth::Bearer(&token),
        )
        .await
        .assert_error(409, "CONFLICT");
    }
}

/// Two instances on one database and Redis, each with its own id; A runs the connections.
async fn two_instances(test: &str) -> Option<(TestApp, TestApp)> {
    let url = common::redis_url_or_skip(test).await?;
    let a = TestApp::spawn_with(|c| {
        c.redis_url = Some(url.clone().into());
        c.runtime.instance_id = format!("a-{}", uuid::Uuid::new_v4().simple());
    })
    .await;
    let mut cfg = a.cfg.clone();
    cfg.runtime.instance_id = format!("b-{}", uuid::Uuid::new_v4().simple());
    let b = TestApp::start(cfg, Arc::new(tempfile::tempdir().unwrap()), a.clock.clone()).await;
    Some((a, b))
}

#[tokio::test]
async fn sandbox_controls_on_another_instance_reach_the_owners_connection() {
    let Some((a, b)) = two_instances("sandbox_controls_on_another_instance").await else {
        return;
    };
    let token = a.token("two-runtimes@example.com").await;
    let id = a.create_session(&token, "split").await;
    let r = a
        .post_empty(
            &format!("/api/v1/whatsapp/{id}/connect"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.body["data"]["status"], "qr_pending", "{}", r.body);
    let sid = uuid::Uuid::parse_str(&id).unwrap();
    assert!(a.state.runtime.is_running(sid), "A runs the connection");
    // A pairing code asked for at B comes from A's connection.
    let r = b
        .post(
            &format!("/api/v1/whatsapp/{id}/pair-code"),
            Auth::Bearer(&token),
            json!({"phoneNumber": "+919811122233"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["data"]["code"].as_str().map(str::len),
        Some(9),
        "{}",
        r.body
    );
    // The scan arrives at B; A's sandbox connection pairs, as a phone would pair with it.
    let r = b
        .post(
            &format!("/api/v1/whatsapp/{id}/sandbox/scan"),
            Auth::Bearer(&token),
            json!({"phoneNumber": "919811122233"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["status"], "connected", "{}", r.body);
    assert_eq!(r.body["data"]["phoneNumber"], "919811122233");
    assert_eq!(
        r.body["data"]["ownerInstance"],
        a.cfg.runtime.instance_id.as_str()
    );
    assert!(
        !b.state.runtime.is_running(sid),
        "B never opened a connection"
    );
    // A contact writes, through B: the message is stored by A's connection and answered.
    let r = b
        .post(
            &format!("/api/v1/whatsapp/{id}/sandbox/inbound"),
            Auth::Bearer(&token),
            json!({"from": "+14155550123", "text": "hello over the bus"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["direction"], "inbound", "{}", r.body);
    assert_eq!(r.body["data"]["text"], "hello over the bus");
}

#[tokio::test]
async fn disconnect_and_logout_on_another_instance_close_the_owners_connection() {
    let Some((a, b)) = two_instances("disconnect_on_another_instance").await else {
        return;
    };
    let token = a.token("remote-stop@example.com").await;
    let id = a.connected_session(&token, "+14155550199").await;
    let sid = uuid::Uuid::parse_str(&id).unwrap();
    assert!(a.state.runtime.is_running(sid));
    let r = b
        .post_empty(
            &format!("/api/v1/whatsapp/{id}/disconnect"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "Session disconnected", "{}", r.body);
    assert_eq!(
        b.wait_status(&token, &id, "disconnected").await["ownerInstance"],
        json!(null)
    );
    // Closed by the command, before the disconnect answered (not at A's next heartbeat).
    assert!(
        !a.state.runtime.is_running(sid),
        "A still runs the connection"
    );

    // Reconnect (paired: no QR) on A, then log out through B: A's connection unlinks.
    let r = a
        .post_empty(
            &format!("/api/v1/whatsapp/{id}/connect"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.body["data"]["status"], "connected", "{}", r.body);
    assert!(a.state.runtime.is_running(sid));
    let r = b
        .post_empty(
            &format!("/api/v1/whatsapp/{id}/logout"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        b.wait_status(&token, &id, "logged_out").await["phoneNumber"],
        json!(null)
    );
    assert!(
        !a.state.runtime.is_running(sid),
        "A still runs the connection"
    );
    // The pairing is gone from the device store: the next connect shows a QR code.
    let r = a
        .post_empty(
            &format!("/api/v1/whatsapp/{id}/connect"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.body["data"]["status"], "qr_pending", "{}", r.body);
}

/// A provider with settings: `phoneNumberId` (public) and `accessToken` (secret). It keeps
/// the settings each connection got.
struct Configured {
    seen: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

#[async_trait::async_trait]
impl Provider for Configured {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Cloud
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    fn check_settings(&self, s: &serde_json::Value) -> Result<(), Vec<(String, String)>> {
        let mut errors = Vec::new();
        if !s["phoneNumberId"].is_string() {
            errors.push(("phoneNumberId".into(), "phoneNumberId is required".into()));
        }
        if !s["accessToken"].is_string() {
            errors.push(("accessToken".into(), "accessToken is required".into()));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
    fn secret_settings(&self) -> &'static [&'static str] {
        &["accessToken"]
    }
    async fn start(&self, ctx: SessionContext) -> Result<Arc<dyn Connection>, ProviderError> {
        self.seen.lock().unwrap().push(ctx.settings.clone());
        Err(ProviderError::Unavailable("no network in this test".into()))
    }
}

#[tokio::test]
async fn provider_settings_are_checked_and_their_secrets_are_write_only() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let cfg = common::test_config(dir.path()).await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let clock: wagate::clock::ManualClock = Default::default();
    let providers = Providers::default()
        .with(Arc::new(wagate::provider::sandbox::SandboxProvider::new(
            cfg.sandbox.clone(),
            Arc::new(clock.clone()),
        )))
        .with(Arc::new(Configured { seen: seen.clone() }));
    let app = TestApp::start_with(cfg, dir, clock, Some(providers)).await;
    let token = app.token("settings@example.com").await;
    let create = |body: serde_json::Value| app.post("/api/v1/whatsapp", Auth::Bearer(&token), body);

    // Checked by the provider, per field.
    let r = create(json!({"name": "c", "provider": "cloud", "cloud": {"phoneNumberId": 5}})).await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert_eq!(
        r.body["errors"]["cloud.phoneNumberId"],
        "phoneNumberId is required"
    );
    assert_eq!(
        r.body["errors"]["cloud.accessToken"],
        "accessToken is required"
    );
    // Settings of another provider, and settings the sandbox does not take.
    let r = create(json!({"name": "s", "cloud": {"phoneNumberId": "1"}})).await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(
        r.body["errors"]["cloud"]
            .as_str()
            .unwrap()
            .contains("'sandbox'"),
        "{}",
        r.body
    );
    let r = create(json!({"name": "s", "sandbox": {"speed": "fast"}})).await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert_eq!(
        r.body["errors"]["sandbox"],
        "The sandbox provider takes no settings"
    );
    let r = create(json!({"name": "s", "sandbox": {}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["data"]["settings"], json!(null));

    // Accepted: the public part is shown, the secret never.
    let secret = "EAAG-very-secret-token-123";
    let r = create(json!({"name": "c", "provider": "cloud",
        "cloud": {"phoneNumberId": "106540352242922", "accessToken": secret}}))
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        r.body["data"]["settings"],
        json!({"phoneNumberId": "106540352242922"})
    );
    assert!(!r.body.to_string().contains(secret), "{}", r.body);
    let id = r.body["data"]["id"].as_str().unwrap().to_owned();
    let r = app
        .get(&format!("/api/v1/whatsapp/{id}"), Auth::Bearer(&token))
        .await;
    let text = r.body.to_string();
    assert!(
        !text.contains(secret) && text.contains("106540352242922"),
        "{text}"
    );
    // Encrypted at rest: the raw stored value does not contain it.
    use sea_orm::EntityTrait;
    let rows = entity::device_key::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    let row = rows
        .iter()
        .find(|k| k.namespace == "provider-secrets" && k.key == "accessToken")
        .expect("the secret is in the device store");
    assert!(!String::from_utf8_lossy(&row.value).contains(secret));
    // The provider gets it back, whole, when it connects.
    let r = app
        .post_empty(
            &format!("/api/v1/whatsapp/{id}/connect"),
            Auth::Bearer(&token),
        )
        .await;
    r.assert_error(502, "WHATSAPP_UNAVAILABLE");
    assert_eq!(
        seen.lock().unwrap().last().unwrap(),
        &json!({"phoneNumberId": "106540352242922", "accessToken": secret})
    );
}

/// The sandbox, with a handle on each connection's event sink so a test can play a dropped
/// network and its recovery.
struct Droppable {
    inner: wagate::provider::sandbox::SandboxProvider,
    sinks: Arc<std::sync::Mutex<Vec<wagate::provider::EventSink>>>,
}

#[async_trait::async_trait]
impl Provider for Droppable {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Sandbox
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn start(&self, ctx: SessionContext) -> Result<Arc<dyn Connection>, ProviderError> {
        self.sinks.lock().unwrap().push(ctx.events.clone());
        self.inner.start(ctx).await
    }
}

#[tokio::test]
async fn a_reconnecting_session_keeps_its_queued_messages_until_it_is_back() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let cfg = common::test_config(dir.path()).await;
    let clock: wagate::clock::ManualClock = Default::default();
    let sinks = Arc::new(std::sync::Mutex::new(Vec::new()));
    let providers = Providers::default().with(Arc::new(Droppable {
        inner: wagate::provider::sandbox::SandboxProvider::new(
            cfg.sandbox.clone(),
            Arc::new(clock.clone()),
        ),
        sinks: sinks.clone(),
    }));
    let app = TestApp::start_with(cfg, dir, clock, Some(providers)).await;
    let token = app.token("reconnect@example.com").await;
    let id = app.connected_session(&token, "+14155550177").await;
    let sink = sinks.lock().unwrap().last().unwrap().clone();

    // The network drops; the connection retries in 2 s (its first retry).
    let dropped = ProviderEvent::Reconnecting {
        attempt: 1,
        retry_in: std::time::Duration::from_secs(2),
        reason: "stream closed".into(),
    };
    assert!(sink.report(dropped).await, "the connection goes on");
    let s = app.wait_status(&token, &id, "connecting").await;
    assert_eq!(s["reconnectAttempt"], 1, "{s}");
    assert_eq!(s["lastError"], "stream closed", "{s}");
    assert_eq!(s["phoneNumber"], "14155550177", "{s}");

    // A send meanwhile is accepted and waits, queued, not failed.
    let msg = app
        .queue_text(&token, &id, "+919876543210", "while away")
        .await;
    let m = app
        .wait_message(&token, &msg, "waiting", |d| {
            d["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("Waiting for the session"))
        })
        .await;
    assert_eq!(m["status"], "queued", "{m}");
    assert_eq!(m["attempts"], 0, "{m}");

    // Back online: the session is connected again and the message goes out.
    let phone = wagate::phone::PhoneNumber::parse("+14155550177").unwrap();
    assert!(sink.report(ProviderEvent::Connected { phone }).await);
    let s = app.wait_status(&token, &id, "connected").await;
    assert_eq!(s["reconnectAttempt"], 0, "{s}");
    let m = app
        .wait_message(&token, &msg, "sent", |d| d["sentAt"].is_string())
        .await;
    assert_eq!(m["attempts"], 1, "{m}");
}

#[tokio::test]
async fn a_pair_code_links_a_phone_instead_of_a_qr_scan() {
    use futures_util::StreamExt;
    let app = TestApp::spawn().await;
    let reg = app.register("pair-code@example.com").await;
    let token = reg["accessToken"].as_str().unwrap().to_owned();
    let tenant = reg["tenant"]["id"].as_str().unwrap().to_owned();
    let id = app.create_session(&token, "by code").await;
    let path = format!("/api/v1/whatsapp/{id}/pair-code");

    // Not connecting yet: nothing to pair.
    let r = app
        .post(
            &path,
            Auth::Bearer(&token),
            json!({"phoneNumber": "+919811122233"}),
        )
        .await;
    r.assert_error(409, "CONFLICT");

    let r = app
        .post_empty(
            &format!("/api/v1/whatsapp/{id}/connect"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.body["data"]["status"], "qr_pending", "{}", r.body);
    for bad in [
        json!({}),
        json!({"phoneNumber": "12"}),
        json!({"phoneNumber": "not a number"}),
    ] {
        let r = app.post(&path, Auth::Bearer(&token), bad.clone()).await;
        r.assert_error(400, "VALIDATION_ERROR");
        assert!(
            r.body["errors"]["phoneNumber"].is_array()
                || r.body["errors"]["phoneNumber"].is_string(),
            "{bad}: {}",
            r.body
        );
    }

    // The code is answered and published as `session.pairCode`.
    let tenant_id = wagate::domain::TenantId(uuid::Uuid::parse_str(&tenant).unwrap());
    let mut events = Box::pin(app.state.bus.subscribe(tenant_id));
    let r = app
        .post(
            &path,
            Auth::Bearer(&token),
            json!({"phoneNumber": "+91 98111 22233"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["success"], true);
    let code = r.body["data"]["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 9, "{code}");
    assert_eq!(&code[4..5], "-", "{code}");
    assert!(
        code.chars()
            .all(|c| c == '-' || c.is_ascii_uppercase() || c.is_ascii_digit())
    );
    assert_eq!(r.body["data"]["phoneNumber"], "919811122233");
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            let e = events.next().await.expect("bus open");
            if e.payload.type_name() == "session.pairCode" {
                return e;
            }
        }
    })
    .await
    .expect("a session.pairCode event");
    assert_eq!(event.session_id.to_string(), id);
    let body = serde_json::to_value(&event.payload).unwrap();
    assert_eq!(body["data"]["code"], code.as_str());
    assert_eq!(body["data"]["phoneNumber"], "919811122233");

    // GraphQL asks the same service; another tenant's session is not found.
    let gql = app
        .graphql(
            Auth::Bearer(&token),
            "mutation RequestPairCode($id: ID!) { requestPairCode(id: $id, phoneNumber: \"+919811122233\") { code phoneNumber } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        gql["data"]["requestPairCode"]["phoneNumber"], "919811122233",
        "{gql}"
    );
    let other = app.token("pair-code-other@example.com").await;
    let r = app
        .post(
            &path,
            Auth::Bearer(&other),
            json!({"phoneNumber": "+919811122233"}),
        )
        .await;
    r.assert_error(404, "NOT_FOUND");

    // Typing the code on the phone (the sandbox's scan) pairs it; then there is nothing to pair.
    let r = app
        .post(
            &format!("/api/v1/whatsapp/{id}/sandbox/scan"),
            Auth::Bearer(&token),
            json!({"phoneNumber": "+919811122233"}),
        )
        .await;
    assert_eq!(r.body["data"]["status"], "connected", "{}", r.body);
    let r = app
        .post(
            &path,
            Auth::Bearer(&token),
            json!({"phoneNumber": "+919811122233"}),
        )
        .await;
    r.assert_error(409, "CONFLICT");
}

#[tokio::test]
async fn numbers_are_checked_through_a_connected_session() {
    let app = TestApp::spawn_with(|cfg| {
        cfg.sandbox.not_on_whatsapp = vec!["14155550111".into()];
    })
    .await;
    let token = app.token("check@example.com").await;
    let key = app.api_key(&token, "checker").await;
    let id = app.connected_session(&token, "+14155550100").await;

    let r = app
        .get(
            &format!("/api/v1/whatsapp/{id}/check/+14155550123"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["data"],
        json!({"phone": "14155550123", "onWhatsApp": true, "jid": "14155550123@s.whatsapp.net"})
    );
    // The API-key twin; a number without WhatsApp, written without `+`.
    let r = app
        .get(
            &format!("/api/external/sessions/{id}/check/14155550111"),
            Auth::Key(&key),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["data"],
        json!({"phone": "14155550111", "onWhatsApp": false, "jid": null})
    );
    // GraphQL says the same.
    let g = app
        .graphql(
            Auth::Bearer(&token),
            "query CheckNumber($s: ID!, $p: String!) { checkNumber(sessionId: $s, phone: $p) { phone onWhatsApp jid } }",
            json!({"s": id, "p": "+14155550111"}),
        )
        .await;
    assert_eq!(
        g["data"]["checkNumber"],
        json!({"phone": "14155550111", "onWhatsApp": false, "jid": null}),
        "{g}"
    );

    // Not a number: 400 on `phone`; a session that is not connected: 409.
    let r = app
        .get(
            &format!("/api/v1/whatsapp/{id}/check/not-a-number"),
            Auth::Bearer(&token),
        )
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(r.body["errors"]["phone"].is_string(), "{}", r.body);
    let idle = app.create_session(&token, "Idle").await;
    let r = app
        .get(
            &format!("/api/v1/whatsapp/{idle}/check/+14155550123"),
            Auth::Bearer(&token),
        )
        .await;
    r.assert_error(409, "CONFLICT");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("not connected"),
        "{}",
        r.body
    );
}
