//! The session runtime: who this instance is, how long its claim on a live session holds, how
//! often it renews it, and how long shutdown waits for work in flight.

use std::time::Duration;

use rand::Rng;

use super::{ConfigArgs, ConfigError, err, non_empty, parse_duration};

/// Default lease on an owned session: a killed owner's sessions are taken over once it lapses.
pub const DEFAULT_SESSION_LEASE: &str = "6s";
/// Default heartbeat (lease renewal and takeover scan) interval.
pub const DEFAULT_SESSION_HEARTBEAT: &str = "2s";
/// Default time shutdown waits for in-flight sends and deliveries.
pub const DEFAULT_SHUTDOWN_GRACE: &str = "20s";

/// Session ownership and shutdown settings.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// This instance's id, recorded as the owner of the sessions it holds.
    pub instance_id: String,
    /// How long a claim on a session holds without renewal.
    pub session_lease: Duration,
    /// How often claims are renewed and lapsed ones looked for.
    pub session_heartbeat: Duration,
    /// How long shutdown waits for sends and deliveries in flight.
    pub shutdown_grace: Duration,
}

/// `<hostname>-<6 random lowercase letters and digits>`.
pub fn default_instance_id() -> String {
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "wagate".to_owned());
    let suffix: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(6)
        .map(|c| char::from(c).to_ascii_lowercase())
        .collect();
    format!("{host}-{suffix}")
}

/// Reads the runtime keys.
pub(super) fn parse(a: &ConfigArgs) -> Result<RuntimeConfig, ConfigError> {
    let instance_id = match non_empty(a.instance_id.clone()) {
        Some(id) => {
            let ok = id.len() <= 100
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
            if !ok {
                return Err(err(
                    "WAGATE_INSTANCE_ID",
                    "use at most 100 letters, digits, '-', '_', '.' or ':'",
                ));
            }
            id
        }
        None => default_instance_id(),
    };
    let session_lease = parse_duration(
        "WAGATE_SESSION_LEASE",
        a.session_lease.clone(),
        DEFAULT_SESSION_LEASE,
        Duration::from_millis(500),
    )?;
    let session_heartbeat = parse_duration(
        "WAGATE_SESSION_HEARTBEAT",
        a.session_heartbeat.clone(),
        DEFAULT_SESSION_HEARTBEAT,
        Duration::from_millis(100),
    )?;
    if session_heartbeat * 2 > session_lease {
        return Err(err(
            "WAGATE_SESSION_HEARTBEAT",
            "must be at most half of WAGATE_SESSION_LEASE, so one late heartbeat does not lose a session",
        ));
    }
    let shutdown_grace = parse_duration(
        "WAGATE_SHUTDOWN_GRACE",
        a.shutdown_grace.clone(),
        DEFAULT_SHUTDOWN_GRACE,
        Duration::ZERO,
    )?;
    Ok(RuntimeConfig {
        instance_id,
        session_lease,
        session_heartbeat,
        shutdown_grace,
    })
}
