//! A server-to-server API key, stored only as a SHA-256 hash plus a short display prefix.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// The user who created the key.
    pub created_by: Option<Uuid>,
    pub name: String,
    /// The first characters of the key, safe to display.
    pub prefix: String,
    /// Hex SHA-256 of the whole key.
    #[sea_orm(unique)]
    pub key_hash: String,
    /// Granted scopes, space-separated (e.g. `send_messages read_messages`).
    pub scopes: String,
    pub last_used_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
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
