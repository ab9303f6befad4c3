//! Messages over REST: the seed's shapes, validation, tenant isolation, statuses, listing,
//! idempotency, media and sandbox inbound.

mod common;

use common::{Auth, PNG_1X1, TestApp};
use reqwest::{
    StatusCode,
    multipart::{Form, Part},
};
use serde_json::json;

const TO: &str = "919876543210";

#[tokio::test]
async fn send_text_has_the_documented_shape_and_follows_receipts_to_read() {
    let app = TestApp::spawn().await;
    let token = app.token("owner@msg.test").await;
    let session = app.connected_session(&token, "+14155550101").await;

    let r = app
        .send_text(&token, &session, "+91 98765 43210", "Hello from ActiWAPI!")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["success"], true);
    let data = &r.body["data"];
    assert_eq!(data["status"], "queued");
    assert_eq!(data["to"], TO, "normalised to E.164 digits");
    let id = data["id"].as_str().unwrap().to_owned();
    uuid::Uuid::parse_str(&id).unwrap();

    let m = app
        .wait_message(&token, &id, "read", |d| d["status"] == "read")
        .await;
    assert_eq!(m["id"], id.as_str());
    assert_eq!(m["direction"], "outbound");
    assert_eq!(m["remoteJid"], "919876543210@s.whatsapp.net");
    assert_eq!(m["type"], "text");
    assert_eq!(m["text"], "Hello from ActiWAPI!");
    assert_eq!(m["to"], TO);
    assert_eq!(m["sessionId"], session.as_str());
    assert_eq!(m["attempts"], 1);
    assert!(
        m["providerMessageId"]
            .as_str()
            .is_some_and(|p| p.starts_with("3EB0"))
    );
    for stamp in ["createdAt", "sentAt", "deliveredAt", "readAt"] {
        assert!(m[stamp].is_string(), "{stamp} missing: {m}");
    }
    assert!(m["error"].is_null() && m["failedAt"].is_null());
}

#[tokio::test]
async fn every_validation_failure_names_its_field() {
    let app = TestApp::spawn().await;
    let token = app.token("v@msg.test").await;
    let session = app.connected_session(&token, "+14155550102").await;
    let long = "x".repeat(4097);
    let cases = [
        (json!({"to": TO, "text": "hi"}), "sessionId"),
        (
            json!({"sessionId": "nope", "to": TO, "text": "hi"}),
            "sessionId",
        ),
        (
            json!({"sessionId": session, "to": "abc", "text": "hi"}),
            "to",
        ),
        (json!({"sessionId": session, "text": "hi"}), "to"),
        (
            json!({"sessionId": session, "to": "123", "text": "hi"}),
            "to",
        ),
        (json!({"sessionId": session, "to": TO}), "text"),
        (
            json!({"sessionId": session, "to": TO, "text": "   "}),
            "text",
        ),
        (
            json!({"sessionId": session, "to": TO, "text": long}),
            "text",
        ),
        (
            json!({"sessionId": session, "to": 919876543210u64, "text": "hi"}),
            "to",
        ),
    ];
    for (body, field) in cases {
        let r = app
            .post(
                "/api/messages/send-text",
                Auth::Bearer(&token),
                body.clone(),
            )
            .await;
        r.assert_error(400, "VALIDATION_ERROR");
        assert!(
            r.body["errors"][field].is_string(),
            "{body} should fail on {field}: {}",
            r.body
        );
    }
    // Several problems at once are all reported.
    let r = app
        .post(
            "/api/messages/send-text",
            Auth::Bearer(&token),
            json!({"sessionId": "", "to": "abc", "text": ""}),
        )
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    for f in ["sessionId", "to", "text"] {
        assert!(r.body["errors"][f].is_string(), "{f}: {}", r.body);
    }
    // Exactly 4096 characters (multi-byte) is fine.
    let max: String = "é".repeat(4096);
    let r = app.send_text(&token, &session, TO, &max).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let r = app
        .post(
            "/api/messages/send-location",
            Auth::Bearer(&token),
            json!({"sessionId": session, "to": TO, "latitude": 91.0, "longitude": 10.0}),
        )
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(r.body["errors"]["latitude"].is_string());
    let r = app
        .post(
            "/api/messages/send-location",
            Auth::Bearer(&token),
            json!({"sessionId": session, "to": TO, "latitude": 12.97}),
        )
        .await;
    assert!(r.body["errors"]["longitude"].is_string(), "{}", r.body);
    // Nothing invalid was stored.
    let r = app.get("/api/messages", Auth::Bearer(&token)).await;
    assert_eq!(r.body["pagination"]["total"], 1, "{}", r.body);
}

