//! The outbox dispatcher: claims due `queued` messages, hands them to their session's
//! provider, and records `sent`, a retry with exponential backoff, or `failed`.
//!
//! Claims are leases: a dispatcher that dies mid-send loses its claim when the lease runs
//! out and another dispatcher sends the message again, under the same message id, which
//! providers treat as an idempotency key. Messages to one chat are sent in order.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use futures_util::FutureExt;

use rand::Rng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::{Location, MessageKind, MessageStatus, publish};
use crate::{
    domain::{SessionStatus, ids::TenantId},
    phone::PhoneNumber,
    provider::{OutboundMedia, OutboundMessage, SendError},
    repo,
    state::AppState,
};

/// The dispatcher; it stops claiming when `shutdown` is cancelled.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let cfg = state.cfg.messaging.dispatch.clone();
    let permits = Arc::new(Semaphore::new(cfg.concurrency));
    let (record_tx, record_rx) = mpsc::channel(1024);
    let recorder = tokio::spawn(record_results(state.clone(), record_rx));
    let chats = Chats(Arc::default(), record_tx, shutdown.clone());
    claim_loop(&state, &shutdown, &permits, &chats).await;
    // Drain: the chat workers finish the send they are in and give the rest back; once the
    // last has gone, the recorder has written every result.
    drop(chats);
    let _ = recorder.await;
}

async fn claim_loop(
    state: &AppState,
    shutdown: &CancellationToken,
    permits: &Arc<Semaphore>,
    chats: &Chats,
) {
    let cfg = state.cfg.messaging.dispatch.clone();
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
        let claimed = match repo::messages::claim_due(
            &state.db,
            now,
            after(now, cfg.lease),
            free.min(cfg.batch),
            &state.cfg.runtime.instance_id,
        )
        .await
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
        for m in claimed {
            let permit = match permits.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => match permits.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            chats.push(state, m, permit);
        }
    }
}

type ChatKey = (uuid::Uuid, String);

/// Most send results recorded in one commit. Small enough that a batch holds SQLite's single
/// connection only briefly (sends waiting to be accepted queue behind it).
const RECORD_BATCH: usize = 32;
type Work = (entity::message::Model, OwnedSemaphorePermit);

/// One worker per chat (session and recipient) with queued work: messages to a chat are sent
/// one after another, in claim order; chats run in parallel. Their results go to one
/// recorder, which writes them in batches.
#[derive(Clone)]
struct Chats(
    Arc<Mutex<HashMap<ChatKey, mpsc::UnboundedSender<Work>>>>,
    mpsc::Sender<Record>,
    CancellationToken,
);

