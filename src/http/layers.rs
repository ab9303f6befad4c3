//! HTTP conventions applied to every response: compression, caching headers, CORS.

use axum::{
    extract::Request,
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use crate::config::CorsOrigins;

/// Largest static asset hashed for an `ETag` (Swagger UI's bundle is about 1.5 MB).
const MAX_ASSET: usize = 8 * 1024 * 1024;

/// Whether `path` serves a static page or asset (Swagger UI, GraphiQL, the spec).
fn is_static(method: &Method, path: &str) -> bool {
    method == Method::GET
        && (path.starts_with("/docs/")
            || path == "/docs"
            || path == "/openapi.json"
            || path == "/graphql"
            || path.starts_with("/graphql/assets/"))
}

/// Static assets: `Cache-Control` and a strong `ETag` (304 when `If-None-Match` matches).
/// API answers: `Cache-Control: no-store`, since they carry one caller's data.
pub async fn caching(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if !is_static(req.method(), &path) {
        let mut res = next.run(req).await;
        if path.starts_with("/api/") || path == "/graphql" {
            res.headers_mut()
                .entry(header::CACHE_CONTROL)
                .or_insert(HeaderValue::from_static("no-store"));
        }
        return res;
    }
    let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();
    let res = next.run(req).await;
    if res.status() != StatusCode::OK {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ASSET).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    // Weak: the compression layer may send this body gzip- or brotli-encoded.
    let etag = format!("W/\"{:x}\"", Sha256::digest(&bytes));
    let max_age = if path.starts_with("/docs/") && path != "/docs/" && !path.ends_with(".html")
        || path.starts_with("/graphql/assets/")
    {
        // Versioned with the binary: a day, then revalidate by ETag.
        "public, max-age=86400"
    } else {
        // Pages and the spec: always revalidate (cheap with the ETag).
        "no-cache"
    };
    set(&mut parts.headers, header::CACHE_CONTROL, max_age);
    if let Ok(v) = HeaderValue::from_str(&etag) {
        parts.headers.insert(header::ETAG, v);
    }
    let matches = if_none_match
        .and_then(|v| v.to_str().ok().map(str::to_owned))
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
        for name in [header::ETAG, header::CACHE_CONTROL] {
            if let Some(v) = parts.headers.get(&name) {
                not_modified.headers_mut().insert(name, v.clone());
            }
        }
        return not_modified;
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

fn set(h: &mut HeaderMap, name: HeaderName, value: &'static str) {
    h.insert(name, HeaderValue::from_static(value));
}

/// CORS as configured: none by default; `*`; or a list of origins.
pub fn cors(origins: &CorsOrigins) -> Option<CorsLayer> {
    let allow = match origins {
        CorsOrigins::None => return None,
        CorsOrigins::Any => AllowOrigin::from(Any),
        CorsOrigins::List(list) => AllowOrigin::list(list.iter().cloned()),
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PATCH,
                Method::PUT,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                header::RETRY_AFTER,
                HeaderName::from_static("ratelimit-limit"),
                HeaderName::from_static("ratelimit-remaining"),
                HeaderName::from_static("ratelimit-reset"),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}
