//! API keys (hashes only).

use chrono::{DateTime, Utc};
use entity::api_key;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set, sea_query::Expr,
};

use crate::domain::ids::{ApiKeyId, TenantId, UserId};

/// A key to store.
pub struct NewApiKey<'a> {
    /// The user who creates it.
    pub created_by: Option<UserId>,
    /// Label.
    pub name: &'a str,
    /// Display prefix.
    pub prefix: &'a str,
    /// Hex SHA-256 of the key.
    pub key_hash: &'a str,
    /// Granted scopes, stored form.
    pub scopes: &'a str,
}

/// Stores a new key.
pub async fn insert(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    key: NewApiKey<'_>,
    now: DateTime<Utc>,
) -> Result<api_key::Model, DbErr> {
    api_key::ActiveModel {
        id: Set(ApiKeyId::new().uuid()),
        tenant_id: Set(tenant.uuid()),
        created_by: Set(key.created_by.map(UserId::uuid)),
        name: Set(key.name.to_owned()),
        prefix: Set(key.prefix.to_owned()),
        key_hash: Set(key.key_hash.to_owned()),
        scopes: Set(key.scopes.to_owned()),
        last_used_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(now),
    }
    .insert(db)
    .await
}

/// The tenant's live keys, newest first.
pub async fn list_active(
    db: &impl ConnectionTrait,
    tenant: TenantId,
) -> Result<Vec<api_key::Model>, DbErr> {
    api_key::Entity::find()
        .filter(api_key::Column::TenantId.eq(tenant.uuid()))
        .filter(api_key::Column::RevokedAt.is_null())
        .order_by_desc(api_key::Column::CreatedAt)
        .order_by_desc(api_key::Column::Id)
        .all(db)
        .await
}

/// Authentication lookup by hash; only live keys match.
pub async fn find_active_by_hash(
    db: &impl ConnectionTrait,
    key_hash: &str,
) -> Result<Option<api_key::Model>, DbErr> {
    api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(key_hash))
        .filter(api_key::Column::RevokedAt.is_null())
        .one(db)
        .await
}

/// Revokes a live key of the tenant; false when there is none.
pub async fn revoke(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: ApiKeyId,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, Expr::value(now))
        .filter(api_key::Column::Id.eq(id.uuid()))
        .filter(api_key::Column::TenantId.eq(tenant.uuid()))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Records that a key was used.
pub async fn touch_last_used(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: ApiKeyId,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    api_key::Entity::update_many()
        .col_expr(api_key::Column::LastUsedAt, Expr::value(now))
        .filter(api_key::Column::Id.eq(id.uuid()))
        .filter(api_key::Column::TenantId.eq(tenant.uuid()))
        .exec(db)
        .await?;
    Ok(())
}

/// One key of the tenant (live or revoked).
pub async fn get(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: ApiKeyId,
) -> Result<Option<api_key::Model>, DbErr> {
    api_key::Entity::find_by_id(id.uuid())
        .filter(api_key::Column::TenantId.eq(tenant.uuid()))
        .one(db)
        .await
}
