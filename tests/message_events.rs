//! Live message events (`messageEvents` over a real WebSocket), monotonic receipts, and the
//! GraphQL message API including multipart uploads.

mod common;

use common::{Auth, GqlWs, PNG_1X1, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;
use wagate::{domain::ids::TenantId, provider::MessageUpdate, service::messages::MessageStatus};

const TO: &str = "919876543210";
const EVENTS: &str = "subscription MessageEvents($s: ID) { messageEvents(sessionId: $s) { type sessionId at message { id direction status type text from to deliveredAt readAt } } }";

async fn socket(app: &TestApp, token: &str) -> GqlWs {
    GqlWs::with_token(app, token).await
}

/// Runs `sendMedia` with `file` through the GraphQL multipart request spec; the status and
/// the JSON answer.
async fn upload(
    app: &TestApp,
    token: Option<&str>,
    session: &str,
    file: &'static [u8],
) -> (StatusCode, Value) {
    let operations = json!({
        "query": "mutation SendMedia($s: ID!, $f: Upload!) { sendMedia(type: IMAGE, sessionId: $s, to: \"919876543210\", file: $f, caption: \"Look\") { id status } }",
        "variables": {"s": session, "f": null}
    });
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({"0": ["variables.f"]}).to_string())
        .part(
            "0",
            reqwest::multipart::Part::bytes(file).file_name("pic.png"),
        );
    let mut req = app.client.post(app.url("/graphql")).multipart(form);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    (res.status(), res.json().await.unwrap())
}

fn tenant_of(reg: &Value) -> String {
    reg["tenant"]["id"].as_str().unwrap().to_owned()
}

async fn register(app: &TestApp, email: &str) -> (String, String) {
    let reg = app.register(email).await;
    (
        reg["accessToken"].as_str().unwrap().to_owned(),
        tenant_of(&reg),
    )
}

