//! The `web` provider against a fake WhatsApp Web server ([`fake_wa`]) over a real WebSocket:
//! the client completes the Noise XX handshake, registers as a new device, acks the
//! `<pair-device>` IQ, and the session shows the client's QR code over REST. A fake phone
//! scans that code: the client verifies and countersigns the phone's `<pair-success>`, comes
//! back after the 515 as the linked device, logs in and the session is `connected` with the
//! phone's number; after a gateway restart it logs in again with its stored identity (Noise
//! IK), without a QR code.
//!
//! Once linked, a contact of the fake writes to the phone: the client decrypts the Signal
//! `pkmsg`, the gateway stores the message and only then is it acknowledged (receipt); the
//! number check asks WhatsApp (usync) which numbers have an account; a text sent over REST
//! reaches the contact (usync devices, pre-key fetch, `<message>` the contact decrypts) and
//! its delivery and read receipts move it to `delivered` and `read`; and a link the fake
//! drops (no close frame, as a network failure) is retried after about a second and logs in
//! again without a QR code.
//!
//! Media go through the fake's media hosts (plain HTTP on this machine, which a test build of
//! the gateway reaches for `https://127.0.0.1…`): an image sent over REST is encrypted,
//! uploaded to the host the media-connection IQ named, and reaches the contact, who decrypts
//! the upload with the message's media key; an image a contact sends is downloaded, decrypted
//! and stored, and REST serves the original bytes.
//!
//! An unpaired session asked for a pair code gets one: the client asks WhatsApp for a code
//! for the number (`companion_hello`, answered with a pairing ref), and the code goes out over
//! REST and as a `session.pairCode` webhook. (The fake plays no phone typing it in.)
//!
//! Needs the `fake-whatsapp` feature (the fake's certificate chain is not signed by
//! WhatsApp): `cargo test --features fake-whatsapp --test web_fake`.
//!
//! QR rotation: `whatsapp-rust` shows the first ref for a fixed 60 s and each next one for
//! 20 s (`pair.rs`), with no setting to shorten that. The rotation test therefore jumps tokio's
//! clock past the first ref's deadline (the client's rotation timer is a tokio sleep) instead
//! of waiting a minute.
//!
//! Each login takes about 10 s of real time: while the device has no push name (a fresh
//! pairing, and still after the restart, since the fake syncs no app state) the client waits
//! up to 10 s for the phone to share its app-state keys (a Signal-encrypted message the fake
//! phone does not send) before it syncs the critical app state and reports `connected`.

mod common;
#[path = "common/fake_wa/mod.rs"]
mod fake_wa;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{Auth, GqlWs, PNG_1X1, TestApp, WEB_VERSION, receiver::Receiver};
use fake_wa::{
    Companion, DROPPED, FakeWhatsApp, MEDIA_AUTH, PAIR_DEVICE_ID, Pattern, Phone, REFS, SERVER,
    Seen, decrypt_media, media_token,
};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use whatsapp_rust::{wacore::download::MediaType, wacore_binary::Node};

/// A session connected to the fake, past the handshake and `<pair-device>`, showing its
/// first QR code.
struct Linking {
    wa: FakeWhatsApp,
    app: TestApp,
    token: String,
    id: String,
    /// The refs the fake handed out.
    refs: Vec<String>,
    /// The client's static (noise) key, as the fake saw it in the handshake.
    client_static: [u8; 32],
    /// The `data` of `GET …/qr`.
    qr: Value,
    /// A `sessionQr` subscription, past the first code.
    ws: GqlWs,
    /// Receives the `session.qr` webhooks.
    hooks: Receiver,
}

const QR_SUB: &str =
    "subscription SessionQr($id: ID!) { sessionQr(sessionId: $id) { sessionId code expiresAt } }";

/// The next code on a `sessionQr` subscription.
async fn next_qr(ws: &mut GqlWs) -> Value {
    let msg = ws.next_of("qr").await;
    assert_eq!(msg["type"], "next", "{msg}");
    msg["payload"]["data"]["sessionQr"].clone()
}

