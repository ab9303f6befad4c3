//! The error envelope for every failure mode, request ids, and operations endpoints.

mod common;

use common::{Auth, Resp, TestApp};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::json;

#[tokio::test]
async fn malformed_json_is_a_validation_error() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    let r = Resp::read(r).await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(
        r.body["errors"]["body"]
            .as_str()
            .unwrap()
            .starts_with("Malformed JSON")
    );

    let r = app.post("/api/auth/login", Auth::None, json!([1, 2])).await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(r.body["errors"]["body"].is_string());
}

#[tokio::test]
async fn missing_or_wrong_content_type_is_415() {
    let app = TestApp::spawn().await;
    let body = json!({"email": "a@b.co", "password": "password1"}).to_string();
    let r = app
        .client
        .post(app.url("/api/auth/login"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    Resp::read(r)
        .await
        .assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    let r = app
        .client
        .post(app.url("/api/auth/login"))
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    Resp::read(r)
        .await
        .assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
}

#[tokio::test]
async fn unknown_route_and_wrong_method() {
    let app = TestApp::spawn().await;
    let r = app.get("/api/nothing-here", Auth::None).await;
    r.assert_error(404, "NOT_FOUND");
    let r = app
        .call(reqwest::Method::PUT, "/api/auth/login", Auth::None, None)
        .await;
    r.assert_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(r.headers["allow"], "POST");
    let r = app
        .call(
            reqwest::Method::DELETE,
            "/api/external/api-keys",
            Auth::None,
            None,
        )
        .await;
    r.assert_error(405, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let app = TestApp::spawn_with(|c| c.body_limit = 4096).await;
    let big = json!({"email": "a@b.co", "password": "x".repeat(10_000), "name": "n"});
    let r = app.post("/api/auth/register", Auth::None, big).await;
    r.assert_error(413, "PAYLOAD_TOO_LARGE");
    // Under the limit still works.
    let r = app
        .post(
            "/api/auth/register",
            Auth::None,
            json!({"email": "a@b.co", "password": "password1", "name": "n"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn internal_errors_hide_their_cause() {
    let app = TestApp::spawn().await;
    let token = app.token("boom@example.com").await;
    app.state
        .db
        .execute_unprepared("DROP TABLE api_keys")
        .await
        .unwrap();
    let r = app
        .get("/api/external/api-keys", Auth::Bearer(&token))
        .await;
    r.assert_error(500, "INTERNAL_ERROR");
    assert_eq!(r.body["message"], "Internal server error");
    assert!(!r.body.to_string().to_lowercase().contains("api_keys"));
    assert!(r.body.get("errors").is_none());
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-me-123");
    let r = app.get("/api/missing", Auth::None).await;
    let generated = r.headers["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let r = app.get("/healthz", Auth::None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"success": true, "data": {"status": "ok"}}));
    let r = app.get("/readyz", Auth::None).await;
    assert_eq!(r.status, StatusCode::OK);
    let mut data = r.body["data"].clone();
    assert_eq!(data["instance"], app.state.cfg.runtime.instance_id.as_str());
    assert_eq!(
        data["tasks"],
        json!({"commands": "ok", "dispatcher": "ok", "sessions": "ok", "updates": "ok", "webhooks": "ok"})
    );
    for k in ["instance", "tasks"] {
        data.as_object_mut().unwrap().remove(k);
    }
    assert_eq!(
        data,
        json!({"status": "ok", "database": "ok", "redis": "disabled"})
    );
}

#[tokio::test]
async fn readiness_reports_redis() {
    let Some(url) = common::redis_url_or_skip("readiness_reports_redis").await else {
        return;
    };
    let app = TestApp::spawn_with(|c| c.redis_url = Some(url.into())).await;
    let r = app.get("/readyz", Auth::None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["redis"], "ok");

    // A configured but unreachable Redis makes the instance not ready; the API still works.
    let app =
        TestApp::spawn_with(|c| c.redis_url = Some("redis://127.0.0.1:1/".to_owned().into())).await;
    let r = app.get("/readyz", Auth::None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body["success"], false);
    assert_eq!(r.body["data"]["redis"], "down");
    assert_eq!(r.body["data"]["database"], "ok");
    app.register("still-works@example.com").await;
}
