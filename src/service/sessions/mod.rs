//! WhatsApp sessions: create, list, rename, delete, and the connection lifecycle.
//!
//! The database row is the source of truth; every status change is a compare-and-set on the
//! expected current status, so concurrent requests (or instances) cannot both win, and a
//! provider task that lost the race learns so from its next event and stops.

pub mod commands;
mod directory;
mod numbers;
mod pairing;
pub mod registry;
pub mod runtime;
pub mod settings;
pub mod supervisor;
mod types;

use uuid::Uuid;
use validator::Validate;

pub use directory::provider_host;
pub use numbers::check_number;
pub(crate) use pairing::control;
pub use pairing::{pending_qr, qr, request_pair_code, sandbox_scan};
pub use registry::SessionRuntime;
pub use types::*;

use crate::{
    auth::{Capability, Principal},
    domain::ids::TenantId,
    error::{AppError, AppResult},
    events::{DomainEvent, EventPayload, StatusPayload},
    provider::{ProviderError, ProviderKind},
    repo::{
        self,
        sessions::{Change, Owner},
    },
    service::{pagination::PageRequest, required_trimmed},
    state::AppState,
};

const NAME_REQUIRED: &str = "Name is required (at most 100 characters)";

/// Statuses in which a session holds (or is acquiring) a live connection.
pub(crate) const ACTIVE: [&str; 3] = ["connecting", "qr_pending", "connected"];
/// How long connect waits for the provider's first word (a QR code or "connected").
const CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn not_found() -> AppError {
    AppError::NotFound("Session not found".into())
}

pub(crate) async fn load(
    state: &AppState,
    tenant: TenantId,
    id: Uuid,
) -> AppResult<entity::wa_session::Model> {
    repo::sessions::get(&state.db, tenant, id)
        .await?
        .ok_or_else(not_found)
}

/// Publishes the session's current status as a `session.status` event.
pub(crate) async fn publish_status(
    state: &AppState,
    m: &entity::wa_session::Model,
    reason: Option<String>,
) {
    let status = SessionStatus::parse(&m.status);
    state.connected.forget(m.id);
    let payload = EventPayload::SessionStatus(StatusPayload {
        status: m.status.clone(),
        phone_number: m.phone_number.clone(),
        connected: status == SessionStatus::Connected,
        reason,
    });
    let event = DomainEvent::new(TenantId(m.tenant_id), m.id, state.clock.now(), payload);
    crate::service::webhooks::emit(state, event).await;
}

/// Re-reads a session after a transition and publishes its status.
pub(crate) async fn reload_and_publish(
    state: &AppState,
    tenant: TenantId,
    id: Uuid,
    reason: Option<String>,
) -> AppResult<entity::wa_session::Model> {
    let m = load(state, tenant, id).await?;
    publish_status(state, &m, reason).await;
    Ok(m)
}

/// Creates a session slot (`disconnected`).
pub async fn create(
    state: &AppState,
    p: &Principal,
    input: CreateSessionInput,
) -> AppResult<SessionOutput> {
    p.require(Capability::ManageSessions)?;
    input.validate()?;
    let name = required_trimmed(&input.name, "name", NAME_REQUIRED)?;
    let kind = input.provider.unwrap_or(state.cfg.provider);
    let Some(provider) = state.providers.get(kind) else {
        return Err(AppError::field(
            "provider",
            format!(
                "Provider '{}' is not available on this gateway",
                kind.as_str()
            ),
        ));
    };
    let mut given = None;
    for (k, v) in input.settings() {
        if k != kind {
            return Err(AppError::field(
                k.as_str(),
                format!(
                    "Settings for '{}' were given, but the session's provider is '{}'",
                    k.as_str(),
                    kind.as_str()
                ),
            ));
        }
        given = Some(v.clone());
    }
    let split = settings::check(provider.as_ref(), given)?;
    let public = split.public.as_ref().map(|v| v.to_string());
    let m = repo::sessions::insert(
        &state.db,
        p.tenant_id,
        repo::sessions::NewSession {
            name,
            provider: kind.as_str(),
            status: SessionStatus::Disconnected.as_str(),
            settings: public.as_deref(),
        },
        state.clock.now(),
    )
    .await?;
    if let Err(e) = settings::store_secrets(state, p.tenant_id, m.id, split.secrets).await {
        // Never leave a session whose secrets are missing.
        let _ = repo::sessions::delete(&state.db, p.tenant_id, m.id).await;
        return Err(e);
    }
    Ok(SessionOutput::from(&m))
}

