//! Webhook events: the payload every receiver gets, and enqueueing one delivery row per
//! subscribed endpoint (in the caller's transaction where the change has one).

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    domain::ids::TenantId,
    events::DomainEvent,
    repo::{self, webhook_deliveries::PENDING},
    state::AppState,
};

/// Every event type an endpoint may subscribe to (`*` subscribes to all).
pub const EVENT_TYPES: &[&str] = &[
    "session.qr",
    "session.pairCode",
    "session.status",
    "message.status",
    "message.received",
    "contact.created",
    "contact.updated",
    "contact.deleted",
    "webhook.disabled",
    "webhook.test",
];

/// One event as webhooks deliver it.
#[derive(Clone, Debug)]
pub struct WebhookEvent {
    /// Event id (`webhook-id`).
    pub id: Uuid,
    /// Event type, one of [`EVENT_TYPES`].
    pub kind: &'static str,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Whose it is.
    pub tenant_id: TenantId,
    /// The session it concerns, if any (for session filters).
    pub session_id: Option<Uuid>,
    /// The resource, with the REST field names.
    pub data: serde_json::Value,
}

/// The JSON body: `{id, type, timestamp, tenantId, data}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    id: Uuid,
    #[serde(rename = "type")]
    kind: &'a str,
    timestamp: DateTime<Utc>,
    tenant_id: TenantId,
    data: &'a serde_json::Value,
}

impl WebhookEvent {
    /// A new event happening at `at`.
    pub fn new(
        tenant_id: TenantId,
        session_id: Option<Uuid>,
        kind: &'static str,
        at: DateTime<Utc>,
        data: impl Serialize,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            kind,
            at,
            tenant_id,
            session_id,
            data: serde_json::to_value(data).unwrap_or(serde_json::Value::Null),
        }
    }

    /// The webhook form of a live event (same id); session events carry `sessionId`.
    pub fn from_bus(e: &DomainEvent) -> Self {
        let mut data = serde_json::to_value(&e.payload)
            .ok()
            .and_then(|mut v| v.get_mut("data").map(serde_json::Value::take))
            .unwrap_or(serde_json::Value::Null);
        if let Some(obj) = data.as_object_mut() {
            obj.entry("sessionId")
                .or_insert_with(|| serde_json::Value::String(e.session_id.to_string()));
        }
        Self {
            id: e.id,
            kind: e.payload.type_name(),
            at: e.at,
            tenant_id: e.tenant_id,
            session_id: Some(e.session_id),
            data,
        }
    }

    /// The exact body that is signed and sent.
    pub fn body(&self) -> String {
        serde_json::to_string(&Body {
            id: self.id,
            kind: self.kind,
            timestamp: self.at,
            tenant_id: self.tenant_id,
            data: &self.data,
        })
        .unwrap_or_default()
    }
}

/// Whether an endpoint subscribed to this event.
pub(super) fn matches(endpoint: &entity::webhook_endpoint::Model, e: &WebhookEvent) -> bool {
    let type_ok = match &endpoint.events {
        None => true,
        Some(json) => serde_json::from_str::<Vec<String>>(json)
            .map(|list| list.iter().any(|t| t == "*" || t == e.kind))
            .unwrap_or(false),
    };
    let session_ok = match (&endpoint.session_ids, e.session_id) {
        (Some(json), Some(session)) => serde_json::from_str::<Vec<Uuid>>(json)
            .map(|list| list.is_empty() || list.contains(&session))
            .unwrap_or(false),
        _ => true,
    };
    type_ok && session_ok
}

/// A pending delivery row of `e` to `endpoint`, due at `now`.
pub(super) fn delivery_row(
    endpoint: Uuid,
    e: &WebhookEvent,
    now: DateTime<Utc>,
) -> entity::webhook_delivery::Model {
    entity::webhook_delivery::Model {
        id: Uuid::now_v7(),
        tenant_id: e.tenant_id.uuid(),
        endpoint_id: endpoint,
        event_id: e.id,
        event_type: e.kind.to_owned(),
        payload: e.body(),
        status: PENDING.to_owned(),
        attempts: 0,
        next_attempt_at: Some(now),
        lease_until: None,
        lease_id: None,
        last_http_status: None,
        last_error: None,
        created_at: now,
        updated_at: now,
        delivered_at: None,
    }
}

