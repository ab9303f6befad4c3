//! Abuse limits: GraphQL cost limits refuse before anything runs; WebSocket subscription caps
//! and the connection_init timeout; per-caller rate limits with their headers, shared by two
//! instances through Redis and falling back to each instance's own limiter when Redis dies;
//! trusted proxies for the auth-attempt limiter.

mod common;

use std::time::{Duration, Instant};

use common::{Auth, GqlWs, Resp, TestApp, own_redis};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test]
async fn graphql_cost_limits_refuse_before_execution() {
    let app = TestApp::spawn().await;
    let token = app.token("cost@limits.test").await;
    let session = app.connected_session(&token, "+14155550160").await;
    let other = app.token("victim@limits.test").await;

    // 1,000 aliases of an expensive search: refused at parse time, in milliseconds.
    let aliases: String = (0..1000)
        .map(|i| {
            format!(
                "a{i}: contacts(filter: {{search: \"smith\"}}, limit: 100) {{ data {{ id }} }} "
            )
        })
        .collect();
    let start = Instant::now();
    let body = app
        .graphql(Auth::Bearer(&token), &format!("{{ {aliases} }}"), json!({}))
        .await;
    let took = start.elapsed();
    assert_eq!(code(&body), "TOO_MANY_ROOT_FIELDS", "{body}");
    assert!(body["data"].is_null(), "{body}");
    println!("1,000 aliases refused in {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // Another tenant is unaffected meanwhile.
    let r = app.get("/api/contacts", Auth::Bearer(&other)).await;
    assert_eq!(r.status, StatusCode::OK);

    // Too deep (introspection nests freely).
    let deep = format!(
        "{{ __schema {{ types {{ fields {{ type {} name {} }} }} }} }}",
        "query OfType { ofType ".repeat(14),
        "}".repeat(14)
    );
    let start = Instant::now();
    let body = app.graphql(Auth::Bearer(&token), &deep, json!({})).await;
    assert_eq!(code(&body), "QUERY_TOO_DEEP", "{body}");
    println!("a 19-deep query refused in {:?}", start.elapsed());

    // Too complex: list fields cost their limit times their selection.
    let wide =
        "c: contacts(limit: 100) { data { id phone name email tags labels countryCode optIn } } ";
    let body = app
        .graphql(
            Auth::Bearer(&token),
            &format!(
                "{{ {} }}",
                (0..8).map(|i| format!("x{i}{wide}")).collect::<String>()
            ),
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "QUERY_TOO_COMPLEX", "{body}");
    // The same selection once is fine.
    let body = app
        .graphql(Auth::Bearer(&token), &format!("{{ {wide} }}"), json!({}))
        .await;
    assert!(body["errors"].is_null(), "{body}");

    // Too many mutations in one request: none of them runs. Ten are allowed.
    let sends = |n: usize| {
        let fields: String = (0..n)
            .map(|i| format!("s{i}: sendText(sessionId: \"{session}\", to: \"+14155550161\", text: \"{i}\") {{ id }} "))
            .collect();
        format!("mutation {{ {fields} }}")
    };
    let body = app
        .graphql(Auth::Bearer(&token), &sends(11), json!({}))
        .await;
    assert_eq!(code(&body), "TOO_MANY_MUTATIONS", "{body}");
    let r = app.get("/api/messages", Auth::Bearer(&token)).await;
    assert_eq!(r.body["pagination"]["total"], 0, "{}", r.body);
    let body = app
        .graphql(Auth::Bearer(&token), &sends(10), json!({}))
        .await;
    assert!(body["errors"].is_null(), "{body}");
}

#[tokio::test]
async fn a_socket_holds_a_bounded_number_of_subscriptions() {
    let app = TestApp::spawn_with(|c| c.limits.ws_max_subscriptions = 3).await;
    let token = app.token("subs@limits.test").await;
    let mut ws = GqlWs::with_token(&app, &token).await;
    let q = "subscription SessionStatus { sessionStatus { status } }";
    for id in ["1", "2", "3", "4"] {
        ws.subscribe(id, q, json!({})).await;
    }
    let refused = ws.next_of("4").await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "TOO_MANY_SUBSCRIPTIONS"
    );
    // Completing one frees its place.
    ws.send(json!({"id": "2", "type": "complete"})).await;
    ws.subscribe("5", q, json!({})).await;
    let tenant = app.get("/api/auth/me", Auth::Bearer(&token)).await.body["data"]["tenant"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_subscribers(&tenant, 3).await;
    app.create_session(&token, "s").await; // a status event for every live subscription
    let r = app
        .post_empty(
            &format!(
                "/api/v1/whatsapp/{}/connect",
                app.create_session(&token, "t").await
            ),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    for id in ["1", "3", "5"] {
        assert!(ws.next_data(id).await["sessionStatus"]["status"].is_string());
    }
}

#[tokio::test]
async fn a_socket_without_connection_init_is_closed_with_4408() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let app = TestApp::spawn_with(|c| c.limits.ws_init_timeout = Duration::from_millis(300)).await;
    let connect = || async {
        let mut req = format!("ws://{}/graphql/ws", app.addr)
            .into_client_request()
            .unwrap();
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        tokio_tungstenite::connect_async(req).await.unwrap().0
    };
    let mut silent = connect().await;
    let start = Instant::now();
    let frame = tokio::time::timeout(Duration::from_secs(10), silent.next())
        .await
        .expect("closed in time");
    match frame {
        Some(Ok(Message::Close(Some(f)))) => {
            assert_eq!(u16::from(f.code), 4408, "{f:?}");
        }
        other => panic!("expected a 4408 close, got {other:?}"),
    }
    assert!(start.elapsed() >= Duration::from_millis(250));
    // A socket that does say hello in time stays open past the timeout.
    let token = app.token("hello@limits.test").await;
    let mut ws = GqlWs::with_token(&app, &token).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    ws.subscribe(
        "s",
        "subscription SessionStatus { sessionStatus { status } }",
        json!({}),
    )
    .await;
    let id = app.create_session(&token, "x").await;
    app.post_empty(
        &format!("/api/v1/whatsapp/{id}/connect"),
        Auth::Bearer(&token),
    )
    .await;
    assert!(ws.next_data("s").await["sessionStatus"]["status"].is_string());
}

fn header(r: &Resp, name: &str) -> Option<u64> {
    r.headers.get(name)?.to_str().ok()?.parse().ok()
}

/// Makes requests until one is refused; the statuses and the last response.
async fn drain(app: &TestApp, auth: Auth<'_>, path: &str, max: usize) -> (Vec<u16>, Resp) {
    let mut statuses = Vec::new();
    for _ in 0..max {
        let r = app.get(path, auth).await;
        statuses.push(r.status.as_u16());
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            return (statuses, r);
        }
    }
    panic!("never limited: {statuses:?}");
}

