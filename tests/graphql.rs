//! GraphQL over HTTP and WebSocket: auth by header and by connection_init, error codes.

mod common;

use common::{Auth, GqlWs, InitRefused, TestApp};
use reqwest::StatusCode;
use serde_json::json;

const REGISTER: &str = "mutation Register($input: RegisterInput!) { register(input: $input) { accessToken refreshToken expiresIn user { id email role } tenant { id name } } }";

#[tokio::test]
async fn register_login_refresh_and_me_over_http() {
    let app = TestApp::spawn().await;
    let r = app
        .graphql(
            Auth::None,
            REGISTER,
            json!({"input": {"email": "gql@example.com", "password": "password123", "name": "G", "company": "GraphCo"}}),
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    let reg = &r["data"]["register"];
    assert_eq!(reg["user"]["email"], "gql@example.com");
    assert_eq!(reg["user"]["role"], "owner");
    assert_eq!(reg["tenant"]["name"], "GraphCo");
    assert_eq!(reg["expiresIn"], 900);

    // The same account works over REST: one service layer.
    let rest = app
        .post(
            "/api/auth/login",
            Auth::None,
            json!({"email": "gql@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(rest.status, StatusCode::OK);

    let r = app
        .graphql(
            Auth::None,
            "mutation Login { login(input: {email: \"gql@example.com\", password: \"password123\"}) { accessToken refreshToken } }",
            json!({}),
        )
        .await;
    let token = r["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let refresh = r["data"]["login"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = app
        .graphql(
            Auth::Bearer(&token),
            "query Me { me { user { email name } tenant { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["me"]["user"]["email"], "gql@example.com");
    assert_eq!(r["data"]["me"]["tenant"]["name"], "GraphCo");

    let q =
        "mutation RefreshToken($t: String!) { refreshToken(refreshToken: $t) { refreshToken } }";
    let r = app.graphql(Auth::None, q, json!({"t": refresh})).await;
    assert!(r["data"]["refreshToken"]["refreshToken"].is_string(), "{r}");
    let r = app.graphql(Auth::None, q, json!({"t": refresh})).await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "UNAUTHORIZED", "{r}");
}

#[tokio::test]
async fn errors_carry_the_same_codes_as_rest() {
    let app = TestApp::spawn().await;
    let r = app
        .graphql(Auth::None, "query Me { me { user { email } } }", json!({}))
        .await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "UNAUTHORIZED", "{r}");
    assert_eq!(r["data"], serde_json::Value::Null);

    let r = app
        .graphql(
            Auth::Bearer("not-a-token"),
            "query Me { me { user { email } } }",
            json!({}),
        )
        .await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "UNAUTHORIZED", "{r}");

    let r = app
        .graphql(
            Auth::None,
            REGISTER,
            json!({"input": {"email": "nope", "password": "short", "name": "x"}}),
        )
        .await;
    let e = &r["errors"][0]["extensions"];
    assert_eq!(e["code"], "VALIDATION_ERROR", "{r}");
    assert_eq!(e["errors"]["email"], "Valid email is required");
    assert_eq!(
        e["errors"]["password"],
        "Password must be at least 8 characters"
    );

    app.register("taken@example.com").await;
    let r = app
        .graphql(
            Auth::None,
            REGISTER,
            json!({"input": {"email": "taken@example.com", "password": "password123", "name": "x"}}),
        )
        .await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "CONFLICT", "{r}");
}

#[tokio::test]
async fn api_keys_over_graphql_and_key_auth() {
    let app = TestApp::spawn().await;
    let token = app.token("gqlkeys@example.com").await;
    let r = app
        .graphql(
            Auth::Bearer(&token),
            "mutation CreateApiKey { createApiKey(name: \"bot\") { id key prefix name } }",
            json!({}),
        )
        .await;
    let created = &r["data"]["createApiKey"];
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["name"], "bot");

    // Visible over REST too.
    let rest = app
        .get("/api/external/api-keys", Auth::Bearer(&token))
        .await;
    assert_eq!(rest.body["data"][0]["id"], id.as_str());

    let r = app
        .graphql(
            Auth::Bearer(&token),
            "query ApiKeys { apiKeys { id name lastUsedAt } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["apiKeys"][0]["id"], id.as_str());

    // An API key authenticates GraphQL, but cannot manage keys.
    let r = app
        .graphql(
            Auth::Key(&key),
            "query ApiKeys { apiKeys { id } }",
            json!({}),
        )
        .await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "FORBIDDEN", "{r}");

    // Tenant isolation: another tenant cannot revoke it.
    let other = app.token("gqlother@example.com").await;
    let q = "mutation RevokeApiKey($id: ID!) { revokeApiKey(id: $id) }";
    let r = app
        .graphql(Auth::Bearer(&other), q, json!({"id": id}))
        .await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "NOT_FOUND", "{r}");
    let r = app
        .graphql(Auth::Bearer(&token), q, json!({"id": "nope"}))
        .await;
    assert_eq!(
        r["errors"][0]["extensions"]["code"], "VALIDATION_ERROR",
        "{r}"
    );
    let r = app
        .graphql(Auth::Bearer(&token), q, json!({"id": id}))
        .await;
    assert_eq!(r["data"]["revokeApiKey"], true, "{r}");
    let r = app
        .graphql(
            Auth::Key(&key),
            "query ApiKeys { apiKeys { id } }",
            json!({}),
        )
        .await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "UNAUTHORIZED", "{r}");
}

