//! Configuration: command-line flags, environment variables and `.env`, validated once at start.
//!
//! Every key is documented in README.md with its default. Values arrive as strings and are
//! validated here so that a bad value fails start-up with one clear line naming the key.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use secrecy::{ExposeSecret, SecretString};

use crate::{
    domain::ProviderKind,
    provider::{sandbox::SandboxConfig, web::WebConfig},
    secrets::EncryptionKey,
};

mod http;
mod limits;
mod messaging;
mod providers;
mod runtime;
mod webhooks;

pub use http::{CorsOrigins, HttpConfig};
pub use limits::{GraphqlLimits, LimitsConfig};
pub use messaging::{DispatchConfig, MediaLimits, MessagingConfig};
pub use runtime::{RuntimeConfig, default_instance_id};
pub use webhooks::{DEFAULT_RETRY_SCHEDULE, WebhookConfig};

/// Default listen address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// Default data directory (SQLite file, generated JWT secret, later media).
pub const DEFAULT_DATA_DIR: &str = "./data";
/// Default access-token lifetime.
pub const DEFAULT_ACCESS_TOKEN_TTL: &str = "15m";
/// Default refresh-token lifetime.
pub const DEFAULT_REFRESH_TOKEN_TTL: &str = "30days";
/// Default request body limit in bytes (JSON bodies; upload routes set their own).
pub const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// Default number of auth attempts (register/login/refresh) per client IP per minute.
pub const DEFAULT_AUTH_RATE_LIMIT: u32 = 30;
/// Longest access-token lifetime accepted.
pub const MAX_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest refresh-token lifetime accepted.
pub const MAX_REFRESH_TOKEN_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// Minimum length of an explicitly configured JWT secret.
pub const MIN_JWT_SECRET_LEN: usize = 32;

