//! One `web` session's live link to WhatsApp Web: a `whatsapp-rust` client on the session's
//! device store, driven by a supervisor task.
//!
//! The supervisor runs the client's connection loop with the crate's own reconnects turned
//! off, so that every retry is the gateway's: it reports `Reconnecting` with the attempt, the
//! delay it really waits ([`crate::backoff::reconnect_delay`]) and why the link dropped, also
//! when the WebSocket cannot even be opened (the crate reports no event for that). After a
//! pairing WhatsApp closes the stream once (515) and the client comes straight back with its
//! new identity. The ends a retry cannot fix (logged out, banned, replaced, outdated, QR codes
//! exhausted) stop the loop; a logout from the phone also wipes the device keys.
//!
//! Crate events reach one task through a channel fed synchronously by the client's event bus,
//! so they are applied in the order WhatsApp produced them and none is dropped.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use tokio::sync::{mpsc, watch};
use whatsapp_rust::{
    Client,
    bot::Bot,
    transport::{Transport, TransportEvent, TransportFactory},
    wacore::types::events::{Event, EventHandler},
};

use super::{
    events::{Link, translate},
    inbound,
};
use crate::provider::{ProviderError, ProviderEvent, SessionContext};

/// Why a connection without a recorded reason is retried.
const CLOSED: &str = "The connection to WhatsApp closed";

/// State shared by the connection handle, the supervisor and the transport factory.
pub(super) struct Shared {
    /// What the link knows (numbers, failures, last error).
    pub link: Mutex<Link>,
    /// A logout or close is under way: events are no longer reported, nothing reconnects.
    pub stopping: AtomicBool,
    /// Online: connected and paired.
    pub online: AtomicBool,
}

impl Shared {
    pub fn new(link: Link) -> Arc<Self> {
        Arc::new(Self {
            link: Mutex::new(link),
            stopping: AtomicBool::new(false),
            online: AtomicBool::new(false),
        })
    }

