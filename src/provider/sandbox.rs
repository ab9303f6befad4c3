//! The sandbox provider: a WhatsApp simulator for development and tests.
//!
//! Connecting without credentials issues QR codes shaped like WhatsApp Web's
//! (`<ref>,<noise key>,<identity key>,<adv secret>`), the first valid for `qr_first_ttl`, then
//! a new one every `qr_ttl`, giving up after `qr_rotations` codes. Pairing is simulated by the
//! sandbox scan endpoint; the pairing is persisted as credentials, so a reconnect (or a gateway
//! restart) comes back online after `connect_delay` without a QR.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    ConnectRequest, MessageUpdate, OutboundMessage, Provider, ProviderError, ProviderEvent,
    ProviderKind, SendError, SentMessage, UpdateSink,
};
use crate::{
    clock::Clock,
    domain::{MessageKind, MessageStatus},
    phone::PhoneNumber,
};

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

/// What the sandbox persists for a paired session.
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

/// Messages the simulated network has accepted, by wagate message id (bounded, oldest
/// forgotten first), so a re-sent message is recognised instead of delivered twice.
#[derive(Default)]
struct SentLog {
    ids: HashMap<uuid::Uuid, String>,
    order: VecDeque<uuid::Uuid>,
}

const SENT_LOG_CAPACITY: usize = 200_000;

impl SentLog {
    /// The provider id of an already-sent message, or records a new one.
    fn record(&mut self, id: uuid::Uuid, provider_id: &str) -> Option<String> {
        if let Some(existing) = self.ids.get(&id) {
            return Some(existing.clone());
        }
        if self.order.len() >= SENT_LOG_CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        self.ids.insert(id, provider_id.to_owned());
        self.order.push_back(id);
        None
    }
}

/// The simulator.
pub struct SandboxProvider {
    cfg: SandboxConfig,
    clock: std::sync::Arc<dyn Clock>,
    sent: Mutex<SentLog>,
}

impl SandboxProvider {
    /// A sandbox with these timings.
    pub fn new(cfg: SandboxConfig, clock: std::sync::Arc<dyn Clock>) -> Self {
        Self {
            cfg,
            clock,
            sent: Mutex::new(SentLog::default()),
        }
    }
}

/// The id the simulated network gives a message: derived from wagate's id (as WhatsApp Web
/// clients choose their own message ids), so a retry carries the same id.
pub fn provider_message_id(id: uuid::Uuid) -> String {
    format!("3EB0{}", id.simple()).to_uppercase()
}

/// Plays the recipient's side: `delivered`, then `read`, then `played` for audio.
fn spawn_receipts(
    cfg: SandboxConfig,
    clock: std::sync::Arc<dyn Clock>,
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

async fn send_or_stop(events: &mpsc::Sender<ProviderEvent>, ev: ProviderEvent) -> bool {
    events.send(ev).await.is_ok()
}

#[async_trait::async_trait]
impl Provider for SandboxProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Sandbox
    }

    async fn connect(
        &self,
        req: ConnectRequest,
        events: mpsc::Sender<ProviderEvent>,
        cancel: CancellationToken,
    ) -> Result<(), ProviderError> {
        let paired = req
            .credentials
            .and_then(|c| serde_json::from_value::<SandboxCredentials>(c).ok())
            .and_then(|c| PhoneNumber::parse(&c.phone).ok().map(|p| (p, c)));
        let cfg = self.cfg.clone();
        let clock = self.clock.clone();
        tokio::spawn(async move {
            if let Some((phone, creds)) = paired {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(cfg.connect_delay) => {}
                }
                let credentials = serde_json::to_value(creds).unwrap_or_default();
                if send_or_stop(&events, ProviderEvent::Connected { phone, credentials }).await {
                    // Online until told otherwise, like a real connection.
                    cancel.cancelled().await;
                }
                return;
            }
            for i in 0..cfg.qr_rotations {
                let ttl = if i == 0 { cfg.qr_first_ttl } else { cfg.qr_ttl };
                let expires_at = clock.now() + chrono::Duration::from_std(ttl).unwrap_or_default();
                if !send_or_stop(
                    &events,
                    ProviderEvent::Qr {
                        code: qr_payload(),
                        expires_at,
                    },
                )
                .await
                {
                    return;
                }
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(ttl) => {}
                }
            }
            send_or_stop(
                &events,
                ProviderEvent::Disconnected {
                    reason: "QR code was not scanned in time".into(),
                },
            )
            .await;
        });
        Ok(())
    }

    async fn logout(&self, _req: ConnectRequest) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn send(
        &self,
        msg: OutboundMessage,
        updates: UpdateSink,
    ) -> Result<SentMessage, SendError> {
        if self
            .cfg
            .not_on_whatsapp
            .iter()
            .any(|n| n == msg.to.digits())
        {
            return Err(SendError::Permanent(format!(
                "{} is not on WhatsApp",
                msg.to.e164()
            )));
        }
        let provider_id = provider_message_id(msg.message_id);
        let earlier = self
            .sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(msg.message_id, &provider_id);
        if let Some(provider_message_id) = earlier {
            // A retry of a message the network already has: acknowledge, deliver nothing.
            return Ok(SentMessage {
                provider_message_id,
            });
        }
        if self.cfg.receipts {
            spawn_receipts(
                self.cfg.clone(),
                self.clock.clone(),
                &msg,
                provider_id.clone(),
                updates,
            );
        }
        Ok(SentMessage {
            provider_message_id: provider_id,
        })
    }
}
