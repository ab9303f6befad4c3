//! The `web` provider: WhatsApp Web multi-device through the `whatsapp-rust` crate. Its keys
//! and state live in the session's device store ([`store::WebStore`]), so they survive
//! restarts and follow the session to whichever instance owns it.
//!
//! A session links like WhatsApp Web does: a QR code to scan, or a pair code typed on the
//! phone. Each live session is one client ([`connection`]) whose events become the session's
//! status; the gateway decides reconnects and their backoff.

mod connection;
pub mod events;
mod http;
pub mod inbound;
pub mod login;
mod numbers;
mod send;
pub mod store;

use std::sync::{Arc, atomic::Ordering};

use tokio::sync::{mpsc, watch};
use whatsapp_rust::{
    Client,
    bot::Bot,
    pair_code::{PairCodeOptions, PairError},
    transport::TokioWebSocketTransportFactory,
    wacore::{
        pair_code::PairCodeError,
        store::{device::DevicePropsOverride, traits::DeviceStore as _},
    },
    waproto::whatsapp::device_props::PlatformType,
};

use self::{
    connection::{Forward, RecordingTransports, Shared, supervise, unavailable, wait_done},
    events::{Link, phone_of_user},
    store::WebStore,
};
use super::{
    Capabilities, Connection, NumberCheck, OutboundMessage, Provider, ProviderError, ProviderKind,
    Recipient, SendError, SentMessage, SessionContext,
};
use crate::phone::PhoneNumber;

/// WhatsApp's own WebSocket endpoint.
pub const DEFAULT_WS_URL: &str = "wss://web.whatsapp.com/ws/chat";
/// The name a linked phone shows for the gateway by default.
pub const DEFAULT_DEVICE_NAME: &str = "wagate";

/// Settings of the `web` provider (`WAGATE_WEB_*`).
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// WebSocket URL of WhatsApp Web (a test server's in tests).
    pub ws_url: String,
    /// A pinned WhatsApp Web version; when unset the client fetches the current one.
    pub version: Option<(u32, u32, u32)>,
    /// The device name the phone shows under Linked devices.
    pub device_name: String,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            ws_url: DEFAULT_WS_URL.into(),
            version: None,
            device_name: DEFAULT_DEVICE_NAME.into(),
        }
    }
}

/// Parses a `2.3000.1023456789`-style version.
pub fn parse_version(s: &str) -> Option<(u32, u32, u32)> {
    let mut parts = s.trim().split('.').map(|p| p.parse::<u32>().ok());
    let v = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(v)
}

/// The WhatsApp Web provider.
pub struct WebProvider {
    cfg: WebConfig,
}

impl WebProvider {
    /// A provider with these settings.
    pub fn new(cfg: WebConfig) -> Self {
        Self { cfg }
    }
}

