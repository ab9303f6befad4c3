//! Provider tasks running in this process, and how their events change sessions.

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{ACTIVE, SessionStatus, load, reload_and_publish};
use crate::{
    domain::PairCodePayload,
    domain::ids::TenantId,
    error::{AppError, AppResult},
    events::{DomainEvent, EventPayload, QrPayload},
    phone::PhoneNumber,
    provider::{EventSink, ProviderEvent, ProviderKind, SessionContext},
    qr,
    repo::{
        self,
        sessions::{Change, Owner},
    },
    service::device_store::DbDeviceStore,
    state::AppState,
};

/// Attempts at writing one provider event before the connection is given up.
const EVENT_WRITE_TRIES: u32 = 4;

/// Opens the provider connection for a session on behalf of connection attempt `attempt`
/// (already written to the row) and applies its events until it stops. `first` is signalled
/// once the first event has been applied.
pub async fn start(
    state: &AppState,
    kind: ProviderKind,
    session: &entity::wa_session::Model,
    attempt: Uuid,
    first: Option<oneshot::Sender<()>>,
) -> AppResult<()> {
    let provider = state.providers.get(kind).ok_or_else(|| {
        AppError::WhatsAppUnavailable(format!("Provider '{}' is not available", kind.as_str()))
    })?;
    let (tenant, id) = (TenantId(session.tenant_id), session.id);
    if state.runtime.is_closed() {
        return Err(AppError::WhatsAppUnavailable(
            "This instance is shutting down".into(),
        ));
    }
    let cancel = CancellationToken::new();
    let (events, mut rx) = EventSink::channel(16);
    let ctx = SessionContext {
        tenant_id: tenant,
        session_id: id,
        settings: super::settings::for_provider(state, session).await?,
        store: Arc::new(DbDeviceStore::for_session(state, tenant, id)),
        media: state.media.clone(),
        events,
        updates: state.updates.clone(),
        cancel: cancel.clone(),
    };
    let conn = match provider.start(ctx).await {
        Ok(conn) => conn,
        Err(e) => {
            let failed = ProviderEvent::Failed {
                error: e.to_string(),
            };
            apply_event(state, tenant, id, attempt, failed).await?;
            return Err(AppError::WhatsAppUnavailable(format!(
                "Provider error: {e}"
            )));
        }
    };
    state
        .runtime
        .register(id, attempt, cancel.clone(), conn.clone());
    let state = state.clone();
    tokio::spawn(async move {
        let mut first = first;
        let mut ended = false;
        loop {
            let reported = tokio::select! {
                biased;
                () = cancel.cancelled() => { ended = true; break }
                ev = rx.recv() => match ev { Some(ev) => ev, None => break },
            };
            let keep = apply_with_retries(&state, tenant, id, attempt, reported.item).await;
            let _ = reported.ack.send(keep);
            if let Some(tx) = first.take() {
                let _ = tx.send(());
            }
            if !keep {
                ended = true;
                cancel.cancel();
                break;
            }
        }
        conn.close().await;
        if !ended {
            // The provider went away without a final word: the connection is gone.
            let closed = ProviderEvent::Disconnected {
                reason: "The provider connection closed".into(),
            };
            apply_with_retries(&state, tenant, id, attempt, closed).await;
        }
        state.runtime.finished(id, attempt);
    });
    Ok(())
}

