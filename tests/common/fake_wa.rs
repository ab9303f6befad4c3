//! A fake WhatsApp Web server, just enough of WhatsApp's side of the wire for the `web`
//! provider's client (`whatsapp-rust`) to connect to it, be linked by a fake phone, and log in.
//!
//! What it plays, per WebSocket connection (all binary messages):
//!
//! 1. **Noise handshake, responder side**, prologue [`WA_CONN_HEADER`] = `WA 6 <dict
//!    version>`. The client's first message is that 4-byte header followed by frames; every
//!    frame is a 3-byte big-endian length and a payload (`wacore::framing`). The frames carry
//!    `HandshakeMessage` protobufs. Two patterns:
//!    - **XX** (`Noise_XX_25519_AESGCM_SHA256`), the full handshake of a new device and of a
//!      linked one that has not cached our key yet: the client's `ClientHello` (its
//!      ephemeral key), our `ServerHello` (our ephemeral key, our static key encrypted, and our
//!      certificate chain encrypted), then the client's `ClientFinish` (its static — "noise" —
//!      key and its `ClientPayload`, both encrypted).
//!    - **IK** (`Noise_IK_25519_AESGCM_SHA256`), the resumed handshake of a linked device that
//!      cached our static key from an earlier XX: its `ClientHello` already carries its
//!      static key and `ClientPayload` (encrypted to our static key), and our `ServerHello`
//!      only our ephemeral key and the certificate chain encrypted.
//! 2. **The certificate chain** is WhatsApp-shaped (intermediate with issuer serial 0, leaf
//!    whose key is our static key) but signed with zeros: the client accepts it only when
//!    built with `whatsapp-rust/danger-skip-cert-chain-verify` (our `fake-whatsapp` feature).
//! 3. **The transport after the handshake**: each frame is AES-256-GCM with the key pair the
//!    handshake split into (one key per direction) and a per-direction counter as nonce; its
//!    plaintext is a flag byte (bit 2: zlib) and a node in WhatsApp's binary XML
//!    (`wacore_binary::marshal`).
//! 4. **Asking an unpaired device to pair** (a `ClientPayload` with `device_pairing_data`):
//!    right after the handshake it sends `<iq from="s.whatsapp.net" type="set" id=…
//!    xmlns="md"><pair-device><ref>…</ref>…</pair-device></iq>` with six refs (WhatsApp hands
//!    out six). The client acks it and shows one QR code per ref (the first for 60 s, each
//!    next one for 20 s).
//! 5. **A phone scanning the QR code** ([`FakeWhatsApp::scan`] with a [`Phone`]): the
//!    server relays the phone's answer as `<iq type="set" xmlns="md"><pair-success>` with the
//!    companion's signed device identity (ADV), its new JID and LID, and the phone's platform.
//!    The client checks the identity, countersigns it and answers `<pair-device-sign>`; the
//!    fake checks that signature, records the companion as linked and closes the stream with
//!    `<stream:error code="515"/>`, as WhatsApp does after every pairing.
//! 6. **Logging a linked device in** (a `ClientPayload` with `username` and `device`): a
//!    companion the fake linked, with the noise key it linked with, gets `<success>` (with its
//!    LID); anyone else `<failure reason="401"/>`.
//! 7. **The server side of a session's start**: answers to the IQs the client sends after
//!    `<success>` ([`reply`]: passive/active with the end of the (empty) offline queue,
//!    pre-key upload and count, app-state sync with empty collections, props, blocklist,
//!    privacy; an empty `result` for the rest) and to its keepalive pings.
//!
//! Everything the client says is reported to the test as [`Seen`] items; with `FAKE_WA_TRACE`
//! set, every node in and out is also printed to stderr. Nothing here
//! carries messages: no `<message>`, receipts or acks for sends.
#![allow(dead_code)]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, bail};
use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
    task::JoinHandle,
};
use tokio_tungstenite::{WebSocketStream, tungstenite::Message};
use whatsapp_rust::{
    buffa::{self, Message as _},
    wacore::{
        crypto::calculate_curve_signature,
        framing::{FrameDecoder, encode_frame},
        libsignal::protocol::{KeyPair, PrivateKey, PublicKey},
        noise::{NoiseCipher, NoiseHandshake},
    },
    wacore_binary::{
        Jid, Node, NodeContent,
        builder::NodeBuilder,
        consts::{NOISE_PATTERN_IK, NOISE_PATTERN_XX, NOISE_PATTERN_XXFALLBACK, WA_CONN_HEADER},
        marshal,
        marshal::unmarshal_ref,
        util::unpack,
    },
    waproto::whatsapp::{self as wa, ADVEncryptionType, cert_chain::noise_certificate},
};

/// WhatsApp's server JID, the `from` of everything the server says.
pub const SERVER: &str = "s.whatsapp.net";
/// How many refs one `<pair-device>` carries, as WhatsApp does.
pub const REFS: usize = 6;
/// The id of the `<pair-device>` IQ on every connection.
pub const PAIR_DEVICE_ID: &str = "fake-pair-device";
/// How many one-time pre-keys the fake reports when the client asks before uploading any.
pub const NO_PREKEYS: usize = 0;

