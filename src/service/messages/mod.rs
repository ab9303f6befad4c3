//! Messages: validated sends into the durable outbox, listing, media, receipts and inbound.
//!
//! A send is stored (`queued`) before the API answers; the [`dispatch`] worker hands it to the
//! session's provider. Receipts and inbound messages arrive as [`MessageUpdate`]s and are
//! applied here; every change is published as a `message.status` or `message.received` event.

mod chats;
pub mod connected;
pub mod dispatch;
pub mod media;
mod quotes;
mod read;
mod send;
mod types;
mod updates;
pub mod writer;

pub use connected::{CONNECTED_FRESHNESS, ConnectedCache};

use chrono::Duration;
use sha2::{Digest, Sha256};
use tokio::io::AsyncRead;
use uuid::Uuid;

use super::check::Check;
pub use read::{MediaDownload, get, list, media};
pub use types::*;
pub use updates::{apply_update, receive, run_updates, sandbox_inbound};

use crate::{
    auth::{Capability, Principal},
    domain::ids::TenantId,
    error::{AppError, AppResult},
    events::{DomainEvent, EventPayload},
    provider::Recipient,
    repo,
    service::{messages::media::StageError, sessions::SessionStatus},
    state::AppState,
};

/// Longest text message.
pub const MAX_TEXT: usize = 4096;
/// Longest caption.
pub const MAX_CAPTION: usize = 1024;
/// Longest `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

fn not_found() -> AppError {
    AppError::NotFound("Message not found".into())
}

/// What a send stores, after validation.
struct Draft {
    session_id: Uuid,
    to: Recipient,
    kind: MessageKind,
    body: Option<String>,
    media: Option<(String, String, i64, Option<String>)>,
    location: Option<Location>,
    quoted: Option<Uuid>,
}

impl Draft {
    fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.session_id.as_bytes());
        // The phone's digits, as before group sends existed, so stored fingerprints still match.
        h.update(self.to.key().as_bytes());
        h.update(self.kind.as_str().as_bytes());
        for part in [
            self.body.as_deref(),
            self.media.as_ref().map(|m| m.0.as_str()),
            self.media.as_ref().and_then(|m| m.3.as_deref()),
        ] {
            h.update([0u8]);
            h.update(part.unwrap_or_default().as_bytes());
        }
        if let Some(l) = &self.location {
            h.update(serde_json::to_vec(l).unwrap_or_default());
        }
        if let Some(q) = self.quoted {
            h.update(q.as_bytes());
        }
        crate::auth::token::sha256_hex(&format!("{:x}", h.finalize()))
    }
}

/// Checks an `Idempotency-Key` header value.
pub fn idempotency_key(raw: Option<&str>) -> AppResult<Option<String>> {
    let Some(raw) = raw else { return Ok(None) };
    let key = raw.trim();
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(AppError::field(
            "Idempotency-Key",
            format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
        ));
    }
    Ok(Some(key.to_owned()))
}

fn send_output(m: &entity::message::Model) -> SendOutput {
    SendOutput {
        id: m.id,
        status: MessageStatus::parse(&m.status).unwrap_or(MessageStatus::Queued),
        to: m.phone.clone(),
    }
}

/// The earlier message sent with this key, if it is still remembered; 409 when the key came
/// with a different request.
async fn replay(
    state: &AppState,
    tenant: TenantId,
    key: &str,
    hash: &str,
) -> AppResult<Option<SendOutput>> {
    let Some(m) = repo::messages::find_by_idempotency_key(&state.db, tenant, key).await? else {
        return Ok(None);
    };
    let ttl = Duration::from_std(state.cfg.messaging.idempotency_ttl).unwrap_or(Duration::MAX);
    if m.created_at + ttl <= state.clock.now() {
        repo::messages::release_idempotency_key(&state.db, tenant, m.id).await?;
        return Ok(None);
    }
    if m.request_hash.as_deref() != Some(hash) {
        return Err(AppError::Conflict(
            "This Idempotency-Key was already used for a different request".into(),
        ));
    }
    Ok(Some(send_output(&m)))
}

