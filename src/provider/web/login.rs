//! `wagate web-login`: a live check of the `web` provider with a real phone. It links a
//! throw-away device (QR code in the terminal, or a pair code), sends a message to the linked
//! number itself, prints its receipts, then unlinks the device again. Nothing is stored: the
//! keys live in memory for the run. It drives the same connection code as the gateway.

use std::{sync::Arc, time::Duration};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{WebConfig, WebProvider};
use crate::{
    domain::{MessageKind, MessageStatus, ids::TenantId},
    media::FsMediaStore,
    phone::PhoneNumber,
    provider::{
        Connection, EventSink, MessageUpdate, OutboundMessage, Provider, ProviderEvent, Recipient,
        Reported, SessionContext, UpdateSink, store::MemoryDeviceStore,
    },
};

/// What the check does.
#[derive(Clone, Debug)]
pub struct LoginCheck {
    /// Device name shown on the phone.
    pub device_name: String,
    /// Link with a pair code for this number instead of the QR code.
    pub pair_phone: Option<PhoneNumber>,
    /// Longest wait for the phone to link.
    pub link_within: Duration,
    /// Longest wait for receipts after the send.
    pub receipts_within: Duration,
}

/// Runs the check, printing each step to stdout; an error says which step failed.
pub async fn run(web: WebConfig, check: LoginCheck) -> anyhow::Result<()> {
    // Media of messages that arrive during the check, removed at the end.
    let media_dir = std::env::temp_dir().join(format!("wagate-web-login-{}", Uuid::new_v4()));
    let (events, event_rx) = EventSink::channel(16);
    let (updates, update_rx) = UpdateSink::channel(64);
    let cancel = CancellationToken::new();
    let ctx = SessionContext {
        tenant_id: TenantId::new(),
        session_id: Uuid::now_v7(),
        settings: serde_json::Value::Null,
        store: Arc::new(MemoryDeviceStore::new()),
        media: Arc::new(FsMediaStore::new(&media_dir)),
        events,
        updates,
        cancel: cancel.clone(),
    };
    let result = check_with(ctx, web, check, event_rx, update_rx).await;
    cancel.cancel();
    let _ = tokio::fs::remove_dir_all(&media_dir).await;
    result
}

async fn check_with(
    ctx: SessionContext,
    web: WebConfig,
    check: LoginCheck,
    mut event_rx: mpsc::Receiver<Reported<ProviderEvent>>,
    mut update_rx: mpsc::Receiver<Reported<MessageUpdate>>,
) -> anyhow::Result<()> {
    let provider = WebProvider::new(WebConfig {
        device_name: check.device_name.clone(),
        ..web
    });
    println!("connecting to {} …", provider.cfg.ws_url);
    let conn = provider
        .start(ctx.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let phone = tokio::time::timeout(
        check.link_within,
        link(conn.as_ref(), &mut event_rx, check.pair_phone.as_ref()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("the phone did not link within {:?}", check.link_within))??;
    println!("linked to {}", phone.e164());

    let message_id = Uuid::now_v7();
    let sent = conn
        .send(OutboundMessage {
            tenant_id: ctx.tenant_id,
            session_id: ctx.session_id,
            message_id,
            to: Recipient::Phone(phone.clone()),
            kind: MessageKind::Text,
            body: Some(format!(
                "wagate web-login check, {}",
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
            media: None,
            location: None,
            quoted: None,
        })
        .await
        .map_err(|e| anyhow::anyhow!("the send failed: {e}"))?;
    println!("sent, WhatsApp id {}", sent.provider_message_id);
    let until = tokio::time::Instant::now() + check.receipts_within;
    while let Ok(Some(Reported { item, ack })) =
        tokio::time::timeout_at(until, update_rx.recv()).await
    {
        let _ = ack.send(true);
        if let MessageUpdate::Status {
            provider_message_id,
            status,
            at,
            ..
        } = item
            && provider_message_id == sent.provider_message_id
        {
            println!("receipt: {} at {at}", status.as_str());
            if status == MessageStatus::Read {
                break;
            }
        }
    }
    println!("unlinking the device …");
    conn.logout().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("done");
    Ok(())
}

/// Answers the connection's events until it is linked; prints QR codes and pair codes.
async fn link(
    conn: &dyn Connection,
    events: &mut mpsc::Receiver<Reported<ProviderEvent>>,
    pair_phone: Option<&PhoneNumber>,
) -> anyhow::Result<PhoneNumber> {
    let mut asked = false;
    loop {
        let Some(Reported { item, ack }) = events.recv().await else {
            anyhow::bail!("the connection stopped");
        };
        let _ = ack.send(true);
        match item {
            ProviderEvent::Qr { code, expires_at } => {
                if let Some(phone) = pair_phone.filter(|_| !asked) {
                    asked = true;
                    let code = conn
                        .request_pair_code(phone)
                        .await
                        .map_err(|e| anyhow::anyhow!("no pair code: {e}"))?;
                    println!(
                        "type this code on {}: WhatsApp > Linked devices > Link with phone number\n\n    {code}\n",
                        phone.e164()
                    );
                } else if pair_phone.is_none() {
                    let art = crate::qr::terminal(&code).unwrap_or_default();
                    println!(
                        "scan with WhatsApp > Linked devices > Link a device (valid until {expires_at}):\n{art}\nqr: {code}"
                    );
                }
            }
            ProviderEvent::PairCode { .. } => {}
            ProviderEvent::Connected { phone } => return Ok(phone),
            ProviderEvent::Reconnecting {
                attempt,
                retry_in,
                reason,
            } => println!("retry {attempt} in {retry_in:?}: {reason}"),
            ProviderEvent::Disconnected { reason } | ProviderEvent::LoggedOut { reason } => {
                anyhow::bail!("{reason}")
            }
            ProviderEvent::Failed { error } => anyhow::bail!("{error}"),
        }
    }
}