#[tokio::test]
async fn each_key_and_each_user_has_its_own_allowance_with_headers() {
    let app = TestApp::spawn_with(|c| {
        c.limits.rate_per_minute = 60;
        c.limits.rate_burst = 5;
    })
    .await;
    let token = app.token("rate@limits.test").await;
    let key = app.api_key(&token, "k").await;
    let key2 = app.api_key(&token, "k2").await;

    let r = app.get("/api/external/sessions", Auth::Key(&key)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(header(&r, "ratelimit-limit"), Some(60));
    assert_eq!(header(&r, "ratelimit-remaining"), Some(4));
    assert!(header(&r, "ratelimit-reset").is_some_and(|s| (1..=2).contains(&s)));
    let (statuses, refused) = drain(&app, Auth::Key(&key), "/api/external/sessions", 20).await;
    assert_eq!(statuses, [200, 200, 200, 200, 429], "{statuses:?}");
    refused.assert_error(429, "RATE_LIMITED");
    assert_eq!(header(&refused, "retry-after"), Some(1));
    assert_eq!(header(&refused, "ratelimit-remaining"), Some(0));

    // Another key and the user's token are not affected.
    let r = app.get("/api/external/sessions", Auth::Key(&key2)).await;
    assert_eq!(r.status, StatusCode::OK);
    // (The user already spent two units creating the keys.)
    let (statuses, _) = drain(&app, Auth::Bearer(&token), "/api/v1/whatsapp", 20).await;
    assert_eq!(statuses, [200, 200, 200, 429], "{statuses:?}");

    // The allowance comes back at the configured pace (one per second here).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = app.get("/api/external/sessions", Auth::Key(&key)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // GraphQL spends by complexity: a page of 100 contacts costs several units at once.
    let fresh = app.api_key(&token, "gql").await;
    let q = "query Contacts { contacts(limit: 100) { data { id phone name } } }";
    let r = app
        .post("/graphql", Auth::Key(&fresh), json!({"query": q}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        header(&r, "ratelimit-remaining"),
        Some(0),
        "{:?}",
        r.headers
    );
    let r = app
        .post(
            "/graphql",
            Auth::Key(&fresh),
            json!({"query": "{ __typename }"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(code(&r.body), "RATE_LIMITED");
    assert!(header(&r, "retry-after").is_some());
}

#[tokio::test]
async fn two_instances_share_one_allowance_through_redis_and_survive_its_loss() {
    let Some(mut redis) = own_redis::start_or_skip("rate limits through Redis").await else {
        return;
    };
    let a = TestApp::spawn_with(|c| {
        c.redis_url = Some(redis.url().into());
        c.limits.rate_per_minute = 6;
        c.limits.rate_burst = 6;
    })
    .await;
    let b = TestApp::start(
        a.cfg.clone(),
        std::sync::Arc::new(tempfile::tempdir().unwrap()),
        a.clock.clone(),
    )
    .await;
    let token = a.token("shared@limits.test").await;
    let key = a.api_key(&token, "k").await;
    for _ in 0..3 {
        assert_eq!(
            a.get("/api/external/me", Auth::Key(&key)).await.status,
            StatusCode::OK
        );
    }
    for _ in 0..3 {
        assert_eq!(
            b.get("/api/external/me", Auth::Key(&key)).await.status,
            StatusCode::OK
        );
    }
    // Six were spent across both instances: the seventh is refused wherever it lands.
    let r = b.get("/api/external/me", Auth::Key(&key)).await;
    r.assert_error(429, "RATE_LIMITED");
    assert!(
        header(&r, "retry-after").is_some_and(|s| s >= 5),
        "{:?}",
        r.headers
    );
    a.get("/api/external/me", Auth::Key(&key))
        .await
        .assert_error(429, "RATE_LIMITED");

    // Redis dies: requests are still answered (limited locally), never a 500.
    redis.kill();
    let fresh = a.api_key(&token, "after").await;
    let start = Instant::now();
    let (statuses, refused) = drain(&a, Auth::Key(&fresh), "/api/external/me", 20).await;
    assert_eq!(statuses.len(), 7, "{statuses:?}");
    assert!(statuses[..6].iter().all(|s| *s == 200), "{statuses:?}");
    refused.assert_error(429, "RATE_LIMITED");
    println!("7 requests with Redis down took {:?}", start.elapsed());
}

/// A failing login that names `xff` in `X-Forwarded-For`; its status.
async fn login_via(app: &TestApp, xff: &str) -> u16 {
    app.client
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", xff)
        .json(&json!({"email": "nobody@limits.test", "password": "whatever-it-is"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn only_trusted_proxies_may_name_the_client() {
    let app = TestApp::spawn_with(|c| {
        c.auth_rate_limit = 2;
        c.limits.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let login = |xff: &'static str| login_via(&app, xff);
    // Two clients behind the proxy each get their own two attempts.
    assert_eq!(login("203.0.113.1").await, 401);
    assert_eq!(login("203.0.113.1").await, 401);
    assert_eq!(login("203.0.113.1").await, 429);
    assert_eq!(login("203.0.113.2").await, 401);
    // A spoofed hop before the real client does not help: the nearest untrusted address counts.
    assert_eq!(login("198.51.100.9, 203.0.113.1").await, 429);
    // IPv6 clients are counted by their /64.
    assert_eq!(login("2001:db8:0:1::1").await, 401);
    assert_eq!(login("2001:db8:0:1::2").await, 401);
    assert_eq!(login("2001:db8:0:1:ffff::3").await, 429);
    assert_eq!(login("2001:db8:0:2::1").await, 401);

    // Without trusted proxies, X-Forwarded-For is ignored: everything is 127.0.0.1.
    let plain = TestApp::spawn_with(|c| c.auth_rate_limit = 2).await;
    let mut statuses = Vec::new();
    for xff in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        statuses.push(login_via(&plain, xff).await);
    }
    assert_eq!(statuses, [401, 401, 429]);
}