/// Applies a provider event, retrying a failed write with backoff. When it cannot be written
/// at all, the attempt ends `disconnected` (if even that fails, the lease lapses and the
/// supervisor of some instance takes the session over): never a row stuck in a live status
/// with nobody behind it. False when the connection should stop.
async fn apply_with_retries(
    state: &AppState,
    tenant: TenantId,
    id: Uuid,
    attempt: Uuid,
    ev: ProviderEvent,
) -> bool {
    let mut delay = std::time::Duration::from_millis(100);
    for n in 1..=EVENT_WRITE_TRIES {
        match apply_event(state, tenant, id, attempt, ev.clone()).await {
            Ok(keep) => return keep,
            Err(e) if n < EVENT_WRITE_TRIES => {
                tracing::warn!(session = %id, error = %e, try_n = n, "applying a provider event failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
            Err(e) => {
                tracing::error!(session = %id, error = %e, "applying a provider event failed; ending the connection");
            }
        }
    }
    let reason = "The gateway could not record the connection's state".to_owned();
    let owner = Owner::Attempt(Some(attempt));
    let ended = end(
        state,
        tenant,
        id,
        owner,
        SessionStatus::Disconnected,
        &ACTIVE,
        false,
        reason,
    );
    if let Err(e) = ended.await {
        tracing::error!(session = %id, error = %e, "could not end a connection whose events cannot be recorded");
    }
    false
}

/// Marks a session connected (from one of `from`, owned by `owner`) as `phone`;
/// `new_attempt` hands ownership to another attempt. Publishes the change.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn mark_connected(
    state: &AppState,
    tenant: TenantId,
    id: Uuid,
    from: &[&str],
    owner: Owner,
    new_attempt: Option<Uuid>,
    phone: &PhoneNumber,
) -> AppResult<bool> {
    let before = load(state, tenant, id).await?;
    let now = state.clock.now();
    let change = Change {
        status: Some(SessionStatus::Connected.as_str()),
        phone_number: Some(Some(phone.digits().to_owned())),
        // The pairing lives in the encrypted device store; clear any plaintext left by
        // versions that kept it here.
        credentials: Some(None),
        attempt_id: new_attempt.map(Some),
        qr: Some(None),
        last_error: Some(None),
        connected_at: Some(Some(
            before
                .connected_at
                .filter(|_| before.status == "connected")
                .unwrap_or(now),
        )),
        owner: None,
        reconnect_attempt: Some(0),
    };
    if !repo::sessions::transition(&state.db, tenant, id, from, owner, change, now).await? {
        return Ok(false);
    }
    if before.status != SessionStatus::Connected.as_str()
        || before.phone_number.as_deref() != Some(phone.digits())
    {
        reload_and_publish(state, tenant, id, None).await?;
    }
    tracing::info!(session = %id, phone = %phone, "session connected");
    // Sends that waited for the session go out now, not at their next scheduled look.
    let waiting = crate::domain::message::WAITING_FOR_SESSION;
    match repo::chat_queue::release_waiting(&state.db, tenant, id, waiting, now).await {
        Ok(n) if n > 0 => state.outbox.notify_one(),
        Ok(_) => {}
        Err(e) => tracing::warn!(session = %id, error = %e, "could not release waiting messages"),
    }
    Ok(true)
}

/// Applies one provider event of connection attempt `attempt`; false when the provider should
/// stop (the session moved on to another attempt or state, or the event ended the connection).
pub async fn apply_event(
    state: &AppState,
    tenant: TenantId,
    id: Uuid,
    attempt: Uuid,
    ev: ProviderEvent,
) -> AppResult<bool> {
    let now = state.clock.now();
    let db = &state.db;
    let owner = Owner::Attempt(Some(attempt));
    match ev {
        ProviderEvent::Qr { code, expires_at } => {
            let svg = qr::svg(&code)?;
            let Some(before) = repo::sessions::get(db, tenant, id).await? else {
                return Ok(false);
            };
            let change = Change {
                status: Some(SessionStatus::QrPending.as_str()),
                qr: Some(Some((code.clone(), expires_at))),
                ..Change::default()
            };
            if !repo::sessions::transition(
                db,
                tenant,
                id,
                &["connecting", "qr_pending"],
                owner,
                change,
                now,
            )
            .await?
            {
                return Ok(false);
            }
            if before.status != SessionStatus::QrPending.as_str() {
                reload_and_publish(state, tenant, id, None).await?;
            }
            if let Ok(art) = qr::terminal(&code) {
                tracing::info!(session = %id, %expires_at, "scan this QR code with WhatsApp (sandbox: POST /api/v1/whatsapp/{id}/sandbox/scan)\n{art}");
            }
            let payload = EventPayload::SessionQr(QrPayload {
                svg,
                code,
                expires_at,
            });
            crate::service::webhooks::emit(state, DomainEvent::new(tenant, id, now, payload)).await;
            Ok(true)
        }
        ProviderEvent::PairCode { code, phone } => {
            let Some(s) = repo::sessions::get(db, tenant, id).await? else {
                return Ok(false);
            };
            if s.attempt_id != Some(attempt) {
                return Ok(false);
            }
            let payload = EventPayload::SessionPairCode(PairCodePayload {
                code,
                phone_number: phone.digits().to_owned(),
            });
            crate::service::webhooks::emit(state, DomainEvent::new(tenant, id, now, payload)).await;
            Ok(true)
        }
        ProviderEvent::Connected { phone } => {
            mark_connected(state, tenant, id, &ACTIVE, owner, None, &phone).await
        }
        ProviderEvent::Reconnecting {
            attempt: n,
            retry_in,
            reason,
        } => reconnecting(state, tenant, id, owner, n, retry_in, reason).await,
        ProviderEvent::Disconnected { reason } => {
            end(
                state,
                tenant,
                id,
                owner,
                SessionStatus::Disconnected,
                &ACTIVE,
                false,
                reason,
            )
            .await?;
            Ok(false)
        }
        ProviderEvent::LoggedOut { reason } => {
            end(
                state,
                tenant,
                id,
                owner,
                SessionStatus::LoggedOut,
                &ACTIVE,
                true,
                reason,
            )
            .await?;
            Ok(false)
        }
        ProviderEvent::Failed { error } => {
            end(
                state,
                tenant,
                id,
                owner,
                SessionStatus::Failed,
                &ACTIVE,
                false,
                error,
            )
            .await?;
            Ok(false)
        }
    }
}

/// The connection dropped and is being retried: `connecting` with the retry number; queued
/// messages keep waiting.
async fn reconnecting(
    state: &AppState,
    tenant: TenantId,
    id: Uuid,
    owner: Owner,
    n: u32,
    retry_in: std::time::Duration,
    reason: String,
) -> AppResult<bool> {
    let change = Change {
        status: Some(SessionStatus::Connecting.as_str()),
        qr: Some(None),
        last_error: Some(Some(reason.clone())),
        reconnect_attempt: Some(i32::try_from(n).unwrap_or(i32::MAX)),
        ..Change::default()
    };
    let now = state.clock.now();
    if !repo::sessions::transition(&state.db, tenant, id, &ACTIVE, owner, change, now).await? {
        return Ok(false);
    }
    tracing::info!(session = %id, attempt = n, retry_in = ?retry_in, %reason, "reconnecting");
    let why = format!(
        "Reconnecting (attempt {n}, in {}): {reason}",
        humantime::format_duration(std::time::Duration::from_millis(
            u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX)
        ))
    );
    reload_and_publish(state, tenant, id, Some(why)).await?;
    Ok(true)
}

#[allow(clippy::too_many_arguments)]
async fn end(
    state: &AppState,
    tenant: TenantId,
    id: Uuid,
    owner: Owner,
    to: SessionStatus,
    from: &[&str],
    forget: bool,
    reason: String,
) -> AppResult<()> {
    let change = Change {
        status: Some(to.as_str()),
        qr: Some(None),
        attempt_id: Some(None),
        last_error: Some(Some(reason.clone())),
        phone_number: forget.then_some(None),
        credentials: forget.then_some(None),
        owner: Some(None),
        reconnect_attempt: Some(0),
        ..Change::default()
    };
    if repo::sessions::transition(
        &state.db,
        tenant,
        id,
        from,
        owner,
        change,
        state.clock.now(),
    )
    .await?
    {
        tracing::info!(session = %id, status = to.as_str(), %reason, "session ended");
        reload_and_publish(state, tenant, id, Some(reason)).await?;
    }
    Ok(())
}
