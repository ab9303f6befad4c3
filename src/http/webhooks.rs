//! `/api/webhooks`: endpoints, signing secrets, the delivery log, retries and test events
//! (JWT).

use axum::{extract::State, response::Response};
use uuid::Uuid;

use super::{
    envelope::{self, Envelope, MessageEnvelope, PagedEnvelope},
    extract::{PageQuery, Path, Query, UserAuth, ValidJson},
};
use crate::{
    error::{AppResult, ErrorEnvelope},
    service::{
        pagination::PageRequest,
        webhooks::{
            self, CreateWebhookInput, CreatedWebhookOutput, UpdateWebhookInput,
            WebhookDeliveryOutput, WebhookOutput, WebhookSecretOutput,
        },
    },
    state::AppState,
};

/// List your webhooks, oldest first.
#[utoipa::path(get, path = "/api/webhooks", tag = "webhooks",
    security(("bearerAuth" = [])), params(PageQuery),
    responses(
        (status = 200, description = "A page of webhooks", body = PagedEnvelope<WebhookOutput>),
        (status = 400, description = "Bad page or limit", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
    ))]
pub async fn list(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Query(q): Query<PageQuery>,
) -> AppResult<Response> {
    let out = webhooks::list(&state, &p, q.request()?).await?;
    Ok(envelope::paged(out.data, out.pagination))
}

/// Create a webhook. The answer carries its signing secret (also at `GET …/{id}/secret`).
///
/// The URL must be `http` or `https`; loopback and private addresses are refused unless the
/// gateway runs with `WAGATE_WEBHOOK_ALLOW_PRIVATE=true`.
#[utoipa::path(post, path = "/api/webhooks", tag = "webhooks",
    security(("bearerAuth" = [])), request_body = CreateWebhookInput,
    responses(
        (status = 201, description = "Created", body = Envelope<CreatedWebhookOutput>),
        (status = 400, description = "Validation failed (per-field `errors`)", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
    ))]
pub async fn create(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    ValidJson(input): ValidJson<CreateWebhookInput>,
) -> AppResult<Response> {
    Ok(envelope::created(
        webhooks::create(&state, &p, input).await?,
    ))
}

/// One webhook.
#[utoipa::path(get, path = "/api/webhooks/{id}", tag = "webhooks",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Webhook UUID")),
    responses(
        (status = 200, description = "The webhook", body = Envelope<WebhookOutput>),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ))]
pub async fn get(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    Ok(envelope::ok(webhooks::get(&state, &p, id).await?))
}

/// Change a webhook; `enabled: true` re-enables one that was disabled automatically.
#[utoipa::path(patch, path = "/api/webhooks/{id}", tag = "webhooks",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Webhook UUID")),
    request_body = UpdateWebhookInput,
    responses(
        (status = 200, description = "Updated", body = Envelope<WebhookOutput>),
        (status = 400, description = "Validation failed", body = ErrorEnvelope),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ))]
pub async fn update(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
    ValidJson(input): ValidJson<UpdateWebhookInput>,
) -> AppResult<Response> {
    Ok(envelope::ok(webhooks::update(&state, &p, id, input).await?))
}

/// Delete a webhook with its delivery log.
#[utoipa::path(delete, path = "/api/webhooks/{id}", tag = "webhooks",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Webhook UUID")),
    responses(
        (status = 200, description = "Deleted", body = MessageEnvelope),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    webhooks::delete(&state, &p, id).await?;
    Ok(envelope::message("Webhook deleted"))
}

/// The signing secret.
#[utoipa::path(get, path = "/api/webhooks/{id}/secret", tag = "webhooks",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Webhook UUID")),
    responses(
        (status = 200, description = "The secret", body = Envelope<WebhookSecretOutput>),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ))]
pub async fn secret(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    Ok(envelope::ok(webhooks::secret(&state, &p, id).await?))
}

/// Replace the signing secret; the old one keeps signing (a second `v1,` signature) for 24 h.
#[utoipa::path(post, path = "/api/webhooks/{id}/rotate-secret", tag = "webhooks",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Webhook UUID")),
    responses(
        (status = 200, description = "The new secret", body = Envelope<WebhookSecretOutput>),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    Ok(envelope::ok(webhooks::rotate_secret(&state, &p, id).await?))
}

/// `?status=&page=&limit=` of the delivery log.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct DeliveryQuery {
    /// `pending`, `delivered` or `failed`.
    pub status: Option<String>,
    /// Page number (default 1).
    pub page: Option<String>,
    /// Items per page (default 20, at most 100).
    pub limit: Option<String>,
}

/// The delivery log, newest first: each event with every try (time, HTTP status, latency,
/// first 1 KiB of the answer).
#[utoipa::path(get, path = "/api/webhooks/{id}/deliveries", tag = "webhooks",
    security(("bearerAuth" = [])),
    params(("id" = Uuid, Path, description = "Webhook UUID"), DeliveryQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = PagedEnvelope<WebhookDeliveryOutput>),
        (status = 400, description = "Bad status, page or limit", body = ErrorEnvelope),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ))]
pub async fn deliveries(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
    Query(q): Query<DeliveryQuery>,
) -> AppResult<Response> {
    let page = PageRequest::from_query(q.page.as_deref(), q.limit.as_deref())?;
    let out = webhooks::deliveries(&state, &p, id, q.status.as_deref(), page).await?;
    Ok(envelope::paged(out.data, out.pagination))
}

/// Try a delivery again now (also a delivered or failed one; same `webhook-id`). 409 while a
/// try of it is in progress.
#[utoipa::path(post, path = "/api/webhooks/{id}/deliveries/{deliveryId}/retry", tag = "webhooks",
    security(("bearerAuth" = [])),
    params(
        ("id" = Uuid, Path, description = "Webhook UUID"),
        ("deliveryId" = Uuid, Path, description = "Delivery UUID"),
    ),
    responses(
        (status = 202, description = "Queued", body = Envelope<WebhookDeliveryOutput>),
        (status = 404, description = "Webhook or delivery not found in your tenant", body = ErrorEnvelope),
        (status = 409, description = "A try of it is in progress", body = ErrorEnvelope),
    ))]
pub async fn retry(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path((id, delivery)): Path<(Uuid, Uuid)>,
) -> AppResult<Response> {
    Ok(envelope::accepted(
        webhooks::retry(&state, &p, id, delivery).await?,
    ))
}

/// Send a `webhook.test` event to this webhook.
#[utoipa::path(post, path = "/api/webhooks/{id}/test", tag = "webhooks",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Webhook UUID")),
    responses(
        (status = 202, description = "Queued", body = Envelope<WebhookDeliveryOutput>),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
        (status = 409, description = "The webhook is disabled", body = ErrorEnvelope),
    ))]
pub async fn test(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    Ok(envelope::accepted(webhooks::test(&state, &p, id).await?))
}