/// A page of the tenant's sessions.
pub async fn list(state: &AppState, p: &Principal, page: PageRequest) -> AppResult<SessionPage> {
    p.require(Capability::ReadSessions)?;
    let (rows, total) =
        repo::sessions::list(&state.db, p.tenant_id, page.offset(), page.limit).await?;
    Ok(SessionPage {
        data: rows.iter().map(SessionOutput::from).collect(),
        pagination: page.pagination(total),
    })
}

/// One session.
pub async fn get(state: &AppState, p: &Principal, id: Uuid) -> AppResult<SessionOutput> {
    p.require(Capability::ReadSessions)?;
    Ok(SessionOutput::from(&load(state, p.tenant_id, id).await?))
}

/// Connection status of one session.
pub async fn status(state: &AppState, p: &Principal, id: Uuid) -> AppResult<SessionStatusOutput> {
    p.require(Capability::ReadSessions)?;
    Ok(SessionStatusOutput::from(
        &load(state, p.tenant_id, id).await?,
    ))
}

/// Renames a session.
pub async fn rename(
    state: &AppState,
    p: &Principal,
    id: Uuid,
    input: RenameSessionInput,
) -> AppResult<SessionOutput> {
    p.require(Capability::ManageSessions)?;
    input.validate()?;
    let name = required_trimmed(&input.name, "name", NAME_REQUIRED)?;
    if !repo::sessions::rename(&state.db, p.tenant_id, id, name, state.clock.now()).await? {
        return Err(not_found());
    }
    Ok(SessionOutput::from(&load(state, p.tenant_id, id).await?))
}

/// Starts connecting. Returns once the provider has issued a QR code (`qr_pending`) or
/// restored an earlier pairing (`connected`).
pub async fn connect(state: &AppState, p: &Principal, id: Uuid) -> AppResult<ConnectOutput> {
    p.require(Capability::ManageSessions)?;
    let s = load(state, p.tenant_id, id).await?;
    let now = state.clock.now();
    let status = SessionStatus::parse(&s.status);
    let from = match status {
        SessionStatus::Connected => {
            return Err(AppError::Conflict("Session is already connected".into()));
        }
        SessionStatus::Connecting | SessionStatus::QrPending
            if s.owner_lease_until.is_some_and(|until| until > now)
                || state.runtime.is_running(id) =>
        {
            return Err(AppError::Conflict(
                "Session is already connecting; scan the QR code or disconnect first".into(),
            ));
        }
        other => other.as_str(),
    };
    let kind = ProviderKind::parse(&s.provider).unwrap_or(ProviderKind::Sandbox);
    if state.providers.get(kind).is_none() {
        return Err(AppError::WhatsAppUnavailable(format!(
            "Provider '{}' is not available on this gateway",
            kind.as_str()
        )));
    }
    let attempt = Uuid::now_v7();
    let change = Change {
        status: Some(SessionStatus::Connecting.as_str()),
        attempt_id: Some(Some(attempt)),
        qr: Some(None),
        last_error: Some(None),
        owner: Some(Some((
            state.cfg.runtime.instance_id.clone(),
            supervisor::lease_until(state),
        ))),
        reconnect_attempt: Some(0),
        ..Change::default()
    };
    let owner = Owner::Attempt(s.attempt_id);
    if !repo::sessions::transition(&state.db, p.tenant_id, id, &[from], owner, change, now).await? {
        return Err(AppError::Conflict(
            "Session changed state meanwhile; try again".into(),
        ));
    }
    reload_and_publish(state, p.tenant_id, id, None).await?;

    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    runtime::start(state, kind, &s, attempt, Some(first_tx)).await?;
    let _ = tokio::time::timeout(CONNECT_WAIT, first_rx).await;

    let now_status = SessionStatus::parse(&load(state, p.tenant_id, id).await?.status);
    let message = match now_status {
        SessionStatus::QrPending => "Scan QR code in dashboard",
        SessionStatus::Connected => "Session connected",
        SessionStatus::Connecting => "Connecting; watch the session status",
        SessionStatus::Failed => {
            return Err(AppError::WhatsAppUnavailable(
                "The provider could not connect the session".into(),
            ));
        }
        SessionStatus::Disconnected | SessionStatus::LoggedOut => "Connection attempt ended",
    };
    Ok(ConnectOutput {
        status: now_status,
        message: message.into(),
    })
}

