//! Webhooks: CRUD and validation, signed payloads of every event kind at a real receiver,
//! event and session filters, tenant isolation, the SSRF guard, and GraphQL.

mod common;

use common::{
    Auth, TestApp,
    receiver::{Receiver, verify},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Registers a tenant; its token and tenant id.
async fn tenant(app: &TestApp, email: &str) -> (String, String) {
    let data = app.register(email).await;
    (
        data["accessToken"].as_str().unwrap().to_owned(),
        data["tenant"]["id"].as_str().unwrap().to_owned(),
    )
}

/// Creates a webhook; its `data` (with the secret).
async fn hook(app: &TestApp, token: &str, body: Value) -> Value {
    let r = app.post("/api/webhooks", Auth::Bearer(token), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["data"].clone()
}

fn types(hits: &[common::receiver::Hit]) -> Vec<String> {
    hits.iter()
        .map(|h| h.body["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn crud_secret_rotation_and_validation() {
    let app = TestApp::spawn().await;
    let (token, _) = tenant(&app, "owner@hooks.test").await;
    let rx = Receiver::start().await;

    let created = hook(
        &app,
        &token,
        json!({"url": rx.url("/a"), "events": ["message.status", "contact.created"], "description": "CRM"}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    assert_eq!(
        created["events"],
        json!(["contact.created", "message.status"])
    );
    assert_eq!(created["enabled"], true);
    assert_eq!(created["description"], "CRM");
    assert!(created["sessionIds"].is_null());

    let r = app.get("/api/webhooks", Auth::Bearer(&token)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["pagination"]["total"], 1);
    assert_eq!(r.body["data"][0]["id"], id.as_str());
    assert!(
        r.body["data"][0].get("secret").is_none(),
        "lists never show secrets"
    );

    let r = app
        .get(&format!("/api/webhooks/{id}/secret"), Auth::Bearer(&token))
        .await;
    assert_eq!(r.body["data"]["secret"], secret.as_str());

    let r = app
        .patch(
            &format!("/api/webhooks/{id}"),
            Auth::Bearer(&token),
            json!({"events": ["*"], "description": null, "enabled": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["events"], json!(["*"]));
    assert!(r.body["data"]["description"].is_null());
    assert_eq!(r.body["data"]["enabled"], false);

    let r = app
        .post_empty(
            &format!("/api/webhooks/{id}/rotate-secret"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rotated = r.body["data"]["secret"].as_str().unwrap();
    assert!(rotated.starts_with("whsec_") && rotated != secret);
    assert!(r.body["data"]["previousSecretExpiresAt"].is_string());

    // Validation: every bad field at once, in the documented envelope.
    let r = app
        .post(
            "/api/webhooks",
            Auth::Bearer(&token),
            json!({"url": "ftp://example.com/x", "events": ["message.nope"], "sessionIds": ["x"]}),
        )
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    for f in ["url", "events", "sessionIds"] {
        assert!(r.body["errors"][f].is_string(), "{f}: {}", r.body);
    }
    let r = app
        .post("/api/webhooks", Auth::Bearer(&token), json!({"events": []}))
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(r.body["errors"]["url"].is_string(), "{}", r.body);
    let r = app
        .patch(
            &format!("/api/webhooks/{id}"),
            Auth::Bearer(&token),
            json!({}),
        )
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    let r = app
        .get(
            &format!("/api/webhooks/{id}/deliveries?status=lost"),
            Auth::Bearer(&token),
        )
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(r.body["errors"]["status"].is_string());
    let r = app
        .get("/api/webhooks/not-a-uuid", Auth::Bearer(&token))
        .await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.body);

    // Another tenant sees none of it.
    let (other, _) = tenant(&app, "other@hooks.test").await;
    for path in [
        format!("/api/webhooks/{id}"),
        format!("/api/webhooks/{id}/secret"),
        format!("/api/webhooks/{id}/deliveries"),
    ] {
        app.get(&path, Auth::Bearer(&other))
            .await
            .assert_error(404, "NOT_FOUND");
    }
    app.delete(&format!("/api/webhooks/{id}"), Auth::Bearer(&other))
        .await
        .assert_error(404, "NOT_FOUND");
    let r = app.get("/api/webhooks", Auth::Bearer(&other)).await;
    assert_eq!(r.body["pagination"]["total"], 0);
    app.get("/api/webhooks", Auth::None)
        .await
        .assert_error(401, "UNAUTHORIZED");

    let r = app
        .delete(&format!("/api/webhooks/{id}"), Auth::Bearer(&token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.get(&format!("/api/webhooks/{id}"), Auth::Bearer(&token))
        .await
        .assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn every_event_kind_arrives_signed_with_rest_field_names() {
    let app = TestApp::spawn().await;
    let (token, tenant_id) = tenant(&app, "events@hooks.test").await;
    let rx = Receiver::start().await;
    let all = hook(&app, &token, json!({"url": rx.url("/all")})).await;
    let secret = all["secret"].as_str().unwrap().to_owned();
    let only_status = hook(
        &app,
        &token,
        json!({"url": rx.url("/status"), "events": ["message.status"]}),
    )
    .await;

    // Contacts.
    let r = app
        .post(
            "/api/contacts",
            Auth::Bearer(&token),
            json!({"phone": "+14155550101", "name": "Ada"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let contact = r.body["data"]["id"].as_str().unwrap().to_owned();
    app.patch(
        &format!("/api/contacts/{contact}"),
        Auth::Bearer(&token),
        json!({"name": "Ada L."}),
    )
    .await;
    app.delete(&format!("/api/contacts/{contact}"), Auth::Bearer(&token))
        .await;
    // Deliveries run concurrently: arrival order is not event order.
    let hits = rx.wait_for("/all", 3).await;
    let mut kinds = types(&hits);
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        ["contact.created", "contact.deleted", "contact.updated"]
    );
    let of = |t: &str| hits.iter().find(|h| h.body["type"] == t).unwrap();
    let first = of("contact.created");
    assert!(verify(&secret, first), "signature of {first:?}");
    assert_eq!(
        first.id,
        format!(
            "msg_{}",
            first.body["id"].as_str().unwrap().replace('-', "")
        )
    );
    assert_eq!(first.body["tenantId"], tenant_id.as_str());
    assert!(first.body["timestamp"].is_string());
    assert_eq!(first.body["data"]["phone"], "14155550101");
    assert_eq!(first.body["data"]["name"], "Ada");
    assert_eq!(first.body["data"]["id"], contact.as_str());
    assert_eq!(of("contact.updated").body["data"]["name"], "Ada L.");
    let ts: i64 = first.timestamp.parse().unwrap();
    assert!(
        (ts - wagate::clock::Clock::now(&app.clock).timestamp()).abs() <= 1,
        "timestamp header"
    );

    // Sessions: QR and status changes, then messages out and in.
    let session = app.connected_session(&token, "+14155550100").await;
    let msg = app
        .queue_text(&token, &session, "+14155550123", "hello")
        .await;
    app.wait_message(&token, &msg, "read", |m| m["status"] == "read")
        .await;
    let r = app
        .post(
            &format!("/api/v1/whatsapp/{session}/sandbox/inbound"),
            Auth::Bearer(&token),
            json!({"from": "+14155550123", "text": "hi back"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let want = |hits: &[common::receiver::Hit], t: &str| hits.iter().any(|h| h.body["type"] == t);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let hits = loop {
        let hits = rx.hits_on("/all");
        if [
            "session.qr",
            "session.status",
            "message.status",
            "message.received",
        ]
        .iter()
        .all(|t| want(&hits, t))
            && hits
                .iter()
                .filter(|h| h.body["type"] == "message.status")
                .count()
                >= 3
        {
            break hits;
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", types(&hits));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    for h in &hits {
        assert!(verify(&secret, h), "{h:?}");
    }
    let qr = hits
        .iter()
        .find(|h| h.body["type"] == "session.qr")
        .unwrap();
    assert_eq!(qr.body["data"]["sessionId"], session.as_str());
    assert!(qr.body["data"]["code"].is_string() && qr.body["data"]["expiresAt"].is_string());
    let connected = hits
        .iter()
        .find(|h| h.body["type"] == "session.status" && h.body["data"]["status"] == "connected")
        .expect("connected status");
    assert_eq!(connected.body["data"]["phoneNumber"], "14155550100");
    let mut statuses: Vec<&str> = hits
        .iter()
        .filter(|h| h.body["type"] == "message.status")
        .map(|h| h.body["data"]["status"].as_str().unwrap())
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, ["delivered", "read", "sent"]);
    let sent = hits
        .iter()
        .find(|h| h.body["type"] == "message.status" && h.body["data"]["status"] == "sent")
        .unwrap();
    assert_eq!(sent.body["data"]["id"], msg.as_str());
    assert_eq!(sent.body["data"]["sessionId"], session.as_str());
    let inbound = hits
        .iter()
        .find(|h| h.body["type"] == "message.received")
        .unwrap();
    assert_eq!(
        inbound.body["data"]["text"], "hi back",
        "{:?}",
        inbound.body
    );

    // The filtered endpoint got message statuses only, signed with its own secret.
    let status_hits = rx.wait_for("/status", 3).await;
    assert!(types(&status_hits).iter().all(|t| t == "message.status"));
    assert!(verify(
        only_status["secret"].as_str().unwrap(),
        &status_hits[0]
    ));
    assert!(!verify(&secret, &status_hits[0]));
}

#[tokio::test]
async fn session_filters_and_tenant_isolation() {
    let app = TestApp::spawn().await;
    let (a, _) = tenant(&app, "a@hooks.test").await;
    let (b, b_tenant) = tenant(&app, "b@hooks.test").await;
    let rx = Receiver::start().await;
    let s1 = app.create_session(&a, "one").await;
    let s2 = app.create_session(&a, "two").await;
    hook(&app, &a, json!({"url": rx.url("/s1"), "sessionIds": [s1]})).await;
    hook(&app, &b, json!({"url": rx.url("/b")})).await;

    for s in [&s1, &s2] {
        let r = app
            .post_empty(&format!("/api/v1/whatsapp/{s}/connect"), Auth::Bearer(&a))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    app.post(
        "/api/contacts",
        Auth::Bearer(&a),
        json!({"phone": "+14155550111"}),
    )
    .await;
    // B's own event, to know B's endpoint works.
    app.post(
        "/api/contacts",
        Auth::Bearer(&b),
        json!({"phone": "+14155550112"}),
    )
    .await;

    rx.wait_for("/b", 1).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let hits = rx.hits_on("/s1");
        if types(&hits).contains(&"contact.created".to_owned())
            && types(&hits).contains(&"session.qr".to_owned())
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", types(&hits));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Let anything misrouted arrive before looking.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for h in rx.hits_on("/s1") {
        if let Some(s) = h.body["data"]["sessionId"].as_str() {
            assert_eq!(s, s1, "session filter let through {:?}", h.body);
        }
    }
    let b_hits = rx.hits_on("/b");
    assert_eq!(types(&b_hits), ["contact.created"]);
    assert_eq!(b_hits[0].body["tenantId"], b_tenant.as_str());
    assert_eq!(b_hits[0].body["data"]["phone"], "14155550112");
}

#[tokio::test]
async fn private_targets_are_refused_unless_allowed() {
    let app = TestApp::spawn_with(|cfg| cfg.webhooks.allow_private = false).await;
    let (token, _) = tenant(&app, "ssrf@hooks.test").await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.0.0.8/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://192.168.1.20:8080/hook",
    ] {
        let r = app
            .post("/api/webhooks", Auth::Bearer(&token), json!({"url": url}))
            .await;
        r.assert_error(400, "VALIDATION_ERROR");
        assert!(
            r.body["errors"]["url"]
                .as_str()
                .unwrap()
                .contains("WAGATE_WEBHOOK_ALLOW_PRIVATE"),
            "{url}: {}",
            r.body
        );
    }
    let ok = hook(&app, &token, json!({"url": "https://93.184.216.34/hook"})).await;
    let r = app
        .patch(
            &format!("/api/webhooks/{}", ok["id"].as_str().unwrap()),
            Auth::Bearer(&token),
            json!({"url": "http://127.0.0.1:8080/"}),
        )
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(r.body["errors"]["url"].is_string());
}

#[tokio::test]
async fn graphql_manages_webhooks_and_reads_the_log() {
    let app = TestApp::spawn().await;
    let (token, _) = tenant(&app, "gql@hooks.test").await;
    let rx = Receiver::start().await;
    let created = app
        .graphql(
            Auth::Bearer(&token),
            "mutation CreateWebhook($input: CreateWebhookInput!) { createWebhook(input: $input) { id url events enabled secret description } }",
            json!({"input": {"url": rx.url("/gql"), "events": ["webhook.test", "contact.created"], "description": "dash"}}),
        )
        .await;
    let w = &created["data"]["createWebhook"];
    let id = w["id"].as_str().expect("created").to_owned();
    let secret = w["secret"].as_str().unwrap().to_owned();
    assert_eq!(w["events"], json!(["contact.created", "webhook.test"]));

    let listed = app
        .graphql(
            Auth::Bearer(&token),
            "query Webhooks { webhooks { data { id url } pagination { total } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["data"]["webhooks"]["pagination"]["total"], 1);
    let s = app
        .graphql(
            Auth::Bearer(&token),
            "query WebhookSecret($id: ID!) { webhookSecret(id: $id) { secret } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(s["data"]["webhookSecret"]["secret"], secret.as_str());

    let t = app
        .graphql(
            Auth::Bearer(&token),
            "mutation TestWebhook($id: ID!) { testWebhook(id: $id) { id eventType status } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(t["data"]["testWebhook"]["eventType"], "webhook.test", "{t}");
    let hits = rx.wait_for("/gql", 1).await;
    assert!(verify(&secret, &hits[0]));
    let mut log = Value::Null;
    for _ in 0..200 {
        log = app
            .graphql(
                Auth::Bearer(&token),
                "query WebhookDeliveries($id: ID!) { webhookDeliveries(webhookId: $id, status: \"delivered\") { data { id eventType attemptCount attempts { httpStatus latencyMs responseBody } } pagination { total } } }",
                json!({"id": id}),
            )
            .await;
        if log["data"]["webhookDeliveries"]["pagination"]["total"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let d = &log["data"]["webhookDeliveries"]["data"][0];
    assert_eq!(d["attempts"][0]["httpStatus"], 200, "{log}");
    assert_eq!(d["attempts"][0]["responseBody"], "thanks");
    let retried = app
        .graphql(
            Auth::Bearer(&token),
            "mutation RetryWebhookDelivery($w: ID!, $d: ID!) { retryWebhookDelivery(webhookId: $w, deliveryId: $d) { status } }",
            json!({"w": id, "d": d["id"]}),
        )
        .await;
    // Queued again (the worker may have sent it already by the time it is read back;
    // the second receipt below is the proof).
    let status = &retried["data"]["retryWebhookDelivery"]["status"];
    assert!(status == "pending" || status == "delivered", "{retried}");
    rx.wait_for("/gql", 2).await;

    let updated = app
        .graphql(
            Auth::Bearer(&token),
            "mutation UpdateWebhook($id: ID!) { updateWebhook(id: $id, input: {description: null, enabled: false}) { description enabled } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        updated["data"]["updateWebhook"],
        json!({"description": null, "enabled": false})
    );
    let rotated = app
        .graphql(
            Auth::Bearer(&token),
            "mutation RotateWebhookSecret($id: ID!) { rotateWebhookSecret(id: $id) { secret } }",
            json!({"id": id}),
        )
        .await;
    assert_ne!(
        rotated["data"]["rotateWebhookSecret"]["secret"],
        secret.as_str()
    );

    let bad = app
        .graphql(
            Auth::Bearer(&token),
            "mutation CreateWebhook { createWebhook(input: {url: \"gopher://x\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        bad["errors"][0]["extensions"]["code"], "VALIDATION_ERROR",
        "{bad}"
    );

    let (other, _) = tenant(&app, "gql-other@hooks.test").await;
    let hidden = app
        .graphql(
            Auth::Bearer(&other),
            "query Webhook($id: ID!) { webhook(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        hidden["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{hidden}"
    );
    let deleted = app
        .graphql(
            Auth::Bearer(&token),
            "mutation DeleteWebhook($id: ID!) { deleteWebhook(id: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(deleted["data"]["deleteWebhook"], true);
}
