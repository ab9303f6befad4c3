//! Webhooks: tenants' endpoints, signed and durable delivery of every event, and the log.
//!
//! An event writes one `webhook_deliveries` row per subscribed endpoint (in the transaction of
//! the change where there is one); the [`worker`] claims due rows, POSTs them and records
//! each try in `webhook_attempts`, retrying on the configured schedule.

mod events;
pub mod runtime;
pub mod signing;
pub mod target;
pub mod transport;
mod types;
mod validate;
pub mod worker;

use async_graphql::{OutputType, SimpleObject};
use chrono::Duration as ChronoDuration;
use sea_orm::TransactionTrait;
use serde::Serialize;
use uuid::Uuid;

pub use events::{EVENT_TYPES, WebhookEvent, emit, enqueue, enqueue_lazy, enqueue_live, wake};
pub use runtime::WebhookRuntime;
pub use types::*;

use crate::{
    auth::{Capability, Principal},
    error::{AppError, AppResult},
    repo::{self, webhook_deliveries as deliveries},
    service::pagination::{PageRequest, Pagination},
    state::AppState,
};

/// How long the secret before a rotation still signs deliveries.
pub const ROTATION_GRACE_HOURS: i64 = 24;

/// A page of items and its `pagination`.
#[derive(SimpleObject)]
#[graphql(concrete(name = "WebhookPage", params(WebhookOutput)))]
#[graphql(concrete(name = "WebhookDeliveryPage", params(WebhookDeliveryOutput)))]
pub struct Page<T: OutputType> {
    /// Items.
    pub data: Vec<T>,
    /// Paging.
    pub pagination: Pagination,
}

fn not_found() -> AppError {
    AppError::NotFound("Webhook not found".into())
}

fn json_list<T: serde::de::DeserializeOwned>(s: &str) -> Vec<T> {
    serde_json::from_str(s).unwrap_or_default()
}

