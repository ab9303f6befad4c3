//! The webhook delivery queue and its attempt log.
//!
//! Rows are claimed with a lease (and a lease id that the result must present), so a worker
//! that died leaves its rows to be claimed again, and a late result of a lost lease changes
//! nothing. On PostgreSQL, rows another worker is claiming are skipped (`SKIP LOCKED`).

use chrono::{DateTime, Utc};
use entity::{
    webhook_attempt::{self, Column as A},
    webhook_delivery::{self, Column as C},
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, Value,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use crate::domain::ids::TenantId;

/// Delivery states.
pub const PENDING: &str = "pending";
/// Delivered (a 2xx answer).
pub const DELIVERED: &str = "delivered";
/// Given up.
pub const FAILED: &str = "failed";

/// Inserts new deliveries (one statement per ~12 KiB on PostgreSQL).
pub async fn insert_many(
    db: &impl ConnectionTrait,
    rows: &[webhook_delivery::Model],
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    for chunk in super::statement_chunks(backend, rows, 500, |m| 300 + m.payload.len()) {
        webhook_delivery::Entity::insert_many(
            chunk
                .iter()
                .cloned()
                .map(webhook_delivery::ActiveModel::from),
        )
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

fn marks(pg: bool, first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| if pg { format!("${i}") } else { format!("?{i}") })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Up to `limit` due, unclaimed deliveries of enabled endpoints (except `skip`), oldest
/// first, as `(delivery, endpoint)`: what the worker may claim. Nothing is locked.
pub async fn due(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
    skip: &[Uuid],
) -> Result<Vec<(Uuid, Uuid)>, DbErr> {
    let backend = db.get_database_backend();
    let pg = backend == DbBackend::Postgres;
    let mut values: Vec<Value> = vec![now.into(), (limit as i64).into()];
    let mut exclude = String::new();
    if !skip.is_empty() {
        exclude = format!(" AND d.endpoint_id NOT IN ({})", marks(pg, 3, skip.len()));
        values.extend(skip.iter().map(|id| Value::from(*id)));
    }
    let (p1, p2) = if pg { ("$1", "$2") } else { ("?1", "?2") };
    let sql = format!(
        "SELECT d.id, d.endpoint_id FROM webhook_deliveries d \
         JOIN webhook_endpoints e ON e.id = d.endpoint_id \
         WHERE d.status = 'pending' AND d.next_attempt_at <= {p1} \
           AND (d.lease_until IS NULL OR d.lease_until <= {p1}) AND e.enabled{exclude} \
         ORDER BY d.next_attempt_at LIMIT {p2}"
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get::<Uuid>("", "id")?,
                r.try_get::<Uuid>("", "endpoint_id")?,
            ))
        })
        .collect()
}

/// Claims those of `ids` that are still due and unclaimed, until `lease_until` under
/// `lease_id`. On PostgreSQL rows another worker is claiming are skipped (`SKIP LOCKED`).
pub async fn claim(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    lease_id: Uuid,
) -> Result<Vec<webhook_delivery::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let pg = backend == DbBackend::Postgres;
    let mut values: Vec<Value> = vec![lease_until.into(), lease_id.into(), now.into()];
    values.extend(ids.iter().map(|id| Value::from(*id)));
    let (p1, p2, p3) = if pg {
        ("$1", "$2", "$3")
    } else {
        ("?1", "?2", "?3")
    };
    let lock = if pg { " FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "UPDATE webhook_deliveries SET lease_until = {p1}, lease_id = {p2}, updated_at = {p3} \
         WHERE id IN (SELECT id FROM webhook_deliveries WHERE id IN ({list}) \
           AND status = 'pending' AND next_attempt_at <= {p3} \
           AND (lease_until IS NULL OR lease_until <= {p3}){lock}) \
         RETURNING *",
        list = marks(pg, 4, ids.len()),
    );
    webhook_delivery::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(backend, sql, values))
        .all(db)
        .await
}

