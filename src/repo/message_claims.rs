//! The dispatcher's claims on the outbox, across tenants (worker-only queries).
//!
//! Messages to one chat (session and recipient) go out in the order they were accepted. The
//! outbox keeps each chat's schedule monotonic: when a message goes back to the queue until
//! some time (a retry, or a wait for its session), the chat's later messages are held until
//! then too ([`crate::repo::chat_queue::hold_chat`]). A chat's hold is therefore always at its
//! oldest queued message, its head, and a due message can be claimed while
//! - its chat's head is not scheduled after it (one index seek), and
//! - no older message of its chat is leased by another instance (in flight there, or
//!   abandoned by a dead instance until its lease runs out); a partial index holds only
//!   leased queued rows, so this reads a handful of rows at most.
//!
//! Older messages leased by the claiming instance itself do not hold a message back: that
//! instance's dispatcher sends a chat's messages one after another, in claim order, and gives
//! back the rest of a chat's claims when one of them goes back to the queue. So a later
//! message never overtakes an earlier one, on one instance or several.
//!
//! A claim looks at a bounded window of the earliest due messages, so its cost does not grow
//! with the backlog nor depend on the planner's statistics. Messages that should be held but
//! are not (accepted for a chat whose head was put on hold in the same moment) can fill that
//! window; [`lift_held_back`] moves them behind their chat's hold.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::message;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, Statement, Value};
use uuid::Uuid;

use super::placeholders;

/// The due time of the head (oldest queued message) of row `row`'s chat: one index seek.
fn head_due(row: &str) -> String {
    format!(
        "(SELECT h.next_attempt_at FROM messages h WHERE h.status = 'queued' \
         AND h.session_id = {row}.session_id AND h.phone = {row}.phone \
         ORDER BY h.created_at, h.id LIMIT 1)"
    )
}

/// Claims up to `limit` due outbound messages for `lease_until` on behalf of `instance`,
/// counting an attempt on each, and returns them by chat: one run per chat, oldest first.
/// Only the `window` earliest due messages are considered.
///
/// On PostgreSQL rows locked by another dispatcher are skipped (`FOR UPDATE SKIP LOCKED`),
/// so concurrent dispatchers never claim the same message; a claim whose lease ran out (its
/// dispatcher died) is claimed again. Only the instance `instance` may send through a session
/// it owns: messages of a session another instance holds under a live lease are left to that
/// instance (messages of sessions nobody holds are claimed, to wait for their session or
/// fail).
pub async fn claim_due(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u64,
    window: u64,
    instance: &str,
) -> Result<Vec<Vec<message::Model>>, DbErr> {
    let backend = db.get_database_backend();
    // On PostgreSQL `= ANY(ARRAY(…))` looks the picked rows up by key; `IN (…)` may be
    // planned as a scan of the whole table joined to them.
    let (lock, (open, close)) = match backend {
        DbBackend::Postgres => (" FOR UPDATE OF m SKIP LOCKED", ("= ANY(ARRAY(", "))")),
        _ => ("", ("IN (", ")")),
    };
    let [lease, at, lim, me, win] = placeholders(backend);
    let head = head_due("c");
    let sql = format!(
        "UPDATE messages SET lease_until = {lease}, lease_owner = {me}, \
           attempts = attempts + 1, updated_at = {at} \
         WHERE id {open}SELECT c.id FROM (SELECT m.id, m.session_id, m.phone, m.created_at, \
             m.next_attempt_at FROM messages m \
           WHERE m.status = 'queued' AND m.next_attempt_at <= {at} \
             AND (m.lease_until IS NULL OR m.lease_until <= {at}) \
             AND NOT EXISTS (SELECT 1 FROM wa_sessions s WHERE s.id = m.session_id \
               AND s.owner_instance <> {me} AND s.owner_lease_until > {at}) \
           ORDER BY m.next_attempt_at, m.id LIMIT {win}{lock}) c \
           WHERE {head} <= c.next_attempt_at \
             AND NOT EXISTS (SELECT 1 FROM messages o WHERE o.status = 'queued' \
               AND o.lease_until IS NOT NULL \
               AND o.session_id = c.session_id AND o.phone = c.phone \
               AND (o.created_at, o.id) < (c.created_at, c.id) \
               AND o.lease_until > {at} AND o.lease_owner <> {me}) \
           ORDER BY c.next_attempt_at, c.id LIMIT {lim}{close} \
         RETURNING *"
    );
    let values: Vec<Value> = vec![
        lease_until.into(),
        now.into(),
        (limit as i64).into(),
        instance.into(),
        (window as i64).into(),
    ];
    let rows = message::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(backend, sql, values))
        .all(db)
        .await?;
    Ok(by_chat(rows))
}

/// Moves due messages among the `window` earliest that their chat's head is scheduled after
/// (accepted while the head was being put on hold) to the head's due time, so they do not
/// crowd the claim window while they wait. Returns how many moved.
pub async fn lift_held_back(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    window: u64,
) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let [at, win] = placeholders(backend);
    let head = head_due("messages");
    let sql = format!(
        "UPDATE messages SET next_attempt_at = {head} \
         WHERE id IN (SELECT m.id FROM messages m \
           WHERE m.status = 'queued' AND m.next_attempt_at <= {at} \
             AND (m.lease_until IS NULL OR m.lease_until <= {at}) \
           ORDER BY m.next_attempt_at, m.id LIMIT {win}) \
         AND status = 'queued' AND {head} > next_attempt_at"
    );
    let values: Vec<Value> = vec![now.into(), (window as i64).into()];
    let res = db
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(res.rows_affected())
}

/// Groups claimed messages into one run per chat, each oldest first; runs by their first
/// message.
fn by_chat(rows: Vec<message::Model>) -> Vec<Vec<message::Model>> {
    let mut runs: HashMap<(Uuid, String), Vec<message::Model>> = HashMap::new();
    for m in rows {
        runs.entry((m.session_id, m.phone.clone()))
            .or_default()
            .push(m);
    }
    let mut runs: Vec<Vec<message::Model>> = runs.into_values().collect();
    for run in &mut runs {
        run.sort_by_key(|m| (m.created_at, m.id));
    }
    runs.sort_by_key(|run| run.first().map(|m| (m.created_at, m.id)));
    runs
}
