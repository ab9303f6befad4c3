//! Messages: the outbox (outbound rows a dispatcher claims) and the inbound log.
//!
//! Status changes are compare-and-set on the statuses a change may come from, so receipts
//! arriving out of order can never move a message backwards.

use chrono::{DateTime, Utc};
use entity::message::{self, Column as C};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{CaseStatement, Expr, Func, SimpleExpr},
};
use uuid::Uuid;

use crate::domain::ids::TenantId;

/// Inserts a message row built by the service.
pub async fn insert(db: &impl ConnectionTrait, m: message::Model) -> Result<message::Model, DbErr> {
    let am: message::ActiveModel = m.clone().into();
    message::Entity::insert(am)
        .exec_without_returning(db)
        .await?;
    Ok(m)
}

/// One message of the tenant.
pub async fn get(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<message::Model>, DbErr> {
    message::Entity::find_by_id(id)
        .filter(C::TenantId.eq(tenant.uuid()))
        .one(db)
        .await
}

/// The message that used an idempotency key, if any.
pub async fn find_by_idempotency_key(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    key: &str,
) -> Result<Option<message::Model>, DbErr> {
    message::Entity::find()
        .filter(C::TenantId.eq(tenant.uuid()))
        .filter(C::IdempotencyKey.eq(key))
        .one(db)
        .await
}

/// Frees an expired idempotency key so it can name a new message.
pub async fn release_idempotency_key(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
) -> Result<(), DbErr> {
    message::Entity::update_many()
        .col_expr(C::IdempotencyKey, Expr::value(None::<String>))
        .filter(C::Id.eq(id))
        .filter(C::TenantId.eq(tenant.uuid()))
        .exec(db)
        .await?;
    Ok(())
}

/// Validated list filters.
#[derive(Default)]
pub struct ListFilter {
    /// Only this session.
    pub session_id: Option<Uuid>,
    /// `outbound` or `inbound`.
    pub direction: Option<&'static str>,
    /// One status name.
    pub status: Option<&'static str>,
    /// The other party's digits.
    pub phone: Option<String>,
}

/// A page of the tenant's messages, newest first, and the total.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    f: ListFilter,
    offset: u64,
    limit: u64,
) -> Result<(Vec<message::Model>, u64), DbErr> {
    let mut q = message::Entity::find().filter(C::TenantId.eq(tenant.uuid()));
    if let Some(s) = f.session_id {
        q = q.filter(C::SessionId.eq(s));
    }
    if let Some(d) = f.direction {
        q = q.filter(C::Direction.eq(d));
    }
    if let Some(s) = f.status {
        q = q.filter(C::Status.eq(s));
    }
    if let Some(p) = f.phone {
        q = q.filter(C::Phone.eq(p));
    }
    let total = q.clone().count(db).await?;
    let rows = q
        .order_by_desc(C::CreatedAt)
        .order_by_desc(C::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await?;
    Ok((rows, total))
}

fn coalesce(col: C, at: DateTime<Utc>) -> SimpleExpr {
    Func::coalesce([Expr::col(col), Expr::value(at)]).into()
}

/// Records that the provider accepted a claimed message: `sent` (unless a receipt already
/// moved it further), with the provider's id; the claim is released.
pub async fn mark_sent(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
    provider_message_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<message::Model>, DbErr> {
    let status: SimpleExpr = CaseStatement::new()
        .case(C::Status.eq("queued"), Expr::value("sent"))
        .finally(Expr::col(C::Status))
        .into();
    let rows = message::Entity::update_many()
        .col_expr(C::Status, status)
        .col_expr(C::ProviderMessageId, Expr::value(provider_message_id))
        .col_expr(C::SentAt, coalesce(C::SentAt, now))
        .col_expr(C::LeaseUntil, Expr::value(None::<DateTime<Utc>>))
        .col_expr(C::Error, Expr::value(None::<String>))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.eq(id))
        .filter(C::TenantId.eq(tenant.uuid()))
        .filter(C::Status.is_in(["queued", "sent", "delivered", "read", "played"]))
        .exec_with_returning(db)
        .await?;
    Ok(rows.into_iter().next())
}

/// Puts a message claimed as attempt `attempt` back in the queue until `next_at`, noting why
/// the attempt failed (`count: false` gives the attempt back, for sessions still
/// reconnecting). A dispatcher whose claim was taken over (the attempt count moved on) changes
/// nothing. True when the message was put back.
#[allow(clippy::too_many_arguments)]
pub async fn reschedule(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
    attempt: i32,
    count: bool,
    error: Option<&str>,
    next_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let attempts = if count { attempt } else { attempt - 1 };
    let mut q = message::Entity::update_many()
        .col_expr(C::Attempts, Expr::value(attempts))
        .col_expr(C::NextAttemptAt, Expr::value(next_at))
        .col_expr(C::LeaseUntil, Expr::value(None::<DateTime<Utc>>))
        .col_expr(C::UpdatedAt, Expr::value(now));
    if let Some(e) = error {
        q = q.col_expr(C::Error, Expr::value(e));
    }
    let res = q
        .filter(C::Id.eq(id))
        .filter(C::TenantId.eq(tenant.uuid()))
        .filter(C::Status.eq("queued"))
        .filter(C::Attempts.eq(attempt))
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}

/// Fails a message claimed as attempt `attempt` (unless its claim was taken over).
pub async fn fail_claimed(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
    attempt: i32,
    error: &str,
    now: DateTime<Utc>,
) -> Result<Option<message::Model>, DbErr> {
    let rows = message::Entity::update_many()
        .col_expr(C::Status, Expr::value("failed"))
        .col_expr(C::Error, Expr::value(error))
        .col_expr(C::FailedAt, Expr::value(now))
        .col_expr(C::LeaseUntil, Expr::value(None::<DateTime<Utc>>))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.eq(id))
        .filter(C::TenantId.eq(tenant.uuid()))
        .filter(C::Status.eq("queued"))
        .filter(C::Attempts.eq(attempt))
        .exec_with_returning(db)
        .await?;
    Ok(rows.into_iter().next())
}

