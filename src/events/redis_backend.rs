//! Redis pub/sub transport for the event bus: one channel per tenant
//! (`wagate:events:<tenant>`), one pattern subscription per instance.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

use super::{DomainEvent, EventBus};

const CHANNEL_PREFIX: &str = "wagate:events:";
const PUBLISH_TIMEOUT: Duration = Duration::from_millis(1500);
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// Whether this instance is currently connected to Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedisStatus {
    /// The pattern subscription is live.
    pub subscribed: bool,
    /// The last publish succeeded (or none failed yet).
    pub publishing: bool,
}

#[derive(Default)]
struct Publisher {
    conn: Option<ConnectionManager>,
    retry_after: Option<Instant>,
}

pub(super) struct RedisBackend {
    client: redis::Client,
    publisher: Mutex<Publisher>,
    publishing: Arc<AtomicBool>,
    subscribed: watch::Sender<bool>,
}

fn channel(event: &DomainEvent) -> String {
    format!("{CHANNEL_PREFIX}{}", event.tenant_id)
}

impl RedisBackend {
    pub(super) fn new(client: redis::Client) -> Self {
        Self {
            client,
            publisher: Mutex::new(Publisher::default()),
            publishing: Arc::new(AtomicBool::new(true)),
            subscribed: watch::channel(false).0,
        }
    }

    pub(super) fn status(&self) -> RedisStatus {
        RedisStatus {
            subscribed: *self.subscribed.borrow(),
            publishing: self.publishing.load(Ordering::Relaxed),
        }
    }

    pub(super) async fn wait_subscribed(&self, timeout: Duration) -> bool {
        let mut rx = self.subscribed.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|s| *s))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// A shared (multiplexed) publishing connection, made lazily so the gateway starts while
    /// Redis is down; after a failed attempt, callers fail fast for a second.
    async fn connection(&self) -> anyhow::Result<ConnectionManager> {
        let mut p = self.publisher.lock().await;
        if let Some(c) = &p.conn {
            return Ok(c.clone());
        }
        if p.retry_after.is_some_and(|t| Instant::now() < t) {
            anyhow::bail!("Redis is unavailable");
        }
        match tokio::time::timeout(PUBLISH_TIMEOUT, self.client.get_connection_manager()).await {
            Ok(Ok(c)) => {
                p.conn = Some(c.clone());
                p.retry_after = None;
                Ok(c)
            }
            Ok(Err(e)) => {
                p.retry_after = Some(Instant::now() + RECONNECT_PAUSE);
                Err(e.into())
            }
            Err(_) => {
                p.retry_after = Some(Instant::now() + RECONNECT_PAUSE);
                anyhow::bail!("connecting to Redis timed out")
            }
        }
    }

    /// Publishes on the event's tenant channel.
    pub(super) async fn publish(&self, event: &DomainEvent) -> anyhow::Result<()> {
        let payload = serde_json::to_string(event)?;
        let result = async {
            let mut conn = self.connection().await?;
            let sent = tokio::time::timeout(
                PUBLISH_TIMEOUT,
                redis::cmd("PUBLISH")
                    .arg(channel(event))
                    .arg(&payload)
                    .query_async::<i64>(&mut conn),
            )
            .await;
            match sent {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => {
                    self.publisher.lock().await.conn = None;
                    Err(e.into())
                }
                Err(_) => {
                    self.publisher.lock().await.conn = None;
                    Err(anyhow::anyhow!("Redis publish timed out"))
                }
            }
        }
        .await;
        self.publishing.store(result.is_ok(), Ordering::Relaxed);
        result
    }

    /// Subscribes to every tenant's channel and forwards events to local subscribers,
    /// reconnecting with backoff whenever the connection drops.
    pub(super) fn spawn_subscriber(&self, bus: EventBus, shutdown: CancellationToken) {
        let client = self.client.clone();
        let subscribed = self.subscribed.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                let session = async {
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.psubscribe(format!("{CHANNEL_PREFIX}*")).await?;
                    subscribed.send_replace(true);
                    tracing::info!("subscribed to Redis events");
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        let payload: String = match msg.get_payload() {
                            Ok(p) => p,
                            Err(e) => {
                                tracing::warn!(error = %e, "unreadable Redis event payload");
                                continue;
                            }
                        };
                        match serde_json::from_str::<DomainEvent>(&payload) {
                            Ok(ev) => bus.deliver_local(Arc::new(ev)),
                            Err(e) => tracing::warn!(error = %e, "undecodable Redis event"),
                        }
                    }
                    Ok::<(), redis::RedisError>(())
                };
                let outcome = tokio::select! {
                    () = shutdown.cancelled() => return,
                    r = session => r,
                };
                let was_subscribed = subscribed.send_replace(false);
                match outcome {
                    Ok(()) => tracing::warn!("Redis event subscription ended; reconnecting"),
                    Err(e) => {
                        tracing::warn!(error = %e, "Redis event subscription failed; retrying")
                    }
                }
                if was_subscribed {
                    backoff = Duration::from_millis(100);
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
