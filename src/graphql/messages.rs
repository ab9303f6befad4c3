//! Message queries, sends (media through the GraphQL multipart request spec) and the
//! `messageEvents` subscription.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject, Upload};
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, stream::BoxStream};

use super::{GqlAuth, GqlResultExt, app, mutation::parse_id};
use crate::{
    events::EventPayload,
    service::{
        messages::{
            self, Direction, MessageFilter, MessageKind, MessageOutput, MessagePage, MessageStatus,
            SendLocationInput, SendMediaInput, SendOutput, SendTextInput,
        },
        pagination::PageRequest,
    },
};

/// Message queries.
#[derive(Default)]
pub struct MessageQuery;

#[Object]
impl MessageQuery {
    /// The tenant's messages, newest first, optionally filtered.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "super::page_cost(limit.clone(), child_complexity)")]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only events or messages of this session")] session_id: Option<ID>,
        #[graphql(desc = "Only outbound or only inbound messages")] direction: Option<Direction>,
        #[graphql(desc = "Only messages in this status")] status: Option<MessageStatus>,
        #[graphql(desc = "Only messages to or from this number")] to: Option<String>,
        #[graphql(desc = "Page number, from 1 (default 1)")] page: Option<i64>,
        #[graphql(desc = "Items per page, 1–100 (default 20)")] limit: Option<i64>,
    ) -> Result<MessagePage> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        let page = PageRequest::new(page, limit).gql()?;
        let filter = MessageFilter {
            session_id: session_id.map(|s| s.to_string()),
            direction: direction.map(|d| d.as_str().to_owned()),
            status: status.map(|s| s.as_str().to_owned()),
            to,
        };
        messages::list(app(ctx)?, &p, filter, page).await.gql()
    }

    /// One message and its delivery status.
    async fn message(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Message id")] id: ID,
    ) -> Result<MessageOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        messages::get(app(ctx)?, &p, parse_id(&id, "id")?)
            .await
            .gql()
    }
}

/// Message sends.
#[derive(Default)]
pub struct MessageMutation;

