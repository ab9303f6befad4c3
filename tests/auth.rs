//! Auth over REST: register, login, refresh rotation, logout, me, token validation, limits.

mod common;

use common::{Auth, TestApp};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::json;

const PW: &str = "correct-horse-battery";

#[tokio::test]
async fn register_creates_tenant_and_owner() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/api/auth/register",
            Auth::None,
            json!({"email": "Owner@Example.com", "password": PW, "name": "Olive Owner", "company": "Acme Ltd"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["success"], true);
    let d = &r.body["data"];
    assert!(d["accessToken"].as_str().unwrap().split('.').count() == 3);
    assert!(d["refreshToken"].as_str().unwrap().len() >= 40);
    assert_eq!(d["expiresIn"], 900);
    assert_eq!(d["user"]["email"], "owner@example.com");
    assert_eq!(d["user"]["name"], "Olive Owner");
    assert_eq!(d["user"]["role"], "owner");
    assert!(uuid::Uuid::parse_str(d["user"]["id"].as_str().unwrap()).is_ok());
    assert_eq!(d["tenant"]["name"], "Acme Ltd");

    // Without a company the tenant is named after the user.
    let r = app
        .post(
            "/api/auth/register",
            Auth::None,
            json!({"email": "solo@example.com", "password": PW, "name": "Sam Solo"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["data"]["tenant"]["name"], "Sam Solo");
    assert_ne!(r.body["data"]["tenant"]["id"], d["tenant"]["id"]);
}

#[tokio::test]
async fn password_is_stored_as_argon2_and_refresh_token_as_hash() {
    let app = TestApp::spawn().await;
    let d = app.register("hash@example.com").await;
    let users = entity::user::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(users.len(), 1);
    assert!(users[0].password_hash.starts_with("$argon2id$"));
    assert!(!users[0].password_hash.contains(PW));
    let refresh = d["refreshToken"].as_str().unwrap();
    let tokens = entity::refresh_token::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        tokens[0].token_hash,
        wagate::auth::token::sha256_hex(refresh)
    );
    assert_ne!(tokens[0].token_hash, refresh);
}

#[tokio::test]
async fn duplicate_email_is_conflict_case_insensitively() {
    let app = TestApp::spawn().await;
    app.register("dup@example.com").await;
    let r = app
        .post(
            "/api/auth/register",
            Auth::None,
            json!({"email": "DUP@example.com ", "password": PW, "name": "Again"}),
        )
        .await;
    r.assert_error(409, "CONFLICT");
    assert_eq!(
        entity::tenant::Entity::find()
            .all(&app.state.db)
            .await
            .unwrap()
            .len(),
        1,
        "no orphan tenant"
    );
}

#[tokio::test]
async fn register_validation_names_each_field() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/api/auth/register",
            Auth::None,
            json!({"email": "not-an-email", "password": "short"}),
        )
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    let e = &r.body["errors"];
    assert_eq!(e["email"], "Valid email is required");
    assert_eq!(e["password"], "Password must be at least 8 characters");
    assert!(e["name"].as_str().unwrap().contains("required"));
    assert!(e.get("company").is_none());

    let r = app
        .post(
            "/api/auth/register",
            Auth::None,
            json!({"email": 42, "password": PW, "name": "x"}),
        )
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(
        r.body["errors"]["email"]
            .as_str()
            .unwrap()
            .contains("invalid type")
    );
}

