//! The sandbox provider: a WhatsApp simulator for development and tests.
//!
//! Connecting without credentials issues QR codes shaped like WhatsApp Web's
//! (`<ref>,<noise key>,<identity key>,<adv secret>`), the first valid for `qr_first_ttl`, then
//! a new one every `qr_ttl`, giving up after `qr_rotations` codes. Pairing is simulated by the
//! sandbox scan endpoint; the pairing is persisted as credentials, so a reconnect (or a gateway
//! restart) comes back online after `connect_delay` without a QR.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ConnectRequest, Provider, ProviderError, ProviderEvent, ProviderKind};
use crate::{clock::Clock, phone::PhoneNumber};

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
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            qr_first_ttl: Duration::from_secs(60),
            qr_ttl: Duration::from_secs(20),
            qr_rotations: 6,
            connect_delay: Duration::from_millis(200),
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

/// The simulator.
pub struct SandboxProvider {
    cfg: SandboxConfig,
    clock: std::sync::Arc<dyn Clock>,
}

impl SandboxProvider {
    /// A sandbox with these timings.
    pub fn new(cfg: SandboxConfig, clock: std::sync::Arc<dyn Clock>) -> Self {
        Self { cfg, clock }
    }
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
}