/// Writes one delivery row per subscribed, enabled endpoint for each event, on `db` (the
/// transaction of the change, where there is one); how many. Call [`wake`] after commit.
pub async fn enqueue(
    db: &impl ConnectionTrait,
    events: &[WebhookEvent],
    now: DateTime<Utc>,
) -> Result<usize, DbErr> {
    enqueue_each(db, events, now, |e| e.tenant_id, WebhookEvent::clone).await
}

/// [`enqueue`] for live events; each is turned into its webhook form only if its tenant
/// has an enabled endpoint.
pub async fn enqueue_live(
    db: &impl ConnectionTrait,
    events: &[DomainEvent],
    now: DateTime<Utc>,
) -> Result<usize, DbErr> {
    enqueue_each(db, events, now, |e| e.tenant_id, WebhookEvent::from_bus).await
}

async fn enqueue_each<T>(
    db: &impl ConnectionTrait,
    items: &[T],
    now: DateTime<Utc>,
    tenant_of: impl Fn(&T) -> TenantId,
    convert: impl Fn(&T) -> WebhookEvent,
) -> Result<usize, DbErr> {
    let mut tenants: Vec<TenantId> = items.iter().map(&tenant_of).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let mut total = 0;
    for tenant in tenants {
        total += enqueue_lazy(db, tenant, now, || {
            items
                .iter()
                .filter(|i| tenant_of(i) == tenant)
                .map(&convert)
                .collect()
        })
        .await?;
    }
    Ok(total)
}

/// [`enqueue`] for one tenant's events, built only if the tenant has an enabled endpoint
/// (bulk changes of tenants without webhooks pay one query).
pub async fn enqueue_lazy(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    now: DateTime<Utc>,
    make: impl FnOnce() -> Vec<WebhookEvent>,
) -> Result<usize, DbErr> {
    let endpoints = repo::webhooks::enabled(db, tenant).await?;
    if endpoints.is_empty() {
        return Ok(0);
    }
    let mut rows = Vec::new();
    for e in make().iter().filter(|e| e.tenant_id == tenant) {
        for ep in endpoints.iter().filter(|ep| matches(ep, e)) {
            rows.push(delivery_row(ep.id, e, now));
        }
    }
    repo::webhook_deliveries::insert_many(db, &rows).await?;
    Ok(rows.len())
}

/// Tells this instance's worker that deliveries were committed (other instances find them
/// on their next poll).
pub fn wake(state: &AppState, enqueued: usize) {
    if enqueued > 0 {
        state.webhooks.wake.notify_one();
    }
}

/// For changes made outside a transaction (session status and QR codes): enqueues the live
/// event's deliveries, then publishes it on the bus. The change is already stored, so a
/// failure to enqueue is retried a few times, then logged; never the caller's failure.
pub async fn emit(state: &AppState, event: DomainEvent) {
    let one = std::slice::from_ref(&event);
    for attempt in 1..=3u64 {
        match enqueue_live(&state.db, one, state.clock.now()).await {
            Ok(n) => {
                wake(state, n);
                break;
            }
            Err(e) if attempt < 3 => {
                tracing::warn!(error = %e, event = %event.id, "queueing webhook deliveries failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, event = %event.id, "queueing webhook deliveries failed")
            }
        }
    }
    state.bus.publish(event).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventPayload, PairCodePayload, QrPayload, StatusPayload};

    /// Every domain event keeps its own type on the way to webhooks, and every such type is
    /// one an endpoint can subscribe to.
    #[test]
    fn domain_events_keep_their_type() {
        let at = Utc::now();
        let payloads = [
            EventPayload::SessionQr(QrPayload {
                code: "c".into(),
                svg: "<svg/>".into(),
                expires_at: at,
            }),
            EventPayload::SessionPairCode(PairCodePayload {
                code: "ABCD-EFGH".into(),
                phone_number: "919876543210".into(),
            }),
            EventPayload::SessionStatus(StatusPayload {
                status: "connected".into(),
                phone_number: None,
                connected: true,
                reason: None,
            }),
        ];
        for p in payloads {
            let name = p.type_name();
            let e = DomainEvent::new(TenantId::new(), Uuid::now_v7(), at, p);
            let w = WebhookEvent::from_bus(&e);
            assert_eq!(w.kind, name);
            assert!(EVENT_TYPES.contains(&w.kind), "{name} is not subscribable");
        }
        for name in ["message.status", "message.received"] {
            assert!(EVENT_TYPES.contains(&name));
        }
    }
}
