//! The one error type of the service. HTTP renders it as the documented envelope
//! `{success:false, code, message, errors?}`; GraphQL as `extensions.code` with the same codes.

use std::collections::BTreeMap;

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

/// Per-field validation messages, keyed by the field name as clients send it.
pub type FieldErrors = BTreeMap<String, String>;

/// Every failure a request can end in.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400 VALIDATION_ERROR: the body or query failed validation.
    #[error("{message}")]
    Validation {
        /// Summary.
        message: String,
        /// Per-field messages.
        errors: FieldErrors,
    },
    /// 401 UNAUTHORIZED: missing or invalid JWT / API key.
    #[error("{0}")]
    Unauthorized(String),
    /// 403 FORBIDDEN: authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 403 SUBSCRIPTION_INACTIVE: trial expired or subscription not active.
    #[error("{0}")]
    SubscriptionInactive(String),
    /// 403 LIMIT_EXCEEDED: a plan limit was reached.
    #[error("{0}")]
    LimitExceeded(String),
    /// 404 NOT_FOUND: the resource does not exist or is not in the caller's tenant.
    #[error("{0}")]
    NotFound(String),
    /// 405 METHOD_NOT_ALLOWED: the route exists but not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409 CONFLICT: duplicate resource or invalid state transition.
    #[error("{0}")]
    Conflict(String),
    /// 413 PAYLOAD_TOO_LARGE: the body is over the limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 414 URI_TOO_LONG: the request line is over the server's limit.
    #[error("{0}")]
    UriTooLong(String),
    /// 415 UNSUPPORTED_MEDIA_TYPE: the body is not of the expected content type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 431 HEADERS_TOO_LARGE: the request headers are over the server's limit.
    #[error("{0}")]
    HeadersTooLarge(String),
    /// 429 RATE_LIMITED: too many requests; carries the `Retry-After` seconds.
    #[error("Too many requests, retry after {retry_after_secs} seconds")]
    RateLimited {
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// 500 INTERNAL_ERROR: never echoed to the client; logged once when rendered.
    #[error("Internal server error")]
    Internal(#[source] anyhow::Error),
    /// 502 WHATSAPP_UNAVAILABLE: the session is disconnected or the provider failed.
    #[error("{0}")]
    WhatsAppUnavailable(String),
}

/// The documented error body.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"success": false, "code": "VALIDATION_ERROR", "message": "Validation failed", "errors": {"phone": "Valid phone number is required"}}))]
pub struct ErrorEnvelope {
    /// Always `false`.
    pub success: bool,
    /// Machine-readable code, e.g. `VALIDATION_ERROR`.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Per-field messages (validation errors only), e.g. `{"phone": "Valid phone number is required"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::HashMap<String, String>>)]
    pub errors: Option<FieldErrors>,
}

impl AppError {
    /// A validation error on one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::new();
        errors.insert(field.into(), message.into());
        AppError::Validation {
            message: "Validation failed".into(),
            errors,
        }
    }

    /// A validation error with several fields.
    pub fn fields(errors: FieldErrors) -> Self {
        AppError::Validation {
            message: "Validation failed".into(),
            errors,
        }
    }

    /// Wraps any unexpected failure as an internal error.
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(e.into())
    }

    /// The code string shared by REST and GraphQL.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Validation { .. } => "VALIDATION_ERROR",
            AppError::Unauthorized(_) => "UNAUTHORIZED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::SubscriptionInactive(_) => "SUBSCRIPTION_INACTIVE",
            AppError::LimitExceeded(_) => "LIMIT_EXCEEDED",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
            AppError::Conflict(_) => "CONFLICT",
            AppError::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            AppError::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            AppError::UriTooLong(_) => "URI_TOO_LONG",
            AppError::HeadersTooLarge(_) => "HEADERS_TOO_LARGE",
            AppError::RateLimited { .. } => "RATE_LIMITED",
            AppError::Internal(_) => "INTERNAL_ERROR",
            AppError::WhatsAppUnavailable(_) => "WHATSAPP_UNAVAILABLE",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Validation { .. } => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_)
            | AppError::SubscriptionInactive(_)
            | AppError::LimitExceeded(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            AppError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::WhatsAppUnavailable(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The per-field messages, for validation errors.
    pub fn field_errors(&self) -> Option<&FieldErrors> {
        match self {
            AppError::Validation { errors, .. } => Some(errors),
            _ => None,
        }
    }

    /// Logs internal errors (the only place they are logged) and returns the client message.
    pub fn public_message(&self) -> String {
        if let AppError::Internal(e) = self {
            tracing::error!(error = ?e, "internal error");
        }
        self.to_string()
    }

    /// The documented error body for this error.
    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            success: false,
            code: self.code(),
            message: self.public_message(),
            errors: self.field_errors().cloned(),
        }
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(e: sea_orm::DbErr) -> Self {
        AppError::Internal(e.into())
    }
}

