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

/// What generated clients trip over, checked on the document itself.
#[test]
fn spec_is_sound_for_client_generators() {
    let spec: serde_json::Value = serde_json::from_str(&wagate::http::openapi_json()).unwrap();
    let mut ids = std::collections::BTreeMap::<String, String>::new();
    let mut problems = Vec::new();
    assert_eq!(spec["servers"][0]["url"], "/");
    assert_eq!(spec["info"]["license"]["identifier"], "Apache-2.0");
    for (path, item) in spec["paths"].as_object().unwrap() {
        let in_path: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{} {path}", method.to_uppercase());
            match op["operationId"].as_str() {
                None => problems.push(format!("{at}: no operationId")),
                Some(id) => {
                    if let Some(other) = ids.insert(id.to_owned(), at.clone()) {
                        problems.push(format!("{at}: operationId {id} also used by {other}"));
                    }
                    if !id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                        || !id.chars().all(|c| c.is_ascii_alphanumeric())
                    {
                        problems.push(format!("{at}: operationId {id} is not camelCase"));
                    }
                }
            }
            if op["description"].as_str().is_none_or(str::is_empty)
                || op["description"] == op["summary"]
            {
                problems.push(format!("{at}: no description beyond its summary"));
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let declared: Vec<&str> = params
                .iter()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            for p in &declared {
                if !in_path.contains(p) {
                    problems.push(format!("{at}: path parameter {p} is not in the path"));
                }
            }
            for p in &in_path {
                if !declared.contains(p) {
                    problems.push(format!("{at}: {{{p}}} is not declared"));
                }
            }
            for p in &params {
                if matches!(p["name"].as_str(), Some("page" | "limit"))
                    && p["schema"]["type"] != "integer"
                {
                    problems.push(format!("{at}: {} is not an integer", p["name"]));
                }
            }
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let public = matches!(
                path.as_str(),
                "/api/auth/register"
                    | "/api/auth/login"
                    | "/api/auth/refresh"
                    | "/api/auth/logout"
                    | "/healthz"
                    | "/readyz"
            );
            if secured == public {
                problems.push(format!(
                    "{at}: security requirement is wrong (public: {public})"
                ));
            }
        }
    }
    // Every schema property says what it is.
    for (name, schema) in spec["components"]["schemas"].as_object().unwrap() {
        for (prop, p) in schema["properties"].as_object().into_iter().flatten() {
            if p["description"].as_str().is_none_or(str::is_empty) {
                problems.push(format!("schema {name}.{prop}: no description"));
            }
        }
    }
    // Every $ref resolves.
    let text = spec.to_string();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        if spec["components"]["schemas"].get(name).is_none() {
            problems.push(format!("dangling $ref {name}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
