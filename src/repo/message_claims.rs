//! The dispatcher's claims on the outbox, across tenants (worker-only queries).
//!
//! Messages to one chat (session and recipient) go out in the order they were accepted. Only
//! the oldest queued message of a chat, its head, can be claimed; whoever claims it also
//! leases the chat's next due messages, in order, as one run. While a head waits for a retry
//! nothing behind it is claimable, so a later message never overtakes an earlier one, on one
//! instance or several.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::message::{self, Column as C};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    Statement, Value,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

/// Most messages of one chat leased in one claim (its head included).
pub const RUN_MAX: u64 = 32;

/// Claims the heads of up to `limit` chats with due messages for `lease_until`, each with
/// the chat's following due messages (up to [`RUN_MAX`] in all), counting an attempt on
/// each. Every run is one chat's messages, oldest first.
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
    let heads = claim_heads(db, now, lease_until, limit, instance).await?;
    if heads.is_empty() {
        return Ok(Vec::new());
    }
    let followers = lease_followers(db, &heads, now, lease_until).await?;
    let mut runs: HashMap<(Uuid, String), Vec<message::Model>> = HashMap::new();
    for m in heads.into_iter().chain(followers) {
        runs.entry((m.session_id, m.phone.clone()))
            .or_default()
            .push(m);
    }
    let mut runs: Vec<Vec<message::Model>> = runs.into_values().collect();
    for run in &mut runs {
        run.sort_by_key(|m| (m.created_at, m.id));
    }
    runs.sort_by_key(|run| run.first().map(|m| (m.created_at, m.id)));
    Ok(runs)
}

/// Leases due chat heads (no older queued message in their chat).
async fn claim_heads(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u64,
    instance: &str,
) -> Result<Vec<message::Model>, DbErr> {
    let backend = db.get_database_backend();
    let (p, lock) = match backend {
        DbBackend::Postgres => (["$1", "$2", "$3", "$4"], " FOR UPDATE OF m SKIP LOCKED"),
        _ => (["?1", "?2", "?3", "?4"], ""),
    };
    let [lease, at, lim, me] = p;
    let sql = format!(
        "UPDATE messages SET lease_until = {lease}, attempts = attempts + 1, updated_at = {at} \
         WHERE id IN (SELECT m.id FROM messages m \
           WHERE m.status = 'queued' AND m.next_attempt_at <= {at} \
             AND (m.lease_until IS NULL OR m.lease_until <= {at}) \
             AND NOT EXISTS (SELECT 1 FROM wa_sessions s WHERE s.id = m.session_id \
               AND s.owner_instance <> {me} AND s.owner_lease_until > {at}) \
             AND NOT EXISTS (SELECT 1 FROM messages o WHERE o.status = 'queued' \
               AND o.session_id = m.session_id AND o.phone = m.phone \
               AND (o.created_at, o.id) < (m.created_at, m.id)) \
           ORDER BY m.next_attempt_at, m.id LIMIT {lim}{lock}) \
         RETURNING *"
    );
    let values: Vec<Value> = vec![
        lease_until.into(),
        now.into(),
        (limit as i64).into(),
        instance.into(),
    ];
    message::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(backend, sql, values))
        .all(db)
        .await
}

#[derive(FromQueryResult)]
struct Follower {
    id: Uuid,
    session_id: Uuid,
    phone: String,
    created_at: DateTime<Utc>,
    next_attempt_at: Option<DateTime<Utc>>,
    lease_until: Option<DateTime<Utc>>,
}