/// ADV signature prefixes (WhatsApp's `ADV_PREFIX_*`): the account (phone) signs
/// `[6, 0] ‖ details ‖ companion identity`; the companion countersigns
/// `[6, 1] ‖ details ‖ companion identity ‖ account key`.
const ADV_ACCOUNT_SIGNATURE: [u8; 2] = [6, 0];
const ADV_DEVICE_SIGNATURE: [u8; 2] = [6, 1];

/// Which Noise pattern a handshake used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// The full handshake (a new device, or one without our static key cached).
    Xx,
    /// The resumed handshake of a device that cached our static key.
    Ik,
    /// IK that did not decrypt (the client cached another server's key), finished as XX.
    XxFallback,
}

/// Something the fake saw; `conn` numbers the connections from 1.
#[derive(Debug)]
pub enum Seen {
    /// A WebSocket was opened.
    Connected { conn: usize },
    /// The Noise handshake completed: the client's static (noise) public key and the
    /// `ClientPayload` it logged in or registered with.
    Handshake {
        conn: usize,
        client_static: [u8; 32],
        payload: Box<wa::ClientPayload>,
        pattern: Pattern,
    },
    /// `<pair-device>` went out with these refs.
    PairDevice { conn: usize, refs: Vec<String> },
    /// A phone scanned a code: `<pair-success>` went out for the companion `jid`.
    PairSuccess { conn: usize, jid: String },
    /// The companion countersigned its device identity (checked): it is linked, and the
    /// stream was closed with 515.
    Paired { conn: usize, jid: String },
    /// The companion refused the pairing, or its countersignature did not verify.
    PairRejected { conn: usize, why: String },
    /// A linked companion logged in: `<success>` went out.
    LoggedIn { conn: usize, jid: String },
    /// A login was refused with `<failure reason="401">`.
    LoginRefused { conn: usize, why: String },
    /// A node the client sent after the handshake, decrypted.
    Node { conn: usize, node: Node },
    /// The connection ended (`why` is empty for a clean close by the client).
    Closed { conn: usize, why: String },
}

/// The primary device of a WhatsApp account, as far as linking goes: its number, its LID, its
/// platform, and the account identity key that signs every companion it links (ADV).
#[derive(Clone)]
pub struct Phone {
    /// The account's number, digits only (the user of its JID).
    pub number: String,
    /// The account's LID user (digits).
    pub lid: String,
    /// What `<pair-success><platform name=…>` says the phone runs.
    pub platform: String,
    identity: KeyPair,
}

impl Phone {
    /// A phone for `number` (digits, with the country code), with a fresh identity key.
    pub fn new(number: &str) -> Self {
        let lid = 100_000_000_000_000u64 + rand::random::<u64>() % 900_000_000_000_000;
        Self {
            number: number.to_owned(),
            lid: lid.to_string(),
            platform: "android".into(),
            identity: key_pair(),
        }
    }

    /// The account's public identity key (the companions' `account_signature_key`).
    pub fn identity_key(&self) -> [u8; 32] {
        public(&self.identity)
    }
}

/// A device a phone linked: the fake lets it log in.
#[derive(Clone, Debug)]
pub struct Companion {
    /// The phone's number.
    pub number: String,
    /// The phone's LID user.
    pub lid: String,
    /// The companion's device number.
    pub device: u16,
    /// The noise key it paired with (it must log in with the same).
    pub noise_key: [u8; 32],
    /// Its identity key, from the QR code.
    pub identity_key: [u8; 32],
    /// The phone's identity key, which signed it.
    account_key: [u8; 32],
    /// The `ADVDeviceIdentity` the phone signed.
    details: Vec<u8>,
}

impl Companion {
    /// `<number>:<device>@s.whatsapp.net`.
    pub fn jid(&self) -> String {
        format!("{}:{}@{SERVER}", self.number, self.device)
    }

    /// `<lid>:<device>@lid`.
    pub fn lid_jid(&self) -> String {
        format!("{}:{}@lid", self.lid, self.device)
    }
}

/// What the connections share: who shows which ref, what to send where, who is linked.
#[derive(Default)]
struct State {
    /// The connection that was handed each ref.
    refs: HashMap<String, usize>,
    /// Nodes to send on each open connection.
    outboxes: HashMap<usize, mpsc::UnboundedSender<Node>>,
    /// Companions offered with `<pair-success>`, by the IQ's id, until they countersign.
    offered: HashMap<String, (usize, Companion)>,
    /// Companions whose countersignature checked out.
    linked: Vec<Companion>,
    /// The last device number each phone handed out.
    last_device: HashMap<String, u16>,
    /// One-time pre-keys each logged-in companion uploaded, by JID.
    prekeys: HashMap<String, usize>,
}