/// Moves a message to `status` if it may come from its current status (`from`), stamping
/// the receipt times (a `read` also implies `delivered` and `sent`) and the provider's id if
/// it is not known yet. The changed row, or
/// `None` when the message was already further along (or is another tenant's).
#[allow(clippy::too_many_arguments)]
pub async fn advance(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
    status: &'static str,
    from: &[&'static str],
    error: Option<&str>,
    provider_message_id: Option<&str>,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<message::Model>, DbErr> {
    let mut q = message::Entity::update_many()
        .col_expr(C::Status, Expr::value(status))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .col_expr(C::LeaseUntil, Expr::value(None::<DateTime<Utc>>));
    let stamps: &[C] = match status {
        "delivered" => &[C::SentAt, C::DeliveredAt],
        "read" => &[C::SentAt, C::DeliveredAt, C::ReadAt],
        "played" => &[C::SentAt, C::DeliveredAt, C::ReadAt, C::PlayedAt],
        "failed" => &[C::FailedAt],
        _ => &[],
    };
    for c in stamps {
        q = q.col_expr(*c, coalesce(*c, at));
    }
    if let Some(e) = error {
        q = q.col_expr(C::Error, Expr::value(e));
    }
    if let Some(p) = provider_message_id {
        // A receipt can beat the dispatcher's own record of the send.
        let keep: SimpleExpr =
            Func::coalesce([Expr::col(C::ProviderMessageId), Expr::value(p)]).into();
        q = q.col_expr(C::ProviderMessageId, keep);
    }
    let rows = q
        .filter(C::Id.eq(id))
        .filter(C::TenantId.eq(tenant.uuid()))
        .filter(C::Direction.eq("outbound"))
        .filter(C::Status.is_in(from.iter().copied()))
        .exec_with_returning(db)
        .await?;
    Ok(rows.into_iter().next())
}

/// The id of a session's message with this provider id and direction.
pub async fn find_by_provider_id(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    session: Uuid,
    direction: &str,
    provider_message_id: &str,
) -> Result<Option<Uuid>, DbErr> {
    message::Entity::find()
        .select_only()
        .column(C::Id)
        .filter(C::TenantId.eq(tenant.uuid()))
        .filter(C::SessionId.eq(session))
        .filter(C::Direction.eq(direction))
        .filter(C::ProviderMessageId.eq(provider_message_id))
        .into_tuple::<Uuid>()
        .one(db)
        .await
}

/// Inserts several message rows: one statement on SQLite, statements of about 12 KiB on
/// PostgreSQL (run it in a transaction for one commit).
pub async fn insert_many(
    db: &impl ConnectionTrait,
    rows: Vec<message::Model>,
) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let size = |m: &message::Model| {
        300 + m.body.as_ref().map_or(0, String::len)
            + m.location.as_ref().map_or(0, String::len)
            + m.media_filename.as_ref().map_or(0, String::len)
            + m.idempotency_key.as_ref().map_or(0, String::len)
    };
    for chunk in super::statement_chunks(backend, &rows, rows.len(), size) {
        message::Entity::insert_many(chunk.iter().cloned().map(message::ActiveModel::from))
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}
