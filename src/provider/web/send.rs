//! Outbound messages of a `web` session. The WhatsApp message id is derived from wagate's
//! message id, as WhatsApp Web clients choose their own ids: a send repeated after a crash
//! carries the same id, and WhatsApp and the recipient's phone treat it as the same message.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use uuid::Uuid;
use whatsapp_rust::{
    Client, Jid, SendOptions, buffa::MessageField, send::SendError as WaSendError,
    wacore::proto_helpers::MessageBuilderExt, waproto::whatsapp as wa,
};

use crate::{
    domain::MessageKind,
    phone::PhoneNumber,
    provider::{OutboundMessage, SendError, SentMessage, SessionContext},
};

/// The WhatsApp message id of wagate message `id`: `3EB0` and 20 hex digits of its SHA-256,
/// the shape WhatsApp Web uses.
pub fn message_id(id: Uuid) -> String {
    let digest = Sha256::digest(id.as_bytes());
    format!("3EB0{}", hex::encode_upper(&digest[..10]))
}

/// Sends one message through a connected client.
pub(super) async fn send(
    client: &Arc<Client>,
    _ctx: &SessionContext,
    to: PhoneNumber,
    msg: OutboundMessage,
) -> Result<SentMessage, SendError> {
    let to = Jid::pn(to.digits());
    let body = match msg.kind {
        MessageKind::Text => wa::Message::text(msg.body.unwrap_or_default()),
        MessageKind::Location => {
            let Some(place) = msg.location else {
                return Err(SendError::Permanent("A location needs coordinates".into()));
            };
            wa::Message {
                location_message: MessageField::some(wa::message::LocationMessage {
                    degrees_latitude: Some(place.latitude),
                    degrees_longitude: Some(place.longitude),
                    name: place.name,
                    address: place.address,
                    ..Default::default()
                }),
                ..Default::default()
            }
        }
        kind => {
            return Err(SendError::Permanent(format!(
                "The web provider cannot send {} messages yet",
                kind.as_str()
            )));
        }
    };
    let options = SendOptions::default().with_message_id(message_id(msg.message_id));
    match client.send_message_with_options(to, body, options).await {
        Ok(sent) => Ok(SentMessage {
            provider_message_id: sent.message_id,
        }),
        Err(e) => Err(classify(e)),
    }
}

/// Whether retrying can help.
fn classify(e: WaSendError) -> SendError {
    match e {
        WaSendError::InvalidRequest(m) => SendError::Permanent(format!("WhatsApp refused: {m}")),
        other => SendError::Transient(format!("WhatsApp Web: {other}")),
    }
}
