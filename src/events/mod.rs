//! The event bus: typed live events (QR codes, session status, message status, inbound).
//!
//! Delivery is per tenant: each tenant has its own bounded broadcast channel, so a subscriber
//! can only ever receive its own tenant's events, and a slow subscriber loses its oldest events
//! instead of holding memory or slowing others. With Redis configured, events are published on
//! a per-tenant Redis channel and every instance fans them out to its own subscribers. The bus
//! is for live updates only; work that must not be lost is kept in the database.

pub mod commands;
mod redis_backend;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use futures_util::Stream;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use crate::domain::event::{DomainEvent, EventPayload, QrPayload, StatusPayload};
use crate::domain::ids::TenantId;

pub use redis_backend::RedisStatus;

/// Buffered events per tenant before the slowest subscriber starts losing the oldest.
pub const DEFAULT_CAPACITY: usize = 1024;

/// The bus. Cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    channels: Mutex<HashMap<TenantId, broadcast::Sender<Arc<DomainEvent>>>>,
    capacity: usize,
    redis: Option<redis_backend::RedisBackend>,
}

impl EventBus {
    /// An in-process bus.
    pub fn in_process(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                channels: Mutex::new(HashMap::new()),
                capacity: capacity.max(1),
                redis: None,
            }),
        }
    }

    /// A bus shared through Redis pub/sub. The subscriber task reconnects by itself until
    /// `shutdown` is cancelled.
    pub fn with_redis(client: redis::Client, capacity: usize, shutdown: CancellationToken) -> Self {
        let bus = Self {
            inner: Arc::new(Inner {
                channels: Mutex::new(HashMap::new()),
                capacity: capacity.max(1),
                redis: Some(redis_backend::RedisBackend::new(client)),
            }),
        };
        if let Some(r) = &bus.inner.redis {
            r.spawn_subscriber(bus.clone(), shutdown);
        }
        bus
    }

    /// Redis connectivity, or `None` for an in-process bus.
    pub fn redis_status(&self) -> Option<RedisStatus> {
        self.inner.redis.as_ref().map(|r| r.status())
    }

    /// Waits (bounded) until the Redis subscription is live; true when it is (or no Redis).
    pub async fn wait_ready(&self, timeout: std::time::Duration) -> bool {
        match &self.inner.redis {
            None => true,
            Some(r) => r.wait_subscribed(timeout).await,
        }
    }

    /// Publishes an event. Never fails the caller: if Redis is unreachable the event is
    /// still delivered to this instance's subscribers.
    pub async fn publish(&self, event: DomainEvent) {
        match &self.inner.redis {
            None => self.deliver_local(Arc::new(event)),
            Some(r) => {
                // While this instance's Redis subscription is down (reconnecting), its own
                // subscribers would not hear the event back: deliver it directly.
                let subscribed = r.status().subscribed;
                match r.publish(&event).await {
                    Ok(()) if subscribed => {}
                    Ok(()) => self.deliver_local(Arc::new(event)),
                    Err(e) => {
                        tracing::warn!(error = %e, "Redis publish failed; delivering this event locally only");
                        self.deliver_local(Arc::new(event));
                    }
                }
            }
        }
    }

    /// Hands an event to this instance's subscribers of its tenant.
    pub(crate) fn deliver_local(&self, event: Arc<DomainEvent>) {
        let mut channels = self
            .inner
            .channels
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = channels.get(&event.tenant_id)
            && tx.send(event.clone()).is_err()
        {
            // Nobody is listening any more.
            channels.remove(&event.tenant_id);
        }
    }

    /// Subscribes to a tenant's events from now on.
    pub fn subscribe(
        &self,
        tenant: TenantId,
    ) -> impl Stream<Item = Arc<DomainEvent>> + Send + 'static + use<> {
        let rx = {
            let mut channels = self
                .inner
                .channels
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            channels
                .entry(tenant)
                .or_insert_with(|| broadcast::channel(self.inner.capacity).0)
                .subscribe()
        };
        futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => return Some((ev, rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!(skipped = n, "slow subscriber skipped old events");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }

    /// Forgets tenant channels nobody listens to any more.
    pub fn prune(&self) {
        let mut channels = self
            .inner
            .channels
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        channels.retain(|_, tx| tx.receiver_count() > 0);
    }

    /// Local subscribers per tenant (for metrics and tests).
    pub fn local_subscribers(&self, tenant: TenantId) -> usize {
        let channels = self
            .inner
            .channels
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        channels.get(&tenant).map_or(0, |tx| tx.receiver_count())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use futures_util::StreamExt;
    use uuid::Uuid;

    use super::*;

    fn status_event(tenant: TenantId, status: &str) -> DomainEvent {
        DomainEvent::new(
            tenant,
            Uuid::now_v7(),
            Utc::now(),
            EventPayload::SessionStatus(StatusPayload {
                status: status.into(),
                phone_number: None,
                connected: false,
                reason: None,
            }),
        )
    }

    #[tokio::test]
    async fn delivers_only_to_the_events_tenant() {
        let bus = EventBus::in_process(16);
        let (a, b) = (TenantId::new(), TenantId::new());
        let mut sa = Box::pin(bus.subscribe(a));
        let mut sb = Box::pin(bus.subscribe(b));
        bus.publish(status_event(a, "connected")).await;
        bus.publish(status_event(b, "disconnected")).await;
        assert_eq!(sa.next().await.unwrap().tenant_id, a);
        let got_b = sb.next().await.unwrap();
        assert_eq!(got_b.tenant_id, b);
        assert!(
            matches!(&got_b.payload, EventPayload::SessionStatus(s) if s.status == "disconnected")
        );
    }

    #[tokio::test]
    async fn slow_subscribers_drop_old_events_and_continue() {
        let bus = EventBus::in_process(4);
        let t = TenantId::new();
        let mut slow = Box::pin(bus.subscribe(t));
        for i in 0..10 {
            bus.publish(status_event(t, &format!("s{i}"))).await;
        }
        let first = slow.next().await.unwrap();
        assert!(
            matches!(&first.payload, EventPayload::SessionStatus(s) if s.status == "s6"),
            "{first:?}"
        );
    }

    #[test]
    fn wire_format_is_tagged() {
        let e = status_event(TenantId::new(), "connected");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "session.status");
        assert_eq!(v["data"]["status"], "connected");
        assert!(v["tenantId"].is_string() && v["sessionId"].is_string() && v["at"].is_string());
        let back: DomainEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }
}
