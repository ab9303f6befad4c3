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
//! 8. **Contacts** ([`Contact`], [`FakeWhatsApp::add_contact`]): numbers the fake knows, each
//!    with its own Signal identity. usync answers `contact` (`in` for them, `out` for any
//!    other number) and their `devices` (device 0; the logged-in account's own devices: none,
//!    so the client sends no copies to the phone); a pre-key fetch (`encrypt` `<key>`) gets
//!    their bundles. [`FakeWhatsApp::send_text`] has a contact write to a companion: a Signal
//!    session from the pre-keys the companion uploaded, then `<message><enc type="pkmsg">`.
//!    The server acks the client's `<receipt>`s with `<ack class="receipt">`.
//! 9. **The companion's sends**: the server acks every `<message>` from the client with
//!    `<ack class="message" id=… from=<its to> t=…>`; [`FakeWhatsApp::read_sent`] has the
//!    contacts it is addressed to decrypt their `<enc>` (direct or under `<participants><to
//!    jid=…>`), and [`FakeWhatsApp::send_receipt`] has a contact confirm it (`<receipt>`,
//!    delivered, or with `type="read"`).
//! 10. **A network drop**: [`FakeWhatsApp::drop_link`] closes a logged-in companion's socket
//!     without a close frame or stream error; its [`Seen::Closed`] says [`DROPPED`].
//! 11. **Media** ([`media`]): a plain-HTTP server on this machine plays WhatsApp's media
//!     hosts. The media-connection IQ (`xmlns="w:m"` `<media_conn/>`) names it (`127.0.0.1:
//!     <port>`) with the auth token [`MEDIA_AUTH`]; it takes the client's encrypted uploads
//!     (`POST /mms/<type>/<token>`, answered with `url` and `direct_path`) and serves files
//!     at their direct paths; [`FakeWhatsApp::send_image`] has a contact send an image kept
//!     there, and [`decrypt_media`] opens an upload with a message's media key.
//! 12. **Linking with a code** ([`LinkCodeHello`]): an unpaired companion asking for a pairing
//!     code for a number (`<iq xmlns="md" type="set"><link_code_companion_reg jid=<number>@s.
//!     whatsapp.net stage="companion_hello">` with its code-wrapped ephemeral key, its noise
//!     key and its platform) gets `<link_code_companion_reg><link_code_pairing_ref>` back, the
//!     ref the phone's side would continue with. The fake plays no phone entering the code
//!     (`primary_hello`, `companion_finish`).
//!
//! Everything the client says is reported to the test as [`Seen`] items; with `FAKE_WA_TRACE`
//! set, every node in and out is also printed to stderr.
//!
//! Files: [`transport`] (framing, encrypted link), [`handshake`] (Noise XX/IK), [`pairing`]
//! (QR scan, ADV signatures, pairing-code requests), [`server`] (one task per connection), [`iq`] (answers to IQs),
//! [`contact`] and [`messages`] (Signal sessions, messages from contacts), [`media`] (media
//! hosts).
#![allow(dead_code)]

mod contact;
mod handshake;
mod iq;
mod media;
mod messages;
mod pairing;
mod server;
mod transport;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context;
use tokio::{
    net::TcpListener,
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use whatsapp_rust::{
    wacore::libsignal::protocol::{KeyPair, PrivateKey},
    wacore_binary::Node,
    waproto::whatsapp as wa,
};

use self::server::Server;
// Each test crate that includes the fake uses some of these.
#[allow(unused_imports)]
pub use self::{
    contact::{Contact, Upload},
    media::{MEDIA_AUTH, decrypt_media, media_token},
    pairing::LinkCodeHello,
    server::DROPPED,
};

/// WhatsApp's server JID, the `from` of everything the server says.
pub const SERVER: &str = "s.whatsapp.net";
/// How many refs one `<pair-device>` carries, as WhatsApp does.
pub const REFS: usize = 6;
/// The id of the `<pair-device>` IQ on every connection.
pub const PAIR_DEVICE_ID: &str = "fake-pair-device";
/// How many one-time pre-keys the fake reports when the client asks before uploading any.
pub const NO_PREKEYS: usize = 0;

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
    /// An unpaired companion asked for a pairing code for a phone number (`<iq xmlns="md"
    /// type="set"><link_code_companion_reg stage="companion_hello">`); the fake answered with
    /// `pairing_ref`.
    PairCodeRequested {
        conn: usize,
        request: LinkCodeHello,
        pairing_ref: Vec<u8>,
    },
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
    /// Drops each open connection (closes its socket without a word) when fired.
    drops: HashMap<usize, oneshot::Sender<()>>,
    /// Companions offered with `<pair-success>`, by the IQ's id, until they countersign.
    offered: HashMap<String, (usize, Companion)>,
    /// Companions whose countersignature checked out.
    linked: Vec<Companion>,
    /// The last device number each phone handed out.
    last_device: HashMap<String, u16>,
    /// One-time pre-keys each logged-in companion uploaded, by JID.
    prekeys: HashMap<String, usize>,
    /// The keys each companion uploaded (its pre-key bundle), by JID.
    uploads: HashMap<String, Upload>,
    /// The connection each companion last logged in on, by JID.
    online: HashMap<String, usize>,
    /// The contacts the fake plays, by number.
    contacts: HashMap<String, Arc<tokio::sync::Mutex<Contact>>>,
    /// The media host (`127.0.0.1:<port>`) the media-connection IQ hands out.
    media_host: String,
    /// Pairing-code requests answered, by the phone number they were for: the connection
    /// that asked and the pairing ref it was handed.
    link_codes: HashMap<String, (usize, Vec<u8>)>,
}

/// A running fake; dropping it stops accepting connections (open ones run on).
pub struct FakeWhatsApp {
    url: String,
    seen: mpsc::UnboundedReceiver<Seen>,
    accept: JoinHandle<()>,
    state: Arc<Mutex<State>>,
    /// WhatsApp's media hosts (plain HTTP on this machine).
    media: media::MediaServer,
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
        let media = media::MediaServer::start().await;
        server.state().media_host = media.host.clone();
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
                    {
                        let mut state = server.state();
                        state.outboxes.remove(&conn);
                        state.drops.remove(&conn);
                    }
                    let _ = tx.send(Seen::Closed { conn, why });
                });
            }
        });
        Self {
            url,
            seen,
            accept,
            state,
            media,
        }
    }

    /// The WebSocket URL to configure as `web.ws_url`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Drops the connection the companion `to` is logged in on, as a network failure would:
    /// its socket is closed with no WebSocket close frame and no stream error. Returns the
    /// connection's number (its [`Seen::Closed`] says `dropped`).
    pub fn drop_link(&self, to: &Companion) -> anyhow::Result<usize> {
        let mut state = self.lock();
        let jid = to.jid();
        let conn = *state
            .online
            .get(&jid)
            .with_context(|| format!("{jid} never logged in"))?;
        state
            .drops
            .remove(&conn)
            .with_context(|| format!("{jid}'s connection {conn} is closed"))?
            .send(())
            .map_err(|()| anyhow::anyhow!("connection {conn} closed"))?;
        Ok(conn)
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