impl From<validator::ValidationErrors> for AppError {
    fn from(e: validator::ValidationErrors) -> Self {
        let mut errors = FieldErrors::new();
        for (field, list) in e.field_errors() {
            let msg = list
                .first()
                .and_then(|v| v.message.as_ref().map(|m| m.to_string()))
                .unwrap_or_else(|| format!("{} is invalid", camel_case(&field)));
            errors.insert(camel_case(&field), msg);
        }
        AppError::fields(errors)
    }
}

/// `refresh_token` → `refreshToken`: validator reports Rust field names, clients use camelCase.
pub fn camel_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper = false;
    for c in s.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut res = (status, Json(self.envelope())).into_response();
        decorate(&self, res.headers_mut());
        res
    }
}

/// Headers an error answer carries besides its body: `Retry-After` on 429, and
/// `WWW-Authenticate` on 401 (RFC 9110 requires one; both credential kinds are named).
pub fn decorate(e: &AppError, headers: &mut axum::http::HeaderMap) {
    match e {
        AppError::RateLimited { retry_after_secs } => {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from((*retry_after_secs).max(1)),
            );
        }
        AppError::Unauthorized(_) => {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "Bearer realm=\"wagate\", ApiKey realm=\"wagate\", header=\"X-API-Key\"",
                ),
            );
        }
        _ => {}
    }
}

/// Result alias for service code.
pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    async fn render(e: AppError) -> (StatusCode, Option<HeaderValue>, serde_json::Value) {
        let res = e.into_response();
        let status = res.status();
        let retry = res.headers().get(header::RETRY_AFTER).cloned();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, retry, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn every_documented_code_has_its_status() {
        let table = [
            (
                AppError::field("phone", "Valid phone number is required"),
                400,
                "VALIDATION_ERROR",
            ),
            (AppError::Unauthorized("x".into()), 401, "UNAUTHORIZED"),
            (AppError::Forbidden("x".into()), 403, "FORBIDDEN"),
            (
                AppError::SubscriptionInactive("x".into()),
                403,
                "SUBSCRIPTION_INACTIVE",
            ),
            (AppError::LimitExceeded("x".into()), 403, "LIMIT_EXCEEDED"),
            (AppError::NotFound("x".into()), 404, "NOT_FOUND"),
            (AppError::Conflict("x".into()), 409, "CONFLICT"),
            (
                AppError::RateLimited {
                    retry_after_secs: 7,
                },
                429,
                "RATE_LIMITED",
            ),
            (
                AppError::internal(anyhow::anyhow!("db password is hunter2")),
                500,
                "INTERNAL_ERROR",
            ),
            (
                AppError::WhatsAppUnavailable("x".into()),
                502,
                "WHATSAPP_UNAVAILABLE",
            ),
        ];
        for (e, status, code) in table {
            let (s, retry, body) = render(e).await;
            assert_eq!(s.as_u16(), status, "{code}");
            assert_eq!(body["success"], false);
            assert_eq!(body["code"], code);
            assert!(body["message"].is_string());
            match code {
                "VALIDATION_ERROR" => {
                    assert_eq!(body["errors"]["phone"], "Valid phone number is required");
                    assert_eq!(body["message"], "Validation failed");
                }
                "RATE_LIMITED" => assert_eq!(retry.unwrap(), "7"),
                "INTERNAL_ERROR" => {
                    assert_eq!(body["message"], "Internal server error");
                    assert!(!body.to_string().contains("hunter2"));
                }
                _ => assert!(body.get("errors").is_none()),
            }
        }
    }

    #[test]
    fn camel_cases_field_names() {
        assert_eq!(camel_case("refresh_token"), "refreshToken");
        assert_eq!(camel_case("email"), "email");
    }
}
