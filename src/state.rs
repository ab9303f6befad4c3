//! Shared application state: the database, keys, clock and limiters, held by every adapter.

use std::{net::IpAddr, num::NonZeroU32, path::PathBuf, sync::Arc, time::Duration};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock as _};
use sea_orm::DatabaseConnection;

use crate::{
    auth::jwt::JwtKeys,
    clock::{Clock, SystemClock},
    config::Config,
    error::{AppError, AppResult},
    events::EventBus,
    provider::{Providers, UpdateSink},
    secrets::Cipher,
    service::{
        messages::{
            connected::ConnectedCache,
            media::{FsMediaStore, MediaStore},
            writer::MessageWriter,
        },
        sessions::registry::SessionRuntime,
        webhooks::{
            runtime::WebhookRuntime,
            transport::{HttpTransport, WebhookTransport},
        },
    },
};

/// Everything a request handler or resolver may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Validated configuration.
    pub cfg: Arc<Config>,
    /// JWT signing keys.
    pub jwt: JwtKeys,
    /// Encryption at rest (device stores, provider tokens), checked against the database's
    /// key at start-up. Sessions build their `service::device_store::DbDeviceStore` with it.
    pub cipher: Arc<Cipher>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Redis client, when configured.
    pub redis: Option<redis::Client>,
    /// Live events.
    pub bus: EventBus,
    /// WhatsApp providers by kind.
    pub providers: Providers,
    /// Provider tasks running in this process.
    pub runtime: SessionRuntime,
    /// Message media.
    pub media: Arc<dyn MediaStore>,
    /// Where uploads are staged while they arrive.
    pub media_staging: PathBuf,
    /// Wakes this instance's dispatcher when a message is queued.
    pub outbox: Arc<tokio::sync::Notify>,
    /// Where providers report receipts and inbound messages.
    pub updates: UpdateSink,
    /// Commands to the instance that runs a session's connection.
    pub commands: crate::events::commands::CommandBus,
    /// Shutdown signals, in the order they fire.
    pub stopping: Stopping,
    /// Group-commit writer for new messages.
    pub writer: MessageWriter,
    /// Sessions recently seen connected (spares the send path a read).
    pub connected: Arc<ConnectedCache>,
    /// Taken by this instance's batched bookkeeping transactions (send results, receipts) so
    /// they run one at a time: two batches updating the same messages in different orders
    /// deadlock on PostgreSQL, and each deadlock costs a second before it is detected.
    pub bookkeeping: Arc<tokio::sync::Mutex<()>>,
    /// Webhook delivery: the worker's wake-up and outbound HTTP.
    pub webhooks: WebhookRuntime,
    /// Per-caller request limits (shared through Redis when configured).
    pub rate_limits: crate::service::rate_limit::RateLimits,
    /// Supervised background tasks (restarted after a panic; `/readyz` reports dead ones).
    pub tasks: crate::tasks::Tasks,
    auth_limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

/// The auth limiter's key for a client address.
fn limiter_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        },
        v4 => v4,
    }
}

/// Replaceable dependencies (tests drive time through these).
#[derive(Clone, Default)]
pub struct Overrides {
    /// Clock to use instead of the system clock.
    pub clock: Option<Arc<dyn Clock>>,
    /// Providers to use instead of the built-in ones (tests inject failing or scripted ones).
    pub providers: Option<Providers>,
    /// Media store to use instead of the data directory.
    pub media: Option<Arc<dyn MediaStore>>,
    /// Outbound HTTP for webhooks instead of the real client.
    pub webhook_transport: Option<Arc<dyn WebhookTransport>>,
}

/// Shutdown signals, in the order a graceful stop fires them.
#[derive(Clone, Default)]
pub struct Stopping {
    /// Stop taking new work (claims, heartbeats) and finish what was started.
    pub work: tokio_util::sync::CancellationToken,
    /// After the connections closed: apply what they reported last, answer no more commands.
    pub late: tokio_util::sync::CancellationToken,
}

impl AppState {
    /// Assembles the state from its parts; providers report message updates on `updates`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: DatabaseConnection,
        cfg: Arc<Config>,
        jwt: JwtKeys,
        cipher: Arc<Cipher>,
        redis: Option<redis::Client>,
        bus: EventBus,
        overrides: Overrides,
        updates: UpdateSink,
        commands: crate::events::commands::CommandBus,
    ) -> anyhow::Result<Self> {
        let per_minute = NonZeroU32::new(cfg.auth_rate_limit).unwrap_or(NonZeroU32::MIN);
        let limiter = Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute)));
        let clock: Arc<dyn Clock> = overrides.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let providers = overrides.providers.unwrap_or_else(|| {
            Providers::build(
                &cfg.providers,
                cfg.sandbox.clone(),
                cfg.web.clone(),
                clock.clone(),
            )
        });
        let fs_media = FsMediaStore::new(cfg.data_dir.join("media"));
        let media_staging = fs_media.staging_dir();
        let media: Arc<dyn MediaStore> = overrides.media.unwrap_or_else(|| Arc::new(fs_media));
        let transport: Arc<dyn WebhookTransport> = match overrides.webhook_transport {
            Some(t) => t,
            None => HttpTransport::new(cfg.webhooks.allow_private)?,
        };
        Ok(Self {
            webhooks: WebhookRuntime {
                wake: Arc::new(tokio::sync::Notify::new()),
                transport,
            },
            rate_limits: crate::service::rate_limit::RateLimits::new(&cfg.limits, redis.clone()),
            writer: MessageWriter::spawn(db.clone()),
            connected: Arc::default(),
            bookkeeping: Arc::default(),
            db,
            cfg,
            jwt,
            cipher,
            clock,
            redis,
            bus,
            tasks: crate::tasks::Tasks::default(),
            providers,
            runtime: SessionRuntime::default(),
            media,
            media_staging,
            outbox: Arc::new(tokio::sync::Notify::new()),
            updates,
            commands,
            stopping: Stopping::default(),
            auth_limiter: limiter,
        })
    }

    /// Counts one authentication attempt from `ip`; 429 with a retry delay when over quota.
    /// IPv6 clients are counted by their /64 (one subscriber's whole prefix), IPv4-mapped
    /// addresses as IPv4.
    pub fn check_auth_rate(&self, ip: IpAddr) -> AppResult<()> {
        self.auth_limiter
            .check_key(&limiter_key(ip))
            .map_err(|not_until| {
                let now = governor::clock::DefaultClock::default().now();
                let wait: Duration = not_until.wait_time_from(now);
                AppError::RateLimited {
                    retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                }
            })
    }

    /// Drops limiter entries that have fully recovered and idle event channels (called
    /// periodically).
    pub fn prune_limiters(&self) {
        self.auth_limiter.retain_recent();
        self.rate_limits.prune();
        self.bus.prune();
    }
}

#[cfg(test)]
mod tests {
    use super::limiter_key;

    #[test]
    fn ipv6_clients_are_grouped_by_their_64() {
        let a = limiter_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = limiter_key("2001:db8:1:2:ffff:1:2:3".parse().unwrap());
        let c = limiter_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            limiter_key("::ffff:192.0.2.7".parse().unwrap()),
            "192.0.2.7".parse::<std::net::IpAddr>().unwrap()
        );
    }
}
