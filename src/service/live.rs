//! Live event streams for subscriptions (GraphQL today, Socket.IO later). Authorisation is
//! decided here, like every other service entry point: session events and QR codes need
//! `read_sessions`, message events `read_messages`, and a named session must be the caller's.

use std::sync::Arc;

use futures_util::{StreamExt, stream::BoxStream};
use uuid::Uuid;

use crate::{
    auth::{Capability, Principal},
    error::AppResult,
    events::{DomainEvent, EventPayload, QrPayload},
    service::sessions,
    state::AppState,
};

/// A stream of the caller's events, already filtered.
pub type EventStream = BoxStream<'static, Arc<DomainEvent>>;

/// 404 unless `session` (when given) belongs to the caller's tenant.
async fn check_session(state: &AppState, p: &Principal, session: Option<Uuid>) -> AppResult<()> {
    if let Some(id) = session {
        sessions::load(state, p.tenant_id, id).await?;
    }
    Ok(())
}

/// The tenant's events that `keep` accepts, limited to `session` when one is named.
fn filtered(
    state: &AppState,
    p: &Principal,
    session: Option<Uuid>,
    keep: fn(&EventPayload) -> bool,
) -> EventStream {
    state
        .bus
        .subscribe(p.tenant_id)
        .filter(move |ev| {
            let pass = keep(&ev.payload) && session.is_none_or(|id| id == ev.session_id);
            async move { pass }
        })
        .boxed()
}

/// Status changes of one session, or of all the tenant's sessions.
pub async fn session_events(
    state: &AppState,
    p: &Principal,
    session: Option<Uuid>,
) -> AppResult<EventStream> {
    p.require(Capability::ReadSessions)?;
    let stream = filtered(state, p, session, |e| {
        matches!(e, EventPayload::SessionStatus(_))
    });
    check_session(state, p, session).await?;
    Ok(stream)
}

/// Message status changes and inbound messages of the tenant, or of one session.
pub async fn message_events(
    state: &AppState,
    p: &Principal,
    session: Option<Uuid>,
) -> AppResult<EventStream> {
    p.require(Capability::ReadMessages)?;
    let stream = filtered(state, p, session, |e| {
        matches!(
            e,
            EventPayload::MessageStatus(_) | EventPayload::MessageReceived(_)
        )
    });
    check_session(state, p, session).await?;
    Ok(stream)
}

/// The QR code pending now (if any) and the session's new QR codes from then on. The stream is
/// opened before the current code is read, so no code falls in between.
pub async fn qr_events(
    state: &AppState,
    p: &Principal,
    session: Uuid,
) -> AppResult<(Option<QrPayload>, EventStream)> {
    p.require(Capability::ReadSessions)?;
    let stream = filtered(state, p, Some(session), |e| {
        matches!(e, EventPayload::SessionQr(_))
    });
    let current = sessions::pending_qr(state, p, session).await?;
    Ok((current, stream))
}
