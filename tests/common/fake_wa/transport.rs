//! The WebSocket framing and the encrypted transport after the handshake.

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::{WebSocketStream, tungstenite::Message};
use whatsapp_rust::{
    wacore::{
        framing::{FrameDecoder, encode_frame},
        noise::{NoiseCipher, NoiseHandshake},
    },
    wacore_binary::{Node, consts::WA_CONN_HEADER, marshal, marshal::unmarshal_ref, util::unpack},
};

/// The WebSocket as a stream of frames: 3-byte big-endian length, then the payload. The
/// client's very first message starts with the 4-byte connection header.
pub(super) struct Wire {
    ws: WebSocketStream<TcpStream>,
    frames: FrameDecoder,
    header_seen: bool,
}

impl Wire {
    pub(super) fn new(ws: WebSocketStream<TcpStream>) -> Self {
        Self {
            ws,
            frames: FrameDecoder::new(),
            header_seen: false,
        }
    }

    /// The next frame's payload; `None` once the client closed. Cancel-safe: a partial frame
    /// stays in the decoder.
    pub(super) async fn frame(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
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

    pub(super) async fn send_frame(&mut self, payload: &[u8]) -> anyhow::Result<()> {
        let framed = encode_frame(payload, None)?;
        self.ws.send(Message::binary(framed)).await?;
        Ok(())
    }
}

/// The encrypted link after the handshake.
pub(super) struct Link {
    /// The connection's number, for [`trace`].
    pub(super) conn: usize,
    wire: Wire,
    read: NoiseCipher,
    write: NoiseCipher,
    read_n: u32,
    write_n: u32,
}

impl Link {
    /// The link a finished handshake gives. The initiator writes with the first key of the
    /// split, so we read with it.
    pub(super) fn new(wire: Wire, noise: NoiseHandshake) -> anyhow::Result<Self> {
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

    pub(super) async fn send(&mut self, node: &Node) -> anyhow::Result<()> {
        trace(self.conn, "->", node);
        // `marshal` writes the flag byte (0: not compressed) before the node.
        let plain = marshal(node)?;
        let sealed = self.write.encrypt_with_counter(self.write_n, &plain)?;
        self.write_n += 1;
        self.wire.send_frame(&sealed).await
    }

    /// The next node; `None` once the client closed. Cancel-safe (see [`Wire::frame`]).
    pub(super) async fn recv(&mut self) -> anyhow::Result<Option<Node>> {
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
