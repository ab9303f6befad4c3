//! A fake WhatsApp Web server, just enough of WhatsApp's side of the wire for the `web`
//! provider's client (`whatsapp-rust`) to connect to it and ask for a pairing.
//!
//! What it plays, per WebSocket connection (all binary messages):
//!
//! 1. **Noise XX handshake, responder side** (`Noise_XX_25519_AESGCM_SHA256`, prologue
//!    [`WA_CONN_HEADER`] = `WA 6 <dict version>`). The client's first message is that 4-byte
//!    header followed by frames; every frame is a 3-byte big-endian length and a payload
//!    (`wacore::framing`). The frames carry `HandshakeMessage` protobufs: the client's
//!    `ClientHello` (its ephemeral key), our `ServerHello` (our ephemeral key, our static key
//!    encrypted, and our certificate chain encrypted), then the client's `ClientFinish` (its
//!    static — "noise" — key and its `ClientPayload`, both encrypted).
//! 2. **The certificate chain** is WhatsApp-shaped (intermediate with issuer serial 0, leaf
//!    whose key is our static key) but signed with zeros: the client accepts it only when
//!    built with `whatsapp-rust/danger-skip-cert-chain-verify` (our `fake-whatsapp` feature).
//! 3. **The transport after the handshake**: each frame is AES-256-GCM with the key pair the
//!    handshake split into (one key per direction) and a per-direction counter as nonce; its
//!    plaintext is a flag byte (bit 2: zlib) and a node in WhatsApp's binary XML
//!    (`wacore_binary::marshal`).
//! 4. **Asking an unpaired device to pair**: right after the handshake it sends
//!    `<iq from="s.whatsapp.net" type="set" id=… xmlns="md"><pair-device><ref>…</ref>…
//!    </pair-device></iq>` with six refs (WhatsApp hands out six). The client acks it and shows
//!    one QR code per ref (the first for 60 s, each next one for 20 s).
//! 5. **Keeping the link up**: it answers the client's keepalive pings
//!    (`<iq type="get" xmlns="w:p"><ping/></iq>`) with `<iq type="result">`.
//!
//! Everything the client says is reported to the test as [`Seen`] items. Nothing here
//! plays a phone: there is no `pair-success`, no `<success>`, no messages.
#![allow(dead_code)]

use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
    task::JoinHandle,
};
use tokio_tungstenite::{WebSocketStream, tungstenite::Message};
use whatsapp_rust::{
    buffa::{self, Message as _},
    wacore::{
        framing::{FrameDecoder, encode_frame},
        libsignal::protocol::{KeyPair, PrivateKey},
        noise::{NoiseCipher, NoiseHandshake},
    },
    wacore_binary::{
        Node,
        builder::NodeBuilder,
        consts::{NOISE_PATTERN_XX, WA_CONN_HEADER},
        marshal,
        marshal::unmarshal_ref,
        util::unpack,
    },
    waproto::whatsapp::{self as wa, cert_chain::noise_certificate},
};

/// WhatsApp's server JID, the `from` of everything the server says.
pub const SERVER: &str = "s.whatsapp.net";
/// How many refs one `<pair-device>` carries, as WhatsApp does.
pub const REFS: usize = 6;
/// The id of the `<pair-device>` IQ on every connection.
pub const PAIR_DEVICE_ID: &str = "fake-pair-device";

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
    },
    /// `<pair-device>` went out with these refs.
    PairDevice { conn: usize, refs: Vec<String> },
    /// A node the client sent after the handshake, decrypted.
    Node { conn: usize, node: Node },
    /// The connection ended (`why` is empty for a clean close by the client).
    Closed { conn: usize, why: String },
}

/// A running fake; dropping it stops accepting connections (open ones run on).
pub struct FakeWhatsApp {
    url: String,
    seen: mpsc::UnboundedReceiver<Seen>,
    accept: JoinHandle<()>,
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
                    let _ = tx.send(Seen::Closed { conn, why });
                });
            }
        });
        Self { url, seen, accept }
    }

    /// The WebSocket URL to configure as `web.ws_url`.
    pub fn url(&self) -> String {
        self.url.clone()
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
}

