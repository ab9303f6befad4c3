//! `/api/webhooks`: endpoints, signing secrets, the delivery log, retries and test events
//! (JWT), and their API-key twins under `/api/external/webhooks`.

use uuid::Uuid;

use super::{
    envelope::{self, Envelope, MessageEnvelope, PagedEnvelope},
    extract::{PageQuery, Path, Query, ValidJson},
};
use crate::{
    error::ErrorEnvelope,
    service::{
        pagination::PageRequest,
        webhooks::{
            self, CreateWebhookInput, CreatedWebhookOutput, UpdateWebhookInput,
            WebhookDeliveryOutput, WebhookOutput, WebhookSecretOutput,
        },
    },
};

twin! {
    /// List your webhooks, oldest first.
    ///
    /// Paged with `page` and `limit` (default 20, at most 100); signing secrets are not included. A
    /// user token, or an API key with the `manage_webhooks` scope.
    get "/api/webhooks" | "/api/external/webhooks", tag = "webhooks", op = "listWebhooks",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of webhooks", body = PagedEnvelope<WebhookOutput>),
        (status = 400, description = "Bad page or limit", body = ErrorEnvelope),
    ),
    list | external_list (state, p, Query(q): Query<PageQuery>) {
        let out = webhooks::list(&state, &p, q.request()?).await?;
        Ok(envelope::paged(out.data, out.pagination))
    }
}

twin! {
    /// Create a webhook. The answer carries its signing secret (also at `GET …/{id}/secret`).
    ///
    /// The URL must be `http` or `https`; loopback and private addresses are refused unless the
    /// gateway runs with `WAGATE_WEBHOOK_ALLOW_PRIVATE=true`. `events` defaults to every event type
    /// and `sessionIds` to every session; a session that is not in your tenant is 404. A user
    /// token, or an API key with both `manage_webhooks` and `read_webhook_secrets`.
    post "/api/webhooks" | "/api/external/webhooks", tag = "webhooks", op = "createWebhook",
    request_body = CreateWebhookInput,
    responses(
        (status = 201, description = "Created", body = Envelope<CreatedWebhookOutput>),
        (status = 400, description = "Validation failed (per-field `errors`)", body = ErrorEnvelope),
        (status = 404, description = "A session in `sessionIds` is not in your tenant", body = ErrorEnvelope),
    ),
    create | external_create (state, p, ValidJson(input): ValidJson<CreateWebhookInput>) {
        Ok(envelope::created(webhooks::create(&state, &p, input).await?))
    }
}

twin! {
    /// One webhook.
    ///
    /// Shows its URL, event and session filters, whether it is enabled and, when it was disabled
    /// automatically, why and since when; the secret is not included. A user token, or an API key
    /// with the `manage_webhooks` scope.
    get "/api/webhooks/{id}" | "/api/external/webhooks/{id}", tag = "webhooks", op = "getWebhook",
    params(("id" = Uuid, Path, description = "Webhook UUID")),
    responses(
        (status = 200, description = "The webhook", body = Envelope<WebhookOutput>),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ),
    get | external_get (state, p, Path(id): Path<Uuid>) {
        Ok(envelope::ok(webhooks::get(&state, &p, id).await?))
    }
}

twin! {
    /// Change a webhook; `enabled: true` re-enables one that was disabled automatically.
    ///
    /// Only the fields given change; a new URL is checked as on create, and `sessionIds: null` or
    /// `[]` removes the session filter. Re-enabling clears the disable reason and failure run, and
    /// deliveries held while it was disabled become due again. A user token, or an API key with the
    /// `manage_webhooks` scope.
    patch "/api/webhooks/{id}" | "/api/external/webhooks/{id}", tag = "webhooks", op = "updateWebhook",
    params(("id" = Uuid, Path, description = "Webhook UUID")),
    request_body = UpdateWebhookInput,
    responses(
        (status = 200, description = "Updated", body = Envelope<WebhookOutput>),
        (status = 400, description = "Validation failed", body = ErrorEnvelope),
        (status = 404, description = "Not found in your tenant (or a session in `sessionIds` is not)", body = ErrorEnvelope),
    ),
    update | external_update (state, p, Path(id): Path<Uuid>, ValidJson(input): ValidJson<UpdateWebhookInput>) {
        Ok(envelope::ok(webhooks::update(&state, &p, id, input).await?))
    }
}

twin! {
    /// Delete a webhook with its delivery log.
    ///
    /// Deliveries not yet made are dropped with it. A user token, or an API key with the
    /// `manage_webhooks` scope.
    delete "/api/webhooks/{id}" | "/api/external/webhooks/{id}", tag = "webhooks", op = "deleteWebhook",
    params(("id" = Uuid, Path, description = "Webhook UUID")),
    responses(
        (status = 200, description = "Deleted", body = MessageEnvelope),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ),
    delete | external_delete (state, p, Path(id): Path<Uuid>) {
        webhooks::delete(&state, &p, id).await?;
        Ok(envelope::message("Webhook deleted"))
    }
}

