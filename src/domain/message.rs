//! Messages as the whole gateway sees them: what they carry, which way they went, their
//! delivery status, and the view every API and event shows.

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// What a message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, Enum)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// Plain text.
    Text,
    /// A JPEG, PNG or WebP image, with an optional caption.
    Image,
    /// Any file, with an optional caption.
    Document,
    /// An MP4 or 3GPP video, with an optional caption.
    Video,
    /// An audio file or voice note.
    Audio,
    /// A map location.
    Location,
    /// A sticker (WebP), received.
    Sticker,
    /// A contact card, received: its vCard is the text.
    Contact,
    /// An emoji reaction, received, to the message `quotedMessageId` names: the emoji is the
    /// text (empty when the reaction was taken back).
    Reaction,
}

impl MessageKind {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Image => "image",
            MessageKind::Document => "document",
            MessageKind::Video => "video",
            MessageKind::Audio => "audio",
            MessageKind::Location => "location",
            MessageKind::Sticker => "sticker",
            MessageKind::Contact => "contact",
            MessageKind::Reaction => "reaction",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "text" => MessageKind::Text,
            "image" => MessageKind::Image,
            "document" => MessageKind::Document,
            "video" => MessageKind::Video,
            "audio" => MessageKind::Audio,
            "location" => MessageKind::Location,
            "sticker" => MessageKind::Sticker,
            "contact" => MessageKind::Contact,
            "reaction" => MessageKind::Reaction,
            _ => return None,
        })
    }

    /// True for kinds that carry a file.
    pub fn is_media(self) -> bool {
        matches!(
            self,
            MessageKind::Image | MessageKind::Document | MessageKind::Video | MessageKind::Audio
        )
    }
}

/// Which way a message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, Enum)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Sent by the gateway.
    Outbound,
    /// Received from WhatsApp.
    Inbound,
}

impl Direction {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "outbound" => Some(Direction::Outbound),
            "inbound" => Some(Direction::Inbound),
            _ => None,
        }
    }
}

/// Delivery status. Outbound: `queued → sent → delivered → read` (`played` for audio), or
/// `failed`; it never goes backwards. Inbound messages are `received`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, Enum)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    /// Accepted and stored; waiting for the dispatcher.
    Queued,
    /// Handed to WhatsApp.
    Sent,
    /// Reached the recipient's phone.
    Delivered,
    /// Seen by the recipient.
    Read,
    /// Voice note or audio played by the recipient.
    Played,
    /// Could not be sent; see `error`.
    Failed,
    /// An inbound message.
    Received,
}

impl MessageStatus {
    /// Every status, in wire names (for validation messages).
    pub const NAMES: &'static str = "queued, sent, delivered, read, played, failed, received";

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
            MessageStatus::Played => "played",
            MessageStatus::Failed => "failed",
            MessageStatus::Received => "received",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => MessageStatus::Queued,
            "sent" => MessageStatus::Sent,
            "delivered" => MessageStatus::Delivered,
            "read" => MessageStatus::Read,
            "played" => MessageStatus::Played,
            "failed" => MessageStatus::Failed,
            "received" => MessageStatus::Received,
            _ => return None,
        })
    }

    /// The statuses an outbound message may move to `self` from (never backwards).
    pub fn advances_from(self) -> &'static [&'static str] {
        match self {
            MessageStatus::Sent => &["queued"],
            MessageStatus::Delivered => &["queued", "sent"],
            MessageStatus::Read => &["queued", "sent", "delivered"],
            MessageStatus::Played => &["queued", "sent", "delivered", "read"],
            MessageStatus::Failed => &["queued"],
            MessageStatus::Queued | MessageStatus::Received => &[],
        }
    }
}

/// A location to send.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// Degrees, −90 to 90.
    pub latitude: f64,
    /// Degrees, −180 to 180.
    pub longitude: f64,
    /// Place name.
    pub name: Option<String>,
    /// Street address.
    pub address: Option<String>,
}

/// Attached media.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct MediaOutput {
    /// Detected MIME type.
    pub mime_type: String,
    /// Bytes.
    pub size: i64,
    /// File name, if known.
    pub file_name: Option<String>,
    /// SHA-256 of the content.
    pub sha256: String,
    /// Where the owning tenant downloads it.
    pub url: String,
}

