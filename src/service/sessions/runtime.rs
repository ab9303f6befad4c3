//! Provider tasks running in this process, and how their events change sessions.

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{ACTIVE, SessionStatus, load, reload_and_publish};
use crate::{
    domain::ids::TenantId,
    error::{AppError, AppResult},
    events::{DomainEvent, EventPayload, QrPayload},
    phone::PhoneNumber,
    provider::{ConnectRequest, ProviderEvent, ProviderKind},
    qr,
    repo::{
        self,
        sessions::{Change, Owner},
    },
    state::AppState,
};

/// Starts the provider for a session on behalf of connection attempt `attempt` (already
/// written to the row) and applies its events until it stops. `first` is signalled once the
/// first event has been applied.
pub async fn start(
    state: &AppState,
    kind: ProviderKind,
    req: ConnectRequest,
    attempt: Uuid,
    first: Option<oneshot::Sender<()>>,
) -> AppResult<()> {
    let provider = state.providers.get(kind).ok_or_else(|| {
        AppError::WhatsAppUnavailable(format!("Provider '{}' is not available", kind.as_str()))
    })?;
    let (tenant, id) = (req.tenant_id, req.session_id);
    if state.runtime.is_closed() {
        return Err(AppError::WhatsAppUnavailable(
            "This instance is shutting down".into(),
        ));
    }
    let cancel = state.runtime.register(id, attempt);
    let (tx, mut rx) = mpsc::channel::<ProviderEvent>(16);
    if let Err(e) = provider.connect(req, tx, cancel.clone()).await {
        state.runtime.finished(id, attempt);
        apply_event(
            state,
            tenant,
            id,
            attempt,
            ProviderEvent::Failed { error: e.0.clone() },
        )
        .await?;
        return Err(AppError::WhatsAppUnavailable(format!(
            "Provider error: {e}"
        )));
    }
    let state = state.clone();
    tokio::spawn(async move {
        let mut first = first;
        let mut ended = false;
        loop {
            let ev = tokio::select! {
                biased;
                () = cancel.cancelled() => { ended = true; break }
                ev = rx.recv() => match ev { Some(ev) => ev, None => break },
            };
            let keep = match apply_event(&state, tenant, id, attempt, ev).await {
                Ok(keep) => keep,
                Err(e) => {
                    tracing::error!(session = %id, error = %e, "applying a provider event failed");
                    false
                }
            };
            if let Some(tx) = first.take() {
                let _ = tx.send(());
            }
            if !keep {
                ended = true;
                cancel.cancel();
                break;
            }
        }
        if !ended {
            // The provider went away without a final word: the connection is gone.
            let closed = ProviderEvent::Disconnected {
                reason: "The provider connection closed".into(),
            };
            if let Err(e) = apply_event(&state, tenant, id, attempt, closed).await {
                tracing::error!(session = %id, error = %e, "recording a closed provider connection failed");
            }
        }
        state.runtime.finished(id, attempt);
    });
    Ok(())
}

/// Marks a session connected (from one of `from`, owned by `owner`) with its pairing;
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
    credentials: &serde_json::Value,
) -> AppResult<bool> {
    let before = load(state, tenant, id).await?;
    let now = state.clock.now();
    let change = Change {
        status: Some(SessionStatus::Connected.as_str()),
        phone_number: Some(Some(phone.digits().to_owned())),
        credentials: Some(Some(credentials.to_string())),
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
    let waiting = crate::service::messages::dispatch::WAITING_FOR_SESSION;
    match repo::messages::release_waiting(&state.db, tenant, id, waiting, now).await {
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
        ProviderEvent::Connected { phone, credentials } => {
            mark_connected(
                state,
                tenant,
                id,
                &ACTIVE,
                owner,
                None,
                &phone,
                &credentials,
            )
            .await
        }
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
