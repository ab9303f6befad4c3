//! Session queries and mutations.

use async_graphql::{Context, ID, Object, Result};

use super::{GqlAuth, GqlResultExt, app, mutation::parse_id};
use crate::service::{
    pagination::PageRequest,
    sessions::{
        self, ConnectOutput, CreateSessionInput, NumberCheckOutput, PairCodeInput, PairCodeOutput,
        RenameSessionInput, SandboxScanInput, SessionOutput, SessionPage,
    },
};

/// Session queries.
#[derive(Default)]
pub struct SessionQuery;

#[Object]
impl SessionQuery {
    /// The tenant's sessions (page from 1, limit 1–100, default 20).
    #[graphql(complexity = "super::page_cost(limit.clone(), child_complexity)")]
    async fn sessions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page number, from 1 (default 1)")] page: Option<i64>,
        #[graphql(desc = "Items per page, 1–100 (default 20)")] limit: Option<i64>,
    ) -> Result<SessionPage> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        let page = PageRequest::new(page, limit).gql()?;
        sessions::list(app(ctx)?, &p, page).await.gql()
    }

    /// One session.
    async fn session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Session id")] id: ID,
    ) -> Result<SessionOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        sessions::get(app(ctx)?, &p, parse_id(&id, "id")?)
            .await
            .gql()
    }

    /// Whether a phone number is on WhatsApp, asked through a connected session.
    async fn check_number(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Session id (a connected session)")] session_id: ID,
        #[graphql(desc = "Phone number in international format")] phone: String,
    ) -> Result<NumberCheckOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        sessions::check_number(app(ctx)?, &p, parse_id(&session_id, "sessionId")?, &phone)
            .await
            .gql()
    }
}

/// Session mutations.
#[derive(Default)]
pub struct SessionMutation;

#[Object]
impl SessionMutation {
    /// Create a session slot (`disconnected`).
    async fn create_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Name and provider of the new session")] input: CreateSessionInput,
    ) -> Result<SessionOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        sessions::create(app(ctx)?, &p, input).await.gql()
    }

    /// Start connecting: `qr_pending` (subscribe to `sessionQr`) or `connected`.
    async fn connect_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Session id")] id: ID,
    ) -> Result<ConnectOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        sessions::connect(app(ctx)?, &p, parse_id(&id, "id")?)
            .await
            .gql()
    }

    /// Disconnect, keeping the pairing.
    async fn disconnect_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Session id")] id: ID,
    ) -> Result<SessionOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        sessions::disconnect(app(ctx)?, &p, parse_id(&id, "id")?)
            .await
            .gql()
    }

    /// Forget the pairing.
    async fn logout_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Session id")] id: ID,
    ) -> Result<SessionOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        sessions::logout(app(ctx)?, &p, parse_id(&id, "id")?)
            .await
            .gql()
    }

    /// Log out and remove the session.
    async fn delete_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Session id")] id: ID,
    ) -> Result<bool> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        sessions::delete(app(ctx)?, &p, parse_id(&id, "id")?)
            .await
            .gql()?;
        Ok(true)
    }

    /// Rename a session.
    async fn rename_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Session id")] id: ID,
        #[graphql(desc = "The new name (1–100 characters)")] name: String,
    ) -> Result<SessionOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        sessions::rename(
            app(ctx)?,
            &p,
            parse_id(&id, "id")?,
            RenameSessionInput { name },
        )
        .await
        .gql()
    }

    /// Ask for a pairing code to type on the phone instead of scanning the QR code (while the
    /// session is connecting or has a QR code pending). Also published as `session.pairCode`.
    async fn request_pair_code(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Session id")] id: ID,
        #[graphql(desc = "The number of the phone that will type the code (international format)")]
        phone_number: String,
    ) -> Result<PairCodeOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        sessions::request_pair_code(
            app(ctx)?,
            &p,
            parse_id(&id, "id")?,
            PairCodeInput { phone_number },
        )
        .await
        .gql()
    }

    /// Sandbox sessions only: scan the pending QR code with a simulated phone.
    async fn sandbox_scan(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Session id (a sandbox session with a QR code pending)")] id: ID,
        #[graphql(desc = "The simulated phone's number (a random test number when omitted)")]
        phone_number: Option<String>,
    ) -> Result<SessionOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        sessions::sandbox_scan(
            app(ctx)?,
            &p,
            parse_id(&id, "id")?,
            SandboxScanInput { phone_number },
        )
        .await
        .gql()
    }
}