/// A running fake; dropping it stops accepting connections (open ones run on).
pub struct FakeWhatsApp {
    url: String,
    seen: mpsc::UnboundedReceiver<Seen>,
    accept: JoinHandle<()>,
    state: Arc<Mutex<State>>,
}

impl Drop for FakeWhatsApp {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl FakeWhatsApp {
    /// Listens on 127.0.0.1 at a free port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws/chat", listener.local_addr().unwrap());
        let (tx, seen) = mpsc::unbounded_channel();
        let server = Server::new();
        let state = server.state.clone();
        let accept = tokio::spawn(async move {
            let mut conn = 0;
            while let Ok((socket, _)) = listener.accept().await {
                conn += 1;
                let (tx, server) = (tx.clone(), server.clone());
                tokio::spawn(async move {
                    let why = match server.serve(conn, socket, &tx).await {
                        Ok(()) => String::new(),
                        Err(e) => format!("{e:#}"),
                    };
                    server.state().outboxes.remove(&conn);
                    let _ = tx.send(Seen::Closed { conn, why });
                });
            }
        });
        Self {
            url,
            seen,
            accept,
            state,
        }
    }

    /// The WebSocket URL to configure as `web.ws_url`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// `phone` scans a QR `code` (`ref,noise key,identity key,ADV secret,client type`, as
    /// `GET …/qr` shows it): the server sends the connection that was handed that ref a
    /// `<pair-success>` linking it as the phone's next device, and returns that companion.
    ///
    /// The device identity is what a phone produces: an `ADVDeviceIdentity` (key index =
    /// device number, E2EE), signed by the phone's identity key over `[6, 0] ‖ details ‖
    /// companion identity key`, wrapped with an HMAC-SHA256 keyed by the code's ADV secret.
    pub fn scan(&self, code: &str, phone: &Phone) -> anyhow::Result<Companion> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let parts: Vec<&str> = code.split(',').collect();
        let [pairing_ref, noise, identity, adv, ..] = parts[..] else {
            bail!("not a pairing QR code: {code}");
        };
        let noise_key = key32(Some(&b64.decode(noise)?), "QR noise")?;
        let identity_key = key32(Some(&b64.decode(identity)?), "QR identity")?;
        let adv_secret = b64.decode(adv)?;

        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let conn = *state
            .refs
            .get(pairing_ref)
            .with_context(|| format!("no connection was handed the ref {pairing_ref}"))?;
        let outbox = state
            .outboxes
            .get(&conn)
            .with_context(|| format!("connection {conn} (ref {pairing_ref}) is closed"))?
            .clone();
        let device = {
            let last = state.last_device.entry(phone.number.clone()).or_insert(0);
            *last += 1;
            *last
        };

        let details = wa::ADVDeviceIdentity {
            raw_id: Some(rand::random()),
            timestamp: Some(chrono::Utc::now().timestamp() as u64),
            key_index: Some(u32::from(device)),
            account_type: Some(ADVEncryptionType::E2EE),
            device_type: Some(ADVEncryptionType::E2EE),
        }
        .encode_to_vec();
        let account_signature = calculate_curve_signature(
            &phone.identity.private_key,
            &[&ADV_ACCOUNT_SIGNATURE[..], &details, &identity_key].concat(),
        )
        .map_err(|e| anyhow::anyhow!("signing the device identity: {e}"))?;
        let signed = wa::ADVSignedDeviceIdentity {
            details: Some(details.clone()),
            account_signature_key: Some(phone.identity_key().to_vec()),
            account_signature: Some(account_signature.to_vec()),
            device_signature: None,
        }
        .encode_to_vec();
        let mut mac = Hmac::<Sha256>::new_from_slice(&adv_secret)?;
        mac.update(&signed);
        let device_identity = wa::ADVSignedDeviceIdentityHMAC {
            details: Some(signed),
            hmac: Some(mac.finalize().into_bytes().to_vec()),
            account_type: Some(ADVEncryptionType::E2EE),
        }
        .encode_to_vec();