/// Stores a validated send as `queued` and wakes the dispatcher. A staged upload is moved
/// into the media store only once the send is known to go ahead.
async fn enqueue(
    state: &AppState,
    p: &Principal,
    d: Draft,
    idem: Option<String>,
    staged: Option<media::Staged>,
) -> AppResult<SendOutput> {
    let hash = idem.as_ref().map(|_| d.fingerprint());
    if let (Some(key), Some(hash)) = (&idem, &hash)
        && let Some(out) = replay(state, p.tenant_id, key, hash).await?
    {
        return Ok(out);
    }
    if !state.connected.recently(p.tenant_id, d.session_id) {
        let session = repo::sessions::get(&state.db, p.tenant_id, d.session_id)
            .await?
            .ok_or_else(|| AppError::NotFound("Session not found".into()))?;
        // A paired session that is reconnecting (after a drop, a takeover or a restart) takes
        // sends: they wait queued until it is back. A session never paired does not.
        let reconnecting =
            session.status == SessionStatus::Connecting.as_str() && session.phone_number.is_some();
        if session.status != SessionStatus::Connected.as_str() && !reconnecting {
            return Err(AppError::WhatsAppUnavailable(format!(
                "Session is not connected (status: {}); connect it before sending",
                session.status
            )));
        }
        state.connected.saw(p.tenant_id, d.session_id);
    }
    if let Some(q) = d.quoted {
        quotes::check(state, p.tenant_id, d.session_id, q).await?;
    }
    if let Some(staged) = staged {
        staged.commit(state.media.as_ref()).await?;
    }
    let now = state.clock.now();
    let (media_key, media_mime, media_size, media_filename) = match d.media {
        Some((k, m, s, f)) => (Some(k), Some(m), Some(s), f),
        None => (None, None, None, None),
    };
    let row = entity::message::Model {
        id: Uuid::now_v7(),
        tenant_id: p.tenant_id.uuid(),
        session_id: d.session_id,
        direction: Direction::Outbound.as_str().into(),
        kind: d.kind.as_str().into(),
        phone: d.to.key().to_owned(),
        remote_jid: d.to.jid(),
        body: d.body,
        media_key,
        media_mime,
        media_size,
        media_filename,
        location: d
            .location
            .as_ref()
            .and_then(|l| serde_json::to_string(l).ok()),
        status: MessageStatus::Queued.as_str().into(),
        error: None,
        provider_message_id: None,
        attempts: 0,
        next_attempt_at: Some(now),
        lease_until: None,
        lease_owner: None,
        idempotency_key: idem.clone(),
        request_hash: hash.clone(),
        created_at: now,
        updated_at: now,
        sent_at: None,
        delivered_at: None,
        read_at: None,
        played_at: None,
        failed_at: None,
        quoted_message_id: d.quoted,
    };
    let out = send_output(&row);
    match state.writer.insert(row).await {
        Ok(()) => {
            state.outbox.notify_one();
            Ok(out)
        }
        // The session was deleted a moment ago (its connected state was still cached).
        Err(e) if repo::is_foreign_key_violation(&e) => {
            state.connected.forget(d.session_id);
            Err(AppError::NotFound("Session not found".into()))
        }
        Err(e) if repo::is_unique_violation(&e) => {
            // Another request with the same key won the race: answer with its message.
            let (Some(key), Some(hash)) = (idem, hash) else {
                return Err(e.into());
            };
            replay(state, p.tenant_id, &key, &hash)
                .await?
                .ok_or_else(|| AppError::Conflict("Idempotency-Key is in use; retry".into()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Queues a text message.
pub async fn send_text(
    state: &AppState,
    p: &Principal,
    input: SendTextInput,
    idem: Option<String>,
) -> AppResult<SendOutput> {
    p.require(Capability::SendMessages)?;
    let mut c = Check::default();
    let session_id = c.session(&input.session_id);
    let to = c.recipient("to", &input.to);
    let text = c.text("text", &input.text, true, MAX_TEXT);
    let quoted = c.quoted(input.quoted_message_id.as_deref());
    c.finish()?;
    let (Some(session_id), Some(to), Some(text)) = (session_id, to, text) else {
        return Err(AppError::field("text", "Invalid message"));
    };
    let draft = Draft {
        session_id,
        to,
        kind: MessageKind::Text,
        body: Some(text),
        media: None,
        location: None,
        quoted,
    };
    enqueue(state, p, draft, idem, None).await
}

/// Queues a location message.
pub async fn send_location(
    state: &AppState,
    p: &Principal,
    input: SendLocationInput,
    idem: Option<String>,
) -> AppResult<SendOutput> {
    p.require(Capability::SendMessages)?;
    let mut c = Check::default();
    let session_id = c.session(&input.session_id);
    let to = c.recipient("to", &input.to);
    let lat = match input.latitude {
        Some(v) if (-90.0..=90.0).contains(&v) => Some(v),
        _ => {
            c.add("latitude", "latitude is required, from -90 to 90");
            None
        }
    };
    let lng = match input.longitude {
        Some(v) if (-180.0..=180.0).contains(&v) => Some(v),
        _ => {
            c.add("longitude", "longitude is required, from -180 to 180");
            None
        }
    };
    let name = c.text("name", input.name.as_deref().unwrap_or(""), false, 256);
    let address = c.text(
        "address",
        input.address.as_deref().unwrap_or(""),
        false,
        1024,
    );
    let quoted = c.quoted(input.quoted_message_id.as_deref());
    c.finish()?;
    let (Some(session_id), Some(to), Some(latitude), Some(longitude)) = (session_id, to, lat, lng)
    else {
        return Err(AppError::field("latitude", "Invalid location"));
    };
    let draft = Draft {
        session_id,
        to,
        kind: MessageKind::Location,
        body: None,
        media: None,
        location: Some(Location {
            latitude,
            longitude,
            name,
            address,
        }),
        quoted,
    };
    enqueue(state, p, draft, idem, None).await
}

/// An uploaded file, staged (or why it could not be read).
pub struct StagedUpload {
    /// The name the client gave it (display only; never trusted for the type).
    pub file_name: Option<String>,
    /// The staged content, or a message for the `file` field.
    pub content: Result<media::Staged, String>,
}

/// Streams an upload for a `kind` message into staging, checking its size as it arrives
/// (413 as soon as it is over the kind's limit). Call before [`send_media`]; the form's
/// other fields may come before or after the file.
pub async fn stage_upload<R: AsyncRead + Unpin>(
    state: &AppState,
    p: &Principal,
    kind: MessageKind,
    file_name: Option<String>,
    content: R,
) -> AppResult<StagedUpload> {
    p.require(Capability::SendMessages)?;
    let limit = media::limit_for(kind, &state.cfg.messaging.media);
    let content = match media::stage(&state.media_staging, content, limit).await {
        Ok(s) => Ok(s),
        Err(StageError::TooLarge) => {
            return Err(AppError::PayloadTooLarge(format!(
                "The {} must be at most {} bytes",
                kind.as_str(),
                limit
            )));
        }
        Err(StageError::Read(e)) => Err(format!("The upload could not be read: {e}")),
        Err(StageError::Write(e)) => return Err(AppError::internal(e)),
    };
    Ok(StagedUpload { file_name, content })
}

/// Queues an image, document, video or audio message from a staged upload: its type is
/// detected from its bytes, then it is stored under its content address.
pub async fn send_media(
    state: &AppState,
    p: &Principal,
    kind: MessageKind,
    input: SendMediaInput,
    file: Option<StagedUpload>,
    idem: Option<String>,
) -> AppResult<SendOutput> {
    p.require(Capability::SendMessages)?;
    let mut c = Check::default();
    let mut uploaded_name = None;
    let staged = match file {
        None => {
            c.add("file", "file is required");
            None
        }
        Some(u) => {
            uploaded_name = u.file_name;
            match u.content {
                Ok(s) => Some(s),
                Err(msg) => {
                    c.add("file", msg);
                    None
                }
            }
        }
    };
    let mime = match &staged {
        Some(s) if s.size == 0 => {
            c.add("file", "The file is empty");
            None
        }
        Some(s) => match media::sniff(kind, &s.head) {
            Ok(m) => Some(m),
            Err(msg) => {
                c.add("file", msg);
                None
            }
        },
        None => None,
    };
    let session_id = c.session(&input.session_id);
    let to = c.recipient("to", &input.to);
    let caption = match kind {
        MessageKind::Audio
            if input
                .caption
                .as_deref()
                .is_some_and(|s| !s.trim().is_empty()) =>
        {
            c.add("caption", "Audio messages cannot have a caption");
            None
        }
        _ => c.text(
            "caption",
            input.caption.as_deref().unwrap_or(""),
            false,
            MAX_CAPTION,
        ),
    };
    let file_name = input
        .file_name
        .or(uploaded_name)
        .map(|n| sanitize_file_name(&n))
        .filter(|n| !n.is_empty());
    let quoted = c.quoted(input.quoted_message_id.as_deref());
    c.finish()?;
    let (Some(staged), Some(mime), Some(session_id), Some(to)) = (staged, mime, session_id, to)
    else {
        return Err(AppError::field("file", "Invalid upload"));
    };
    let size = i64::try_from(staged.size).unwrap_or(i64::MAX);
    let key = staged.sha256.clone();
    let draft = Draft {
        session_id,
        to,
        kind,
        body: caption,
        media: Some((key, mime, size, file_name)),
        location: None,
        quoted,
    };
    enqueue(state, p, draft, idem, Some(staged)).await
}

/// A file name safe to show and to put in a `Content-Disposition` header.
fn sanitize_file_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    base.chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(255)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Publishes a message change made outside a transaction: webhook deliveries, then the bus.
pub(crate) async fn publish(state: &AppState, m: &entity::message::Model, received: bool) {
    crate::service::webhooks::emit(state, event(state, m, received)).await;
}

/// Queues the webhook deliveries of message changes on `txn` (before it commits); the live
/// events to publish once it has.
pub(crate) async fn enqueue_events(
    txn: &impl sea_orm::ConnectionTrait,
    state: &AppState,
    changed: &[entity::message::Model],
    received: bool,
) -> Result<(Vec<DomainEvent>, usize), sea_orm::DbErr> {
    let events: Vec<DomainEvent> = changed.iter().map(|m| event(state, m, received)).collect();
    let n = crate::service::webhooks::enqueue_live(txn, &events, state.clock.now()).await?;
    Ok((events, n))
}

/// Publishes committed events on the bus and wakes the webhook worker.
pub(crate) async fn publish_committed(state: &AppState, events: Vec<DomainEvent>, enqueued: usize) {
    crate::service::webhooks::wake(state, enqueued);
    for e in events {
        state.bus.publish(e).await;
    }
}

/// The live event of a message change.
fn event(state: &AppState, m: &entity::message::Model, received: bool) -> DomainEvent {
    let out = Box::new(output(m));
    let payload = if received {
        EventPayload::MessageReceived(out)
    } else {
        EventPayload::MessageStatus(out)
    };
    DomainEvent::new(
        TenantId(m.tenant_id),
        m.session_id,
        state.clock.now(),
        payload,
    )
}
