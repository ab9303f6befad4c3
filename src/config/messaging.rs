//! Message settings: media limits, the outbox dispatcher and idempotency.

use std::time::Duration;

use super::{ConfigArgs, ConfigError, err, non_empty, parse_duration, parse_number};

const MIB: u64 = 1024 * 1024;

/// Largest accepted file per message kind, in bytes.
#[derive(Clone, Debug)]
pub struct MediaLimits {
    /// Images (default 5 MiB).
    pub image: u64,
    /// Audio (default 16 MiB).
    pub audio: u64,
    /// Video (default 16 MiB).
    pub video: u64,
    /// Documents (default 100 MiB).
    pub document: u64,
}

/// How the outbox dispatcher works.
#[derive(Clone, Debug)]
pub struct DispatchConfig {
    /// Whether this instance runs a dispatcher (API-only instances may turn it off).
    pub enabled: bool,
    /// Chats whose messages are handed to providers at once.
    pub concurrency: usize,
    /// Messages claimed per database round trip.
    pub batch: u64,
    /// How often the dispatcher looks for due messages when nothing woke it.
    pub poll_interval: Duration,
    /// How long a claim holds a message; after that another dispatcher may take it over.
    pub lease: Duration,
    /// Longest a provider send may take (must be shorter than the lease).
    pub send_timeout: Duration,
    /// Attempts before a transiently failing message is marked `failed`.
    pub max_attempts: i32,
    /// First retry delay; doubled per attempt.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
}

/// Message settings.
#[derive(Clone, Debug)]
pub struct MessagingConfig {
    /// Media size limits.
    pub media: MediaLimits,
    /// The dispatcher.
    pub dispatch: DispatchConfig,
    /// How long an `Idempotency-Key` is remembered.
    pub idempotency_ttl: Duration,
}

pub(super) fn parse_bool(
    key: &'static str,
    v: Option<String>,
    default: bool,
) -> Result<bool, ConfigError> {
    match non_empty(v).map(|s| s.to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(err(key, format!("'{other}' is not true or false"))),
    }
}

fn positive<T: PartialOrd + Default>(key: &'static str, v: T) -> Result<T, ConfigError> {
    if v > T::default() {
        Ok(v)
    } else {
        Err(err(key, "must be at least 1"))
    }
}

