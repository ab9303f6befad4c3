//! A chat's place in the outbox: holds, give-backs and releases that keep each chat's
//! schedule monotonic (a later message is never due before an earlier one), which is what
//! lets a claim check only the chat's head (see [`crate::repo::message_claims`]).

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, Statement, Value};
use uuid::Uuid;

use super::placeholders;
use crate::domain::ids::TenantId;

/// Where a message sits in its chat's queue.
#[derive(Debug, Clone)]
pub struct Place {
    /// The message.
    pub id: Uuid,
    /// Its session.
    pub session: Uuid,
    /// The recipient's digits.
    pub phone: String,
    /// When it was accepted (the chat's order, with the id).
    pub created_at: DateTime<Utc>,
}

/// Holds the chat's queued messages after `place` until at least `until`: called when the
/// message at `place` goes back to the queue until then. With `waiting` (the message waits
/// for its session), the held messages say so too, and are released with it.
pub async fn hold_chat(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    place: &Place,
    until: DateTime<Utc>,
    waiting: Option<&str>,
) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let [t, s, ph, c, id, due, w] = placeholders(backend);
    let sql = format!(
        "UPDATE messages SET next_attempt_at = {due}, error = COALESCE({w}, error) \
         WHERE status = 'queued' AND session_id = {s} AND phone = {ph} \
           AND (created_at, id) > ({c}, {id}) AND next_attempt_at < {due} AND tenant_id = {t}"
    );
    let values: Vec<Value> = vec![
        tenant.uuid().into(),
        place.session.into(),
        place.phone.clone().into(),
        place.created_at.into(),
        place.id.into(),
        until.into(),
        waiting.map(str::to_owned).into(),
    ];
    let res = db
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(res.rows_affected())
}

/// Gives back a message claimed as attempt `attempt` and not tried: unleased and uncounted,
/// due as before (so it keeps its place in its chat).
pub async fn give_back(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
    attempt: i32,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let [at, t, i, a] = placeholders(backend);
    let sql = format!(
        "UPDATE messages SET attempts = attempts - 1, lease_until = NULL, lease_owner = NULL, \
           updated_at = {at} \
         WHERE id = {i} AND tenant_id = {t} AND status = 'queued' AND attempts = {a}"
    );
    let values: Vec<Value> = vec![now.into(), tenant.uuid().into(), id.into(), attempt.into()];
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}

/// Makes due now the session's messages that wait for it to connect (their error, or their
/// chat head's, starts with `waiting`): the chats' heads and everything held behind them.
/// Returns the number made due.
pub async fn release_waiting(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    session: Uuid,
    waiting: &str,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let [at, t, s, w, n] = placeholders(backend);
    let sql = format!(
        "UPDATE messages SET next_attempt_at = {at} \
         WHERE tenant_id = {t} AND session_id = {s} AND status = 'queued' \
           AND next_attempt_at > {at} \
           AND (substr(error, 1, {n}) = {w} OR (SELECT substr(h.error, 1, {n}) FROM messages h WHERE h.status = 'queued' \
             AND h.session_id = messages.session_id AND h.phone = messages.phone \
             ORDER BY h.created_at, h.id LIMIT 1) = {w})"
    );
    let values: Vec<Value> = vec![
        now.into(),
        tenant.uuid().into(),
        session.into(),
        waiting.into(),
        (waiting.chars().count() as i32).into(),
    ];
    let res = db
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(res.rows_affected())
}