#[Object]
impl MessageMutation {
    /// Queue a text message (1–4096 characters). The same `idempotencyKey` within 24 h
    /// returns the first message instead of sending again.
    async fn send_text(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The connected session to send through")] session_id: ID,
        #[graphql(
            desc = "Recipient: a phone number in any international format, or a group jid (…@g.us)"
        )]
        to: String,
        #[graphql(desc = "Message text, 1–4096 characters")] text: String,
        #[graphql(desc = "An earlier message of the same session to reply to (shown quoted)")]
        quoted_message_id: Option<ID>,
        #[graphql(
            desc = "The same key within 24 h returns the first message instead of sending again"
        )]
        idempotency_key: Option<String>,
    ) -> Result<SendOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        let key = messages::idempotency_key(idempotency_key.as_deref()).gql()?;
        let input = SendTextInput {
            session_id: session_id.to_string(),
            to,
            text,
            quoted_message_id: quoted_message_id.map(|q| q.to_string()),
        };
        messages::send_text(app(ctx)?, &p, input, key).await.gql()
    }

    /// Queue an image, document, video or audio message. `file` is an `Upload` (GraphQL
    /// multipart request); its type is detected from its bytes.
    #[allow(clippy::too_many_arguments)]
    async fn send_media(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "type", desc = "IMAGE, DOCUMENT, VIDEO or AUDIO")] kind: MessageKind,
        #[graphql(desc = "The connected session to send through")] session_id: ID,
        #[graphql(
            desc = "Recipient: a phone number in any international format, or a group jid (…@g.us)"
        )]
        to: String,
        #[graphql(
            desc = "The file, as a GraphQL multipart upload; its type is detected from its bytes"
        )]
        file: Upload,
        #[graphql(desc = "Optional caption, at most 1024 characters (not for audio)")]
        caption: Option<String>,
        #[graphql(desc = "File name shown to the recipient (documents)")] file_name: Option<String>,
        #[graphql(desc = "An earlier message of the same session to reply to (shown quoted)")]
        quoted_message_id: Option<ID>,
        #[graphql(
            desc = "The same key within 24 h returns the first message instead of sending again"
        )]
        idempotency_key: Option<String>,
    ) -> Result<SendOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        if !kind.is_media() {
            return Err(crate::error::AppError::field(
                "type",
                "type must be IMAGE, DOCUMENT, VIDEO or AUDIO",
            ))
            .gql();
        }
        let state = app(ctx)?;
        let key = messages::idempotency_key(idempotency_key.as_deref()).gql()?;
        let upload = file.value(ctx)?;
        let content = tokio::fs::File::from_std(upload.content);
        let staged = messages::stage_upload(state, &p, kind, Some(upload.filename), content)
            .await
            .gql()?;
        let input = SendMediaInput {
            session_id: session_id.to_string(),
            to,
            caption,
            file_name,
            quoted_message_id: quoted_message_id.map(|q| q.to_string()),
        };
        messages::send_media(state, &p, kind, input, Some(staged), key)
            .await
            .gql()
    }

    /// Queue a location message.
    #[allow(clippy::too_many_arguments)]
    async fn send_location(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The connected session to send through")] session_id: ID,
        #[graphql(
            desc = "Recipient: a phone number in any international format, or a group jid (…@g.us)"
        )]
        to: String,
        #[graphql(desc = "Latitude in degrees, -90 to 90")] latitude: f64,
        #[graphql(desc = "Longitude in degrees, -180 to 180")] longitude: f64,
        #[graphql(desc = "Place name shown with the pin")] name: Option<String>,
        #[graphql(desc = "Address shown under the place name")] address: Option<String>,
        #[graphql(desc = "An earlier message of the same session to reply to (shown quoted)")]
        quoted_message_id: Option<ID>,
        #[graphql(
            desc = "The same key within 24 h returns the first message instead of sending again"
        )]
        idempotency_key: Option<String>,
    ) -> Result<SendOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        let key = messages::idempotency_key(idempotency_key.as_deref()).gql()?;
        let input = SendLocationInput {
            session_id: session_id.to_string(),
            to,
            latitude: Some(latitude),
            longitude: Some(longitude),
            name,
            address,
            quoted_message_id: quoted_message_id.map(|q| q.to_string()),
        };
        messages::send_location(app(ctx)?, &p, input, key)
            .await
            .gql()
    }
}

/// What happened to a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
pub enum MessageEventType {
    /// An outbound message changed status (`message.status`).
    Status,
    /// An inbound message arrived (`message.received`).
    Received,
}

/// A message event.
#[derive(Clone, Debug, SimpleObject)]
pub struct MessageEvent {
    /// Status change or arrival.
    #[graphql(name = "type")]
    pub kind: MessageEventType,
    /// The session.
    pub session_id: ID,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The message as it is now.
    pub message: MessageOutput,
}

/// Builds the `messageEvents` stream for a tenant, optionally one session.
pub(super) async fn message_events(
    ctx: &Context<'_>,
    session_id: Option<ID>,
) -> Result<BoxStream<'static, MessageEvent>> {
    let p = ctx.data::<GqlAuth>()?.require().gql()?;
    let only = session_id
        .as_ref()
        .map(|s| parse_id(s, "sessionId"))
        .transpose()?;
    let events = crate::service::live::message_events(app(ctx)?, &p, only)
        .await
        .gql()?;
    Ok(events
        .filter_map(|ev| {
            let out = match &ev.payload {
                EventPayload::MessageStatus(m) => Some((MessageEventType::Status, m)),
                EventPayload::MessageReceived(m) => Some((MessageEventType::Received, m)),
                _ => None,
            }
            .map(|(kind, m)| MessageEvent {
                kind,
                session_id: ID(ev.session_id.to_string()),
                at: ev.at,
                message: (**m).clone(),
            });
            async move { out }
        })
        .boxed())
}
