//! Webhook inputs and outputs, shared by REST and GraphQL.

use async_graphql::{InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A webhook endpoint.
#[derive(Clone, Debug, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct WebhookOutput {
    /// Webhook id.
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
    /// Where events are POSTed.
    pub url: String,
    /// Free text.
    pub description: Option<String>,
    /// Event types delivered; `["*"]` means every event.
    pub events: Vec<String>,
    /// Only events of these sessions (events without a session, such as contact events,
    /// always pass); absent means every session.
    #[graphql(
        skip_output,
        derived(
            name = "session_ids",
            into = "Option<Vec<async_graphql::ID>>",
            owned,
            with = "crate::domain::ids::gql_ids"
        )
    )]
    pub session_ids: Option<Vec<Uuid>>,
    /// Whether events are delivered.
    pub enabled: bool,
    /// Why it was disabled automatically (`410 Gone`, failing for days), if it was.
    pub disabled_reason: Option<String>,
    /// When it was disabled automatically.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Start of the current run of failed deliveries, if one is running.
    pub failing_since: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A new webhook with its signing secret (shown here and by the secret endpoint).
#[derive(Clone, Debug, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWebhookOutput {
    /// The webhook.
    #[serde(flatten)]
    #[graphql(flatten)]
    pub webhook: WebhookOutput,
    /// Signing secret (`whsec_…`): verify `webhook-signature` with it.
    pub secret: String,
}

/// `GET /api/webhooks/{id}/secret` and `POST …/rotate-secret`.
#[derive(Clone, Debug, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSecretOutput {
    /// Signing secret (`whsec_…`).
    pub secret: String,
    /// After a rotation, the old secret is still signed with (a second `v1,` signature)
    /// until then.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

/// `POST /api/webhooks`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema, InputObject)]
#[serde(rename_all = "camelCase")]
pub struct CreateWebhookInput {
    /// `http://` or `https://` URL.
    #[serde(default)]
    pub url: String,
    /// Event types (`message.status`, …) or `["*"]`; absent means every event.
    pub events: Option<Vec<String>>,
    /// Only these sessions' events; absent or empty means every session.
    pub session_ids: Option<Vec<String>>,
    /// Free text (up to 500 characters).
    pub description: Option<String>,
    /// Default `true`.
    pub enabled: Option<bool>,
}

/// `PATCH /api/webhooks/{id}`: only the fields given change. `sessionIds: null` or `[]`
/// removes the session filter; `enabled: true` re-enables a disabled endpoint.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateWebhookInput {
    /// New URL.
    pub url: Option<String>,
    /// New event types.
    pub events: Option<Vec<String>>,
    /// New session filter.
    #[serde(default, deserialize_with = "crate::service::contacts::nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub session_ids: Option<Option<Vec<String>>>,
    /// New description (`null` clears it).
    #[serde(default, deserialize_with = "crate::service::contacts::nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Turn delivery on or off.
    pub enabled: Option<bool>,
}

impl UpdateWebhookInput {
    /// True when nothing would change.
    pub fn is_empty(&self) -> bool {
        self.url.is_none()
            && self.events.is_none()
            && self.session_ids.is_none()
            && self.description.is_none()
            && self.enabled.is_none()
    }
}

/// One try at a delivery.
#[derive(Clone, Debug, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAttemptOutput {
    /// Attempt id.
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
    /// When it was made.
    pub attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status; absent when no answer came.
    pub http_status: Option<i32>,
    /// Time to the answer (or the failure), in milliseconds.
    pub latency_ms: i32,
    /// The first 1 KiB of the answer's body.
    pub response_body: Option<String>,
    /// Why no usable answer came (connection refused, timeout, redirect refused).
    pub error: Option<String>,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its next try (or being tried).
    Pending,
    /// A try was answered with 2xx.
    Delivered,
    /// Every try failed, or the endpoint answered 410.
    Failed,
}

/// One event's delivery to one webhook, with every try.
#[derive(Clone, Debug, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDeliveryOutput {
    /// Delivery id.
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
    /// The webhook.
    #[graphql(
        skip_output,
        derived(
            name = "webhook_id",
            into = "async_graphql::ID",
            owned,
            with = "crate::domain::ids::gql_id"
        )
    )]
    pub webhook_id: Uuid,
    /// The event's id (sent as `webhook-id`; the same on every try).
    #[graphql(
        skip_output,
        derived(
            name = "event_id",
            into = "async_graphql::ID",
            owned,
            with = "crate::domain::ids::gql_id"
        )
    )]
    pub event_id: Uuid,
    /// The event type.
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Tries made.
    pub attempt_count: i32,
    /// When the next try is due (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// HTTP status of the last try.
    pub last_http_status: Option<i32>,
    /// Error of the last try.
    pub last_error: Option<String>,
    /// When the event was queued for this webhook.
    pub created_at: DateTime<Utc>,
    /// When a try succeeded.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The body that is sent: `{id, type, timestamp, tenantId, data}`.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Every try, oldest first.
    pub attempts: Vec<WebhookAttemptOutput>,
}
