//! WhatsApp providers: the protocol side of a session, behind one trait.
//!
//! A provider is a factory of connections: [`Provider::start`] gets a [`SessionContext`]
//! (the session, its settings, its device store, the media store and the sinks for events and
//! message updates) and returns the live [`Connection`] that sends for that session. The
//! provider only speaks its protocol and reports what happens as [`ProviderEvent`]s; the
//! session service owns the state machine, persistence and live events. Three kinds fit:
//! - `sandbox` (built in, the default): a simulator with real QR payloads and rotation;
//! - `web`: WhatsApp Web multi-device (QR or pair-code login; its keys live in the device
//!   store, written as the protocol changes them);
//! - `cloud`: Meta's Cloud API (no QR; credentials in the session's settings, validated on
//!   connect, `Failed` otherwise).

pub mod connection;
pub mod routes;
pub mod sandbox;
pub mod store;
pub mod web;

pub use connection::{
    Capabilities, Connection, Control, ControlReply, EventSink, NumberCheck, Reported,
    SessionContext,
};

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
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
    /// A pairing code to type on the phone (WhatsApp > Linked devices > Link with phone
    /// number), asked for with [`Connection::request_pair_code`].
    PairCode {
        /// The code, e.g. `ABCD-EFGH`.
        code: String,
        /// The phone it is for.
        phone: PhoneNumber,
    },
    /// Paired and online. The pairing itself lives in the session's device store.
    Connected {
        /// The linked phone number.
        phone: PhoneNumber,
    },
    /// The connection dropped and is being re-established: attempt `attempt` (1 for the
    /// first retry) starts after `retry_in`. Queued messages wait meanwhile.
    Reconnecting {
        /// Retry number, from 1.
        attempt: u32,
        /// Delay before this retry.
        retry_in: std::time::Duration,
        /// Why the connection dropped.
        reason: String,
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

/// A provider failure reported synchronously.
#[derive(Clone, Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ProviderError {
    /// The upstream service or connection failed (502 to a caller).
    #[error("{0}")]
    Unavailable(String),
    /// The request does not fit the connection's current state (409 to a caller).
    #[error("{0}")]
    Refused(String),
    /// This provider does not do that (400 to a caller).
    #[error("{0}")]
    Unsupported(String),
}

/// A message's file, held in the media store.
#[derive(Clone, Debug)]
pub struct MediaFile {
    /// Content address in the media store (SHA-256, hex).
    pub key: String,
    /// Detected MIME type.
    pub mime: String,
    /// Bytes.
    pub size: i64,
    /// File name shown to the recipient.
    pub file_name: Option<String>,
}

/// Who a message goes to: a phone number, or a group the session is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// A person (a direct chat).
    Phone(PhoneNumber),
    /// A group, by its jid (`120363025246125486@g.us`).
    Group(String),
}

impl Recipient {
    /// The suffix of group jids.
    pub const GROUP_SERVER: &'static str = "@g.us";

    /// A group jid as typed (`120363025246125486@g.us`, or the older `<phone>-<time>@g.us`):
    /// `None` unless it is one.
    pub fn group(raw: &str) -> Option<Self> {
        let id = raw.trim().strip_suffix(Self::GROUP_SERVER)?;
        let ok = !id.is_empty()
            && id.len() <= 40
            && id.bytes().all(|b| b.is_ascii_digit() || b == b'-')
            && !id.starts_with('-')
            && !id.ends_with('-');
        ok.then(|| Self::Group(format!("{id}{}", Self::GROUP_SERVER)))
    }

    /// The chat's key in the gateway: the phone's digits, or the group's id (before `@`).
    pub fn key(&self) -> &str {
        match self {
            Self::Phone(p) => p.digits(),
            Self::Group(jid) => jid.trim_end_matches(Self::GROUP_SERVER),
        }
    }

    /// The chat's WhatsApp jid.
    pub fn jid(&self) -> String {
        match self {
            Self::Phone(p) => p.jid(),
            Self::Group(jid) => jid.clone(),
        }
    }
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
    /// Recipient: a phone number or a group.
    pub to: Recipient,
    /// What it carries.
    pub kind: MessageKind,
    /// Text, or the caption of media.
    pub body: Option<String>,
    /// The file, for media kinds.
    pub media: Option<MediaFile>,
    /// The place, for locations.
    pub location: Option<Location>,
    /// The earlier message this one replies to, when it reached WhatsApp.
    pub quoted: Option<Quoted>,
}

/// A message being replied to, as a provider needs it to show the quote.
#[derive(Clone, Debug)]
pub struct Quoted {
    /// The provider's id of the quoted message.
    pub provider_message_id: String,
    /// Whether the session itself sent it (else the other party wrote it).
    pub from_me: bool,
    /// Who wrote it, when the other party did (E.164 digits).
    pub author: Option<String>,
    /// Its text or caption, for the preview.
    pub text: Option<String>,
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
    Inbound(Box<InboundMessage>),
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
    /// The group it was written in (`…@g.us`); `None` in a direct chat.
    pub group: Option<String>,
    /// What it carries.
    pub kind: MessageKind,
    /// Text or caption.
    pub body: Option<String>,
    /// The attached file, already in the media store.
    pub media: Option<MediaFile>,
    /// The place, for locations.
    pub location: Option<Location>,
    /// What could not be kept (e.g. media WhatsApp no longer serves), else `None`.
    pub error: Option<String>,
    /// The provider's id of the message this one replies to.
    pub quoted_provider_id: Option<String>,
    /// When WhatsApp received it.
    pub at: DateTime<Utc>,
}

