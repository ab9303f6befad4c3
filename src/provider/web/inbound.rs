//! What a `web` session receives: receipts for the messages it sent, and messages written to
//! it. Messages reach the gateway through the crate's inbound durability hook, so WhatsApp
//! gets its acknowledgement only after the message (and its media) is stored; a message that
//! could not be stored is delivered again on the next connect.

use std::sync::Arc;

use whatsapp_rust::{
    Client, InboundDurabilityHook,
    wacore::{
        download::Downloadable,
        proto_helpers::MessageExt,
        types::{
            events::{InboundMessage as WaInbound, Receipt},
            message::MessageSource,
            presence::ReceiptType,
        },
    },
    waproto::whatsapp as wa,
};

use super::events::phone_of_user;
use uuid::Uuid;

use crate::{
    domain::{Location, MessageKind, MessageStatus, ids::TenantId},
    phone::PhoneNumber,
    provider::{InboundMessage, MediaFile, MessageUpdate, SessionContext},
};

/// The status updates one receipt carries (one per message id), if it is about messages
/// this session sent.
pub fn receipt_updates(receipt: &Receipt, tenant: TenantId, session: Uuid) -> Vec<MessageUpdate> {
    let (status, error) = match &receipt.r#type {
        ReceiptType::Delivered => (MessageStatus::Delivered, None),
        ReceiptType::Read => (MessageStatus::Read, None),
        ReceiptType::Played => (MessageStatus::Played, None),
        ReceiptType::ServerError => (
            MessageStatus::Failed,
            Some("WhatsApp could not deliver the message".to_owned()),
        ),
        // Our own reads on the phone, retries and the rest say nothing about our sends.
        _ => return Vec::new(),
    };
    if receipt.source.is_from_me {
        return Vec::new();
    }
    receipt
        .message_ids
        .iter()
        .map(|id| MessageUpdate::Status {
            tenant_id: tenant,
            session_id: session,
            message_id: None,
            provider_message_id: id.to_string(),
            status,
            at: receipt.timestamp,
            error: error.clone(),
        })
        .collect()
}

/// The phone number of whoever wrote a message: its sender when that is a phone-number id,
/// else the phone number WhatsApp gave alongside a LID.
pub fn sender_phone(source: &MessageSource) -> Option<PhoneNumber> {
    [Some(&source.sender), source.sender_alt.as_ref()]
        .into_iter()
        .flatten()
        .find(|j| j.is_pn())
        .and_then(|j| phone_of_user(&j.user))
}

/// The number behind a LID, from the client's LID ↔ number map (kept in our store).
async fn lid_phone(client: &Client, sender: &whatsapp_rust::Jid) -> Option<PhoneNumber> {
    if !sender.is_lid() {
        return None;
    }
    let entry = client.get_lid_pn_entry(sender).await.ok().flatten()?;
    phone_of_user(&entry.phone_number)
}

/// A received message's content, before its media is fetched.
pub struct Content<'a> {
    /// What it carries.
    pub kind: MessageKind,
    /// Text or caption.
    pub body: Option<String>,
    /// The place, for locations.
    pub location: Option<Location>,
    /// The file to download, its type and its name.
    pub media: Option<(&'a dyn Downloadable, String, Option<String>)>,
}

impl<'a> Content<'a> {
    fn text(body: Option<String>) -> Self {
        Self {
            kind: MessageKind::Text,
            body,
            location: None,
            media: None,
        }
    }

    fn media(
        kind: MessageKind,
        body: Option<String>,
        file: &'a dyn Downloadable,
        mime: Option<&str>,
        default_mime: &str,
        name: Option<String>,
    ) -> Self {
        Self {
            kind,
            body,
            location: None,
            media: Some((file, mime.unwrap_or(default_mime).to_owned(), name)),
        }
    }
}

/// What a message carries, or `None` for what is not a message to store (protocol
/// messages, key distribution, edits and the like).
pub fn content(message: &wa::Message) -> Option<Content<'_>> {
    let m = message.get_base_message();
    if let Some(text) = &m.conversation {
        return Some(Content::text(Some(text.clone())));
    }
    if let Some(x) = m.extended_text_message.as_option() {
        return Some(Content::text(x.text.clone()));
    }
    if let Some(x) = m.image_message.as_option() {
        let (caption, mime) = (x.caption.clone(), x.mimetype.as_deref());
        return Some(Content::media(
            MessageKind::Image,
            caption,
            x,
            mime,
            "image/jpeg",
            None,
        ));
    }
    if let Some(x) = m.sticker_message.as_option() {
        let mime = x.mimetype.as_deref();
        return Some(Content::media(
            MessageKind::Sticker,
            None,
            x,
            mime,
            "image/webp",
            None,
        ));
    }
    if let Some(x) = m.video_message.as_option() {
        let (caption, mime) = (x.caption.clone(), x.mimetype.as_deref());
        return Some(Content::media(
            MessageKind::Video,
            caption,
            x,
            mime,
            "video/mp4",
            None,
        ));
    }
    if let Some(x) = m.audio_message.as_option() {
        let mime = x.mimetype.as_deref();
        return Some(Content::media(
            MessageKind::Audio,
            None,
            x,
            mime,
            "audio/ogg",
            None,
        ));
    }
    if let Some(x) = m.document_message.as_option() {
        let (caption, mime) = (x.caption.clone(), x.mimetype.as_deref());
        let name = x.file_name.clone().or_else(|| x.title.clone());
        let kind = MessageKind::Document;
        return Some(Content::media(
            kind,
            caption,
            x,
            mime,
            "application/octet-stream",
            name,
        ));
    }
    if let Some(x) = m.location_message.as_option() {
        return Some(Content {
            kind: MessageKind::Location,
            body: x.comment.clone(),
            location: Some(Location {
                latitude: x.degrees_latitude.unwrap_or_default(),
                longitude: x.degrees_longitude.unwrap_or_default(),
                name: x.name.clone(),
                address: x.address.clone(),
            }),
            media: None,
        });
    }
    if let Some(x) = m.contact_message.as_option() {
        // A contact card: its vCard as the text, so no detail is lost.
        let card = x.vcard.clone().or_else(|| x.display_name.clone());
        return Some(Content {
            kind: MessageKind::Contact,
            ..Content::text(card)
        });
    }
    if let Some(x) = m.reaction_message.as_option() {
        return Some(Content {
            kind: MessageKind::Reaction,
            ..Content::text(Some(x.text.clone().unwrap_or_default()))
        });
    }
    None
}

