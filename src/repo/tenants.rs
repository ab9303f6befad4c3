//! Tenants.

use chrono::{DateTime, Utc};
use entity::tenant;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, Set};

use crate::domain::ids::TenantId;

/// Inserts a tenant.
pub async fn insert(
    db: &impl ConnectionTrait,
    id: TenantId,
    name: &str,
    now: DateTime<Utc>,
) -> Result<tenant::Model, DbErr> {
    tenant::ActiveModel {
        id: Set(id.uuid()),
        name: Set(name.to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

/// The tenant itself (a principal may only ever read its own).
pub async fn get(db: &impl ConnectionTrait, id: TenantId) -> Result<Option<tenant::Model>, DbErr> {
    tenant::Entity::find_by_id(id.uuid()).one(db).await
}
