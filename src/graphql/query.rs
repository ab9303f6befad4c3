//! Auth and API-key queries.

use async_graphql::{Context, Object, Result};

use super::{GqlAuth, GqlResultExt, app};
use crate::service::{
    api_keys::{self, ApiKeyOutput},
    auth::{self, MeOutput},
};

/// Queries.
#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// The signed-in user and their tenant.
    async fn me(&self, ctx: &Context<'_>) -> Result<MeOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        auth::me(app(ctx)?, &p).await.gql()
    }

    /// The tenant's live API keys (no secrets).
    #[graphql(complexity = "20 * child_complexity")]
    async fn api_keys(&self, ctx: &Context<'_>) -> Result<Vec<ApiKeyOutput>> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        api_keys::list(app(ctx)?, &p).await.gql()
    }
}
