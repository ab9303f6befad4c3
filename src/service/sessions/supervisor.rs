//! The supervisor: keeps this instance's claims on its live sessions fresh and takes over the
//! sessions whose owner stopped renewing them.
//!
//! Every heartbeat it (1) renews the leases of the sessions this instance owns and stops any
//! local connection whose session it no longer owns (disconnected on another instance, or
//! taken over while this one stalled), then (2) claims live sessions whose lease lapsed and
//! connects them here: with their pairing where they were connected, with a new QR code where
//! one was being shown. A session owned by a live instance is never taken, because that
//! instance renews its lease long before it lapses.

use std::{collections::HashSet, time::Duration};

use tokio_util::sync::CancellationToken;

use super::{SessionStatus, reload_and_publish};
use crate::{
    domain::{ProviderKind, ids::TenantId},
    error::AppResult,
    repo::session_leases,
    service::sessions::runtime,
    state::AppState,
};

/// Sessions claimed per round (a round follows at once while it claims this many).
const CLAIM_BATCH: u64 = 500;

/// The lease end for a claim or renewal made now.
pub(crate) fn lease_until(state: &AppState) -> chrono::DateTime<chrono::Utc> {
    state.clock.now()
        + chrono::Duration::from_std(state.cfg.runtime.session_lease)
            .unwrap_or_else(|_| chrono::Duration::seconds(6))
}

/// Runs heartbeats until `shutdown`, then hands this instance's sessions back.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    // Sessions an earlier life of this instance held were released at start-up, before the
    // API served anything (see `startup`).
    let me = state.cfg.runtime.instance_id.clone();
    let every = state.cfg.runtime.session_heartbeat;
    loop {
        if state.runtime.is_closed() {
            break;
        }
        let more = match round(&state, &me).await {
            Ok(claimed) => claimed >= CLAIM_BATCH as usize,
            Err(e) => {
                tracing::warn!(error = %e, "session heartbeat failed");
                false
            }
        };
        let pause = if more { Duration::ZERO } else { every };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Hands every session this instance owns back: their connections stop and the leases end,
/// so another instance takes them over at its next heartbeat.
pub async fn hand_back(state: &AppState) {
    state.runtime.stop_all();
    match session_leases::release_all(&state.db, &state.cfg.runtime.instance_id).await {
        Ok(n) if n > 0 => tracing::info!(sessions = n, "handed sessions back for another instance"),
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "could not hand sessions back; they are taken over when their lease lapses")
        }
    }
}

/// One heartbeat; returns how many sessions it claimed.
async fn round(state: &AppState, me: &str) -> AppResult<usize> {
    // Connections registered before the renewal: each one's row named this instance before
    // it started, so the renewal sees it unless the session moved on. (A connection started
    // during the renewal is not judged by it.)
    let running = state.runtime.snapshot();
    let owned = session_leases::heartbeat(&state.db, me, lease_until(state)).await?;
    let owned: HashSet<(uuid::Uuid, Option<uuid::Uuid>)> = owned.into_iter().collect();
    for (id, attempt) in running {
        if !owned.contains(&(id, Some(attempt))) {
            tracing::info!(session = %id, "no longer the owner of this session; closing its connection here");
            state.runtime.stop_attempt(id, Some(attempt));
        }
    }
    let now = state.clock.now();
    if state.runtime.is_closed() {
        return Ok(0);
    }
    let claimed =
        session_leases::claim_lapsed(&state.db, me, now, lease_until(state), CLAIM_BATCH).await?;
    let n = claimed.len();
    for (before, attempt) in claimed {
        let (id, tenant) = (before.id, TenantId(before.tenant_id));
        if let Err(e) = take_over(state, before, attempt).await {
            tracing::warn!(session = %id, error = %e, "could not connect a session taken over");
            // Never leave a claimed session `connecting` with nobody connecting it.
            let failed = crate::provider::ProviderEvent::Failed {
                error: format!("Could not connect after a takeover: {e}"),
            };
            if let Err(e) = runtime::apply_event(state, tenant, id, attempt, failed).await {
                tracing::warn!(session = %id, error = %e, "could not record a failed takeover");
            }
        }
    }
    Ok(n)
}

/// Connects a session this instance just claimed.
async fn take_over(
    state: &AppState,
    before: entity::wa_session::Model,
    attempt: uuid::Uuid,
) -> AppResult<()> {
    let tenant = TenantId(before.tenant_id);
    let reason = match before.owner_instance.as_deref() {
        Some(old) => format!("Taken over from instance {old}"),
        None if before.status == SessionStatus::Connected.as_str() => {
            "Reconnecting after a restart".to_owned()
        }
        None => "Connecting on this instance".to_owned(),
    };
    tracing::info!(session = %before.id, from = ?before.owner_instance, status = %before.status, "taking a session over");
    reload_and_publish(state, tenant, before.id, Some(reason)).await?;
    let kind = ProviderKind::parse(&before.provider).unwrap_or(ProviderKind::Sandbox);
    runtime::start(state, kind, &before, attempt, None).await
}