impl InboundMessage {
    /// A text written in a direct chat.
    pub fn text(
        tenant_id: TenantId,
        session_id: Uuid,
        provider_message_id: String,
        from: PhoneNumber,
        body: Option<String>,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            tenant_id,
            session_id,
            provider_message_id,
            from,
            group: None,
            kind: MessageKind::Text,
            body,
            media: None,
            location: None,
            error: None,
            quoted_provider_id: None,
            at,
        }
    }
}

/// Where providers report [`MessageUpdate`]s. A report resolves once the gateway has stored
/// it (committed, with the webhook deliveries it queues), so a transport acknowledges a
/// message or receipt upstream only after that.
#[derive(Clone, Debug)]
pub struct UpdateSink(mpsc::Sender<Reported<MessageUpdate>>);

impl UpdateSink {
    /// A sink and the receiving end the gateway drains.
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<Reported<MessageUpdate>>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self(tx), rx)
    }

    /// Reports an update and waits until it is stored: true when it was, false when it could
    /// not be (the transport should let upstream deliver it again) or the gateway stopped.
    pub async fn report(&self, update: MessageUpdate) -> bool {
        let (ack, stored) = oneshot::channel();
        if self.0.send(Reported { item: update, ack }).await.is_err() {
            return false;
        }
        stored.await.unwrap_or(false)
    }
}

/// The protocol side of sessions: a factory of live connections.
#[async_trait::async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The kind this provider implements.
    fn kind(&self) -> ProviderKind;

    /// What its connections can do.
    fn capabilities(&self) -> Capabilities;

    /// Checks a session's provider settings at creation; per-field messages when invalid.
    /// By default a provider takes no settings.
    fn check_settings(&self, settings: &serde_json::Value) -> Result<(), Vec<(String, String)>> {
        match settings {
            serde_json::Value::Null => Ok(()),
            serde_json::Value::Object(m) if m.is_empty() => Ok(()),
            _ => Err(vec![(
                self.kind().as_str().to_owned(),
                format!("The {} provider takes no settings", self.kind().as_str()),
            )]),
        }
    }

    /// Setting names that are secrets: stored encrypted, never shown after creation.
    fn secret_settings(&self) -> &'static [&'static str] {
        &[]
    }

    /// Opens a connection for a session. Progress is reported on `ctx.events` until
    /// `ctx.cancel` fires, after which the connection must stop and send nothing more.
    async fn start(&self, ctx: SessionContext) -> Result<Arc<dyn Connection>, ProviderError>;

    /// HTTP routes this provider serves at `/providers/<kind>/…` (the Cloud API's webhook);
    /// none by default. They are outside the documented API and authenticate callers
    /// themselves.
    fn routes(&self, host: routes::ProviderHost) -> Option<axum::Router> {
        let _ = host;
        None
    }

    /// Forgets a pairing while no connection runs (a logout of a disconnected session): by
    /// default, clears the device store.
    async fn forget(&self, store: &dyn store::DeviceStore) -> Result<(), ProviderError> {
        store
            .clear(None)
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))
    }
}

/// The providers available in this process, by kind.
#[derive(Clone, Default)]
pub struct Providers {
    map: HashMap<ProviderKind, Arc<dyn Provider>>,
}

impl Providers {
    /// The providers the configuration enables (`WAGATE_PROVIDERS`), each built from its own
    /// settings. Kinds without a transport in this build are left out (configuration
    /// validation refuses them before this runs).
    pub fn build(
        kinds: &[ProviderKind],
        sandbox: sandbox::SandboxConfig,
        web: web::WebConfig,
        clock: Arc<dyn crate::clock::Clock>,
    ) -> Self {
        let mut providers = Self::default();
        for kind in kinds {
            match kind {
                ProviderKind::Sandbox => {
                    providers = providers.with(Arc::new(sandbox::SandboxProvider::new(
                        sandbox.clone(),
                        clock.clone(),
                    )));
                }
                ProviderKind::Web => {
                    providers = providers.with(Arc::new(web::WebProvider::new(web.clone())));
                }
                ProviderKind::Cloud => {
                    tracing::warn!(
                        provider = kind.as_str(),
                        "provider not available in this build"
                    );
                }
            }
        }
        providers
    }

    /// Registers (or replaces) a provider.
    pub fn with(mut self, provider: Arc<dyn Provider>) -> Self {
        self.map.insert(provider.kind(), provider);
        self
    }

    /// The provider of a kind, if available.
    pub fn get(&self, kind: ProviderKind) -> Option<Arc<dyn Provider>> {
        self.map.get(&kind).cloned()
    }

    /// Every registered provider.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.map.values()
    }
}