/// Gives claimed rows back untouched (the worker had no room for them).
pub async fn release(db: &impl ConnectionTrait, lease_id: Uuid, ids: &[Uuid]) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    webhook_delivery::Entity::update_many()
        .col_expr(C::LeaseUntil, Expr::value(None::<DateTime<Utc>>))
        .col_expr(C::LeaseId, Expr::value(None::<Uuid>))
        .filter(C::Id.is_in(ids.iter().copied()))
        .filter(C::LeaseId.eq(lease_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The outcome of one try, as the worker records it.
#[derive(Clone)]
pub struct Outcome {
    /// New status (`pending` to retry, `delivered`, `failed`).
    pub status: &'static str,
    /// When to try again (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// HTTP status of the answer, if one came.
    pub http_status: Option<i32>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// When the try happened.
    pub at: DateTime<Utc>,
}

/// Records a try on a delivery still held under `lease_id`; false when the lease was lost
/// (another worker took the row over), in which case nothing changes.
pub async fn record(
    db: &impl ConnectionTrait,
    id: Uuid,
    lease_id: Uuid,
    o: Outcome,
) -> Result<bool, DbErr> {
    let delivered_at = (o.status == DELIVERED).then_some(o.at);
    let res = webhook_delivery::Entity::update_many()
        .col_expr(C::Status, Expr::value(o.status))
        .col_expr(C::Attempts, Expr::col(C::Attempts).add(1))
        .col_expr(C::NextAttemptAt, Expr::value(o.next_attempt_at))
        .col_expr(C::LeaseUntil, Expr::value(None::<DateTime<Utc>>))
        .col_expr(C::LeaseId, Expr::value(None::<Uuid>))
        .col_expr(C::LastHttpStatus, Expr::value(o.http_status))
        .col_expr(C::LastError, Expr::value(o.error))
        .col_expr(C::UpdatedAt, Expr::value(o.at))
        .col_expr(
            C::DeliveredAt,
            match delivered_at {
                Some(at) => Expr::value(at),
                None => Expr::col(C::DeliveredAt),
            },
        )
        .filter(C::Id.eq(id))
        .filter(C::LeaseId.eq(lease_id))
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}

/// Inserts attempt log rows.
pub async fn insert_attempts(
    db: &impl ConnectionTrait,
    rows: &[webhook_attempt::Model],
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let size = |a: &webhook_attempt::Model| {
        200 + a.response_body.as_ref().map_or(0, String::len)
            + a.error.as_ref().map_or(0, String::len)
    };
    for chunk in super::statement_chunks(backend, rows, 500, size) {
        webhook_attempt::Entity::insert_many(
            chunk
                .iter()
                .cloned()
                .map(webhook_attempt::ActiveModel::from),
        )
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// One delivery of the tenant's endpoint.
pub async fn get(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    endpoint: Uuid,
    id: Uuid,
) -> Result<Option<webhook_delivery::Model>, DbErr> {
    webhook_delivery::Entity::find_by_id(id)
        .filter(C::TenantId.eq(tenant.uuid()))
        .filter(C::EndpointId.eq(endpoint))
        .one(db)
        .await
}

/// A page of an endpoint's deliveries, newest first, and the total.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    endpoint: Uuid,
    status: Option<&str>,
    offset: u64,
    limit: u64,
) -> Result<(Vec<webhook_delivery::Model>, u64), DbErr> {
    let mut q = webhook_delivery::Entity::find()
        .filter(C::TenantId.eq(tenant.uuid()))
        .filter(C::EndpointId.eq(endpoint));
    if let Some(s) = status {
        q = q.filter(C::Status.eq(s));
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

/// The attempts of some deliveries of the tenant, oldest first.
pub async fn attempts(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    deliveries: &[Uuid],
) -> Result<Vec<webhook_attempt::Model>, DbErr> {
    if deliveries.is_empty() {
        return Ok(Vec::new());
    }
    webhook_attempt::Entity::find()
        .filter(A::TenantId.eq(tenant.uuid()))
        .filter(A::DeliveryId.is_in(deliveries.iter().copied()))
        .order_by_asc(A::AttemptedAt)
        .order_by_asc(A::Id)
        .all(db)
        .await
}

/// Queues a delivery for one more try now (a manual retry); false when it is not there or
/// a try of it is in progress.
pub async fn requeue(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = webhook_delivery::Entity::update_many()
        .col_expr(C::Status, Expr::value(PENDING))
        .col_expr(C::NextAttemptAt, Expr::value(now))
        .col_expr(C::LeaseUntil, Expr::value(None::<DateTime<Utc>>))
        .col_expr(C::LeaseId, Expr::value(None::<Uuid>))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.eq(id))
        .filter(C::TenantId.eq(tenant.uuid()))
        .filter(
            sea_orm::Condition::any()
                .add(C::LeaseUntil.is_null())
                .add(C::LeaseUntil.lte(now)),
        )
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}
