//! Routes a provider serves itself (`/providers/<kind>/…`), the way Meta's Cloud API webhook
//! will reach its sessions: found by their settings across tenants, updates stored before the
//! route answers.

mod common;

use std::sync::Arc;

use axum::{Json, http::StatusCode as AxumStatus, routing::post};
use common::{Auth, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wagate::{
    clock::{Clock, ManualClock},
    domain::{Location, MessageKind},
    phone::PhoneNumber,
    provider::{
        Capabilities, Connection, InboundMessage, MessageUpdate, Provider, ProviderError,
        ProviderKind, Providers, SessionContext, routes::ProviderHost, sandbox::SandboxProvider,
    },
};

/// The sandbox, plus a webhook like the Cloud API's: `POST /providers/sandbox/inbound`
/// `{phoneNumberId, id, from, text}` delivers a message to the sessions with that
/// `phoneNumberId` setting.
struct Hooked(SandboxProvider);

#[async_trait::async_trait]
impl Provider for Hooked {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Sandbox
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    fn check_settings(&self, settings: &Value) -> Result<(), Vec<(String, String)>> {
        match settings.get("phoneNumberId").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => Ok(()),
            _ => Err(vec![("phoneNumberId".into(), "required".into())]),
        }
    }
    async fn start(&self, ctx: SessionContext) -> Result<Arc<dyn Connection>, ProviderError> {
        self.0.start(ctx).await
    }
    fn routes(&self, host: ProviderHost) -> Option<axum::Router> {
        Some(axum::Router::new().route(
            "/inbound",
            post(move |Json(body): Json<Value>| {
                let host = host.clone();
                async move { deliver(host, body).await }
            }),
        ))
    }
}

async fn deliver(host: ProviderHost, body: Value) -> (AxumStatus, Json<Value>) {
    let id = body["phoneNumberId"].as_str().unwrap_or_default();
    let sessions = match host
        .sessions
        .find(ProviderKind::Sandbox, "phoneNumberId", id)
        .await
    {
        Ok(s) if !s.is_empty() => s,
        Ok(_) => {
            return (
                AxumStatus::NOT_FOUND,
                Json(json!({"error": "unknown number"})),
            );
        }
        Err(e) => {
            return (
                AxumStatus::BAD_GATEWAY,
                Json(json!({"error": e.to_string()})),
            );
        }
    };
    let Ok(from) = PhoneNumber::parse(body["from"].as_str().unwrap_or_default()) else {
        return (AxumStatus::BAD_REQUEST, Json(json!({"error": "from"})));
    };
    for s in &sessions {
        let mut msg = InboundMessage::text(
            s.tenant_id,
            s.session_id,
            body["id"].as_str().unwrap_or_default().to_owned(),
            from.clone(),
            body["text"].as_str().map(str::to_owned),
            chrono::Utc::now(),
        );
        // Group chats and places, as a real transport reports them.
        msg.group = body["group"].as_str().map(str::to_owned);
        msg.quoted_provider_id = body["quoted"].as_str().map(str::to_owned);
        if let Ok(place) = serde_json::from_value::<Location>(body["location"].clone()) {
            msg.kind = MessageKind::Location;
            msg.location = Some(place);
        }
        let update = MessageUpdate::Inbound(Box::new(msg));
        if !host.updates.report(update).await {
            return (
                AxumStatus::SERVICE_UNAVAILABLE,
                Json(json!({"error": "not stored"})),
            );
        }
    }
    (AxumStatus::OK, Json(json!({"stored": sessions.len()})))
}

async fn inbound(app: &TestApp, token: &str) -> Vec<Value> {
    let r = app
        .get("/api/messages?direction=inbound", Auth::Bearer(token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_provider_route_reaches_the_sessions_its_settings_name() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let cfg = common::test_config(dir.path()).await;
    let clock = ManualClock::default();
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let providers = Providers::default().with(Arc::new(Hooked(SandboxProvider::new(
        cfg.sandbox.clone(),
        shared,
    ))));
    let app = TestApp::start_with(cfg, dir, clock, Some(providers)).await;
    let mine = app.token("hooked@example.com").await;
    let theirs = app.token("hooked-other@example.com").await;
    for (token, number) in [(&mine, "1001"), (&theirs, "2002")] {
        let r = app
            .post(
                "/api/v1/whatsapp",
                Auth::Bearer(token),
                json!({"name": "hooked", "sandbox": {"phoneNumberId": number}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["data"]["settings"]["phoneNumberId"], number);
    }

    // No credentials: the route authenticates its caller itself (here: nobody).
    let hook = app.url("/providers/sandbox/inbound");
    let client = reqwest::Client::new();
    let r = client
        .post(&hook)
        .json(&json!({"phoneNumberId": "1001", "id": "wamid.1", "from": "+14155550123", "text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["stored"], 1);
    // Stored before the route answered, in the tenant of the session the number names only.
    let got = inbound(&app, &mine).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["text"], "hi");
    assert_eq!(got[0]["from"], "14155550123");
    assert!(inbound(&app, &theirs).await.is_empty());

    // A number no session has is the provider's own 404; a repeat of one id is stored once.
    let r = client
        .post(&hook)
        .json(
            &json!({"phoneNumberId": "100", "id": "wamid.2", "from": "+14155550123", "text": "?"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = client
        .post(&hook)
        .json(&json!({"phoneNumberId": "1001", "id": "wamid.1", "from": "+14155550123", "text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(inbound(&app, &mine).await.len(), 1);

    // A place shared in a group: stored under the group, from its sender.
    let r = client
        .post(&hook)
        .json(&json!({
            "phoneNumberId": "1001", "id": "wamid.3", "from": "+14155550124",
            "group": "120363025246125486@g.us", "quoted": "wamid.1",
            "location": {"latitude": 52.52, "longitude": 13.405, "name": "Alexanderplatz"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let got = inbound(&app, &mine).await;
    let place = got
        .iter()
        .find(|m| m["providerMessageId"] == "wamid.3")
        .unwrap();
    assert_eq!(place["remoteJid"], "120363025246125486@g.us", "{place}");
    assert_eq!(place["from"], "14155550124", "{place}");
    assert_eq!(place["type"], "location", "{place}");
    assert_eq!(place["location"]["latitude"], 52.52, "{place}");
    assert_eq!(place["location"]["name"], "Alexanderplatz", "{place}");
    // It replies to wamid.1, which the gateway has: the quote names wagate's id for it.
    let first = got
        .iter()
        .find(|m| m["providerMessageId"] == "wamid.1")
        .unwrap();
    assert_eq!(place["quotedMessageId"], first["id"], "{place}");
}

#[tokio::test]
async fn providers_without_routes_serve_none() {
    let app = TestApp::spawn().await;
    let r = reqwest::Client::new()
        .post(app.url("/providers/sandbox/inbound"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["code"], "NOT_FOUND");
}
