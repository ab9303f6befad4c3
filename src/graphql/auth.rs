//! Credentials for GraphQL requests: headers, or the WebSocket `connection_init` payload.

use axum::http::{HeaderMap, header};

use crate::{
    auth::Principal, error::AppError, http::extract::API_KEY_HEADER, service, state::AppState,
};

/// The outcome of authenticating a GraphQL request or connection.
#[derive(Clone, Debug)]
pub enum GqlAuth {
    /// No credentials were presented.
    Anonymous,
    /// Valid credentials.
    Authenticated(Principal),
    /// Credentials were presented and rejected (the message says why).
    Invalid(String),
}

impl GqlAuth {
    /// The principal, or the UNAUTHORIZED error to return.
    pub fn require(&self) -> Result<Principal, AppError> {
        match self {
            GqlAuth::Authenticated(p) => Ok(*p),
            GqlAuth::Anonymous => Err(AppError::Unauthorized("Authentication required".into())),
            GqlAuth::Invalid(msg) => Err(AppError::Unauthorized(msg.clone())),
        }
    }
}

async fn resolve(state: &AppState, authorization: Option<&str>, api_key: Option<&str>) -> GqlAuth {
    match service::auth::authenticate(state, authorization, api_key).await {
        Ok(Some(p)) => GqlAuth::Authenticated(p),
        Ok(None) => GqlAuth::Anonymous,
        Err(AppError::Unauthorized(msg)) => GqlAuth::Invalid(msg),
        Err(e) => GqlAuth::Invalid(e.public_message()),
    }
}

/// From `Authorization: Bearer …` or `X-API-Key: …` headers.
pub async fn from_headers(state: &AppState, headers: &HeaderMap) -> GqlAuth {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let api_key = headers
        .get(API_KEY_HEADER)
        .map(|v| v.to_str().unwrap_or(""));
    resolve(state, authorization, api_key).await
}

fn payload_value<'a>(payload: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    let obj = payload.as_object()?;
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
        .or_else(|| obj.get("headers").and_then(|h| payload_value(h, name)))
}

/// From `{"Authorization": "Bearer …"}` or `{"X-API-Key": "…"}` in `connection_init`
/// (keys case-insensitive, also accepted under `headers`); falls back to the upgrade
/// request's headers when the payload has neither.
pub async fn from_init_payload(
    state: &AppState,
    payload: &serde_json::Value,
    header_auth: GqlAuth,
) -> GqlAuth {
    let authorization = payload_value(payload, "authorization");
    let api_key = payload_value(payload, API_KEY_HEADER);
    if authorization.is_none() && api_key.is_none() {
        return header_auth;
    }
    resolve(state, authorization, api_key).await
}
