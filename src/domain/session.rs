//! A WhatsApp session's connection status.

use async_graphql::Enum;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Connection status of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, Enum)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Not connected (pairing, if any, is kept).
    Disconnected,
    /// Connecting to WhatsApp.
    Connecting,
    /// A QR code is waiting to be scanned.
    QrPending,
    /// Online.
    Connected,
    /// The pairing was removed; connecting again needs a new QR.
    LoggedOut,
    /// The last connection attempt failed.
    Failed,
}

impl SessionStatus {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Disconnected => "disconnected",
            SessionStatus::Connecting => "connecting",
            SessionStatus::QrPending => "qr_pending",
            SessionStatus::Connected => "connected",
            SessionStatus::LoggedOut => "logged_out",
            SessionStatus::Failed => "failed",
        }
    }

    /// Parses the stored name (unknown names read as `failed`).
    pub fn parse(s: &str) -> Self {
        match s {
            "disconnected" => SessionStatus::Disconnected,
            "connecting" => SessionStatus::Connecting,
            "qr_pending" => SessionStatus::QrPending,
            "connected" => SessionStatus::Connected,
            "logged_out" => SessionStatus::LoggedOut,
            _ => SessionStatus::Failed,
        }
    }
}
