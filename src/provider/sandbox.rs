//! The sandbox provider: a WhatsApp simulator for development and tests.
//!
//! A connection without a pairing in its device store issues QR codes shaped like WhatsApp
//! Web's (`<ref>,<noise key>,<identity key>,<adv secret>`), the first valid for
//! `qr_first_ttl`, then a new one every `qr_ttl`, giving up after `qr_rotations` codes. The
//! sandbox scan endpoint plays the phone: it reaches the connection as a [`Control`], and the
//! connection writes the pairing to its device store and reports `Connected`, as a real
//! provider would. A paired connection (after a reconnect, a restart or a takeover by another
//! instance) comes back online after `connect_delay` without a QR.
//!
//! Every accepted message id is recorded in the session's device store before its receipts
//! start, so a send repeated under the same id (a retry after a crash, on any instance) is
//! recognised and delivered once; the entry's version counts how often it was written.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{
    Capabilities, Connection, Control, ControlReply, EventSink, InboundMessage, MessageUpdate,
    NumberCheck, OutboundMessage, Provider, ProviderError, ProviderEvent, ProviderKind, Recipient,
    SendError, SentMessage, SessionContext, UpdateSink, store::DeviceStore,
};
use crate::{
    clock::Clock,
    domain::{MessageKind, MessageStatus, ids::TenantId},
    phone::PhoneNumber,
};

/// Device store namespace of the pairing (`pairing/current`).
pub const PAIRING_NS: &str = "sandbox-pairing";
/// Device store namespace of accepted message ids (`sandbox-sent/<message id>`).
pub const SENT_NS: &str = "sandbox-sent";

/// Sandbox timings.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Validity of the first QR code.
    pub qr_first_ttl: Duration,
    /// Validity of each following QR code.
    pub qr_ttl: Duration,
    /// QR codes issued before giving up (then the session is `disconnected`).
    pub qr_rotations: u32,
    /// Delay before a paired session comes online on connect.
    pub connect_delay: Duration,
    /// Whether sent messages get `delivered` and `read` (audio: `played`) receipts.
    pub receipts: bool,
    /// Delay from send to the `delivered` receipt.
    pub delivered_after: Duration,
    /// Delay from `delivered` to `read` (and from `read` to `played`).
    pub read_after: Duration,
    /// Numbers (E.164 digits) the simulated network does not know: sends to them fail.
    pub not_on_whatsapp: Vec<String>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            qr_first_ttl: Duration::from_secs(60),
            qr_ttl: Duration::from_secs(20),
            qr_rotations: 6,
            connect_delay: Duration::from_millis(200),
            receipts: true,
            delivered_after: Duration::from_millis(500),
            read_after: Duration::from_secs(2),
            not_on_whatsapp: Vec::new(),
        }
    }
}

/// What the sandbox keeps in the device store for a paired session.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxCredentials {
    /// The simulated phone, E.164.
    pub phone: String,
    /// A random device identity, like a real linked device's.
    pub device_id: String,
}

impl SandboxCredentials {
    /// Credentials for a new simulated pairing.
    pub fn new(phone: &PhoneNumber) -> Self {
        Self {
            phone: phone.e164().to_owned(),
            device_id: random_b64(16),
        }
    }
}

fn random_b64(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    STANDARD.encode(bytes)
}

/// A QR payload shaped like WhatsApp Web's.
pub fn qr_payload() -> String {
    format!(
        "2@{},{},{},{}",
        random_b64(48),
        random_b64(32),
        random_b64(32),
        random_b64(32)
    )
}

/// The simulator.
pub struct SandboxProvider {
    cfg: SandboxConfig,
    clock: Arc<dyn Clock>,
}

impl SandboxProvider {
    /// A sandbox with these timings.
    pub fn new(cfg: SandboxConfig, clock: Arc<dyn Clock>) -> Self {
        Self { cfg, clock }
    }
}

/// The id the simulated network gives a message: derived from wagate's id (as WhatsApp Web
/// clients choose their own message ids), so a retry carries the same id.
pub fn provider_message_id(id: Uuid) -> String {
    format!("3EB0{}", id.simple()).to_uppercase()
}

/// Plays the recipient's side: `delivered`, then `read`, then `played` for audio.
fn spawn_receipts(
    cfg: SandboxConfig,
    clock: Arc<dyn Clock>,
    msg: &OutboundMessage,
    provider_id: String,
    updates: UpdateSink,
) {
    let mut steps = vec![
        (cfg.delivered_after, MessageStatus::Delivered),
        (cfg.read_after, MessageStatus::Read),
    ];
    if msg.kind == MessageKind::Audio {
        steps.push((cfg.read_after, MessageStatus::Played));
    }
    let (tenant_id, session_id, message_id) = (msg.tenant_id, msg.session_id, msg.message_id);
    tokio::spawn(async move {
        for (delay, status) in steps {
            tokio::time::sleep(delay).await;
            let update = MessageUpdate::Status {
                tenant_id,
                session_id,
                message_id: Some(message_id),
                provider_message_id: provider_id.clone(),
                status,
                at: clock.now(),
                error: None,
            };
            if !updates.report(update).await {
                return;
            }
        }
    });
}

