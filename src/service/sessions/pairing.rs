//! Pairing a session: the pending QR code, pairing codes typed on the phone instead, and the
//! sandbox's simulated phone; each reaches the session's live connection on whichever
//! instance owns it.

use rand::Rng;
use uuid::Uuid;
use validator::Validate;

use super::{
    PairCodeInput, PairCodeOutput, QrOutput, SandboxScanInput, SessionOutput, SessionStatus,
    commands, load, provider_error, remote_owner,
};
use crate::{
    auth::{Capability, Principal},
    error::{AppError, AppResult},
    events::QrPayload,
    phone::PhoneNumber,
    provider::{Control, ControlReply, ProviderKind},
    qr,
    state::AppState,
};

/// Asks the session's connection for a pairing code for `phoneNumber`: the user types it on
/// that phone (WhatsApp > Linked devices > Link with phone number) instead of scanning the QR
/// code. The code is also published as a `session.pairCode` event.
pub async fn request_pair_code(
    state: &AppState,
    p: &Principal,
    id: Uuid,
    input: PairCodeInput,
) -> AppResult<PairCodeOutput> {
    p.require(Capability::ManageSessions)?;
    input.validate()?;
    let phone = PhoneNumber::parse(input.phone_number.trim())
        .map_err(|m| AppError::field("phoneNumber", m))?;
    let s = load(state, p.tenant_id, id).await?;
    let supported = ProviderKind::parse(&s.provider)
        .and_then(|k| state.providers.get(k))
        .is_some_and(|provider| provider.capabilities().pair_code);
    if !supported {
        return Err(AppError::field(
            "provider",
            format!("The {} provider does not pair with codes", s.provider),
        ));
    }
    let status = SessionStatus::parse(&s.status);
    if !matches!(status, SessionStatus::QrPending | SessionStatus::Connecting) {
        return Err(AppError::Conflict(format!(
            "Session is not waiting to be paired (status: {}); connect it first",
            s.status
        )));
    }
    let action = commands::Action::PairCode {
        phone: phone.e164().to_owned(),
    };
    match run_on_owner(state, &s, action).await? {
        ControlReply::PairCode { code } => Ok(PairCodeOutput {
            code,
            phone_number: phone.digits().to_owned(),
        }),
        other => Err(AppError::internal(anyhow::anyhow!(
            "unexpected answer to a pair-code request: {other:?}"
        ))),
    }
}

/// The QR code waiting to be scanned, if any (404 for another tenant's session).
pub async fn pending_qr(state: &AppState, p: &Principal, id: Uuid) -> AppResult<Option<QrPayload>> {
    p.require(Capability::ReadSessions)?;
    let s = load(state, p.tenant_id, id).await?;
    if s.status != SessionStatus::QrPending.as_str() {
        return Ok(None);
    }
    match (s.qr_code, s.qr_expires_at) {
        (Some(code), Some(expires_at)) if expires_at > state.clock.now() => Ok(Some(QrPayload {
            svg: qr::svg(&code)?,
            code,
            expires_at,
        })),
        _ => Ok(None),
    }
}

/// The QR code currently waiting to be scanned, with a PNG rendering; 404 when none is.
pub async fn qr(state: &AppState, p: &Principal, id: Uuid) -> AppResult<QrOutput> {
    p.require(Capability::ReadSessions)?;
    let q = pending_qr(state, p, id)
        .await?
        .ok_or_else(|| AppError::NotFound("No QR code is pending for this session".into()))?;
    Ok(QrOutput {
        png: qr::png_data_url(&q.code)?,
        code: q.code,
        expires_at: q.expires_at,
        svg: q.svg,
    })
}

fn random_test_number() -> AppResult<PhoneNumber> {
    // Indian mobile numbers: +91 followed by ten digits starting 9.
    let mut rng = rand::rng();
    let rest: String = (0..9)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect();
    PhoneNumber::parse(&format!("+919{rest}"))
        .map_err(|e| AppError::internal(anyhow::anyhow!("generated test number rejected: {e}")))
}

/// Sandbox only: simulates a phone scanning the pending QR code.
pub async fn sandbox_scan(
    state: &AppState,
    p: &Principal,
    id: Uuid,
    input: SandboxScanInput,
) -> AppResult<SessionOutput> {
    p.require(Capability::ManageSessions)?;
    let s = load(state, p.tenant_id, id).await?;
    if s.provider != ProviderKind::Sandbox.as_str() {
        return Err(AppError::NotFound(
            "Sandbox controls exist only for sandbox sessions".into(),
        ));
    }
    let phone = match input
        .phone_number
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(raw) => PhoneNumber::parse(raw).map_err(|m| AppError::field("phoneNumber", m))?,
        None => random_test_number()?,
    };
    let pending = s.status == SessionStatus::QrPending.as_str()
        && s.qr_expires_at.is_some_and(|e| e > state.clock.now());
    if !pending {
        return Err(AppError::Conflict(
            "No QR code is waiting to be scanned".into(),
        ));
    }
    let scan = Control::SandboxScan {
        phone: phone.e164().to_owned(),
    };
    control(state, &s, scan).await?;
    Ok(SessionOutput::from(&load(state, p.tenant_id, id).await?))
}

/// Runs a command on the session's live connection (the sandbox controls), on whichever
/// instance runs it.
pub(crate) async fn control(
    state: &AppState,
    s: &entity::wa_session::Model,
    command: Control,
) -> AppResult<ControlReply> {
    run_on_owner(state, s, commands::Action::Control { command }).await
}

/// Runs `action` on the session's live connection: here when this instance runs it, otherwise
/// on its owner over the command bus.
pub(super) async fn run_on_owner(
    state: &AppState,
    s: &entity::wa_session::Model,
    action: commands::Action,
) -> AppResult<ControlReply> {
    let cmd = commands::SessionCommand {
        session: s.id,
        attempt: s.attempt_id,
        action,
    };
    if state.runtime.connection(s.id).is_some() {
        return commands::run_here(state, cmd).await.map_err(provider_error);
    }
    let Some(owner) = remote_owner(state, s) else {
        return Err(AppError::Conflict("Session has no live connection".into()));
    };
    commands::send(state, &owner, cmd).await
}
