//! Receipts and received messages, from constructed crate values.

use whatsapp_rust::{
    Jid,
    buffa::MessageField,
    wacore::types::{events::Receipt, message::MessageSource, presence::ReceiptType},
    waproto::whatsapp as wa,
};

use super::*;

fn jid(s: &str) -> Jid {
    s.parse().unwrap()
}

fn receipt(kind: ReceiptType, from_me: bool) -> Receipt {
    Receipt::builder()
        .source(MessageSource {
            chat: jid("4915123456789@s.whatsapp.net"),
            sender: jid("4915123456789@s.whatsapp.net"),
            is_from_me: from_me,
            ..MessageSource::default()
        })
        .message_ids(vec!["3EB0AA".into(), "3EB0BB".into()])
        .timestamp(chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap())
        .r#type(kind)
        .offline(false)
        .build()
}

#[test]
fn receipts_update_each_message_they_name() {
    let (tenant, session) = (TenantId::new(), Uuid::now_v7());
    for (kind, want) in [
        (ReceiptType::Delivered, MessageStatus::Delivered),
        (ReceiptType::Read, MessageStatus::Read),
        (ReceiptType::Played, MessageStatus::Played),
        (ReceiptType::ServerError, MessageStatus::Failed),
    ] {
        let updates = receipt_updates(&receipt(kind, false), tenant, session);
        let ids: Vec<_> = updates
            .iter()
            .map(|u| match u {
                MessageUpdate::Status {
                    provider_message_id,
                    status,
                    error,
                    session_id,
                    ..
                } => {
                    assert_eq!(*status, want);
                    assert_eq!(*session_id, session);
                    assert_eq!(error.is_some(), want == MessageStatus::Failed);
                    provider_message_id.clone()
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, ["3EB0AA", "3EB0BB"]);
    }
    assert!(receipt_updates(&receipt(ReceiptType::ReadSelf, true), tenant, session).is_empty());
    assert!(receipt_updates(&receipt(ReceiptType::Retry, false), tenant, session).is_empty());
}

#[test]
fn the_sender_is_a_phone_number_even_behind_a_lid() {
    let direct = MessageSource {
        sender: jid("4915123456789@s.whatsapp.net"),
        ..MessageSource::default()
    };
    assert_eq!(sender_phone(&direct).unwrap().e164(), "+4915123456789");
    let lid = MessageSource {
        sender: jid("100000012345678@lid"),
        sender_alt: Some(jid("14155550123@s.whatsapp.net")),
        ..MessageSource::default()
    };
    assert_eq!(sender_phone(&lid).unwrap().e164(), "+14155550123");
    let unknown = MessageSource {
        sender: jid("100000012345678@lid"),
        ..MessageSource::default()
    };
    assert!(sender_phone(&unknown).is_none());
}

#[test]
fn message_contents_become_kinds_bodies_places_and_files() {
    let text = wa::Message {
        conversation: Some("hello".into()),
        ..Default::default()
    };
    let c = content(&text).unwrap();
    assert_eq!(
        (c.kind, c.body.as_deref()),
        (MessageKind::Text, Some("hello"))
    );

    let extended = wa::Message {
        extended_text_message: MessageField::some(wa::message::ExtendedTextMessage {
            text: Some("see https://example.com".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        content(&extended).unwrap().body.as_deref(),
        Some("see https://example.com")
    );

    let doc = wa::Message {
        document_message: MessageField::some(wa::message::DocumentMessage {
            mimetype: Some("application/pdf".into()),
            file_name: Some("invoice.pdf".into()),
            caption: Some("March".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let c = content(&doc).unwrap();
    assert_eq!(c.kind, MessageKind::Document);
    assert_eq!(c.body.as_deref(), Some("March"));
    let (_, mime, name) = c.media.unwrap();
    assert_eq!(
        (mime.as_str(), name.as_deref()),
        ("application/pdf", Some("invoice.pdf"))
    );

    let voice = wa::Message {
        audio_message: MessageField::some(wa::message::AudioMessage {
            ptt: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    let c = content(&voice).unwrap();
    assert_eq!(c.kind, MessageKind::Audio);
    assert_eq!(
        c.media.unwrap().1,
        "audio/ogg",
        "the default type of a voice note"
    );

    let sticker = wa::Message {
        sticker_message: MessageField::some(wa::message::StickerMessage::default()),
        ..Default::default()
    };
    let c = content(&sticker).unwrap();
    assert_eq!(
        (c.kind, c.media.unwrap().1.as_str()),
        (MessageKind::Sticker, "image/webp")
    );

    let place = wa::Message {
        location_message: MessageField::some(wa::message::LocationMessage {
            degrees_latitude: Some(52.52),
            degrees_longitude: Some(13.405),
            name: Some("Alexanderplatz".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let c = content(&place).unwrap();
    assert_eq!(c.kind, MessageKind::Location);
    let l = c.location.unwrap();
    assert_eq!(
        (l.latitude, l.longitude, l.name.as_deref()),
        (52.52, 13.405, Some("Alexanderplatz"))
    );

    let card = wa::Message {
        contact_message: MessageField::some(wa::message::ContactMessage {
            display_name: Some("Ana".into()),
            vcard: Some("BEGIN:VCARD\nFN:Ana\nEND:VCARD".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let c = content(&card).unwrap();
    assert_eq!(c.kind, MessageKind::Contact);
    assert!(c.body.unwrap().starts_with("BEGIN:VCARD"));

    let reaction = wa::Message {
        reaction_message: MessageField::some(wa::message::ReactionMessage {
            text: Some("👍".into()),
            key: MessageField::some(wa::MessageKey {
                id: Some("3EB0REACTED".into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let c = content(&reaction).unwrap();
    assert_eq!(
        (c.kind, c.body.as_deref()),
        (MessageKind::Reaction, Some("👍"))
    );
    assert_eq!(quoted_id(&reaction).as_deref(), Some("3EB0REACTED"));

    // A view-once wrapper is unwrapped; a protocol message is not stored.
    let view_once = wa::Message {
        view_once_message: MessageField::some(wa::message::FutureProofMessage {
            message: MessageField::some(Box::new(text.clone()).as_ref().clone()),
        }),
        ..Default::default()
    };
    assert_eq!(content(&view_once).unwrap().body.as_deref(), Some("hello"));
    let protocol = wa::Message {
        protocol_message: MessageField::some(wa::message::ProtocolMessage::default()),
        ..Default::default()
    };
    assert!(content(&protocol).is_none());
}

#[test]
fn a_reply_names_the_message_it_quotes() {
    let reply = wa::Message {
        extended_text_message: MessageField::some(wa::message::ExtendedTextMessage {
            text: Some("yes".into()),
            context_info: MessageField::some(wa::ContextInfo {
                stanza_id: Some("3EB0ABCDEF".into()),
                participant: Some("14155550123@s.whatsapp.net".into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(quoted_id(&reply).as_deref(), Some("3EB0ABCDEF"));
    let plain = wa::Message {
        conversation: Some("hi".into()),
        ..Default::default()
    };
    assert_eq!(quoted_id(&plain), None);
}
