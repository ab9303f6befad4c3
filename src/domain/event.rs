//! The one domain event type: the bus carries it between instances, and webhooks, GraphQL
//! subscriptions (and the dashboard's Socket.IO) each derive their own shape from it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{ids::TenantId, message::MessageOutput};

/// One live event.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DomainEvent {
    /// Unique id of the event.
    pub id: Uuid,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// The WhatsApp session it concerns.
    pub session_id: Uuid,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    #[serde(flatten)]
    pub payload: EventPayload,
}

/// The kinds of event, tagged by their type name (`session.qr`, …).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", content = "data")]
pub enum EventPayload {
    /// A new QR code is waiting to be scanned.
    #[serde(rename = "session.qr")]
    SessionQr(QrPayload),
    /// A pairing code was issued, to be typed on the phone instead of scanning a QR code.
    #[serde(rename = "session.pairCode")]
    SessionPairCode(PairCodePayload),
    /// A session changed status.
    #[serde(rename = "session.status")]
    SessionStatus(StatusPayload),
    /// An outbound message changed status (`sent`, `delivered`, `read`, `played`, `failed`).
    #[serde(rename = "message.status")]
    MessageStatus(Box<MessageOutput>),
    /// An inbound message arrived.
    #[serde(rename = "message.received")]
    MessageReceived(Box<MessageOutput>),
}

impl EventPayload {
    /// The wire name of the event type.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventPayload::SessionQr(_) => "session.qr",
            EventPayload::SessionPairCode(_) => "session.pairCode",
            EventPayload::SessionStatus(_) => "session.status",
            EventPayload::MessageStatus(_) => "message.status",
            EventPayload::MessageReceived(_) => "message.received",
        }
    }
}

/// `session.qr` data.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QrPayload {
    /// The QR payload string.
    pub code: String,
    /// The QR as an SVG document.
    pub svg: String,
    /// When this code stops being valid.
    pub expires_at: DateTime<Utc>,
}

/// `session.pairCode` data.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PairCodePayload {
    /// The code to type on the phone, e.g. `ABCD-EFGH`.
    pub code: String,
    /// The phone it is for (digits, no `+`).
    pub phone_number: String,
}

/// `session.status` data.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusPayload {
    /// New status (`connected`, `qr_pending`, …).
    pub status: String,
    /// Paired number (digits, no `+`), if any.
    pub phone_number: Option<String>,
    /// True when `status` is `connected`.
    pub connected: bool,
    /// Why, for disconnections and failures.
    pub reason: Option<String>,
}

impl DomainEvent {
    /// A new event happening now.
    pub fn new(
        tenant_id: TenantId,
        session_id: Uuid,
        at: DateTime<Utc>,
        payload: EventPayload,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            tenant_id,
            session_id,
            at,
            payload,
        }
    }
}
