//! Webhook queries and mutations over the webhooks service.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result};

use super::{GqlAuth, GqlResultExt, app, mutation::parse_id};
use crate::service::{
    pagination::PageRequest,
    webhooks::{
        self, CreateWebhookInput, CreatedWebhookOutput, Page, UpdateWebhookInput,
        WebhookDeliveryOutput, WebhookOutput, WebhookSecretOutput,
    },
};

/// Changes to a webhook: omitted fields stay; `null` clears the description or the session
/// filter.
#[derive(InputObject, Default)]
pub struct WebhookUpdateInput {
    /// New URL.
    pub url: Option<String>,
    /// Event types, or `["*"]`.
    pub events: Option<Vec<String>>,
    /// Only these sessions' events.
    pub session_ids: MaybeUndefined<Vec<String>>,
    /// Free text.
    pub description: MaybeUndefined<String>,
    /// Turn delivery on or off.
    pub enabled: Option<bool>,
}

fn maybe<T>(v: MaybeUndefined<T>) -> Option<Option<T>> {
    match v {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

/// Webhook queries.
#[derive(Default)]
pub struct WebhookQueries;

#[Object]
impl WebhookQueries {
    /// Your webhooks, oldest first.
    #[graphql(complexity = "super::page_cost(limit.clone(), child_complexity)")]
    async fn webhooks(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page number, from 1 (default 1)")] page: Option<i64>,
        #[graphql(desc = "Items per page, 1–100 (default 20)")] limit: Option<i64>,
    ) -> Result<Page<WebhookOutput>> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        let page = PageRequest::new(page, limit).gql()?;
        webhooks::list(app(ctx)?, &p, page).await.gql()
    }

    /// One webhook.
    async fn webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Webhook id")] id: ID,
    ) -> Result<WebhookOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        webhooks::get(app(ctx)?, &p, parse_id(&id, "id")?)
            .await
            .gql()
    }

    /// A webhook's signing secret.
    async fn webhook_secret(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Webhook id")] id: ID,
    ) -> Result<WebhookSecretOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        webhooks::secret(app(ctx)?, &p, parse_id(&id, "id")?)
            .await
            .gql()
    }

    /// A webhook's delivery log, newest first, with every try.
    #[graphql(complexity = "super::page_cost(limit.clone(), child_complexity)")]
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Webhook id")] webhook_id: ID,
        #[graphql(desc = "`pending`, `delivered` or `failed`")] status: Option<String>,
        #[graphql(desc = "Page number, from 1 (default 1)")] page: Option<i64>,
        #[graphql(desc = "Items per page, 1–100 (default 20)")] limit: Option<i64>,
    ) -> Result<Page<WebhookDeliveryOutput>> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        let page = PageRequest::new(page, limit).gql()?;
        let id = parse_id(&webhook_id, "webhookId")?;
        webhooks::deliveries(app(ctx)?, &p, id, status.as_deref(), page)
            .await
            .gql()
    }
}

/// Webhook mutations.
#[derive(Default)]
pub struct WebhookMutations;

#[Object]
impl WebhookMutations {
    /// Creates a webhook; the answer carries its signing secret.
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "URL, events and session filter")] input: CreateWebhookInput,
    ) -> Result<CreatedWebhookOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        webhooks::create(app(ctx)?, &p, input).await.gql()
    }

    /// Changes a webhook.
    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Webhook id")] id: ID,
        #[graphql(desc = "Fields to change; absent fields stay")] input: WebhookUpdateInput,
    ) -> Result<WebhookOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        let update = UpdateWebhookInput {
            url: input.url,
            events: input.events,
            session_ids: maybe(input.session_ids),
            description: maybe(input.description),
            enabled: input.enabled,
        };
        webhooks::update(app(ctx)?, &p, parse_id(&id, "id")?, update)
            .await
            .gql()
    }

    /// Deletes a webhook with its delivery log.
    async fn delete_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Webhook id")] id: ID,
    ) -> Result<bool> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        webhooks::delete(app(ctx)?, &p, parse_id(&id, "id")?)
            .await
            .gql()?;
        Ok(true)
    }

    /// Replaces a webhook's signing secret (the old one still signs for 24 h).
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Webhook id")] id: ID,
    ) -> Result<WebhookSecretOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        webhooks::rotate_secret(app(ctx)?, &p, parse_id(&id, "id")?)
            .await
            .gql()
    }

    /// Tries a delivery again now.
    async fn retry_webhook_delivery(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Webhook id")] webhook_id: ID,
        #[graphql(desc = "Delivery id")] delivery_id: ID,
    ) -> Result<WebhookDeliveryOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        let (id, delivery) = (
            parse_id(&webhook_id, "webhookId")?,
            parse_id(&delivery_id, "deliveryId")?,
        );
        webhooks::retry(app(ctx)?, &p, id, delivery).await.gql()
    }

    /// Sends a `webhook.test` event to a webhook.
    async fn test_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Webhook id")] id: ID,
    ) -> Result<WebhookDeliveryOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        webhooks::test(app(ctx)?, &p, parse_id(&id, "id")?)
            .await
            .gql()
    }
}
