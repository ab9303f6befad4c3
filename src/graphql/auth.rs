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
    /// Credentials could not be checked (the database failed; already logged).
    Unavailable,
}

impl GqlAuth {
    /// The principal, or the UNAUTHORIZED error to return.
    pub fn require(&self) -> Result<Principal, AppError> {
        match self {
            GqlAuth::Authenticated(p) => Ok(*p),
            GqlAuth::Anonymous => Err(AppError::Unauthorized("Authentication required".into())),
            GqlAuth::Invalid(msg) => Err(AppError::Unauthorized(msg.clone())),
            GqlAuth::Unavailable => Err(AppError::internal(anyhow::anyhow!(
                "credentials could not be checked"
            ))),
        }
    }
}

async fn resolve(state: &AppState, authorization: Option<&str>, api_key: Option<&str>) -> GqlAuth {
    match service::auth::authenticate(state, authorization, api_key).await {
        Ok(Some(p)) => GqlAuth::Authenticated(p),
        Ok(None) => GqlAuth::Anonymous,
        Err(AppError::Unauthorized(msg)) => GqlAuth::Invalid(msg),
        Err(e) => {
            tracing::error!(error = ?e, "checking GraphQL credentials failed");
            GqlAuth::Unavailable
        }
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

/// The value of a credential key (case-insensitive, also under `headers`): `Some(Err)` when
/// the key is there but not a string.
fn payload_value<'a>(payload: &'a serde_json::Value, name: &str) -> Option<Result<&'a str, ()>> {
    let obj = payload.as_object()?;
    match obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
        Some((_, v)) => Some(v.as_str().ok_or(())),
        None => obj.get("headers").and_then(|h| payload_value(h, name)),
    }
}

/// From `{"Authorization": "Bearer …"}` or `{"X-API-Key": "…"}` in `connection_init`
/// (keys case-insensitive, also accepted under `headers`); falls back to the upgrade
/// request's headers when the payload has neither.
pub async fn from_init_payload(
    state: &AppState,
    payload: &serde_json::Value,
    header_auth: GqlAuth,
) -> GqlAuth {
    if !(payload.is_object() || payload.is_null()) {
        return GqlAuth::Invalid("connection_init payload must be an object".into());
    }
    let (authorization, api_key) = match (
        payload_value(payload, "authorization").transpose(),
        payload_value(payload, API_KEY_HEADER).transpose(),
    ) {
        (Ok(a), Ok(k)) => (a, k),
        _ => return GqlAuth::Invalid("Credentials in connection_init must be strings".into()),
    };
    if authorization.is_none() && api_key.is_none() {
        return header_auth;
    }
    resolve(state, authorization, api_key).await
}
