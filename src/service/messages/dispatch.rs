//! The outbox dispatcher: claims due `queued` messages, hands them to their session's
//! provider, and records `sent`, a retry with exponential backoff, or `failed`.
//!
//! Claims are leases: a dispatcher that dies mid-send loses its claim when the lease runs
//! out and another dispatcher sends the message again, under the same message id, which
//! providers treat as an idempotency key. Messages to one chat are sent in order.

use std::{collections::HashMap, sync::Arc, time::Duration};

use rand::Rng;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{Location, MessageKind, MessageStatus, publish};
use crate::{
    ids::TenantId,
    phone::PhoneNumber,
    provider::{OutboundMedia, OutboundMessage, ProviderKind, SendError},
    repo,
    service::sessions::SessionStatus,
    state::AppState,
};

/// Starts the dispatcher; it stops claiming when `shutdown` is cancelled.
pub fn spawn(state: AppState, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(state, shutdown))
}

async fn run(state: AppState, shutdown: CancellationToken) {
    let cfg = state.cfg.messaging.dispatch.clone();
    let permits = Arc::new(Semaphore::new(cfg.concurrency));
    let mut backoff = cfg.poll_interval;
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        // Claim no more than can be worked on now, so claims don't sit out their lease.
        let free = permits.available_permits() as u64;
        if free == 0 {
            tokio::select! {
                () = shutdown.cancelled() => return,
                p = permits.clone().acquire_owned() => drop(p),
            }
            continue;
        }
        let now = state.clock.now();
        let lease = chrono::Duration::from_std(cfg.lease).unwrap_or(chrono::Duration::MAX);
        let claimed =
            match repo::messages::claim_due(&state.db, now, now + lease, free.min(cfg.batch)).await
            {
                Ok(rows) => {
                    backoff = cfg.poll_interval;
                    rows
                }
                Err(e) => {
                    tracing::error!(error = %e, "claiming queued messages failed");
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    continue;
                }
            };
        if claimed.is_empty() {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = state.outbox.notified() => {}
                () = tokio::time::sleep(cfg.poll_interval) => {}
            }
            continue;
        }
        // One task per chat, in order; chats in parallel.
        let mut chats: Vec<Vec<entity::message::Model>> = Vec::new();
        let mut index: HashMap<(uuid::Uuid, String), usize> = HashMap::new();
        for m in claimed {
            let key = (m.session_id, m.phone.clone());
            let slot = *index.entry(key).or_insert_with(|| {
                chats.push(Vec::new());
                chats.len() - 1
            });
            chats[slot].push(m);
        }
        for chat in chats {
            let n = u32::try_from(chat.len()).unwrap_or(u32::MAX);
            let Ok(permit) = permits.clone().acquire_many_owned(n).await else {
                return;
            };
            let state = state.clone();
            tokio::spawn(async move {
                for m in chat {
                    dispatch_one(&state, m).await;
                }
                drop(permit);
            });
        }
    }
}

/// The delay before attempt `attempts + 1`: base × 2^(attempts − 1), capped, with up to 20 %
/// jitter so retries of many messages spread out.
pub fn backoff_delay(attempts: i32, base: Duration, max: Duration) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let raw = base.saturating_mul(2u32.saturating_pow(exp)).min(max);
    let jitter = rand::rng().random_range(0.0..0.2);
    raw.mul_f64(1.0 + jitter).min(max)
}

/// How one attempt ended.
enum Outcome {
    /// The provider accepted it, under this id.
    Sent(String),
    /// Not tried: the session is still (re)connecting. Retried soon, not counted.
    Defer(String),
    /// The provider (or the session's state) refused it.
    Refused(SendError),
}

