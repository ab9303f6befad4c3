//! Health and readiness.

use std::time::Duration;

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

use super::envelope::{self, Envelope};
use crate::state::AppState;

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthOutput {
    /// Always `ok`.
    pub status: &'static str,
}

/// Readiness of each dependency: `ok`, `down` or `disabled`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyOutput {
    /// `ok` when every dependency is reachable.
    pub status: &'static str,
    /// The database.
    pub database: &'static str,
    /// Redis (`disabled` when `REDIS_URL` is not set).
    pub redis: &'static str,
    /// This instance's id (`WAGATE_INSTANCE_ID`).
    pub instance: String,
    /// Background tasks (`updates`, `sessions`, `dispatcher`, `webhooks`): `ok`, or `down`
    /// while one that panicked waits to be started again.
    pub tasks: std::collections::BTreeMap<&'static str, &'static str>,
}

/// The process is up.
///
/// Answers `status: ok` whenever the process serves requests; no dependency is checked. No
/// credentials needed.
#[utoipa::path(get, path = "/healthz", operation_id = "getHealth", tag = "operations",
    responses((status = 200, description = "Up", body = Envelope<HealthOutput>)))]
pub async fn healthz() -> Response {
    envelope::ok(HealthOutput { status: "ok" })
}

async fn redis_ok(client: &redis::Client) -> bool {
    let check = async {
        let mut con = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut con).await
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), check).await,
        Ok(Ok(_))
    )
}

/// The database (and Redis, when configured) answer and no background task is down. 503
/// otherwise.
///
/// Each check has a 2-second timeout; Redis is `disabled` without `REDIS_URL` and counts as down
/// while the event bus is not subscribed to it; a background task that panicked is `down` until
/// it runs again. The 503 answer has `success: false`, `status: unavailable` and marks what
/// failed `down`. No credentials needed.
#[utoipa::path(get, path = "/readyz", operation_id = "getReadiness", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Envelope<ReadyOutput>),
        (status = 503, description = "A dependency is down", body = Envelope<ReadyOutput>),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let db_ok = matches!(
        tokio::time::timeout(Duration::from_secs(2), state.db.ping()).await,
        Ok(Ok(()))
    );
    let redis = match (&state.redis, state.bus.redis_status()) {
        (None, _) => "disabled",
        (Some(c), Some(s)) if s.subscribed && redis_ok(c).await => "ok",
        (Some(c), None) if redis_ok(c).await => "ok",
        _ => "down",
    };
    let tasks: std::collections::BTreeMap<_, _> = state
        .tasks
        .snapshot()
        .into_iter()
        .map(|(name, (s, _))| {
            let up = s != crate::tasks::TaskState::Restarting;
            (name, if up { "ok" } else { "down" })
        })
        .collect();
    let ready = db_ok && redis != "down" && tasks.values().all(|s| *s == "ok");
    let out = ReadyOutput {
        status: if ready { "ok" } else { "unavailable" },
        database: if db_ok { "ok" } else { "down" },
        redis,
        instance: state.cfg.runtime.instance_id.clone(),
        tasks,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Envelope {
            success: ready,
            data: out,
            message: None,
        }),
    )
        .into_response()
}
