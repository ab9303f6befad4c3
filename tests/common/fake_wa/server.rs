//! The server: one task per connection.

use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use tokio::{
    net::TcpStream,
    sync::{mpsc, oneshot},
};
use whatsapp_rust::{
    buffa::Message as _,
    wacore::libsignal::protocol::KeyPair,
    wacore_binary::{Node, builder::NodeBuilder},
    waproto::whatsapp as wa,
};

use super::{
    Companion, Pattern, REFS, Seen, State,
    handshake::cert_chain,
    iq::{attr, message_ack, receipt_ack, reply_to_iq},
    key_pair, key32,
    pairing::{pair_device, success},
    public,
    transport::Wire,
};

/// Why a connection the test dropped ([`super::FakeWhatsApp::drop_link`]) closed.
pub const DROPPED: &str = "dropped (socket closed without a close frame)";

/// One connection's side of the session: who logged in on it.
pub(super) struct Session {
    pub(super) conn: usize,
    /// The linked companion that logged in, if one did.
    pub(super) companion: Option<Companion>,
}

/// The server's long-lived identity (its static Noise key and the chain vouching for it) and
/// what its connections share.
#[derive(Clone)]
pub(super) struct Server {
    pub(super) static_kp: KeyPair,
    pub(super) cert_chain: Vec<u8>,
    pub(super) state: Arc<Mutex<State>>,
}

impl Server {
    pub(super) fn new() -> Self {
        let static_kp = key_pair();
        let cert_chain = cert_chain(&public(&static_kp));
        Self {
            static_kp,
            cert_chain,
            state: Arc::default(),
        }
    }

    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One connection: handshake, then `<pair-device>` (a new device) or `<success>` (a
    /// linked one), then answering the client and relaying what the test sends until it
    /// closes.
    pub(super) async fn serve(
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
        let (drop_tx, mut dropped) = oneshot::channel();
        {
            let mut state = self.state();
            state.outboxes.insert(conn, outbox);
            state.drops.insert(conn, drop_tx);
        }
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
                    self.state().online.insert(companion.jid(), conn);
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
                Ok(()) = &mut dropped => {
                    // Dropping the link closes the TCP socket, with no close frame.
                    drop(link);
                    bail!("{DROPPED}");
                }
            }
        }
        Ok(())
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
        if node.tag == "receipt" {
            return receipt_ack(node).into_iter().collect();
        }
        if node.tag == "message" {
            return message_ack(node).into_iter().collect();
        }
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
        if let Some(reply) = self.link_code_hello(&id, node, session, seen) {
            return reply;
        }
        reply_to_iq(&id, node, session, &self.state)
    }
}
