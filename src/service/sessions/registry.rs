//! The provider connections this process runs, by session: a registry without behaviour,
//! held in `AppState`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::provider::Connection;

/// One running connection: the attempt it serves, its stop signal and the connection.
struct Running(Uuid, CancellationToken, Arc<dyn Connection>);

/// The provider connections this process runs, by session, with the attempt each serves.
#[derive(Clone, Default)]
pub struct SessionRuntime {
    tasks: Arc<Mutex<HashMap<Uuid, Running>>>,
    closed: Arc<std::sync::atomic::AtomicBool>,
}

impl SessionRuntime {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Running>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn register(
        &self,
        id: Uuid,
        attempt: Uuid,
        token: CancellationToken,
        conn: Arc<dyn Connection>,
    ) {
        if let Some(Running(_, old, _)) = self.lock().insert(id, Running(attempt, token, conn)) {
            old.cancel();
        }
    }

    /// The live connection of a session, when this process runs it.
    pub fn connection(&self, id: Uuid) -> Option<Arc<dyn Connection>> {
        self.lock().get(&id).map(|r| r.2.clone())
    }

    pub(super) fn finished(&self, id: Uuid, attempt: Uuid) {
        let mut tasks = self.lock();
        if tasks.get(&id).is_some_and(|r| r.0 == attempt) {
            tasks.remove(&id);
        }
    }

    /// Stops this process's provider task for a session, whatever attempt it serves.
    pub fn stop(&self, id: Uuid) {
        if let Some(Running(_, token, _)) = self.lock().remove(&id) {
            token.cancel();
        }
    }

    /// Stops the task only if it serves `attempt` (a newer attempt's task is left alone).
    pub fn stop_attempt(&self, id: Uuid, attempt: Option<Uuid>) {
        let mut tasks = self.lock();
        if let Some(attempt) = attempt
            && tasks.get(&id).is_some_and(|r| r.0 == attempt)
            && let Some(Running(_, token, _)) = tasks.remove(&id)
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
        self.lock().iter().map(|(id, r)| (*id, r.0)).collect()
    }

    /// True once [`SessionRuntime::stop_all`] ran: no connection starts here any more.
    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stops every task and starts no more (shutdown).
    pub fn stop_all(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        for (_, Running(_, token, _)) in self.lock().drain() {
            token.cancel();
        }
    }
}
