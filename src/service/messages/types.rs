//! Message inputs, outputs and the status model, shared by REST, GraphQL and providers.

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::service::pagination::Pagination;

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

/// `POST /api/messages/send-text`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendTextInput {
    /// The connected session to send through.
    #[serde(default)]
    #[schema(required = true, format = "uuid")]
    pub session_id: String,
    /// Recipient phone number in international format, e.g. `919876543210` or `+91 98765 43210`.
    #[serde(default)]
    #[schema(required = true)]
    pub to: String,
    /// 1 to 4096 characters.
    #[serde(default)]
    #[schema(required = true)]
    pub text: String,
}

/// `POST /api/messages/send-location`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendLocationInput {
    /// The connected session to send through.
    #[serde(default)]
    #[schema(required = true, format = "uuid")]
    pub session_id: String,
    /// Recipient phone number in international format.
    #[serde(default)]
    #[schema(required = true)]
    pub to: String,
    /// Degrees, −90 to 90.
    #[schema(required = true)]
    pub latitude: Option<f64>,
    /// Degrees, −180 to 180.
    #[schema(required = true)]
    pub longitude: Option<f64>,
    /// Place name (at most 256 characters).
    pub name: Option<String>,
    /// Street address (at most 1024 characters).
    pub address: Option<String>,
}

/// The text fields of a media send (the file arrives separately, streamed).
#[derive(Debug, Default, Clone)]
pub struct SendMediaInput {
    /// The connected session to send through.
    pub session_id: String,
    /// Recipient phone number.
    pub to: String,
    /// Optional caption (at most 1024 characters; not for audio).
    pub caption: Option<String>,
    /// File name shown to the recipient (documents); defaults to the uploaded name.
    pub file_name: Option<String>,
}

/// The multipart form of the media sends (documentation only; parsed as a stream).
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct SendMediaForm {
    /// The connected session to send through.
    #[schema(format = "uuid")]
    pub session_id: String,
    /// Recipient phone number in international format.
    pub to: String,
    /// Optional caption (at most 1024 characters; not for audio).
    pub caption: Option<String>,
    /// File name shown to the recipient (documents); defaults to the uploaded file's name.
    pub file_name: Option<String>,
    /// The file. Its type is detected from its bytes, not from its name or part header.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// The JSON form of the media sends (documentation only): the same fields, with the file
/// base64-encoded or as a `data:<mime>;base64,` URL. At most 16 MiB of file (larger files go
/// as multipart).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct SendMediaJson {
    /// The connected session to send through.
    #[schema(format = "uuid")]
    pub session_id: String,
    /// Recipient phone number in international format.
    pub to: String,
    /// Optional caption (at most 1024 characters; not for audio).
    pub caption: Option<String>,
    /// File name shown to the recipient (documents).
    pub file_name: Option<String>,
    /// The file, base64-encoded (standard alphabet, padded), or a `data:` URL.
    #[schema(format = Byte)]
    pub file: String,
}

/// What a send returns: the stored message, `queued`.
#[derive(Clone, Debug, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct SendOutput {
    /// Message id.
    pub id: Uuid,
    /// `queued` for a new message (an idempotent replay shows the current status).
    pub status: MessageStatus,
    /// Recipient, E.164 digits without `+`.
    pub to: String,
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
    pub id: Uuid,
    /// The session it went through.
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

/// A page of messages, newest first.
#[derive(Clone, Debug, SimpleObject)]
pub struct MessagePage {
    /// The messages.
    pub data: Vec<MessageOutput>,
    /// Paging.
    pub pagination: Pagination,
}

/// Filters for listing messages (all optional; raw values are validated by the service).
#[derive(Clone, Debug, Default)]
pub struct MessageFilter {
    /// Only this session's messages.
    pub session_id: Option<String>,
    /// `outbound` or `inbound`.
    pub direction: Option<String>,
    /// One status name.
    pub status: Option<String>,
    /// Only messages with this counterpart (any phone format).
    pub to: Option<String>,
}

/// `POST /api/v1/whatsapp/{id}/sandbox/inbound`: a simulated contact writes to the session.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SandboxInboundInput {
    /// Sender phone number in international format.
    #[serde(default)]
    #[schema(required = true)]
    pub from: String,
    /// 1 to 4096 characters.
    #[serde(default)]
    #[schema(required = true)]
    pub text: String,
}

/// Turns a stored row into its output.
pub fn output(m: &entity::message::Model) -> MessageOutput {
    let kind = MessageKind::parse(&m.kind).unwrap_or(MessageKind::Text);
    let direction = Direction::parse(&m.direction).unwrap_or(Direction::Outbound);
    let (text, caption) = if kind == MessageKind::Text {
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
        attempts: m.attempts,
        created_at: m.created_at,
        sent_at: m.sent_at,
        delivered_at: m.delivered_at,
        read_at: m.read_at,
        played_at: m.played_at,
        failed_at: m.failed_at,
    }
}
