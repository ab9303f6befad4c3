//! Every connection event of the crate, constructed, against the session event it becomes.

use std::time::Duration;

use chrono::TimeZone;
use whatsapp_rust::Jid;
use whatsapp_rust::wacore::{
    net::DisconnectReason,
    types::events::{
        ClientOutdated, ConnectFailure, Connected, Disconnected, LoggedOut, PairError, PairSuccess,
        PairingCode, PairingQrCode, PairingQrCodesExhausted, StreamError, StreamReplaced,
        TempBanReason, TemporaryBan,
    },
};

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

fn jid(s: &str) -> Jid {
    s.parse().unwrap()
}

fn run(events: Vec<Event>) -> (Vec<Option<ProviderEvent>>, Link) {
    let mut link = Link::default();
    let out = events
        .iter()
        .map(|e| translate(e, &mut link, now()))
        .collect();
    (out, link)
}

#[test]
fn qr_codes_rotate_and_pairing_connects_with_the_linked_number() {
    let (out, link) = run(vec![
        Event::PairingQrCode(
            PairingQrCode::builder()
                .code("2@abc,def".into())
                .timeout(Duration::from_secs(60))
                .build(),
        ),
        Event::PairingQrCode(
            PairingQrCode::builder()
                .code("2@ghi,def".into())
                .timeout(Duration::from_secs(20))
                .build(),
        ),
        Event::PairSuccess(
            PairSuccess::builder()
                .id(jid("4915123456789:3@s.whatsapp.net"))
                .lid(jid("100000012345678:3@lid"))
                .business_name(String::new())
                .platform("android".into())
                .build(),
        ),
        Event::Connected(Connected::builder().build()),
    ]);
    match &out[0] {
        Some(ProviderEvent::Qr { code, expires_at }) => {
            assert_eq!(code, "2@abc,def");
            assert_eq!(*expires_at, now() + chrono::Duration::seconds(60));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&out[1], Some(ProviderEvent::Qr { code, .. }) if code == "2@ghi,def"));
    assert!(out[2].is_none(), "pairing alone does not connect");
    match &out[3] {
        Some(ProviderEvent::Connected { phone }) => assert_eq!(phone.e164(), "+4915123456789"),
        other => panic!("{other:?}"),
    }
    assert!(link.just_paired, "pairing asks for an immediate reconnect");
    assert_eq!(link.failures, 0);
}

#[test]
fn qr_codes_exhausted_disconnect_with_a_reason() {
    let (out, _) = run(vec![Event::PairingQrCodesExhausted(
        PairingQrCodesExhausted::builder()
            .disconnected(true)
            .build(),
    )]);
    assert!(
        matches!(&out[0], Some(ProviderEvent::Disconnected { reason }) if reason == QR_EXHAUSTED)
    );
}

