//! Session inputs and outputs, shared by REST and GraphQL.

use async_graphql::{InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

pub use crate::domain::session::SessionStatus;
use crate::{domain::provider::ProviderKind, service::pagination::Pagination};

/// A new session slot.
#[derive(Debug, Deserialize, ToSchema, InputObject, Validate)]
#[serde(rename_all = "camelCase")]
pub struct CreateSessionInput {
    /// Display name, e.g. "Sales Line 1".
    #[serde(default)]
    #[schema(required = true)]
    #[validate(length(
        min = 1,
        max = 100,
        message = "Name is required (at most 100 characters)"
    ))]
    pub name: String,
    /// Provider; defaults to the gateway's `WAGATE_PROVIDER`.
    pub provider: Option<ProviderKind>,
    /// Settings for the `sandbox` provider (it takes none: omit, or an empty object).
    #[schema(value_type = Option<Object>)]
    pub sandbox: Option<serde_json::Value>,
    /// Settings for the `web` (WhatsApp Web) provider, checked by it.
    #[schema(value_type = Option<Object>)]
    pub web: Option<serde_json::Value>,
    /// Settings for the `cloud` (Meta Cloud API) provider, checked by it. Its secrets (access
    /// token, app secret) are stored encrypted and never shown again.
    #[schema(value_type = Option<Object>)]
    pub cloud: Option<serde_json::Value>,
}

impl CreateSessionInput {
    /// The settings given, by the provider they are for.
    pub fn settings(&self) -> Vec<(ProviderKind, &serde_json::Value)> {
        [
            (ProviderKind::Sandbox, &self.sandbox),
            (ProviderKind::Web, &self.web),
            (ProviderKind::Cloud, &self.cloud),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect()
    }
}

/// A new name.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct RenameSessionInput {
    /// Display name.
    #[serde(default)]
    #[schema(required = true)]
    #[validate(length(
        min = 1,
        max = 100,
        message = "Name is required (at most 100 characters)"
    ))]
    pub name: String,
}

/// The simulated phone that scans the sandbox QR code.
#[derive(Debug, Default, Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct SandboxScanInput {
    /// The phone number that pairs (international format); a random test number if omitted.
    pub phone_number: Option<String>,
}

/// A request for a pairing code.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct PairCodeInput {
    /// The phone number that will type the code (international format, e.g. `+919876543210`).
    #[serde(default)]
    #[schema(required = true)]
    #[validate(length(min = 1, max = 32, message = "Phone number is required"))]
    pub phone_number: String,
}

/// A pairing code to type on the phone.
#[derive(Clone, Debug, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct PairCodeOutput {
    /// The code, e.g. `ABCD-EFGH`: WhatsApp > Linked devices > Link with phone number.
    pub code: String,
    /// The phone it is for (digits, no `+`).
    pub phone_number: String,
}

/// Whether a phone number is on WhatsApp.
#[derive(Clone, Debug, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct NumberCheckOutput {
    /// The number checked (digits, no `+`).
    pub phone: String,
    /// The number has a WhatsApp account.
    #[serde(rename = "onWhatsApp")]
    #[graphql(name = "onWhatsApp")]
    pub on_whatsapp: bool,
    /// Its WhatsApp id (`<digits>@s.whatsapp.net`), when it has an account.
    pub jid: Option<String>,
}

/// A session.
#[derive(Clone, Debug, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct SessionOutput {
    /// Session id.
    #[graphql(
        skip_output,
        derived(
            name = "id",
            into = "async_graphql::ID",
            owned,
            with = "crate::domain::ids::gql_id"
        )
    )]
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Connection status.
    pub status: SessionStatus,
    /// Paired number (digits, no `+`), or null.
    pub phone_number: Option<String>,
    /// True when `status` is `connected`.
    pub connected: bool,
    /// The provider driving it.
    pub provider: ProviderKind,
    /// Last disconnect reason or error, if any.
    pub last_error: Option<String>,
    /// When it last came online.
    pub connected_at: Option<DateTime<Utc>>,
    /// The gateway instance holding its live connection (`WAGATE_INSTANCE_ID`), or null when
    /// no instance holds it (not connected, or handed back and not yet taken over).
    pub owner_instance: Option<String>,
    /// Reconnect attempts of the current outage while `connecting` again; 0 otherwise.
    pub reconnect_attempt: i32,
    /// The provider settings given at creation, without their secrets; null when none.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// `GET /api/v1/whatsapp/{id}/status`.
#[derive(Clone, Debug, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct SessionStatusOutput {
    /// Session id.
    #[graphql(
        skip_output,
        derived(
            name = "id",
            into = "async_graphql::ID",
            owned,
            with = "crate::domain::ids::gql_id"
        )
    )]
    pub id: Uuid,
    /// Connection status.
    pub status: SessionStatus,
    /// Paired number, or null.
    pub phone_number: Option<String>,
    /// True when connected.
    pub connected: bool,
}

/// Result of a connect.
#[derive(Clone, Debug, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct ConnectOutput {
    /// `qr_pending` (scan the QR) or `connected` (an earlier pairing was restored).
    pub status: SessionStatus,
    /// What to do next.
    pub message: String,
}

/// The QR code waiting to be scanned.
#[derive(Clone, Debug, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct QrOutput {
    /// The QR payload string.
    pub code: String,
    /// When it stops being valid (a new one follows).
    pub expires_at: DateTime<Utc>,
    /// SVG document.
    pub svg: String,
    /// PNG as a `data:image/png;base64,…` URL.
    pub png: String,
}

/// A page of sessions.
#[derive(Clone, Debug, SimpleObject)]
pub struct SessionPage {
    /// The sessions.
    pub data: Vec<SessionOutput>,
    /// Paging.
    pub pagination: Pagination,
}

impl From<&entity::wa_session::Model> for SessionOutput {
    fn from(m: &entity::wa_session::Model) -> Self {
        let status = SessionStatus::parse(&m.status);
        SessionOutput {
            id: m.id,
            name: m.name.clone(),
            status,
            phone_number: m.phone_number.clone(),
            connected: status == SessionStatus::Connected,
            provider: ProviderKind::parse(&m.provider).unwrap_or(ProviderKind::Sandbox),
            last_error: m.last_error.clone(),
            connected_at: m.connected_at,
            owner_instance: m
                .owner_instance
                .clone()
                .filter(|_| m.owner_lease_until.is_some()),
            reconnect_attempt: m.reconnect_attempt,
            settings: m
                .settings
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok()),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

impl From<&entity::wa_session::Model> for SessionStatusOutput {
    fn from(m: &entity::wa_session::Model) -> Self {
        let status = SessionStatus::parse(&m.status);
        SessionStatusOutput {
            id: m.id,
            status,
            phone_number: m.phone_number.clone(),
            connected: status == SessionStatus::Connected,
        }
    }
}
