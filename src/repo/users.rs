//! Users.

use chrono::{DateTime, Utc};
use entity::user;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

use crate::domain::ids::{TenantId, UserId};

/// Fields of a new user.
pub struct NewUser<'a> {
    /// Id.
    pub id: UserId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Normalised email.
    pub email: &'a str,
    /// argon2 PHC string.
    pub password_hash: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Role.
    pub role: &'a str,
}

/// Inserts a user; a duplicate email surfaces as a unique violation.
pub async fn insert(
    db: &impl ConnectionTrait,
    u: NewUser<'_>,
    now: DateTime<Utc>,
) -> Result<user::Model, DbErr> {
    user::ActiveModel {
        id: Set(u.id.uuid()),
        tenant_id: Set(u.tenant_id.uuid()),
        email: Set(u.email.to_owned()),
        password_hash: Set(u.password_hash.to_owned()),
        name: Set(u.name.to_owned()),
        role: Set(u.role.to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

/// Login lookup: emails are unique across the installation, so this is not tenant-scoped.
pub async fn find_by_email(
    db: &impl ConnectionTrait,
    email: &str,
) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(db)
        .await
}

/// A user of the tenant.
pub async fn get(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: UserId,
) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find_by_id(id.uuid())
        .filter(user::Column::TenantId.eq(tenant.uuid()))
        .one(db)
        .await
}
