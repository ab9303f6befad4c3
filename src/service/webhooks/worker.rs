//! The delivery worker: claims due deliveries, POSTs them signed, records every try.
//!
//! At most `concurrency` requests run on an instance and at most `endpoint_concurrency` per
//! endpoint, so one slow receiver holds only its own slots: while an endpoint has a full
//! round waiting, the worker claims other endpoints' deliveries only. Results are written in
//! batches (one transaction for all that finished together).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    WebhookEvent, enqueue, signing,
    transport::{WebhookRequest, WebhookResponse},
};
use crate::{
    domain::ids::TenantId,
    repo::{
        self,
        webhook_deliveries::{self as deliveries, DELIVERED, FAILED, Outcome, PENDING},
    },
    state::AppState,
};

/// Results written per transaction at most.
const RECORD_BATCH: usize = 256;

/// Starts the worker; it stops claiming when `shutdown` is cancelled.
pub async fn run_all(state: AppState, shutdown: CancellationToken) {
    let (tx, rx) = mpsc::channel(4096);
    let recorder = tokio::spawn(record_results(state.clone(), rx));
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = run(state, tx) => {}
    }
    // The recorder ends once the sender is gone: results of finished tries get written.
    let _ = recorder.await;
}

/// One finished try.
struct Done {
    row: entity::webhook_delivery::Model,
    lease_id: Uuid,
    at: DateTime<Utc>,
    latency_ms: i32,
    result: Result<WebhookResponse, String>,
}

/// Most rounds of an endpoint's requests held (running and waiting) at once.
const MAX_ROUNDS: usize = 16;

/// Deliveries held on this instance (running or waiting for an endpoint slot), per
/// endpoint, and each endpoint's recent answer time.
#[derive(Default)]
struct Slots {
    total: usize,
    endpoints: HashMap<Uuid, (usize, Arc<Semaphore>)>,
    latency_ms: HashMap<Uuid, f64>,
}

struct Worker {
    state: AppState,
    slots: Mutex<Slots>,
    finished: Notify,
    results: mpsc::Sender<Done>,
}

impl Worker {
    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many of an endpoint's deliveries this instance may hold: as many rounds of
    /// `endpoint_concurrency` as the endpoint answers within a quarter of the lease (so a
    /// waiting delivery starts long before its claim runs out), at least two and at most
    /// [`MAX_ROUNDS`]. An endpoint not heard from yet is assumed to be slow.
    fn depth(&self, s: &Slots, endpoint: Uuid) -> usize {
        let cfg = &self.state.cfg.webhooks;
        let per_request = s
            .latency_ms
            .get(&endpoint)
            .copied()
            .unwrap_or(cfg.timeout.as_millis() as f64)
            .max(1.0);
        let budget = cfg.lease.as_millis() as f64 / 4.0;
        let rounds = (budget / per_request) as usize;
        cfg.endpoint_concurrency * rounds.clamp(2, MAX_ROUNDS)
    }

    /// Room on this instance, and the endpoints not to claim for now: those holding more
    /// than half their depth (they are refilled once down to half, so a backlogged endpoint
    /// is claimed for in large rounds, not one row per finished request).
    fn room(&self) -> (usize, Vec<Uuid>) {
        let cfg = &self.state.cfg.webhooks;
        let s = self.slots();
        let busy = s
            .endpoints
            .iter()
            .filter(|(id, (n, _))| *n > self.depth(&s, **id) / 2)
            .map(|(id, _)| *id)
            .collect();
        (cfg.concurrency.saturating_sub(s.total), busy)
    }

    /// Of due `(delivery, endpoint)` pairs, the deliveries this instance has room for: up to
    /// each endpoint's depth, `room` in all.
    fn pick(&self, due: Vec<(Uuid, Uuid)>, room: usize) -> Vec<Uuid> {
        let s = self.slots();
        let mut held: HashMap<Uuid, (usize, usize)> = HashMap::new();
        let mut out = Vec::new();
        for (delivery, endpoint) in due {
            if out.len() >= room {
                break;
            }
            let (n, cap) = held.entry(endpoint).or_insert_with(|| {
                (
                    s.endpoints.get(&endpoint).map_or(0, |e| e.0),
                    self.depth(&s, endpoint),
                )
            });
            if *n < *cap {
                *n += 1;
                out.push(delivery);
            }
        }
        out
    }