/// Leases, for each claimed head, the unbroken sequence of due, unleased messages that follow
/// it in its chat.
async fn lease_followers(
    db: &impl ConnectionTrait,
    heads: &[message::Model],
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Vec<message::Model>, DbErr> {
    let window = following(db, heads).await?;
    // Per chat, in order: stop at the first message not due yet or leased by someone else.
    let mut chats: HashMap<(Uuid, String), Vec<&Follower>> = HashMap::new();
    for f in &window {
        chats
            .entry((f.session_id, f.phone.clone()))
            .or_default()
            .push(f);
    }
    let prefixes: HashMap<(Uuid, String), Vec<Uuid>> = chats
        .into_iter()
        .map(|(chat, mut run)| {
            run.sort_by_key(|f| (f.created_at, f.id));
            let ids = run
                .into_iter()
                .take_while(|f| {
                    f.next_attempt_at.is_some_and(|t| t <= now)
                        && f.lease_until.is_none_or(|t| t <= now)
                })
                .map(|f| f.id)
                .collect();
            (chat, ids)
        })
        .collect();
    let wanted: Vec<Uuid> = prefixes.values().flatten().copied().collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let leased = message::Entity::update_many()
        .col_expr(C::LeaseUntil, Expr::value(lease_until))
        .col_expr(C::Attempts, Expr::col(C::Attempts).add(1))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.is_in(wanted))
        .filter(C::Status.eq("queued"))
        .filter(
            sea_orm::Condition::any()
                .add(C::LeaseUntil.is_null())
                .add(C::LeaseUntil.lte(now)),
        )
        .exec_with_returning(db)
        .await?;
    // Should a message have been taken meanwhile (not expected: nobody else can claim behind
    // a head this dispatcher holds), the run ends before it; what was leased after the gap is
    // given back at once, uncounted.
    let mut by_chat: HashMap<(Uuid, String), Vec<message::Model>> = HashMap::new();
    for m in leased {
        by_chat
            .entry((m.session_id, m.phone.clone()))
            .or_default()
            .push(m);
    }
    let mut keep = Vec::new();
    let mut give_back = Vec::new();
    for (chat, mut got) in by_chat {
        got.sort_by_key(|m| (m.created_at, m.id));
        let mut got = got.into_iter().peekable();
        for id in prefixes.get(&chat).into_iter().flatten() {
            match got.peek() {
                Some(m) if m.id == *id => keep.extend(got.next()),
                _ => break,
            }
        }
        give_back.extend(got.map(|m| m.id));
    }
    if !give_back.is_empty() {
        message::Entity::update_many()
            .col_expr(C::LeaseUntil, Expr::value(None::<DateTime<Utc>>))
            .col_expr(C::Attempts, Expr::col(C::Attempts).sub(1))
            .filter(C::Id.is_in(give_back))
            .filter(C::LeaseUntil.eq(lease_until))
            .exec(db)
            .await?;
    }
    Ok(keep)
}

/// The next queued messages after each head in its chat, oldest first (at most
/// `RUN_MAX - 1` per chat).
async fn following(
    db: &impl ConnectionTrait,
    heads: &[message::Model],
) -> Result<Vec<Follower>, DbErr> {
    let backend = db.get_database_backend();
    const COLUMNS: &str = "f.id, f.session_id, f.phone, f.created_at, f.next_attempt_at, \
                           f.lease_until";
    let per_chat = (RUN_MAX - 1) as i64;
    match backend {
        DbBackend::Postgres => {
            // One statement: each head's window read through the chat index.
            let ids: Vec<String> = (0..heads.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT {COLUMNS} FROM messages h CROSS JOIN LATERAL \
                   (SELECT * FROM messages f WHERE f.status = 'queued' \
                     AND f.session_id = h.session_id AND f.phone = h.phone \
                     AND (f.created_at, f.id) > (h.created_at, h.id) \
                     ORDER BY f.created_at, f.id LIMIT $1) f \
                 WHERE h.id IN ({})",
                ids.join(", ")
            );
            let mut values: Vec<Value> = vec![per_chat.into()];
            values.extend(heads.iter().map(|h| Value::from(h.id)));
            Follower::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
                .all(db)
                .await
        }
        _ => {
            // SQLite is in-process: one small indexed query per head costs microseconds.
            let sql = format!(
                "SELECT {COLUMNS} FROM messages f WHERE f.status = 'queued' \
                   AND f.session_id = ?1 AND f.phone = ?2 AND (f.created_at, f.id) > (?3, ?4) \
                 ORDER BY f.created_at, f.id LIMIT ?5"
            );
            let mut out = Vec::new();
            for h in heads {
                let values: Vec<Value> = vec![
                    h.session_id.into(),
                    h.phone.clone().into(),
                    h.created_at.into(),
                    h.id.into(),
                    per_chat.into(),
                ];
                out.extend(
                    Follower::find_by_statement(Statement::from_sql_and_values(
                        backend, &sql, values,
                    ))
                    .all(db)
                    .await?,
                );
            }
            Ok(out)
        }
    }
}
