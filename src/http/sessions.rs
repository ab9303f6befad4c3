//! `/api/v1/whatsapp`: WhatsApp sessions (JWT), and `/api/external/sessions` (API key).

use axum::{extract::State, response::Response};
use uuid::Uuid;

use super::{
    envelope::{self, Envelope, MessageEnvelope, PagedEnvelope},
    extract::{KeyAuth, PageQuery, Path, Query, UserAuth, ValidJson},
};
use crate::{
    error::{AppResult, ErrorEnvelope},
    service::sessions::{
        self, ConnectOutput, CreateSessionInput, QrOutput, RenameSessionInput, SessionOutput,
        SessionStatusOutput,
    },
    state::AppState,
};

/// List the tenant's sessions.
#[utoipa::path(get, path = "/api/v1/whatsapp", tag = "sessions",
    security(("bearerAuth" = [])), params(PageQuery),
    responses(
        (status = 200, description = "A page of sessions", body = PagedEnvelope<SessionOutput>),
        (status = 400, description = "Bad page or limit", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
    ))]
pub async fn list(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Query(q): Query<PageQuery>,
) -> AppResult<Response> {
    let page = sessions::list(&state, &p, q.request()?).await?;
    Ok(envelope::paged(page.data, page.pagination))
}

/// Create a session slot; connect separately to obtain a QR code.
#[utoipa::path(post, path = "/api/v1/whatsapp", tag = "sessions",
    security(("bearerAuth" = [])), request_body = CreateSessionInput,
    responses(
        (status = 201, description = "Created (`disconnected`)", body = Envelope<SessionOutput>),
        (status = 400, description = "Validation failed", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
    ))]
pub async fn create(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    ValidJson(input): ValidJson<CreateSessionInput>,
) -> AppResult<Response> {
    Ok(envelope::created(
        sessions::create(&state, &p, input).await?,
    ))
}

/// One session.
#[utoipa::path(get, path = "/api/v1/whatsapp/{id}", tag = "sessions",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Session UUID")),
    responses(
        (status = 200, description = "The session", body = Envelope<SessionOutput>),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ))]
pub async fn get(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    Ok(envelope::ok(sessions::get(&state, &p, id).await?))
}

/// Rename a session.
#[utoipa::path(patch, path = "/api/v1/whatsapp/{id}", tag = "sessions",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Session UUID")),
    request_body = RenameSessionInput,
    responses(
        (status = 200, description = "Renamed", body = Envelope<SessionOutput>),
        (status = 400, description = "Validation failed", body = ErrorEnvelope),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ))]
pub async fn rename(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
    ValidJson(input): ValidJson<RenameSessionInput>,
) -> AppResult<Response> {
    Ok(envelope::ok(sessions::rename(&state, &p, id, input).await?))
}

/// Log out (if paired) and remove the session.
#[utoipa::path(delete, path = "/api/v1/whatsapp/{id}", tag = "sessions",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Session UUID")),
    responses(
        (status = 200, description = "Deleted", body = MessageEnvelope),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    sessions::delete(&state, &p, id).await?;
    Ok(envelope::message("Session deleted"))
}

/// Initiate QR code pairing (or restore an earlier pairing without one).
#[utoipa::path(post, path = "/api/v1/whatsapp/{id}/connect", tag = "sessions",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Session UUID")),
    responses(
        (status = 200, description = "`qr_pending` with \"Scan QR code in dashboard\", or `connected`", body = Envelope<ConnectOutput>),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
        (status = 409, description = "Already connected or connecting", body = ErrorEnvelope),
        (status = 502, description = "Provider unavailable", body = ErrorEnvelope),
    ))]
pub async fn connect(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    Ok(envelope::ok(sessions::connect(&state, &p, id).await?))
}

/// Real-time connection status.
#[utoipa::path(get, path = "/api/v1/whatsapp/{id}/status", tag = "sessions",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Session UUID")),
    responses(
        (status = 200, description = "Status", body = Envelope<SessionStatusOutput>),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ))]
pub async fn status(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    Ok(envelope::ok(sessions::status(&state, &p, id).await?))
}

/// Disconnect without deleting the session or forgetting its pairing.
#[utoipa::path(post, path = "/api/v1/whatsapp/{id}/disconnect", tag = "sessions",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Session UUID")),
    responses(
        (status = 200, description = "Disconnected", body = MessageEnvelope),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
        (status = 409, description = "Not connected", body = ErrorEnvelope),
    ))]
pub async fn disconnect(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    sessions::disconnect(&state, &p, id).await?;
    Ok(envelope::message("Session disconnected"))
}

/// Forget the pairing; the next connect needs a new QR code.
#[utoipa::path(post, path = "/api/v1/whatsapp/{id}/logout", tag = "sessions",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Session UUID")),
    responses(
        (status = 200, description = "Logged out", body = Envelope<SessionOutput>),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
        (status = 409, description = "Not paired", body = ErrorEnvelope),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    Ok(envelope::ok_with_message(
        sessions::logout(&state, &p, id).await?,
        "Session logged out",
    ))
}

/// The QR code waiting to be scanned, as payload, SVG and PNG data URL.
#[utoipa::path(get, path = "/api/v1/whatsapp/{id}/qr", tag = "sessions",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Session UUID")),
    responses(
        (status = 200, description = "Current QR code", body = Envelope<QrOutput>),
        (status = 404, description = "No such session, or no QR pending", body = ErrorEnvelope),
    ))]
pub async fn qr(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    Ok(envelope::ok(sessions::qr(&state, &p, id).await?))
}

/// List sessions with API-key authentication.
#[utoipa::path(get, path = "/api/external/sessions", tag = "sessions",
    security(("apiKeyAuth" = [])), params(PageQuery),
    responses(
        (status = 200, description = "A page of sessions", body = PagedEnvelope<SessionOutput>),
        (status = 401, description = "Missing or invalid API key", body = ErrorEnvelope),
    ))]
pub async fn external_list(
    State(state): State<AppState>,
    KeyAuth(p): KeyAuth,
    Query(q): Query<PageQuery>,
) -> AppResult<Response> {
    let page = sessions::list(&state, &p, q.request()?).await?;
    Ok(envelope::paged(page.data, page.pagination))
}