#[tokio::test]
async fn graphiql_is_served() {
    let app = TestApp::spawn().await;
    let r = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = r.text().await.unwrap();
    assert!(html.contains("GraphiQL"));
    assert!(html.contains("/graphql/assets/start.js"));
    // The start script points subscriptions at /graphql/ws and opens the headers editor.
    let start = app.get_text("/graphql/assets/start.js").await;
    assert!(
        start.contains("subscriptionUrl") && start.contains("\"/ws\""),
        "{start}"
    );
    assert!(start.contains("defaultHeaders"), "{start}");
}

#[tokio::test]
async fn websocket_auth_with_bearer_in_connection_init() {
    let app = TestApp::spawn().await;
    let token = app.token("ws@example.com").await;
    let mut ws = GqlWs::connect(
        &app,
        "graphql-transport-ws",
        json!({"Authorization": format!("Bearer {token}")}),
    )
    .await
    .expect("ack");
    ws.subscribe("1", "query Me { me { user { email } } }", json!({}))
        .await;
    let msg = ws.next_json().await;
    assert_eq!(msg["type"], "next", "{msg}");
    assert_eq!(msg["id"], "1");
    assert_eq!(
        msg["payload"]["data"]["me"]["user"]["email"],
        "ws@example.com"
    );
    let done = ws.next_json().await;
    assert_eq!(done, json!({"type": "complete", "id": "1"}));
}

#[tokio::test]
async fn websocket_auth_with_api_key_and_anonymous() {
    let app = TestApp::spawn().await;
    let token = app.token("wskey@example.com").await;
    let key = app.api_key(&token, "ws").await;
    let mut ws = GqlWs::connect(&app, "graphql-transport-ws", json!({"X-API-Key": key}))
        .await
        .expect("ack");
    ws.subscribe("k", "query Me { me { user { email } } }", json!({}))
        .await;
    let msg = ws.next_json().await;
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{msg}"
    );

    // No credentials: the connection is accepted, protected fields are not.
    let mut ws = GqlWs::connect(&app, "graphql-transport-ws", json!({}))
        .await
        .expect("ack");
    ws.subscribe("a", "query Me { me { user { email } } }", json!({}))
        .await;
    let msg = ws.next_json().await;
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"], "UNAUTHORIZED",
        "{msg}"
    );
}

#[tokio::test]
async fn websocket_refuses_bad_credentials() {
    let app = TestApp::spawn().await;
    match GqlWs::connect(
        &app,
        "graphql-transport-ws",
        json!({"Authorization": "Bearer forged"}),
    )
    .await
    {
        Err(InitRefused::Closed(reason)) => {
            assert!(reason.contains("Invalid access token"), "{reason}")
        }
        other => panic!(
            "expected the socket to close, got {:?}",
            other.map(|_| "ack")
        ),
    }
    match GqlWs::connect(
        &app,
        "graphql-transport-ws",
        json!({"X-API-Key": "wag_unknown"}),
    )
    .await
    {
        Err(InitRefused::Closed(reason)) => assert!(reason.contains("API key"), "{reason}"),
        other => panic!(
            "expected the socket to close, got {:?}",
            other.map(|_| "ack")
        ),
    }
}

#[tokio::test]
async fn legacy_graphql_ws_protocol() {
    let app = TestApp::spawn().await;
    let token = app.token("legacy@example.com").await;
    let mut ws = GqlWs::connect(
        &app,
        "graphql-ws",
        json!({"Authorization": format!("Bearer {token}")}),
    )
    .await
    .expect("ack");
    ws.send(
        json!({"id": "1", "type": "start", "payload": {"query": "query Me { me { tenant { name } } }"}}),
    )
    .await;
    let msg = ws.next_json().await;
    assert_eq!(msg["type"], "data", "{msg}");
    assert_eq!(msg["payload"]["data"]["me"]["tenant"]["name"], "Acme");

    match GqlWs::connect(
        &app,
        "graphql-ws",
        json!({"Authorization": "Bearer forged"}),
    )
    .await
    {
        Err(InitRefused::Error(v)) => assert_eq!(v["type"], "connection_error"),
        other => panic!("expected connection_error, got {:?}", other.map(|_| "ack")),
    }
}