#[async_trait::async_trait]
impl Provider for WebProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Web
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            qr: true,
            pair_code: true,
            idempotent_send: true,
            templates: false,
        }
    }

    async fn start(&self, ctx: SessionContext) -> Result<Arc<dyn Connection>, ProviderError> {
        let store = Arc::new(WebStore::new(ctx.store.clone()));
        let device = store
            .load()
            .await
            .map_err(|e| unavailable("Reading the device keys", e))?;
        let phone = device
            .as_ref()
            .and_then(|d| d.pn.as_ref())
            .and_then(|pn| phone_of_user(&pn.user));
        let shared = Shared::new(Link {
            phone,
            ..Link::default()
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let transports = RecordingTransports {
            inner: TokioWebSocketTransportFactory::new().with_url(self.cfg.ws_url.clone()),
            shared: shared.clone(),
        };
        let mut builder = Bot::builder()
            .with_backend_arc(store)
            .with_transport_factory(transports)
            .with_http_client(http::client())
            .with_event_handler(Forward(tx))
            .with_inbound_durability_hook(inbound::Commit { ctx: ctx.clone() })
            .with_device_props(
                DevicePropsOverride::new()
                    .with_os(self.cfg.device_name.clone())
                    .with_platform_type(PlatformType::DESKTOP),
            )
            .skip_history_sync();
        if let Some(v) = self.cfg.version {
            builder = builder.with_version(v);
        }
        let bot = builder
            .build()
            .await
            .map_err(|e| unavailable("Starting the WhatsApp Web client", e))?;
        let client = bot.client();
        client.enable_auto_reconnect.store(false, Ordering::SeqCst);
        let (done_tx, done) = watch::channel(false);
        tokio::spawn(supervise(bot, rx, shared.clone(), ctx.clone(), done_tx));
        Ok(Arc::new(WebConnection {
            client,
            shared,
            ctx,
            done,
            numbers: numbers::Numbers::default(),
        }))
    }
}

/// Why no pair code came: 409 while an earlier code can still be typed, else 502 (WhatsApp
/// answers a bad request and too many requests for one number alike).
fn pair_code_error(e: PairError) -> ProviderError {
    match e {
        PairError::PairCode(PairCodeError::CodeAlreadyOutstanding { remaining }) => {
            ProviderError::Refused(format!(
                "A pair code is already waiting to be typed on the phone; ask again in {} s",
                remaining.as_secs().max(1)
            ))
        }
        e if e.rejection().is_some() || matches!(e, PairError::RequestFailed(_)) => unavailable(
            "WhatsApp refused the pair code request (it limits how often one number may \
                 ask; wait a few minutes before asking again)",
            e,
        ),
        e => unavailable("No pair code", e),
    }
}

/// A live `web` session.
pub struct WebConnection {
    client: Arc<Client>,
    shared: Arc<Shared>,
    ctx: SessionContext,
    done: watch::Receiver<bool>,
    numbers: numbers::Numbers,
}

impl WebConnection {
    /// Stops the supervisor and waits for it: the client has flushed and closed.
    async fn stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.ctx.cancel.cancel();
        wait_done(&mut self.done.clone()).await;
    }
}

#[async_trait::async_trait]
impl Connection for WebConnection {
    async fn send(&self, msg: OutboundMessage) -> Result<SentMessage, SendError> {
        if !self.shared.online.load(Ordering::SeqCst) {
            return Err(SendError::Transient(
                "The WhatsApp Web session is not online".into(),
            ));
        }
        if let Recipient::Phone(to) = &msg.to {
            match self.numbers.check(&self.client, to).await {
                Ok(check) if check.on_whatsapp => {}
                Ok(_) => {
                    return Err(SendError::Permanent(format!(
                        "{} is not on WhatsApp",
                        to.e164()
                    )));
                }
                Err(e) => return Err(SendError::Transient(e.to_string())),
            }
        }
        send::send(&self.client, &self.ctx, msg).await
    }

    async fn check_number(&self, phone: &PhoneNumber) -> Result<NumberCheck, ProviderError> {
        if !self.shared.online.load(Ordering::SeqCst) {
            return Err(ProviderError::Refused(
                "The WhatsApp Web session is not online".into(),
            ));
        }
        self.numbers.check(&self.client, phone).await
    }

    async fn request_pair_code(&self, phone: &PhoneNumber) -> Result<String, ProviderError> {
        if self.shared.online.load(Ordering::SeqCst) {
            return Err(ProviderError::Refused(
                "The session is already linked to a phone".into(),
            ));
        }
        if !self.client.is_connected() {
            return Err(ProviderError::Refused(
                "The session is not connected to WhatsApp yet; ask again in a moment".into(),
            ));
        }
        // The code's event may arrive before the call returns: say whose it is first, and put
        // back the earlier number if this request fails (its code may still be on screen).
        let earlier = self
            .shared
            .with_link(|l| l.pair_phone.replace(phone.clone()));
        let options = PairCodeOptions {
            phone_number: phone.digits().to_owned(),
            ..PairCodeOptions::default()
        };
        let result = self.client.pair_with_code(options).await;
        if result.is_err() {
            self.shared.with_link(|l| l.pair_phone = earlier);
        }
        result.map_err(pair_code_error)
    }

    async fn logout(&self) -> Result<(), ProviderError> {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Unlinks the device on WhatsApp's side when online, then disconnects.
        self.client.logout().await;
        self.stop().await;
        self.ctx
            .store
            .clear(None)
            .await
            .map_err(|e| unavailable("Wiping the device keys", e))
    }

    async fn close(&self) {
        self.stop().await;
    }
}
