//! `/api/auth/*`: register, login, refresh, logout, me.

use axum::{extract::State, response::Response};

use super::{
    envelope::{self, Envelope, MessageEnvelope},
    extract::{AuthAttempt, UserAuth, ValidJson},
};
use crate::{
    error::{AppResult, ErrorEnvelope},
    service::auth::{self, AuthOutput, LoginInput, MeOutput, RefreshInput, RegisterInput},
    state::AppState,
};

/// Create a tenant and its owner user, and sign in.
///
/// The email is trimmed and lower-cased and must not be registered yet (409); the tenant is named
/// after `company`, or after the user when it is absent, and the user gets the `owner` role. The
/// answer carries the same token pair as a login. No credentials needed; each call counts against
/// the per-IP limit on auth attempts (`WAGATE_AUTH_RATE_LIMIT` per minute, shared with login and
/// refresh).
#[utoipa::path(
    post, path = "/api/auth/register", operation_id = "register", tag = "auth",
    request_body = RegisterInput,
    responses(
        (status = 201, description = "Registered", body = Envelope<AuthOutput>),
        (status = 400, description = "Validation failed", body = ErrorEnvelope),
        (status = 409, description = "Email already registered", body = ErrorEnvelope),
        (status = 429, description = "Too many attempts", body = ErrorEnvelope),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    _: AuthAttempt,
    ValidJson(input): ValidJson<RegisterInput>,
) -> AppResult<Response> {
    Ok(envelope::created(auth::register(&state, input).await?))
}

/// Exchange email and password for an access token and a refresh token.
///
/// A wrong password and an unknown email get the same 401. Each login starts a new refresh-token
/// family; tokens from earlier logins stay valid. No credentials needed; each call counts against
/// the per-IP limit on auth attempts shared with register and refresh.
#[utoipa::path(
    post, path = "/api/auth/login", operation_id = "login", tag = "auth",
    request_body = LoginInput,
    responses(
        (status = 200, description = "Signed in", body = Envelope<AuthOutput>),
        (status = 400, description = "Validation failed", body = ErrorEnvelope),
        (status = 401, description = "Invalid email or password", body = ErrorEnvelope),
        (status = 429, description = "Too many attempts", body = ErrorEnvelope),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    _: AuthAttempt,
    ValidJson(input): ValidJson<LoginInput>,
) -> AppResult<Response> {
    Ok(envelope::ok(auth::login(&state, input).await?))
}

/// Rotate a refresh token: returns a new pair; the presented token stops working.
///
/// Presenting a refresh token that was already used (also by a concurrent request) revokes every
/// refresh token rotated from the same sign-in and answers 401; an expired token is 401 too. No
/// access token needed, only the refresh token; each call counts against the per-IP limit on auth
/// attempts.
#[utoipa::path(
    post, path = "/api/auth/refresh", operation_id = "refreshToken", tag = "auth",
    request_body = RefreshInput,
    responses(
        (status = 200, description = "New token pair", body = Envelope<AuthOutput>),
        (status = 401, description = "Unknown, expired or already used refresh token", body = ErrorEnvelope),
        (status = 429, description = "Too many attempts", body = ErrorEnvelope),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    _: AuthAttempt,
    ValidJson(input): ValidJson<RefreshInput>,
) -> AppResult<Response> {
    Ok(envelope::ok(auth::refresh(&state, input).await?))
}

/// Revoke a refresh token (idempotent).
///
/// An unknown or already revoked token also answers 200. Access tokens issued earlier stay valid
/// until they expire. No access token needed, only the refresh token in the body.
#[utoipa::path(
    post, path = "/api/auth/logout", operation_id = "logout", tag = "auth",
    request_body = RefreshInput,
    responses(
        (status = 200, description = "Signed out", body = MessageEnvelope),
        (status = 400, description = "Validation failed", body = ErrorEnvelope),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    ValidJson(input): ValidJson<RefreshInput>,
) -> AppResult<Response> {
    auth::logout(&state, input).await?;
    Ok(envelope::message("Logged out"))
}

/// The signed-in user and their tenant.
///
/// Returns the user's id, email, name and role, and the tenant's id and name. Needs a user access
/// token. API keys are not accepted here (use `GET /api/external/me`).
#[utoipa::path(
    get, path = "/api/auth/me", operation_id = "getMe", tag = "auth",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The caller", body = Envelope<MeOutput>),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
    )
)]
pub async fn me(State(state): State<AppState>, UserAuth(p): UserAuth) -> AppResult<Response> {
    Ok(envelope::ok(auth::me(&state, &p).await?))
}
