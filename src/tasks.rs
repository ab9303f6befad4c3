//! Supervised background tasks: a task that panics is logged and started again after a short
//! pause, and while it is down [`Tasks::down`] names it, so `/readyz` can say so.

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;

/// Pause before a panicked task is started again (doubling up to [`MAX_PAUSE`]).
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const MAX_PAUSE: Duration = Duration::from_secs(10);

/// What one supervised task is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Running.
    Running,
    /// Panicked; waiting to be started again.
    Restarting,
    /// Shutting down: finishing the work it had started.
    Draining,
    /// Returned (its work is over, e.g. at shutdown).
    Stopped,
}

/// The supervised tasks of this process, by name. Cheap to clone.
#[derive(Clone, Default)]
pub struct Tasks {
    states: Arc<Mutex<BTreeMap<&'static str, (TaskState, u32)>>>,
}

impl Tasks {
    fn set(&self, name: &'static str, state: TaskState, restarted: bool) {
        let mut map = self.states.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(name).or_insert((state, 0));
        entry.0 = state;
        if restarted {
            entry.1 += 1;
        }
    }

    /// Each task's state and how often it was restarted.
    pub fn snapshot(&self) -> BTreeMap<&'static str, (TaskState, u32)> {
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Tasks that panicked and are not running again yet.
    pub fn down(&self) -> Vec<&'static str> {
        self.snapshot()
            .into_iter()
            .filter(|(_, (s, _))| *s == TaskState::Restarting)
            .map(|(n, _)| n)
            .collect()
    }

    /// Runs `make()` under supervision until it returns or `shutdown` is cancelled; a panic
    /// is logged, and the task made anew after a pause. On shutdown the running task is
    /// awaited: it must watch the same token, finish what it started and return.
    pub fn spawn<F, Fut>(
        &self,
        name: &'static str,
        shutdown: CancellationToken,
        make: F,
    ) -> tokio::task::JoinHandle<()>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let tasks = self.clone();
        tokio::spawn(async move {
            let mut pause = FIRST_PAUSE;
            let mut restarted = false;
            loop {
                tasks.set(name, TaskState::Running, restarted);
                let mut run = tokio::spawn(make());
                let outcome = tokio::select! {
                    r = &mut run => r,
                    () = shutdown.cancelled() => {
                        tasks.set(name, TaskState::Draining, false);
                        if let Err(e) = run.await && e.is_panic() {
                            tracing::error!(task = name, "background task panicked while draining");
                        }
                        tasks.set(name, TaskState::Stopped, false);
                        return;
                    }
                };
                match outcome {
                    Ok(()) => {
                        tasks.set(name, TaskState::Stopped, false);
                        return;
                    }
                    Err(e) => {
                        let what = e
                            .try_into_panic()
                            .ok()
                            .and_then(|p| {
                                p.downcast_ref::<&str>()
                                    .map(|s| (*s).to_owned())
                                    .or_else(|| p.downcast_ref::<String>().cloned())
                            })
                            .unwrap_or_else(|| "cancelled".to_owned());
                        tracing::error!(task = name, panic = %what, retry_in = ?pause, "background task died; restarting it");
                        tasks.set(name, TaskState::Restarting, false);
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = shutdown.cancelled() => {
                        tasks.set(name, TaskState::Stopped, false);
                        return;
                    }
                }
                pause = (pause * 2).min(MAX_PAUSE);
                restarted = true;
            }
        })
    }
}

impl Tasks {
    /// Waits up to `within` until every task named in `names` has stopped; the names still
    /// running (or draining) then.
    pub async fn wait_stopped(
        &self,
        names: &[&'static str],
        within: Duration,
    ) -> Vec<&'static str> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let snapshot = self.snapshot();
            let busy: Vec<&'static str> = names
                .iter()
                .copied()
                .filter(|n| {
                    snapshot
                        .get(n)
                        .is_some_and(|(s, _)| *s != TaskState::Stopped)
                })
                .collect();
            if busy.is_empty() || tokio::time::Instant::now() >= deadline {
                return busy;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Runs `f`, turning a panic into `None` (for loops that must survive one bad item).
pub async fn catch<T>(f: impl Future<Output = T>) -> Option<T> {
    std::panic::AssertUnwindSafe(f).catch_unwind().await.ok()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_restarted_and_reported_meanwhile() {
        let tasks = Tasks::default();
        let runs = Arc::new(AtomicU32::new(0));
        let shutdown = CancellationToken::new();
        let r = runs.clone();
        tasks.spawn("flaky", shutdown.clone(), move || {
            let r = r.clone();
            async move {
                if r.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("first run fails");
                }
                std::future::pending::<()>().await;
            }
        });
        let mut saw_down = false;
        for _ in 0..500 {
            saw_down |= tasks.down() == vec!["flaky"];
            if runs.load(Ordering::SeqCst) >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(saw_down, "the dead task was never reported");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert!(tasks.down().is_empty());
        assert_eq!(tasks.snapshot()["flaky"], (TaskState::Running, 1));
        shutdown.cancel();
    }
}