/// Raw configuration as given on the command line or in the environment.
#[derive(clap::Args, Clone, Default)]
pub struct ConfigArgs {
    /// Address to listen on.
    #[arg(long, global = true, env = "WAGATE_ADDR")]
    pub addr: Option<String>,
    /// Data directory; created if missing.
    #[arg(long, global = true, env = "WAGATE_DATA_DIR")]
    pub data_dir: Option<String>,
    /// Database URL (`sqlite://…` or `postgres://…`). Default: SQLite file in the data dir.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Redis URL for the cross-instance event bus. Optional.
    #[arg(long, global = true, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// JWT signing secret (at least 32 bytes). Default: generated and kept in the data dir.
    #[arg(long, global = true, env = "WAGATE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Key for secrets kept in the database (32 bytes, base64 or hex). Default: generated and
    /// kept in the data dir.
    #[arg(
        long,
        global = true,
        env = "WAGATE_ENCRYPTION_KEY",
        hide_env_values = true
    )]
    pub encryption_key: Option<String>,
    /// Access-token lifetime, e.g. `15m`.
    #[arg(long, global = true, env = "WAGATE_ACCESS_TOKEN_TTL")]
    pub access_token_ttl: Option<String>,
    /// Refresh-token lifetime, e.g. `30days`.
    #[arg(long, global = true, env = "WAGATE_REFRESH_TOKEN_TTL")]
    pub refresh_token_ttl: Option<String>,
    /// Maximum request body size in bytes.
    #[arg(long, global = true, env = "WAGATE_BODY_LIMIT")]
    pub body_limit: Option<String>,
    /// Auth attempts (register, login, refresh) allowed per client IP per minute.
    #[arg(long, global = true, env = "WAGATE_AUTH_RATE_LIMIT")]
    pub auth_rate_limit: Option<String>,
    /// Database pool size. Default: 10 on PostgreSQL, 1 on SQLite (a single writer).
    #[arg(long, global = true, env = "WAGATE_DB_MAX_CONNECTIONS")]
    pub db_max_connections: Option<String>,
    /// Log format: `text` or `json`.
    #[arg(long, global = true, env = "WAGATE_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Default provider for new sessions: `sandbox` or `web` (`cloud` is planned).
    #[arg(long, global = true, env = "WAGATE_PROVIDER")]
    pub provider: Option<String>,
    /// Providers this gateway offers, comma-separated (default: only `WAGATE_PROVIDER`).
    #[arg(long, global = true, env = "WAGATE_PROVIDERS")]
    pub providers: Option<String>,
    /// WhatsApp Web: WebSocket URL (default WhatsApp's own).
    #[arg(long, global = true, env = "WAGATE_WEB_WS_URL")]
    pub web_ws_url: Option<String>,
    /// WhatsApp Web: pinned client version, e.g. `2.3000.1023456789` (default: fetched).
    #[arg(long, global = true, env = "WAGATE_WEB_VERSION")]
    pub web_version: Option<String>,
    /// WhatsApp Web: device name shown on the phone (default `wagate`).
    #[arg(long, global = true, env = "WAGATE_WEB_DEVICE_NAME")]
    pub web_device_name: Option<String>,
    /// Sandbox: validity of the first QR code.
    #[arg(long, global = true, env = "WAGATE_SANDBOX_QR_FIRST_TTL")]
    pub sandbox_qr_first_ttl: Option<String>,
    /// Sandbox: validity of each following QR code.
    #[arg(long, global = true, env = "WAGATE_SANDBOX_QR_TTL")]
    pub sandbox_qr_ttl: Option<String>,
    /// Sandbox: QR codes issued before giving up.
    #[arg(long, global = true, env = "WAGATE_SANDBOX_QR_ROTATIONS")]
    pub sandbox_qr_rotations: Option<String>,
    /// Sandbox: delay before a paired session is back online.
    #[arg(long, global = true, env = "WAGATE_SANDBOX_CONNECT_DELAY")]
    pub sandbox_connect_delay: Option<String>,
    /// Live events buffered per tenant before slow subscribers lose the oldest.
    #[arg(long, global = true, env = "WAGATE_EVENT_BUFFER")]
    pub event_buffer: Option<String>,
    /// How often open WebSocket connections re-check their API key.
    #[arg(long, global = true, env = "WAGATE_WS_REAUTH_INTERVAL")]
    pub ws_reauth_interval: Option<String>,
    /// Largest image to send, in bytes.
    #[arg(long, global = true, env = "WAGATE_MEDIA_MAX_IMAGE")]
    pub media_max_image: Option<String>,
    /// Largest audio file to send, in bytes.
    #[arg(long, global = true, env = "WAGATE_MEDIA_MAX_AUDIO")]
    pub media_max_audio: Option<String>,
    /// Largest video to send, in bytes.
    #[arg(long, global = true, env = "WAGATE_MEDIA_MAX_VIDEO")]
    pub media_max_video: Option<String>,
    /// Largest document to send, in bytes.
    #[arg(long, global = true, env = "WAGATE_MEDIA_MAX_DOCUMENT")]
    pub media_max_document: Option<String>,
    /// Whether this instance dispatches queued messages.
    #[arg(long, global = true, env = "WAGATE_DISPATCH_ENABLED")]
    pub dispatch_enabled: Option<String>,
    /// Chats whose messages are handed to providers at once.
    #[arg(long, global = true, env = "WAGATE_DISPATCH_CONCURRENCY")]
    pub dispatch_concurrency: Option<String>,
    /// Messages claimed per database round trip.
    #[arg(long, global = true, env = "WAGATE_DISPATCH_BATCH")]
    pub dispatch_batch: Option<String>,
    /// How often the dispatcher looks for due messages.
    #[arg(long, global = true, env = "WAGATE_DISPATCH_POLL_INTERVAL")]
    pub dispatch_poll_interval: Option<String>,
    /// How long a claimed message is held before another dispatcher may retry it.
    #[arg(long, global = true, env = "WAGATE_DISPATCH_LEASE")]
    pub dispatch_lease: Option<String>,
    /// Longest a provider send may take.
    #[arg(long, global = true, env = "WAGATE_SEND_TIMEOUT")]
    pub send_timeout: Option<String>,
    /// Attempts before a message is failed.
    #[arg(long, global = true, env = "WAGATE_DISPATCH_MAX_ATTEMPTS")]
    pub dispatch_max_attempts: Option<String>,
    /// First retry delay (doubled per attempt).
    #[arg(long, global = true, env = "WAGATE_DISPATCH_BACKOFF_BASE")]
    pub dispatch_backoff_base: Option<String>,
    /// Longest retry delay.
    #[arg(long, global = true, env = "WAGATE_DISPATCH_BACKOFF_MAX")]
    pub dispatch_backoff_max: Option<String>,
    /// How long an Idempotency-Key is remembered.
    #[arg(long, global = true, env = "WAGATE_IDEMPOTENCY_TTL")]
    pub idempotency_ttl: Option<String>,
    /// Sandbox: whether sent messages get delivered/read receipts.
    #[arg(long, global = true, env = "WAGATE_SANDBOX_RECEIPTS")]
    pub sandbox_receipts: Option<String>,
    /// Sandbox: delay before the delivered receipt.
    #[arg(long, global = true, env = "WAGATE_SANDBOX_DELIVERED_AFTER")]
    pub sandbox_delivered_after: Option<String>,
    /// Sandbox: delay from delivered to read (and read to played).
    #[arg(long, global = true, env = "WAGATE_SANDBOX_READ_AFTER")]
    pub sandbox_read_after: Option<String>,
    /// Sandbox: comma-separated numbers that are not on WhatsApp.
    #[arg(long, global = true, env = "WAGATE_SANDBOX_NOT_ON_WHATSAPP")]
    pub sandbox_not_on_whatsapp: Option<String>,
    /// Whether this instance delivers webhooks.
    #[arg(long, global = true, env = "WAGATE_WEBHOOK_ENABLED")]
    pub webhook_enabled: Option<String>,
    /// Allow webhook URLs on loopback or private networks.
    #[arg(long, global = true, env = "WAGATE_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: Option<String>,
    /// Comma-separated delays before each webhook try.
    #[arg(long, global = true, env = "WAGATE_WEBHOOK_RETRY_SCHEDULE")]
    pub webhook_retry_schedule: Option<String>,
    /// Longest a webhook receiver may take to answer.
    #[arg(long, global = true, env = "WAGATE_WEBHOOK_TIMEOUT")]
    pub webhook_timeout: Option<String>,
    /// An endpoint failing this long is disabled.
    #[arg(long, global = true, env = "WAGATE_WEBHOOK_DISABLE_AFTER")]
    pub webhook_disable_after: Option<String>,
    /// Webhook deliveries held at once on this instance.
    #[arg(long, global = true, env = "WAGATE_WEBHOOK_CONCURRENCY")]
    pub webhook_concurrency: Option<String>,
    /// Webhook deliveries in flight at once to one endpoint.
    #[arg(long, global = true, env = "WAGATE_WEBHOOK_ENDPOINT_CONCURRENCY")]
    pub webhook_endpoint_concurrency: Option<String>,
    /// Webhook deliveries claimed per database round trip.
    #[arg(long, global = true, env = "WAGATE_WEBHOOK_BATCH")]
    pub webhook_batch: Option<String>,
    /// How often the webhook worker looks for due deliveries.
    #[arg(long, global = true, env = "WAGATE_WEBHOOK_POLL_INTERVAL")]
    pub webhook_poll_interval: Option<String>,
    /// How long a claimed webhook delivery is held.
    #[arg(long, global = true, env = "WAGATE_WEBHOOK_LEASE")]
    pub webhook_lease: Option<String>,
    /// Authenticated requests per API key or user per minute (0 = off).
    #[arg(long, global = true, env = "WAGATE_RATE_LIMIT_PER_MINUTE")]
    pub rate_limit_per_minute: Option<String>,
    /// Requests a caller may make at once before the per-minute pace applies.
    #[arg(long, global = true, env = "WAGATE_RATE_LIMIT_BURST")]
    pub rate_limit_burst: Option<String>,
    /// Comma-separated proxy addresses or CIDR ranges trusted to set X-Forwarded-For.
    #[arg(long, global = true, env = "WAGATE_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// Deepest GraphQL selection nesting.
    #[arg(long, global = true, env = "WAGATE_GRAPHQL_MAX_DEPTH")]
    pub graphql_max_depth: Option<String>,
    /// Highest GraphQL operation complexity.
    #[arg(long, global = true, env = "WAGATE_GRAPHQL_MAX_COMPLEXITY")]
    pub graphql_max_complexity: Option<String>,
    /// Most root fields (aliases included) in one GraphQL operation.
    #[arg(long, global = true, env = "WAGATE_GRAPHQL_MAX_ROOT_FIELDS")]
    pub graphql_max_root_fields: Option<String>,
    /// Most mutations in one GraphQL request.
    #[arg(long, global = true, env = "WAGATE_GRAPHQL_MAX_MUTATIONS")]
    pub graphql_max_mutations: Option<String>,
    /// Subscriptions one GraphQL WebSocket may hold.
    #[arg(long, global = true, env = "WAGATE_WS_MAX_SUBSCRIPTIONS")]
    pub ws_max_subscriptions: Option<String>,
    /// How long a GraphQL WebSocket may wait before connection_init.
    #[arg(long, global = true, env = "WAGATE_WS_INIT_TIMEOUT")]
    pub ws_init_timeout: Option<String>,
    /// Comma-separated browser origins allowed cross-origin access, or `*`.
    #[arg(long, global = true, env = "WAGATE_CORS_ORIGINS")]
    pub cors_origins: Option<String>,
    /// This instance's id (default: hostname plus a random suffix).
    #[arg(long, global = true, env = "WAGATE_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// How long a claim on a live session holds without renewal.
    #[arg(long, global = true, env = "WAGATE_SESSION_LEASE")]
    pub session_lease: Option<String>,
    /// How often session claims are renewed and lapsed ones taken over.
    #[arg(long, global = true, env = "WAGATE_SESSION_HEARTBEAT")]
    pub session_heartbeat: Option<String>,
    /// How long shutdown waits for sends and deliveries in flight.
    #[arg(long, global = true, env = "WAGATE_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<String>,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Validated configuration. Secrets are redacted in `Debug`.