#[tokio::test]
async fn graphql_bodies_are_limited_too() {
    let app = TestApp::spawn_with(|c| c.body_limit = 4096).await;
    let big = format!("{{ me {{ user {{ email }} }} }} # {}", "x".repeat(10_000));
    let r = app
        .post("/graphql", Auth::None, json!({"query": big}))
        .await;
    r.assert_error(413, "PAYLOAD_TOO_LARGE");
    // A normal query still goes through.
    let r = app
        .graphql(Auth::None, "query Me { me { user { email } } }", json!({}))
        .await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "UNAUTHORIZED");
}

#[tokio::test]
async fn websocket_refuses_malformed_credentials() {
    let app = TestApp::spawn().await;
    for payload in [
        json!({"Authorization": 123}),
        json!({"X-API-Key": null}),
        json!("Bearer x"),
    ] {
        match GqlWs::connect(&app, "graphql-transport-ws", payload.clone()).await {
            Err(InitRefused::Closed(reason)) => {
                assert!(reason.contains("must be"), "{payload}: {reason}")
            }
            other => panic!(
                "{payload}: expected the socket to close, got {:?}",
                other.map(|_| "ack")
            ),
        }
    }
}

/// A failed non-null root field nulls the whole `data`, as the GraphQL specification's null
/// propagation requires; a request without errors keeps every field.
#[tokio::test]
async fn a_failed_root_field_nulls_data() {
    let app = TestApp::spawn().await;
    let token = app.token("nulls@gql.test").await;
    let q = "query Me($id: ID!) { me { user { id } } missing: session(id: $id) { id } }";
    let body = app
        .graphql(Auth::Bearer(&token), q, json!({"id": uuid::Uuid::now_v7()}))
        .await;
    assert!(body["data"].is_null(), "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["missing"]), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND");
    let body = app
        .graphql(
            Auth::Bearer(&token),
            "query Me { me { user { id } } sessions { data { id } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert!(body["data"]["me"]["user"]["id"].is_string(), "{body}");
}

/// The rule above holds because every root query and mutation field is non-null.
#[test]
fn every_root_field_is_non_null() {
    let sdl = wagate::graphql::sdl();
    let mut checked = 0;
    for root in ["type QueryRoot {", "type MutationRoot {"] {
        let start = sdl.find(root).unwrap() + root.len();
        let body = &sdl[start..start + sdl[start..].find("\n}").unwrap()];
        // Drop descriptions, then read each `name(args): Type` at parenthesis depth 0.
        let mut text = String::new();
        for (i, part) in body.split("\"\"\"").enumerate() {
            if i % 2 == 0 {
                text.push_str(part);
            }
        }
        let mut depth = 0;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ':' if depth == 0 => {
                    let ty: String = chars
                        .by_ref()
                        .take_while(|c| *c != '\n')
                        .collect::<String>()
                        .trim()
                        .to_owned();
                    assert!(ty.ends_with('!'), "{root} field of type {ty} is nullable");
                    checked += 1;
                }
                _ => {}
            }
        }
    }
    assert!(checked > 40, "only {checked} root fields found");
}

/// Automatic persisted queries (Apollo's protocol): a client sends the SHA-256 of its
/// document; the first time it is unknown, the client sends it once with the text, and from
/// then on the hash alone runs it, for any tenant.
#[tokio::test]
async fn persisted_queries_run_by_hash() {
    use sha2::Digest;
    let app = TestApp::spawn().await;
    let token = app.token("apq@example.com").await;
    let query = "query Me { me { user { email } } }";
    let hash: String = sha2::Sha256::digest(query.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let ext = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}});

    let r = app
        .post("/graphql", Auth::Bearer(&token), json!({"extensions": ext}))
        .await;
    assert_eq!(
        r.body["errors"][0]["message"], "PersistedQueryNotFound",
        "{}",
        r.body
    );

    let wrong = json!({"persistedQuery": {"version": 1, "sha256Hash": "00".repeat(32)}});
    let r = app
        .post(
            "/graphql",
            Auth::Bearer(&token),
            json!({"query": query, "extensions": wrong}),
        )
        .await;
    assert!(r.body["errors"][0]["message"].is_string(), "{}", r.body);
    assert!(r.body["data"].is_null(), "{}", r.body);

    let r = app
        .post(
            "/graphql",
            Auth::Bearer(&token),
            json!({"query": query, "operationName": "Me", "extensions": ext}),
        )
        .await;
    assert_eq!(
        r.body["data"]["me"]["user"]["email"], "apq@example.com",
        "{}",
        r.body
    );

    let other = app.token("apq-other@example.com").await;
    let r = app
        .post(
            "/graphql",
            Auth::Bearer(&other),
            json!({"operationName": "Me", "extensions": ext}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["data"]["me"]["user"]["email"], "apq-other@example.com",
        "{}",
        r.body
    );
}
