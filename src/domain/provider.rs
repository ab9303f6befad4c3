//! Which provider drives a session.

use serde::{Deserialize, Serialize};

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