impl Chats {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChatKey, mpsc::UnboundedSender<Work>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a claimed message to its chat's worker, starting one if the chat has none.
    fn push(&self, state: &AppState, m: entity::message::Model, permit: OwnedSemaphorePermit) {
        let key = (m.session_id, m.phone.clone());
        let mut map = self.lock();
        let work = match map.get(&key) {
            Some(tx) => match tx.send((m, permit)) {
                Ok(()) => return,
                Err(mpsc::error::SendError(work)) => work,
            },
            None => (m, permit),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(work);
        map.insert(key.clone(), tx);
        tokio::spawn(self.clone().work(state.clone(), key, rx));
    }

    async fn work(self, state: AppState, key: ChatKey, mut rx: mpsc::UnboundedReceiver<Work>) {
        let mut session = SessionCache::default();
        loop {
            let (first, permit) = match rx.try_recv() {
                Ok(w) => w,
                Err(mpsc::error::TryRecvError::Empty) => {
                    // Leave only while holding the map, so no message is pushed to a worker
                    // that is gone.
                    let mut map = self.lock();
                    if rx.is_empty() {
                        map.remove(&key);
                        return;
                    }
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            };
            let record = if self.2.is_cancelled() {
                // Stopping: a claim not started yet goes back at once, uncounted, for the
                // next owner instead of waiting out its lease.
                let now = state.clock.now();
                Record::Retry(
                    TenantId(first.tenant_id),
                    first.id,
                    first.attempts,
                    false,
                    None,
                    now,
                )
            } else {
                dispatch_one(&state, first, &mut session).await
            };
            if self.1.send(record).await.is_err() {
                return;
            }
            drop(permit);
        }
    }
}

/// `now + d`, saturating instead of overflowing.
fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The delay before attempt `attempts + 1`: base × 2^(attempts − 1), capped, with up to 20 %
/// jitter so retries of many messages spread out.
pub fn backoff_delay(attempts: i32, base: Duration, max: Duration) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let raw = base.saturating_mul(2u32.saturating_pow(exp)).min(max);
    let jitter = rand::rng().random_range(0.0..0.2);
    raw.mul_f64(1.0 + jitter).min(max)
}

pub use crate::domain::message::WAITING_FOR_SESSION;

/// How one attempt ended.
enum Outcome {
    /// The provider accepted it, under this id.
    Sent(String),
    /// Not tried: the session is still (re)connecting. Retried soon, not counted.
    Defer(String),
    /// The provider (or the session's state) refused it.
    Refused(SendError),
}

/// The chat's session, re-read at most every [`SESSION_FRESHNESS`] (a disconnect stops a
/// chat's sends within that time; the provider refuses anything sent on a dead connection).
#[derive(Default)]
struct SessionCache(Option<(std::time::Instant, entity::wa_session::Model)>);

const SESSION_FRESHNESS: Duration = Duration::from_millis(500);

impl SessionCache {
    async fn get(
        &mut self,
        state: &AppState,
        tenant: TenantId,
        id: uuid::Uuid,
    ) -> Result<Option<entity::wa_session::Model>, sea_orm::DbErr> {
        if let Some((at, s)) = &self.0
            && at.elapsed() < SESSION_FRESHNESS
            && s.status == SessionStatus::Connected.as_str()
        {
            return Ok(Some(s.clone()));
        }
        let s = repo::sessions::get(&state.db, tenant, id).await?;
        self.0 = s.clone().map(|s| (std::time::Instant::now(), s));
        Ok(s)
    }
}

/// What to write after handling one claimed message.
enum Record {
    /// Accepted by the provider.
    Sent(TenantId, uuid::Uuid, String),
    /// Back to the queue: (tenant, id, claimed attempt, count the attempt, error, due).
    Retry(
        TenantId,
        uuid::Uuid,
        i32,
        bool,
        Option<String>,
        DateTime<Utc>,
    ),
    /// Failed for good: (tenant, id, claimed attempt, reason).
    Fail(TenantId, uuid::Uuid, i32, String),
    /// Not tried because its session was (re)connecting: back to the queue uncounted, like
    /// `Retry`, and remembered by session so a connect that raced the write is not missed.
    Wait(TenantId, uuid::Uuid, uuid::Uuid, i32, String, DateTime<Utc>),
}

/// Handles one claimed message: sends it (unless its claim is too old to send safely) and
/// says what to record.
async fn dispatch_one(
    state: &AppState,
    m: entity::message::Model,
    session: &mut SessionCache,
) -> Record {
    let tenant = TenantId(m.tenant_id);
    let id = m.id;
    let cfg = &state.cfg.messaging.dispatch;
    let start = state.clock.now();
    if m.lease_until
        .is_none_or(|until| after(start, cfg.send_timeout) >= until)
    {
        // Waited in its chat's queue too long: a send now could outlive the claim and race
        // another dispatcher. Give it back, uncounted, to be claimed afresh.
        return Record::Retry(tenant, id, m.attempts, false, None, start);
    }
    let outcome = if m.attempts > cfg.max_attempts.saturating_add(3) {
        // Re-claimed over and over (its result could never be recorded): stop trying.
        Outcome::Refused(SendError::Permanent(format!(
            "Dispatch gave up after {} attempts",
            m.attempts
        )))
    } else {
        attempt(state, &m, session).await
    };
    let now = state.clock.now();
    match outcome {
        Outcome::Sent(provider_id) => Record::Sent(tenant, id, provider_id),
        Outcome::Defer(reason) => {
            // Soon at first, then less often the longer the message has waited (≤ 1 min).
            let waited = (now - m.created_at).to_std().unwrap_or_default();
            let delay = (waited / 10).clamp(
                cfg.poll_interval.min(Duration::from_secs(1)),
                Duration::from_secs(60),
            );
            Record::Wait(
                tenant,
                id,
                m.session_id,
                m.attempts,
                reason,
                after(now, delay),
            )
        }
        Outcome::Refused(SendError::Transient(reason)) if m.attempts < cfg.max_attempts => {
            let delay = backoff_delay(m.attempts, cfg.backoff_base, cfg.backoff_max);
            tracing::info!(message = %id, attempts = m.attempts, %reason, retry_in = ?delay, "send failed; will retry");
            Record::Retry(
                tenant,
                id,
                m.attempts,
                true,
                Some(reason),
                after(now, delay),
            )
        }
        Outcome::Refused(e) => {
            let reason = match e {
                SendError::Transient(r) => format!("{r} (gave up after {} attempts)", m.attempts),
                SendError::Permanent(r) => r,
            };
            tracing::info!(message = %id, %reason, "message failed");
            Record::Fail(tenant, id, m.attempts, reason)
        }
    }
}

async fn record_one(
    db: &impl sea_orm::ConnectionTrait,
    r: &Record,
    now: DateTime<Utc>,
) -> Result<Option<entity::message::Model>, sea_orm::DbErr> {
    match r {
        Record::Sent(tenant, id, provider_id) => {
            let row = repo::messages::mark_sent(db, *tenant, *id, provider_id, now)
                .await?
                .filter(|r| r.status == MessageStatus::Sent.as_str());
            if let Some(m) = &row {
                // The contact's lastMessageAt and conversationCount, in the same commit.
                let phone = format!("+{}", m.phone);
                repo::contacts::touch_conversation(db, *tenant, &phone, now).await?;
            }
            Ok(row)
        }
        Record::Retry(tenant, id, attempt, count, error, next) => repo::messages::reschedule(
            db,
            *tenant,
            *id,
            *attempt,
            *count,
            error.as_deref(),
            *next,
            now,
        )
        .await
        .map(|()| None),
        Record::Fail(tenant, id, attempt, reason) => {
            repo::messages::fail_claimed(db, *tenant, *id, *attempt, reason, now).await
        }
        Record::Wait(tenant, id, _, attempt, reason, next) => {
            repo::messages::reschedule(db, *tenant, *id, *attempt, false, Some(reason), *next, now)
                .await
                .map(|()| None)
        }
    }
}

/// After messages were put back to wait for their session: a session that connected while
/// they were being written has already released its waiting messages, without these. Read
/// after the write, its status tells: connected means release them again now.
async fn recheck_waiting(state: &AppState, records: &[Record]) {
    let mut sessions: Vec<(TenantId, uuid::Uuid)> = records
        .iter()
        .filter_map(|r| match r {
            Record::Wait(tenant, _, session, ..) => Some((*tenant, *session)),
            _ => None,
        })
        .collect();
    sessions.sort_unstable_by_key(|(t, s)| (t.uuid(), *s));
    sessions.dedup();
    for (tenant, session) in sessions {
        let connected = match repo::sessions::get(&state.db, tenant, session).await {
            Ok(s) => s.is_some_and(|s| s.status == SessionStatus::Connected.as_str()),
            Err(e) => {
                tracing::warn!(%session, error = %e, "could not re-read a session after deferring its sends");
                continue;
            }
        };
        if !connected {
            continue;
        }
        let now = state.clock.now();
        match repo::messages::release_waiting(&state.db, tenant, session, WAITING_FOR_SESSION, now)
            .await
        {
            Ok(n) if n > 0 => state.outbox.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::warn!(%session, error = %e, "could not release waiting messages"),
        }
    }
}

/// Records send results as they come, all that are waiting in one transaction.
async fn record_results(state: AppState, mut rx: mpsc::Receiver<Record>) {
    let mut buf = Vec::with_capacity(RECORD_BATCH);
    while rx.recv_many(&mut buf, RECORD_BATCH).await > 0 {
        record_all(&state, std::mem::take(&mut buf)).await;
    }
}

/// Writes the results of several sends in one transaction (one commit), then publishes the
/// changes. Should the transaction fail, each is written on its own; a result that cannot be
/// written at all leaves the claim to run out, and the message is sent again under the same
/// id, which the provider recognises.
async fn record_all(state: &AppState, records: Vec<Record>) {
    let now = state.clock.now();
    let together = async {
        let _turn = state.bookkeeping.lock().await;
        let txn = repo::begin_bookkeeping(&state.db).await?;
        let mut changed = Vec::new();
        for r in &records {
            changed.extend(record_one(&txn, r, now).await?);
        }
        let committed = super::enqueue_events(&txn, state, &changed, false).await?;
        txn.commit().await?;
        Ok::<_, sea_orm::DbErr>(committed)
    };
    let changed = match together.await {
        Ok((events, enqueued)) => {
            super::publish_committed(state, events, enqueued).await;
            recheck_waiting(state, &records).await;
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "recording dispatch results together failed; recording them one by one");
            let mut changed = Vec::new();
            for r in &records {
                match record_one(&state.db, r, now).await {
                    Ok(row) => changed.extend(row),
                    Err(e) => tracing::error!(error = %e, "recording a dispatch result failed"),
                }
            }
            changed
        }
    };
    for row in &changed {
        publish(state, row, false).await;
    }
    recheck_waiting(state, &records).await;
}

