//! Extractors: JSON bodies with per-field errors, and authentication to a `Principal`.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{Arc, OnceLock},
};

use axum::{
    body::Bytes,
    extract::{
        ConnectInfo, FromRequest, FromRequestParts, Request,
        rejection::{BytesRejection, PathRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;

use crate::{auth::Principal, domain::ids::TenantId, error::AppError, service, state::AppState};

/// Header carrying an API key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Slot the auth extractors fill so the request log line can name the tenant.
#[derive(Clone, Default, Debug)]
pub struct RequestTenant(Arc<OnceLock<TenantId>>);

impl RequestTenant {
    /// The tenant, once authenticated.
    pub fn get(&self) -> Option<TenantId> {
        self.0.get().copied()
    }
    fn set(&self, t: TenantId) {
        let _ = self.0.set(t);
    }
}

fn record_tenant(parts: &Parts, p: &Principal) {
    if let Some(slot) = parts.extensions.get::<RequestTenant>() {
        slot.set(p.tenant_id);
    }
}

/// The caller's rate-limit outcome, set by the auth extractors for the response headers.
#[derive(Clone, Default, Debug)]
pub struct RequestRate(pub Arc<OnceLock<crate::service::rate_limit::RateInfo>>);

/// Records the caller and spends one unit of its rate limit (429 `RATE_LIMITED` when spent);
/// the outcome goes to the `RateLimit-*` response headers.
async fn admit(parts: &Parts, state: &AppState, p: &Principal) -> Result<(), AppError> {
    record_tenant(parts, p);
    let (info, refusal) = match state.rate_limits.charge(p, 1).await {
        Ok(info) => (info, None),
        Err((e, info)) => (Some(info), Some(e)),
    };
    if let (Some(info), Some(slot)) = (info, parts.extensions.get::<RequestRate>()) {
        let _ = slot.0.set(info);
    }
    refusal.map_or(Ok(()), Err)
}

/// A JSON body deserialised with field paths in errors; requires `Content-Type: application/json`.
pub struct ValidJson<T>(pub T);

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// Maps a body-read failure: over the limit is 413, anything else 400.
pub fn body_rejection(e: BytesRejection) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge("Request body is larger than the allowed limit".into())
    } else {
        AppError::field("body", "The request body could not be read")
    }
}

/// Parses JSON bytes into `T`, naming the offending field on type errors.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            AppError::field("body", format!("Malformed JSON: {inner}"))
        } else if path == "." || path.is_empty() {
            AppError::field("body", format!("Invalid JSON body: {inner}"))
        } else {
            AppError::field(path, format!("Invalid value: {inner}"))
        }
    })
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ValidJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(AppError::UnsupportedMediaType(
                "Content-Type must be application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        // serde would accept `[a, b]` for a struct; request bodies are objects.
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => parse_json(&bytes).map(ValidJson),
            None => Err(AppError::field("body", "A JSON object body is required")),
            Some(_) => Err(AppError::field("body", "The body must be a JSON object")),
        }
    }
}

/// Like [`ValidJson`], but an empty body means `T::default()` (for optional bodies).
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(req.headers());
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        if !json {
            return Err(AppError::UnsupportedMediaType(
                "Content-Type must be application/json".into(),
            ));
        }
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => parse_json(&bytes).map(OptionalJson),
            _ => Err(AppError::field("body", "The body must be a JSON object")),
        }
    }
}

/// `?page=&limit=` as given; validated by the service.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page number (default 1).
    #[param(value_type = Option<i64>, minimum = 1)]
    pub page: Option<String>,
    /// Items per page (default 20, at most 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

impl PageQuery {
    /// The validated page request.
    pub fn request(&self) -> Result<crate::service::pagination::PageRequest, AppError> {
        crate::service::pagination::PageRequest::from_query(
            self.page.as_deref(),
            self.limit.as_deref(),
        )
    }
}

impl From<PathRejection> for AppError {
    fn from(e: PathRejection) -> Self {
        AppError::field("id", format!("Invalid path parameter: {}", e.body_text()))
    }
}

impl From<QueryRejection> for AppError {
    fn from(e: QueryRejection) -> Self {
        AppError::field("query", format!("Invalid query string: {}", e.body_text()))
    }
}

/// Path parameters with the envelope as rejection.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct Path<T>(pub T);

/// Query parameters with the envelope as rejection.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct Query<T>(pub T);

fn header_str<'a>(parts: &'a Parts, name: &str) -> Result<Option<&'a str>, AppError> {
    match parts.headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| AppError::Unauthorized(format!("Malformed {name} header"))),
    }
}

fn bearer(parts: &Parts) -> Option<Result<&str, AppError>> {
    match header_str(parts, header::AUTHORIZATION.as_str()) {
        Ok(None) => None,
        Ok(Some(v)) => Some(crate::auth::parse_bearer(v)),
        Err(e) => Some(Err(e)),
    }
}

fn api_key(parts: &Parts) -> Option<Result<&str, AppError>> {
    header_str(parts, API_KEY_HEADER)
        .transpose()
        .map(|r| r.map(str::trim))
}

/// Authenticated by `Authorization: Bearer <JWT>` (dashboard and tenant APIs).
pub struct UserAuth(pub Principal);

impl FromRequestParts<AppState> for UserAuth {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).unwrap_or_else(|| {
            Err(AppError::Unauthorized(
                "Missing Authorization: Bearer token".into(),
            ))
        })?;
        let p = service::auth::authenticate_bearer(state, token)?;
        admit(parts, state, &p).await?;
        Ok(UserAuth(p))
    }
}

/// Authenticated by `X-API-Key` (external integration routes).
pub struct KeyAuth(pub Principal);

impl FromRequestParts<AppState> for KeyAuth {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = api_key(parts)
            .unwrap_or_else(|| Err(AppError::Unauthorized("Missing X-API-Key header".into())))?;
        let p = service::auth::authenticate_api_key(state, key).await?;
        admit(parts, state, &p).await?;
        Ok(KeyAuth(p))
    }
}

/// Authenticated by either a bearer JWT or an API key (bearer wins when both are sent).
pub struct AnyAuth(pub Principal);

impl FromRequestParts<AppState> for AnyAuth {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let authorization = header_str(parts, header::AUTHORIZATION.as_str())?;
        let key = header_str(parts, API_KEY_HEADER)?;
        let p = service::auth::authenticate(state, authorization, key)
            .await?
            .ok_or_else(|| {
                AppError::Unauthorized(
                    "Missing credentials: send Authorization: Bearer or X-API-Key".into(),
                )
            })?;
        admit(parts, state, &p).await?;
        Ok(AnyAuth(p))
    }
}

/// The client's address: the socket peer, or, when the peer is a trusted proxy
/// (`WAGATE_TRUSTED_PROXIES`), the nearest address in `X-Forwarded-For` that is not itself a
/// trusted proxy. Anyone else's `X-Forwarded-For` is ignored, so it cannot be used to dodge
/// per-client limits.
pub fn client_ip_from(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(forwarded.first())
        .copied()
        .unwrap_or(peer)
}

/// The client address of a request, for per-client limits.
pub fn client_ip(parts: &Parts, trusted: &[ipnet::IpNet]) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    client_ip_from(peer, &parts.headers, trusted)
}

/// Counts an authentication attempt against the per-IP limit (429 with `Retry-After` when over).
pub struct AuthAttempt;

impl FromRequestParts<AppState> for AuthAttempt {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        state.check_auth_rate(client_ip(parts, &state.cfg.limits.trusted_proxies))?;
        Ok(AuthAttempt)
    }
}
