//! Chat workers: messages to one chat (session and recipient) are sent one after another, in
//! the order they were accepted; chats run in parallel.
//!
//! The dispatcher hands over a run per chat (its head and the due messages behind it, see
//! [`crate::repo::message_claims`]). Should one of them go back to the queue (a retry, or a
//! wait for the session), the rest of the run goes back with it, uncounted, so nothing
//! overtakes it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;

use super::send::{Record, SessionCache, dispatch_one};
use crate::state::AppState;

type ChatKey = (uuid::Uuid, String);

/// A chat's claimed messages, oldest first.
pub(super) type Run = Vec<entity::message::Model>;

/// A run and the dispatch permit it holds while it is worked on.
type Work = (Run, OwnedSemaphorePermit);

/// One worker per chat with claimed work; their results go to one recorder, which writes
/// them in batches.
#[derive(Clone)]
pub(super) struct Chats {
    workers: Arc<Mutex<HashMap<ChatKey, mpsc::UnboundedSender<Work>>>>,
    record: mpsc::Sender<Record>,
    stop: CancellationToken,
}

impl Chats {
    /// Workers report to `record`; once `stop` is cancelled they give back what they have not
    /// started.
    pub(super) fn new(record: mpsc::Sender<Record>, stop: CancellationToken) -> Self {
        Self {
            workers: Arc::default(),
            record,
            stop,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChatKey, mpsc::UnboundedSender<Work>>> {
        self.workers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a claimed run to its chat's worker, starting one if the chat has none.
    pub(super) fn push(&self, state: &AppState, run: Run, permit: OwnedSemaphorePermit) {
        let Some(first) = run.first() else { return };
        let key = (first.session_id, first.phone.clone());
        let mut map = self.lock();
        let work = match map.get(&key) {
            Some(tx) => match tx.send((run, permit)) {
                Ok(()) => return,
                Err(mpsc::error::SendError(work)) => work,
            },
            None => (run, permit),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(work);
        map.insert(key.clone(), tx);
        tokio::spawn(self.clone().work(state.clone(), key, rx));
    }

    async fn work(self, state: AppState, key: ChatKey, mut rx: mpsc::UnboundedReceiver<Work>) {
        let mut session = SessionCache::default();
        loop {
            let (run, permit) = match rx.try_recv() {
                Ok(w) => w,
                Err(mpsc::error::TryRecvError::Empty) => {
                    // Leave only while holding the map, so no run is pushed to a worker that
                    // is gone.
                    let mut map = self.lock();
                    if rx.is_empty() {
                        map.remove(&key);
                        return;
                    }
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            };
            let mut broken = false;
            for m in run {
                // Stopping: a claim not started yet goes back at once, uncounted, for the next
                // owner instead of waiting out its lease. After a message went back, so does
                // the rest of its run.
                let record = if broken || self.stop.is_cancelled() {
                    Record::give_back(&m, state.clock.now())
                } else {
                    dispatch_one(&state, m, &mut session).await
                };
                broken |= record.requeues();
                if self.record.send(record).await.is_err() {
                    return;
                }
            }
            drop(permit);
        }
    }
}
