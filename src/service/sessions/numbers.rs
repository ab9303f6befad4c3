//! Whether a phone number is on WhatsApp, asked through one of the tenant's connected
//! sessions (on whichever instance owns it).

use uuid::Uuid;

use super::{NumberCheckOutput, SessionStatus, commands, load, pairing::run_on_owner};
use crate::{
    auth::{Capability, Principal},
    error::{AppError, AppResult},
    phone::PhoneNumber,
    provider::ControlReply,
    state::AppState,
};

/// Asks WhatsApp, through session `id`, whether `phone` has an account. The session must be
/// connected (409 otherwise); providers may answer from a short-lived cache.
pub async fn check_number(
    state: &AppState,
    p: &Principal,
    id: Uuid,
    phone: &str,
) -> AppResult<NumberCheckOutput> {
    p.require(Capability::SendMessages)?;
    let phone = PhoneNumber::parse(phone.trim()).map_err(|m| AppError::field("phone", m))?;
    let s = load(state, p.tenant_id, id).await?;
    if s.status != SessionStatus::Connected.as_str() {
        return Err(AppError::Conflict(format!(
            "Session is not connected (status: {}); numbers are checked through a connected session",
            s.status
        )));
    }
    let action = commands::Action::CheckNumber {
        phone: phone.e164().to_owned(),
    };
    match run_on_owner(state, &s, action).await? {
        ControlReply::Number { check } => Ok(NumberCheckOutput {
            phone: phone.digits().to_owned(),
            on_whatsapp: check.on_whatsapp,
            jid: check.jid,
        }),
        other => Err(AppError::internal(anyhow::anyhow!(
            "unexpected answer to a number check: {other:?}"
        ))),
    }
}
