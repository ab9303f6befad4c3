//! Commands for a session's live connection, wherever it runs: run here when this instance
//! owns it, otherwise sent over the command bus to the owner, which answers.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::provider_error;
use crate::{
    error::{AppError, AppResult},
    events::commands::Incoming,
    provider::{Control, ControlReply, ProviderError},
    state::AppState,
};

/// How long a caller waits for the owning instance to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// What to do with a session's connection.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Action {
    /// A command for the connection (sandbox simulations).
    Control {
        /// The command.
        command: Control,
    },
    /// Ask the connection for a pairing code for `phone` (E.164).
    PairCode {
        /// The phone that will type the code.
        phone: String,
    },
    /// Ask whether `phone` (E.164) is on WhatsApp.
    CheckNumber {
        /// The number.
        phone: String,
    },
    /// Unlink the device and close the connection.
    Logout,
    /// Close the connection, keeping the pairing.
    Stop,
}

/// A command for the connection of session `session` serving attempt `attempt`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionCommand {
    /// The session.
    pub session: Uuid,
    /// The connection attempt meant (`None`: whichever runs).
    pub attempt: Option<Uuid>,
    /// What to do.
    pub action: Action,
}

type Answer = Result<ControlReply, ProviderError>;

/// Runs a command on this instance's connection of the session.
pub async fn run_here(state: &AppState, cmd: SessionCommand) -> Answer {
    let conn = state.runtime.connection(cmd.session);
    match cmd.action {
        Action::Control { command } => match conn {
            Some(conn) => conn.control(command).await,
            None => Err(ProviderError::Refused(
                "Session has no live connection".into(),
            )),
        },
        Action::PairCode { phone } => {
            let phone = crate::phone::PhoneNumber::parse(&phone)
                .map_err(|e| ProviderError::Unsupported(format!("phoneNumber: {e}")))?;
            match conn {
                Some(conn) => conn
                    .request_pair_code(&phone)
                    .await
                    .map(|code| ControlReply::PairCode { code }),
                None => Err(ProviderError::Refused(
                    "Session has no live connection".into(),
                )),
            }
        }
        Action::CheckNumber { phone } => {
            let phone = crate::phone::PhoneNumber::parse(&phone)
                .map_err(|e| ProviderError::Unsupported(format!("phone: {e}")))?;
            match conn {
                Some(conn) => conn
                    .check_number(&phone)
                    .await
                    .map(|check| ControlReply::Number { check }),
                None => Err(ProviderError::Refused(
                    "Session has no live connection".into(),
                )),
            }
        }
        Action::Logout => {
            let result = match conn {
                Some(conn) => conn.logout().await,
                None => Ok(()),
            };
            stop(state, &cmd);
            result.map(|()| ControlReply::Done)
        }
        Action::Stop => {
            stop(state, &cmd);
            Ok(ControlReply::Done)
        }
    }
}

fn stop(state: &AppState, cmd: &SessionCommand) {
    match cmd.attempt {
        Some(_) => state.runtime.stop_attempt(cmd.session, cmd.attempt),
        None => state.runtime.stop(cmd.session),
    }
}

/// Runs a command on the instance `owner` (this one or another) and returns its answer.
pub async fn send(state: &AppState, owner: &str, cmd: SessionCommand) -> AppResult<ControlReply> {
    if owner == state.cfg.runtime.instance_id {
        return run_here(state, cmd).await.map_err(provider_error);
    }
    let body = serde_json::to_value(&cmd).map_err(AppError::internal)?;
    let answer = state
        .commands
        .request(owner, body, ANSWER_WITHIN)
        .await
        .map_err(|e| AppError::WhatsAppUnavailable(e.to_string()))?;
    let answer: Answer = serde_json::from_value(answer).map_err(AppError::internal)?;
    answer.map_err(provider_error)
}

/// Answers the commands other instances send to this one, until `stop`.
pub async fn run(
    state: AppState,
    rx: &mut mpsc::Receiver<Incoming>,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        let incoming = tokio::select! {
            () = stop.cancelled() => return,
            m = rx.recv() => match m { Some(m) => m, None => return },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let answer: Answer = match serde_json::from_value::<SessionCommand>(incoming.body) {
                Ok(cmd) => run_here(&state, cmd).await,
                Err(e) => Err(ProviderError::Unsupported(format!("Unknown command: {e}"))),
            };
            let body = serde_json::to_value(&answer).unwrap_or_default();
            let _ = incoming.reply.send(body);
        });
    }
}