/// One provider call for a claimed message.
async fn attempt(
    state: &AppState,
    m: &entity::message::Model,
    session: &mut SessionCache,
) -> Outcome {
    match try_send(state, m, session).await {
        Ok(id) => Outcome::Sent(id),
        Err(e) => e,
    }
}

async fn try_send(
    state: &AppState,
    m: &entity::message::Model,
    session: &mut SessionCache,
) -> Result<String, Outcome> {
    let refused = |e: SendError| Outcome::Refused(e);
    let tenant = TenantId(m.tenant_id);
    let session = session
        .get(state, tenant, m.session_id)
        .await
        .map_err(|e| refused(SendError::Transient(format!("database error: {e}"))))?
        .ok_or_else(|| refused(SendError::Permanent("The session no longer exists".into())))?;
    let status = SessionStatus::parse(&session.status);
    if matches!(status, SessionStatus::Connecting | SessionStatus::QrPending) {
        return Err(Outcome::Defer(format!(
            "{WAITING_FOR_SESSION} (status: {})",
            session.status
        )));
    }
    if status != SessionStatus::Connected {
        return Err(refused(SendError::Transient(format!(
            "Session is not connected (status: {})",
            session.status
        ))));
    }
    let Some(conn) = state.runtime.connection(m.session_id) else {
        // Connected, but not here: its owner is being replaced (a takeover is under way) or
        // the message was claimed in the moment ownership moved. It waits, uncounted.
        return Err(Outcome::Defer(format!(
            "{WAITING_FOR_SESSION} (its connection runs on {})",
            session
                .owner_instance
                .as_deref()
                .unwrap_or("no instance yet")
        )));
    };
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
    let send = std::panic::AssertUnwindSafe(conn.send(msg)).catch_unwind();
    match tokio::time::timeout(timeout, send).await {
        Ok(Ok(Ok(sent))) => Ok(sent.provider_message_id),
        Ok(Ok(Err(e))) => Err(refused(e)),
        Ok(Err(_panic)) => Err(refused(SendError::Transient(
            "The provider failed unexpectedly".into(),
        ))),
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