async fn connect_to_fake(email: &str) -> Linking {
    let mut wa = FakeWhatsApp::start().await;
    let app = TestApp::spawn_web(wa.url()).await;
    let (token, tenant, id) = app.web_session(email).await;

    // Watchers of the QR code: a `session.qr` webhook and a `sessionQr` subscription.
    let hooks = Receiver::start().await;
    let r = app
        .post(
            "/api/webhooks",
            Auth::Bearer(&token),
            json!({"url": hooks.url("/hooks"), "events": ["session.qr"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mut ws = GqlWs::with_token(&app, &token).await;
    ws.subscribe("qr", QR_SUB, json!({"id": id})).await;
    app.wait_subscribers(&tenant.to_string(), 1).await;

    app.connect(&token, &id).await;

    // The Noise handshake completes and the client registers as a new device, with the
    // pinned version.
    let (conn, client_static, payload) = wa
        .wait_for("handshake", Duration::from_secs(20), |s| match s {
            Seen::Handshake {
                conn,
                client_static,
                payload,
                pattern,
            } => {
                assert_eq!(pattern, Pattern::Xx, "a new device does the full handshake");
                Some((conn, client_static, payload))
            }
            Seen::Closed { conn, why } => panic!("connection {conn} closed: {why}"),
            _ => None,
        })
        .await;
    assert_eq!(conn, 1);
    assert!(
        payload.device_pairing_data.is_set(),
        "an unpaired device registers"
    );
    assert!(payload.username.is_none(), "{payload:?}");
    let version = payload
        .user_agent
        .as_option()
        .and_then(|ua| ua.app_version.as_option())
        .map(|v| (v.primary, v.secondary, v.tertiary))
        .unwrap();
    assert_eq!(
        version,
        (
            Some(WEB_VERSION.0),
            Some(WEB_VERSION.1),
            Some(WEB_VERSION.2)
        )
    );

    // It acks the `<pair-device>` IQ, through the encrypted transport.
    let refs = wa
        .wait_for("pair-device", Duration::from_secs(5), |s| match s {
            Seen::PairDevice { refs, .. } => Some(refs),
            _ => None,
        })
        .await;
    assert_eq!(refs.len(), REFS);
    let ack = wa
        .wait_node("ack of pair-device", |n| {
            n.tag == "iq"
                && n.attrs
                    .get("id")
                    .is_some_and(|v| v.as_str() == PAIR_DEVICE_ID)
        })
        .await;
    assert_eq!(ack.attrs.get("type").unwrap().as_str(), "result");
    assert_eq!(ack.attrs.get("to").unwrap().as_str(), SERVER);

    let qr = pending_qr(&app, &token, &id, &refs[0]).await;
    let live = next_qr(&mut ws).await;
    assert_eq!(
        live["code"], qr["code"],
        "the subscription shows the QR REST serves"
    );
    Linking {
        wa,
        app,
        token,
        id,
        refs,
        client_static,
        qr,
        ws,
        hooks,
    }
}

/// Polls `GET …/qr` until the code for `pairing_ref` is pending (max 10 s).
async fn pending_qr(app: &TestApp, token: &str, id: &str, pairing_ref: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app
            .get(&format!("/api/v1/whatsapp/{id}/qr"), Auth::Bearer(token))
            .await;
        if r.status == 200 {
            let code = r.body["data"]["code"].as_str().unwrap();
            if code.split(',').next() == Some(pairing_ref) {
                return r.body["data"].clone();
            }
        } else {
            assert_eq!(r.status, 404, "{}", r.body);
        }
        assert!(
            Instant::now() < deadline,
            "no QR code for {pairing_ref}: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Seconds from now until the QR code's `expiresAt`.
fn seconds_left(qr: &Value) -> i64 {
    let expires = chrono::DateTime::parse_from_rfc3339(qr["expiresAt"].as_str().unwrap()).unwrap();
    expires
        .signed_duration_since(chrono::Utc::now())
        .num_seconds()
}

#[tokio::test]
async fn the_web_client_handshakes_with_whatsapp_and_its_qr_code_is_shown() {
    let Linking {
        mut wa,
        app,
        token,
        id,
        refs,
        client_static,
        qr,
        hooks,
        ..
    } = connect_to_fake("fake-wa@example.com").await;

    // The first ref's QR code: ref, then the very noise key that did the handshake, the
    // identity key, the ADV secret and the client type.
    let code = qr["code"].as_str().unwrap();
    let parts: Vec<&str> = code.split(',').collect();
    assert_eq!(parts.len(), 5, "{code}");
    assert_eq!(parts[0], refs[0], "{code}");
    let noise_key = base64::engine::general_purpose::STANDARD
        .decode(parts[1])
        .unwrap();
    assert_eq!(noise_key, client_static, "{code}");
    assert!(qr["svg"].as_str().unwrap().contains("<svg"), "{qr}");
    let ttl = seconds_left(&qr);
    assert!(
        (50..=60).contains(&ttl),
        "the first QR lives 60 s, got {ttl}"
    );
    let s = app
        .get(&format!("/api/v1/whatsapp/{id}"), Auth::Bearer(&token))
        .await;
    assert_eq!(s.body["data"]["status"], "qr_pending", "{}", s.body);

    // The `session.qr` webhook carried the same code.
    let hit = hooks.wait_for("/hooks", 1).await.remove(0);
    assert_eq!(hit.body["type"], "session.qr", "{:?}", hit.body);
    assert_eq!(hit.body["data"]["sessionId"], id.as_str());
    assert_eq!(hit.body["data"]["code"], code);

    // Disconnecting closes the WebSocket.
    let r = app
        .post_empty(
            &format!("/api/v1/whatsapp/{id}/disconnect"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    wa.wait_for("close", Duration::from_secs(10), |s| match s {
        Seen::Closed { conn: 1, why } => Some(why),
        _ => None,
    })
    .await;
    app.wait_status(&token, &id, "disconnected").await;
}

#[tokio::test]
async fn the_next_ref_s_qr_code_replaces_the_first_when_it_expires() {
    let Linking {
        app,
        token,
        id,
        refs,
        qr,
        mut ws,
        ..
    } = connect_to_fake("fake-wa-rotate@example.com").await;
    assert!(seconds_left(&qr) > 50, "{qr}");

    // Past the first ref's 60 s on tokio's clock, which the client's rotation timer runs on
    // (the test runtime is single-threaded, so the clock can be paused and moved).
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(61)).await;
    tokio::time::resume();

    let next = pending_qr(&app, &token, &id, &refs[1]).await;
    assert_eq!(
        next_qr(&mut ws).await["code"],
        next["code"],
        "and live watchers see it"
    );
    let ttl = seconds_left(&next);
    assert!((10..=20).contains(&ttl), "later QRs live 20 s, got {ttl}");
    let s = app
        .get(&format!("/api/v1/whatsapp/{id}"), Auth::Bearer(&token))
        .await;
    assert_eq!(s.body["data"]["status"], "qr_pending", "{}", s.body);
}

/// The number of the phone that scans in these tests.
const PHONE: &str = "14155550123";

#[tokio::test]
async fn an_unpaired_session_gets_a_pair_code_for_a_phone_number() {
    let Linking {
        mut wa,
        app,
        token,
        id,
        client_static,
        hooks,
        ..
    } = connect_to_fake("fake-wa-pair-code@example.com").await;
    let r = app
        .post(
            "/api/webhooks",
            Auth::Bearer(&token),
            json!({"url": hooks.url("/pair"), "events": ["session.pairCode"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let s = app
        .get(&format!("/api/v1/whatsapp/{id}"), Auth::Bearer(&token))
        .await;
    assert_eq!(s.body["data"]["status"], "qr_pending", "{}", s.body);

    // The gateway asks WhatsApp for a code for the number (`companion_hello`) and answers with
    // the code the client made: 8 characters of Crockford base 32, as the crate returns it.
    let r = app
        .post(
            &format!("/api/v1/whatsapp/{id}/pair-code"),
            Auth::Bearer(&token),
            json!({"phoneNumber": format!("+{PHONE}")}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let code = r.body["data"]["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 8, "{code}");
    assert!(
        code.bytes()
            .all(|b| b"123456789ABCDEFGHJKLMNPQRSTVWXYZ".contains(&b)),
        "{code}"
    );
    assert_eq!(r.body["data"]["phoneNumber"], PHONE, "{}", r.body);

    // WhatsApp saw the request for that number, from the device that did the handshake.
    let (request, pairing_ref) = wa
        .wait_for("pair-code request", Duration::from_secs(5), |s| match s {
            Seen::PairCodeRequested {
                conn: 1,
                request,
                pairing_ref,
            } => Some((request, pairing_ref)),
            _ => None,
        })
        .await;
    assert_eq!(request.number, PHONE, "{request:?}");
    assert_eq!(request.server_auth_key, client_static, "{request:?}");
    assert!(request.push_notification, "{request:?}");
    assert_eq!(request.wrapped_ephemeral.len(), 80, "{request:?}");
    assert!(!request.platform_display.is_empty(), "{request:?}");
    assert!(!pairing_ref.is_empty());

    // The `session.pairCode` webhook carries the same code and number.
    let hit = hooks.wait_for("/pair", 1).await.remove(0);
    assert_eq!(hit.body["type"], "session.pairCode", "{:?}", hit.body);
    assert_eq!(hit.body["data"]["sessionId"], id.as_str(), "{:?}", hit.body);
    assert_eq!(hit.body["data"]["code"], code.as_str(), "{:?}", hit.body);
    assert_eq!(hit.body["data"]["phoneNumber"], PHONE, "{:?}", hit.body);

    // The session still waits to be linked, by the code or by the QR code.
    let s = app
        .get(&format!("/api/v1/whatsapp/{id}"), Auth::Bearer(&token))
        .await;
    assert_eq!(s.body["data"]["status"], "qr_pending", "{}", s.body);

    // While that code can still be typed, another request is a 409 saying so (not a 502).
    let r = app
        .post(
            &format!("/api/v1/whatsapp/{id}/pair-code"),
            Auth::Bearer(&token),
            json!({"phoneNumber": format!("+{PHONE}")}),
        )
        .await;
    r.assert_error(409, "CONFLICT");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("already waiting"),
        "{}",
        r.body
    );
}

/// Polls the session until it is `connected` (max `within`); its `data`.
async fn wait_connected(app: &TestApp, token: &str, id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let r = app
            .get(&format!("/api/v1/whatsapp/{id}"), Auth::Bearer(token))
            .await;
        if r.body["data"]["status"] == "connected" {
            return r.body["data"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the session did not connect within {within:?}: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the next login handshake (a linked device's): its connection, payload and
/// Noise pattern, checking it is `PHONE`'s device 1 with the noise key of the QR code.
async fn login_handshake(wa: &mut FakeWhatsApp, noise_key: [u8; 32]) -> (usize, Pattern) {
    let (conn, payload, pattern) = wa
        .wait_for("a login handshake", Duration::from_secs(20), |s| match s {
            Seen::Handshake {
                conn,
                client_static,
                payload,
                pattern,
            } => {
                assert_eq!(client_static, noise_key, "the identity it paired with");
                Some((conn, payload, pattern))
            }
            Seen::LoginRefused { conn, why } => panic!("login on {conn} refused: {why}"),
            _ => None,
        })
        .await;
    assert!(
        !payload.device_pairing_data.is_set(),
        "a linked device logs in, it does not register again: {payload:?}"
    );
    assert_eq!(
        payload.username,
        Some(PHONE.parse().unwrap()),
        "{payload:?}"
    );
    assert_eq!(payload.device, Some(1), "{payload:?}");
    let logged_in = wa
        .wait_for("<success>", Duration::from_secs(5), |s| match s {
            Seen::LoggedIn { conn, jid } => Some((conn, jid)),
            Seen::LoginRefused { conn, why } => panic!("login on {conn} refused: {why}"),
            _ => None,
        })
        .await;
    assert_eq!(logged_in, (conn, format!("{PHONE}:1@{SERVER}")));
    (conn, pattern)
}

#[tokio::test]
async fn a_phone_scanning_the_qr_code_links_the_session_which_logs_in_again_after_a_restart() {
    let Linking {
        mut wa,
        app,
        token,
        id,
        client_static,
        qr,
        ws,
        ..
    } = connect_to_fake("fake-wa-link@example.com").await;
    // Graceful shutdown waits for open WebSockets; the restart below must not.
    drop(ws);

    // The phone scans the code REST shows: `<pair-success>` with its signed device identity.
    let phone = Phone::new(PHONE);
    let companion = wa.scan(qr["code"].as_str().unwrap(), &phone).unwrap();
    assert_eq!(companion.jid(), format!("{PHONE}:1@{SERVER}"));
    assert_eq!(companion.noise_key, client_static);

    // The client accepts it (the HMAC with its ADV secret and the phone's signature check
    // out) and countersigns with its identity key, which the fake verifies; the fake then
    // closes the stream with 515, as WhatsApp does after a pairing.
    let paired = wa
        .wait_for("pair-device-sign", Duration::from_secs(10), |s| match s {
            Seen::Paired { conn, jid } => Some((conn, jid)),
            Seen::PairRejected { conn, why } => panic!("pairing on {conn} rejected: {why}"),
            _ => None,
        })
        .await;
    assert_eq!(paired, (1, companion.jid()));
    assert_eq!(wa.linked().len(), 1);

    // The client comes straight back as the linked device: a login with the phone's number
    // over a full handshake (the server key is cached only once the device is registered).
    let (conn, pattern) = login_handshake(&mut wa, client_static).await;
    assert_eq!(conn, 2);
    assert_eq!(pattern, Pattern::Xx);
    // It leaves passive mode; the fake ends the (empty) offline queue.
    wa.wait_node("<active/>", |n| {
        n.tag == "iq" && n.get_optional_child("active").is_some()
    })
    .await;

    // The session is connected, with the phone's number, and shows no QR code any more.
    let s = wait_connected(&app, &token, &id, Duration::from_secs(40)).await;
    assert_eq!(s["phoneNumber"], PHONE, "{s}");
    let r = app
        .get(&format!("/api/v1/whatsapp/{id}/qr"), Auth::Bearer(&token))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);

    // A restart on the same data: the session resumes and logs in with the identity in the
    // database, over Noise IK with the server key it cached, without pairing again.
    let (cfg, dir, clock) = app.stop().await;
    wa.wait_for("the link to close", Duration::from_secs(15), |s| match s {
        Seen::Closed { conn: 2, why } => Some(why),
        _ => None,
    })
    .await;
    let app = TestApp::start(cfg, dir, clock).await;
    let (conn, pattern) = login_handshake(&mut wa, client_static).await;
    assert_eq!(conn, 3);
    assert_eq!(pattern, Pattern::Ik);
    let s = wait_connected(&app, &token, &id, Duration::from_secs(40)).await;
    assert_eq!(s["phoneNumber"], PHONE, "{s}");
    let r = app
        .get(&format!("/api/v1/whatsapp/{id}/qr"), Auth::Bearer(&token))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let later = wa.drain();
    assert!(
        !later.iter().any(|s| matches!(s, Seen::PairDevice { .. })),
        "no new pairing after the restart: {later:?}"
    );
    assert_eq!(wa.linked().len(), 1);
}

/// A session linked to `PHONE`'s device 1 and connected.
struct Linked {
    wa: FakeWhatsApp,
    app: TestApp,
    token: String,
    id: String,
    companion: Companion,
}

/// Links a new session: its QR code is scanned, it logs in and is `connected`.
async fn linked(email: &str) -> Linked {
    let Linking {
        mut wa,
        app,
        token,
        id,
        client_static,
        qr,
        ws,
        ..
    } = connect_to_fake(email).await;
    drop(ws);
    let companion = wa
        .scan(qr["code"].as_str().unwrap(), &Phone::new(PHONE))
        .unwrap();
    wa.wait_for("pair-device-sign", Duration::from_secs(10), |s| match s {
        Seen::Paired { .. } => Some(()),
        Seen::PairRejected { conn, why } => panic!("pairing on {conn} rejected: {why}"),
        _ => None,
    })
    .await;
    login_handshake(&mut wa, client_static).await;
    wait_connected(&app, &token, &id, Duration::from_secs(40)).await;
    Linked {
        wa,
        app,
        token,
        id,
        companion,
    }
}

/// The contact who writes to the linked phone in these tests, and its push name.
const CONTACT: &str = "14155550177";
const CONTACT_NAME: &str = "Ana";

/// Waits for the client's nodes about the message `id` until `done` says it saw enough;
/// calls `each` on every one as it arrives. Returns them in order.
async fn nodes_about(
    wa: &mut FakeWhatsApp,
    id: &str,
    what: &str,
    done: impl Fn(&[Node]) -> bool,
) -> Vec<Node> {
    let mut nodes = Vec::new();
    while !done(&nodes) {
        let node = wa
            .wait_for(what, Duration::from_secs(15), |s| match s {
                Seen::Node { node, .. } if attr(&node, "id").as_deref() == Some(id) => Some(node),
                Seen::Closed { conn, why } => panic!("connection {conn} closed: {why}"),
                _ => None,
            })
            .await;
        nodes.push(node);
    }
    nodes
}

fn attr(node: &Node, key: &str) -> Option<String> {
    node.attrs.get(key).map(|v| v.as_str().into_owned())
}

#[tokio::test]
async fn a_contact_s_message_is_stored_before_whatsapp_gets_its_receipt() {
    let Linked {
        mut wa,
        app,
        token,
        id,
        companion,
    } = linked("fake-wa-inbound@example.com").await;
    let hooks = Receiver::start().await;
    let r = app
        .post(
            "/api/webhooks",
            Auth::Bearer(&token),
            json!({"url": hooks.url("/in"), "events": ["message.received"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // A contact sets up a Signal session from the pre-keys the client uploaded and writes:
    // `<message from=… type="text" notify="Ana"><enc v="2" type="pkmsg">`.
    wa.add_contact(CONTACT, CONTACT_NAME);
    let msg_id = "3EB0FAKE1NB0UND0000001";
    wa.send_text(CONTACT, &companion, msg_id, "Olá, tudo bem?")
        .await
        .unwrap();

    // The client decrypts it, the gateway stores it, and only then does WhatsApp get its
    // acknowledgement: a delivery receipt (`type="inactive"`: the gateway sets no presence),
    // which `whatsapp-rust` sends instead of a bare `<ack class="message">` for a message it
    // decrypted. By the time the fake sees it, REST already shows the message.
    let receipt = nodes_about(&mut wa, msg_id, "the receipt of the message", |n| {
        !n.is_empty()
    })
    .await
    .remove(0);
    let r = app
        .get("/api/messages?direction=inbound", Auth::Bearer(&token))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let stored = r.body["data"].as_array().unwrap();
    assert_eq!(
        stored.len(),
        1,
        "stored before it was acknowledged: {stored:?}"
    );
    let m = &stored[0];
    assert_eq!(m["text"], "Olá, tudo bem?", "{m}");
    assert_eq!(m["from"], CONTACT, "{m}");
    assert_eq!(m["providerMessageId"], msg_id, "{m}");
    assert_eq!(m["type"], "text", "{m}");
    assert_eq!(m["sessionId"], id.as_str(), "{m}");

    assert_eq!(
        receipt.tag, "receipt",
        "acknowledged with a receipt: {receipt:?}"
    );
    assert_eq!(
        attr(&receipt, "to").as_deref(),
        Some(format!("{CONTACT}@{SERVER}").as_str()),
        "{receipt:?}"
    );
    assert_eq!(
        attr(&receipt, "type").as_deref(),
        Some("inactive"),
        "a delivery receipt of an inactive client: {receipt:?}"
    );

    // And a `message.received` webhook.
    let hit = hooks.wait_for("/in", 1).await.remove(0);
    assert_eq!(hit.body["type"], "message.received", "{:?}", hit.body);
    assert_eq!(hit.body["data"]["text"], "Olá, tudo bem?", "{:?}", hit.body);
    assert_eq!(hit.body["data"]["from"], CONTACT, "{:?}", hit.body);
}

#[tokio::test]
async fn the_number_check_asks_whatsapp_which_numbers_have_an_account() {
    let Linked {
        wa, app, token, id, ..
    } = linked("fake-wa-check@example.com").await;
    wa.add_contact(CONTACT, CONTACT_NAME);

    // usync's `contact` protocol: `in` for the fake's contact, `out` for any other number.
    let r = app
        .get(
            &format!("/api/v1/whatsapp/{id}/check/{CONTACT}"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["onWhatsApp"], true, "{}", r.body);
    assert_eq!(
        r.body["data"]["jid"],
        format!("{CONTACT}@{SERVER}"),
        "{}",
        r.body
    );
    let r = app
        .get(
            &format!("/api/v1/whatsapp/{id}/check/14155550199"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["onWhatsApp"], false, "{}", r.body);
}

/// Polls the session until `pick` takes its `data` (max `within`).
async fn wait_session<T>(
    app: &TestApp,
    token: &str,
    id: &str,
    what: &str,
    within: Duration,
    pick: impl Fn(&Value) -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let r = app
            .get(&format!("/api/v1/whatsapp/{id}"), Auth::Bearer(token))
            .await;
        if let Some(t) = pick(&r.body["data"]) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "the session was not {what} within {within:?}: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_dropped_link_is_retried_and_logs_in_again_without_a_qr_code() {
    let Linked {
        mut wa,
        app,
        token,
        id,
        companion,
    } = linked("fake-wa-drop@example.com").await;
    let before = wa.drain();
    let dropped_at = Instant::now();
    let conn = wa.drop_link(&companion).unwrap();
    let why = wa
        .wait_for(
            "the dropped link to close",
            Duration::from_secs(5),
            |s| match s {
                Seen::Closed { conn: c, why } if c == conn => Some(why),
                _ => None,
            },
        )
        .await;
    assert_eq!(why, DROPPED, "{before:?}");

    // The gateway notices the drop and says it retries (after about a second).
    let s = wait_session(
        &app,
        &token,
        &id,
        "reconnecting",
        Duration::from_secs(10),
        |d| (d["status"] == "connecting").then(|| d.clone()),
    )
    .await;
    assert!(s["reconnectAttempt"].as_i64().unwrap() >= 1, "{s}");
    let error = s["lastError"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("Connection lost"),
        "the drop is the reason: {s}"
    );
    assert_eq!(s["phoneNumber"], PHONE, "{s}");

    // It comes back by itself as the linked device (IK, with the server key it cached), with
    // no pairing and no QR code.
    let (again, pattern) = login_handshake(&mut wa, companion.noise_key).await;
    let waited = dropped_at.elapsed();
    assert!(again > conn, "a new connection: {again}");
    assert!(
        (Duration::from_secs(1)..Duration::from_secs(5)).contains(&waited),
        "the retry comes after about a second: {waited:?}"
    );
    assert_eq!(pattern, Pattern::Ik);
    let s = wait_connected(&app, &token, &id, Duration::from_secs(40)).await;
    assert_eq!(s["phoneNumber"], PHONE, "{s}");
    assert_eq!(s["reconnectAttempt"], 0, "{s}");
    let r = app
        .get(&format!("/api/v1/whatsapp/{id}/qr"), Auth::Bearer(&token))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let later = wa.drain();
    assert!(
        !later.iter().any(|s| matches!(s, Seen::PairDevice { .. })),
        "no pairing after the drop: {later:?}"
    );
    assert_eq!(wa.linked().len(), 1);
}

/// Polls the message until its status is `want` (max 15 s); its `data`.
async fn wait_message(app: &TestApp, token: &str, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = app
            .get(&format!("/api/messages/{id}"), Auth::Bearer(token))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        if r.body["data"]["status"] == want {
            return r.body["data"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the message did not become {want}: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_sent_text_reaches_the_contact_and_its_receipts_come_back() {
    let Linked {
        mut wa,
        app,
        token,
        id,
        companion,
    } = linked("fake-wa-send@example.com").await;
    wa.add_contact(CONTACT, CONTACT_NAME);
    wa.drain();

    let r = app
        .post(
            "/api/messages/send-text",
            Auth::Bearer(&token),
            json!({"sessionId": id, "to": format!("+{CONTACT}"), "text": "Oi, Ana!"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let msg = r.body["data"]["id"].as_str().unwrap().to_owned();

    // The client asks for the contact's devices and its own (usync `devices`; the fake
    // lists the contact's device 0 and none of the phone's), fetches the contact's pre-key
    // bundle, and sends the `<message>` with the text encrypted to the contact's device.
    let mut before = Vec::new();
    let stanza = wa
        .wait_for("the <message>", Duration::from_secs(20), |s| match s {
            Seen::Node { node, .. } if node.tag == "message" => Some(node),
            Seen::Node { node, .. } => {
                before.push(node);
                None
            }
            Seen::Closed { conn, why } => panic!("connection {conn} closed: {why}"),
            _ => None,
        })
        .await;
    // Whether the client sent an IQ `xmlns` whose `<child>` asks `what` about `number`'s
    // `<user jid=…>` (under `<list>` for usync).
    let asked = |xmlns: &str, child: &str, what: &str, number: &str| {
        before.iter().any(|n| {
            let Some(c) = n.get_optional_child(child) else {
                return false;
            };
            let (query, users) = match c.get_optional_child("list") {
                Some(list) => (c.get_optional_child("query"), list),
                None => (Some(c), c),
            };
            attr(n, "xmlns").as_deref() == Some(xmlns)
                && query.is_some_and(|q| q.get_optional_child(what).is_some())
                && users.get_children_by_tag("user").any(|u| {
                    attr(u, "jid").is_some_and(|j| j.split(['@', ':']).next() == Some(number))
                })
        })
    };
    assert!(
        asked("usync", "usync", "devices", CONTACT),
        "the contact's devices: {before:?}"
    );
    assert!(
        asked("usync", "usync", "devices", PHONE),
        "its own account's devices: {before:?}"
    );
    assert!(
        asked("encrypt", "key", "user", CONTACT),
        "the contact's pre-keys: {before:?}"
    );
    let stanza_id = attr(&stanza, "id").unwrap();
    assert!(stanza_id.starts_with("3EB0"), "{stanza:?}");
    assert_eq!(
        attr(&stanza, "to").as_deref(),
        Some(format!("{CONTACT}@{SERVER}").as_str()),
        "{stanza:?}"
    );
    let read = wa.read_sent(&companion, &stanza).await.unwrap();
    assert_eq!(read.len(), 1, "one copy for the contact: {stanza:?}");
    assert_eq!(read[0].0, format!("{CONTACT}@{SERVER}"));
    let text = read[0].1.conversation.clone().or_else(|| {
        read[0]
            .1
            .extended_text_message
            .as_option()
            .and_then(|m| m.text.clone())
    });
    assert_eq!(text.as_deref(), Some("Oi, Ana!"), "{:?}", read[0].1);

    // The server acked it: the message is `sent`, under the stanza's id.
    let m = wait_message(&app, &token, &msg, "sent").await;
    assert_eq!(m["providerMessageId"], stanza_id.as_str(), "{m}");

    // The contact's phone gets it, then reads it.
    wa.send_receipt(CONTACT, &companion, &stanza_id, None)
        .unwrap();
    wait_message(&app, &token, &msg, "delivered").await;
    wa.send_receipt(CONTACT, &companion, &stanza_id, Some("read"))
        .unwrap();
    let m = wait_message(&app, &token, &msg, "read").await;
    assert_eq!(m["providerMessageId"], stanza_id.as_str(), "{m}");
}

/// The `<message>` the client sends next, and the nodes it sent before it.
async fn next_message(wa: &mut FakeWhatsApp) -> (Node, Vec<Node>) {
    let mut before = Vec::new();
    let stanza = wa
        .wait_for("the <message>", Duration::from_secs(20), |s| match s {
            Seen::Node { node, .. } if node.tag == "message" => Some(node),
            Seen::Node { node, .. } => {
                before.push(node);
                None
            }
            Seen::Closed { conn, why } => panic!("connection {conn} closed: {why}"),
            _ => None,
        })
        .await;
    (stanza, before)
}

#[tokio::test]
async fn a_sent_image_is_uploaded_encrypted_and_the_contact_decrypts_it() {
    let Linked {
        mut wa,
        app,
        token,
        id,
        companion,
    } = linked("fake-wa-image-out@example.com").await;
    wa.add_contact(CONTACT, CONTACT_NAME);
    wa.drain();

    let form = Form::new()
        .text("sessionId", id.clone())
        .text("to", format!("+{CONTACT}"))
        .text("caption", "Uma foto")
        .part(
            "file",
            Part::bytes(PNG_1X1)
                .file_name("dot.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let r = app
        .multipart("/api/messages/send-image", Auth::Bearer(&token), form)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let msg = r.body["data"]["id"].as_str().unwrap().to_owned();

    // The client asks for a media connection (`<iq xmlns="w:m"><media_conn/>`), uploads the
    // encrypted file to the host it got, with its auth token, then sends the message.
    let (stanza, before) = next_message(&mut wa).await;
    assert!(
        before.iter().any(|n| n.tag == "iq"
            && attr(n, "xmlns").as_deref() == Some("w:m")
            && n.get_optional_child("media_conn").is_some()),
        "a media connection: {before:?}"
    );
    let uploads = wa.media_uploads();
    assert_eq!(uploads.len(), 1, "{:?}", wa.media_requests());
    let upload = &uploads[0];
    assert_eq!(upload.kind, "image");
    assert_eq!(upload.token, media_token(&upload.body));
    let post = wa
        .media_requests()
        .into_iter()
        .find(|q| q.method == "POST")
        .unwrap();
    assert_eq!(
        post.path,
        format!("/mms/image/{}", upload.token),
        "{post:?}"
    );
    assert_eq!(post.query["auth"], MEDIA_AUTH, "{post:?}");
    assert_ne!(upload.body, PNG_1X1, "uploaded encrypted");

    // The contact gets an image message pointing at the upload, and its media key decrypts
    // the uploaded bytes (HMAC checked) back to the PNG.
    let read = wa.read_sent(&companion, &stanza).await.unwrap();
    assert_eq!(read.len(), 1, "one copy for the contact: {stanza:?}");
    let image = read[0]
        .1
        .image_message
        .as_option()
        .unwrap_or_else(|| panic!("an image message: {:?}", read[0].1));
    assert_eq!(
        image.direct_path.as_deref(),
        Some(upload.direct_path.as_str())
    );
    assert_eq!(image.url.as_deref(), Some(upload.url.as_str()));
    assert_eq!(image.mimetype.as_deref(), Some("image/png"));
    assert_eq!(image.caption.as_deref(), Some("Uma foto"));
    assert_eq!(image.file_length, Some(PNG_1X1.len() as u64));
    assert_eq!(
        image.file_sha256.as_deref(),
        Some(&Sha256::digest(PNG_1X1)[..])
    );
    assert_eq!(
        image.file_enc_sha256.as_deref(),
        Some(&Sha256::digest(&upload.body)[..])
    );
    let key = image.media_key.as_deref().expect("a media key");
    let plain = decrypt_media(&upload.body, key, MediaType::Image).unwrap();
    assert_eq!(plain, PNG_1X1);

    // The server acked it: the message is `sent`.
    let stanza_id = attr(&stanza, "id").unwrap();
    let m = wait_message(&app, &token, &msg, "sent").await;
    assert_eq!(m["providerMessageId"], stanza_id.as_str(), "{m}");
    assert_eq!(m["type"], "image", "{m}");
}

#[tokio::test]
async fn a_contact_s_image_is_downloaded_decrypted_and_served() {
    let Linked {
        mut wa,
        app,
        token,
        companion,
        ..
    } = linked("fake-wa-image-in@example.com").await;
    wa.add_contact(CONTACT, CONTACT_NAME);

    // The contact's phone encrypts the PNG, puts it on the media hosts and sends an image
    // message pointing at it.
    let msg_id = "3EB0FAKE1MAGE1N0000001";
    let image = wa
        .send_image(
            CONTACT,
            &companion,
            msg_id,
            PNG_1X1,
            "image/png",
            Some("Olha só"),
        )
        .await
        .unwrap();

    // The client downloads it (from the host of its media connection, with the auth token
    // and the encrypted file's hash) before the gateway stores the message and acks it.
    let receipt = nodes_about(&mut wa, msg_id, "the receipt of the image", |n| {
        !n.is_empty()
    })
    .await
    .remove(0);
    assert_eq!(receipt.tag, "receipt", "{receipt:?}");
    let gets: Vec<_> = wa
        .media_requests()
        .into_iter()
        .filter(|q| q.method == "GET")
        .collect();
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(Some(gets[0].path.as_str()), image.direct_path.as_deref());
    assert_eq!(gets[0].status, 200, "{gets:?}");
    assert_eq!(gets[0].query["auth"], MEDIA_AUTH, "{gets:?}");

    let r = app
        .get("/api/messages?direction=inbound", Auth::Bearer(&token))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let stored = r.body["data"].as_array().unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    let m = &stored[0];
    assert_eq!(m["type"], "image", "{m}");
    assert_eq!(m["from"], CONTACT, "{m}");
    assert_eq!(m["providerMessageId"], msg_id, "{m}");
    assert_eq!(m["caption"], "Olha só", "{m}");
    assert!(m["error"].is_null(), "{m}");
    assert_eq!(m["media"]["mimeType"], "image/png", "{m}");
    assert_eq!(m["media"]["size"], PNG_1X1.len(), "{m}");
    let id = m["id"].as_str().unwrap();
    assert_eq!(
        m["media"]["url"],
        format!("/api/messages/{id}/media"),
        "{m}"
    );

    // REST serves the original bytes.
    let res = app
        .client
        .get(app.url(&format!("/api/messages/{id}/media")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.bytes().await.unwrap().as_ref(), PNG_1X1);
}
