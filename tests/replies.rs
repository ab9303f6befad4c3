//! Replies: `quotedMessageId` on every send (text, location, media; REST and GraphQL), checked
//! against the session's own messages, stored, shown, and handed to the provider with the
//! quoted message's WhatsApp id and text.

mod common;

use std::sync::{Arc, Mutex};

use common::{Auth, PNG_1X1, TestApp};
use reqwest::{
    StatusCode,
    multipart::{Form, Part},
};
use serde_json::{Value, json};
use uuid::Uuid;
use wagate::{
    clock::ManualClock,
    provider::{
        Capabilities, Connection, Control, ControlReply, OutboundMessage, Provider, ProviderError,
        ProviderKind, Providers, Quoted, SendError, SentMessage, SessionContext,
        sandbox::SandboxProvider,
    },
};

type Seen = Arc<Mutex<Vec<(Uuid, Option<Quoted>)>>>;

/// The sandbox, noting the quote each send carries.
struct Recording {
    inner: SandboxProvider,
    seen: Seen,
}

struct RecordingConnection {
    inner: Arc<dyn Connection>,
    seen: Seen,
}

#[async_trait::async_trait]
impl Provider for Recording {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Sandbox
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn start(&self, ctx: SessionContext) -> Result<Arc<dyn Connection>, ProviderError> {
        Ok(Arc::new(RecordingConnection {
            inner: self.inner.start(ctx).await?,
            seen: self.seen.clone(),
        }))
    }
}

#[async_trait::async_trait]
impl Connection for RecordingConnection {
    async fn send(&self, msg: OutboundMessage) -> Result<SentMessage, SendError> {
        self.seen
            .lock()
            .unwrap()
            .push((msg.message_id, msg.quoted.clone()));
        self.inner.send(msg).await
    }
    async fn control(&self, command: Control) -> Result<ControlReply, ProviderError> {
        self.inner.control(command).await
    }
    async fn logout(&self) -> Result<(), ProviderError> {
        self.inner.logout().await
    }
    async fn close(&self) {
        self.inner.close().await
    }
}

async fn recording_app() -> (TestApp, Seen) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let cfg = common::test_config(dir.path()).await;
    let clock = ManualClock::default();
    let seen = Seen::default();
    let providers = Providers::default().with(Arc::new(Recording {
        inner: SandboxProvider::new(cfg.sandbox.clone(), Arc::new(clock.clone())),
        seen: seen.clone(),
    }));
    (
        TestApp::start_with(cfg, dir, clock, Some(providers)).await,
        seen,
    )
}

async fn sent(app: &TestApp, token: &str, id: &str) -> Value {
    app.wait_message(token, id, "sent", |m| m["providerMessageId"].is_string())
        .await
}

#[tokio::test]
async fn replies_quote_an_earlier_message_of_their_session() {
    let (app, seen) = recording_app().await;
    let token = app.token("replies@example.com").await;
    let session = app.connected_session(&token, "+14155550100").await;
    let original = app
        .queue_text(&token, &session, "+14155550123", "Is the order ready?")
        .await;
    let first = sent(&app, &token, &original).await;

    // A text reply, over REST.
    let r = app
        .post(
            "/api/messages/send-text",
            Auth::Bearer(&token),
            json!({"sessionId": session, "to": "+14155550123", "text": "Yes!", "quotedMessageId": original}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let reply = r.body["data"]["id"].as_str().unwrap().to_owned();
    let m = sent(&app, &token, &reply).await;
    assert_eq!(m["quotedMessageId"], original.as_str(), "{m}");
    // The provider got the quoted message's WhatsApp id and text.
    let quote = seen
        .lock()
        .unwrap()
        .iter()
        .find(|(id, _)| id.to_string() == reply)
        .and_then(|(_, q)| q.clone())
        .expect("the reply carried its quote");
    assert_eq!(
        quote.provider_message_id,
        first["providerMessageId"].as_str().unwrap()
    );
    assert!(quote.from_me);
    assert_eq!(quote.text.as_deref(), Some("Is the order ready?"));
    // A message that is no reply has none.
    assert!(first["quotedMessageId"].is_null(), "{first}");

    // A location and an image reply, and a GraphQL one.
    let r = app
        .post(
            "/api/messages/send-location",
            Auth::Bearer(&token),
            json!({"sessionId": session, "to": "+14155550123", "latitude": 1.5, "longitude": 2.5, "quotedMessageId": original}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let place = r.body["data"]["id"].as_str().unwrap().to_owned();
    let form = Form::new()
        .text("sessionId", session.clone())
        .text("to", "+14155550123")
        .text("quotedMessageId", original.clone())
        .part("file", Part::bytes(PNG_1X1.to_vec()).file_name("dot.png"));
    let r = app
        .multipart("/api/messages/send-image", Auth::Bearer(&token), form)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let image = r.body["data"]["id"].as_str().unwrap().to_owned();
    let g = app
        .graphql(
            Auth::Bearer(&token),
            "mutation SendText($s: ID!, $q: ID) { sendText(sessionId: $s, to: \"+14155550123\", text: \"ok\", quotedMessageId: $q) { id } }",
            json!({"s": session, "q": original}),
        )
        .await;
    let via_graphql = g["data"]["sendText"]["id"].as_str().unwrap().to_owned();
    for id in [&place, &image, &via_graphql] {
        let m = sent(&app, &token, id).await;
        assert_eq!(m["quotedMessageId"], original.as_str(), "{m}");
    }
    let g = app
        .graphql(
            Auth::Bearer(&token),
            "query Message($id: ID!) { message(id: $id) { quotedMessageId } }",
            json!({"id": via_graphql}),
        )
        .await;
    assert_eq!(
        g["data"]["message"]["quotedMessageId"],
        original.as_str(),
        "{g}"
    );
}

#[tokio::test]
async fn a_quote_must_be_a_message_of_the_same_session() {
    let app = TestApp::spawn().await;
    let token = app.token("quotes@example.com").await;
    let session = app.connected_session(&token, "+14155550100").await;
    let other_session = app.connected_session(&token, "+14155550101").await;
    let elsewhere = app
        .queue_text(&token, &other_session, "+14155550123", "other line")
        .await;
    let stranger = app.token("stranger@example.com").await;
    let theirs_session = app.connected_session(&stranger, "+14155550102").await;
    let theirs = app
        .queue_text(&stranger, &theirs_session, "+14155550123", "theirs")
        .await;

    let send = |quoted: String| {
        let (app, token, session) = (&app, &token, &session);
        async move {
            app.post(
                "/api/messages/send-text",
                Auth::Bearer(token),
                json!({"sessionId": session, "to": "+14155550123", "text": "re", "quotedMessageId": quoted}),
            )
            .await
        }
    };
    let r = send("not-a-uuid".into()).await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(
        r.body["errors"]["quotedMessageId"].is_string(),
        "{}",
        r.body
    );
    let r = send(elsewhere).await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(
        r.body["errors"]["quotedMessageId"]
            .as_str()
            .unwrap()
            .contains("another session"),
        "{}",
        r.body
    );
    // Another tenant's message is not there at all.
    send(theirs.clone()).await.assert_error(404, "NOT_FOUND");
    send(Uuid::now_v7().to_string())
        .await
        .assert_error(404, "NOT_FOUND");
}
