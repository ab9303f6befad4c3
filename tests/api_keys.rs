//! API keys: lifecycle, hashing, last use, revocation, and tenant isolation.

mod common;

use common::{Auth, TestApp};
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::json;

#[tokio::test]
async fn key_lifecycle() {
    let app = TestApp::spawn().await;
    let owner = app.register("keys@example.com").await;
    let token = owner["accessToken"].as_str().unwrap();

    let r = app
        .post(
            "/api/external/api-keys",
            Auth::Bearer(token),
            json!({"name": "CRM"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["success"], true);
    let d = r.body["data"].clone();
    let key = d["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("wag_"));
    assert_eq!(d["name"], "CRM");
    assert_eq!(d["prefix"].as_str().unwrap(), &key[..12]);
    assert!(d["createdAt"].as_str().is_some());
    let id = d["id"].as_str().unwrap().to_owned();

    // Listed without the secret, never used yet.
    let r = app.get("/api/external/api-keys", Auth::Bearer(token)).await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.body["data"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    assert!(list[0].get("key").is_none());
    assert!(!r.body.to_string().contains(&key));
    assert_eq!(list[0]["lastUsedAt"], serde_json::Value::Null);

    // The key authenticates external routes and its use is recorded.
    let r = app.get("/api/external/me", Auth::Key(&key)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["apiKey"]["id"], id.as_str());
    assert_eq!(r.body["data"]["tenant"]["id"], owner["tenant"]["id"]);
    let r = app.get("/api/external/api-keys", Auth::Bearer(token)).await;
    assert!(
        r.body["data"][0]["lastUsedAt"].as_str().is_some(),
        "{}",
        r.body
    );

    // Revoke: 200, then the key is dead and gone from the list.
    let r = app
        .delete(&format!("/api/external/api-keys/{id}"), Auth::Bearer(token))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        json!({"success": true, "message": "API key revoked"})
    );
    app.get("/api/external/me", Auth::Key(&key))
        .await
        .assert_error(401, "UNAUTHORIZED");
    let r = app.get("/api/external/api-keys", Auth::Bearer(token)).await;
    assert_eq!(r.body["data"], json!([]));
    app.delete(&format!("/api/external/api-keys/{id}"), Auth::Bearer(token))
        .await
        .assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn only_a_hash_of_the_key_is_stored() {
    let app = TestApp::spawn().await;
    let token = app.token("hashkeys@example.com").await;
    let key = app.api_key(&token, "stored").await;
    let rows = entity::api_key::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].key_hash, wagate::auth::token::sha256_hex(&key));
    let dump = format!("{:?}", rows[0]);
    assert!(!dump.contains(&key));
}

#[tokio::test]
async fn unknown_missing_or_malformed_keys_are_401() {
    let app = TestApp::spawn().await;
    app.get("/api/external/me", Auth::None)
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.get("/api/external/me", Auth::Key("wag_doesnotexist"))
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.get("/api/external/me", Auth::Key("something-else"))
        .await
        .assert_error(401, "UNAUTHORIZED");
    // A JWT is not an API key.
    let token = app.token("jwtnotkey@example.com").await;
    app.get("/api/external/me", Auth::Bearer(&token))
        .await
        .assert_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn keys_are_managed_with_a_user_token_only() {
    let app = TestApp::spawn().await;
    let token = app.token("mgmt@example.com").await;
    let key = app.api_key(&token, "integration").await;
    // A key is authenticated, but never allowed to manage keys.
    app.get("/api/external/api-keys", Auth::Key(&key))
        .await
        .assert_error(403, "FORBIDDEN");
    app.post(
        "/api/external/api-keys",
        Auth::Key(&key),
        json!({"name": "x"}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    app.post("/api/external/api-keys", Auth::None, json!({"name": "x"}))
        .await
        .assert_error(401, "UNAUTHORIZED");
    let r = app
        .post(
            "/api/external/api-keys",
            Auth::Bearer(&token),
            json!({"name": "  "}),
        )
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(r.body["errors"]["name"].is_string());
    let r = app
        .post("/api/external/api-keys", Auth::Bearer(&token), json!({}))
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    app.delete("/api/external/api-keys/not-a-uuid", Auth::Bearer(&token))
        .await
        .assert_error(400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn tenants_never_see_each_others_keys() {
    let app = TestApp::spawn().await;
    let a = app.token("tenant-a@example.com").await;
    let b = app.register("tenant-b@example.com").await;
    let b_token = b["accessToken"].as_str().unwrap();
    let r = app
        .post(
            "/api/external/api-keys",
            Auth::Bearer(&a),
            json!({"name": "A's key"}),
        )
        .await;
    let a_key_id = r.body["data"]["id"].as_str().unwrap().to_owned();
    let a_key = r.body["data"]["key"].as_str().unwrap().to_owned();

    let r = app
        .get("/api/external/api-keys", Auth::Bearer(b_token))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["data"], json!([]));
    app.delete(
        &format!("/api/external/api-keys/{a_key_id}"),
        Auth::Bearer(b_token),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    // A's key still works, and still acts for A.
    let r = app.get("/api/external/me", Auth::Key(&a_key)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_ne!(r.body["data"]["tenant"]["id"], b["tenant"]["id"]);
    // B's /me is B.
    let r = app.get("/api/auth/me", Auth::Bearer(b_token)).await;
    assert_eq!(r.body["data"]["user"]["email"], "tenant-b@example.com");
}

#[tokio::test]
async fn scopes_are_chosen_at_creation_and_validated() {
    let app = TestApp::spawn().await;
    let token = app.token("scopes@example.com").await;
    let default = [
        "read_sessions",
        "send_messages",
        "read_messages",
        "manage_contacts",
    ];
    let r = app
        .post(
            "/api/external/api-keys",
            Auth::Bearer(&token),
            json!({"name": "d"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["data"]["scopes"], json!(default));
    let r = app
        .post(
            "/api/external/api-keys",
            Auth::Bearer(&token),
            json!({"name": "hooks", "scopes": ["manage_webhooks", " read_webhook_secrets", "manage_webhooks"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        r.body["data"]["scopes"],
        json!(["manage_webhooks", "read_webhook_secrets"])
    );
    let hooks_key = r.body["data"]["key"].as_str().unwrap().to_owned();
    // Listed with their scopes.
    let r = app
        .get("/api/external/api-keys", Auth::Bearer(&token))
        .await;
    let listed: Vec<_> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["name"].as_str().unwrap().to_owned(), k["scopes"].clone()))
        .collect();
    assert!(listed.contains(&("d".into(), json!(default))), "{listed:?}");
    // The webhook key reaches webhooks but not messages.
    app.get("/api/external/webhooks", Auth::Key(&hooks_key))
        .await
        .status
        .is_success()
        .then_some(())
        .expect("manage_webhooks reaches the webhook list");
    app.post(
        "/api/external/messages/send-text",
        Auth::Key(&hooks_key),
        json!({"sessionId": uuid::Uuid::new_v4(), "to": "+14155550100", "text": "x"}),
    )
    .await
    .assert_error(403, "FORBIDDEN");

    for (scopes, why) in [
        (json!(["manage_api_keys"]), "manage_api_keys"),
        (json!(["send_messages", "launch_rockets"]), "Unknown scope"),
        (json!([]), "at least one"),
        (json!("send_messages"), "Invalid value"),
    ] {
        let r = app
            .post(
                "/api/external/api-keys",
                Auth::Bearer(&token),
                json!({"name": "bad", "scopes": scopes}),
            )
            .await;
        r.assert_error(400, "VALIDATION_ERROR");
        assert!(
            r.body["errors"]["scopes"]
                .as_str()
                .is_some_and(|m| m.contains(why)),
            "{scopes}: {}",
            r.body
        );
    }
}

/// Keys stored before scopes existed get the default set, so they keep exactly the REST reach
/// they had: the scopes migration is rolled back and applied again over a stored key.
#[tokio::test]
async fn keys_from_before_scopes_get_the_default_set() {
    use migration::MigratorTrait;
    let app = TestApp::spawn().await;
    let token = app.token("legacy@example.com").await;
    let r = app
        .post(
            "/api/external/api-keys",
            Auth::Bearer(&token),
            json!({"name": "legacy", "scopes": ["manage_webhooks"]}),
        )
        .await;
    let key = r.body["data"]["key"].as_str().unwrap().to_owned();
    // Roll back to just before the scopes migration (later ones go first).
    let all = migration::Migrator::migrations();
    let scopes = all
        .iter()
        .position(|m| m.name() == "m20261127_000006_api_key_scopes")
        .unwrap();
    migration::Migrator::down(&app.state.db, Some((all.len() - scopes) as u32))
        .await
        .unwrap();
    migration::Migrator::up(&app.state.db, None).await.unwrap();
    let r = app.get("/api/external/me", Auth::Key(&key)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["data"]["apiKey"]["scopes"],
        json!([
            "read_sessions",
            "send_messages",
            "read_messages",
            "manage_contacts"
        ])
    );
    assert_eq!(
        app.get("/api/external/sessions", Auth::Key(&key))
            .await
            .status,
        StatusCode::OK
    );
    app.get("/api/external/webhooks", Auth::Key(&key))
        .await
        .assert_error(403, "FORBIDDEN");
}
