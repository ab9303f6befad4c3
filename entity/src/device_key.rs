//! One entry of a session's device store (provider keys and state), encrypted at rest.

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "device_keys")]
pub struct Model {
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub session_id: Uuid,
    /// What kind of entry (e.g. `identity`, `session`, `app-state-sync-key`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub namespace: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// 1 when written first, +1 on each later write.
    pub version: i64,
    /// The sealed value (`secrets::Cipher`), bound to its session, namespace and key.
    #[sea_orm(column_type = "Blob")]
    pub value: Vec<u8>,
    pub updated_at: DateTimeUtc,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("tenant_id", &self.tenant_id)
            .field("session_id", &self.session_id)
            .field("namespace", &self.namespace)
            .field("key", &self.key)
            .field("version", &self.version)
            .field("value", &format_args!("[{} bytes]", self.value.len()))
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::wa_session::Entity",
        from = "Column::SessionId",
        to = "super::wa_session::Column::Id",
        on_delete = "Cascade"
    )]
    Session,
}

impl Related<super::wa_session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
