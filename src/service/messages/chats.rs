//! Chat workers: messages to one chat (session and recipient) are sent one after another, in
//! the order they were accepted; chats run in parallel.
//!
//! The dispatcher hands over each claim's messages as one run per chat (see
//! [`crate::repo::message_claims`]). When a message goes back to the queue (a retry, or a
//! wait for its session), everything this dispatcher holds of its chat goes back with it,
//! uncounted and in place, and the chat takes no new claims here until that is committed; from
//! then on the database holds the chat's later messages back until the message is sent.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;

use super::send::{ChatKey, Record, SessionCache, dispatch_one};
use crate::state::AppState;

/// A chat's claimed messages, oldest first.
pub(super) type Run = Vec<entity::message::Model>;

/// A run and its messages' dispatch permits (one each, released as each is handled).
type Work = (Run, Vec<OwnedSemaphorePermit>);

#[derive(Default)]
struct Inner {
    workers: HashMap<ChatKey, mpsc::UnboundedSender<Work>>,
    /// Chats whose give-back is not committed yet: claims of them go straight back.
    blocked: HashSet<ChatKey>,
    /// Chats whose give-back is committed; reopened before the next claim starts (a claim
    /// already running may have read the rows from before the commit).
    committed: Vec<ChatKey>,
}

/// One worker per chat with claimed work; their results go to one recorder, which writes
/// them in batches.
#[derive(Clone)]
pub(super) struct Chats {
    inner: Arc<Mutex<Inner>>,
    record: mpsc::Sender<Record>,
    stop: CancellationToken,
}

/// Lets the recorder reopen chats once their give-backs are committed.
#[derive(Clone)]
pub(super) struct Unblocker(Arc<Mutex<Inner>>);

impl Unblocker {
    /// The chat's give-back is committed: it may take claims again from the next claim on.
    pub(super) fn unblock(&self, key: &ChatKey) {
        let mut inner = self.0.lock().unwrap_or_else(|p| p.into_inner());
        inner.committed.push(key.clone());
    }
}

impl Chats {
    /// Workers report to `record`; once `stop` is cancelled they give back what they have not
    /// started.
    pub(super) fn new(record: mpsc::Sender<Record>, stop: CancellationToken) -> Self {
        Self {
            inner: Arc::default(),
            record,
            stop,
        }
    }

    /// The handle the recorder reopens chats with.
    pub(super) fn unblocker(&self) -> Unblocker {
        Unblocker(self.inner.clone())
    }

    /// Reopens the chats whose give-backs were committed. Called before each claim: every
    /// claim that started before those commits has been handed over by then.
    pub(super) fn reopen_committed(&self) {
        let mut inner = self.lock();
        let committed = std::mem::take(&mut inner.committed);
        for key in committed {
            inner.blocked.remove(&key);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a claimed run to its chat's worker, starting one if the chat has none. A run of a
    /// blocked chat goes back at once.
    pub(super) async fn push(
        &self,
        state: &AppState,
        run: Run,
        permits: Vec<OwnedSemaphorePermit>,
    ) {
        let Some(first) = run.first() else { return };
        let key = (first.session_id, first.phone.clone());
        let run = {
            let mut inner = self.lock();
            if inner.blocked.contains(&key) {
                Some(run)
            } else {
                let work = match inner.workers.get(&key) {
                    Some(tx) => match tx.send((run, permits)) {
                        Ok(()) => return,
                        Err(mpsc::error::SendError(work)) => work,
                    },
                    None => (run, permits),
                };
                let (tx, rx) = mpsc::unbounded_channel();
                let _ = tx.send(work);
                inner.workers.insert(key.clone(), tx);
                tokio::spawn(self.clone().work(state.clone(), key.clone(), rx));
                None
            }
        };
        if let Some(run) = run {
            for m in &run {
                if self.record.send(Record::give_back(m)).await.is_err() {
                    return;
                }
            }
        }
    }

    async fn work(self, state: AppState, key: ChatKey, mut rx: mpsc::UnboundedReceiver<Work>) {
        let mut session = SessionCache::default();
        // Once a message went back to the queue, everything after it goes back too.
        let mut broken = false;
        loop {
            let (run, permits) = match rx.try_recv() {
                Ok(w) => w,
                Err(mpsc::error::TryRecvError::Empty) => {
                    // Leave only while holding the map, so no run is pushed to a worker that
                    // is gone.
                    let gone = {
                        let mut inner = self.lock();
                        let gone = rx.is_empty();
                        if gone {
                            inner.workers.remove(&key);
                        }
                        gone
                    };
                    if !gone {
                        continue;
                    }
                    if broken {
                        // Reopened by the recorder once everything above is committed.
                        let _ = self.record.send(Record::Unblock(key)).await;
                    }
                    return;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            };
            let mut permits = permits.into_iter();
            for m in run {
                // Stopping: a claim not started yet goes back at once, uncounted, for the next
                // owner instead of waiting out its lease.
                let record = if broken || self.stop.is_cancelled() {
                    Record::give_back(&m)
                } else {
                    dispatch_one(&state, m, &mut session).await
                };
                if !broken && record.requeues() {
                    broken = true;
                    self.lock().blocked.insert(key.clone());
                }
                if self.record.send(record).await.is_err() {
                    return;
                }
                drop(permits.next());
            }
        }
    }
}
