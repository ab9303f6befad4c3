//! WhatsApp providers: the protocol side of a session, behind one trait.
//!
//! A provider only speaks its protocol and reports what happens as [`ProviderEvent`]s; the
//! session service owns the state machine, persistence and live events. Three kinds fit:
//! - `sandbox` (built in, the default): a simulator with real QR payloads and rotation;
//! - `web`: WhatsApp Web multi-device (QR or pair-code login, device credentials persisted
//!   per session through `Connected { credentials }` and handed back on reconnect);
//! - `cloud`: Meta's Cloud API (no QR; credentials validated on connect, `Failed` otherwise).

pub mod sandbox;
pub mod store;

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use crate::domain::ProviderKind;
use crate::{
    domain::{Location, MessageKind, MessageStatus, ids::TenantId},
    phone::PhoneNumber,
};

/// What a provider reports about a session's connection.
#[derive(Clone, Debug)]
pub enum ProviderEvent {
    /// A QR code to show the user; valid until `expires_at`.
    Qr {
        /// The payload to encode.
        code: String,
        /// End of validity.
        expires_at: DateTime<Utc>,
    },
    /// Paired and online. `credentials` are persisted and passed back on the next connect.
    Connected {
        /// The linked phone number.
        phone: PhoneNumber,
        /// Provider-specific pairing data.
        credentials: serde_json::Value,
    },
    /// Offline, pairing kept (a later connect needs no QR).
    Disconnected {
        /// Why.
        reason: String,
    },
    /// The pairing is gone (unlinked from the phone); a later connect needs a new QR.
    LoggedOut {
        /// Why.
        reason: String,
    },
    /// The connection attempt failed.
    Failed {
        /// Why.
        error: String,
    },
}

/// What a provider needs to connect a session.
#[derive(Clone, Debug)]
pub struct ConnectRequest {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The session.
    pub session_id: Uuid,
    /// Credentials from an earlier pairing, if any.
    pub credentials: Option<serde_json::Value>,
}

/// A provider failure reported synchronously.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProviderError(pub String);

/// A file attached to an outbound message, held in the media store.
#[derive(Clone, Debug)]
pub struct OutboundMedia {
    /// Content address in the media store (SHA-256, hex).
    pub key: String,
    /// Detected MIME type.
    pub mime: String,
    /// Bytes.
    pub size: i64,
    /// File name shown to the recipient.
    pub file_name: Option<String>,
}

/// What the dispatcher asks a provider to send.
#[derive(Clone, Debug)]
pub struct OutboundMessage {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The session to send through.
    pub session_id: Uuid,
    /// wagate's id of the message. A provider must treat it as an idempotency key: sending the
    /// same id twice (a retry after a crash) must not deliver twice.
    pub message_id: Uuid,
    /// Pairing credentials of the session.
    pub credentials: Option<serde_json::Value>,
    /// Recipient.
    pub to: PhoneNumber,
    /// What it carries.
    pub kind: MessageKind,
    /// Text, or the caption of media.
    pub body: Option<String>,
    /// The file, for media kinds.
    pub media: Option<OutboundMedia>,
    /// The place, for locations.
    pub location: Option<Location>,
}

/// A message the provider accepted.
#[derive(Clone, Debug)]
pub struct SentMessage {
    /// The provider's id for it; receipts refer to it.
    pub provider_message_id: String,
}

/// Why a send did not happen.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SendError {
    /// Worth retrying later (connection trouble, timeouts, rate limits).
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help (the number is not on WhatsApp, the media was refused).
    #[error("{0}")]
    Permanent(String),
}

/// What a provider reports about messages after the fact: receipts and inbound messages.
#[derive(Clone, Debug)]
pub enum MessageUpdate {
    /// A receipt: an outbound message was delivered, read or played (or failed late).
    Status {
        /// Owning tenant.
        tenant_id: TenantId,
        /// The session.
        session_id: Uuid,
        /// wagate's id, when the provider knows it (it was given one on send).
        message_id: Option<Uuid>,
        /// The provider's id of the message.
        provider_message_id: String,
        /// `delivered`, `read`, `played` or `failed`.
        status: MessageStatus,
        /// When it happened.
        at: DateTime<Utc>,
        /// Why, for `failed`.
        error: Option<String>,
    },
    /// A contact wrote to the session.
    Inbound(InboundMessage),
}

/// A message received from WhatsApp.
#[derive(Clone, Debug)]
pub struct InboundMessage {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The session that received it.
    pub session_id: Uuid,
    /// The provider's id (repeated deliveries of one id are stored once).
    pub provider_message_id: String,
    /// Sender.
    pub from: PhoneNumber,
    /// What it carries (the sandbox sends text).
    pub kind: MessageKind,
    /// Text or caption.
    pub body: Option<String>,
    /// When WhatsApp received it.
    pub at: DateTime<Utc>,
}

/// Where providers report [`MessageUpdate`]s; the gateway applies them in the background.
#[derive(Clone, Debug)]
pub struct UpdateSink(mpsc::Sender<MessageUpdate>);

impl UpdateSink {
    /// A sink and the receiving end the gateway drains.
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<MessageUpdate>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self(tx), rx)
    }

    /// Reports an update (waits while the gateway is behind); false once the gateway stopped.
    pub async fn report(&self, update: MessageUpdate) -> bool {
        self.0.send(update).await.is_ok()
    }
}

/// The protocol side of sessions.
#[async_trait::async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The kind this provider implements.
    fn kind(&self) -> ProviderKind;

    /// Starts connecting. Progress is reported on `events` until `cancel` fires, after which the
    /// provider must close the connection and stop sending.
    async fn connect(
        &self,
        req: ConnectRequest,
        events: mpsc::Sender<ProviderEvent>,
        cancel: CancellationToken,
    ) -> Result<(), ProviderError>;

    /// Forgets a pairing (unlinks the device where the protocol supports it).
    async fn logout(&self, req: ConnectRequest) -> Result<(), ProviderError>;

    /// Sends one message. Receipts (and inbound messages) are reported later on `updates`.
    /// Must be idempotent on `msg.message_id`.
    async fn send(
        &self,
        msg: OutboundMessage,
        updates: UpdateSink,
    ) -> Result<SentMessage, SendError> {
        let _ = (msg, updates);
        Err(SendError::Permanent(format!(
            "The {} provider cannot send messages",
            self.kind().as_str()
        )))
    }
}

/// The providers available in this process, by kind.
#[derive(Clone, Default)]
pub struct Providers {
    map: HashMap<ProviderKind, Arc<dyn Provider>>,
}

impl Providers {
    /// Registers (or replaces) a provider.
    pub fn with(mut self, provider: Arc<dyn Provider>) -> Self {
        self.map.insert(provider.kind(), provider);
        self
    }

    /// The provider of a kind, if available.
    pub fn get(&self, kind: ProviderKind) -> Option<Arc<dyn Provider>> {
        self.map.get(&kind).cloned()
    }
}
