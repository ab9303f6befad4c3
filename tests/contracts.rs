//! The committed OpenAPI document and GraphQL SDL match what the code generates, and are served.

mod common;

use common::{Auth, TestApp};
use reqwest::StatusCode;

fn committed(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[test]
fn openapi_spec_has_not_drifted() {
    let generated = wagate::http::openapi_json();
    assert!(
        committed("openapi/openapi.json") == generated,
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
}

#[test]
fn graphql_sdl_has_not_drifted() {
    let generated = wagate::graphql::sdl();
    assert!(
        committed("schema/schema.graphql") == generated,
        "schema/schema.graphql is stale: run `cargo run -- schema > schema/schema.graphql`"
    );
}

#[test]
fn spec_declares_security_schemes_and_the_error_envelope() {
    let spec: serde_json::Value = serde_json::from_str(&wagate::http::openapi_json()).unwrap();
    let c = &spec["components"];
    assert_eq!(c["securitySchemes"]["bearerAuth"]["scheme"], "bearer");
    assert_eq!(c["securitySchemes"]["apiKeyAuth"]["name"], "X-API-Key");
    assert_eq!(c["securitySchemes"]["apiKeyAuth"]["in"], "header");
    let env = &c["schemas"]["ErrorEnvelope"]["properties"];
    for field in ["success", "code", "message", "errors"] {
        assert!(env.get(field).is_some(), "ErrorEnvelope lacks {field}");
    }
    for path in [
        "/api/auth/register",
        "/api/auth/login",
        "/api/auth/refresh",
        "/api/auth/logout",
        "/api/auth/me",
        "/api/external/api-keys",
        "/api/external/api-keys/{id}",
    ] {
        assert!(spec["paths"].get(path).is_some(), "spec lacks {path}");
    }
}

#[tokio::test]
async fn spec_swagger_ui_and_sdl_are_served() {
    let app = TestApp::spawn().await;
    let r = app.get("/openapi.json", Auth::None).await;
    assert_eq!(r.status, StatusCode::OK);
    let committed: serde_json::Value =
        serde_json::from_str(&committed("openapi/openapi.json")).unwrap();
    assert_eq!(r.body, committed);

    let r = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "Swagger UI page");
    // Vendored assets: served by us, not a CDN.
    let r = app
        .client
        .get(app.url("/docs/swagger-ui.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
