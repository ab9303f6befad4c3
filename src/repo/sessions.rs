//! WhatsApp sessions. Status changes are compare-and-set (`WHERE status IN (…)`), so two
//! requests or two instances can never both win a transition.

use chrono::{DateTime, Utc};
use entity::wa_session;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, sea_query::Expr,
};
use uuid::Uuid;

use crate::domain::ids::TenantId;

/// Fields of a new session.
pub struct NewSession<'a> {
    /// Display name.
    pub name: &'a str,
    /// Provider kind name.
    pub provider: &'a str,
    /// Initial status name.
    pub status: &'a str,
    /// Provider settings (JSON, without secrets).
    pub settings: Option<&'a str>,
}

/// Inserts a session.
pub async fn insert(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    s: NewSession<'_>,
    now: DateTime<Utc>,
) -> Result<wa_session::Model, DbErr> {
    wa_session::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.uuid()),
        name: Set(s.name.to_owned()),
        provider: Set(s.provider.to_owned()),
        status: Set(s.status.to_owned()),
        phone_number: Set(None),
        credentials: Set(None),
        attempt_id: Set(None),
        qr_code: Set(None),
        qr_expires_at: Set(None),
        last_error: Set(None),
        connected_at: Set(None),
        owner_instance: Set(None),
        owner_lease_until: Set(None),
        reconnect_attempt: Set(0),
        settings: Set(s.settings.map(str::to_owned)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

/// One session of the tenant.
pub async fn get(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<wa_session::Model>, DbErr> {
    wa_session::Entity::find_by_id(id)
        .filter(wa_session::Column::TenantId.eq(tenant.uuid()))
        .one(db)
        .await
}

/// Which of `ids` are sessions of the tenant.
pub async fn existing_ids(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, DbErr> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        found.extend(
            wa_session::Entity::find()
                .select_only()
                .column(wa_session::Column::Id)
                .filter(wa_session::Column::TenantId.eq(tenant.uuid()))
                .filter(wa_session::Column::Id.is_in(chunk.iter().copied()))
                .into_tuple::<Uuid>()
                .all(db)
                .await?,
        );
    }
    Ok(found)
}

/// A page of the tenant's sessions, oldest first (stable under inserts), and the total.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    offset: u64,
    limit: u64,
) -> Result<(Vec<wa_session::Model>, u64), DbErr> {
    let base = wa_session::Entity::find().filter(wa_session::Column::TenantId.eq(tenant.uuid()));
    let total = base.clone().count(db).await?;
    let rows = base
        .order_by_asc(wa_session::Column::CreatedAt)
        .order_by_asc(wa_session::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await?;
    Ok((rows, total))
}

/// Renames a session; false when the tenant has no such session.
pub async fn rename(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
    name: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = wa_session::Entity::update_many()
        .col_expr(wa_session::Column::Name, Expr::value(name))
        .col_expr(wa_session::Column::UpdatedAt, Expr::value(now))
        .filter(wa_session::Column::Id.eq(id))
        .filter(wa_session::Column::TenantId.eq(tenant.uuid()))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Deletes a session; false when the tenant has no such session.
pub async fn delete(db: &impl ConnectionTrait, tenant: TenantId, id: Uuid) -> Result<bool, DbErr> {
    let res = wa_session::Entity::delete_many()
        .filter(wa_session::Column::Id.eq(id))
        .filter(wa_session::Column::TenantId.eq(tenant.uuid()))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Columns a transition may change (`None` leaves a column alone).
#[derive(Default)]
pub struct Change {
    /// New status name.
    pub status: Option<&'static str>,
    /// Paired number.
    pub phone_number: Option<Option<String>>,
    /// Pairing credentials (JSON).
    pub credentials: Option<Option<String>>,
    /// The connection attempt that owns the session from now on.
    pub attempt_id: Option<Option<Uuid>>,
    /// Current QR code and its expiry.
    pub qr: Option<Option<(String, DateTime<Utc>)>>,
    /// Last error or disconnect reason.
    pub last_error: Option<Option<String>>,
    /// When the session came online.
    pub connected_at: Option<Option<DateTime<Utc>>>,
    /// The owning instance and its lease (`Some(None)` releases the session).
    pub owner: Option<Option<(String, DateTime<Utc>)>>,
    /// Reconnect attempts of the current outage.
    pub reconnect_attempt: Option<i32>,
}

/// Which connection attempt a transition expects to own the session.
#[derive(Clone, Copy, Debug)]
pub enum Owner {
    /// Any (or none).
    Any,
    /// Exactly this attempt (`None`: no attempt).
    Attempt(Option<Uuid>),
}

/// Applies `change` only if the session is in one of `from` and owned by `owner`; true when
/// it did.
pub async fn transition(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
    from: &[&str],
    owner: Owner,
    change: Change,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    use wa_session::Column as C;
    let mut q = wa_session::Entity::update_many().col_expr(C::UpdatedAt, Expr::value(now));
    if let Some(s) = change.status {
        q = q.col_expr(C::Status, Expr::value(s));
    }
    if let Some(v) = change.phone_number {
        q = q.col_expr(C::PhoneNumber, Expr::value(v));
    }
    if let Some(v) = change.credentials {
        q = q.col_expr(C::Credentials, Expr::value(v));
    }
    if let Some(v) = change.attempt_id {
        q = q.col_expr(C::AttemptId, Expr::value(v));
    }
    if let Some(v) = change.qr {
        let (code, exp) = match v {
            Some((c, e)) => (Some(c), Some(e)),
            None => (None, None),
        };
        q = q
            .col_expr(C::QrCode, Expr::value(code))
            .col_expr(C::QrExpiresAt, Expr::value(exp));
    }
    if let Some(v) = change.last_error {
        q = q.col_expr(C::LastError, Expr::value(v));
    }
    if let Some(v) = change.connected_at {
        q = q.col_expr(C::ConnectedAt, Expr::value(v));
    }
    if let Some(v) = change.owner {
        let (instance, until) = match v {
            Some((i, u)) => (Some(i), Some(u)),
            None => (None, None),
        };
        q = q
            .col_expr(C::OwnerInstance, Expr::value(instance))
            .col_expr(C::OwnerLeaseUntil, Expr::value(until));
    }
    if let Some(v) = change.reconnect_attempt {
        q = q.col_expr(C::ReconnectAttempt, Expr::value(v));
    }
    q = q
        .filter(C::Id.eq(id))
        .filter(C::TenantId.eq(tenant.uuid()))
        .filter(C::Status.is_in(from.iter().copied()));
    q = match owner {
        Owner::Any => q,
        Owner::Attempt(Some(a)) => q.filter(C::AttemptId.eq(a)),
        Owner::Attempt(None) => q.filter(C::AttemptId.is_null()),
    };
    let res = q.exec(db).await?;
    Ok(res.rows_affected == 1)
}
