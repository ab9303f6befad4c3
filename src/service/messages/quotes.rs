//! Replies: which earlier message a message quotes. A send names it by wagate's id
//! (`quotedMessageId`, a message of the same session); the provider gets it by its own id
//! when the message goes out; a received reply names it by the provider's id, resolved to
//! wagate's when the gateway has that message.

use uuid::Uuid;

use crate::{
    domain::{Direction, ids::TenantId},
    error::{AppError, AppResult},
    provider::Quoted,
    repo,
    state::AppState,
};

/// Checks that `quoted` is a message of session `session` (404 when the tenant has no such
/// message, 400 on `quotedMessageId` when it belongs to another session).
pub async fn check(
    state: &AppState,
    tenant: TenantId,
    session: Uuid,
    quoted: Uuid,
) -> AppResult<()> {
    let m = repo::messages::get(&state.db, tenant, quoted)
        .await?
        .ok_or_else(|| AppError::NotFound("Quoted message not found".into()))?;
    if m.session_id != session {
        return Err(AppError::field(
            "quotedMessageId",
            "The quoted message belongs to another session",
        ));
    }
    Ok(())
}

/// The quoted message as the provider needs it, if it reached WhatsApp (has a provider id).
pub async fn for_provider(
    state: &AppState,
    tenant: TenantId,
    quoted: Option<Uuid>,
) -> AppResult<Option<Quoted>> {
    let Some(id) = quoted else { return Ok(None) };
    let Some(m) = repo::messages::get(&state.db, tenant, id).await? else {
        return Ok(None);
    };
    let from_me = m.direction == Direction::Outbound.as_str();
    Ok(m.provider_message_id.map(|provider_message_id| Quoted {
        provider_message_id,
        from_me,
        author: (!from_me).then(|| m.phone.clone()),
        text: m.body,
    }))
}

/// wagate's id of the message a received reply quotes, when the gateway has it.
pub async fn resolve(
    state: &AppState,
    tenant: TenantId,
    session: Uuid,
    provider_id: Option<&str>,
) -> AppResult<Option<Uuid>> {
    let Some(pid) = provider_id else {
        return Ok(None);
    };
    for direction in [Direction::Outbound, Direction::Inbound] {
        if let Some(id) =
            repo::messages::find_by_provider_id(&state.db, tenant, session, direction.as_str(), pid)
                .await?
        {
            return Ok(Some(id));
        }
    }
    Ok(None)
}
