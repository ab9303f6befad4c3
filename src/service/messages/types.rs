//! Message inputs, outputs and the status model, shared by REST, GraphQL and providers.

use async_graphql::SimpleObject;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub use crate::domain::message::{
    Direction, Location, MediaOutput, MessageKind, MessageOutput, MessageStatus, output,
};
use crate::service::pagination::Pagination;

/// `POST /api/messages/send-text`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendTextInput {
    /// The connected session to send through.
    #[serde(default)]
    #[schema(required = true, format = "uuid")]
    pub session_id: String,
    /// Recipient: a phone number in international format, e.g. `919876543210` or
    /// `+91 98765 43210`, or a group the session is in, by its jid (`120363025246125486@g.us`).
    #[serde(default)]
    #[schema(required = true)]
    pub to: String,
    /// 1 to 4096 characters.
    #[serde(default)]
    #[schema(required = true)]
    pub text: String,
    /// The id of an earlier message of the same session to reply to (shown quoted).
    #[schema(format = "uuid")]
    pub quoted_message_id: Option<String>,
}

/// `POST /api/messages/send-location`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendLocationInput {
    /// The connected session to send through.
    #[serde(default)]
    #[schema(required = true, format = "uuid")]
    pub session_id: String,
    /// Recipient: a phone number in international format, or a group jid (`…@g.us`).
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
    /// The id of an earlier message of the same session to reply to (shown quoted).
    #[schema(format = "uuid")]
    pub quoted_message_id: Option<String>,
}

/// The text fields of a media send (the file arrives separately, streamed).
#[derive(Debug, Default, Clone)]
pub struct SendMediaInput {
    /// The connected session to send through.
    pub session_id: String,
    /// Recipient: a phone number, or a group jid (`…@g.us`).
    pub to: String,
    /// Optional caption (at most 1024 characters; not for audio).
    pub caption: Option<String>,
    /// File name shown to the recipient (documents); defaults to the uploaded name.
    pub file_name: Option<String>,
    /// The id of an earlier message of the same session to reply to.
    pub quoted_message_id: Option<String>,
}

/// The multipart form of the media sends (documentation only; parsed as a stream).
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct SendMediaForm {
    /// The connected session to send through.
    #[schema(format = "uuid")]
    pub session_id: String,
    /// Recipient: a phone number in international format, or a group jid (`…@g.us`).
    pub to: String,
    /// Optional caption (at most 1024 characters; not for audio).
    pub caption: Option<String>,
    /// File name shown to the recipient (documents); defaults to the uploaded file's name.
    pub file_name: Option<String>,
    /// The id of an earlier message of the same session to reply to (shown quoted).
    #[schema(format = "uuid")]
    pub quoted_message_id: Option<String>,
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
    /// Recipient: a phone number in international format, or a group jid (`…@g.us`).
    pub to: String,
    /// Optional caption (at most 1024 characters; not for audio).
    pub caption: Option<String>,
    /// File name shown to the recipient (documents).
    pub file_name: Option<String>,
    /// The id of an earlier message of the same session to reply to (shown quoted).
    #[schema(format = "uuid")]
    pub quoted_message_id: Option<String>,
    /// The file, base64-encoded (standard alphabet, padded), or a `data:` URL.
    #[schema(format = Byte)]
    pub file: String,
}

/// What a send returns: the stored message, `queued`.
#[derive(Clone, Debug, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct SendOutput {
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
    /// `queued` for a new message (an idempotent replay shows the current status).
    pub status: MessageStatus,
    /// Recipient, E.164 digits without `+`.
    pub to: String,
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
    /// The id of an earlier message of the same session to reply to (shown quoted).
    #[schema(format = "uuid")]
    pub quoted_message_id: Option<String>,
}
