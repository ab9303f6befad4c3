//! Outbound messages of a `web` session. The WhatsApp message id is derived from wagate's
//! message id, as WhatsApp Web clients choose their own ids: a send repeated after a crash
//! carries the same id, and WhatsApp and the recipient's phone treat it as the same message.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use uuid::Uuid;
use whatsapp_rust::{
    Client, Jid, SendOptions, UploadOptions,
    buffa::MessageField,
    media::{
        AudioOptions, DocumentOptions, ImageOptions, VideoOptions, audio_message, document_message,
        image_message, video_message,
    },
    send::SendError as WaSendError,
    wacore::{
        download::MediaType,
        proto_helpers::{MessageBuilderExt, MessageExt},
    },
    waproto::whatsapp as wa,
};

use crate::{
    domain::MessageKind,
    provider::{OutboundMessage, Quoted, Recipient, SendError, SentMessage, SessionContext},
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
    ctx: &SessionContext,
    msg: OutboundMessage,
) -> Result<SentMessage, SendError> {
    let to: Jid = match &msg.to {
        Recipient::Phone(p) => Jid::pn(p.digits()),
        Recipient::Group(jid) => jid
            .parse()
            .map_err(|e| SendError::Permanent(format!("Not a group id {jid}: {e}")))?,
    };
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
        kind => media_message(client, ctx, kind, &msg).await?,
    };
    let mut body = body;
    if let Some(q) = &msg.quoted {
        body.set_context_info(quote(q, client, &to));
    }
    let options = SendOptions::default().with_message_id(message_id(msg.message_id));
    match client.send_message_with_options(to, body, options).await {
        Ok(sent) => Ok(SentMessage {
            provider_message_id: sent.message_id,
        }),
        Err(e) => Err(classify(e)),
    }
}

/// Uploads the message's file (encrypted, to WhatsApp's media servers) and builds the media
/// message. Ogg/Opus audio goes as a voice note (PTT), other audio as a file to play.
async fn media_message(
    client: &Client,
    ctx: &SessionContext,
    kind: MessageKind,
    msg: &OutboundMessage,
) -> Result<wa::Message, SendError> {
    let Some(file) = &msg.media else {
        return Err(SendError::Permanent(format!(
            "A {} message needs a file",
            kind.as_str()
        )));
    };
    let bytes = read_media(ctx, &file.key).await?;
    let media_type = match kind {
        MessageKind::Image => MediaType::Image,
        MessageKind::Video => MediaType::Video,
        MessageKind::Audio => MediaType::Audio,
        _ => MediaType::Document,
    };
    let upload = client
        .upload(bytes, media_type, UploadOptions::default())
        .await
        .map_err(|e| SendError::Transient(format!("Uploading the file to WhatsApp: {e:#}")))?;
    let caption = msg.body.clone();
    let mime = Some(file.mime.clone());
    Ok(match kind {
        MessageKind::Image => image_message(
            upload,
            ImageOptions {
                caption,
                mimetype: mime,
                ..Default::default()
            },
        ),
        MessageKind::Video => video_message(
            upload,
            VideoOptions {
                caption,
                mimetype: mime,
                ..Default::default()
            },
        ),
        MessageKind::Audio => {
            let voice = is_voice_note(&file.mime);
            let mimetype = if voice {
                Some("audio/ogg; codecs=opus".to_owned())
            } else {
                mime
            };
            audio_message(
                upload,
                AudioOptions {
                    mimetype,
                    ptt: Some(voice),
                    ..Default::default()
                },
            )
        }
        _ => document_message(
            upload,
            DocumentOptions {
                mimetype: mime,
                title: file.file_name.clone(),
                file_name: file.file_name.clone(),
                caption,
                ..Default::default()
            },
        ),
    })
}

/// Whether audio of this type plays as a voice note: Ogg (Opus), as WhatsApp records them.
pub fn is_voice_note(mime: &str) -> bool {
    let base = mime.split(';').next().unwrap_or_default().trim();
    base.eq_ignore_ascii_case("audio/ogg") || base.eq_ignore_ascii_case("audio/opus")
}

/// The stored file's bytes.
async fn read_media(ctx: &SessionContext, key: &str) -> Result<Vec<u8>, SendError> {
    use tokio::io::AsyncReadExt;
    let Some((len, mut reader)) = ctx
        .media
        .open(key)
        .await
        .map_err(|e| SendError::Transient(format!("Reading the file: {e}")))?
    else {
        return Err(SendError::Permanent("The message's file is gone".into()));
    };
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    reader
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| SendError::Transient(format!("Reading the file: {e}")))?;
    Ok(bytes)
}

/// The context that shows `q` quoted above a reply in chat `chat`.
fn quote(q: &Quoted, client: &Client, chat: &Jid) -> wa::ContextInfo {
    let author = if q.from_me {
        client.pn().map(|j| j.to_non_ad())
    } else {
        q.author
            .as_deref()
            .map(Jid::pn)
            .or_else(|| Some(chat.clone()))
    };
    wa::ContextInfo {
        stanza_id: Some(q.provider_message_id.clone()),
        participant: author.map(|j| j.to_string()),
        quoted_message: MessageField::some(wa::Message::text(q.text.clone().unwrap_or_default())),
        ..Default::default()
    }
}

/// Whether retrying can help.
fn classify(e: WaSendError) -> SendError {
    match e {
        WaSendError::InvalidRequest(m) => SendError::Permanent(format!("WhatsApp refused: {m}")),
        other => SendError::Transient(format!("WhatsApp Web: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_per_message_and_shaped_like_whatsapp_webs() {
        let id = Uuid::now_v7();
        assert_eq!(message_id(id), message_id(id));
        assert_ne!(message_id(id), message_id(Uuid::now_v7()));
        let wa = message_id(id);
        assert_eq!(wa.len(), 24);
        assert!(wa.starts_with("3EB0"));
        assert!(
            wa[4..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase())
        );
    }

    #[test]
    fn ogg_audio_is_a_voice_note() {
        for voice in [
            "audio/ogg",
            "audio/ogg; codecs=opus",
            "AUDIO/OGG",
            "audio/opus",
        ] {
            assert!(is_voice_note(voice), "{voice}");
        }
        for file in ["audio/mpeg", "audio/mp4", "audio/aac", "video/ogg"] {
            assert!(!is_voice_note(file), "{file}");
        }
    }
}