#[derive(Clone)]
pub struct Config {
    /// Listen address.
    pub addr: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL (may hold a password).
    pub database_url: SecretString,
    /// Redis URL, when the Redis event bus is wanted.
    pub redis_url: Option<SecretString>,
    /// Explicit JWT secret; when `None` one is generated and persisted in the data dir.
    pub jwt_secret: Option<SecretString>,
    /// Explicit encryption key for secrets at rest; when `None` one is generated and persisted
    /// in the data dir.
    pub encryption_key: Option<EncryptionKey>,
    /// Access-token lifetime.
    pub access_token_ttl: Duration,
    /// Refresh-token lifetime.
    pub refresh_token_ttl: Duration,
    /// Request body limit in bytes.
    pub body_limit: usize,
    /// Auth attempts per client IP per minute.
    pub auth_rate_limit: u32,
    /// Database pool size.
    pub db_max_connections: u32,
    /// Log format.
    pub log_format: LogFormat,
    /// Default provider for new sessions.
    pub provider: ProviderKind,
    /// Providers this gateway offers (the default among them).
    pub providers: Vec<ProviderKind>,
    /// Sandbox provider timings.
    pub sandbox: SandboxConfig,
    /// WhatsApp Web provider settings.
    pub web: WebConfig,
    /// Live events buffered per tenant.
    pub event_buffer: usize,
    /// How often open WebSocket connections re-check their credentials.
    pub ws_reauth_interval: Duration,
    /// Messages: media limits, dispatcher, idempotency.
    pub messaging: MessagingConfig,
    /// Webhook delivery.
    pub webhooks: WebhookConfig,
    /// Rate limits, proxies, GraphQL and WebSocket bounds.
    pub limits: LimitsConfig,
    /// CORS.
    pub http: HttpConfig,
    /// Session ownership across instances, and shutdown.
    pub runtime: RuntimeConfig,
}