    /// Takes a slot for the endpoint, or `None` if it holds its depth already.
    fn take(&self, endpoint: Uuid) -> Option<Arc<Semaphore>> {
        let per = self.state.cfg.webhooks.endpoint_concurrency;
        let mut s = self.slots();
        let depth = self.depth(&s, endpoint);
        let entry = s
            .endpoints
            .entry(endpoint)
            .or_insert_with(|| (0, Arc::new(Semaphore::new(per))));
        if entry.0 >= depth {
            return None;
        }
        entry.0 += 1;
        let sem = entry.1.clone();
        s.total += 1;
        Some(sem)
    }

    /// Frees a slot and notes how long the endpoint took; wakes the claim loop only when
    /// that makes room it did not have (the instance was full, or the endpoint is down to
    /// half its depth and may be refilled).
    fn give_back(&self, endpoint: Uuid, latency_ms: Option<i32>) {
        let cfg = &self.state.cfg.webhooks;
        let mut s = self.slots();
        if let Some(ms) = latency_ms {
            if s.latency_ms.len() > 100_000 {
                s.latency_ms.clear();
            }
            let avg = s.latency_ms.entry(endpoint).or_insert(f64::from(ms));
            *avg = *avg * 0.8 + f64::from(ms) * 0.2;
        }
        let half = self.depth(&s, endpoint) / 2;
        let was_full = s.total >= cfg.concurrency;
        s.total = s.total.saturating_sub(1);
        let mut refill = false;
        if let Some(entry) = s.endpoints.get_mut(&endpoint) {
            entry.0 = entry.0.saturating_sub(1);
            refill = entry.0 == half;
            if entry.0 == 0 {
                s.endpoints.remove(&endpoint);
            }
        }
        drop(s);
        if was_full || refill {
            self.finished.notify_one();
        }
    }
}

async fn run(state: AppState, results: mpsc::Sender<Done>) {
    let w = Arc::new(Worker {
        state,
        slots: Mutex::default(),
        finished: Notify::new(),
        results,
    });
    let cfg = w.state.cfg.webhooks.clone();
    loop {
        let (room, busy) = w.room();
        let mut again = false;
        if room > 0 {
            let limit = cfg.batch.min(room as u64);
            match claim(&w, limit, &busy).await {
                Ok(n) => again = n as u64 == limit && w.room().0 > 0,
                Err(e) => tracing::warn!(error = %e, "claiming webhook deliveries failed"),
            }
        }
        if again {
            continue;
        }
        let waiting_for_slots = room == 0 || !busy.is_empty();
        tokio::select! {
            () = w.state.webhooks.wake.notified() => {}
            () = w.finished.notified(), if waiting_for_slots => {}
            () = tokio::time::sleep(cfg.poll_interval) => {}
        }
    }
}

