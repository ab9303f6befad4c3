//! Redis pub/sub transport for the event bus: one channel per tenant
//! (`wagate:events:<tenant>`), one pattern subscription per instance.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

use super::{Event, EventBus};

const CHANNEL_PREFIX: &str = "wagate:events:";
const PUBLISH_TIMEOUT: Duration = Duration::from_millis(1500);

/// Whether this instance is currently connected to Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedisStatus {
    /// The pattern subscription is live.
    pub subscribed: bool,
    /// The last publish succeeded (or none failed yet).
    pub publishing: bool,
}

pub(super) struct RedisBackend {
    client: redis::Client,
    publisher: Mutex<Option<ConnectionManager>>,
    publishing: Arc<AtomicBool>,
    subscribed: watch::Sender<bool>,
}

fn channel(event: &Event) -> String {
    format!("{CHANNEL_PREFIX}{}", event.tenant_id)
}

impl RedisBackend {
    pub(super) fn new(client: redis::Client) -> Self {
        Self {
            client,
            publisher: Mutex::new(None),
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

    /// Publishes; the connection is made lazily so the gateway starts while Redis is down.
    pub(super) async fn publish(&self, event: &Event) -> anyhow::Result<()> {
        let payload = serde_json::to_string(event)?;
        let result = tokio::time::timeout(PUBLISH_TIMEOUT, async {
            let mut guard = self.publisher.lock().await;
            if guard.is_none() {
                *guard = Some(self.client.get_connection_manager().await?);
            }
            let Some(conn) = guard.as_mut() else {
                return Err(anyhow::anyhow!("no Redis connection"));
            };
            let r: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                .arg(channel(event))
                .arg(&payload)
                .query_async(conn)
                .await;
            if r.is_err() {
                *guard = None;
            }
            r.map(|_| ()).map_err(anyhow::Error::from)
        })
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("Redis publish timed out")));
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
                        match serde_json::from_str::<Event>(&payload) {
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