/// A configuration value that failed validation.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub key: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn err(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key,
        reason: reason.into(),
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn parse_duration(
    key: &'static str,
    v: Option<String>,
    default: &str,
    min: Duration,
) -> Result<Duration, ConfigError> {
    let raw = non_empty(v).unwrap_or_else(|| default.to_owned());
    let d = humantime::parse_duration(&raw).map_err(|e| {
        err(
            key,
            format!("'{raw}' is not a duration like 500ms, 15m or 30days ({e})"),
        )
    })?;
    if d < min {
        return Err(err(
            key,
            format!("must be at least {}", humantime::format_duration(min)),
        ));
    }
    Ok(d)
}

fn parse_ttl(key: &'static str, v: Option<String>, default: &str) -> Result<Duration, ConfigError> {
    parse_duration(key, v, default, Duration::from_secs(1))
}

fn parse_number<T: std::str::FromStr>(
    key: &'static str,
    v: Option<String>,
    default: T,
) -> Result<T, ConfigError> {
    match non_empty(v) {
        None => Ok(default),
        Some(raw) => raw
            .parse::<T>()
            .map_err(|_| err(key, format!("'{raw}' is not a whole number"))),
    }
}

/// True when the URL names a PostgreSQL database.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl Config {
    /// Refuses a WhatsApp Web URL off this machine in a test build (feature `fake-whatsapp`),
    /// for commands that use the `web` provider whatever `WAGATE_PROVIDERS` says.
    pub fn check_web_test_build(&self) -> Result<(), ConfigError> {
        providers::check_test_build(&self.web, &[ProviderKind::Web])
    }

    /// Defaults for everything, with the given data directory (used by tests and embedding).
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        let args = ConfigArgs {
            data_dir: Some(data_dir.to_string_lossy().into_owned()),
            ..ConfigArgs::default()
        };
        // The defaults are constants checked by the unit tests below.
        Self::from_args(args).unwrap_or_else(|e| panic!("defaults must be valid: {e}"))
    }

    /// Validates raw arguments into a configuration.
    pub fn from_args(a: ConfigArgs) -> Result<Self, ConfigError> {
        let messaging = messaging::parse(&a)?;
        let webhooks = webhooks::parse(&a)?;
        let limits = limits::parse(&a)?;
        let http = http::parse(&a)?;
        let runtime = runtime::parse(&a)?;
        let mut sandbox_messages = SandboxConfig::default();
        messaging::parse_sandbox(&a, &mut sandbox_messages)?;
        let addr_raw = non_empty(a.addr).unwrap_or_else(|| DEFAULT_ADDR.to_owned());
        let addr: SocketAddr = addr_raw.parse().map_err(|_| {
            err(
                "WAGATE_ADDR",
                format!("'{addr_raw}' is not a socket address like 127.0.0.1:8080"),
            )
        })?;
        let data_dir =
            PathBuf::from(non_empty(a.data_dir).unwrap_or_else(|| DEFAULT_DATA_DIR.to_owned()));

        let database_url = match non_empty(a.database_url) {
            Some(url) if url.starts_with("sqlite:") || is_postgres_url(&url) => url,
            Some(_) => {
                return Err(err(
                    "DATABASE_URL",
                    "must start with sqlite:, postgres:// or postgresql://",
                ));
            }
            None => format!("sqlite://{}?mode=rwc", data_dir.join("wagate.db").display()),
        };

        let redis_url = match non_empty(a.redis_url) {
            Some(url) => {
                redis::Client::open(url.as_str())
                    .map_err(|e| err("REDIS_URL", format!("not a valid Redis URL ({e})")))?;
                Some(SecretString::from(url))
            }
            None => None,
        };

        let jwt_secret = match non_empty(a.jwt_secret) {
            Some(s) if s.len() < MIN_JWT_SECRET_LEN => {
                return Err(err(
                    "WAGATE_JWT_SECRET",
                    format!("must be at least {MIN_JWT_SECRET_LEN} bytes long"),
                ));
            }
            other => other.map(SecretString::from),
        };

        let encryption_key = non_empty(a.encryption_key)
            .map(|raw| EncryptionKey::parse(&raw))
            .transpose()
            .map_err(|e| err("WAGATE_ENCRYPTION_KEY", e.to_string()))?;

        let access_token_ttl = parse_ttl(
            "WAGATE_ACCESS_TOKEN_TTL",
            a.access_token_ttl,
            DEFAULT_ACCESS_TOKEN_TTL,
        )?;
        let refresh_token_ttl = parse_ttl(
            "WAGATE_REFRESH_TOKEN_TTL",
            a.refresh_token_ttl,
            DEFAULT_REFRESH_TOKEN_TTL,
        )?;
        if refresh_token_ttl <= access_token_ttl {
            return Err(err(
                "WAGATE_REFRESH_TOKEN_TTL",
                "must be longer than WAGATE_ACCESS_TOKEN_TTL",
            ));
        }
        if access_token_ttl > MAX_ACCESS_TOKEN_TTL {
            return Err(err("WAGATE_ACCESS_TOKEN_TTL", "must be at most 24h"));
        }
        if refresh_token_ttl > MAX_REFRESH_TOKEN_TTL {
            return Err(err("WAGATE_REFRESH_TOKEN_TTL", "must be at most 365days"));
        }

        let body_limit = parse_number("WAGATE_BODY_LIMIT", a.body_limit, DEFAULT_BODY_LIMIT)?;
        if body_limit < 1024 {
            return Err(err("WAGATE_BODY_LIMIT", "must be at least 1024 bytes"));
        }
        let auth_rate_limit = parse_number(
            "WAGATE_AUTH_RATE_LIMIT",
            a.auth_rate_limit,
            DEFAULT_AUTH_RATE_LIMIT,
        )?;
        if auth_rate_limit == 0 {
            return Err(err("WAGATE_AUTH_RATE_LIMIT", "must be at least 1"));
        }
        let default_pool = if is_postgres_url(&database_url) {
            10
        } else {
            1
        };
        let db_max_connections = parse_number(
            "WAGATE_DB_MAX_CONNECTIONS",
            a.db_max_connections,
            default_pool,
        )?;
        if db_max_connections == 0 {
            return Err(err("WAGATE_DB_MAX_CONNECTIONS", "must be at least 1"));
        }
        let log_format = match non_empty(a.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(err(
                    "WAGATE_LOG_FORMAT",
                    format!("'{other}' is not text or json"),
                ));
            }
        };

        let (providers, provider) = providers::parse(a.providers, a.provider)?;
        let web = providers::parse_web(a.web_ws_url, a.web_version, a.web_device_name)?;
        providers::check_test_build(&web, &providers)?;
        let ms = Duration::from_millis(1);
        let sandbox = SandboxConfig {
            qr_first_ttl: parse_duration(
                "WAGATE_SANDBOX_QR_FIRST_TTL",
                a.sandbox_qr_first_ttl,
                "60s",
                ms,
            )?,
            qr_ttl: parse_duration("WAGATE_SANDBOX_QR_TTL", a.sandbox_qr_ttl, "20s", ms)?,
            qr_rotations: parse_number(
                "WAGATE_SANDBOX_QR_ROTATIONS",
                a.sandbox_qr_rotations,
                6u32,
            )?,
            connect_delay: parse_duration(
                "WAGATE_SANDBOX_CONNECT_DELAY",
                a.sandbox_connect_delay,
                "200ms",
                Duration::ZERO,
            )?,
            ..sandbox_messages
        };
        if sandbox.qr_rotations == 0 {
            return Err(err("WAGATE_SANDBOX_QR_ROTATIONS", "must be at least 1"));
        }
        let event_buffer = parse_number(
            "WAGATE_EVENT_BUFFER",
            a.event_buffer,
            crate::events::DEFAULT_CAPACITY,
        )?;
        if event_buffer == 0 {
            return Err(err("WAGATE_EVENT_BUFFER", "must be at least 1"));
        }

        let ws_reauth_interval = parse_duration(
            "WAGATE_WS_REAUTH_INTERVAL",
            a.ws_reauth_interval,
            "60s",
            Duration::from_millis(10),
        )?;

        Ok(Config {
            addr,
            data_dir,
            database_url: SecretString::from(database_url),
            redis_url,
            jwt_secret,
            encryption_key,
            access_token_ttl,
            refresh_token_ttl,
            body_limit,
            auth_rate_limit,
            db_max_connections,
            log_format,
            provider,
            providers,
            sandbox,
            web,
            event_buffer,
            ws_reauth_interval,
            messaging,
            webhooks,
            limits,
            http,
            runtime,
        })
    }

    /// Creates the data directory if it is missing.
    pub fn ensure_data_dir(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.data_dir)
            .map_err(|e| anyhow::anyhow!("cannot create data dir {}: {e}", self.data_dir.display()))
    }

    /// The database URL (contains credentials: never log it).
    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }

    /// True when the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        is_postgres_url(self.database_url())
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = if self.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        };
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .field("database", &format_args!("{backend} [REDACTED]"))
            .field("redis_url", &self.redis_url.as_ref().map(|_| "[REDACTED]"))
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field(
                "encryption_key",
                &self.encryption_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("body_limit", &self.body_limit)
            .field("auth_rate_limit", &self.auth_rate_limit)
            .field("db_max_connections", &self.db_max_connections)
            .field("log_format", &self.log_format)
            .field("provider", &self.provider)
            .field("providers", &self.providers)
            .field("sandbox", &self.sandbox)
            .field("web", &self.web)
            .field("event_buffer", &self.event_buffer)
            .field("ws_reauth_interval", &self.ws_reauth_interval)
            .field("messaging", &self.messaging)
            .field("webhooks", &self.webhooks)
            .field("limits", &self.limits)
            .field("runtime", &self.runtime)
            .field("http", &self.http)
            .finish()
    }
}

#[cfg(test)]
mod tests;