/// A message, outbound or inbound.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct MessageOutput {
    /// Message id.
    #[graphql(
        skip_output,
        derived(
            name = "id",
            into = "async_graphql::ID",
            owned,
            with = "crate::domain::ids::gql_id"
        )
    )]
    pub id: Uuid,
    /// The session it went through.
    #[graphql(
        skip_output,
        derived(
            name = "session_id",
            into = "async_graphql::ID",
            owned,
            with = "crate::domain::ids::gql_id"
        )
    )]
    pub session_id: Uuid,
    /// `outbound` or `inbound`.
    pub direction: Direction,
    /// Delivery status.
    pub status: MessageStatus,
    /// What it carries.
    #[serde(rename = "type")]
    #[graphql(name = "type")]
    pub kind: MessageKind,
    /// `<digits>@s.whatsapp.net` of the other party.
    pub remote_jid: String,
    /// Recipient digits (outbound), else null.
    pub to: Option<String>,
    /// Sender digits (inbound), else null.
    pub from: Option<String>,
    /// Text of a text message.
    pub text: Option<String>,
    /// Caption of a media message.
    pub caption: Option<String>,
    /// Attached media.
    pub media: Option<MediaOutput>,
    /// A location message's place.
    pub location: Option<Location>,
    /// Why it failed (or why the last attempt failed while retrying).
    pub error: Option<String>,
    /// The provider's id for the message.
    pub provider_message_id: Option<String>,
    /// The earlier message of the session this one replies to (null when it is no reply, or
    /// quotes a message the gateway does not have).
    #[graphql(
        skip_output,
        derived(
            name = "quoted_message_id",
            into = "Option<async_graphql::ID>",
            owned,
            with = "crate::domain::ids::gql_opt_id"
        )
    )]
    pub quoted_message_id: Option<Uuid>,
    /// Dispatch attempts so far.
    pub attempts: i32,
    /// Accepted (outbound) or received (inbound).
    pub created_at: DateTime<Utc>,
    /// Handed to WhatsApp.
    pub sent_at: Option<DateTime<Utc>>,
    /// Reached the phone.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Seen.
    pub read_at: Option<DateTime<Utc>>,
    /// Played (audio).
    pub played_at: Option<DateTime<Utc>>,
    /// Failed for good.
    pub failed_at: Option<DateTime<Utc>>,
}

/// Turns a stored row into its output.
pub fn output(m: &entity::message::Model) -> MessageOutput {
    let kind = MessageKind::parse(&m.kind).unwrap_or(MessageKind::Text);
    let direction = Direction::parse(&m.direction).unwrap_or(Direction::Outbound);
    let texts = [
        MessageKind::Text,
        MessageKind::Contact,
        MessageKind::Reaction,
    ];
    let (text, caption) = if texts.contains(&kind) {
        (m.body.clone(), None)
    } else {
        (None, m.body.clone())
    };
    let media = match (&m.media_key, &m.media_mime) {
        (Some(key), Some(mime)) => Some(MediaOutput {
            mime_type: mime.clone(),
            size: m.media_size.unwrap_or(0),
            file_name: m.media_filename.clone(),
            sha256: key.clone(),
            url: format!("/api/messages/{}/media", m.id),
        }),
        _ => None,
    };
    let (to, from) = match direction {
        Direction::Outbound => (Some(m.phone.clone()), None),
        Direction::Inbound => (None, Some(m.phone.clone())),
    };
    MessageOutput {
        id: m.id,
        session_id: m.session_id,
        direction,
        status: MessageStatus::parse(&m.status).unwrap_or(MessageStatus::Failed),
        kind,
        remote_jid: m.remote_jid.clone(),
        to,
        from,
        text,
        caption,
        media,
        location: m
            .location
            .as_deref()
            .and_then(|l| serde_json::from_str(l).ok()),
        error: m.error.clone(),
        provider_message_id: m.provider_message_id.clone(),
        quoted_message_id: m.quoted_message_id,
        attempts: m.attempts,
        created_at: m.created_at,
        sent_at: m.sent_at,
        delivered_at: m.delivered_at,
        read_at: m.read_at,
        played_at: m.played_at,
        failed_at: m.failed_at,
    }
}

/// The error a message carries while it waits for its session to (re)connect; when the
/// session is back, such messages are made due at once.
pub const WAITING_FOR_SESSION: &str = "Waiting for the session to connect";
