//! One send attempt of a claimed message: through its session's live connection, with the
//! outcome turned into what the recorder writes (sent, a retry with backoff, a wait for the
//! session, or failed).

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt;

use super::{Location, MessageKind};
use crate::{
    domain::{SessionStatus, ids::TenantId},
    phone::PhoneNumber,
    provider::{MediaFile, OutboundMessage, Recipient, SendError},
    repo,
    state::AppState,
};

/// `now + d`, saturating instead of overflowing.
pub(super) fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The delay before attempt `attempts + 1`: base × 2^(attempts − 1), capped, with up to 20 %
/// jitter so retries of many messages spread out.
pub fn backoff_delay(attempts: i32, base: Duration, max: Duration) -> Duration {
    crate::backoff::exponential(u32::try_from(attempts).unwrap_or(0), base, max)
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
pub(super) struct SessionCache(Option<(std::time::Instant, entity::wa_session::Model)>);

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

/// A chat: its session and the recipient's digits.
pub(super) type ChatKey = (uuid::Uuid, String);

/// A message going back to the queue.
pub(super) struct Requeue {
    pub tenant: TenantId,
    /// Where it sits in its chat (its later messages are held until `due` too).
    pub place: repo::chat_queue::Place,
    /// The attempt it was claimed as.
    pub attempt: i32,
    /// Whether that attempt counts towards the limit.
    pub counted: bool,
    /// Why, when it was tried.
    pub error: Option<String>,
    /// When it is due again.
    pub due: DateTime<Utc>,
}

impl Requeue {
    fn new(
        m: &entity::message::Model,
        counted: bool,
        error: Option<String>,
        due: DateTime<Utc>,
    ) -> Self {
        Self {
            tenant: TenantId(m.tenant_id),
            place: repo::chat_queue::Place {
                id: m.id,
                session: m.session_id,
                phone: m.phone.clone(),
                created_at: m.created_at,
            },
            attempt: m.attempts,
            counted,
            error,
            due,
        }
    }
}

/// What to write after handling one claimed message.
pub(super) enum Record {
    /// Accepted by the provider.
    Sent(TenantId, uuid::Uuid, String),
    /// Back to the queue after a failed attempt, until a later time.
    Retry(Requeue),
    /// Failed for good: (tenant, id, claimed attempt, reason).
    Fail(TenantId, uuid::Uuid, i32, String),
    /// Not tried because its session was (re)connecting: back to the queue uncounted, like
    /// `Retry`, and remembered by session so a connect that raced the write is not missed.
    Wait(Requeue),
    /// Not tried: back to the queue at once, uncounted, keeping its place (tenant, id,
    /// claimed attempt).
    GiveBack(TenantId, uuid::Uuid, i32),
    /// Written after a chat's message went back to the queue (and the rest of its claims with
    /// it): once committed, the chat may take new claims again.
    Unblock(ChatKey),
}

impl Record {
    /// True when the message goes back to the queue: the chat's later messages in the same
    /// run must then go back too, or they would overtake it.
    pub(super) fn requeues(&self) -> bool {
        matches!(self, Self::Retry(..) | Self::Wait(..) | Self::GiveBack(..))
    }

    /// A claimed message not tried: back to the queue at once, uncounted, keeping its place
    /// in its chat.
    pub(super) fn give_back(m: &entity::message::Model) -> Self {
        Self::GiveBack(TenantId(m.tenant_id), m.id, m.attempts)
    }
}

/// Handles one claimed message: sends it (unless its claim is too old to send safely) and
/// says what to record.
pub(super) async fn dispatch_one(
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
        return Record::give_back(&m);
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
            Record::Wait(Requeue::new(&m, false, Some(reason), after(now, delay)))
        }
        Outcome::Refused(SendError::Transient(reason)) if m.attempts < cfg.max_attempts => {
            let delay = backoff_delay(m.attempts, cfg.backoff_base, cfg.backoff_max);
            tracing::info!(message = %id, attempts = m.attempts, %reason, retry_in = ?delay, "send failed; will retry");
            Record::Retry(Requeue::new(&m, true, Some(reason), after(now, delay)))
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
    let to = match Recipient::group(&m.remote_jid) {
        Some(group) => group,
        None => Recipient::Phone(PhoneNumber::parse(&m.phone).map_err(|_| {
            refused(SendError::Permanent(format!(
                "Invalid recipient {}",
                m.phone
            )))
        })?),
    };
    let media = match (&m.media_key, &m.media_mime) {
        (Some(key), Some(mime)) => Some(MediaFile {
            key: key.clone(),
            mime: mime.clone(),
            size: m.media_size.unwrap_or(0),
            file_name: m.media_filename.clone(),
        }),
        _ => None,
    };
    let quoted = super::quotes::for_provider(state, tenant, m.quoted_message_id)
        .await
        .map_err(|e| refused(SendError::Transient(format!("database error: {e}"))))?;
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
        quoted,
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