/// The server's long-lived identity: its static Noise key and the chain vouching for it.
#[derive(Clone)]
struct Server {
    static_kp: KeyPair,
    cert_chain: Vec<u8>,
}

impl Server {
    fn new() -> Self {
        let static_kp = key_pair();
        let cert_chain = cert_chain(&public(&static_kp));
        Self {
            static_kp,
            cert_chain,
        }
    }

    /// One connection: handshake, `<pair-device>`, then answering pings until it closes.
    async fn serve(
        &self,
        conn: usize,
        socket: TcpStream,
        seen: &mpsc::UnboundedSender<Seen>,
    ) -> anyhow::Result<()> {
        let ws = tokio_tungstenite::accept_async(socket).await?;
        let _ = seen.send(Seen::Connected { conn });
        let mut wire = Wire::new(ws);

        // -> e
        let Some(hello) = wire.frame().await? else {
            bail!("closed before the ClientHello");
        };
        let hello = wa::HandshakeMessage::decode_from_slice(&hello)?
            .client_hello
            .into_option()
            .context("no ClientHello")?;
        let client_eph = key32(hello.ephemeral.as_deref(), "client ephemeral")?;

        // <- e, ee, s, es (and the certificate chain as the payload)
        let mut noise = NoiseHandshake::new(NOISE_PATTERN_XX, &WA_CONN_HEADER)?;
        noise.authenticate(&client_eph);
        let eph = key_pair();
        noise.authenticate(&public(&eph));
        noise.mix_shared_secret(eph.private_key.serialize(), &client_eph)?;
        let static_enc = noise.encrypt(&public(&self.static_kp))?;
        noise.mix_shared_secret(self.static_kp.private_key.serialize(), &client_eph)?;
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
        // The initiator writes with the first key of the split, so we read with it.
        let (read, write) = noise.finish()?;
        let mut link = Link {
            wire,
            read,
            write,
            read_n: 0,
            write_n: 0,
        };
        let registering = payload.device_pairing_data.is_set();
        let _ = seen.send(Seen::Handshake {
            conn,
            client_static,
            payload: Box::new(payload),
        });

        if registering {
            let refs: Vec<String> = (0..REFS)
                .map(|i| format!("2@fake-ref-c{conn}-{i}"))
                .collect();
            link.send(&pair_device(&refs)).await?;
            let _ = seen.send(Seen::PairDevice { conn, refs });
        }

        while let Some(node) = link.recv().await? {
            if let Some(pong) = pong(&node) {
                link.send(&pong).await?;
            }
            let _ = seen.send(Seen::Node { conn, node });
        }
        Ok(())
    }
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

/// The answer to a keepalive ping (`<iq type="get" xmlns="w:p">`), if `node` is one.
fn pong(node: &Node) -> Option<Node> {
    let attrs = &node.attrs;
    let is = |k: &str, v: &str| attrs.get(k).is_some_and(|a| a.as_str() == v);
    if node.tag != "iq" || !is("type", "get") || !is("xmlns", "w:p") {
        return None;
    }
    let id = attrs.get("id")?.as_str().into_owned();
    Some(
        NodeBuilder::new("iq")
            .attr("from", SERVER)
            .attr("type", "result")
            .attr("id", id)
            .attr("t", chrono::Utc::now().timestamp().to_string())
            .build(),
    )
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

    /// The next frame's payload; `None` once the client closed.
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
    wire: Wire,
    read: NoiseCipher,
    write: NoiseCipher,
    read_n: u32,
    write_n: u32,
}

impl Link {
    async fn send(&mut self, node: &Node) -> anyhow::Result<()> {
        // `marshal` writes the flag byte (0: not compressed) before the node.
        let plain = marshal(node)?;
        let sealed = self.write.encrypt_with_counter(self.write_n, &plain)?;
        self.write_n += 1;
        self.wire.send_frame(&sealed).await
    }

    async fn recv(&mut self) -> anyhow::Result<Option<Node>> {
        let Some(mut frame) = self.wire.frame().await? else {
            return Ok(None);
        };
        self.read
            .decrypt_in_place_with_counter(self.read_n, &mut frame)?;
        self.read_n += 1;
        let plain = unpack(&frame)?;
        Ok(Some(unmarshal_ref(&plain)?.to_owned()))
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
