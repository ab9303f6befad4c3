//! Sandbox controls: simulate the phone side of a sandbox session.

use axum::{extract::State, response::Response};
use uuid::Uuid;

use super::{
    envelope::{self, Envelope},
    extract::{OptionalJson, Path, UserAuth},
};
use crate::{
    error::{AppResult, ErrorEnvelope},
    service::sessions::{self, SandboxScanInput, SessionOutput},
    state::AppState,
};

/// Sandbox sessions only: scan the pending QR code with a simulated phone.
#[utoipa::path(post, path = "/api/v1/whatsapp/{id}/sandbox/scan", tag = "sandbox",
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
