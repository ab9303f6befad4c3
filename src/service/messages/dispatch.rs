//! The outbox dispatcher: claims due `queued` messages, hands them to their session's
//! provider, and records `sent`, a retry with exponential backoff, or `failed`.
//!
//! Claims are leases: a dispatcher that dies mid-send loses its claim when the lease runs
//! out and another dispatcher sends the message again, under the same message id, which
//! providers treat as an idempotency key. Messages to one chat are sent in order: only a
//! chat's oldest queued message can be claimed, with the due messages behind it as one run.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::{
    MessageStatus,
    chats::{Chats, Unblocker},
    publish,
    send::{Record, after},
};
use crate::{
    domain::{SessionStatus, ids::TenantId},
    repo,
    state::AppState,
};

pub use super::send::{WAITING_FOR_SESSION, backoff_delay};

/// The dispatcher; it stops claiming when `shutdown` is cancelled.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let cfg = state.cfg.messaging.dispatch.clone();
    let permits = Arc::new(Semaphore::new(cfg.concurrency));
    let (record_tx, record_rx) = mpsc::channel(1024);
    let chats = Chats::new(record_tx, shutdown.clone());
    let recorder = tokio::spawn(record_results(state.clone(), record_rx, chats.unblocker()));
    claim_loop(&state, &shutdown, &permits, &chats).await;
    // Drain: the chat workers finish the send they are in and give the rest back; once the
    // last has gone, the recorder has written every result.
    drop(chats);
    let _ = recorder.await;
}

async fn claim_loop(
    state: &AppState,
    shutdown: &CancellationToken,
    permits: &Arc<Semaphore>,
    chats: &Chats,
) {
    let cfg = state.cfg.messaging.dispatch.clone();
    let mut backoff = cfg.poll_interval;
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        // Claim no more than can be worked on now, so claims don't sit out their lease.
        let free = permits.available_permits() as u64;
        if free == 0 {
            tokio::select! {
                () = shutdown.cancelled() => return,
                p = permits.clone().acquire_owned() => drop(p),
            }
            continue;
        }
        chats.reopen_committed();
        let now = state.clock.now();
        let limit = free.min(cfg.batch);
        // Room for a few due messages that wait behind their chat's head; a lift makes more
        // when a claim finds nothing.
        let window = limit.saturating_mul(2).saturating_add(32);
        let claimed = match repo::message_claims::claim_due(
            &state.db,
            now,
            after(now, cfg.lease),
            limit,
            window,
            &state.cfg.runtime.instance_id,
        )
        .await
        {
            Ok(rows) => {
                backoff = cfg.poll_interval;
                // Nothing claimable may mean the window is crowded by messages that wait for
                // their chat's head: move them behind it, then claim again at once.
                if rows.is_empty() && lift(state, cfg.batch.saturating_mul(LIFT_WINDOW)).await {
                    continue;
                }
                rows
            }
            Err(e) => {
                tracing::error!(error = %e, "claiming queued messages failed");
                backoff = (backoff * 2).min(Duration::from_secs(30));
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                continue;
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = state.outbox.notified() => {}
                () = tokio::time::sleep(cfg.poll_interval) => {}
            }
            continue;
        }
        // One permit per message, held until its result is handed to the recorder: claimed
        // messages waiting in their chat's queue count too, so claims never outrun sends (a
        // claim that waits too long would have to be given back).
        for run in claimed {
            let mut held = Vec::with_capacity(run.len());
            for _ in &run {
                let permit = match permits.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => match permits.clone().acquire_owned().await {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                };
                held.push(permit);
            }
            chats.push(state, run, held).await;
        }
    }
}

/// How many times the largest claim the lift's window of due messages holds.
const LIFT_WINDOW: u64 = 4;

/// Moves held-back messages out of the claim window; true when any moved.
async fn lift(state: &AppState, window: u64) -> bool {
    let now = state.clock.now();
    match repo::message_claims::lift_held_back(&state.db, now, window).await {
        Ok(n) => n > 0,
        Err(e) => {
            tracing::warn!(error = %e, "moving held-back messages failed");
            false
        }
    }
}

