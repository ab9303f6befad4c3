//! Refresh tokens (hashes only).

use chrono::{DateTime, Utc};
use entity::refresh_token;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
    sea_query::Expr,
};
use uuid::Uuid;

use crate::domain::ids::{TenantId, UserId};

/// Stores a new refresh token hash.
pub async fn insert(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    user: UserId,
    family_id: Uuid,
    token_hash: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<refresh_token::Model, DbErr> {
    refresh_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.uuid()),
        user_id: Set(user.uuid()),
        family_id: Set(family_id),
        token_hash: Set(token_hash.to_owned()),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        created_at: Set(now),
    }
    .insert(db)
    .await
}

/// Looks a token up by its hash (the token is its own credential, so no tenant yet).
pub async fn find_by_hash(
    db: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<refresh_token::Model>, DbErr> {
    refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(token_hash))
        .one(db)
        .await
}

/// Revokes one token if it is still live; returns whether this call revoked it (so two
/// concurrent refreshes with the same token cannot both succeed).
pub async fn revoke(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(now))
        .filter(refresh_token::Column::Id.eq(id))
        .filter(refresh_token::Column::TenantId.eq(tenant.uuid()))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Revokes every live token of a family (reuse of a rotated token was detected).
pub async fn revoke_family(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    family_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let res = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(now))
        .filter(refresh_token::Column::FamilyId.eq(family_id))
        .filter(refresh_token::Column::TenantId.eq(tenant.uuid()))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}