/// Parses the message settings.
pub(super) fn parse(a: &ConfigArgs) -> Result<MessagingConfig, ConfigError> {
    let ms = Duration::from_millis(1);
    let media = MediaLimits {
        image: positive(
            "WAGATE_MEDIA_MAX_IMAGE",
            parse_number("WAGATE_MEDIA_MAX_IMAGE", a.media_max_image.clone(), 5 * MIB)?,
        )?,
        audio: positive(
            "WAGATE_MEDIA_MAX_AUDIO",
            parse_number(
                "WAGATE_MEDIA_MAX_AUDIO",
                a.media_max_audio.clone(),
                16 * MIB,
            )?,
        )?,
        video: positive(
            "WAGATE_MEDIA_MAX_VIDEO",
            parse_number(
                "WAGATE_MEDIA_MAX_VIDEO",
                a.media_max_video.clone(),
                16 * MIB,
            )?,
        )?,
        document: positive(
            "WAGATE_MEDIA_MAX_DOCUMENT",
            parse_number(
                "WAGATE_MEDIA_MAX_DOCUMENT",
                a.media_max_document.clone(),
                100 * MIB,
            )?,
        )?,
    };
    let dispatch = DispatchConfig {
        enabled: parse_bool("WAGATE_DISPATCH_ENABLED", a.dispatch_enabled.clone(), true)?,
        concurrency: positive(
            "WAGATE_DISPATCH_CONCURRENCY",
            parse_number(
                "WAGATE_DISPATCH_CONCURRENCY",
                a.dispatch_concurrency.clone(),
                64,
            )?,
        )?,
        batch: positive(
            "WAGATE_DISPATCH_BATCH",
            parse_number("WAGATE_DISPATCH_BATCH", a.dispatch_batch.clone(), 200)?,
        )?,
        poll_interval: parse_duration(
            "WAGATE_DISPATCH_POLL_INTERVAL",
            a.dispatch_poll_interval.clone(),
            "1s",
            Duration::from_millis(10),
        )?,
        lease: parse_duration("WAGATE_DISPATCH_LEASE", a.dispatch_lease.clone(), "60s", ms)?,
        send_timeout: parse_duration("WAGATE_SEND_TIMEOUT", a.send_timeout.clone(), "30s", ms)?,
        max_attempts: positive(
            "WAGATE_DISPATCH_MAX_ATTEMPTS",
            parse_number(
                "WAGATE_DISPATCH_MAX_ATTEMPTS",
                a.dispatch_max_attempts.clone(),
                6,
            )?,
        )?,
        backoff_base: parse_duration(
            "WAGATE_DISPATCH_BACKOFF_BASE",
            a.dispatch_backoff_base.clone(),
            "2s",
            ms,
        )?,
        backoff_max: parse_duration(
            "WAGATE_DISPATCH_BACKOFF_MAX",
            a.dispatch_backoff_max.clone(),
            "5m",
            ms,
        )?,
    };
    let day = Duration::from_secs(86_400);
    for (key, d) in [
        ("WAGATE_DISPATCH_LEASE", dispatch.lease),
        ("WAGATE_DISPATCH_POLL_INTERVAL", dispatch.poll_interval),
        ("WAGATE_DISPATCH_BACKOFF_BASE", dispatch.backoff_base),
        ("WAGATE_DISPATCH_BACKOFF_MAX", dispatch.backoff_max),
    ] {
        if d > day {
            return Err(err(key, "must be at most 24h"));
        }
    }
    if dispatch.concurrency > 10_000 {
        return Err(err("WAGATE_DISPATCH_CONCURRENCY", "must be at most 10000"));
    }
    if dispatch.batch > 10_000 {
        return Err(err("WAGATE_DISPATCH_BATCH", "must be at most 10000"));
    }
    if dispatch.max_attempts > 1000 {
        return Err(err("WAGATE_DISPATCH_MAX_ATTEMPTS", "must be at most 1000"));
    }
    if dispatch.send_timeout >= dispatch.lease {
        return Err(err(
            "WAGATE_SEND_TIMEOUT",
            "must be shorter than WAGATE_DISPATCH_LEASE",
        ));
    }
    if dispatch.backoff_max < dispatch.backoff_base {
        return Err(err(
            "WAGATE_DISPATCH_BACKOFF_MAX",
            "must not be shorter than WAGATE_DISPATCH_BACKOFF_BASE",
        ));
    }
    let idempotency_ttl = parse_duration(
        "WAGATE_IDEMPOTENCY_TTL",
        a.idempotency_ttl.clone(),
        "24h",
        Duration::from_secs(1),
    )?;
    if idempotency_ttl > day * 30 {
        return Err(err("WAGATE_IDEMPOTENCY_TTL", "must be at most 30days"));
    }
    Ok(MessagingConfig {
        media,
        dispatch,
        idempotency_ttl,
    })
}

/// Parses the sandbox's message settings into `sandbox`.
pub(super) fn parse_sandbox(
    a: &ConfigArgs,
    sandbox: &mut crate::provider::sandbox::SandboxConfig,
) -> Result<(), ConfigError> {
    sandbox.receipts = parse_bool("WAGATE_SANDBOX_RECEIPTS", a.sandbox_receipts.clone(), true)?;
    sandbox.delivered_after = parse_duration(
        "WAGATE_SANDBOX_DELIVERED_AFTER",
        a.sandbox_delivered_after.clone(),
        "500ms",
        Duration::ZERO,
    )?;
    sandbox.read_after = parse_duration(
        "WAGATE_SANDBOX_READ_AFTER",
        a.sandbox_read_after.clone(),
        "2s",
        Duration::ZERO,
    )?;
    let mut numbers = Vec::new();
    for raw in non_empty(a.sandbox_not_on_whatsapp.clone())
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let phone = crate::phone::PhoneNumber::parse(raw)
            .map_err(|m| err("WAGATE_SANDBOX_NOT_ON_WHATSAPP", format!("'{raw}': {m}")))?;
        numbers.push(phone.digits().to_owned());
    }
    sandbox.not_on_whatsapp = numbers;
    Ok(())
}
