//! WhatsApp providers: the protocol side of a session, behind one trait.
//!
//! A provider only speaks its protocol and reports what happens as [`ProviderEvent`]s; the
//! session service owns the state machine, persistence and live events. Three kinds fit:
//! - `sandbox` (built in, the default): a simulator with real QR payloads and rotation;
//! - `web`: WhatsApp Web multi-device (QR or pair-code login, device credentials persisted
//!   per session through `Connected { credentials }` and handed back on reconnect);
//! - `cloud`: Meta's Cloud API (no QR; credentials validated on connect, `Failed` otherwise).

pub mod sandbox;

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{ids::TenantId, phone::PhoneNumber};

/// Which provider drives a session.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    async_graphql::Enum,
)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// The built-in simulator.
    Sandbox,
    /// WhatsApp Web multi-device.
    Web,
    /// Meta's WhatsApp Cloud API.
    Cloud,
}

impl ProviderKind {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Sandbox => "sandbox",
            ProviderKind::Web => "web",
            ProviderKind::Cloud => "cloud",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sandbox" => Some(ProviderKind::Sandbox),
            "web" => Some(ProviderKind::Web),
            "cloud" => Some(ProviderKind::Cloud),
            _ => None,
        }
    }
}

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