async fn record_one(
    db: &impl sea_orm::ConnectionTrait,
    r: &Record,
    now: DateTime<Utc>,
) -> Result<Option<entity::message::Model>, sea_orm::DbErr> {
    match r {
        Record::Sent(tenant, id, provider_id) => {
            let row = repo::messages::mark_sent(db, *tenant, *id, provider_id, now)
                .await?
                .filter(|r| r.status == MessageStatus::Sent.as_str());
            if let Some(m) = &row {
                // The contact's lastMessageAt and conversationCount, in the same commit.
                let phone = format!("+{}", m.phone);
                repo::contacts::touch_conversation(db, *tenant, &phone, now).await?;
            }
            Ok(row)
        }
        Record::Retry(q) | Record::Wait(q) => {
            let p = &q.place;
            let waiting = matches!(r, Record::Wait(_)).then_some(WAITING_FOR_SESSION);
            let back = repo::messages::reschedule(
                db,
                q.tenant,
                p.id,
                q.attempt,
                q.counted,
                q.error.as_deref(),
                q.due,
                now,
            )
            .await?;
            if back {
                // Its chat's later messages wait for it (a claim reads only the chat's head).
                repo::chat_queue::hold_chat(db, q.tenant, p, q.due, waiting).await?;
            }
            Ok(None)
        }
        Record::Fail(tenant, id, attempt, reason) => {
            repo::messages::fail_claimed(db, *tenant, *id, *attempt, reason, now).await
        }
        Record::GiveBack(tenant, id, attempt) => {
            repo::chat_queue::give_back(db, *tenant, *id, *attempt, now)
                .await
                .map(|()| None)
        }
        Record::Unblock(_) => Ok(None),
    }
}

/// After messages were put back to wait for their session: a session that connected while
/// they were being written has already released its waiting messages, without these. Read
/// after the write, its status tells: connected means release them again now.
async fn recheck_waiting(state: &AppState, records: &[Record]) {
    let mut sessions: Vec<(TenantId, uuid::Uuid)> = records
        .iter()
        .filter_map(|r| match r {
            Record::Wait(q) => Some((q.tenant, q.place.session)),
            _ => None,
        })
        .collect();
    sessions.sort_unstable_by_key(|(t, s)| (t.uuid(), *s));
    sessions.dedup();
    for (tenant, session) in sessions {
        let connected = match repo::sessions::get(&state.db, tenant, session).await {
            Ok(s) => s.is_some_and(|s| s.status == SessionStatus::Connected.as_str()),
            Err(e) => {
                tracing::warn!(%session, error = %e, "could not re-read a session after deferring its sends");
                continue;
            }
        };
        if !connected {
            continue;
        }
        let now = state.clock.now();
        match repo::chat_queue::release_waiting(
            &state.db,
            tenant,
            session,
            WAITING_FOR_SESSION,
            now,
        )
        .await
        {
            Ok(n) if n > 0 => state.outbox.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::warn!(%session, error = %e, "could not release waiting messages"),
        }
    }
}

/// Most send results recorded in one commit. Small enough that a batch holds SQLite's single
/// connection only briefly (sends waiting to be accepted queue behind it).
const RECORD_BATCH: usize = 32;

/// Records send results as they come, all that are waiting in one transaction.
async fn record_results(state: AppState, mut rx: mpsc::Receiver<Record>, chats: Unblocker) {
    let mut buf = Vec::with_capacity(RECORD_BATCH);
    while rx.recv_many(&mut buf, RECORD_BATCH).await > 0 {
        let records = std::mem::take(&mut buf);
        record_all(&state, &records).await;
        // Everything a chat gave back came before its `Unblock`, so it is written now.
        for r in records {
            if let Record::Unblock(key) = &r {
                chats.unblock(key);
            }
        }
    }
}

/// Writes the results of several sends in one transaction (one commit), then publishes the
/// changes. Should the transaction fail, each is written on its own; a result that cannot be
/// written at all leaves the claim to run out, and the message is sent again under the same
/// id, which the provider recognises.
async fn record_all(state: &AppState, records: &[Record]) {
    let now = state.clock.now();
    let together = async {
        let _turn = state.bookkeeping.lock().await;
        let txn = repo::begin_bookkeeping(&state.db).await?;
        let mut changed = Vec::new();
        for r in records {
            changed.extend(record_one(&txn, r, now).await?);
        }
        let committed = super::enqueue_events(&txn, state, &changed, false).await?;
        txn.commit().await?;
        Ok::<_, sea_orm::DbErr>(committed)
    };
    let changed = match together.await {
        Ok((events, enqueued)) => {
            super::publish_committed(state, events, enqueued).await;
            recheck_waiting(state, records).await;
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "recording dispatch results together failed; recording them one by one");
            let mut changed = Vec::new();
            for r in records {
                match record_one(&state.db, r, now).await {
                    Ok(row) => changed.extend(row),
                    Err(e) => tracing::error!(error = %e, "recording a dispatch result failed"),
                }
            }
            changed
        }
    };
    for row in &changed {
        publish(state, row, false).await;
    }
    recheck_waiting(state, records).await;
}
