//! A tenant's webhook endpoint: where events are POSTed, which ones, and its signing secret.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub url: String,
    pub description: Option<String>,
    /// JSON array of event type names; `NULL` means every event.
    pub events: Option<String>,
    /// JSON array of session ids; `NULL` means every session.
    pub session_ids: Option<String>,
    pub enabled: bool,
    /// `whsec_…` signing secret. Stored as is: receivers need the same value to verify, and
    /// the API shows it again on request.
    pub secret: String,
    /// The secret before the last rotation, still signed with until it expires.
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTimeUtc>,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTimeUtc>,
    /// Start of the current run of failed attempts (cleared by a success).
    pub failing_since: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