#[tokio::test]
async fn sending_needs_a_connected_session_of_your_own() {
    let app = TestApp::spawn().await;
    let a = app.token("a@msg.test").await;
    let b = app.token("b@msg.test").await;
    let idle = app.create_session(&a, "Idle").await;
    let r = app.send_text(&a, &idle, TO, "hi").await;
    r.assert_error(502, "WHATSAPP_UNAVAILABLE");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("not connected")
    );

    let session = app.connected_session(&a, "+14155550103").await;
    let id = app.queue_text(&a, &session, TO, "for A only").await;
    // B cannot send through A's session, read A's message, its media, or list it.
    app.send_text(&b, &session, TO, "hijack")
        .await
        .assert_error(404, "NOT_FOUND");
    app.get(&format!("/api/messages/{id}"), Auth::Bearer(&b))
        .await
        .assert_error(404, "NOT_FOUND");
    app.get(&format!("/api/messages/{id}/media"), Auth::Bearer(&b))
        .await
        .assert_error(404, "NOT_FOUND");
    let r = app.get("/api/messages", Auth::Bearer(&b)).await;
    assert_eq!(r.body["pagination"]["total"], 0, "{}", r.body);
    // A filter naming A's session is a 404, not an empty page.
    app.get(
        &format!("/api/messages?sessionId={session}"),
        Auth::Bearer(&b),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    // Unknown ids are 404 too; malformed ids 400.
    app.get(
        &format!("/api/messages/{}", uuid::Uuid::now_v7()),
        Auth::Bearer(&a),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    app.get("/api/messages/xyz", Auth::Bearer(&a))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    // Right after a disconnect (the session was just used, so its connected state is
    // cached), sends are refused at once.
    app.queue_text(&a, &session, TO, "still up").await;
    let r = app
        .post_empty(
            &format!("/api/v1/whatsapp/{session}/disconnect"),
            Auth::Bearer(&a),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.send_text(&a, &session, TO, "too late")
        .await
        .assert_error(502, "WHATSAPP_UNAVAILABLE");
}

#[tokio::test]
async fn api_key_twins_send_and_read() {
    let app = TestApp::spawn().await;
    let token = app.token("k@msg.test").await;
    let key = app.api_key(&token, "crm").await;
    let session = app.connected_session(&token, "+14155550104").await;
    let r = app
        .post(
            "/api/external/messages/send-text",
            Auth::Key(&key),
            json!({"sessionId": session, "to": TO, "text": "Hello from ActiWAPI!"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["data"]["status"], "queued");
    let id = r.body["data"]["id"].as_str().unwrap();
    let r = app
        .get(&format!("/api/external/messages/{id}"), Auth::Key(&key))
        .await;
    assert_eq!(r.body["data"]["direction"], "outbound", "{}", r.body);
    // Each scheme only on its own routes.
    app.post(
        "/api/messages/send-text",
        Auth::Key(&key),
        json!({"sessionId": session, "to": TO, "text": "x"}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    app.post(
        "/api/external/messages/send-text",
        Auth::Bearer(&token),
        json!({"sessionId": session, "to": TO, "text": "x"}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    let r = app
        .post(
            "/api/external/messages/send-location",
            Auth::Key(&key),
            json!({"sessionId": session, "to": TO, "latitude": 12.9716, "longitude": 77.5946, "name": "Bengaluru"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = r.body["data"]["id"].as_str().unwrap();
    let m = app
        .wait_message(&token, id, "sent", |d| d["sentAt"].is_string())
        .await;
    assert_eq!(m["type"], "location");
    assert_eq!(m["location"]["latitude"], 12.9716);
    assert_eq!(m["location"]["name"], "Bengaluru");
}

#[tokio::test]
async fn numbers_not_on_whatsapp_fail_with_a_reason() {
    let app = TestApp::spawn_with(|c| c.sandbox.not_on_whatsapp = vec!["14155550199".into()]).await;
    let token = app.token("n@msg.test").await;
    let session = app.connected_session(&token, "+14155550105").await;
    let id = app
        .queue_text(&token, &session, "+1 415 555 0199", "anyone there?")
        .await;
    let m = app
        .wait_message(&token, &id, "failed", |d| d["status"] == "failed")
        .await;
    assert!(
        m["error"].as_str().unwrap().contains("not on WhatsApp"),
        "{m}"
    );
    assert!(m["failedAt"].is_string() && m["sentAt"].is_null());
    assert_eq!(m["attempts"], 1, "permanent errors are not retried");
}

#[tokio::test]
async fn listing_filters_and_pages_newest_first() {
    let app = TestApp::spawn_with(|c| c.sandbox.receipts = false).await;
    let token = app.token("l@msg.test").await;
    let s1 = app.connected_session(&token, "+14155550106").await;
    let s2 = app.connected_session(&token, "+14155550107").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.queue_text(&token, &s1, TO, &format!("m{i}")).await);
    }
    app.queue_text(&token, &s2, "+14155550123", "other").await;
    app.post(
        &format!("/api/v1/whatsapp/{s1}/sandbox/inbound"),
        Auth::Bearer(&token),
        json!({"from": TO, "text": "reply"}),
    )
    .await;

    let r = app
        .get(
            &format!("/api/messages?sessionId={s1}&direction=outbound&limit=2&page=1"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.body["pagination"]["total"], 5, "{}", r.body);
    assert_eq!(r.body["pagination"]["totalPages"], 3);
    assert_eq!(r.body["data"][0]["id"], ids[4].as_str(), "newest first");
    assert_eq!(r.body["data"][1]["id"], ids[3].as_str());
    let r = app
        .get("/api/messages?direction=inbound", Auth::Bearer(&token))
        .await;
    assert_eq!(r.body["pagination"]["total"], 1);
    assert_eq!(r.body["data"][0]["from"], TO);
    let r = app
        .get(
            "/api/messages?to=%2B1%20415%20555%200123",
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.body["pagination"]["total"], 1, "{}", r.body);
    for id in &ids {
        app.wait_message(&token, id, "sent", |d| d["status"] == "sent")
            .await;
    }
    let r = app
        .get(
            &format!("/api/messages?status=sent&sessionId={s1}"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.body["pagination"]["total"], 5, "{}", r.body);

    let r = app
        .get(
            "/api/messages?direction=sideways&status=lost&sessionId=x&limit=0",
            Auth::Bearer(&token),
        )
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    let r = app
        .get(
            "/api/messages?direction=sideways&status=lost&sessionId=x",
            Auth::Bearer(&token),
        )
        .await;
    for f in ["direction", "status", "sessionId"] {
        assert!(r.body["errors"][f].is_string(), "{f}: {}", r.body);
    }
}

#[tokio::test]
async fn idempotency_key_returns_the_first_message() {
    let app = TestApp::spawn().await;
    let token = app.token("i@msg.test").await;
    let session = app.connected_session(&token, "+14155550108").await;
    let send = |key: &'static str, text: &'static str| {
        let req = app
            .client
            .post(app.url("/api/messages/send-text"))
            .bearer_auth(&token)
            .header("Idempotency-Key", key)
            .json(&json!({"sessionId": session, "to": TO, "text": text}));
        async move { common::Resp::read(req.send().await.unwrap()).await }
    };
    let first = send("order-42", "Your order shipped").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let again = send("order-42", "Your order shipped").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["data"]["id"], first.body["data"]["id"]);
    // Concurrent duplicates also collapse into one message.
    let (x, y) = tokio::join!(send("order-43", "a"), send("order-43", "a"));
    assert_eq!(
        x.body["data"]["id"], y.body["data"]["id"],
        "{} {}",
        x.body, y.body
    );
    // Same key, different request: refused.
    send("order-42", "Something else")
        .await
        .assert_error(409, "CONFLICT");
    let r = app.get("/api/messages", Auth::Bearer(&token)).await;
    assert_eq!(r.body["pagination"]["total"], 2, "{}", r.body);
    // After 24 h the key is forgotten (sign in again: the access token expired meanwhile).
    app.clock.advance(chrono::Duration::hours(25));
    let login = app
        .post(
            "/api/auth/login",
            Auth::None,
            json!({"email": "i@msg.test", "password": "correct-horse-battery"}),
        )
        .await;
    let token = login.body["data"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let send = |key: &'static str, text: &'static str| {
        let req = app
            .client
            .post(app.url("/api/messages/send-text"))
            .bearer_auth(&token)
            .header("Idempotency-Key", key)
            .json(&json!({"sessionId": session, "to": TO, "text": text}));
        async move { common::Resp::read(req.send().await.unwrap()).await }
    };
    let later = send("order-42", "Your order shipped").await;
    assert_eq!(later.status, StatusCode::OK, "{}", later.body);
    assert_ne!(later.body["data"]["id"], first.body["data"]["id"]);
    // Keys are bounded.
    let r = app
        .client
        .post(app.url("/api/messages/send-text"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "k".repeat(256))
        .json(&json!({"sessionId": session, "to": TO, "text": "x"}))
        .send()
        .await
        .unwrap();
    let r = common::Resp::read(r).await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(r.body["errors"]["Idempotency-Key"].is_string());
}

fn form(session: &str, file: Option<(&'static [u8], &'static str)>) -> Form {
    let f = Form::new()
        .text("sessionId", session.to_owned())
        .text("to", TO)
        .text("caption", "Optional caption");
    match file {
        Some((bytes, name)) => f.part("file", Part::bytes(bytes).file_name(name)),
        None => f,
    }
}

#[tokio::test]
async fn images_are_stored_sniffed_and_served_back() {
    let app = TestApp::spawn().await;
    let token = app.token("img@msg.test").await;
    let key = app.api_key(&token, "crm").await;
    let session = app.connected_session(&token, "+14155550109").await;

    // The file comes first here: field order does not matter.
    let f = Form::new()
        .part(
            "file",
            Part::bytes(PNG_1X1)
                .file_name("photo.bin")
                .mime_str("application/pdf")
                .unwrap(),
        )
        .text("sessionId", session.clone())
        .text("to", TO)
        .text("caption", "Optional caption");
    let r = app
        .multipart("/api/messages/send-image", Auth::Bearer(&token), f)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["data"]["status"], "queued");
    let id = r.body["data"]["id"].as_str().unwrap().to_owned();
    let m = app
        .wait_message(&token, &id, "sent", |d| d["sentAt"].is_string())
        .await;
    assert_eq!(m["type"], "image");
    assert_eq!(m["caption"], "Optional caption");
    assert_eq!(m["media"]["mimeType"], "image/png", "type from the bytes");
    assert_eq!(m["media"]["size"], PNG_1X1.len());
    assert_eq!(m["media"]["url"], format!("/api/messages/{id}/media"));

    let res = app
        .client
        .get(app.url(&format!("/api/messages/{id}/media")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.bytes().await.unwrap().as_ref(), PNG_1X1);
    // Content-addressed: the same bytes are stored once.
    let sha = m["media"]["sha256"].as_str().unwrap();
    let stored = app.data_dir().join("media").join(&sha[..2]).join(sha);
    assert_eq!(std::fs::read(stored).unwrap(), PNG_1X1);

    // The API-key twin, and the JSON variant with a base64 file.
    let r = app
        .multipart(
            "/api/external/messages/send-image",
            Auth::Key(&key),
            form(&session, Some((PNG_1X1, "a.png"))),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(PNG_1X1);
    let r = app
        .post(
            "/api/messages/send-image",
            Auth::Bearer(&token),
            json!({"sessionId": session, "to": TO, "file": format!("data:image/png;base64,{b64}")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // A text message has no media.
    let text = app.queue_text(&token, &session, TO, "no media").await;
    app.get(&format!("/api/messages/{text}/media"), Auth::Bearer(&token))
        .await
        .assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn bad_uploads_are_refused_by_their_content() {
    let app = TestApp::spawn_with(|c| c.messaging.media.image = 1024).await;
    let token = app.token("bad@msg.test").await;
    let session = app.connected_session(&token, "+14155550110").await;
    let cases: [(&str, Form, &str); 6] = [
        (
            "/api/messages/send-image",
            form(&session, Some((b"I am text, not a picture", "cat.png"))),
            "file",
        ),
        (
            "/api/messages/send-image",
            form(&session, Some((b"", "empty.png"))),
            "file",
        ),
        ("/api/messages/send-image", form(&session, None), "file"),
        (
            "/api/messages/send-video",
            form(&session, Some((PNG_1X1, "clip.mp4"))),
            "file",
        ),
        (
            "/api/messages/send-audio",
            form(
                &session,
                Some((b"ID3\x04\x00\x00\x00\x00\x00\x00", "a.mp3")),
            ),
            "caption",
        ),
        (
            "/api/messages/send-image",
            Form::new()
                .text("sessionId", "nope")
                .text("to", "abc")
                .part("file", Part::bytes(PNG_1X1).file_name("ok.png")),
            "to",
        ),
    ];
    for (path, f, field) in cases {
        let r = app.multipart(path, Auth::Bearer(&token), f).await;
        r.assert_error(400, "VALIDATION_ERROR");
        assert!(
            r.body["errors"][field].is_string(),
            "{path}/{field}: {}",
            r.body
        );
    }
    let big: &'static [u8] = Box::leak([PNG_1X1, &vec![0u8; 2048]].concat().into_boxed_slice());
    let r = app
        .multipart(
            "/api/messages/send-image",
            Auth::Bearer(&token),
            form(&session, Some((big, "big.png"))),
        )
        .await;
    r.assert_error(413, "PAYLOAD_TOO_LARGE");
    let r = app
        .post_empty("/api/messages/send-image", Auth::Bearer(&token))
        .await;
    r.assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    // A text file is a fine document, typed from its content.
    let r = app
        .multipart(
            "/api/messages/send-document",
            Auth::Bearer(&token),
            form(&session, Some((b"quarterly numbers", "report.png"))),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = r.body["data"]["id"].as_str().unwrap();
    let m = app
        .get(&format!("/api/messages/{id}"), Auth::Bearer(&token))
        .await;
    assert_eq!(m.body["data"]["media"]["mimeType"], "text/plain");
    assert_eq!(m.body["data"]["media"]["fileName"], "report.png");
    // Nothing refused was stored; the staging area is empty again.
    let r = app.get("/api/messages", Auth::Bearer(&token)).await;
    assert_eq!(r.body["pagination"]["total"], 1, "{}", r.body);
    let staging = app.data_dir().join("media").join("staging");
    assert_eq!(std::fs::read_dir(staging).unwrap().count(), 0);
}

#[tokio::test]
async fn sandbox_inbound_messages_are_stored_and_listed() {
    let app = TestApp::spawn().await;
    let token = app.token("in@msg.test").await;
    let other = app.token("other@msg.test").await;
    let session = app.connected_session(&token, "+14155550111").await;
    let r = app
        .post(
            &format!("/api/v1/whatsapp/{session}/sandbox/inbound"),
            Auth::Bearer(&token),
            json!({"from": "+91 98765 43210", "text": "Is my order ready?"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let m = &r.body["data"];
    assert_eq!(m["direction"], "inbound");
    assert_eq!(m["status"], "received");
    assert_eq!(m["from"], TO);
    assert_eq!(m["remoteJid"], "919876543210@s.whatsapp.net");
    assert_eq!(m["text"], "Is my order ready?");
    let id = m["id"].as_str().unwrap();
    let r = app
        .get(&format!("/api/messages/{id}"), Auth::Bearer(&token))
        .await;
    assert_eq!(r.body["data"]["direction"], "inbound");

    let r = app
        .post(
            &format!("/api/v1/whatsapp/{session}/sandbox/inbound"),
            Auth::Bearer(&token),
            json!({"from": "abc", "text": ""}),
        )
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(r.body["errors"]["from"].is_string() && r.body["errors"]["text"].is_string());
    app.post(
        &format!("/api/v1/whatsapp/{session}/sandbox/inbound"),
        Auth::Bearer(&other),
        json!({"from": TO, "text": "hi"}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    let idle = app.create_session(&token, "Idle").await;
    app.post(
        &format!("/api/v1/whatsapp/{idle}/sandbox/inbound"),
        Auth::Bearer(&token),
        json!({"from": TO, "text": "hi"}),
    )
    .await
    .assert_error(409, "CONFLICT");
}