async fn dispatch_one(state: &AppState, m: entity::message::Model) {
    let tenant = TenantId(m.tenant_id);
    let id = m.id;
    let outcome = attempt(state, &m).await;
    let now = state.clock.now();
    let cfg = &state.cfg.messaging.dispatch;
    let at = |d: Duration| now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    let result = match outcome {
        Outcome::Sent(provider_id) => {
            repo::messages::mark_sent(&state.db, tenant, id, &provider_id, now)
                .await
                .map(|row| row.filter(|r| r.status == MessageStatus::Sent.as_str()))
        }
        Outcome::Defer(reason) => {
            let next = at(cfg.poll_interval.min(Duration::from_secs(1)));
            repo::messages::reschedule(&state.db, tenant, id, m.attempts, false, &reason, next, now)
                .await
                .map(|()| None)
        }
        Outcome::Refused(SendError::Transient(reason)) if m.attempts < cfg.max_attempts => {
            let delay = backoff_delay(m.attempts, cfg.backoff_base, cfg.backoff_max);
            tracing::info!(message = %id, attempts = m.attempts, %reason, retry_in = ?delay, "send failed; will retry");
            repo::messages::reschedule(
                &state.db,
                tenant,
                id,
                m.attempts,
                true,
                &reason,
                at(delay),
                now,
            )
            .await
            .map(|()| None)
        }
        Outcome::Refused(e) => {
            let reason = match e {
                SendError::Transient(r) => format!("{r} (gave up after {} attempts)", m.attempts),
                SendError::Permanent(r) => r,
            };
            tracing::info!(message = %id, %reason, "message failed");
            repo::messages::fail_claimed(&state.db, tenant, id, m.attempts, &reason, now).await
        }
    };
    match result {
        Ok(Some(row)) => publish(state, &row, false).await,
        Ok(None) => {}
        // The claim runs out and the message is tried again; the provider call is idempotent.
        Err(e) => tracing::error!(message = %id, error = %e, "recording a dispatch result failed"),
    }
}

/// One provider call for a claimed message.
async fn attempt(state: &AppState, m: &entity::message::Model) -> Outcome {
    match try_send(state, m).await {
        Ok(id) => Outcome::Sent(id),
        Err(e) => e,
    }
}

async fn try_send(state: &AppState, m: &entity::message::Model) -> Result<String, Outcome> {
    let refused = |e: SendError| Outcome::Refused(e);
    let tenant = TenantId(m.tenant_id);
    let session = repo::sessions::get(&state.db, tenant, m.session_id)
        .await
        .map_err(|e| refused(SendError::Transient(format!("database error: {e}"))))?
        .ok_or_else(|| refused(SendError::Permanent("The session no longer exists".into())))?;
    let status = SessionStatus::parse(&session.status);
    if matches!(status, SessionStatus::Connecting | SessionStatus::QrPending) {
        return Err(Outcome::Defer(format!(
            "Waiting for the session to connect (status: {})",
            session.status
        )));
    }
    if status != SessionStatus::Connected {
        return Err(refused(SendError::Transient(format!(
            "Session is not connected (status: {})",
            session.status
        ))));
    }
    let kind = ProviderKind::parse(&session.provider).unwrap_or(ProviderKind::Sandbox);
    let provider = state.providers.get(kind).ok_or_else(|| {
        refused(SendError::Transient(format!(
            "Provider '{}' is not available",
            kind.as_str()
        )))
    })?;
    let to = PhoneNumber::parse(&m.phone).map_err(|_| {
        refused(SendError::Permanent(format!(
            "Invalid recipient {}",
            m.phone
        )))
    })?;
    let media = match (&m.media_key, &m.media_mime) {
        (Some(key), Some(mime)) => Some(OutboundMedia {
            key: key.clone(),
            mime: mime.clone(),
            size: m.media_size.unwrap_or(0),
            file_name: m.media_filename.clone(),
        }),
        _ => None,
    };
    let msg = OutboundMessage {
        tenant_id: tenant,
        session_id: m.session_id,
        message_id: m.id,
        credentials: session
            .credentials
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok()),
        to,
        kind: MessageKind::parse(&m.kind).unwrap_or(MessageKind::Text),
        body: m.body.clone(),
        media,
        location: m
            .location
            .as_deref()
            .and_then(|l| serde_json::from_str::<Location>(l).ok()),
    };
    let timeout = state.cfg.messaging.dispatch.send_timeout;
    match tokio::time::timeout(timeout, provider.send(msg, state.updates.clone())).await {
        Ok(Ok(sent)) => Ok(sent.provider_message_id),
        Ok(Err(e)) => Err(refused(e)),
        Err(_) => Err(refused(SendError::Transient(format!(
            "The provider did not answer within {}",
            humantime::format_duration(timeout)
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_secs(2);
        let max = Duration::from_secs(60);
        for (attempts, low) in [(1, 2), (2, 4), (3, 8), (4, 16)] {
            let d = backoff_delay(attempts, base, max);
            assert!(
                d >= Duration::from_secs(low) && d <= Duration::from_secs(low) * 6 / 5,
                "{attempts}: {d:?}"
            );
        }
        assert_eq!(backoff_delay(30, base, max), max);
    }
}