/// The WhatsApp id of the message a reply quotes.
pub fn quoted_id(message: &wa::Message) -> Option<String> {
    let m = message.get_base_message();
    // A reaction names the message it reacts to by its key.
    if let Some(r) = m.reaction_message.as_option() {
        return r.key.as_option().and_then(|k| k.id.clone());
    }
    macro_rules! stanza_id {
        ($($field:ident),+) => {
            $(
                if let Some(x) = m.$field.as_option()
                    && let Some(ctx) = x.context_info.as_option()
                    && let Some(id) = ctx.stanza_id.as_ref().filter(|id| !id.is_empty())
                {
                    return Some(id.clone());
                }
            )+
        };
    }
    stanza_id!(
        extended_text_message,
        image_message,
        video_message,
        audio_message,
        document_message,
        sticker_message,
        location_message,
        contact_message
    );
    None
}

/// Stores what WhatsApp delivers before it is acknowledged.
pub(super) struct Commit {
    pub ctx: SessionContext,
}

impl Commit {
    /// The gateway's message for one delivered message, its media already stored.
    async fn inbound(&self, client: &Client, msg: &WaInbound) -> Option<InboundMessage> {
        let info = &msg.info;
        if info.source.is_from_me {
            return None;
        }
        let content = content(&msg.message)?;
        let from = match sender_phone(&info.source) {
            Some(p) => p,
            // A sender known only by LID: the client's LID ↔ number map may know the number.
            None => match lid_phone(client, &info.source.sender).await {
                Some(p) => p,
                None => {
                    tracing::warn!(session = %self.ctx.session_id, "a message from a sender whose number WhatsApp did not give was not stored");
                    return None;
                }
            },
        };
        let mut error = None;
        let media = match content.media {
            Some((file, mime, file_name)) => match self.fetch(client, file).await {
                Ok((key, size)) => Some(MediaFile {
                    key,
                    mime,
                    size,
                    file_name,
                }),
                Err(e) => {
                    tracing::warn!(session = %self.ctx.session_id, error = %e, "inbound media not downloaded");
                    error = Some(format!(
                        "The {} could not be downloaded: {e}",
                        content.kind.as_str()
                    ));
                    None
                }
            },
            None => None,
        };
        Some(InboundMessage {
            tenant_id: self.ctx.tenant_id,
            session_id: self.ctx.session_id,
            provider_message_id: info.id.to_string(),
            from,
            group: info.source.is_group.then(|| info.source.chat.to_string()),
            kind: content.kind,
            body: content.body,
            media,
            location: content.location,
            error,
            quoted_provider_id: quoted_id(&msg.message),
            at: info.timestamp,
        })
    }

    /// Downloads and decrypts a file into the media store: (key, size).
    async fn fetch(
        &self,
        client: &Client,
        file: &dyn Downloadable,
    ) -> anyhow::Result<(String, i64)> {
        let bytes = client.download(file).await?;
        let key = self.ctx.media.put_bytes(&bytes).await?;
        Ok((key, i64::try_from(bytes.len()).unwrap_or(i64::MAX)))
    }
}

impl Commit {
    /// Stores a batch in order; an error means some message was not stored.
    pub async fn store(&self, client: &Client, batch: &[WaInbound]) -> anyhow::Result<()> {
        for msg in batch {
            let Some(inbound) = self.inbound(client, msg).await else {
                continue;
            };
            if !self
                .ctx
                .updates
                .report(MessageUpdate::Inbound(Box::new(inbound)))
                .await
            {
                anyhow::bail!(
                    "the gateway could not store the message; WhatsApp will deliver it again"
                );
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl InboundDurabilityHook for Commit {
    async fn on_messages(&self, client: Arc<Client>, batch: &[WaInbound]) -> anyhow::Result<()> {
        self.store(&client, batch).await
    }
}

#[cfg(test)]
#[path = "inbound_tests.rs"]
mod tests;