        let companion = Companion {
            number: phone.number.clone(),
            lid: phone.lid.clone(),
            device,
            noise_key,
            identity_key,
            account_key: phone.identity_key(),
            details,
        };
        let id = format!("fake-pair-success-c{conn}-{device}");
        let node = NodeBuilder::new("iq")
            .attr("from", SERVER)
            .attr("type", "set")
            .attr("id", id.clone())
            .attr("xmlns", "md")
            .attr("t", chrono::Utc::now().timestamp().to_string())
            .children([NodeBuilder::new("pair-success")
                .children([
                    NodeBuilder::new("device-identity")
                        .bytes(device_identity)
                        .build(),
                    NodeBuilder::new("platform")
                        .attr("name", phone.platform.clone())
                        .build(),
                    NodeBuilder::new("device")
                        .attr("jid", jid(&companion.jid()))
                        .attr("lid", jid(&companion.lid_jid()))
                        .build(),
                ])
                .build()])
            .build();
        state.offered.insert(id, (conn, companion.clone()));
        outbox
            .send(node)
            .map_err(|_| anyhow::anyhow!("connection {conn} closed"))?;
        Ok(companion)
    }

    /// The companions linked so far.
    pub fn linked(&self) -> Vec<Companion> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .linked
            .clone()
    }

    /// Waits (at most `within`) for the first item `pick` takes, skipping the others.
    pub async fn wait_for<T>(
        &mut self,
        what: &str,
        within: Duration,
        mut pick: impl FnMut(Seen) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.seen.recv()).await {
                Ok(Some(seen)) => {
                    if let Some(t) = pick(seen) {
                        return t;
                    }
                }
                Ok(None) => panic!("the fake WhatsApp stopped before {what}"),
                Err(_) => panic!("the fake WhatsApp saw no {what} within {within:?}"),
            }
        }
    }

    /// Waits for a node from the client that `matches`.
    pub async fn wait_node(&mut self, what: &str, matches: impl Fn(&Node) -> bool) -> Node {
        self.wait_for(what, Duration::from_secs(10), |s| match s {
            Seen::Node { node, .. } if matches(&node) => Some(node),
            _ => None,
        })
        .await
    }

    /// Everything seen so far that nobody waited for yet, without waiting.
    pub fn drain(&mut self) -> Vec<Seen> {
        let mut out = Vec::new();
        while let Ok(s) = self.seen.try_recv() {
            out.push(s);
        }
        out
    }
}

/// One connection's side of the session: who logged in on it.
struct Session {
    conn: usize,
    /// The linked companion that logged in, if one did.
    companion: Option<Companion>,
}

/// The server's long-lived identity (its static Noise key and the chain vouching for it) and
/// what its connections share.
#[derive(Clone)]
struct Server {
    static_kp: KeyPair,
    cert_chain: Vec<u8>,
    state: Arc<Mutex<State>>,
}

