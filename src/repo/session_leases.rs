//! Worker-only queries across tenants: which instance owns which live session.
//!
//! An owner renews its lease on every heartbeat; a session whose lease lapsed (its owner was
//! killed, or released it at shutdown) may be claimed by any instance. A claim is a
//! compare-and-set on the session's current attempt, so of two instances racing for one
//! session exactly one wins; on PostgreSQL candidates are also picked with `SKIP LOCKED`, so
//! racing supervisors spread the work instead of queueing on the same rows.

use chrono::{DateTime, Utc};
use entity::wa_session::{self, Column as C};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{Expr, LockBehavior, LockType},
};
use uuid::Uuid;

use crate::domain::SessionStatus;

/// Statuses in which a session should hold a live connection.
pub const LIVE: [SessionStatus; 3] = [
    SessionStatus::Connecting,
    SessionStatus::QrPending,
    SessionStatus::Connected,
];

fn live() -> impl Iterator<Item = &'static str> {
    LIVE.iter().map(|s| s.as_str())
}

/// Nobody holds the session: its lease was released or ran out.
fn lapsed(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(C::OwnerLeaseUntil.is_null())
        .add(C::OwnerLeaseUntil.lt(now))
}

/// Renews the leases of every live session `instance` owns; returns them with the attempt
/// each is on, so the caller can stop connections it no longer owns.
pub async fn heartbeat(
    db: &impl ConnectionTrait,
    instance: &str,
    until: DateTime<Utc>,
) -> Result<Vec<(Uuid, Option<Uuid>)>, DbErr> {
    wa_session::Entity::update_many()
        .col_expr(C::OwnerLeaseUntil, Expr::value(until))
        .filter(C::OwnerInstance.eq(instance))
        .filter(C::Status.is_in(live()))
        .exec(db)
        .await?;
    wa_session::Entity::find()
        .select_only()
        .column(C::Id)
        .column(C::AttemptId)
        .filter(C::OwnerInstance.eq(instance))
        .filter(C::Status.is_in(live()))
        .into_tuple()
        .all(db)
        .await
}

/// Claims up to `limit` live sessions nobody holds (lease lapsed or released) for `instance`:
/// each moves to `connecting` under a new attempt. Returns the claimed rows as they were
/// before the claim (their status says whether a pairing is being resumed).
pub async fn claim_lapsed(
    db: &DatabaseConnection,
    instance: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<(wa_session::Model, Uuid)>, DbErr> {
    let txn = db.begin().await?;
    let mut q = wa_session::Entity::find()
        .filter(C::Status.is_in(live()))
        .filter(lapsed(now))
        .order_by_asc(C::UpdatedAt)
        .limit(limit);
    if txn.get_database_backend() == DbBackend::Postgres {
        q = q.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let candidates = q.all(&txn).await?;
    let mut claimed = Vec::with_capacity(candidates.len());
    for s in candidates {
        let attempt = Uuid::now_v7();
        let mut u = wa_session::Entity::update_many()
            .col_expr(C::OwnerInstance, Expr::value(instance))
            .col_expr(C::OwnerLeaseUntil, Expr::value(until))
            .col_expr(C::AttemptId, Expr::value(attempt))
            .col_expr(C::Status, Expr::value(SessionStatus::Connecting.as_str()))
            .col_expr(C::QrCode, Expr::value(None::<String>))
            .col_expr(C::QrExpiresAt, Expr::value(None::<DateTime<Utc>>))
            .col_expr(C::UpdatedAt, Expr::value(now))
            .filter(C::Id.eq(s.id))
            .filter(C::Status.eq(s.status.as_str()))
            .filter(lapsed(now));
        u = match s.attempt_id {
            Some(a) => u.filter(C::AttemptId.eq(a)),
            None => u.filter(C::AttemptId.is_null()),
        };
        if u.exec(&txn).await?.rows_affected == 1 {
            claimed.push((s, attempt));
        }
    }
    txn.commit().await?;
    Ok(claimed)
}

/// Gives up every session `instance` owns (shutdown): the leases end now, so another instance
/// takes them over at its next heartbeat. The sessions keep their status.
pub async fn release_all(db: &impl ConnectionTrait, instance: &str) -> Result<u64, DbErr> {
    let res = wa_session::Entity::update_many()
        .col_expr(C::OwnerInstance, Expr::value(None::<String>))
        .col_expr(C::OwnerLeaseUntil, Expr::value(None::<DateTime<Utc>>))
        .filter(C::OwnerInstance.eq(instance))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}
