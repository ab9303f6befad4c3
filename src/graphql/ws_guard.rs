//! Bounds on a GraphQL WebSocket that async-graphql leaves to the application: at most
//! `max` subscriptions at once (one more is answered with an `error` for that id and never
//! started), and `connection_init` within a timeout (else close 4408, as graphql-transport-ws
//! says). The guard sits on both directions of the socket: it counts `subscribe`/`start`
//! frames in, and `complete`/`stop` frames either way.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::extract::ws::{CloseFrame, Message};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Close code for a socket that never sent `connection_init`.
pub const INIT_TIMEOUT_CODE: u16 = 4408;

/// Shared state of one socket.
pub struct WsGuard {
    max: usize,
    active: Mutex<HashSet<String>>,
    init_seen: AtomicBool,
    legacy: bool,
}

fn parse(msg: &Message) -> Option<Value> {
    match msg {
        Message::Text(t) => serde_json::from_str(t.as_str()).ok(),
        _ => None,
    }
}

impl WsGuard {
    /// A guard for a socket speaking `graphql-transport-ws` (or the legacy `graphql-ws`).
    pub fn new(max: usize, legacy: bool) -> Arc<Self> {
        Arc::new(Self {
            max,
            active: Mutex::default(),
            init_seen: AtomicBool::new(false),
            legacy,
        })
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The refusal for one operation over the cap.
    fn too_many(&self, id: &str) -> Message {
        let error = json!({
            "message": format!("At most {} subscriptions may be open on one connection", self.max),
            "extensions": {"code": "TOO_MANY_SUBSCRIPTIONS"},
        });
        let payload = if self.legacy { error } else { json!([error]) };
        Message::Text(
            json!({"id": id, "type": "error", "payload": payload})
                .to_string()
                .into(),
        )
    }

    /// Client frames, minus subscriptions over the cap (refused through `out` instead).
    pub fn incoming<S, E>(
        self: &Arc<Self>,
        stream: S,
        out: mpsc::Sender<Message>,
    ) -> impl Stream<Item = Result<Message, E>> + Send + 'static + use<S, E>
    where
        S: Stream<Item = Result<Message, E>> + Send + 'static,
        E: Send + 'static,
    {
        let guard = self.clone();
        stream.filter_map(move |item| {
            let guard = guard.clone();
            let out = out.clone();
            async move {
                let Ok(msg) = &item else { return Some(item) };
                let Some(v) = parse(msg) else {
                    return Some(item);
                };
                let id = v["id"].as_str().unwrap_or_default().to_owned();
                match v["type"].as_str() {
                    Some("connection_init") => guard.init_seen.store(true, Ordering::SeqCst),
                    Some("subscribe" | "start") => {
                        let refused = {
                            let mut active = guard.active();
                            if active.len() >= guard.max && !active.contains(&id) {
                                true
                            } else {
                                active.insert(id.clone());
                                false
                            }
                        };
                        if refused {
                            let _ = out.send(guard.too_many(&id)).await;
                            return None;
                        }
                    }
                    Some("complete" | "stop") => {
                        guard.active().remove(&id);
                    }
                    _ => {}
                }
                Some(item)
            }
        })
    }

    /// The sink the GraphQL server writes to: forwards into `out`, noting operations it ends.
    pub fn outgoing(
        self: &Arc<Self>,
        out: mpsc::Sender<Message>,
    ) -> impl Sink<Message, Error = axum::Error> + Send + 'static {
        let guard = self.clone();
        tokio_util::sync::PollSender::new(out)
            .sink_map_err(axum::Error::new)
            .with(move |msg: Message| {
                if let Some(v) = parse(&msg)
                    && matches!(v["type"].as_str(), Some("complete" | "error"))
                    && let Some(id) = v["id"].as_str()
                {
                    guard.active().remove(id);
                }
                futures_util::future::ready(Ok::<_, axum::Error>(msg))
            })
    }

    /// Resolves after sending the 4408 close when no `connection_init` arrived in time; never
    /// resolves otherwise.
    pub async fn init_deadline(self: Arc<Self>, timeout: Duration, out: mpsc::Sender<Message>) {
        tokio::time::sleep(timeout).await;
        if self.init_seen.load(Ordering::SeqCst) {
            return std::future::pending().await;
        }
        let _ = out
            .send(Message::Close(Some(CloseFrame {
                code: INIT_TIMEOUT_CODE,
                reason: "Connection initialisation timeout".into(),
            })))
            .await;
    }
}

/// Writes everything sent on `rx` to the socket, then closes it.
pub async fn write_all<S>(mut rx: mpsc::Receiver<Message>, mut sink: S)
where
    S: Sink<Message> + Unpin,
{
    while let Some(msg) = rx.recv().await {
        let close = matches!(msg, Message::Close(_));
        if sink.send(msg).await.is_err() || close {
            break;
        }
    }
    let _ = sink.close().await;
}
