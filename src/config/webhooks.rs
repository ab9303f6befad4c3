//! Webhook settings: the delivery worker, retry schedule and SSRF guard.

use std::time::Duration;

use super::{
    ConfigArgs, ConfigError, err, messaging::parse_bool, non_empty, parse_duration, parse_number,
};

/// Default retry schedule: the delay before each try (the first is immediate).
pub const DEFAULT_RETRY_SCHEDULE: &str = "0s,5s,5m,30m,2h,5h,10h,10h";

/// How webhooks are delivered.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Whether this instance runs a delivery worker.
    pub enabled: bool,
    /// Whether endpoints may point at loopback, private or link-local addresses.
    pub allow_private: bool,
    /// Delay before each try, counted from the previous one; its length is the number of tries.
    pub retry_schedule: Vec<Duration>,
    /// Longest a receiver may take to answer.
    pub timeout: Duration,
    /// An endpoint failing every try for this long is disabled.
    pub disable_after: Duration,
    /// Deliveries held at once on this instance (sending, or waiting for an endpoint slot).
    pub concurrency: usize,
    /// Deliveries in flight at once to one endpoint.
    pub endpoint_concurrency: usize,
    /// Deliveries claimed per database round trip.
    pub batch: u64,
    /// How often the worker looks for due deliveries when nothing woke it.
    pub poll_interval: Duration,
    /// How long a claim holds a delivery before another worker may take it over.
    pub lease: Duration,
}

fn parse_schedule(raw: Option<String>) -> Result<Vec<Duration>, ConfigError> {
    const KEY: &str = "WAGATE_WEBHOOK_RETRY_SCHEDULE";
    let raw = non_empty(raw).unwrap_or_else(|| DEFAULT_RETRY_SCHEDULE.to_owned());
    let mut out = Vec::new();
    for part in raw.split(',').map(str::trim) {
        let d = humantime::parse_duration(part).map_err(|e| {
            err(
                KEY,
                format!("'{part}' is not a duration like 0s, 5s or 2h ({e})"),
            )
        })?;
        if d > Duration::from_secs(7 * 86_400) {
            return Err(err(KEY, format!("'{part}' is longer than 7days")));
        }
        out.push(d);
    }
    if out.first() != Some(&Duration::ZERO) {
        return Err(err(KEY, "must start with 0s (the first try is immediate)"));
    }
    if out.len() > 50 {
        return Err(err(KEY, "has more than 50 tries"));
    }
    Ok(out)
}

/// Parses the webhook settings.
pub(super) fn parse(a: &ConfigArgs) -> Result<WebhookConfig, ConfigError> {
    let ms = Duration::from_millis(1);
    let c = WebhookConfig {
        enabled: parse_bool("WAGATE_WEBHOOK_ENABLED", a.webhook_enabled.clone(), true)?,
        allow_private: parse_bool(
            "WAGATE_WEBHOOK_ALLOW_PRIVATE",
            a.webhook_allow_private.clone(),
            false,
        )?,
        retry_schedule: parse_schedule(a.webhook_retry_schedule.clone())?,
        timeout: parse_duration(
            "WAGATE_WEBHOOK_TIMEOUT",
            a.webhook_timeout.clone(),
            "15s",
            ms,
        )?,
        disable_after: parse_duration(
            "WAGATE_WEBHOOK_DISABLE_AFTER",
            a.webhook_disable_after.clone(),
            "5days",
            ms,
        )?,
        concurrency: parse_number(
            "WAGATE_WEBHOOK_CONCURRENCY",
            a.webhook_concurrency.clone(),
            256,
        )?,
        endpoint_concurrency: parse_number(
            "WAGATE_WEBHOOK_ENDPOINT_CONCURRENCY",
            a.webhook_endpoint_concurrency.clone(),
            16,
        )?,
        batch: parse_number("WAGATE_WEBHOOK_BATCH", a.webhook_batch.clone(), 200)?,
        poll_interval: parse_duration(
            "WAGATE_WEBHOOK_POLL_INTERVAL",
            a.webhook_poll_interval.clone(),
            "1s",
            Duration::from_millis(10),
        )?,
        lease: parse_duration("WAGATE_WEBHOOK_LEASE", a.webhook_lease.clone(), "60s", ms)?,
    };
    for (key, v) in [
        ("WAGATE_WEBHOOK_CONCURRENCY", c.concurrency),
        (
            "WAGATE_WEBHOOK_ENDPOINT_CONCURRENCY",
            c.endpoint_concurrency,
        ),
        ("WAGATE_WEBHOOK_BATCH", c.batch as usize),
    ] {
        if v == 0 || v > 10_000 {
            return Err(err(key, "must be between 1 and 10000"));
        }
    }
    if c.timeout > Duration::from_secs(300) {
        return Err(err("WAGATE_WEBHOOK_TIMEOUT", "must be at most 5m"));
    }
    // A claimed delivery may wait for one round of the endpoint's slots before it is sent,
    // and its result a moment before it is written.
    if c.lease < c.timeout * 2 + Duration::from_secs(10) {
        return Err(err(
            "WAGATE_WEBHOOK_LEASE",
            "must be at least twice WAGATE_WEBHOOK_TIMEOUT plus 10s",
        ));
    }
    Ok(c)
}