impl Server {
    fn new() -> Self {
        let static_kp = key_pair();
        let cert_chain = cert_chain(&public(&static_kp));
        Self {
            static_kp,
            cert_chain,
            state: Arc::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One connection: handshake, then `<pair-device>` (a new device) or `<success>` (a
    /// linked one), then answering the client and relaying what the test sends until it
    /// closes.
    async fn serve(
        &self,
        conn: usize,
        socket: TcpStream,
        seen: &mpsc::UnboundedSender<Seen>,
    ) -> anyhow::Result<()> {
        let ws = tokio_tungstenite::accept_async(socket).await?;
        let _ = seen.send(Seen::Connected { conn });
        let mut wire = Wire::new(ws);

        // -> e (XX), or -> e, es, s, ss with the payload (IK)
        let Some(hello) = wire.frame().await? else {
            bail!("closed before the ClientHello");
        };
        let hello = wa::HandshakeMessage::decode_from_slice(&hello)?
            .client_hello
            .into_option()
            .context("no ClientHello")?;
        let client_eph = key32(hello.ephemeral.as_deref(), "client ephemeral")?;
        let (mut link, client_static, payload, pattern) = match (&hello.r#static, &hello.payload) {
            (Some(s), Some(p)) => self.ik(wire, &client_eph, s, p).await?,
            _ => {
                let (w, s, p) = self.xx(wire, &client_eph).await?;
                (w, s, p, Pattern::Xx)
            }
        };
        link.conn = conn;

        let (outbox, mut relayed) = mpsc::unbounded_channel();
        self.state().outboxes.insert(conn, outbox);
        let registering = payload.device_pairing_data.is_set();
        let login = (payload.username, payload.device);
        let _ = seen.send(Seen::Handshake {
            conn,
            client_static,
            payload: Box::new(payload),
            pattern,
        });

        let mut session = Session {
            conn,
            companion: None,
        };
        if registering {
            let refs: Vec<String> = (0..REFS)
                .map(|i| format!("2@fake-ref-c{conn}-{i}"))
                .collect();
            {
                let mut state = self.state();
                for r in &refs {
                    state.refs.insert(r.clone(), conn);
                }
            }
            link.send(&pair_device(&refs)).await?;
            let _ = seen.send(Seen::PairDevice { conn, refs });
        } else {
            match self.log_in(login, &client_static) {
                Ok(companion) => {
                    link.send(&success(&companion)).await?;
                    let _ = seen.send(Seen::LoggedIn {
                        conn,
                        jid: companion.jid(),
                    });
                    session.companion = Some(companion);
                }
                Err(why) => {
                    link.send(&NodeBuilder::new("failure").attr("reason", "401").build())
                        .await?;
                    let _ = seen.send(Seen::LoginRefused { conn, why });
                }
            }
        }

        loop {
            tokio::select! {
                node = link.recv() => {
                    let Some(node) = node? else { break };
                    let replies = self.reply(&node, &mut session, seen);
                    let _ = seen.send(Seen::Node { conn, node });
                    for reply in replies {
                        link.send(&reply).await?;
                    }
                }
                Some(node) = relayed.recv() => link.send(&node).await?,
            }
        }
        Ok(())
    }

    /// The responder side of Noise XX after the client's `-> e`: `<- e, ee, s, es` with the
    /// certificate chain, then the client's `-> s, se` with its `ClientPayload`.
    async fn xx(
        &self,
        wire: Wire,
        client_eph: &[u8; 32],
    ) -> anyhow::Result<(Link, [u8; 32], wa::ClientPayload)> {
        let noise = NoiseHandshake::new(NOISE_PATTERN_XX, &WA_CONN_HEADER)?;
        self.xx_from(noise, wire, client_eph).await
    }

    /// XX from our `ServerHello` on (shared by XX and XXfallback, which differ only in the
    /// protocol name the transcript starts from).
    async fn xx_from(
        &self,
        mut noise: NoiseHandshake,
        mut wire: Wire,
        client_eph: &[u8; 32],
    ) -> anyhow::Result<(Link, [u8; 32], wa::ClientPayload)> {
        noise.authenticate(client_eph);
        let eph = key_pair();
        noise.authenticate(&public(&eph));
        noise.mix_shared_secret(eph.private_key.serialize(), client_eph)?;
        let static_enc = noise.encrypt(&public(&self.static_kp))?;
        noise.mix_shared_secret(self.static_kp.private_key.serialize(), client_eph)?;
        let payload_enc = noise.encrypt(&self.cert_chain)?;
        let server_hello = wa::HandshakeMessage {
            server_hello: buffa::MessageField::some(wa::handshake_message::ServerHello {
                ephemeral: Some(public(&eph).to_vec()),
                r#static: Some(static_enc),
                payload: Some(payload_enc),
                ..Default::default()
            }),
            ..Default::default()
        };
        wire.send_frame(&server_hello.encode_to_vec()).await?;

        // -> s, se (and the ClientPayload)
        let Some(finish) = wire.frame().await? else {
            bail!("closed before the ClientFinish");
        };
        let finish = wa::HandshakeMessage::decode_from_slice(&finish)?
            .client_finish
            .into_option()
            .context("no ClientFinish")?;
        let client_static = noise.decrypt(finish.r#static.as_deref().context("no static")?)?;
        let client_static = key32(Some(&client_static), "client static")?;
        noise.mix_shared_secret(eph.private_key.serialize(), &client_static)?;
        let payload = noise.decrypt(finish.payload.as_deref().context("no payload")?)?;
        let payload = wa::ClientPayload::decode_from_slice(&payload)?;
        Ok((Link::new(wire, noise)?, client_static, payload))
    }

    /// The responder side of Noise IK: the client's `-> e, es, s, ss` already carries its
    /// static key and `ClientPayload`; we answer `<- e, ee, se` with the certificate chain.
    /// When the client's message does not decrypt (it cached another server's key), we answer
    /// as WhatsApp does, with a full `ServerHello` that switches it to XXfallback.
    async fn ik(
        &self,
        wire: Wire,
        client_eph: &[u8; 32],
        static_enc: &[u8],
        payload_enc: &[u8],
    ) -> anyhow::Result<(Link, [u8; 32], wa::ClientPayload, Pattern)> {
        let mut noise = NoiseHandshake::new(NOISE_PATTERN_IK, &WA_CONN_HEADER)?;
        let ours = self.static_kp.private_key.serialize();
        noise.authenticate(&public(&self.static_kp));
        noise.authenticate(client_eph);
        noise.mix_shared_secret(ours, client_eph)?;
        let Ok(client_static) = noise.decrypt(static_enc) else {
            let noise = NoiseHandshake::new(NOISE_PATTERN_XXFALLBACK, &WA_CONN_HEADER)?;
            let (link, s, p) = self.xx_from(noise, wire, client_eph).await?;
            return Ok((link, s, p, Pattern::XxFallback));
        };
        let client_static = key32(Some(&client_static), "client static")?;
        noise.mix_shared_secret(ours, &client_static)?;
        let payload = noise.decrypt(payload_enc)?;
        let payload = wa::ClientPayload::decode_from_slice(&payload)?;

        let eph = key_pair();
        noise.authenticate(&public(&eph));
        noise.mix_shared_secret(eph.private_key.serialize(), client_eph)?;
        noise.mix_shared_secret(eph.private_key.serialize(), &client_static)?;
        let payload_out = noise.encrypt(&self.cert_chain)?;
        let server_hello = wa::HandshakeMessage {
            server_hello: buffa::MessageField::some(wa::handshake_message::ServerHello {
                ephemeral: Some(public(&eph).to_vec()),
                payload: Some(payload_out),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut wire = wire;
        wire.send_frame(&server_hello.encode_to_vec()).await?;
        Ok((Link::new(wire, noise)?, client_static, payload, Pattern::Ik))
    }

    /// The companion a login payload names (`username` = the phone's number, `device`), if the
    /// fake linked it with this noise key.
    fn log_in(
        &self,
        (username, device): (Option<u64>, Option<u32>),
        noise_key: &[u8; 32],
    ) -> Result<Companion, String> {
        let (Some(number), Some(device)) = (username, device) else {
            return Err("the login payload names no username and device".into());
        };
        let number = number.to_string();
        self.state()
            .linked
            .iter()
            .find(|c| c.number == number && u32::from(c.device) == device)
            .cloned()
            .ok_or_else(|| format!("{number}:{device} was never linked"))
            .and_then(|c| {
                (c.noise_key == *noise_key)
                    .then_some(c)
                    .ok_or_else(|| format!("{number}:{device} logs in with another noise key"))
            })
    }

    /// What the server answers to a node from the client (nothing for most).
    fn reply(
        &self,
        node: &Node,
        session: &mut Session,
        seen: &mpsc::UnboundedSender<Seen>,
    ) -> Vec<Node> {
        if node.tag != "iq" {
            return Vec::new();
        }
        let Some(id) = attr(node, "id") else {
            return Vec::new();
        };
        match attr(node, "type").as_deref() {
            Some("result") | Some("error") => {
                return self.pair_device_sign(&id, node, session, seen);
            }
            Some("get") | Some("set") => {}
            _ => return Vec::new(),
        }
        reply_to_iq(&id, node, session, &self.state)
    }

    /// The companion's answer to `<pair-success>`: `<pair-device-sign>` with its countersigned
    /// device identity (checked against the identity key of its QR code), or an error. A
    /// good one links it and ends the stream with 515, after which the client logs in anew.
    fn pair_device_sign(
        &self,
        id: &str,
        node: &Node,
        session: &Session,
        seen: &mpsc::UnboundedSender<Seen>,
    ) -> Vec<Node> {
        let conn = session.conn;
        let Some((_, companion)) = self.state().offered.remove(id) else {
            return Vec::new();
        };
        let verdict = check_device_sign(node, &companion);
        match verdict {
            Ok(()) => {
                let jid = companion.jid();
                self.state().linked.push(companion);
                let _ = seen.send(Seen::Paired { conn, jid });
                vec![NodeBuilder::new("stream:error").attr("code", "515").build()]
            }
            Err(why) => {
                let _ = seen.send(Seen::PairRejected { conn, why });
                Vec::new()
            }
        }
    }
}

/// Checks a `<pair-device-sign><device-identity key-index=…>` answer: the identity the phone
/// signed, countersigned by the companion's identity key over `[6, 1] ‖ details ‖ companion
/// identity ‖ account key`.
fn check_device_sign(node: &Node, companion: &Companion) -> Result<(), String> {
    if attr(node, "type").as_deref() != Some("result") {
        return Err(format!("the companion refused the pairing: {node:?}"));
    }
    let identity = node
        .get_optional_child_by_tag(&["pair-device-sign", "device-identity"])
        .ok_or("no <pair-device-sign><device-identity>")?;
    let key_index = attr(identity, "key-index");
    if key_index != Some(companion.device.to_string()) {
        return Err(format!(
            "key-index {key_index:?}, device {}",
            companion.device
        ));
    }
    let Some(NodeContent::Bytes(bytes)) = &identity.content else {
        return Err("an empty <device-identity>".into());
    };
    let signed =
        wa::ADVSignedDeviceIdentity::decode_from_slice(bytes).map_err(|e| e.to_string())?;
    if signed.details.as_deref() != Some(&companion.details[..]) {
        return Err("the device identity's details changed".into());
    }
    if signed.account_signature_key.as_deref() != Some(&companion.account_key[..]) {
        return Err("the account key changed".into());
    }
    let signature = signed
        .device_signature
        .as_deref()
        .ok_or("no device signature")?;
    let message = [
        &ADV_DEVICE_SIGNATURE[..],
        &companion.details,
        &companion.identity_key,
        &companion.account_key,
    ]
    .concat();
    let key =
        PublicKey::from_djb_public_key_bytes(&companion.identity_key).map_err(|e| e.to_string())?;
    if !key.verify_signature(&message, signature) {
        return Err("the device signature does not verify with the QR code's identity key".into());
    }
    Ok(())
}

/// The server's answer to an IQ (`get` or `set`) from a client: what the client parses, or an
/// empty `result` where that is all it needs.
///
/// - `w:p` `<ping>` (keepalive): a `result` with the server time.
/// - `passive` `<active/>` (the client leaves passive mode after login): a `result`, then
///   `<ib><offline count="0"/></ib>`, the end of an empty offline queue, which the client
///   waits for before it reports itself connected.
/// - `encrypt` with a pre-key `<list>` (upload): remembered for `<count/>`, which answers
///   `<count value=…/>`.
/// - `w:sync:app:state` `<sync>`: every requested collection, empty (no snapshot, no patches).
/// - `abt` `<props>`: a props hash with no A/B props; `blocklist`: an empty `<list/>`;
///   `privacy`: everyone may see everything.
/// - anything else (digest, usync, unified session, …): an empty `result`.
fn reply_to_iq(id: &str, node: &Node, session: &Session, state: &Mutex<State>) -> Vec<Node> {
    let xmlns = attr(node, "xmlns").unwrap_or_default();
    let children = node.children().unwrap_or_default();
    let first = children.first().map(|c| c.tag.as_ref()).unwrap_or("");
    let result = |content: Vec<Node>| {
        let b = NodeBuilder::new("iq")
            .attr("from", SERVER)
            .attr("type", "result")
            .attr("id", id.to_owned());
        if content.is_empty() {
            b.build()
        } else {
            b.children(content).build()
        }
    };
    let own = session.companion.as_ref().map(Companion::jid);
    match (xmlns.as_str(), first) {
        ("w:p", _) => vec![
            NodeBuilder::new("iq")
                .attr("from", SERVER)
                .attr("type", "result")
                .attr("id", id.to_owned())
                .attr("t", chrono::Utc::now().timestamp().to_string())
                .build(),
        ],
        ("passive", "active") => vec![
            result(Vec::new()),
            NodeBuilder::new("ib")
                .attr("from", SERVER)
                .children([NodeBuilder::new("offline").attr("count", "0").build()])
                .build(),
        ],
        ("encrypt", "count") => {
            let n = own
                .and_then(|jid| state.lock().ok()?.prekeys.get(&jid).copied())
                .unwrap_or(NO_PREKEYS);
            vec![result(vec![
                NodeBuilder::new("count")
                    .attr("value", n.to_string())
                    .build(),
            ])]
        }
        ("encrypt", _) if node.get_optional_child("list").is_some() => {
            let uploaded = node
                .get_optional_child("list")
                .map_or(0, |l| l.get_children_by_tag("key").count());
            if let (Some(jid), Ok(mut state)) = (own, state.lock()) {
                *state.prekeys.entry(jid).or_default() += uploaded;
            }
            vec![result(Vec::new())]
        }
        ("w:sync:app:state", "sync") => {
            let collections = children[0]
                .get_children_by_tag("collection")
                .filter_map(|c| attr(c, "name"))
                .map(|name| {
                    NodeBuilder::new("collection")
                        .attr("name", name)
                        .attr("version", "0")
                        .build()
                });
            vec![result(vec![
                NodeBuilder::new("sync").children(collections).build(),
            ])]
        }
        ("abt", "props") => vec![result(vec![
            NodeBuilder::new("props")
                .attr("protocol", "2")
                .attr("hash", "fake-props")
                .attr("refresh", "86400")
                .build(),
        ])],
        ("blocklist", _) => vec![result(vec![NodeBuilder::new("list").build()])],
        ("privacy", "privacy") if attr(node, "type").as_deref() == Some("get") => {
            let categories = [
                ("last", "all"),
                ("online", "all"),
                ("profile", "all"),
                ("status", "all"),
                ("groupadd", "all"),
                ("readreceipts", "all"),
                ("calladd", "all"),
            ]
            .map(|(name, value)| {
                NodeBuilder::new("category")
                    .attr("name", name)
                    .attr("value", value)
                    .build()
            });
            vec![result(vec![
                NodeBuilder::new("privacy").children(categories).build(),
            ])]
        }
        _ => vec![result(Vec::new())],
    }
}

/// `<success>`: the login of a linked companion is accepted. The client reads the server time
/// (`t`) and its LID (`lid`) from it.
fn success(companion: &Companion) -> Node {
    NodeBuilder::new("success")
        .attr("t", chrono::Utc::now().timestamp().to_string())
        .attr("lid", jid(&companion.lid_jid()))
        .attr("location", "fake")
        .attr("props", "1")
        .attr("abprops", "1")
        .attr(
            "creation",
            (chrono::Utc::now().timestamp() - 86_400).to_string(),
        )
        .build()
}

/// `<iq from="s.whatsapp.net" type="set" id=… xmlns="md"><pair-device><ref>…</ref>…`
fn pair_device(refs: &[String]) -> Node {
    NodeBuilder::new("iq")
        .attr("from", SERVER)
        .attr("type", "set")
        .attr("id", PAIR_DEVICE_ID)
        .attr("xmlns", "md")
        .children([NodeBuilder::new("pair-device")
            .children(
                refs.iter()
                    .map(|r| NodeBuilder::new("ref").bytes(r.as_bytes()).build()),
            )
            .build()])
        .build()
}

/// An attribute as a string.
fn attr(node: &Node, key: &str) -> Option<String> {
    node.attrs.get(key).map(|v| v.as_str().into_owned())
}

/// A JID attribute value (the binary encoding has a JID form, as WhatsApp sends them).
fn jid(s: &str) -> Jid {
    s.parse().unwrap()
}

/// The WebSocket as a stream of frames: 3-byte big-endian length, then the payload. The
/// client's very first message starts with the 4-byte connection header.
struct Wire {
    ws: WebSocketStream<TcpStream>,
    frames: FrameDecoder,
    header_seen: bool,
}

impl Wire {
    fn new(ws: WebSocketStream<TcpStream>) -> Self {
        Self {
            ws,
            frames: FrameDecoder::new(),
            header_seen: false,
        }
    }

    /// The next frame's payload; `None` once the client closed. Cancel-safe: a partial frame
    /// stays in the decoder.
    async fn frame(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        loop {
            if let Some(frame) = self.frames.decode_frame() {
                return Ok(Some(frame.to_vec()));
            }
            let data = match self.ws.next().await {
                None | Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Ok(Message::Binary(data))) => data,
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
            };
            let mut data = &data[..];
            if !self.header_seen {
                data = data
                    .strip_prefix(&WA_CONN_HEADER[..])
                    .context("the first message lacks the WA connection header")?;
                self.header_seen = true;
            }
            self.frames.feed(data);
        }
    }

    async fn send_frame(&mut self, payload: &[u8]) -> anyhow::Result<()> {
        let framed = encode_frame(payload, None)?;
        self.ws.send(Message::binary(framed)).await?;
        Ok(())
    }
}

/// The encrypted link after the handshake.
struct Link {
    /// The connection's number, for [`trace`].
    conn: usize,
    wire: Wire,
    read: NoiseCipher,
    write: NoiseCipher,
    read_n: u32,
    write_n: u32,
}

impl Link {
    /// The link a finished handshake gives. The initiator writes with the first key of the
    /// split, so we read with it.
    fn new(wire: Wire, noise: NoiseHandshake) -> anyhow::Result<Self> {
        let (read, write) = noise.finish()?;
        Ok(Self {
            conn: 0,
            wire,
            read,
            write,
            read_n: 0,
            write_n: 0,
        })
    }

    async fn send(&mut self, node: &Node) -> anyhow::Result<()> {
        trace(self.conn, "->", node);
        // `marshal` writes the flag byte (0: not compressed) before the node.
        let plain = marshal(node)?;
        let sealed = self.write.encrypt_with_counter(self.write_n, &plain)?;
        self.write_n += 1;
        self.wire.send_frame(&sealed).await
    }

    /// The next node; `None` once the client closed. Cancel-safe (see [`Wire::frame`]).
    async fn recv(&mut self) -> anyhow::Result<Option<Node>> {
        let Some(mut frame) = self.wire.frame().await? else {
            return Ok(None);
        };
        self.read
            .decrypt_in_place_with_counter(self.read_n, &mut frame)?;
        self.read_n += 1;
        let plain = unpack(&frame)?;
        let node = unmarshal_ref(&plain)?.to_owned();
        trace(self.conn, "<-", &node);
        Ok(Some(node))
    }
}

/// With `FAKE_WA_TRACE` set, prints every node the fake sends (`->`) and receives (`<-`):
/// what to look at when a client waits for something the fake does not say.
fn trace(conn: usize, dir: &str, node: &Node) {
    if std::env::var_os("FAKE_WA_TRACE").is_some() {
        eprintln!("[fake-wa c{conn}] {dir} {node:?}");
    }
}

/// A fresh Curve25519 key pair (from the workspace's `rand`; the crate's `generate` wants
/// another major version of it).
fn key_pair() -> KeyPair {
    let private = PrivateKey::deserialize(&rand::random::<[u8; 32]>()).unwrap();
    KeyPair::try_from(private).unwrap()
}

fn public(kp: &KeyPair) -> [u8; 32] {
    kp.public_key.public_key_bytes().try_into().unwrap()
}

fn key32(bytes: Option<&[u8]>, what: &str) -> anyhow::Result<[u8; 32]> {
    bytes
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("the {what} key is not 32 bytes"))
}

/// A `CertChain` shaped like WhatsApp's (intermediate issued by serial 0, leaf issued by the
/// intermediate and carrying `leaf_key`), with zero signatures.
fn cert_chain(leaf_key: &[u8; 32]) -> Vec<u8> {
    let cert = |details: noise_certificate::Details| wa::cert_chain::NoiseCertificate {
        details: Some(details.encode_to_vec()),
        signature: Some(vec![0; 64]),
    };
    let now = chrono::Utc::now().timestamp() as u64;
    wa::CertChain {
        intermediate: buffa::MessageField::some(cert(noise_certificate::Details {
            serial: Some(1),
            issuer_serial: Some(0),
            key: Some(vec![0xCC; 32]),
            not_before: Some(now - 3600),
            not_after: Some(now + 86_400),
        })),
        leaf: buffa::MessageField::some(cert(noise_certificate::Details {
            serial: Some(2),
            issuer_serial: Some(1),
            key: Some(leaf_key.to_vec()),
            not_before: Some(now - 3600),
            not_after: Some(now + 86_400),
        })),
    }
    .encode_to_vec()
}