fn store_error(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Unavailable(format!("device store: {e}"))
}

async fn load_pairing(
    store: &dyn DeviceStore,
) -> Result<Option<(PhoneNumber, SandboxCredentials)>, ProviderError> {
    let Some(v) = store
        .get(PAIRING_NS, "current")
        .await
        .map_err(store_error)?
    else {
        return Ok(None);
    };
    let creds: SandboxCredentials = serde_json::from_slice(&v.value).map_err(store_error)?;
    Ok(PhoneNumber::parse(&creds.phone).ok().map(|p| (p, creds)))
}

/// A pairing code like WhatsApp's: eight characters of an alphabet without look-alikes, as
/// `XXXX-XXXX`.
fn pair_code() -> String {
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTVWXYZ";
    let mut rng = rand::rng();
    let mut code: String = (0..8)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    code.insert(4, '-');
    code
}

/// A scan waiting for the QR rotation: the phone, and where to answer.
type Scan = (PhoneNumber, oneshot::Sender<Result<(), ProviderError>>);

/// One sandbox session's connection.
struct SandboxConnection {
    cfg: SandboxConfig,
    clock: Arc<dyn Clock>,
    tenant: TenantId,
    session: Uuid,
    store: Arc<dyn DeviceStore>,
    updates: UpdateSink,
    events: EventSink,
    cancel: tokio_util::sync::CancellationToken,
    online: Arc<AtomicBool>,
    scans: mpsc::Sender<Scan>,
}

#[async_trait::async_trait]
impl Provider for SandboxProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Sandbox
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
        let paired = load_pairing(ctx.store.as_ref()).await?;
        let (scans, scan_rx) = mpsc::channel::<Scan>(1);
        let conn = SandboxConnection {
            cfg: self.cfg.clone(),
            clock: self.clock.clone(),
            tenant: ctx.tenant_id,
            session: ctx.session_id,
            store: ctx.store.clone(),
            updates: ctx.updates.clone(),
            events: ctx.events.clone(),
            cancel: ctx.cancel.clone(),
            online: Arc::new(AtomicBool::new(false)),
            scans,
        };
        let online = conn.online.clone();
        let (cfg, clock) = (self.cfg.clone(), self.clock.clone());
        tokio::spawn(async move {
            match paired {
                Some((phone, _)) => {
                    tokio::select! {
                        () = ctx.cancel.cancelled() => return,
                        () = tokio::time::sleep(cfg.connect_delay) => {}
                    }
                    online.store(true, Ordering::SeqCst);
                    if !ctx.events.report(ProviderEvent::Connected { phone }).await {
                        online.store(false, Ordering::SeqCst);
                        return;
                    }
                }
                None => {
                    if !show_qr(cfg, clock, &ctx, scan_rx, &online).await {
                        return;
                    }
                }
            }
            // Online until told otherwise, like a real connection (the sinks stay open).
            ctx.cancel.cancelled().await;
        });
        Ok(Arc::new(conn))
    }
}

/// Rotates QR codes until one is scanned (then pairs: true), the connection closes, or the
/// codes run out.
async fn show_qr(
    cfg: SandboxConfig,
    clock: Arc<dyn Clock>,
    ctx: &SessionContext,
    mut scans: mpsc::Receiver<Scan>,
    online: &AtomicBool,
) -> bool {
    for i in 0..cfg.qr_rotations {
        let ttl = if i == 0 { cfg.qr_first_ttl } else { cfg.qr_ttl };
        let expires_at = clock.now() + chrono::Duration::from_std(ttl).unwrap_or_default();
        let qr = ProviderEvent::Qr {
            code: qr_payload(),
            expires_at,
        };
        if !ctx.events.report(qr).await {
            return false;
        }
        let deadline = tokio::time::sleep(ttl);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = ctx.cancel.cancelled() => return false,
                () = &mut deadline => break,
                scan = scans.recv() => {
                    let Some((phone, answer)) = scan else { return false };
                    let paired = pair(ctx, &phone).await;
                    let ok = paired.is_ok();
                    if ok {
                        online.store(true, Ordering::SeqCst);
                    }
                    let _ = answer.send(paired);
                    if ok {
                        return true;
                    }
                }
            }
        }
    }
    let _ = ctx
        .events
        .report(ProviderEvent::Disconnected {
            reason: "QR code was not scanned in time".into(),
        })
        .await;
    false
}

