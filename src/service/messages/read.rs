//! Reading the tenant's messages: one, a filtered page, and a message's media.

use uuid::Uuid;

use super::{
    Direction, MessageFilter, MessageOutput, MessagePage, MessageStatus, media::MediaReader,
    not_found, output,
};
use crate::{
    auth::{Capability, Principal},
    error::{AppError, AppResult},
    repo,
    service::{check::Check, pagination::PageRequest},
    state::AppState,
};

/// One message of the tenant.
pub async fn get(state: &AppState, p: &Principal, id: Uuid) -> AppResult<MessageOutput> {
    p.require(Capability::ReadMessages)?;
    repo::messages::get(&state.db, p.tenant_id, id)
        .await?
        .map(|m| output(&m))
        .ok_or_else(not_found)
}

/// A page of the tenant's messages, newest first.
pub async fn list(
    state: &AppState,
    p: &Principal,
    filter: MessageFilter,
    page: PageRequest,
) -> AppResult<MessagePage> {
    p.require(Capability::ReadMessages)?;
    let mut c = Check::default();
    let blank = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let session_id = blank(filter.session_id).and_then(|s| c.session(&s));
    let direction = match blank(filter.direction) {
        None => None,
        Some(d) => match Direction::parse(&d) {
            Some(d) => Some(d.as_str()),
            None => {
                c.add("direction", "direction must be outbound or inbound");
                None
            }
        },
    };
    let status = match blank(filter.status) {
        None => None,
        Some(s) => match MessageStatus::parse(&s) {
            Some(s) => Some(s.as_str()),
            None => {
                c.add(
                    "status",
                    format!("status must be one of {}", MessageStatus::NAMES),
                );
                None
            }
        },
    };
    let phone = blank(filter.to)
        .and_then(|t| c.phone("to", &t))
        .map(|p| p.digits().to_owned());
    c.finish()?;
    if let Some(id) = session_id {
        // A filter naming another tenant's (or no) session is a 404, not an empty page.
        crate::service::sessions::load(state, p.tenant_id, id).await?;
    }
    let f = repo::messages::ListFilter {
        session_id,
        direction,
        status,
        phone,
    };
    let (rows, total) =
        repo::messages::list(&state.db, p.tenant_id, f, page.offset(), page.limit).await?;
    Ok(MessagePage {
        data: rows.iter().map(output).collect(),
        pagination: page.pagination(total),
    })
}

/// A message's media for download.
pub struct MediaDownload {
    /// MIME type.
    pub mime: String,
    /// Bytes.
    pub size: u64,
    /// File name, if known.
    pub file_name: Option<String>,
    /// The content.
    pub reader: MediaReader,
}

/// Opens the media of one of the tenant's messages.
pub async fn media(state: &AppState, p: &Principal, id: Uuid) -> AppResult<MediaDownload> {
    p.require(Capability::ReadMessages)?;
    let m = repo::messages::get(&state.db, p.tenant_id, id)
        .await?
        .ok_or_else(not_found)?;
    let (Some(key), Some(mime)) = (m.media_key, m.media_mime) else {
        return Err(AppError::NotFound("This message has no media".into()));
    };
    let (size, reader) = state
        .media
        .open(&key)
        .await
        .map_err(AppError::internal)?
        .ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("media {key} of message {id} is missing"))
        })?;
    Ok(MediaDownload {
        mime,
        size,
        file_name: m.media_filename,
        reader,
    })
}
