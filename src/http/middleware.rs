//! Cross-cutting HTTP behaviour: one log line per request, and no bare error bodies ever.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request},
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::extract::{RequestRate, RequestTenant};
use crate::{error::AppError, service::rate_limit::RateInfo};

/// Header carrying the request id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Logs method, matched route, status, latency, request id and tenant (when known).
pub async fn log_requests(mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "<unmatched>".to_owned());
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let tenant = RequestTenant::default();
    req.extensions_mut().insert(tenant.clone());
    let res = next.run(req).await;
    let tenant = tenant.get().map(|t| t.to_string()).unwrap_or_default();
    tracing::info!(
        target: "wagate::http",
        method = %method,
        route = %route,
        status = res.status().as_u16(),
        latency_ms = start.elapsed().as_secs_f64() * 1000.0,
        request_id = %request_id,
        tenant = %tenant,
        "request"
    );
    res
}

fn is_json_response(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"))
}

/// Rewrites any error response that is not already JSON (axum's own rejections, 405s, limit
/// layers) into the documented envelope, keeping its status and headers such as `Allow`.
pub async fn ensure_envelope(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if status.as_u16() < 400 || is_json_response(&res) {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_owned(),
        Err(_) => String::new(),
    };
    let err = match status {
        StatusCode::NOT_FOUND => AppError::NotFound("Route not found".into()),
        StatusCode::METHOD_NOT_ALLOWED => {
            AppError::MethodNotAllowed("Method not allowed for this route".into())
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            AppError::PayloadTooLarge("Request body is larger than the allowed limit".into())
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            AppError::UnsupportedMediaType("Unsupported Content-Type".into())
        }
        StatusCode::URI_TOO_LONG => AppError::UriTooLong("The request URL is too long".into()),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            AppError::HeadersTooLarge("The request headers are too large".into())
        }
        StatusCode::UNAUTHORIZED => AppError::Unauthorized("Unauthorized".into()),
        StatusCode::FORBIDDEN => AppError::Forbidden("Forbidden".into()),
        StatusCode::TOO_MANY_REQUESTS => AppError::RateLimited {
            retry_after_secs: 1,
        },
        s if s.is_client_error() => AppError::field(
            "request",
            if text.is_empty() {
                "Invalid request".to_owned()
            } else {
                text
            },
        ),
        _ => AppError::internal(anyhow::anyhow!("{status} without an envelope: {text}")),
    };
    let mut out = err.into_response();
    *out.status_mut() = status;
    for name in parts.headers.keys() {
        if name == header::CONTENT_TYPE || name == header::CONTENT_LENGTH {
            continue;
        }
        out.headers_mut().remove(name);
        for value in parts.headers.get_all(name) {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
}

/// Writes `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`.
pub fn set_rate_headers(h: &mut axum::http::HeaderMap, info: &RateInfo) {
    h.insert("ratelimit-limit", HeaderValue::from(info.limit));
    h.insert("ratelimit-remaining", HeaderValue::from(info.remaining));
    h.insert("ratelimit-reset", HeaderValue::from(info.reset_secs));
}

/// Adds the rate-limit headers to responses of authenticated requests.
pub async fn rate_headers(mut req: Request, next: Next) -> Response {
    let slot = RequestRate::default();
    req.extensions_mut().insert(slot.clone());
    let mut res = next.run(req).await;
    if let Some(info) = slot.0.get() {
        set_rate_headers(res.headers_mut(), info);
    }
    res
}

/// 404 envelope for unknown routes.
pub async fn not_found() -> Response {
    AppError::NotFound("Route not found".into()).into_response()
}

/// The answer to a handler that panicked: the 500 envelope, and one log line with the panic's
/// message (the panic hook installed at start-up adds its location, also on one line).
pub fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(target: "wagate::http", panic = %message, "a request handler panicked");
    let err = AppError::Internal(anyhow::anyhow!("handler panicked"));
    let body = crate::error::ErrorEnvelope {
        success: false,
        code: err.code(),
        message: err.to_string(),
        errors: None,
    };
    (err.status(), axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_is_answered_with_the_500_envelope() {
        let res = panicked(Box::new("index out of bounds: secret detail".to_owned()));
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["code"], "INTERNAL_ERROR");
        assert_eq!(body["message"], "Internal server error");
        assert!(!body.to_string().contains("secret"));
    }
}
