//! Commands between instances: a request to one named instance and its answer.
//!
//! A live connection runs on exactly one instance; a caller on another instance reaches it
//! here. With Redis, each instance subscribes to its own channel `wagate:ctl:<instance>`;
//! requests and answers are JSON messages published there. Without Redis (one instance)
//! commands only reach this instance. Bodies are opaque JSON: the session service decides
//! what they mean and answers them.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const CHANNEL_PREFIX: &str = "wagate:ctl:";

/// A command that arrived for this instance, and where its answer goes.
#[derive(Debug)]
pub struct Incoming {
    /// What was asked.
    pub body: Value,
    /// Where to answer.
    pub reply: oneshot::Sender<Value>,
}

/// Why a command got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The instance did not answer in time (it may be gone).
    #[error("instance {0} did not answer")]
    NoAnswer(String),
    /// The command could not be sent.
    #[error("could not reach instance {0}: {1}")]
    Unreachable(String, String),
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum Wire {
    Request { id: Uuid, from: String, body: Value },
    Reply { id: Uuid, body: Value },
}

struct Inner {
    instance: String,
    inbox: mpsc::Sender<Incoming>,
    pending: Mutex<HashMap<Uuid, oneshot::Sender<Value>>>,
    redis: Option<(redis::Client, tokio::sync::Mutex<Option<ConnectionManager>>)>,
    subscribed: watch::Sender<bool>,
}

/// The command channel of this instance. Cheap to clone.
#[derive(Clone)]
pub struct CommandBus {
    inner: Arc<Inner>,
}

impl CommandBus {
    /// Commands within this process only; incoming ones arrive on the receiver.
    pub fn in_process(instance: &str) -> (Self, mpsc::Receiver<Incoming>) {
        Self::build(instance, None)
    }

    /// Commands through Redis; the subscriber reconnects by itself until `shutdown`.
    pub fn with_redis(
        client: redis::Client,
        instance: &str,
        shutdown: CancellationToken,
    ) -> (Self, mpsc::Receiver<Incoming>) {
        let (bus, rx) = Self::build(instance, Some(client));
        bus.spawn_subscriber(shutdown);
        (bus, rx)
    }

    fn build(instance: &str, redis: Option<redis::Client>) -> (Self, mpsc::Receiver<Incoming>) {
        let (inbox, rx) = mpsc::channel(256);
        let bus = Self {
            inner: Arc::new(Inner {
                instance: instance.to_owned(),
                inbox,
                pending: Mutex::new(HashMap::new()),
                redis: redis.map(|c| (c, tokio::sync::Mutex::new(None))),
                subscribed: watch::channel(false).0,
            }),
        };
        (bus, rx)
    }

    /// Waits (bounded) until this instance listens for commands; true when it does.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        if self.inner.redis.is_none() {
            return true;
        }
        let mut rx = self.inner.subscribed.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|s| *s))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, oneshot::Sender<Value>>> {
        self.inner.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `body` to `instance` and waits up to `timeout` for its answer.
    pub async fn request(
        &self,
        instance: &str,
        body: Value,
        timeout: Duration,
    ) -> Result<Value, CommandError> {
        let (reply, answer) = oneshot::channel();
        if instance == self.inner.instance {
            let incoming = Incoming { body, reply };
            self.inner
                .inbox
                .send(incoming)
                .await
                .map_err(|_| CommandError::Unreachable(instance.into(), "stopped".into()))?;
        } else {
            if self.inner.redis.is_none() {
                return Err(CommandError::Unreachable(
                    instance.into(),
                    "no Redis is configured to reach other instances".into(),
                ));
            }
            let id = Uuid::new_v4();
            self.pending().insert(id, reply);
            let wire = Wire::Request {
                id,
                from: self.inner.instance.clone(),
                body,
            };
            if let Err(e) = self.publish(instance, &wire).await {
                self.pending().remove(&id);
                return Err(CommandError::Unreachable(instance.into(), e.to_string()));
            }
            let answered = tokio::time::timeout(timeout, answer).await;
            self.pending().remove(&id);
            return match answered {
                Ok(Ok(v)) => Ok(v),
                _ => Err(CommandError::NoAnswer(instance.into())),
            };
        }
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(v)) => Ok(v),
            _ => Err(CommandError::NoAnswer(instance.into())),
        }
    }

    async fn publish(&self, instance: &str, wire: &Wire) -> anyhow::Result<()> {
        let Some((client, conn)) = &self.inner.redis else {
            anyhow::bail!("no Redis");
        };
        let payload = serde_json::to_string(wire)?;
        let mut guard = conn.lock().await;
        let mut c = match guard.as_ref() {
            Some(c) => c.clone(),
            None => {
                let c =
                    tokio::time::timeout(Duration::from_secs(2), client.get_connection_manager())
                        .await??;
                *guard = Some(c.clone());
                c
            }
        };
        drop(guard);
        let sent = tokio::time::timeout(
            Duration::from_secs(2),
            redis::cmd("PUBLISH")
                .arg(format!("{CHANNEL_PREFIX}{instance}"))
                .arg(payload)
                .query_async::<i64>(&mut c),
        )
        .await;
        match sent {
            Ok(Ok(0)) => anyhow::bail!("nobody listens on that instance's channel"),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                *conn.lock().await = None;
                Err(e.into())
            }
            Err(_) => {
                *conn.lock().await = None;
                anyhow::bail!("Redis publish timed out")
            }
        }
    }

    /// Handles one message from this instance's channel.
    async fn on_message(&self, payload: &str) {
        match serde_json::from_str::<Wire>(payload) {
            Ok(Wire::Reply { id, body }) => {
                if let Some(tx) = self.pending().remove(&id) {
                    let _ = tx.send(body);
                }
            }
            Ok(Wire::Request { id, from, body }) => {
                let (reply, answer) = oneshot::channel();
                if self
                    .inner
                    .inbox
                    .send(Incoming { body, reply })
                    .await
                    .is_err()
                {
                    return;
                }
                let bus = self.clone();
                tokio::spawn(async move {
                    let Ok(body) = answer.await else { return };
                    if let Err(e) = bus.publish(&from, &Wire::Reply { id, body }).await {
                        tracing::warn!(to = %from, error = %e, "could not answer a command");
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "undecodable command message"),
        }
    }

    fn spawn_subscriber(&self, shutdown: CancellationToken) {
        let Some((client, _)) = &self.inner.redis else {
            return;
        };
        let (client, bus) = (client.clone(), self.clone());
        let channel = format!("{CHANNEL_PREFIX}{}", self.inner.instance);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                let session = async {
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.subscribe(&channel).await?;
                    bus.inner.subscribed.send_replace(true);
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        match msg.get_payload::<String>() {
                            Ok(p) => bus.on_message(&p).await,
                            Err(e) => tracing::warn!(error = %e, "unreadable command payload"),
                        }
                    }
                    Ok::<(), redis::RedisError>(())
                };
                let outcome = tokio::select! {
                    () = shutdown.cancelled() => return,
                    r = session => r,
                };
                if bus.inner.subscribed.send_replace(false) {
                    backoff = Duration::from_millis(100);
                }
                if let Err(e) = outcome {
                    tracing::warn!(error = %e, "Redis command subscription failed; retrying");
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        });
    }
}