/// A user ends the session's current connection (disconnect, logout): the change applies only
/// if the session is still as read, and only the attempt that owned it is stopped.
async fn end_by_user(
    state: &AppState,
    s: &entity::wa_session::Model,
    change: Change,
) -> AppResult<()> {
    let owner = Owner::Attempt(s.attempt_id);
    let tenant = TenantId(s.tenant_id);
    if !repo::sessions::transition(
        &state.db,
        tenant,
        s.id,
        &[s.status.as_str()],
        owner,
        change,
        state.clock.now(),
    )
    .await?
    {
        return Err(AppError::Conflict(
            "Session changed state meanwhile; try again".into(),
        ));
    }
    state.runtime.stop_attempt(s.id, s.attempt_id);
    Ok(())
}

/// Disconnects without forgetting the pairing.
pub async fn disconnect(state: &AppState, p: &Principal, id: Uuid) -> AppResult<SessionOutput> {
    p.require(Capability::ManageSessions)?;
    let s = load(state, p.tenant_id, id).await?;
    if !ACTIVE.contains(&s.status.as_str()) {
        return Err(AppError::Conflict("Session is not connected".into()));
    }
    let change = Change {
        status: Some(SessionStatus::Disconnected.as_str()),
        attempt_id: Some(None),
        qr: Some(None),
        last_error: Some(None),
        owner: Some(None),
        reconnect_attempt: Some(0),
        ..Change::default()
    };
    let owner = remote_owner(state, &s);
    end_by_user(state, &s, change).await?;
    if let Some(owner) = owner {
        stop_remote(state, &owner, &s).await;
    }
    let m = reload_and_publish(state, p.tenant_id, id, Some("Disconnected by user".into())).await?;
    Ok(SessionOutput::from(&m))
}

/// The instance holding the session's connection under a live lease, unless it is this one.
fn remote_owner(state: &AppState, s: &entity::wa_session::Model) -> Option<String> {
    s.owner_instance
        .as_deref()
        .filter(|o| *o != state.cfg.runtime.instance_id)
        .filter(|_| s.owner_lease_until.is_some_and(|u| u > state.clock.now()))
        .map(str::to_owned)
}

/// Tells the instance that ran the session's connection (`owner`) to close it, right away
/// rather than at its next heartbeat. Best effort: a missed command is caught by that
/// heartbeat, which closes connections of sessions the instance no longer owns.
async fn stop_remote(state: &AppState, owner: &str, s: &entity::wa_session::Model) {
    let cmd = commands::SessionCommand {
        session: s.id,
        attempt: s.attempt_id,
        action: commands::Action::Stop,
    };
    if let Err(e) = commands::send(state, owner, cmd).await {
        tracing::warn!(session = %s.id, %owner, error = %e, "could not tell the owner to close the connection; it closes at its next heartbeat");
    }
}

