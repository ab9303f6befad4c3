//! Receipts and inbound messages reported by providers (and the sandbox's simulated contacts).

use sea_orm::{ConnectionTrait, TransactionTrait};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{Check, Direction, MAX_TEXT, MessageOutput, MessageStatus, output, publish};
use crate::{
    auth::{Capability, Principal},
    error::{AppError, AppResult},
    provider::{Control, ControlReply, InboundMessage, MessageUpdate, ProviderKind, Reported},
    repo,
    service::sessions::SessionStatus,
    state::AppState,
};

/// Applies one provider report. A receipt moves the message forward only (a late `delivered`
/// after `read` changes nothing); an inbound message is stored once per provider id.
pub async fn apply_update(state: &AppState, update: MessageUpdate) -> AppResult<()> {
    match update {
        MessageUpdate::Status { .. } => {
            if let Some(m) = apply_status(&state.db, state, update).await? {
                publish(state, &m, false).await;
            }
            Ok(())
        }
        MessageUpdate::Inbound(msg) => receive(state, *msg).await.map(|_| ()),
    }
}

/// Applies a receipt on `db` (a pool or a transaction); the changed row, if it changed.
async fn apply_status(
    db: &impl ConnectionTrait,
    state: &AppState,
    update: MessageUpdate,
) -> AppResult<Option<entity::message::Model>> {
    let MessageUpdate::Status {
        tenant_id,
        session_id,
        message_id,
        provider_message_id,
        status,
        at,
        error,
    } = update
    else {
        return Ok(None);
    };
    let id = match message_id {
        Some(id) => Some(id),
        None => {
            repo::messages::find_by_provider_id(
                db,
                tenant_id,
                session_id,
                Direction::Outbound.as_str(),
                &provider_message_id,
            )
            .await?
        }
    };
    let Some(id) = id else {
        tracing::debug!(%provider_message_id, "receipt for an unknown message ignored");
        return Ok(None);
    };
    let from: &[&'static str] = match status {
        // A provider may report a late failure of a message it had accepted.
        MessageStatus::Failed => &["queued", "sent"],
        other => other.advances_from(),
    };
    if from.is_empty() {
        return Ok(None);
    }
    Ok(repo::messages::advance(
        db,
        tenant_id,
        id,
        status.as_str(),
        from,
        error.as_deref(),
        Some(&provider_message_id),
        at,
        state.clock.now(),
    )
    .await?)
}

/// Applies a run of receipts in one transaction (one commit for the lot), then publishes
/// the changes. If the transaction fails, they are applied one by one. Says, per receipt,
/// whether it is stored.
async fn apply_receipts(state: &AppState, receipts: Vec<MessageUpdate>) -> Vec<bool> {
    let result = async {
        let _turn = state.bookkeeping.lock().await;
        let txn = repo::begin_bookkeeping(&state.db).await?;
        let mut changed = Vec::new();
        for u in receipts.iter().cloned() {
            if let Some(m) = apply_status(&txn, state, u).await? {
                changed.push(m);
            }
        }
        let committed = super::enqueue_events(&txn, state, &changed, false).await?;
        txn.commit().await?;
        AppResult::Ok(committed)
    }
    .await;
    match result {
        Ok((events, enqueued)) => {
            super::publish_committed(state, events, enqueued).await;
            vec![true; receipts.len()]
        }
        Err(e) => {
            tracing::warn!(error = %e, "applying receipts together failed; applying them one by one");
            let mut stored = Vec::with_capacity(receipts.len());
            for u in receipts {
                match apply_update(state, u).await {
                    Ok(()) => stored.push(true),
                    Err(e) => {
                        tracing::error!(error = %e, "applying a receipt failed");
                        stored.push(false);
                    }
                }
            }
            stored
        }
    }
}

/// Stores an inbound message and publishes `message.received`; a repeated delivery of the
/// same provider id returns the stored message without a second event.
pub async fn receive(state: &AppState, msg: InboundMessage) -> AppResult<MessageOutput> {
    let now = state.clock.now();
    let quoted = super::quotes::resolve(
        state,
        msg.tenant_id,
        msg.session_id,
        msg.quoted_provider_id.as_deref(),
    )
    .await?;
    let row = entity::message::Model {
        id: Uuid::now_v7(),
        tenant_id: msg.tenant_id.uuid(),
        session_id: msg.session_id,
        direction: Direction::Inbound.as_str().into(),
        kind: msg.kind.as_str().into(),
        phone: msg.from.digits().to_owned(),
        remote_jid: msg.group.clone().unwrap_or_else(|| msg.from.jid()),
        body: msg.body,
        media_key: msg.media.as_ref().map(|f| f.key.clone()),
        media_mime: msg.media.as_ref().map(|f| f.mime.clone()),
        media_size: msg.media.as_ref().map(|f| f.size),
        media_filename: msg.media.as_ref().and_then(|f| f.file_name.clone()),
        location: msg
            .location
            .as_ref()
            .and_then(|l| serde_json::to_string(l).ok()),
        status: MessageStatus::Received.as_str().into(),
        error: msg.error,
        provider_message_id: Some(msg.provider_message_id.clone()),
        attempts: 0,
        next_attempt_at: None,
        lease_until: None,
        lease_owner: None,
        idempotency_key: None,
        request_hash: None,
        created_at: msg.at,
        updated_at: now,
        sent_at: None,
        delivered_at: None,
        read_at: None,
        played_at: None,
        failed_at: None,
        quoted_message_id: quoted,
    };
    // The message, the contact's conversation stats and the webhook deliveries commit
    // together.
    let stored = async {
        let txn = state.db.begin().await?;
        let m = repo::messages::insert(&txn, row).await?;
        let phone = format!("+{}", m.phone);
        repo::contacts::touch_conversation(&txn, msg.tenant_id, &phone, m.created_at).await?;
        let committed = super::enqueue_events(&txn, state, std::slice::from_ref(&m), true).await?;
        txn.commit().await?;
        Ok::<_, sea_orm::DbErr>((m, committed))
    };
    match stored.await {
        Ok((m, (events, enqueued))) => {
            super::publish_committed(state, events, enqueued).await;
            Ok(output(&m))
        }
        Err(e) if repo::is_unique_violation(&e) => {
            let existing = repo::messages::find_by_provider_id(
                &state.db,
                msg.tenant_id,
                msg.session_id,
                Direction::Inbound.as_str(),
                &msg.provider_message_id,
            )
            .await?
            .ok_or_else(|| AppError::internal(e))?;
            let m = repo::messages::get(&state.db, msg.tenant_id, existing)
                .await?
                .ok_or_else(|| AppError::NotFound("Message not found".into()))?;
            Ok(output(&m))
        }
        Err(e) => Err(e.into()),
    }
}