/// Stores a new pairing for `phone` and reports the session connected.
async fn pair(ctx: &SessionContext, phone: &PhoneNumber) -> Result<(), ProviderError> {
    let creds = serde_json::to_vec(&SandboxCredentials::new(phone)).map_err(store_error)?;
    ctx.store
        .put(PAIRING_NS, "current", creds)
        .await
        .map_err(store_error)?;
    if ctx
        .events
        .report(ProviderEvent::Connected {
            phone: phone.clone(),
        })
        .await
    {
        Ok(())
    } else {
        Err(ProviderError::Refused(
            "No QR code is waiting to be scanned".into(),
        ))
    }
}

#[async_trait::async_trait]
impl Connection for SandboxConnection {
    async fn check_number(&self, phone: &PhoneNumber) -> Result<NumberCheck, ProviderError> {
        if !self.online.load(Ordering::SeqCst) {
            return Err(ProviderError::Refused(
                "The sandbox connection is not online".into(),
            ));
        }
        let on_whatsapp = !self.cfg.not_on_whatsapp.iter().any(|n| n == phone.digits());
        Ok(NumberCheck {
            on_whatsapp,
            jid: on_whatsapp.then(|| phone.jid()),
        })
    }

    async fn send(&self, msg: OutboundMessage) -> Result<SentMessage, SendError> {
        if !self.online.load(Ordering::SeqCst) || self.cancel.is_cancelled() {
            return Err(SendError::Transient(
                "The sandbox connection is not online".into(),
            ));
        }
        if let Recipient::Phone(to) = &msg.to
            && self.cfg.not_on_whatsapp.iter().any(|n| n == to.digits())
        {
            return Err(SendError::Permanent(format!(
                "{} is not on WhatsApp",
                to.e164()
            )));
        }
        let key = msg.message_id.to_string();
        let transient =
            |e: super::store::StoreError| SendError::Transient(format!("device store: {e}"));
        if let Some(earlier) = self.store.get(SENT_NS, &key).await.map_err(transient)? {
            // A retry of a message the network already has: acknowledge, deliver nothing.
            return Ok(SentMessage {
                provider_message_id: String::from_utf8_lossy(&earlier.value).into_owned(),
            });
        }
        let provider_id = provider_message_id(msg.message_id);
        self.store
            .put(SENT_NS, &key, provider_id.clone().into_bytes())
            .await
            .map_err(transient)?;
        if self.cfg.receipts {
            spawn_receipts(
                self.cfg.clone(),
                self.clock.clone(),
                &msg,
                provider_id.clone(),
                self.updates.clone(),
            );
        }
        Ok(SentMessage {
            provider_message_id: provider_id,
        })
    }

    /// Issues an eight-character code, as WhatsApp does; `sandbox/scan` then stands for typing
    /// it on the phone.
    async fn request_pair_code(&self, phone: &PhoneNumber) -> Result<String, ProviderError> {
        if self.online.load(Ordering::SeqCst) || self.cancel.is_cancelled() {
            return Err(ProviderError::Refused(
                "Session is not waiting to be paired".into(),
            ));
        }
        let code = pair_code();
        let event = ProviderEvent::PairCode {
            code: code.clone(),
            phone: phone.clone(),
        };
        if !self.events.report(event).await {
            return Err(ProviderError::Refused(
                "Session is not waiting to be paired".into(),
            ));
        }
        Ok(code)
    }

    async fn control(&self, command: Control) -> Result<ControlReply, ProviderError> {
        match command {
            Control::SandboxScan { phone } => {
                let phone = PhoneNumber::parse(&phone)
                    .map_err(|e| ProviderError::Refused(e.to_string()))?;
                let (answer, answered) = oneshot::channel();
                let refused =
                    || ProviderError::Refused("No QR code is waiting to be scanned".into());
                self.scans
                    .try_send((phone, answer))
                    .map_err(|_| refused())?;
                answered.await.map_err(|_| refused())??;
                Ok(ControlReply::Done)
            }
            Control::SandboxInbound { from, text } => {
                if !self.online.load(Ordering::SeqCst) || self.cancel.is_cancelled() {
                    return Err(ProviderError::Refused("Session is not connected".into()));
                }
                let from =
                    PhoneNumber::parse(&from).map_err(|e| ProviderError::Refused(e.to_string()))?;
                let provider_message_id = format!("SBX{}", Uuid::new_v4().simple()).to_uppercase();
                let msg = InboundMessage::text(
                    self.tenant,
                    self.session,
                    provider_message_id.clone(),
                    from,
                    Some(text),
                    self.clock.now(),
                );
                if !self
                    .updates
                    .report(MessageUpdate::Inbound(Box::new(msg)))
                    .await
                {
                    return Err(ProviderError::Unavailable(
                        "The inbound message could not be stored".into(),
                    ));
                }
                Ok(ControlReply::Received {
                    provider_message_id,
                })
            }
        }
    }

    async fn logout(&self) -> Result<(), ProviderError> {
        self.online.store(false, Ordering::SeqCst);
        self.cancel.cancel();
        self.store.clear(None).await.map_err(store_error)
    }

    async fn close(&self) {
        self.online.store(false, Ordering::SeqCst);
        self.cancel.cancel();
    }
}
