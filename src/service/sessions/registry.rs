//! The provider connections this process runs, by session: a registry without behaviour,
//! held in `AppState`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The provider connections this process runs, by session, with the attempt each serves.
#[derive(Clone, Default)]
pub struct SessionRuntime {
    tasks: Arc<Mutex<HashMap<Uuid, (Uuid, CancellationToken)>>>,
    closed: Arc<std::sync::atomic::AtomicBool>,
}

impl SessionRuntime {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (Uuid, CancellationToken)>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn register(&self, id: Uuid, attempt: Uuid) -> CancellationToken {
        let token = CancellationToken::new();
        if let Some((_, old)) = self.lock().insert(id, (attempt, token.clone())) {
            old.cancel();
        }
        token
    }

    pub(super) fn finished(&self, id: Uuid, attempt: Uuid) {
        let mut tasks = self.lock();
        if tasks.get(&id).is_some_and(|(a, _)| *a == attempt) {
            tasks.remove(&id);
        }
    }

    /// Stops this process's provider task for a session, whatever attempt it serves.
    pub fn stop(&self, id: Uuid) {
        if let Some((_, token)) = self.lock().remove(&id) {
            token.cancel();
        }
    }

    /// Stops the task only if it serves `attempt` (a newer attempt's task is left alone).
    pub fn stop_attempt(&self, id: Uuid, attempt: Option<Uuid>) {
        let mut tasks = self.lock();
        if let Some(attempt) = attempt
            && tasks.get(&id).is_some_and(|(a, _)| *a == attempt)
            && let Some((_, token)) = tasks.remove(&id)
        {
            token.cancel();
        }
    }

    /// True while this process runs a provider task for the session.
    pub fn is_running(&self, id: Uuid) -> bool {
        self.lock().contains_key(&id)
    }

    /// The sessions with a task here, with the attempt each serves.
    pub fn snapshot(&self) -> Vec<(Uuid, Uuid)> {
        self.lock().iter().map(|(id, (a, _))| (*id, *a)).collect()
    }

    /// True once [`SessionRuntime::stop_all`] ran: no connection starts here any more.
    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stops every task and starts no more (shutdown).
    pub fn stop_all(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        for (_, (_, token)) in self.lock().drain() {
            token.cancel();
        }
    }
}