#[tokio::test]
async fn login_succeeds_and_failures_look_the_same() {
    let app = TestApp::spawn().await;
    let reg = app.register("login@example.com").await;
    let r = app
        .post(
            "/api/auth/login",
            Auth::None,
            json!({"email": "LOGIN@example.com", "password": PW}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["data"]["user"]["id"], reg["user"]["id"]);
    assert_eq!(r.body["data"]["tenant"]["id"], reg["tenant"]["id"]);
    assert_eq!(r.body["data"]["expiresIn"], 900);

    let wrong_pw = app
        .post(
            "/api/auth/login",
            Auth::None,
            json!({"email": "login@example.com", "password": "wrong-password"}),
        )
        .await;
    wrong_pw.assert_error(401, "UNAUTHORIZED");
    let no_user = app
        .post(
            "/api/auth/login",
            Auth::None,
            json!({"email": "nobody@example.com", "password": "wrong-password"}),
        )
        .await;
    no_user.assert_error(401, "UNAUTHORIZED");
    assert_eq!(
        wrong_pw.body, no_user.body,
        "same body whether or not the email exists"
    );

    let missing = app.post("/api/auth/login", Auth::None, json!({})).await;
    missing.assert_error(400, "VALIDATION_ERROR");
    assert_eq!(missing.body["errors"]["email"], "Email is required");
    assert_eq!(missing.body["errors"]["password"], "Password is required");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_kills_the_family() {
    let app = TestApp::spawn().await;
    let reg = app.register("rotate@example.com").await;
    let first = reg["refreshToken"].as_str().unwrap().to_owned();

    let r = app
        .post(
            "/api/auth/refresh",
            Auth::None,
            json!({"refreshToken": first}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let second = r.body["data"]["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let access = r.body["data"]["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(r.body["data"]["user"]["email"], "rotate@example.com");
    assert_eq!(
        app.get("/api/auth/me", Auth::Bearer(&access)).await.status,
        StatusCode::OK
    );

    // Reusing the rotated token is refused, and revokes the live descendant too.
    app.post(
        "/api/auth/refresh",
        Auth::None,
        json!({"refreshToken": first}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    app.post(
        "/api/auth/refresh",
        Auth::None,
        json!({"refreshToken": second}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");

    app.post(
        "/api/auth/refresh",
        Auth::None,
        json!({"refreshToken": "made-up"}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    app.post("/api/auth/refresh", Auth::None, json!({}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn refresh_token_expires() {
    let app = TestApp::spawn().await;
    let reg = app.register("old@example.com").await;
    app.clock.advance(chrono::Duration::days(31));
    app.post(
        "/api/auth/refresh",
        Auth::None,
        json!({"refreshToken": reg["refreshToken"]}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn logout_revokes_the_refresh_token() {
    let app = TestApp::spawn().await;
    let reg = app.register("bye@example.com").await;
    let token = reg["refreshToken"].clone();
    let r = app
        .post(
            "/api/auth/logout",
            Auth::None,
            json!({"refreshToken": token}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"success": true, "message": "Logged out"}));
    app.post(
        "/api/auth/refresh",
        Auth::None,
        json!({"refreshToken": token}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    // Idempotent.
    let again = app
        .post(
            "/api/auth/logout",
            Auth::None,
            json!({"refreshToken": token}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
}

#[tokio::test]
async fn me_returns_user_and_tenant() {
    let app = TestApp::spawn().await;
    let reg = app.register("me@example.com").await;
    let r = app
        .get(
            "/api/auth/me",
            Auth::Bearer(reg["accessToken"].as_str().unwrap()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["data"]["user"], reg["user"]);
    assert_eq!(r.body["data"]["tenant"], reg["tenant"]);
}

fn forge(alg: Algorithm, secret: &[u8], claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[tokio::test]
async fn every_bad_token_is_401() {
    let secret = "x".repeat(48);
    let app = TestApp::spawn_with(|c| c.jwt_secret = Some(secret.clone().into())).await;
    let reg = app.register("tokens@example.com").await;
    let (sub, tid) = (reg["user"]["id"].clone(), reg["tenant"]["id"].clone());
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": sub, "tid": tid, "iat": now, "exp": now + 600});

    // Control: a token we forge with the right secret and HS256 is accepted.
    let good = forge(Algorithm::HS256, secret.as_bytes(), claims.clone());
    assert_eq!(
        app.get("/api/auth/me", Auth::Bearer(&good)).await.status,
        StatusCode::OK
    );

    let b64 = |v: serde_json::Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let none_alg = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(claims.clone())
    );
    let bad = [
        (
            "other secret",
            forge(
                Algorithm::HS256,
                b"another-secret-another-secret-another",
                claims.clone(),
            ),
        ),
        (
            "HS512",
            forge(Algorithm::HS512, secret.as_bytes(), claims.clone()),
        ),
        ("alg none", none_alg),
        (
            "expired",
            forge(
                Algorithm::HS256,
                secret.as_bytes(),
                json!({"sub": sub, "tid": tid, "iat": now - 7200, "exp": now - 3600}),
            ),
        ),
        (
            "no exp",
            forge(
                Algorithm::HS256,
                secret.as_bytes(),
                json!({"sub": sub, "tid": tid, "iat": now}),
            ),
        ),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, token) in bad {
        let r = app.get("/api/auth/me", Auth::Bearer(&token)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.body);
        r.assert_error(401, "UNAUTHORIZED");
    }

    app.get("/api/auth/me", Auth::None)
        .await
        .assert_error(401, "UNAUTHORIZED");
    let r = app
        .client
        .get(app.url("/api/auth/me"))
        .header("Authorization", format!("Basic {good}"))
        .send()
        .await
        .unwrap();
    common::Resp::read(r)
        .await
        .assert_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn access_token_expires_with_the_clock() {
    let app = TestApp::spawn().await;
    let token = app.token("clock@example.com").await;
    assert_eq!(
        app.get("/api/auth/me", Auth::Bearer(&token)).await.status,
        StatusCode::OK
    );
    app.clock.advance(chrono::Duration::minutes(16));
    let r = app.get("/api/auth/me", Auth::Bearer(&token)).await;
    r.assert_error(401, "UNAUTHORIZED");
    assert!(r.body["message"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn auth_attempts_are_rate_limited_per_client() {
    let app = TestApp::spawn_with(|c| c.auth_rate_limit = 3).await;
    for _ in 0..3 {
        let r = app
            .post(
                "/api/auth/login",
                Auth::None,
                json!({"email": "x@example.com", "password": "whatever1"}),
            )
            .await;
        r.assert_error(401, "UNAUTHORIZED");
    }
    let r = app
        .post(
            "/api/auth/login",
            Auth::None,
            json!({"email": "x@example.com", "password": "whatever1"}),
        )
        .await;
    r.assert_error(429, "RATE_LIMITED");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
}

#[tokio::test]
async fn generated_secret_is_private_and_tokens_survive_restart() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn().await;
    let token = app.token("restart@example.com").await;
    let path = app.data_dir().join("jwt_secret");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let secret = std::fs::read_to_string(&path).unwrap();
    assert!(secret.len() >= 32);

    let (cfg, dir, clock) = app.stop().await;
    let app = TestApp::start(cfg, dir, clock).await;
    let r = app.get("/api/auth/me", Auth::Bearer(&token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), secret);
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_let_exactly_one_through() {
    let app = TestApp::spawn().await;
    let reg = app.register("race@example.com").await;
    let body = json!({"refreshToken": reg["refreshToken"]});
    let (a, b) = tokio::join!(
        app.post("/api/auth/refresh", Auth::None, body.clone()),
        app.post("/api/auth/refresh", Auth::None, body.clone())
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 401], "{} / {}", a.body, b.body);
}
