//! A WhatsApp message of a tenant: outbound (the durable outbox) or inbound.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub session_id: Uuid,
    /// `outbound` or `inbound`.
    pub direction: String,
    /// `text`, `image`, `document`, `video`, `audio` or `location`.
    pub kind: String,
    /// The other party, E.164 digits without `+` (recipient of outbound, sender of inbound).
    pub phone: String,
    /// `<digits>@s.whatsapp.net`.
    pub remote_jid: String,
    /// Text, or the caption of a media message.
    pub body: Option<String>,
    /// Content address of the media in the media store.
    pub media_key: Option<String>,
    pub media_mime: Option<String>,
    pub media_size: Option<i64>,
    pub media_filename: Option<String>,
    /// Location as JSON `{latitude, longitude, name?, address?}`.
    pub location: Option<String>,
    /// `queued`, `sent`, `delivered`, `read`, `played`, `failed` (outbound) or `received`.
    pub status: String,
    pub error: Option<String>,
    pub provider_message_id: Option<String>,
    /// Dispatch attempts so far.
    pub attempts: i32,
    /// When a queued message is next due for dispatch.
    pub next_attempt_at: Option<DateTimeUtc>,
    /// A dispatcher holds the message until then; afterwards another may claim it.
    pub lease_until: Option<DateTimeUtc>,
    /// The instance holding the lease.
    pub lease_owner: Option<String>,
    pub idempotency_key: Option<String>,
    /// Fingerprint of the request that used `idempotency_key`.
    pub request_hash: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    pub delivered_at: Option<DateTimeUtc>,
    pub read_at: Option<DateTimeUtc>,
    pub played_at: Option<DateTimeUtc>,
    pub failed_at: Option<DateTimeUtc>,
    /// The earlier message of the session this one replies to.
    pub quoted_message_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::tenant::Entity",
        from = "Column::TenantId",
        to = "super::tenant::Column::Id"
    )]
    Tenant,
    #[sea_orm(
        belongs_to = "super::wa_session::Entity",
        from = "Column::SessionId",
        to = "super::wa_session::Column::Id"
    )]
    Session,
}

impl ActiveModelBehavior for ActiveModel {}