/// Sandbox only: a simulated contact writes to a connected sandbox session. The message
/// reaches the session's sandbox connection, which reports it like a real provider; the call
/// answers once it is stored.
pub async fn sandbox_inbound(
    state: &AppState,
    p: &Principal,
    session_id: Uuid,
    input: super::SandboxInboundInput,
) -> AppResult<MessageOutput> {
    p.require(Capability::ManageSessions)?;
    let mut c = Check::default();
    let from = c.phone("from", &input.from);
    let text = c.text("text", &input.text, true, MAX_TEXT);
    c.finish()?;
    let (Some(from), Some(text)) = (from, text) else {
        return Err(AppError::field("text", "Invalid message"));
    };
    let s = repo::sessions::get(&state.db, p.tenant_id, session_id)
        .await?
        .ok_or_else(|| AppError::NotFound("Session not found".into()))?;
    if s.provider != ProviderKind::Sandbox.as_str() {
        return Err(AppError::NotFound(
            "Sandbox controls exist only for sandbox sessions".into(),
        ));
    }
    if s.status != SessionStatus::Connected.as_str() {
        return Err(AppError::Conflict(format!(
            "Session is not connected (status: {})",
            s.status
        )));
    }
    let command = Control::SandboxInbound {
        from: from.e164().to_owned(),
        text,
    };
    let reply = crate::service::sessions::control(state, &s, command).await?;
    let ControlReply::Received {
        provider_message_id,
    } = reply
    else {
        return Err(AppError::internal(anyhow::anyhow!(
            "the sandbox answered an inbound message with {reply:?}"
        )));
    };
    let id = repo::messages::find_by_provider_id(
        &state.db,
        p.tenant_id,
        session_id,
        Direction::Inbound.as_str(),
        &provider_message_id,
    )
    .await?
    .ok_or_else(|| AppError::internal(anyhow::anyhow!("a stored inbound message is missing")))?;
    let m = repo::messages::get(&state.db, p.tenant_id, id)
        .await?
        .ok_or_else(|| AppError::NotFound("Message not found".into()))?;
    Ok(output(&m))
}

/// Most receipts applied in one commit (kept small: a batch holds SQLite's single connection).
const UPDATE_BATCH: usize = 32;

/// Applies provider reports until the channel closes (the gateway stops). Receipts that
/// arrive together are applied together; inbound messages one by one, in order. Each report
/// is acknowledged once stored (or with false when it could not be). After `stop`, applies
/// what is already waiting and returns.
pub async fn run_updates(
    state: AppState,
    rx: &mut mpsc::Receiver<Reported<MessageUpdate>>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut buf = Vec::with_capacity(UPDATE_BATCH);
    loop {
        let got = tokio::select! {
            biased;
            n = rx.recv_many(&mut buf, UPDATE_BATCH) => n,
            () = stop.cancelled() => {
                while buf.len() < UPDATE_BATCH {
                    match rx.try_recv() {
                        Ok(r) => buf.push(r),
                        Err(_) => break,
                    }
                }
                if buf.is_empty() {
                    return;
                }
                buf.len()
            }
        };
        if got == 0 {
            return;
        }
        let mut receipts = Vec::new();
        for reported in buf.drain(..) {
            match reported.item {
                MessageUpdate::Status { .. } => receipts.push((reported.item, reported.ack)),
                MessageUpdate::Inbound(msg) => {
                    flush_receipts(&state, std::mem::take(&mut receipts)).await;
                    let stored = match receive(&state, *msg).await {
                        Ok(_) => true,
                        Err(e) => {
                            tracing::error!(error = %e, "storing an inbound message failed");
                            false
                        }
                    };
                    let _ = reported.ack.send(stored);
                }
            }
        }
        flush_receipts(&state, receipts).await;
    }
}

async fn flush_receipts(
    state: &AppState,
    receipts: Vec<(MessageUpdate, tokio::sync::oneshot::Sender<bool>)>,
) {
    if receipts.is_empty() {
        return;
    }
    let (updates, acks): (Vec<_>, Vec<_>) = receipts.into_iter().unzip();
    let stored = apply_receipts(state, updates).await;
    for (ack, ok) in acks.into_iter().zip(stored) {
        let _ = ack.send(ok);
    }
}
