//! Bad input never reaches the database or the panic handler: pages too deep for any query,
//! over-long URLs and headers, chunked bodies over the limit, and searches made of control
//! characters all end in a clean 4xx envelope.

mod common;

use common::{Auth, Resp, TestApp};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every list route, REST and GraphQL, refuses a page that would start past the deepest offset.
#[tokio::test]
async fn huge_page_numbers_are_400_on_every_list() {
    let app = TestApp::spawn().await;
    let token = app.token("pages@bad.test").await;
    let r = app
        .post(
            "/api/external/api-keys",
            Auth::Bearer(&token),
            json!({"name": "all", "scopes": ["manage_webhooks", "read_sessions", "manage_contacts", "read_messages"]}),
        )
        .await;
    let key = r.body["data"]["key"].as_str().unwrap().to_owned();
    let hook = app
        .post(
            "/api/webhooks",
            Auth::Bearer(&token),
            json!({"url": "http://127.0.0.1:9/h"}),
        )
        .await;
    let hook = hook.body["data"]["id"].as_str().unwrap().to_owned();
    let max = i64::MAX;
    let routes = [
        ("/api/contacts", Auth::Bearer(&token)),
        ("/api/messages", Auth::Bearer(&token)),
        ("/api/v1/whatsapp", Auth::Bearer(&token)),
        ("/api/webhooks", Auth::Bearer(&token)),
        (
            &*Box::leak(format!("/api/webhooks/{hook}/deliveries").into_boxed_str()),
            Auth::Bearer(&token),
        ),
        ("/api/contacts/groups", Auth::Bearer(&token)),
        ("/api/whatsapp/contacts", Auth::Bearer(&token)),
        ("/api/external/contacts", Auth::Key(&key)),
        ("/api/external/sessions", Auth::Key(&key)),
        ("/api/external/webhooks", Auth::Key(&key)),
    ];
    for (path, auth) in routes {
        for query in [
            format!("page={max}"),
            format!("page={max}&limit=100"),
            "page=100002&limit=100".to_owned(),
        ] {
            let r = app.get(&format!("{path}?{query}"), auth).await;
            assert_eq!(r.status.as_u16(), 400, "{path}?{query}: {}", r.body);
            assert_eq!(r.body["success"], false, "{path}: {}", r.body);
            let field = r.body["errors"]["page"].as_str().unwrap_or_default();
            assert!(field.contains("too deep"), "{path}?{query}: {}", r.body);
        }
        // The deepest allowed page still answers (empty).
        let r = app
            .get(&format!("{path}?page=100001&limit=100"), auth)
            .await;
        assert_eq!(r.status.as_u16(), 200, "{path}: {}", r.body);
    }
    for (field, args) in [
        ("sessions", "page: 2147483647, limit: 100"),
        ("messages", "page: 2147483647, limit: 100"),
        ("contacts", "page: 2147483647, limit: 100"),
        ("contactGroups", "page: 2147483647, limit: 100"),
        ("webhooks", "page: 2147483647, limit: 100"),
    ] {
        let body = app
            .graphql(
                Auth::Bearer(&token),
                &format!("{{ {field}({args}) {{ pagination {{ page }} }} }}"),
                json!({}),
            )
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "VALIDATION_ERROR",
            "{field}: {body}"
        );
        assert!(body["errors"][0]["extensions"]["errors"]["page"].is_string());
    }
    let body = app
        .graphql(
            Auth::Bearer(&token),
            "query WebhookDeliveries($w: ID!) { webhookDeliveries(webhookId: $w, page: 2147483647, limit: 100) { pagination { page } } }",
            json!({"w": hook}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "VALIDATION_ERROR");
}

/// Sends raw bytes on a new connection and reads the whole answer (the server closes it).
async fn raw(app: &TestApp, head: &[u8], body_chunks: impl IntoIterator<Item = Vec<u8>>) -> String {
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    // The server may answer and close before everything is written: keep what it said.
    if s.write_all(head).await.is_ok() {
        for chunk in body_chunks {
            if s.write_all(&chunk).await.is_err() {
                break;
            }
        }
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the server answers and closes");
    String::from_utf8_lossy(&out).into_owned()
}

fn envelope_of(answer: &str) -> (u16, Value) {
    let status: u16 = answer[9..12].parse().unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn over_long_urls_and_headers_get_the_envelope() {
    let app = TestApp::spawn().await;
    let path = format!("/api/contacts/{}", "a".repeat(100 * 1024));
    let answer = raw(
        &app,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        [],
    )
    .await;
    let (status, body) = envelope_of(&answer);
    assert_eq!(status, 414, "{answer:.300}");
    assert_eq!(body["success"], false);
    assert_eq!(body["code"], "URI_TOO_LONG");

    let answer = raw(
        &app,
        format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "b".repeat(1024 * 1024)
        )
        .as_bytes(),
        [],
    )
    .await;
    let (status, body) = envelope_of(&answer);
    assert_eq!(status, 431, "{answer:.300}");
    assert_eq!(body["code"], "HEADERS_TOO_LARGE");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));

    // The same connection handling still serves ordinary requests.
    let r = app.get("/healthz", Auth::None).await;
    assert_eq!(r.status.as_u16(), 200);
}

#[tokio::test]
async fn chunked_graphql_bodies_over_the_limit_are_413() {
    let app = TestApp::spawn_with(|c| c.body_limit = 64 * 1024).await;
    let head = b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let filler = format!(
        "{{\"query\": \"{{ __typename }}\", \"pad\": \"{}",
        "x".repeat(16 * 1024)
    );
    let chunk = |data: &[u8]| {
        let mut c = format!("{:x}\r\n", data.len()).into_bytes();
        c.extend_from_slice(data);
        c.extend_from_slice(b"\r\n");
        c
    };
    let mut chunks = vec![chunk(filler.as_bytes())];
    for _ in 0..8 {
        chunks.push(chunk(&[b'x'; 16 * 1024]));
    }
    chunks.push(chunk(b"\"}"));
    chunks.push(b"0\r\n\r\n".to_vec());
    let answer = raw(&app, head, chunks).await;
    let (status, body) = envelope_of(&answer);
    assert_eq!(status, 413, "{answer:.300}");
    assert_eq!(body["code"], "PAYLOAD_TOO_LARGE");

    // Under the limit, the same chunked framing works.
    let small = br#"{"query": "{ __typename }"}"#;
    let answer = raw(&app, head, [chunk(small), b"0\r\n\r\n".to_vec()]).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.300}");
}

#[tokio::test]
async fn searches_of_control_characters_only_are_400() {
    let app = TestApp::spawn().await;
    let token = app.token("ctl@bad.test").await;
    let r = app
        .post(
            "/api/contacts",
            Auth::Bearer(&token),
            json!({"phone": "+14155550142", "name": "Someone"}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    for search in ["%01%02%03", "%1B%7F", "%00"] {
        let r: Resp = app
            .get(
                &format!("/api/contacts?search={search}"),
                Auth::Bearer(&token),
            )
            .await;
        r.assert_error(400, "VALIDATION_ERROR");
        assert!(r.body["errors"]["search"].is_string(), "{}", r.body);
    }
    // Control characters around real text are dropped, and the text still matches.
    let r = app
        .get("/api/contacts?search=%01Some%02one", Auth::Bearer(&token))
        .await;
    assert_eq!(r.body["pagination"]["total"], 1, "{}", r.body);
}