#[tokio::test]
async fn inbound_and_status_changes_reach_message_events() {
    let app = TestApp::spawn().await;
    let (token, tenant) = register(&app, "live@events.test").await;
    let (other, other_tenant) = register(&app, "other@events.test").await;
    let session = app.connected_session(&token, "+14155550301").await;
    let other_session = app.connected_session(&other, "+14155550302").await;

    let mut ws = socket(&app, &token).await;
    ws.subscribe("m", EVENTS, json!({"s": session})).await;
    let mut spy = socket(&app, &other).await;
    spy.subscribe("spy", EVENTS, json!({})).await;
    app.wait_subscribers(&tenant, 1).await;
    app.wait_subscribers(&other_tenant, 1).await;

    // A contact writes in (sandbox), and we answer.
    let r = app
        .post(
            &format!("/api/v1/whatsapp/{session}/sandbox/inbound"),
            Auth::Bearer(&token),
            json!({"from": "+91 98765 43210", "text": "Hi, is the shop open?"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ev = ws.next_data("m").await["messageEvents"].clone();
    assert_eq!(ev["type"], "RECEIVED");
    assert_eq!(ev["sessionId"], session.as_str());
    assert_eq!(ev["message"]["direction"], "INBOUND");
    assert_eq!(ev["message"]["status"], "RECEIVED");
    assert_eq!(ev["message"]["from"], TO);
    assert_eq!(ev["message"]["text"], "Hi, is the shop open?");

    let id = app.queue_text(&token, &session, TO, "Yes, until 8pm").await;
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("READ") {
        let ev = ws.next_data("m").await["messageEvents"].clone();
        assert_eq!(ev["type"], "STATUS");
        assert_eq!(ev["message"]["id"], id.as_str());
        seen.push(ev["message"]["status"].as_str().unwrap().to_owned());
    }
    // Each change once, in order; a receipt that beats the dispatcher's own record of the
    // send may stand in for `SENT`.
    let order = ["SENT", "DELIVERED", "READ"];
    let ranks: Vec<usize> = seen
        .iter()
        .map(|s| order.iter().position(|o| o == s).unwrap())
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert!(seen.len() >= 2, "{seen:?}");

    // The other tenant's subscriber only ever sees its own tenant's traffic.
    app.post(
        &format!("/api/v1/whatsapp/{other_session}/sandbox/inbound"),
        Auth::Bearer(&other),
        json!({"from": TO, "text": "mine"}),
    )
    .await;
    let ev = spy.next_data("spy").await["messageEvents"].clone();
    assert_eq!(ev["message"]["text"], "mine", "{ev}");
    // A subscription to another tenant's session is refused.
    spy.subscribe("steal", EVENTS, json!({"s": session})).await;
    let msg = spy.next_of("steal").await;
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{msg}"
    );
}

#[tokio::test]
async fn receipts_never_move_a_message_backwards() {
    let app = TestApp::spawn_with(|c| c.sandbox.receipts = false).await;
    let (token, tenant) = register(&app, "order@events.test").await;
    let session = app.connected_session(&token, "+14155550303").await;
    let mut ws = socket(&app, &token).await;
    ws.subscribe("m", EVENTS, json!({})).await;
    app.wait_subscribers(&tenant, 1).await;
    let id = app.queue_text(&token, &session, TO, "hello").await;
    let sent = ws.next_data("m").await["messageEvents"].clone();
    assert_eq!(sent["message"]["status"], "SENT");
    let m = app
        .get(&format!("/api/messages/{id}"), Auth::Bearer(&token))
        .await
        .body["data"]
        .clone();
    let provider_id = m["providerMessageId"].as_str().unwrap().to_owned();

    let report = |status: MessageStatus| {
        let update = MessageUpdate::Status {
            tenant_id: TenantId(Uuid::parse_str(&tenant).unwrap()),
            session_id: Uuid::parse_str(&session).unwrap(),
            // Found by the provider's id alone, as a real receipt would be.
            message_id: None,
            provider_message_id: provider_id.clone(),
            status,
            at: chrono::Utc::now(),
            error: None,
        };
        let sink = app.state.updates.clone();
        async move { assert!(sink.report(update).await) }
    };
    // `read` arrives first and skips `delivered`; the late `delivered` changes nothing.
    report(MessageStatus::Read).await;
    let ev = ws.next_data("m").await["messageEvents"].clone();
    assert_eq!(ev["message"]["status"], "READ");
    assert!(
        ev["message"]["deliveredAt"].is_string(),
        "read implies delivered"
    );
    report(MessageStatus::Delivered).await;
    report(MessageStatus::Sent).await;
    report(MessageStatus::Failed).await;
    // A later event proves the earlier ones were applied (updates are applied in order).
    let second = app.queue_text(&token, &session, TO, "again").await;
    let ev = ws.next_data("m").await["messageEvents"].clone();
    assert_eq!(
        ev["message"]["id"],
        second.as_str(),
        "no event for the stale receipts: {ev}"
    );
    let m = app
        .get(&format!("/api/messages/{id}"), Auth::Bearer(&token))
        .await
        .body["data"]
        .clone();
    assert_eq!(m["status"], "read");
    assert!(m["error"].is_null() && m["failedAt"].is_null(), "{m}");
}

#[tokio::test]
async fn graphql_sends_queries_and_uploads() {
    let app = TestApp::spawn().await;
    let token = app.token("gql@events.test").await;
    let other = app.token("gql-other@events.test").await;
    let session = app.connected_session(&token, "+14155550304").await;
    let auth = Auth::Bearer(&token);

    let r = app
        .graphql(
            auth,
            "mutation SendText($s: ID!) { sendText(sessionId: $s, to: \"+91 98765 43210\", text: \"Hello\", idempotencyKey: \"k1\") { id status to } }",
            json!({"s": session}),
        )
        .await;
    let sent = &r["data"]["sendText"];
    assert_eq!(sent["status"], "QUEUED", "{r}");
    assert_eq!(sent["to"], TO);
    let id = sent["id"].as_str().unwrap().to_owned();
    let again = app
        .graphql(
            auth,
            "mutation SendText($s: ID!) { sendText(sessionId: $s, to: \"919876543210\", text: \"Hello\", idempotencyKey: \"k1\") { id } }",
            json!({"s": session}),
        )
        .await;
    assert_eq!(again["data"]["sendText"]["id"], id.as_str());

    let bad = app
        .graphql(
            auth,
            "mutation SendText($s: ID!) { sendText(sessionId: $s, to: \"abc\", text: \"\") { id } }",
            json!({"s": session}),
        )
        .await;
    let ext = &bad["errors"][0]["extensions"];
    assert_eq!(ext["code"], "VALIDATION_ERROR", "{bad}");
    assert!(ext["errors"]["to"].is_string() && ext["errors"]["text"].is_string());

    let loc = app
        .graphql(
            auth,
            "mutation SendLocation($s: ID!) { sendLocation(sessionId: $s, to: \"919876543210\", latitude: 12.97, longitude: 77.59, name: \"Office\") { id status } }",
            json!({"s": session}),
        )
        .await;
    assert_eq!(loc["data"]["sendLocation"]["status"], "QUEUED", "{loc}");

    // Upload through the GraphQL multipart request spec.
    let (status, body) = upload(&app, Some(&token), &session, PNG_1X1).await;
    assert_eq!(status, StatusCode::OK);
    let media_id = body["data"]["sendMedia"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    // Uploads need credentials before their body is read.
    let (status, body) = upload(&app, None, &session, PNG_1X1).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "UNAUTHORIZED");
    // A text file is refused as an image, with the field named.
    let (_, body) = upload(&app, Some(&token), &session, b"not an image").await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "VALIDATION_ERROR",
        "{body}"
    );
    assert!(body["errors"][0]["extensions"]["errors"]["file"].is_string());

    let q = app
        .graphql(
            auth,
            "query Message($id: ID!) { message(id: $id) { id type caption media { mimeType size url } } messages(limit: 10) { data { id } pagination { total } } }",
            json!({"id": media_id}),
        )
        .await;
    assert_eq!(q["data"]["message"]["type"], "IMAGE", "{q}");
    assert_eq!(q["data"]["message"]["media"]["mimeType"], "image/png");
    assert_eq!(q["data"]["messages"]["pagination"]["total"], 3);
    assert_eq!(q["data"]["messages"]["data"][0]["id"], media_id.as_str());

    let stolen = app
        .graphql(
            Auth::Bearer(&other),
            "query Message($id: ID!) { message(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(stolen["errors"][0]["extensions"]["code"], "NOT_FOUND");
    let blocked = app
        .graphql(
            Auth::Bearer(&other),
            "mutation SendText($s: ID!) { sendText(sessionId: $s, to: \"919876543210\", text: \"x\") { id } }",
            json!({"s": session}),
        )
        .await;
    assert_eq!(blocked["errors"][0]["extensions"]["code"], "NOT_FOUND");
}