/// Unlinks the device: through the live connection (here, or on the instance that runs it),
/// otherwise through the provider with the session's device store. The gateway forgets the
/// pairing either way.
async fn forget_pairing(
    state: &AppState,
    m: &entity::wa_session::Model,
    conn: Option<std::sync::Arc<dyn crate::provider::Connection>>,
    owner: Option<String>,
) {
    let result = match (conn, owner) {
        (Some(conn), _) => conn.logout().await,
        (None, Some(owner)) => {
            let cmd = commands::SessionCommand {
                session: m.id,
                attempt: m.attempt_id,
                action: commands::Action::Logout,
            };
            match commands::send(state, &owner, cmd).await {
                Ok(_) => Ok(()),
                Err(e) => {
                    tracing::warn!(session = %m.id, %owner, error = %e, "the owner could not log out; forgetting the pairing here");
                    forget_offline(state, m).await
                }
            }
        }
        (None, None) => forget_offline(state, m).await,
    };
    if let Err(e) = result {
        tracing::warn!(session = %m.id, error = %e, "provider logout failed; pairing dropped locally");
    }
}

async fn forget_offline(
    state: &AppState,
    m: &entity::wa_session::Model,
) -> Result<(), ProviderError> {
    let kind = ProviderKind::parse(&m.provider).unwrap_or(ProviderKind::Sandbox);
    let store = crate::service::device_store::DbDeviceStore::for_session(
        state,
        TenantId(m.tenant_id),
        m.id,
    );
    match state.providers.get(kind) {
        Some(provider) => provider.forget(&store).await,
        None => Ok(()),
    }
}

/// Forgets the pairing: the next connect needs a new QR code.
pub async fn logout(state: &AppState, p: &Principal, id: Uuid) -> AppResult<SessionOutput> {
    p.require(Capability::ManageSessions)?;
    let s = load(state, p.tenant_id, id).await?;
    if !ACTIVE.contains(&s.status.as_str()) && s.phone_number.is_none() {
        return Err(AppError::Conflict("Session is not paired".into()));
    }
    let conn = state.runtime.connection(id);
    let owner = remote_owner(state, &s);
    let change = Change {
        status: Some(SessionStatus::LoggedOut.as_str()),
        phone_number: Some(None),
        credentials: Some(None),
        attempt_id: Some(None),
        qr: Some(None),
        owner: Some(None),
        reconnect_attempt: Some(0),
        ..Change::default()
    };
    end_by_user(state, &s, change).await?;
    forget_pairing(state, &s, conn, owner).await;
    let m = reload_and_publish(state, p.tenant_id, id, Some("Logged out by user".into())).await?;
    Ok(SessionOutput::from(&m))
}

/// Logs out (if paired) and removes the session.
pub async fn delete(state: &AppState, p: &Principal, id: Uuid) -> AppResult<()> {
    p.require(Capability::ManageSessions)?;
    let s = load(state, p.tenant_id, id).await?;
    let conn = state.runtime.connection(id);
    let owner = remote_owner(state, &s);
    state.runtime.stop(id);
    forget_pairing(state, &s, conn, owner).await;
    if !repo::sessions::delete(&state.db, p.tenant_id, id).await? {
        return Err(not_found());
    }
    let mut gone = s;
    gone.status = SessionStatus::LoggedOut.as_str().into();
    gone.phone_number = None;
    publish_status(state, &gone, Some("Session deleted".into())).await;
    Ok(())
}

/// A provider's refusal as the caller's error.
pub(crate) fn provider_error(e: ProviderError) -> AppError {
    match e {
        ProviderError::Refused(m) => AppError::Conflict(m),
        ProviderError::Unsupported(m) => AppError::field("provider", m),
        ProviderError::Unavailable(m) => AppError::WhatsAppUnavailable(m),
    }
}
