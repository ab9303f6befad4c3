//! HTTP conventions: compression, caching headers, CORS (off by default, allowed origins,
//! refused origins, `*`), `WWW-Authenticate` on 401.

mod common;

use common::{Auth, TestApp};
use reqwest::{StatusCode, header};

#[tokio::test]
async fn json_csv_and_assets_are_compressed_when_asked() {
    let app = TestApp::spawn().await;
    let plain = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    let plain_len = plain.bytes().await.unwrap().len();
    for encoding in ["gzip", "br"] {
        let r = app
            .client
            .get(app.url("/openapi.json"))
            .header(header::ACCEPT_ENCODING, encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_ENCODING], encoding);
        let len = r.bytes().await.unwrap().len();
        assert!(
            len * 5 < plain_len,
            "{encoding}: {len} of {plain_len} bytes"
        );
    }
    let token = app.token("gzip@http.test").await;
    let r = app
        .client
        .get(app.url("/api/contacts/export"))
        .bearer_auth(&token)
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
    let r = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
}

#[tokio::test]
async fn assets_are_cacheable_and_api_answers_are_not() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CACHE_CONTROL], "public, max-age=86400");
    let etag = r.headers()[header::ETAG].to_str().unwrap().to_owned();
    assert!(etag.starts_with("W/\""), "{etag}");
    let r = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert!(r.bytes().await.unwrap().is_empty());
    for page in ["/openapi.json", "/graphql"] {
        let r = app.client.get(app.url(page)).send().await.unwrap();
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache", "{page}");
        assert!(r.headers().get(header::ETAG).is_some(), "{page}");
    }
    let token = app.token("cache@http.test").await;
    let r = app.get("/api/contacts", Auth::Bearer(&token)).await;
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    let r = app
        .post(
            "/graphql",
            Auth::Bearer(&token),
            serde_json::json!({"query": "query Me { me { user { id } } }"}),
        )
        .await;
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn unauthorized_answers_name_the_schemes() {
    let app = TestApp::spawn().await;
    for (path, auth) in [
        ("/api/contacts", Auth::None),
        ("/api/contacts", Auth::Bearer("not-a-jwt")),
        ("/api/external/sessions", Auth::Key("wag_nope")),
        ("/api/whatsapp/contacts", Auth::None),
    ] {
        let r = app.get(path, auth).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        let h = r.headers[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(h.starts_with("Bearer realm=\"wagate\""), "{path}: {h}");
        assert!(h.contains("X-API-Key"), "{path}: {h}");
    }
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/api/contacts"))
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_is_off_by_default_and_follows_the_setting() {
    let off = TestApp::spawn().await;
    let r = preflight(&off, "https://app.example.com").await;
    assert!(
        r.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    let r = off
        .client
        .get(off.url("/healthz"))
        .header(header::ORIGIN, "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );

    let listed = TestApp::spawn_with(|c| {
        c.http.cors_origins =
            wagate::config::CorsOrigins::List(vec![header::HeaderValue::from_static(
                "https://app.example.com",
            )])
    })
    .await;
    let r = preflight(&listed, "https://app.example.com").await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example.com"
    );
    let methods = r.headers()[header::ACCESS_CONTROL_ALLOW_METHODS]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");
    let r = listed
        .client
        .get(listed.url("/healthz"))
        .header(header::ORIGIN, "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example.com"
    );
    let exposed = r.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("ratelimit-remaining") && exposed.contains("x-request-id"),
        "{exposed}"
    );
    let r = preflight(&listed, "https://evil.example.com").await;
    assert!(
        r.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );

    let any = TestApp::spawn_with(|c| c.http.cors_origins = wagate::config::CorsOrigins::Any).await;
    let r = preflight(&any, "https://anyone.example").await;
    assert_eq!(r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
}

/// GraphiQL works offline: its page loads only our own assets, each served here.
#[tokio::test]
async fn graphiql_is_served_offline() {
    let app = TestApp::spawn().await;
    let page = app.get_text("/graphql").await;
    let mut refs = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in page.split(attr).skip(1) {
            refs.push(part[..part.find('"').unwrap()].to_owned());
        }
    }
    assert_eq!(refs.len(), 5, "{refs:?}");
    for r in &refs {
        assert!(r.starts_with("/graphql/assets/"), "{r} is not ours");
        let res = app.client.get(app.url(r)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{r}");
        let ct = res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            ct.starts_with("text/javascript") || ct.starts_with("text/css"),
            "{r}: {ct}"
        );
        assert_eq!(
            res.headers()[header::CACHE_CONTROL],
            "public, max-age=86400"
        );
        let body = res.text().await.unwrap();
        // No script or stylesheet pulls anything from another host.
        for pull in ["@import", "url(http", "src=\"http", "importScripts("] {
            assert!(!body.contains(pull), "{r} contains {pull}");
        }
    }
    assert!(
        !page.contains("//cdn") && !page.contains("https://"),
        "{page}"
    );
    let r = app.get("/graphql/assets/nope.js", Auth::None).await;
    r.assert_error(404, "NOT_FOUND");
}

/// A background task that dies is reported by `/readyz` (503, the task `down`) until its
/// supervisor has started it again.
#[tokio::test]
async fn readyz_reports_a_dead_background_task_until_it_runs_again() {
    let app = TestApp::spawn().await;
    let r = app.get("/readyz", Auth::None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["tasks"]["sessions"], "ok", "{}", r.body);
    assert_eq!(
        r.body["data"]["instance"],
        app.state.cfg.runtime.instance_id.as_str()
    );
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let (g, n) = (gate.clone(), runs.clone());
    app.state.tasks.spawn(
        "probe",
        tokio_util::sync::CancellationToken::new(),
        move || {
            let (g, n) = (g.clone(), n.clone());
            async move {
                if n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    // Die only once the test has seen the task running.
                    let _ = g.acquire().await;
                    panic!("probe dies");
                }
                std::future::pending::<()>().await;
            }
        },
    );
    let r = app.get("/readyz", Auth::None).await;
    assert_eq!(r.body["data"]["tasks"]["probe"], "ok", "{}", r.body);
    gate.add_permits(1);
    let mut saw_down = false;
    for _ in 0..400 {
        let r = app.get("/readyz", Auth::None).await;
        if r.body["data"]["tasks"]["probe"] == "down" {
            assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
            assert_eq!(r.body["success"], false);
            saw_down = true;
        } else if saw_down {
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(saw_down, "the dead task never showed on /readyz");
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 2);
}
