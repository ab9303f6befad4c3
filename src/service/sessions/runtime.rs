//! Provider tasks running in this process, and how their events change sessions.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{ACTIVE, SessionStatus, is_stale, load, publish_status, reload_and_publish};
use crate::{
    error::{AppError, AppResult},
    events::{Event, EventPayload, QrPayload},
    ids::TenantId,
    phone::PhoneNumber,
    provider::{ConnectRequest, ProviderEvent, ProviderKind},
    qr,
    repo::{self, sessions::Change},
    state::AppState,
};

/// The provider connections this process runs, by session.
#[derive(Clone, Default)]
pub struct SessionRuntime {
    tasks: Arc<Mutex<HashMap<Uuid, (u64, CancellationToken)>>>,
    generation: Arc<AtomicU64>,
}

impl SessionRuntime {
    fn register(&self, id: Uuid) -> (u64, CancellationToken) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, old)) = tasks.insert(id, (generation, token.clone())) {
            old.cancel();
        }
        (generation, token)
    }

    fn finished(&self, id: Uuid, generation: u64) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if tasks.get(&id).is_some_and(|(g, _)| *g == generation) {
            tasks.remove(&id);
        }
    }

    /// Stops this process's provider task for a session, if any.
    pub fn stop(&self, id: Uuid) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, token)) = tasks.remove(&id) {
            token.cancel();
        }
    }

    /// True while this process runs a provider task for the session.
    pub fn is_running(&self, id: Uuid) -> bool {
        let tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.contains_key(&id)
    }

    /// Stops every task (shutdown).
    pub fn stop_all(&self) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        for (_, (_, token)) in tasks.drain() {
            token.cancel();
        }
    }
}

/// Starts the provider for a session and applies its events until it stops. `first` is
/// signalled once the first event has been applied.
pub async fn start(
    state: &AppState,
    kind: ProviderKind,
    req: ConnectRequest,
    first: Option<oneshot::Sender<()>>,
) -> AppResult<()> {
    let provider = state.providers.get(kind).ok_or_else(|| {
        AppError::WhatsAppUnavailable(format!("Provider '{}' is not available", kind.as_str()))
    })?;
    let (tenant, id) = (req.tenant_id, req.session_id);
    let (generation, cancel) = state.runtime.register(id);
    let (tx, mut rx) = mpsc::channel::<ProviderEvent>(16);
    if let Err(e) = provider.connect(req, tx, cancel.clone()).await {
        state.runtime.finished(id, generation);
        apply_event(
            state,
            tenant,
            id,
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
        loop {
            let ev = tokio::select! {
                () = cancel.cancelled() => break,
                ev = rx.recv() => match ev { Some(ev) => ev, None => break },
            };
            let keep = match apply_event(&state, tenant, id, ev).await {
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
                cancel.cancel();
                break;
            }
        }
        state.runtime.finished(id, generation);
    });
    Ok(())
}

/// Marks a session connected (from one of `from`) with its pairing; publishes the change.
pub(crate) async fn mark_connected(
    state: &AppState,
    tenant: TenantId,
    id: Uuid,
    from: &[&str],
    phone: &PhoneNumber,
    credentials: &serde_json::Value,
) -> AppResult<bool> {
    let before = load(state, tenant, id).await?;
    let now = state.clock.now();
    let change = Change {
        status: Some(SessionStatus::Connected.as_str()),
        phone_number: Some(Some(phone.digits().to_owned())),
        credentials: Some(Some(credentials.to_string())),
        qr: Some(None),
        last_error: Some(None),
        connected_at: Some(Some(
            before
                .connected_at
                .filter(|_| before.status == "connected")
                .unwrap_or(now),
        )),
    };
    if !repo::sessions::transition(&state.db, tenant, id, from, change, now).await? {
        return Ok(false);
    }
    if before.status != SessionStatus::Connected.as_str()
        || before.phone_number.as_deref() != Some(phone.digits())
    {
        reload_and_publish(state, tenant, id, None).await?;
    }
    tracing::info!(session = %id, phone = %phone, "session connected");
    Ok(true)
}

/// Applies one provider event to the session; false when the provider should stop
/// (the session moved on, or the event ended the connection).
pub async fn apply_event(
    state: &AppState,
    tenant: TenantId,
    id: Uuid,
    ev: ProviderEvent,
) -> AppResult<bool> {
    let now = state.clock.now();
    let db = &state.db;
    match ev {
        ProviderEvent::Qr { code, expires_at } => {
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
                svg: qr::svg(&code)?,
                code,
                expires_at,
            });
            state
                .bus
                .publish(Event::new(tenant, id, now, payload))
                .await;
            Ok(true)
        }
        ProviderEvent::Connected { phone, credentials } => {
            mark_connected(state, tenant, id, &ACTIVE, &phone, &credentials).await
        }
        ProviderEvent::Disconnected { reason } => {
            end(
                state,
                tenant,
                id,
                SessionStatus::Disconnected,
                &ACTIVE,
                false,
                reason,
            )
            .await?;
            Ok(false)
        }
        ProviderEvent::LoggedOut { reason } => {
            let from = [
                "connecting",
                "qr_pending",
                "connected",
                "disconnected",
                "failed",
            ];
            end(
                state,
                tenant,
                id,
                SessionStatus::LoggedOut,
                &from,
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

async fn end(
    state: &AppState,
    tenant: TenantId,
    id: Uuid,
    to: SessionStatus,
    from: &[&str],
    forget: bool,
    reason: String,
) -> AppResult<()> {
    let change = Change {
        status: Some(to.as_str()),
        qr: Some(None),
        last_error: Some(Some(reason.clone())),
        phone_number: forget.then_some(None),
        credentials: forget.then_some(None),
        ..Change::default()
    };
    if repo::sessions::transition(&state.db, tenant, id, from, change, state.clock.now()).await? {
        tracing::info!(session = %id, status = to.as_str(), %reason, "session ended");
        reload_and_publish(state, tenant, id, Some(reason)).await?;
    }
    Ok(())
}

/// At start-up: reconnect sessions that were connected (their pairing is persisted, so no QR
/// is needed) and release `connecting`/`qr_pending` sessions whose provider task died.
pub async fn resume(state: &AppState) -> AppResult<()> {
    let rows = repo::sessions::live_sessions_for_resume(&state.db, &ACTIVE).await?;
    let now = state.clock.now();
    for s in rows {
        let tenant = TenantId(s.tenant_id);
        let kind = ProviderKind::parse(&s.provider).unwrap_or(ProviderKind::Sandbox);
        let credentials = s
            .credentials
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok());
        if s.status == SessionStatus::Connected.as_str() && credentials.is_some() {
            let req = ConnectRequest {
                tenant_id: tenant,
                session_id: s.id,
                credentials,
            };
            if let Err(e) = start(state, kind, req, None).await {
                tracing::warn!(session = %s.id, error = %e, "could not resume session");
            } else {
                tracing::info!(session = %s.id, "resuming connected session");
            }
        } else if s.status == SessionStatus::Connected.as_str() || is_stale(&s, now) {
            let change = Change {
                status: Some(SessionStatus::Disconnected.as_str()),
                qr: Some(None),
                last_error: Some(Some("Gateway restarted".into())),
                ..Change::default()
            };
            if repo::sessions::transition(
                &state.db,
                tenant,
                s.id,
                &[s.status.as_str()],
                change,
                now,
            )
            .await?
            {
                let m = load(state, tenant, s.id).await?;
                publish_status(state, &m, Some("Gateway restarted".into())).await;
            }
        }
    }
    Ok(())
}