/// Claims up to `limit` deliveries and starts them; how many due rows were looked at (a
/// full `limit` means there may be more).
async fn claim(w: &Arc<Worker>, limit: u64, busy: &[Uuid]) -> Result<usize, sea_orm::DbErr> {
    let state = &w.state;
    let now = state.clock.now();
    let due = deliveries::due(&state.db, now, limit, busy).await?;
    let seen = due.len();
    let picked = w.pick(due, usize::try_from(limit).unwrap_or(usize::MAX));
    let lease_id = Uuid::new_v4();
    let lease = chrono::Duration::from_std(state.cfg.webhooks.lease)
        .unwrap_or_else(|_| chrono::Duration::seconds(60));
    let rows = deliveries::claim(&state.db, &picked, now, now + lease, lease_id).await?;
    if rows.is_empty() {
        return Ok(seen);
    }
    let mut ids: Vec<Uuid> = rows.iter().map(|r| r.endpoint_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let endpoints: HashMap<Uuid, Arc<entity::webhook_endpoint::Model>> =
        repo::webhooks::by_ids(&state.db, &ids)
            .await?
            .into_iter()
            .map(|e| (e.id, Arc::new(e)))
            .collect();
    let mut overflow = Vec::new();
    for row in rows {
        let Some(endpoint) = endpoints.get(&row.endpoint_id).cloned() else {
            continue; // deleted meanwhile: its deliveries went with it
        };
        let Some(sem) = w.take(row.endpoint_id) else {
            overflow.push(row.id);
            continue;
        };
        let w = w.clone();
        tokio::spawn(async move {
            let endpoint_id = row.endpoint_id;
            let mut latency = None;
            if let Ok(_permit) = sem.acquire().await {
                let done = attempt(&w.state, &endpoint, row, lease_id).await;
                latency = Some(done.latency_ms);
                if w.results.send(done).await.is_err() {
                    tracing::debug!("webhook recorder stopped; the lease will run out");
                }
            }
            w.give_back(endpoint_id, latency);
        });
    }
    deliveries::release(&state.db, lease_id, &overflow).await?;
    Ok(seen)
}

/// The secrets to sign with: the current one, and the previous one during its grace period.
fn secrets(endpoint: &entity::webhook_endpoint::Model, now: DateTime<Utc>) -> Vec<&str> {
    let mut out = vec![endpoint.secret.as_str()];
    if let (Some(prev), Some(until)) = (
        &endpoint.previous_secret,
        endpoint.previous_secret_expires_at,
    ) && until > now
    {
        out.push(prev.as_str());
    }
    out
}

/// One signed POST.
async fn attempt(
    state: &AppState,
    endpoint: &entity::webhook_endpoint::Model,
    row: entity::webhook_delivery::Model,
    lease_id: Uuid,
) -> Done {
    let at = state.clock.now();
    let msg_id = format!("msg_{}", row.event_id.simple());
    let ts = at.timestamp();
    let signature =
        signing::signature_header(&secrets(endpoint, at), &msg_id, ts, row.payload.as_bytes());
    let req = WebhookRequest {
        url: endpoint.url.clone(),
        headers: vec![
            ("webhook-id", msg_id),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", signature),
        ],
        body: row.payload.clone(),
        timeout: state.cfg.webhooks.timeout,
    };
    let started = Instant::now();
    let result = state.webhooks.transport.post(req).await;
    let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    Done {
        row,
        lease_id,
        at,
        latency_ms,
        result,
    }
}

/// What a try means for its delivery and endpoint.
struct Verdict {
    delivery: Uuid,
    lease_id: Uuid,
    endpoint: Uuid,
    outcome: Outcome,
    attempt: entity::webhook_attempt::Model,
    healthy: bool,
    gone: bool,
}

fn judge(schedule: &[std::time::Duration], d: Done) -> Verdict {
    let (http_status, body, error) = match d.result {
        Ok(r) => (Some(i32::from(r.status)), Some(r.body), None),
        Err(e) => (None, None, Some(e)),
    };
    let ok = http_status.is_some_and(|s| (200..300).contains(&s));
    let gone = http_status == Some(410);
    let error = error.or_else(|| match http_status {
        Some(s) if (300..400).contains(&s) => Some(format!("HTTP {s}: redirects are not followed")),
        Some(s) if !ok => Some(format!("HTTP {s}")),
        _ => None,
    });
    let tries = usize::try_from(d.row.attempts).unwrap_or(0) + 1;
    let (status, next) = if ok {
        (DELIVERED, None)
    } else if gone || tries >= schedule.len() {
        (FAILED, None)
    } else {
        // Counted from the end of this try (a timeout takes a while).
        let delay = chrono::Duration::from_std(schedule[tries]).unwrap_or_default()
            + chrono::Duration::milliseconds(i64::from(d.latency_ms));
        (PENDING, Some(d.at + delay))
    };
    Verdict {
        delivery: d.row.id,
        lease_id: d.lease_id,
        endpoint: d.row.endpoint_id,
        attempt: entity::webhook_attempt::Model {
            id: Uuid::now_v7(),
            tenant_id: d.row.tenant_id,
            delivery_id: d.row.id,
            attempted_at: d.at,
            http_status,
            latency_ms: d.latency_ms,
            response_body: body.filter(|b| !b.is_empty()).map(|b| b.replace('\0', "")),
            error: error.clone(),
        },
        outcome: Outcome {
            status,
            next_attempt_at: next,
            http_status,
            error,
            at: d.at,
        },
        healthy: ok,
        gone,
    }
}

/// Writes results as they come, all that are waiting in one transaction.
async fn record_results(state: AppState, mut rx: mpsc::Receiver<Done>) {
    let mut buf = Vec::with_capacity(RECORD_BATCH);
    while rx.recv_many(&mut buf, RECORD_BATCH).await > 0 {
        let schedule = &state.cfg.webhooks.retry_schedule;
        let verdicts: Vec<Verdict> = buf.drain(..).map(|d| judge(schedule, d)).collect();
        match record(&state, &verdicts).await {
            Ok(enqueued) => super::wake(&state, enqueued),
            // The rows stay claimed until their lease runs out, then they are tried again.
            Err(e) => tracing::error!(error = %e, "recording webhook results failed"),
        }
    }
}

/// One transaction: each delivery's new state, the attempt log, endpoint health (and
/// automatic disabling, with its `webhook.disabled` event). Results of claims that were lost
/// meanwhile (the lease ran out, a manual retry, the endpoint was deleted) change nothing.
async fn record(state: &AppState, verdicts: &[Verdict]) -> Result<usize, sea_orm::DbErr> {
    let now = state.clock.now();
    let txn = repo::begin_bookkeeping(&state.db).await?;
    let mut touched: Vec<Uuid> = verdicts.iter().map(|v| v.endpoint).collect();
    touched.sort_unstable();
    touched.dedup();
    // Endpoint rows in one order on every instance, so their updates cannot deadlock.
    repo::webhooks::lock(&txn, &touched).await?;
    let mut kept = Vec::with_capacity(verdicts.len());
    for v in verdicts {
        if deliveries::record(&txn, v.delivery, v.lease_id, v.outcome.clone()).await? {
            kept.push(v);
        }
    }
    let attempts: Vec<_> = kept.iter().map(|v| v.attempt.clone()).collect();
    deliveries::insert_attempts(&txn, &attempts).await?;
    let (mut healthy, mut failing, mut gone) = (Vec::new(), Vec::new(), Vec::new());
    for v in &kept {
        if v.healthy {
            healthy.push(v.endpoint);
        } else {
            failing.push(v.endpoint);
            if v.gone {
                gone.push(v.endpoint);
            }
        }
    }
    for list in [&mut healthy, &mut failing, &mut gone] {
        list.sort_unstable();
        list.dedup();
    }
    // An endpoint that answered well in this batch is healthy, whatever else failed
    // (but a 410 still disables it).
    failing.retain(|id| healthy.binary_search(id).is_err());
    repo::webhooks::mark_healthy(&txn, &healthy).await?;
    repo::webhooks::mark_failing(&txn, &failing, now).await?;
    let limit = chrono::Duration::from_std(state.cfg.webhooks.disable_after)
        .unwrap_or_else(|_| chrono::Duration::days(5));
    let mut candidates: Vec<Uuid> = failing.iter().chain(&gone).copied().collect();
    candidates.sort_unstable();
    candidates.dedup();
    let mut disabled = Vec::new();
    for ep in repo::webhooks::by_ids(&txn, &candidates).await? {
        let reason = if gone.binary_search(&ep.id).is_ok() {
            "The endpoint answered 410 Gone".to_owned()
        } else if ep.failing_since.is_some_and(|since| now - since >= limit) {
            format!(
                "Every delivery failed for {}",
                humantime::format_duration(state.cfg.webhooks.disable_after)
            )
        } else {
            continue;
        };
        if let Some(m) = repo::webhooks::disable(&txn, ep.id, &reason, now).await? {
            tracing::warn!(webhook = %m.id, %reason, "webhook endpoint disabled");
            disabled.push(m);
        }
    }
    let events: Vec<WebhookEvent> = disabled
        .iter()
        .map(|m| {
            WebhookEvent::new(
                TenantId(m.tenant_id),
                None,
                "webhook.disabled",
                now,
                super::output(m),
            )
        })
        .collect();
    let enqueued = enqueue(&txn, &events, now).await?;
    txn.commit().await?;
    Ok(enqueued)
}
