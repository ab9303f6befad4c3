//! A live connection of one session, and what a provider gets to open one.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    OutboundMessage, ProviderError, ProviderEvent, SendError, SentMessage, UpdateSink,
    store::DeviceStore,
};
use crate::{domain::ids::TenantId, media::MediaStore, phone::PhoneNumber};

/// One item on its way to the gateway, with the answer its sender waits for.
#[derive(Debug)]
pub struct Reported<T> {
    /// The event or update.
    pub item: T,
    /// Resolved with true once the gateway has applied (stored) it.
    pub ack: oneshot::Sender<bool>,
}

/// Where a connection reports its [`ProviderEvent`]s. A report resolves once the gateway has
/// applied it to the session: true while the connection should go on, false when it must
/// stop (the session moved on, or the event ended it).
#[derive(Clone, Debug)]
pub struct EventSink(mpsc::Sender<Reported<ProviderEvent>>);

impl EventSink {
    /// A sink and the receiving end the session runtime drains.
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<Reported<ProviderEvent>>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self(tx), rx)
    }

    /// Reports an event and waits until it is applied; false means stop.
    pub async fn report(&self, event: ProviderEvent) -> bool {
        let (ack, applied) = oneshot::channel();
        if self.0.send(Reported { item: event, ack }).await.is_err() {
            return false;
        }
        applied.await.unwrap_or(false)
    }
}

/// What a provider gets to open a session's connection.
#[derive(Clone)]
pub struct SessionContext {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The session.
    pub session_id: Uuid,
    /// The session's provider settings (secrets decrypted), `null` when none.
    pub settings: serde_json::Value,
    /// The session's device store (keys, pairing), encrypted at rest.
    pub store: Arc<dyn DeviceStore>,
    /// Where message media lives.
    pub media: Arc<dyn MediaStore>,
    /// Where connection events go.
    pub events: EventSink,
    /// Where receipts and inbound messages go.
    pub updates: UpdateSink,
    /// Fires when the gateway closes this connection.
    pub cancel: CancellationToken,
}

/// What a provider's connections can do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// Pairs by showing a QR code.
    pub qr: bool,
    /// Pairs with a code typed on the phone ([`Connection::request_pair_code`]).
    pub pair_code: bool,
    /// A send repeated with the same message id is recognised, never delivered twice.
    pub idempotent_send: bool,
    /// Sends template messages.
    pub templates: bool,
}

/// A command for a connection that is not a send: sandbox simulations, for now. Commands are
/// plain data so they can travel to the instance that owns the connection.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Control {
    /// Sandbox: a phone scans the pending QR code and pairs as `phone` (E.164).
    SandboxScan {
        /// The simulated phone.
        phone: String,
    },
    /// Sandbox: a contact (`from`, E.164) writes `text` to the session.
    SandboxInbound {
        /// The simulated sender.
        from: String,
        /// What they wrote.
        text: String,
    },
}

/// A connection's answer to a [`Control`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ControlReply {
    /// Done; the resulting event has been applied.
    Done,
    /// A pairing code was issued (and reported as [`ProviderEvent::PairCode`]).
    PairCode {
        /// The code to type on the phone.
        code: String,
    },
    /// Whether a number is on WhatsApp.
    Number {
        /// The answer.
        check: NumberCheck,
    },
    /// An inbound message was stored under this provider id.
    Received {
        /// The provider's id of the stored message.
        provider_message_id: String,
    },
}

/// Whether a phone number is on WhatsApp, as a connection found out.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NumberCheck {
    /// The number has a WhatsApp account.
    #[serde(rename = "onWhatsApp")]
    pub on_whatsapp: bool,
    /// Its WhatsApp id (`<digits>@s.whatsapp.net`) when it has one.
    pub jid: Option<String>,
}

/// One session's live connection, owned by the instance that runs it.
#[async_trait::async_trait]
pub trait Connection: Send + Sync + 'static {
    /// Sends one message; receipts come later on the context's update sink. Must be
    /// idempotent on `msg.message_id` where the provider's capabilities say so.
    async fn send(&self, msg: OutboundMessage) -> Result<SentMessage, SendError>;

    /// Asks for a pairing code for `phone`, to be typed on the phone instead of scanning. The
    /// connection also reports it as [`ProviderEvent::PairCode`] for live watchers; pairing
    /// then completes with `Connected` as after a scan.
    async fn request_pair_code(&self, phone: &PhoneNumber) -> Result<String, ProviderError> {
        let _ = phone;
        Err(ProviderError::Unsupported(
            "This provider does not pair with codes".into(),
        ))
    }

    /// Whether `phone` is on WhatsApp (answers may be cached for a while).
    async fn check_number(&self, phone: &PhoneNumber) -> Result<NumberCheck, ProviderError> {
        let _ = phone;
        Err(ProviderError::Unsupported(
            "This provider cannot check numbers".into(),
        ))
    }

    /// Runs a command other than a send.
    async fn control(&self, command: Control) -> Result<ControlReply, ProviderError> {
        let _ = command;
        Err(ProviderError::Unsupported(
            "This provider has no such control".into(),
        ))
    }

    /// Unlinks the device and forgets the pairing (device store cleared).
    async fn logout(&self) -> Result<(), ProviderError>;

    /// Closes the connection (the pairing is kept).
    async fn close(&self);
}
