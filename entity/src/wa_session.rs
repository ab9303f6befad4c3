//! A WhatsApp session (one linked phone number) of a tenant.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "wa_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    /// `sandbox`, `web` or `cloud`.
    pub provider: String,
    /// `disconnected`, `connecting`, `qr_pending`, `connected`, `logged_out` or `failed`.
    pub status: String,
    /// E.164 without the `+`, once paired.
    pub phone_number: Option<String>,
    /// Provider pairing data (JSON), kept so a restart reconnects without a new QR.
    pub credentials: Option<String>,
    /// The connection attempt that owns the live connection; provider events of any other
    /// attempt are ignored.
    pub attempt_id: Option<Uuid>,
    /// The QR payload currently waiting to be scanned.
    pub qr_code: Option<String>,
    pub qr_expires_at: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    pub connected_at: Option<DateTimeUtc>,
    /// The instance holding the live connection (`WAGATE_INSTANCE_ID`), while its lease runs.
    pub owner_instance: Option<String>,
    /// Until when the owner's claim holds; its heartbeat renews it, and once it lapses any
    /// instance may take the session over.
    pub owner_lease_until: Option<DateTimeUtc>,
    /// Reconnect attempts in the current outage (0 while connected).
    pub reconnect_attempt: i32,
    /// Provider settings given at creation (JSON, without secrets).
    pub settings: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::tenant::Entity",
        from = "Column::TenantId",
        to = "super::tenant::Column::Id"
    )]
    Tenant,
}

impl Related<super::tenant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenant.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