twin! {
    /// The signing secret.
    ///
    /// Returns the current secret and, during the grace period after a rotation,
    /// `previousSecretExpiresAt`. A user token, or an API key with the `read_webhook_secrets` scope
    /// (`manage_webhooks` is not needed).
    get "/api/webhooks/{id}/secret" | "/api/external/webhooks/{id}/secret", tag = "webhooks", op = "getWebhookSecret",
    params(("id" = Uuid, Path, description = "Webhook UUID")),
    responses(
        (status = 200, description = "The secret", body = Envelope<WebhookSecretOutput>),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ),
    secret | external_secret (state, p, Path(id): Path<Uuid>) {
        Ok(envelope::ok(webhooks::secret(&state, &p, id).await?))
    }
}

twin! {
    /// Replace the signing secret; the old one keeps signing (a second `v1,` signature) for 24 h.
    ///
    /// The new secret applies at once and is returned with `previousSecretExpiresAt`, the end of
    /// the grace period. A user token, or an API key with both `manage_webhooks` and
    /// `read_webhook_secrets`.
    post "/api/webhooks/{id}/rotate-secret" | "/api/external/webhooks/{id}/rotate-secret", tag = "webhooks", op = "rotateWebhookSecret",
    params(("id" = Uuid, Path, description = "Webhook UUID")),
    responses(
        (status = 200, description = "The new secret", body = Envelope<WebhookSecretOutput>),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ),
    rotate_secret | external_rotate_secret (state, p, Path(id): Path<Uuid>) {
        Ok(envelope::ok(webhooks::rotate_secret(&state, &p, id).await?))
    }
}

/// `?status=&page=&limit=` of the delivery log.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// `pending`, `delivered` or `failed`.
    #[param(value_type = Option<crate::service::webhooks::DeliveryState>)]
    pub status: Option<String>,
    /// Page number (default 1).
    #[param(value_type = Option<i64>, minimum = 1)]
    pub page: Option<String>,
    /// Items per page (default 20, at most 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

twin! {
    /// The delivery log, newest first: each event with every try (time, HTTP status, latency,
    /// first 1 KiB of the answer).
    ///
    /// `status` filters by `pending`, `delivered` or `failed`; paged with `page` and `limit`
    /// (default 20, at most 100). Each delivery also shows the event payload, its attempt count and
    /// the next try time. A user token, or an API key with the `manage_webhooks` scope.
    get "/api/webhooks/{id}/deliveries" | "/api/external/webhooks/{id}/deliveries", tag = "webhooks", op = "listWebhookDeliveries",
    params(("id" = Uuid, Path, description = "Webhook UUID"), DeliveryQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = PagedEnvelope<WebhookDeliveryOutput>),
        (status = 400, description = "Bad status, page or limit", body = ErrorEnvelope),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ),
    deliveries | external_deliveries (state, p, Path(id): Path<Uuid>, Query(q): Query<DeliveryQuery>) {
        let page = PageRequest::from_query(q.page.as_deref(), q.limit.as_deref())?;
        let out = webhooks::deliveries(&state, &p, id, q.status.as_deref(), page).await?;
        Ok(envelope::paged(out.data, out.pagination))
    }
}

twin! {
    /// Try a delivery again now (also a delivered or failed one; same `webhook-id`). 409 while a
    /// try of it is in progress.
    ///
    /// The delivery goes back to `pending` with its next try due now; the answer (202) is the
    /// delivery as queued. A user token, or an API key with the `manage_webhooks` scope.
    post "/api/webhooks/{id}/deliveries/{deliveryId}/retry" | "/api/external/webhooks/{id}/deliveries/{deliveryId}/retry", tag = "webhooks", op = "retryWebhookDelivery",
    params(
        ("id" = Uuid, Path, description = "Webhook UUID"),
        ("deliveryId" = Uuid, Path, description = "Delivery UUID"),
    ),
    responses(
        (status = 202, description = "Queued", body = Envelope<WebhookDeliveryOutput>),
        (status = 404, description = "Webhook or delivery not found in your tenant", body = ErrorEnvelope),
        (status = 409, description = "A try of it is in progress", body = ErrorEnvelope),
    ),
    retry | external_retry (state, p, Path((id, delivery)): Path<(Uuid, Uuid)>) {
        Ok(envelope::accepted(webhooks::retry(&state, &p, id, delivery).await?))
    }
}

twin! {
    /// Send a `webhook.test` event to this webhook.
    ///
    /// The event goes to this endpoint only, whatever its event and session filters, and appears in
    /// its delivery log; the answer (202) is the queued delivery. A disabled webhook is 409. A user
    /// token, or an API key with the `manage_webhooks` scope.
    post "/api/webhooks/{id}/test" | "/api/external/webhooks/{id}/test", tag = "webhooks", op = "sendWebhookTest",
    params(("id" = Uuid, Path, description = "Webhook UUID")),
    responses(
        (status = 202, description = "Queued", body = Envelope<WebhookDeliveryOutput>),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
        (status = 409, description = "The webhook is disabled", body = ErrorEnvelope),
    ),
    test | external_test (state, p, Path(id): Path<Uuid>) {
        Ok(envelope::accepted(webhooks::test(&state, &p, id).await?))
    }
}
