//! The dispatcher's claims on the outbox, across tenants (worker-only queries).
//!
//! Messages to one chat (session and recipient) go out in the order they were accepted. A
//! queued message can be claimed only while no older queued message of its chat is
//! - scheduled after it (waiting for a retry, or for its session to reconnect), or
//! - leased by another instance (in flight there, or abandoned by a dead instance until its
//!   lease runs out).
//!
//! Older messages leased by the claiming instance itself do not hold a message back: that
//! instance's dispatcher sends a chat's messages one after another, in claim order, and gives
//! back the rest of a chat's claims when one of them goes back to the queue. So a later
//! message never overtakes an earlier one, on one instance or several, while claims stay as
//! cheap as a plain scan of due messages (the check only reads the chat's older queued rows,
//! through a partial index).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::message;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, Statement, Value};
use uuid::Uuid;

/// Claims up to `limit` due outbound messages for `lease_until` on behalf of `instance`,
/// counting an attempt on each, and returns them by chat: one run per chat, oldest first.
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
    instance: &str,
) -> Result<Vec<Vec<message::Model>>, DbErr> {
    let backend = db.get_database_backend();
    let (p, lock) = match backend {
        DbBackend::Postgres => (["$1", "$2", "$3", "$4"], " FOR UPDATE OF m SKIP LOCKED"),
        _ => (["?1", "?2", "?3", "?4"], ""),
    };
    let [lease, at, lim, me] = p;
    let sql = format!(
        "UPDATE messages SET lease_until = {lease}, lease_owner = {me}, \
           attempts = attempts + 1, updated_at = {at} \
         WHERE id IN (SELECT m.id FROM messages m \
           WHERE m.status = 'queued' AND m.next_attempt_at <= {at} \
             AND (m.lease_until IS NULL OR m.lease_until <= {at}) \
             AND NOT EXISTS (SELECT 1 FROM wa_sessions s WHERE s.id = m.session_id \
               AND s.owner_instance <> {me} AND s.owner_lease_until > {at}) \
             AND NOT EXISTS (SELECT 1 FROM messages o WHERE o.status = 'queued' \
               AND o.session_id = m.session_id AND o.phone = m.phone \
               AND (o.created_at, o.id) < (m.created_at, m.id) \
               AND (o.next_attempt_at > m.next_attempt_at \
                 OR (o.lease_until > {at} AND o.lease_owner <> {me}))) \
           ORDER BY m.next_attempt_at, m.id LIMIT {lim}{lock}) \
         RETURNING *"
    );
    let values: Vec<Value> = vec![
        lease_until.into(),
        now.into(),
        (limit as i64).into(),
        instance.into(),
    ];
    let rows = message::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(backend, sql, values))
        .all(db)
        .await?;
    Ok(by_chat(rows))
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
