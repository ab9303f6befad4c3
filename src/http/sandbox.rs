//! Sandbox controls: simulate the phone side of a sandbox session.

use axum::{extract::State, response::Response};
use uuid::Uuid;

use super::{
    envelope::{self, Envelope},
    extract::{OptionalJson, Path, UserAuth, ValidJson},
};
use crate::{
    error::{AppResult, ErrorEnvelope},
    service::{
        messages::{self, MessageOutput, SandboxInboundInput},
        sessions::{self, SandboxScanInput, SessionOutput},
    },
    state::AppState,
};

/// Sandbox sessions only: scan the pending QR code with a simulated phone.
///
/// Sessions of other providers are 404, and without an unexpired pending QR code the call is 409.
/// The session pairs with `phoneNumber` (a random test number when omitted), becomes `connected`
/// and publishes a `session.status` event. Needs a user access token.
#[utoipa::path(post, path = "/api/v1/whatsapp/{id}/sandbox/scan", operation_id = "sandboxScanQr", tag = "sandbox",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Session UUID")),
    request_body(content = SandboxScanInput, description = "Optional; a random test number pairs when omitted"),
    responses(
        (status = 200, description = "Paired: the session is `connected`", body = Envelope<SessionOutput>),
        (status = 400, description = "Invalid phone number", body = ErrorEnvelope),
        (status = 404, description = "No such sandbox session in your tenant", body = ErrorEnvelope),
        (status = 409, description = "No QR code waiting to be scanned", body = ErrorEnvelope),
    ))]
pub async fn scan(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
    OptionalJson(input): OptionalJson<SandboxScanInput>,
) -> AppResult<Response> {
    Ok(envelope::ok(
        sessions::sandbox_scan(&state, &p, id, input).await?,
    ))
}

/// Sandbox sessions only: a simulated contact sends the session a text message. It is stored
/// as an inbound message and published as `message.received`.
///
/// The session must be `connected` (409 otherwise); `from` must be a valid phone number and `text`
/// 1 to 4096 characters. A contact with the sender's number gets its last-message time and
/// conversation count updated. Needs a user access token.
#[utoipa::path(post, path = "/api/v1/whatsapp/{id}/sandbox/inbound", operation_id = "sandboxReceiveMessage", tag = "sandbox",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Session UUID")),
    request_body = SandboxInboundInput,
    responses(
        (status = 200, description = "Received", body = Envelope<MessageOutput>),
        (status = 400, description = "Invalid sender or text", body = ErrorEnvelope),
        (status = 404, description = "No such sandbox session in your tenant", body = ErrorEnvelope),
        (status = 409, description = "Session not connected", body = ErrorEnvelope),
    ))]
pub async fn inbound(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
    ValidJson(input): ValidJson<SandboxInboundInput>,
) -> AppResult<Response> {
    Ok(envelope::ok(
        messages::sandbox_inbound(&state, &p, id, input).await?,
    ))
}
