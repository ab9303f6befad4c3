//! Webhook endpoints of a tenant.

use chrono::{DateTime, Utc};
use entity::webhook_endpoint::{self, Column as C};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use crate::domain::ids::TenantId;

/// Inserts an endpoint built by the service.
pub async fn insert(
    db: &impl ConnectionTrait,
    m: webhook_endpoint::Model,
) -> Result<webhook_endpoint::Model, DbErr> {
    let am: webhook_endpoint::ActiveModel = m.clone().into();
    webhook_endpoint::Entity::insert(am)
        .exec_without_returning(db)
        .await?;
    Ok(m)
}

/// One endpoint of the tenant.
pub async fn get(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<webhook_endpoint::Model>, DbErr> {
    webhook_endpoint::Entity::find_by_id(id)
        .filter(C::TenantId.eq(tenant.uuid()))
        .one(db)
        .await
}

/// A page of the tenant's endpoints, oldest first, and the total.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    offset: u64,
    limit: u64,
) -> Result<(Vec<webhook_endpoint::Model>, u64), DbErr> {
    let q = webhook_endpoint::Entity::find().filter(C::TenantId.eq(tenant.uuid()));
    let total = q.clone().count(db).await?;
    let rows = q
        .order_by_asc(C::CreatedAt)
        .order_by_asc(C::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await?;
    Ok((rows, total))
}

/// The tenant's enabled endpoints (the candidates for a new event).
pub async fn enabled(
    db: &impl ConnectionTrait,
    tenant: TenantId,
) -> Result<Vec<webhook_endpoint::Model>, DbErr> {
    webhook_endpoint::Entity::find()
        .filter(C::TenantId.eq(tenant.uuid()))
        .filter(C::Enabled.eq(true))
        .all(db)
        .await
}

/// Endpoints by id, whatever their tenant (the delivery worker's lookup).
pub async fn by_ids(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<Vec<webhook_endpoint::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    webhook_endpoint::Entity::find()
        .filter(C::Id.is_in(ids.iter().copied()))
        .all(db)
        .await
}

/// The fields a PATCH changes (`None`: leave as is).
#[derive(Default)]
pub struct EndpointChange {
    /// New URL.
    pub url: Option<String>,
    /// New description.
    pub description: Option<Option<String>>,
    /// New event list (JSON; `NULL` = all).
    pub events: Option<Option<String>>,
    /// New session filter (JSON; `NULL` = all).
    pub session_ids: Option<Option<String>>,
    /// Enable (clearing an automatic disable and the failure run) or disable.
    pub enabled: Option<bool>,
}

/// Applies a change to the columns it names only (so it cannot undo a concurrent automatic
/// disable it did not ask about); false when the endpoint is not there.
pub async fn update(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
    change: EndpointChange,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let mut q = webhook_endpoint::Entity::update_many().col_expr(C::UpdatedAt, Expr::value(now));
    if let Some(v) = change.url {
        q = q.col_expr(C::Url, Expr::value(v));
    }
    if let Some(v) = change.description {
        q = q.col_expr(C::Description, Expr::value(v));
    }
    if let Some(v) = change.events {
        q = q.col_expr(C::Events, Expr::value(v));
    }
    if let Some(v) = change.session_ids {
        q = q.col_expr(C::SessionIds, Expr::value(v));
    }
    if change.enabled == Some(false) {
        q = q.col_expr(C::Enabled, Expr::value(false));
    }
    let res = q
        .filter(C::Id.eq(id))
        .filter(C::TenantId.eq(tenant.uuid()))
        .exec(db)
        .await?;
    if change.enabled == Some(true) {
        webhook_endpoint::Entity::update_many()
            .col_expr(C::Enabled, Expr::value(true))
            .col_expr(C::DisabledReason, Expr::value(None::<String>))
            .col_expr(C::DisabledAt, Expr::value(None::<DateTime<Utc>>))
            .col_expr(C::FailingSince, Expr::value(None::<DateTime<Utc>>))
            .filter(C::Id.eq(id))
            .filter(C::TenantId.eq(tenant.uuid()))
            .filter(C::Enabled.eq(false))
            .exec(db)
            .await?;
    }
    Ok(res.rows_affected > 0)
}

/// Replaces the secret in one statement: the current one becomes the previous one until
/// `grace_until`; false when the endpoint is not there.
pub async fn rotate_secret(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
    new_secret: &str,
    grace_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = webhook_endpoint::Entity::update_many()
        .col_expr(C::PreviousSecret, Expr::col(C::Secret))
        .col_expr(C::Secret, Expr::value(new_secret))
        .col_expr(C::PreviousSecretExpiresAt, Expr::value(grace_until))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.eq(id))
        .filter(C::TenantId.eq(tenant.uuid()))
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}

/// Deletes an endpoint with its deliveries (their attempts cascade); false when not found.
/// Run it in a transaction.
pub async fn delete(db: &impl ConnectionTrait, tenant: TenantId, id: Uuid) -> Result<bool, DbErr> {
    let res = webhook_endpoint::Entity::delete_many()
        .filter(C::Id.eq(id))
        .filter(C::TenantId.eq(tenant.uuid()))
        .exec(db)
        .await?;
    if res.rows_affected == 0 {
        return Ok(false);
    }
    entity::webhook_delivery::Entity::delete_many()
        .filter(entity::webhook_delivery::Column::EndpointId.eq(id))
        .filter(entity::webhook_delivery::Column::TenantId.eq(tenant.uuid()))
        .exec(db)
        .await?;
    Ok(true)
}

/// Locks endpoint rows in id order for the rest of the transaction (PostgreSQL; SQLite has
/// one writer anyway).
pub async fn lock(db: &impl ConnectionTrait, ids: &[Uuid]) -> Result<(), DbErr> {
    if ids.is_empty() || db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    webhook_endpoint::Entity::find()
        .select_only()
        .column(C::Id)
        .filter(C::Id.is_in(ids.iter().copied()))
        .order_by_asc(C::Id)
        .lock_exclusive()
        .into_tuple::<Uuid>()
        .all(db)
        .await?;
    Ok(())
}

/// Clears the failure run of endpoints that just answered well.
pub async fn mark_healthy(db: &impl ConnectionTrait, ids: &[Uuid]) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    webhook_endpoint::Entity::update_many()
        .col_expr(C::FailingSince, Expr::value(None::<DateTime<Utc>>))
        .filter(C::Id.is_in(ids.iter().copied()))
        .filter(C::FailingSince.is_not_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Starts a failure run (if none is running) for endpoints that just failed.
pub async fn mark_failing(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    webhook_endpoint::Entity::update_many()
        .col_expr(C::FailingSince, Expr::value(at))
        .filter(C::Id.is_in(ids.iter().copied()))
        .filter(C::FailingSince.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Disables an enabled endpoint; the changed row, or `None` if it was already disabled.
pub async fn disable(
    db: &impl ConnectionTrait,
    id: Uuid,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<Option<webhook_endpoint::Model>, DbErr> {
    let res = webhook_endpoint::Entity::update_many()
        .col_expr(C::Enabled, Expr::value(false))
        .col_expr(C::DisabledReason, Expr::value(reason))
        .col_expr(C::DisabledAt, Expr::value(at))
        .col_expr(C::UpdatedAt, Expr::value(at))
        .filter(C::Id.eq(id))
        .filter(C::Enabled.eq(true))
        .exec(db)
        .await?;
    if res.rows_affected == 0 {
        return Ok(None);
    }
    webhook_endpoint::Entity::find_by_id(id).one(db).await
}
