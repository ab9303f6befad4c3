//! GraphQL subscriptions over a real WebSocket: live QR codes and session status.

mod common;

use common::{Auth, GqlWs, TestApp};
use serde_json::{Value, json};

const QR_SUB: &str = "subscription SessionQr($id: ID!) { sessionQr(sessionId: $id) { sessionId code svg expiresAt } }";
const STATUS_SUB: &str = "subscription SessionStatus($id: ID) { sessionStatus(sessionId: $id) { sessionId status phoneNumber connected at reason } }";

async fn ws_for(app: &TestApp, token: &str) -> GqlWs {
    GqlWs::with_token(app, token).await
}

/// The error code an operation ended with (an `error` frame, or a `next` carrying `errors`).
fn error_code(msg: &Value) -> &str {
    let errors = if msg["type"] == "error" {
        &msg["payload"]
    } else {
        &msg["payload"]["errors"]
    };
    errors[0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {msg}"))
}

/// The next `next` payload for operation `id`.
async fn next_for(ws: &mut GqlWs, id: &str) -> Value {
    let msg = ws.next_of(id).await;
    assert_eq!(msg["type"], "next", "{msg}");
    msg["payload"].clone()
}

#[tokio::test]
async fn dashboard_sees_qr_then_connected() {
    let app = TestApp::spawn().await;
    let reg = app.register("live@example.com").await;
    let token = reg["accessToken"].as_str().unwrap().to_owned();
    let tenant = reg["tenant"]["id"].as_str().unwrap().to_owned();
    let id = app.create_session(&token, "Live").await;

    let mut ws = ws_for(&app, &token).await;
    ws.subscribe("qr", QR_SUB, json!({"id": id})).await;
    ws.subscribe("st", STATUS_SUB, json!({"id": id})).await;
    app.wait_subscribers(&tenant, 2).await;

    let r = app
        .post_empty(
            &format!("/api/v1/whatsapp/{id}/connect"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.body["data"]["status"], "qr_pending");
    let s = next_for(&mut ws, "st").await;
    assert_eq!(s["data"]["sessionStatus"]["status"], "CONNECTING");
    let s = next_for(&mut ws, "st").await;
    assert_eq!(s["data"]["sessionStatus"]["status"], "QR_PENDING");
    let q = next_for(&mut ws, "qr").await["data"]["sessionQr"].clone();
    assert_eq!(q["sessionId"], id.as_str());
    assert!(q["svg"].as_str().unwrap().contains("<svg"));
    // The QR on the socket is the one REST serves.
    let rest = app
        .get(&format!("/api/v1/whatsapp/{id}/qr"), Auth::Bearer(&token))
        .await;
    assert_eq!(rest.body["data"]["code"], q["code"]);

    app.post(
        &format!("/api/v1/whatsapp/{id}/sandbox/scan"),
        Auth::Bearer(&token),
        json!({"phoneNumber": "919876543210"}),
    )
    .await;
    let s = next_for(&mut ws, "st").await["data"]["sessionStatus"].clone();
    assert_eq!(s["status"], "CONNECTED");
    assert_eq!(s["connected"], true);
    assert_eq!(s["phoneNumber"], "919876543210");
    assert_eq!(s["sessionId"], id.as_str());
    assert!(chrono::DateTime::parse_from_rfc3339(s["at"].as_str().unwrap()).is_ok());

    app.post_empty(
        &format!("/api/v1/whatsapp/{id}/disconnect"),
        Auth::Bearer(&token),
    )
    .await;
    let s = next_for(&mut ws, "st").await["data"]["sessionStatus"].clone();
    assert_eq!(s["status"], "DISCONNECTED");
    assert_eq!(s["reason"], "Disconnected by user");
}

#[tokio::test]
async fn late_subscribers_get_the_pending_qr_and_all_sessions_stream() {
    let app = TestApp::spawn().await;
    let reg = app.register("late@example.com").await;
    let token = reg["accessToken"].as_str().unwrap().to_owned();
    let tenant = reg["tenant"]["id"].as_str().unwrap().to_owned();
    let one = app.create_session(&token, "one").await;
    let two = app.create_session(&token, "two").await;
    app.post_empty(
        &format!("/api/v1/whatsapp/{one}/connect"),
        Auth::Bearer(&token),
    )
    .await;
    let pending = app
        .get(&format!("/api/v1/whatsapp/{one}/qr"), Auth::Bearer(&token))
        .await
        .body["data"]["code"]
        .clone();

    let mut ws = ws_for(&app, &token).await;
    ws.subscribe("qr", QR_SUB, json!({"id": one})).await;
    let q = next_for(&mut ws, "qr").await;
    assert_eq!(
        q["data"]["sessionQr"]["code"], pending,
        "the code already pending comes first"
    );

    ws.subscribe("all", STATUS_SUB, json!({})).await;
    app.wait_subscribers(&tenant, 2).await;
    app.post_empty(
        &format!("/api/v1/whatsapp/{two}/connect"),
        Auth::Bearer(&token),
    )
    .await;
    let s = next_for(&mut ws, "all").await["data"]["sessionStatus"].clone();
    assert_eq!(
        s["sessionId"],
        two.as_str(),
        "without sessionId every session of the tenant streams"
    );
}

#[tokio::test]
async fn rotation_and_give_up_are_streamed() {
    let app = TestApp::spawn_with(|c| {
        c.sandbox.qr_first_ttl = std::time::Duration::from_millis(300);
        c.sandbox.qr_ttl = std::time::Duration::from_millis(150);
        c.sandbox.qr_rotations = 3;
    })
    .await;
    let reg = app.register("rot@example.com").await;
    let token = reg["accessToken"].as_str().unwrap().to_owned();
    let tenant = reg["tenant"]["id"].as_str().unwrap().to_owned();
    let id = app.create_session(&token, "rot").await;
    let mut ws = ws_for(&app, &token).await;
    ws.subscribe("qr", QR_SUB, json!({"id": id})).await;
    ws.subscribe("st", STATUS_SUB, json!({"id": id})).await;
    app.wait_subscribers(&tenant, 2).await;
    app.post_empty(
        &format!("/api/v1/whatsapp/{id}/connect"),
        Auth::Bearer(&token),
    )
    .await;

    let mut codes = Vec::new();
    let mut statuses = Vec::new();
    while statuses.last().map(String::as_str) != Some("DISCONNECTED") {
        let msg = ws.next_json().await;
        assert_eq!(msg["type"], "next", "{msg}");
        match msg["id"].as_str().unwrap() {
            "qr" => codes.push(
                msg["payload"]["data"]["sessionQr"]["code"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
            _ => statuses.push(
                msg["payload"]["data"]["sessionStatus"]["status"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
        }
    }
    assert_eq!(codes.len(), 3, "{codes:?}");
    assert!(codes[0] != codes[1] && codes[1] != codes[2]);
    assert_eq!(statuses, ["CONNECTING", "QR_PENDING", "DISCONNECTED"]);
}

#[tokio::test]
async fn subscribers_never_see_another_tenants_events() {
    let app = TestApp::spawn().await;
    let a = app.register("sub-a@example.com").await;
    let b = app.register("sub-b@example.com").await;
    let (ta, tb) = (
        a["accessToken"].as_str().unwrap(),
        b["accessToken"].as_str().unwrap(),
    );
    let a_session = app.create_session(ta, "A").await;
    let b_session = app.create_session(tb, "B").await;

    let mut ws_b = ws_for(&app, tb).await;
    // Subscribing to A's session by id is NOT_FOUND.
    ws_b.subscribe("steal", QR_SUB, json!({"id": a_session}))
        .await;
    let msg = ws_b.next_json().await;
    assert_eq!(error_code(&msg), "NOT_FOUND");
    assert_eq!(msg["payload"]["data"], Value::Null, "{msg}");
    assert_eq!(
        ws_b.next_json().await,
        json!({"type": "complete", "id": "steal"})
    );
    ws_b.subscribe("steal2", STATUS_SUB, json!({"id": a_session}))
        .await;
    let msg = ws_b.next_json().await;
    assert_eq!(error_code(&msg), "NOT_FOUND");
    assert_eq!(
        ws_b.next_json().await,
        json!({"type": "complete", "id": "steal2"})
    );

    // B's all-sessions stream sees nothing of A's whole lifecycle.
    ws_b.subscribe("all", STATUS_SUB, json!({})).await;
    app.wait_subscribers(b["tenant"]["id"].as_str().unwrap(), 1)
        .await;
    app.connected_session(ta, "919812345678").await;
    app.post_empty(
        &format!("/api/v1/whatsapp/{a_session}/connect"),
        Auth::Bearer(ta),
    )
    .await;
    // Then B's own event arrives first.
    app.post_empty(
        &format!("/api/v1/whatsapp/{b_session}/connect"),
        Auth::Bearer(tb),
    )
    .await;
    let s = next_for(&mut ws_b, "all").await["data"]["sessionStatus"].clone();
    assert_eq!(s["sessionId"], b_session.as_str());
}

#[tokio::test]
async fn subscriptions_need_credentials() {
    let app = TestApp::spawn().await;
    let mut ws = GqlWs::connect(&app, "graphql-transport-ws", json!({}))
        .await
        .expect("ack");
    ws.subscribe("1", STATUS_SUB, json!({})).await;
    let msg = ws.next_json().await;
    assert_eq!(msg["id"], "1");
    assert_eq!(error_code(&msg), "UNAUTHORIZED");
    assert_eq!(ws.next_json().await, json!({"type": "complete", "id": "1"}));
    ws.subscribe("2", QR_SUB, json!({"id": "not-a-uuid"})).await;
    let msg = ws.next_json().await;
    assert_eq!(error_code(&msg), "UNAUTHORIZED");

    let token = app.token("subs-bad-id@example.com").await;
    let mut ws = ws_for(&app, &token).await;
    ws.subscribe("3", QR_SUB, json!({"id": "not-a-uuid"})).await;
    assert_eq!(error_code(&ws.next_json().await), "VALIDATION_ERROR");
}

#[tokio::test]
async fn session_queries_and_mutations() {
    let app = TestApp::spawn().await;
    let token = app.token("gqlsessions@example.com").await;
    let t = Auth::Bearer(&token);
    let r = app
        .graphql(t, "mutation CreateSession { createSession(input: {name: \"G1\"}) { id name status provider connected } }", json!({}))
        .await;
    let s = &r["data"]["createSession"];
    assert_eq!(s["status"], "DISCONNECTED", "{r}");
    assert_eq!(s["provider"], "SANDBOX");
    let id = s["id"].as_str().unwrap().to_owned();
    let r = app
        .graphql(
            t,
            "mutation ConnectSession($id: ID!) { connectSession(id: $id) { status message } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        r["data"]["connectSession"],
        json!({"status": "QR_PENDING", "message": "Scan QR code in dashboard"})
    );
    let r = app
        .graphql(
            t,
            "mutation ConnectSession($id: ID!) { connectSession(id: $id) { status } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "CONFLICT");
    let r = app
        .graphql(
            t,
            "mutation SandboxScan($id: ID!) { sandboxScan(id: $id, phoneNumber: \"+44 7911 123456\") { status phoneNumber } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        r["data"]["sandboxScan"],
        json!({"status": "CONNECTED", "phoneNumber": "447911123456"}),
        "{r}"
    );
    let r = app
        .graphql(
            t,
            "mutation RenameSession($id: ID!) { renameSession(id: $id, name: \"Sales\") { name } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r["data"]["renameSession"]["name"], "Sales");
    let r = app
        .graphql(
            t,
            "query Sessions { sessions(limit: 5) { data { id name } pagination { total totalPages limit } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r["data"]["sessions"]["pagination"],
        json!({"total": 1, "totalPages": 1, "limit": 5})
    );
    let r = app
        .graphql(
            t,
            "mutation DisconnectSession($id: ID!) { disconnectSession(id: $id) { status } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r["data"]["disconnectSession"]["status"], "DISCONNECTED");
    let r = app
        .graphql(
            t,
            "mutation LogoutSession($id: ID!) { logoutSession(id: $id) { status phoneNumber } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        r["data"]["logoutSession"],
        json!({"status": "LOGGED_OUT", "phoneNumber": null})
    );
    let r = app
        .graphql(
            t,
            "query Sessions { sessions(limit: 500) { data { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "VALIDATION_ERROR");
    let other = app.token("gqlother2@example.com").await;
    let r = app
        .graphql(
            Auth::Bearer(&other),
            "query Session($id: ID!) { session(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "NOT_FOUND");
    let r = app
        .graphql(
            t,
            "mutation DeleteSession($id: ID!) { deleteSession(id: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r["data"]["deleteSession"], true);
    let r = app
        .graphql(
            t,
            "query Session($id: ID!) { session(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "NOT_FOUND");
}

#[tokio::test]
async fn shutdown_is_not_held_up_by_open_subscriptions() {
    let app = TestApp::spawn().await;
    let reg = app.register("bye-ws@example.com").await;
    let token = reg["accessToken"].as_str().unwrap().to_owned();
    let mut ws = ws_for(&app, &token).await;
    ws.subscribe("st", STATUS_SUB, json!({})).await;
    app.wait_subscribers(reg["tenant"]["id"].as_str().unwrap(), 1)
        .await;
    tokio::time::timeout(std::time::Duration::from_secs(10), app.stop())
        .await
        .expect("graceful shutdown finished while a subscription was open");
}

#[tokio::test]
async fn an_api_key_can_watch_its_tenants_sessions() {
    let app = TestApp::spawn().await;
    let reg = app.register("key-watch@example.com").await;
    let token = reg["accessToken"].as_str().unwrap().to_owned();
    let key = app.api_key(&token, "watcher").await;
    let id = app.create_session(&token, "watched").await;
    let mut ws = GqlWs::connect(&app, "graphql-transport-ws", json!({"X-API-Key": key}))
        .await
        .expect("ack");
    ws.subscribe("st", STATUS_SUB, json!({"id": id})).await;
    app.wait_subscribers(reg["tenant"]["id"].as_str().unwrap(), 1)
        .await;
    app.post_empty(
        &format!("/api/v1/whatsapp/{id}/connect"),
        Auth::Bearer(&token),
    )
    .await;
    let s = next_for(&mut ws, "st").await;
    assert_eq!(s["data"]["sessionStatus"]["status"], "CONNECTING");
}

/// Reads until the server closes the socket (panics after 10 s without a close).
async fn closed(ws: &mut GqlWs) {
    loop {
        match ws.next_raw().await {
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return,
        }
    }
}

#[tokio::test]
async fn sockets_close_when_the_access_token_expires() {
    let app = TestApp::spawn_with(|c| c.access_token_ttl = std::time::Duration::from_secs(1)).await;
    let reg = app.register("short-token@example.com").await;
    let token = reg["accessToken"].as_str().unwrap().to_owned();
    let mut ws = ws_for(&app, &token).await;
    ws.subscribe("st", STATUS_SUB, json!({})).await;
    app.wait_subscribers(reg["tenant"]["id"].as_str().unwrap(), 1)
        .await;
    // Application time passes beyond the token's lifetime; the socket closes at its expiry.
    app.clock.advance(chrono::Duration::seconds(2));
    closed(&mut ws).await;
}

#[tokio::test]
async fn sockets_close_when_their_api_key_is_revoked() {
    let app =
        TestApp::spawn_with(|c| c.ws_reauth_interval = std::time::Duration::from_millis(100)).await;
    let reg = app.register("revoked-key@example.com").await;
    let token = reg["accessToken"].as_str().unwrap().to_owned();
    let created = app
        .post(
            "/api/external/api-keys",
            Auth::Bearer(&token),
            json!({"name": "ws"}),
        )
        .await;
    let key = created.body["data"]["key"].as_str().unwrap().to_owned();
    let key_id = created.body["data"]["id"].as_str().unwrap().to_owned();
    let mut ws = GqlWs::connect(&app, "graphql-transport-ws", json!({"X-API-Key": key}))
        .await
        .expect("ack");
    ws.subscribe("st", STATUS_SUB, json!({})).await;
    // Still open after several re-checks while the key is live.
    app.wait_subscribers(reg["tenant"]["id"].as_str().unwrap(), 1)
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    let id = app.create_session(&token, "still-open").await;
    app.post_empty(
        &format!("/api/v1/whatsapp/{id}/connect"),
        Auth::Bearer(&token),
    )
    .await;
    assert_eq!(
        next_for(&mut ws, "st").await["data"]["sessionStatus"]["status"],
        "CONNECTING"
    );
    app.delete(
        &format!("/api/external/api-keys/{key_id}"),
        Auth::Bearer(&token),
    )
    .await;
    closed(&mut ws).await;
}