#[test]
fn a_pair_code_is_reported_for_the_number_it_was_asked_for() {
    let code = || {
        Event::PairingCode(
            PairingCode::builder()
                .code("ABCD-EFGH".into())
                .timeout(Duration::from_secs(180))
                .build(),
        )
    };
    let mut link = Link::default();
    assert!(
        translate(&code(), &mut link, now()).is_none(),
        "not asked for"
    );
    link.pair_phone = Some(PhoneNumber::parse("+4915123456789").unwrap());
    match translate(&code(), &mut link, now()) {
        Some(ProviderEvent::PairCode { code, phone }) => {
            assert_eq!(code, "ABCD-EFGH");
            assert_eq!(phone.e164(), "+4915123456789");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn drops_reconnect_with_growing_backoff_until_connected() {
    let drop = |r: DisconnectReason| Event::Disconnected(Disconnected::builder().reason(r).build());
    let mut link = Link {
        phone: phone_of_user("4915123456789"),
        ..Link::default()
    };
    let mut delays = Vec::new();
    for (i, e) in [
        drop(DisconnectReason::StreamEnded),
        drop(DisconnectReason::ReadError("reset".into())),
        Event::StreamError(StreamError::builder().code("515".into()).build()),
    ]
    .iter()
    .enumerate()
    {
        assert!(
            translate(e, &mut link, now()).is_none(),
            "a drop is retried, not reported"
        );
        match link.next_retry("closed") {
            ProviderEvent::Reconnecting {
                attempt,
                retry_in,
                reason,
            } => {
                assert_eq!(attempt as usize, i + 1);
                assert_ne!(reason, "closed", "the drop's own reason is reported");
                delays.push(retry_in);
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
    assert!(matches!(
        translate(
            &Event::Connected(Connected::builder().build()),
            &mut link,
            now()
        ),
        Some(ProviderEvent::Connected { .. })
    ));
    assert_eq!(link.failures, 0, "a connect resets the count");
    assert!(
        matches!(link.next_retry("closed"), ProviderEvent::Reconnecting { attempt: 1, ref reason, .. } if reason == "closed"),
        "without a recorded error the fallback reason is used"
    );
}

#[test]
fn the_ends_of_a_session_say_why() {
    let (out, _) = run(vec![
        Event::LoggedOut(
            LoggedOut::builder()
                .on_connect(false)
                .reason(ConnectFailureReason::LoggedOut)
                .build(),
        ),
        Event::TemporaryBan(
            TemporaryBan::builder()
                .code(TempBanReason::SentToTooManyPeople)
                .expire(chrono::Duration::seconds(3600))
                .build(),
        ),
        Event::StreamReplaced(StreamReplaced::builder().build()),
        Event::ClientOutdated(ClientOutdated::builder().build()),
        Event::PairError(
            PairError::builder()
                .id(jid("1@s.whatsapp.net"))
                .lid(jid("1@lid"))
                .business_name(String::new())
                .platform(String::new())
                .error("key mismatch".into())
                .build(),
        ),
    ]);
    assert!(
        matches!(&out[0], Some(ProviderEvent::LoggedOut { reason }) if reason.contains("401")),
        "{:?}",
        out[0]
    );
    match &out[1] {
        Some(ProviderEvent::Failed { error }) => {
            assert!(error.contains("banned"), "{error}");
            assert!(error.contains("101"), "{error}");
            assert!(error.contains("2026-11-27T13:00:00Z"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&out[2], Some(ProviderEvent::Disconnected { reason }) if reason == REPLACED));
    assert!(matches!(&out[3], Some(ProviderEvent::Failed { error }) if error == OUTDATED));
    assert!(
        matches!(&out[4], Some(ProviderEvent::Failed { error }) if error.contains("key mismatch"))
    );
}

#[test]
fn connect_failures_log_out_fail_or_retry() {
    let failure = |r: ConnectFailureReason| {
        Event::ConnectFailure(ConnectFailure::builder().reason(r).build())
    };
    let (out, link) = run(vec![
        failure(ConnectFailureReason::AccountLocked),
        failure(ConnectFailureReason::ClientOutdated),
        failure(ConnectFailureReason::ServiceUnavailable),
        failure(ConnectFailureReason::BadUserAgent),
        failure(ConnectFailureReason::TempBanned),
    ]);
    assert!(matches!(&out[0], Some(ProviderEvent::LoggedOut { reason }) if reason.contains("403")));
    assert!(matches!(&out[1], Some(ProviderEvent::Failed { error }) if error == OUTDATED));
    assert!(out[2].is_none(), "a 503 is retried");
    assert!(matches!(&out[3], Some(ProviderEvent::Failed { error }) if error.contains("409")));
    assert!(matches!(&out[4], Some(ProviderEvent::Failed { error }) if error.contains("banned")));
    assert!(
        link.last_error
            .as_deref()
            .is_some_and(|e| e.contains("503")),
        "{:?}",
        link.last_error
    );
}

#[test]
fn a_linked_number_outside_the_known_ranges_still_connects() {
    // +1 555-123-4567 is not a valid number to the phone-number metadata, but WhatsApp says
    // it is the linked account: the session must come up with it, not stay pending.
    assert!(crate::phone::PhoneNumber::parse("+15551234567").is_err());
    let (out, _) = run(vec![
        Event::PairSuccess(
            PairSuccess::builder()
                .id(jid("15551234567:2@s.whatsapp.net"))
                .lid(jid("100000012345678:2@lid"))
                .business_name(String::new())
                .platform("android".into())
                .build(),
        ),
        Event::Connected(Connected::builder().build()),
    ]);
    match &out[1] {
        Some(ProviderEvent::Connected { phone }) => assert_eq!(phone.e164(), "+15551234567"),
        other => panic!("{other:?}"),
    }
    assert!(phone_of_user("12345").is_none(), "too short");
    assert!(phone_of_user("1555123456x").is_none());
}