/// The API view of an endpoint.
pub fn output(m: &entity::webhook_endpoint::Model) -> WebhookOutput {
    WebhookOutput {
        id: m.id,
        url: m.url.clone(),
        description: m.description.clone(),
        events: m
            .events
            .as_deref()
            .map_or_else(|| vec!["*".to_owned()], json_list),
        session_ids: m.session_ids.as_deref().map(json_list),
        enabled: m.enabled,
        disabled_reason: m.disabled_reason.clone(),
        disabled_at: m.disabled_at,
        failing_since: m.failing_since,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

async fn load(
    state: &AppState,
    p: &Principal,
    id: Uuid,
) -> AppResult<entity::webhook_endpoint::Model> {
    repo::webhooks::get(&state.db, p.tenant_id, id)
        .await?
        .ok_or_else(not_found)
}

/// 404 unless every session of a (stored, JSON) session filter is the caller's.
async fn own_sessions(state: &AppState, p: &Principal, stored: Option<&str>) -> AppResult<()> {
    let Some(json) = stored else { return Ok(()) };
    let ids: Vec<Uuid> = serde_json::from_str(json).map_err(AppError::internal)?;
    let found = repo::sessions::existing_ids(&state.db, p.tenant_id, &ids).await?;
    if ids.iter().all(|id| found.contains(id)) {
        Ok(())
    } else {
        Err(AppError::NotFound(
            "A session in sessionIds was not found".into(),
        ))
    }
}

/// Creates an endpoint with a new signing secret.
pub async fn create(
    state: &AppState,
    p: &Principal,
    input: CreateWebhookInput,
) -> AppResult<CreatedWebhookOutput> {
    p.require(Capability::ManageWebhooks)?;
    p.require(Capability::ReadWebhookSecrets)?;
    let now = state.clock.now();
    let v = validate::create(&input, state.cfg.webhooks.allow_private).await?;
    own_sessions(state, p, v.session_ids.as_deref()).await?;
    let m = entity::webhook_endpoint::Model {
        id: Uuid::now_v7(),
        tenant_id: p.tenant_id.uuid(),
        url: v.url,
        description: v.description,
        events: v.events,
        session_ids: v.session_ids,
        enabled: input.enabled.unwrap_or(true),
        secret: signing::new_secret(),
        previous_secret: None,
        previous_secret_expires_at: None,
        disabled_reason: None,
        disabled_at: None,
        failing_since: None,
        created_at: now,
        updated_at: now,
    };
    let saved = repo::webhooks::insert(&state.db, m).await?;
    Ok(CreatedWebhookOutput {
        webhook: output(&saved),
        secret: saved.secret,
    })
}

/// A page of the tenant's endpoints, oldest first.
pub async fn list(
    state: &AppState,
    p: &Principal,
    page: PageRequest,
) -> AppResult<Page<WebhookOutput>> {
    p.require(Capability::ManageWebhooks)?;
    let (rows, total) =
        repo::webhooks::list(&state.db, p.tenant_id, page.offset(), page.limit).await?;
    Ok(Page {
        data: rows.iter().map(output).collect(),
        pagination: page.pagination(total),
    })
}

/// One endpoint.
pub async fn get(state: &AppState, p: &Principal, id: Uuid) -> AppResult<WebhookOutput> {
    p.require(Capability::ManageWebhooks)?;
    load(state, p, id).await.map(|m| output(&m))
}

/// Changes an endpoint. Re-enabling clears the automatic-disable reason and failure run.
pub async fn update(
    state: &AppState,
    p: &Principal,
    id: Uuid,
    input: UpdateWebhookInput,
) -> AppResult<WebhookOutput> {
    p.require(Capability::ManageWebhooks)?;
    if input.is_empty() {
        return Err(AppError::field("body", "No valid fields to update"));
    }
    let change = validate::change(input, state.cfg.webhooks.allow_private).await?;
    if let Some(ids) = &change.session_ids {
        own_sessions(state, p, ids.as_deref()).await?;
    }
    let now = state.clock.now();
    if !repo::webhooks::update(&state.db, p.tenant_id, id, change, now).await? {
        return Err(not_found());
    }
    // Deliveries that waited while it was disabled are due again.
    state.webhooks.wake.notify_one();
    get(state, p, id).await
}

/// Deletes an endpoint with its deliveries and their log.
pub async fn delete(state: &AppState, p: &Principal, id: Uuid) -> AppResult<()> {
    p.require(Capability::ManageWebhooks)?;
    let txn = state.db.begin().await?;
    if !repo::webhooks::delete(&txn, p.tenant_id, id).await? {
        return Err(not_found());
    }
    txn.commit().await?;
    Ok(())
}

fn secret_output(m: &entity::webhook_endpoint::Model) -> WebhookSecretOutput {
    WebhookSecretOutput {
        secret: m.secret.clone(),
        previous_secret_expires_at: m.previous_secret_expires_at,
    }
}

/// The endpoint's signing secret.
pub async fn secret(state: &AppState, p: &Principal, id: Uuid) -> AppResult<WebhookSecretOutput> {
    p.require(Capability::ReadWebhookSecrets)?;
    load(state, p, id).await.map(|m| secret_output(&m))
}

/// Replaces the signing secret. For [`ROTATION_GRACE_HOURS`] deliveries carry a signature
/// with the old secret too, so receivers can switch without losing events.
pub async fn rotate_secret(
    state: &AppState,
    p: &Principal,
    id: Uuid,
) -> AppResult<WebhookSecretOutput> {
    p.require(Capability::ManageWebhooks)?;
    p.require(Capability::ReadWebhookSecrets)?;
    let now = state.clock.now();
    let grace = now + ChronoDuration::hours(ROTATION_GRACE_HOURS);
    let fresh = signing::new_secret();
    if !repo::webhooks::rotate_secret(&state.db, p.tenant_id, id, &fresh, grace, now).await? {
        return Err(not_found());
    }
    secret(state, p, id).await
}

/// The API view of a delivery with its attempts.
fn delivery_output(
    d: entity::webhook_delivery::Model,
    attempts: Vec<WebhookAttemptOutput>,
) -> WebhookDeliveryOutput {
    WebhookDeliveryOutput {
        id: d.id,
        webhook_id: d.endpoint_id,
        event_id: d.event_id,
        event_type: d.event_type,
        status: d.status,
        attempt_count: d.attempts,
        next_attempt_at: d.next_attempt_at,
        last_http_status: d.last_http_status,
        last_error: d.last_error,
        created_at: d.created_at,
        delivered_at: d.delivered_at,
        payload: serde_json::from_str(&d.payload).unwrap_or(serde_json::Value::Null),
        attempts,
    }
}

async fn with_attempts(
    state: &AppState,
    p: &Principal,
    rows: Vec<entity::webhook_delivery::Model>,
) -> AppResult<Vec<WebhookDeliveryOutput>> {
    let ids: Vec<Uuid> = rows.iter().map(|d| d.id).collect();
    let mut by_delivery: std::collections::HashMap<Uuid, Vec<WebhookAttemptOutput>> =
        std::collections::HashMap::new();
    for a in deliveries::attempts(&state.db, p.tenant_id, &ids).await? {
        by_delivery
            .entry(a.delivery_id)
            .or_default()
            .push(WebhookAttemptOutput {
                id: a.id,
                attempted_at: a.attempted_at,
                http_status: a.http_status,
                latency_ms: a.latency_ms,
                response_body: a.response_body,
                error: a.error,
            });
    }
    Ok(rows
        .into_iter()
        .map(|d| {
            let attempts = by_delivery.remove(&d.id).unwrap_or_default();
            delivery_output(d, attempts)
        })
        .collect())
}

/// The delivery states a log may be filtered by.
pub const DELIVERY_STATUSES: &[&str] = &[
    deliveries::PENDING,
    deliveries::DELIVERED,
    deliveries::FAILED,
];

/// A page of an endpoint's deliveries, newest first, each with its attempts.
pub async fn deliveries(
    state: &AppState,
    p: &Principal,
    id: Uuid,
    status: Option<&str>,
    page: PageRequest,
) -> AppResult<Page<WebhookDeliveryOutput>> {
    p.require(Capability::ManageWebhooks)?;
    let status = match status.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            DELIVERY_STATUSES
                .iter()
                .copied()
                .find(|k| k.eq_ignore_ascii_case(s))
                .ok_or_else(|| {
                    AppError::field("status", "status must be pending, delivered or failed")
                })?,
        ),
    };
    load(state, p, id).await?;
    let (rows, total) = deliveries::list(
        &state.db,
        p.tenant_id,
        id,
        status,
        page.offset(),
        page.limit,
    )
    .await?;
    Ok(Page {
        data: with_attempts(state, p, rows).await?,
        pagination: page.pagination(total),
    })
}