    /// Runs `f` on the link state (a poisoned lock still holds usable state).
    pub fn with_link<T>(&self, f: impl FnOnce(&mut Link) -> T) -> T {
        let mut guard = self.link.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

/// Opens WebSockets through the configured factory and records why one could not be opened,
/// so the retry can say so.
pub(super) struct RecordingTransports<F> {
    pub inner: F,
    pub shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl<F: TransportFactory> TransportFactory for RecordingTransports<F> {
    async fn create_transport(
        &self,
    ) -> Result<
        (
            Arc<dyn Transport>,
            whatsapp_rust::async_channel::Receiver<TransportEvent>,
        ),
        anyhow::Error,
    > {
        self.inner.create_transport().await.inspect_err(|e| {
            self.shared.with_link(|l| {
                l.last_error = Some(format!("Cannot reach WhatsApp Web: {e:#}"));
            });
        })
    }
}

/// Hands every crate event to the supervisor, in bus order (the bus calls it synchronously).
pub(super) struct Forward(pub mpsc::UnboundedSender<Arc<Event>>);

impl EventHandler for Forward {
    fn handle_event(&self, event: Arc<Event>) {
        let _ = self.0.send(event);
    }
}

/// How the supervisor goes on after an event.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    /// The session ended (or moved on); `wipe` when the pairing is gone for good.
    Stop {
        wipe: bool,
    },
}

/// Applies one crate event: translated, reported and waited for.
async fn apply(event: &Event, client: &Client, shared: &Shared, ctx: &SessionContext) -> Flow {
    if shared.stopping.load(Ordering::SeqCst) {
        return Flow::Continue;
    }
    match event {
        Event::Receipt(r) => {
            for update in inbound::receipt_updates(r, ctx.tenant_id, ctx.session_id) {
                ctx.updates.report(update).await;
            }
            return Flow::Continue;
        }
        // Messages the durability hook did not see (newsletters, recovered placeholders).
        Event::Messages(batch) if !batch.hook_committed => {
            let commit = inbound::Commit { ctx: ctx.clone() };
            if let Err(e) = commit.store(client, &batch.messages).await {
                tracing::warn!(session = %ctx.session_id, error = %e, "received messages not stored");
            }
            return Flow::Continue;
        }
        // Connected without a known number (none stored, no pairing seen): ask the client.
        Event::Connected(_) if shared.with_link(|l| l.phone.is_none()) => {
            let phone = client
                .pn()
                .and_then(|pn| super::events::phone_of_user(&pn.user));
            shared.with_link(|l| l.phone = phone);
        }
        _ => {}
    }
    let now = chrono::Utc::now();
    let Some(ev) = shared.with_link(|l| translate(event, l, now)) else {
        return Flow::Continue;
    };
    let end = match &ev {
        ProviderEvent::Connected { .. } => {
            shared.online.store(true, Ordering::SeqCst);
            None
        }
        ProviderEvent::LoggedOut { .. } => Some(true),
        ProviderEvent::Disconnected { .. } | ProviderEvent::Failed { .. } => Some(false),
        _ => None,
    };
    if end.is_some() {
        shared.online.store(false, Ordering::SeqCst);
    }
    let go_on = ctx.events.report(ev).await;
    match end {
        Some(wipe) => Flow::Stop { wipe },
        None if go_on => Flow::Continue,
        None => Flow::Stop { wipe: false },
    }
}

/// Runs the client until the session stops: connects, reports, retries with backoff. Sends
/// `true` on `done` once the client has stopped and (after a logout) the keys are wiped.
pub(super) async fn supervise(
    bot: Bot,
    mut events: mpsc::UnboundedReceiver<Arc<Event>>,
    shared: Arc<Shared>,
    ctx: SessionContext,
    done: watch::Sender<bool>,
) {
    let client = bot.client();
    let mut bot = Some(bot);
    let mut wipe = false;
    'session: loop {
        let mut run = {
            let c = client.clone();
            match bot.take() {
                Some(b) => tokio::spawn(async move { b.run().await }),
                None => tokio::spawn(async move { c.run().await }),
            }
        };
        let mut ended = false;
        loop {
            tokio::select! {
                _ = &mut run => break,
                Some(ev) = events.recv(), if !ended => {
                    if let Flow::Stop { wipe: w } = apply(&ev, &client, &shared, &ctx).await {
                        ended = true;
                        wipe |= w;
                        stop_client(&client).await;
                    }
                }
                () = ctx.cancel.cancelled(), if !ended => {
                    ended = true;
                    stop_client(&client).await;
                }
            }
        }
        shared.online.store(false, Ordering::SeqCst);
        // Events the client produced on its way out (the drop that ended the run).
        while let Ok(ev) = events.try_recv() {
            if ended {
                break;
            }
            if let Flow::Stop { wipe: w } = apply(&ev, &client, &shared, &ctx).await {
                ended = true;
                wipe |= w;
            }
        }
        if ended || ctx.cancel.is_cancelled() || shared.stopping.load(Ordering::SeqCst) {
            break 'session;
        }
        let retry = shared.with_link(|l| {
            if std::mem::take(&mut l.just_paired) {
                None
            } else {
                Some(l.next_retry(CLOSED))
            }
        });
        let Some(retry) = retry else {
            continue;
        };
        let delay = match &retry {
            ProviderEvent::Reconnecting { retry_in, .. } => *retry_in,
            _ => crate::backoff::RECONNECT_BASE,
        };
        if !ctx.events.report(retry).await {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = ctx.cancel.cancelled() => break,
        }
    }
    if wipe && let Err(e) = ctx.store.clear(None).await {
        tracing::warn!(session = %ctx.session_id, error = %e, "could not wipe the device keys after a logout");
    }
    let _ = done.send(true);
}

/// Asks the client to stop (flushing what it holds) without waiting for long.
async fn stop_client(client: &Arc<Client>) {
    if tokio::time::timeout(std::time::Duration::from_secs(10), client.disconnect())
        .await
        .is_err()
    {
        tracing::warn!("the WhatsApp Web client took over 10 s to disconnect");
    }
}

/// Waits until the supervisor has finished (bounded: a stuck client must not hold a caller).
pub(super) async fn wait_done(done: &mut watch::Receiver<bool>) {
    let wait = done.wait_for(|d| *d);
    if tokio::time::timeout(std::time::Duration::from_secs(15), wait)
        .await
        .is_err()
    {
        tracing::warn!("the WhatsApp Web connection took over 15 s to stop");
    }
}

/// Maps a refusal from the client to our error.
pub(super) fn unavailable(what: &str, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Unavailable(format!("{what}: {e}"))
}
