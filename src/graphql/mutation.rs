//! Auth and API-key mutations.

use async_graphql::{Context, ID, Object, Result};
use uuid::Uuid;

use super::{ClientAddr, GqlAuth, GqlResultExt, app};
use crate::{
    error::AppError,
    service::{
        api_keys::{self, ApiKeyCreatedOutput, CreateApiKeyInput},
        auth::{self, AuthOutput, LoginInput, RefreshInput, RegisterInput},
    },
};

/// Mutations.
#[derive(Default)]
pub struct AuthMutation;

fn count_auth_attempt(ctx: &Context<'_>) -> Result<()> {
    if let Ok(ClientAddr(ip)) = ctx.data::<ClientAddr>() {
        app(ctx)?.check_auth_rate(*ip).gql()?;
    }
    Ok(())
}

/// Parses an `ID!` argument as a UUID (VALIDATION_ERROR otherwise).
pub(super) fn parse_id(id: &ID, field: &str) -> Result<Uuid> {
    Uuid::parse_str(id.as_str())
        .map_err(|_| AppError::field(field, "Must be a UUID"))
        .gql()
}

#[Object]
impl AuthMutation {
    /// Create a tenant and its owner user, and sign in.
    async fn register(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new account: email, password, name and company")]
        input: RegisterInput,
    ) -> Result<AuthOutput> {
        count_auth_attempt(ctx)?;
        auth::register(app(ctx)?, input).await.gql()
    }

    /// Exchange email and password for tokens.
    async fn login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Email and password")] input: LoginInput,
    ) -> Result<AuthOutput> {
        count_auth_attempt(ctx)?;
        auth::login(app(ctx)?, input).await.gql()
    }

    /// Rotate a refresh token; the presented one stops working.
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The refresh token from sign-in or the previous refresh")]
        refresh_token: String,
    ) -> Result<AuthOutput> {
        count_auth_attempt(ctx)?;
        auth::refresh(app(ctx)?, RefreshInput { refresh_token })
            .await
            .gql()
    }

    /// Revoke a refresh token (idempotent).
    async fn logout(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The refresh token from sign-in or the previous refresh")]
        refresh_token: String,
    ) -> Result<bool> {
        auth::logout(app(ctx)?, RefreshInput { refresh_token })
            .await
            .gql()?;
        Ok(true)
    }

    /// Create an API key; `key` is returned only this once.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A label for the key, e.g. \"CRM integration\"")] name: String,
        #[graphql(
            desc = "Scopes to grant; default `send_messages`, `read_messages`, `read_sessions`, `manage_contacts`; never `manage_api_keys`"
        )]
        scopes: Option<Vec<String>>,
    ) -> Result<ApiKeyCreatedOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        api_keys::create(app(ctx)?, &p, CreateApiKeyInput { name, scopes })
            .await
            .gql()
    }

    /// Revoke an API key of the caller's tenant.
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "API key id")] id: ID,
    ) -> Result<bool> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        let id = parse_id(&id, "id")?;
        api_keys::revoke(app(ctx)?, &p, id).await.gql()?;
        Ok(true)
    }
}