async fn one_delivery(
    state: &AppState,
    p: &Principal,
    id: Uuid,
    delivery: Uuid,
) -> AppResult<WebhookDeliveryOutput> {
    let row = deliveries::get(&state.db, p.tenant_id, id, delivery)
        .await?
        .ok_or_else(|| AppError::NotFound("Delivery not found".into()))?;
    with_attempts(state, p, vec![row])
        .await?
        .pop()
        .ok_or_else(|| AppError::NotFound("Delivery not found".into()))
}

/// Queues a delivery for one more try now (whatever its state; a delivered one is sent
/// again under the same `webhook-id`).
pub async fn retry(
    state: &AppState,
    p: &Principal,
    id: Uuid,
    delivery: Uuid,
) -> AppResult<WebhookDeliveryOutput> {
    p.require(Capability::ManageWebhooks)?;
    load(state, p, id).await?;
    deliveries::get(&state.db, p.tenant_id, id, delivery)
        .await?
        .ok_or_else(|| AppError::NotFound("Delivery not found".into()))?;
    if !deliveries::requeue(&state.db, p.tenant_id, delivery, state.clock.now()).await? {
        return Err(AppError::Conflict(
            "A try of this delivery is in progress; retry it when it has finished".into(),
        ));
    }
    state.webhooks.wake.notify_one();
    one_delivery(state, p, id, delivery).await
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TestData<'a> {
    webhook_id: Uuid,
    url: &'a str,
    message: &'static str,
}

/// Sends a `webhook.test` event to this endpoint (only).
pub async fn test(state: &AppState, p: &Principal, id: Uuid) -> AppResult<WebhookDeliveryOutput> {
    p.require(Capability::ManageWebhooks)?;
    let m = load(state, p, id).await?;
    if !m.enabled {
        return Err(AppError::Conflict(
            "Webhook is disabled; enable it to send a test event".into(),
        ));
    }
    let now = state.clock.now();
    let data = TestData {
        webhook_id: m.id,
        url: &m.url,
        message: "This is a test event from wagate",
    };
    let event = WebhookEvent::new(p.tenant_id, None, "webhook.test", now, data);
    let row = events::delivery_row(m.id, &event, now);
    let delivery = row.id;
    deliveries::insert_many(&state.db, &[row]).await?;
    state.webhooks.wake.notify_one();
    one_delivery(state, p, id, delivery).await
}
