//! Live subscriptions. Every stream is built from the subscriber's own tenant's channel, so
//! another tenant's events cannot reach it.

use async_graphql::{Context, ID, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, stream, stream::BoxStream};

use super::{GqlAuth, GqlResultExt, app, mutation::parse_id};
use crate::{
    events::EventPayload,
    service::{live, sessions::SessionStatus},
};

/// A QR code to show for a session.
#[derive(Clone, Debug, SimpleObject)]
pub struct QrEvent {
    /// The session.
    pub session_id: ID,
    /// The QR payload string.
    pub code: String,
    /// The QR as an SVG document.
    pub svg: String,
    /// When this code stops being valid.
    pub expires_at: DateTime<Utc>,
}

/// A session's status changed.
#[derive(Clone, Debug, SimpleObject)]
pub struct SessionStatusEvent {
    /// The session.
    pub session_id: ID,
    /// New status.
    pub status: SessionStatus,
    /// Paired number (digits, no `+`), if any.
    pub phone_number: Option<String>,
    /// True when connected.
    pub connected: bool,
    /// When it changed.
    pub at: DateTime<Utc>,
    /// Why (disconnections and failures).
    pub reason: Option<String>,
}

/// Subscriptions.
#[derive(Default)]
pub struct SubscriptionRoot;

/// Live events over `/graphql/ws` (graphql-transport-ws or the legacy graphql-ws protocol).
#[Subscription]
impl SubscriptionRoot {
    /// QR codes of one session: the one pending now (if any), then each new one.
    async fn session_qr(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The session whose QR codes to watch")] session_id: ID,
    ) -> Result<BoxStream<'static, QrEvent>> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        let id = parse_id(&session_id, "sessionId")?;
        let (current, live) = live::qr_events(app(ctx)?, &p, id).await.gql()?;
        let current_code = current.as_ref().map(|q| q.code.clone());
        let sid = session_id.clone();
        let initial = stream::iter(current.map(|q| QrEvent {
            session_id: sid.clone(),
            code: q.code,
            svg: q.svg,
            expires_at: q.expires_at,
        }));
        let live = live.filter_map(move |ev| {
            let out = match &ev.payload {
                EventPayload::SessionQr(q) if Some(&q.code) != current_code.as_ref() => {
                    Some(QrEvent {
                        session_id: session_id.clone(),
                        code: q.code.clone(),
                        svg: q.svg.clone(),
                        expires_at: q.expires_at,
                    })
                }
                _ => None,
            };
            async move { out }
        });
        Ok(initial.chain(live).boxed())
    }

    /// Message status changes and inbound messages of the tenant, or of one session.
    async fn message_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only events or messages of this session")] session_id: Option<ID>,
    ) -> Result<BoxStream<'static, super::MessageEvent>> {
        super::messages::message_events(ctx, session_id).await
    }

    /// Status changes of one session, or of all the tenant's sessions when `sessionId` is omitted.
    async fn session_status(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only events or messages of this session")] session_id: Option<ID>,
    ) -> Result<BoxStream<'static, SessionStatusEvent>> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        let only = session_id
            .as_ref()
            .map(|s| parse_id(s, "sessionId"))
            .transpose()?;
        let events = live::session_events(app(ctx)?, &p, only).await.gql()?;
        Ok(events
            .filter_map(|ev| {
                let out = match &ev.payload {
                    EventPayload::SessionStatus(s) => Some(SessionStatusEvent {
                        session_id: ID(ev.session_id.to_string()),
                        status: SessionStatus::parse(&s.status),
                        phone_number: s.phone_number.clone(),
                        connected: s.connected,
                        at: ev.at,
                        reason: s.reason.clone(),
                    }),
                    _ => None,
                };
                async move { out }
            })
            .boxed())
    }
}
