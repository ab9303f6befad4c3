//! Abuse limits: per-caller rate limits, trusted proxies, GraphQL cost limits and WebSocket
//! bounds.

use std::time::Duration;

use ipnet::IpNet;

use super::{ConfigArgs, ConfigError, err, non_empty, parse_duration, parse_number};

/// Default authenticated requests per caller per minute.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 600;
/// Default burst: requests a caller may make at once after being idle.
pub const DEFAULT_RATE_LIMIT_BURST: u32 = 100;

/// GraphQL limits, checked before an operation runs.
#[derive(Clone, Debug)]
pub struct GraphqlLimits {
    /// Deepest selection nesting.
    pub max_depth: usize,
    /// Highest complexity (every field costs 1; list fields multiply their children by the
    /// `limit` they ask for).
    pub max_complexity: usize,
    /// Most fields (aliases included) at the root of one operation.
    pub max_root_fields: usize,
    /// Most mutation fields in one request.
    pub max_mutations: usize,
    /// Complexity points that cost one rate-limit unit.
    pub complexity_per_unit: usize,
}

/// Abuse limits.
#[derive(Clone, Debug)]
pub struct LimitsConfig {
    /// Authenticated requests per caller (API key or user) per minute; 0 turns limiting off.
    pub rate_per_minute: u32,
    /// Requests a caller may make at once.
    pub rate_burst: u32,
    /// Proxies allowed to name the client in `X-Forwarded-For`.
    pub trusted_proxies: Vec<IpNet>,
    /// GraphQL cost limits.
    pub graphql: GraphqlLimits,
    /// Subscriptions one WebSocket may hold at once.
    pub ws_max_subscriptions: usize,
    /// How long a WebSocket may wait before sending `connection_init`.
    pub ws_init_timeout: Duration,
}

fn positive<T: PartialOrd + Default>(key: &'static str, v: T) -> Result<T, ConfigError> {
    if v > T::default() {
        Ok(v)
    } else {
        Err(err(key, "must be at least 1"))
    }
}

fn parse_proxies(raw: Option<String>) -> Result<Vec<IpNet>, ConfigError> {
    const KEY: &str = "WAGATE_TRUSTED_PROXIES";
    let Some(raw) = non_empty(raw) else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| err(KEY, format!("'{s}' is not an IP address or CIDR range")))
        })
        .collect()
}

/// Reads the limit keys.
pub(super) fn parse(a: &ConfigArgs) -> Result<LimitsConfig, ConfigError> {
    let rate_per_minute = parse_number(
        "WAGATE_RATE_LIMIT_PER_MINUTE",
        a.rate_limit_per_minute.clone(),
        DEFAULT_RATE_LIMIT_PER_MINUTE,
    )?;
    let rate_burst = positive(
        "WAGATE_RATE_LIMIT_BURST",
        parse_number(
            "WAGATE_RATE_LIMIT_BURST",
            a.rate_limit_burst.clone(),
            DEFAULT_RATE_LIMIT_BURST,
        )?,
    )?;
    let graphql = GraphqlLimits {
        max_depth: positive(
            "WAGATE_GRAPHQL_MAX_DEPTH",
            parse_number("WAGATE_GRAPHQL_MAX_DEPTH", a.graphql_max_depth.clone(), 15)?,
        )?,
        max_complexity: positive(
            "WAGATE_GRAPHQL_MAX_COMPLEXITY",
            parse_number(
                "WAGATE_GRAPHQL_MAX_COMPLEXITY",
                a.graphql_max_complexity.clone(),
                5000,
            )?,
        )?,
        max_root_fields: positive(
            "WAGATE_GRAPHQL_MAX_ROOT_FIELDS",
            parse_number(
                "WAGATE_GRAPHQL_MAX_ROOT_FIELDS",
                a.graphql_max_root_fields.clone(),
                20,
            )?,
        )?,
        max_mutations: positive(
            "WAGATE_GRAPHQL_MAX_MUTATIONS",
            parse_number(
                "WAGATE_GRAPHQL_MAX_MUTATIONS",
                a.graphql_max_mutations.clone(),
                10,
            )?,
        )?,
        complexity_per_unit: 100,
    };
    let ws_max_subscriptions = positive(
        "WAGATE_WS_MAX_SUBSCRIPTIONS",
        parse_number(
            "WAGATE_WS_MAX_SUBSCRIPTIONS",
            a.ws_max_subscriptions.clone(),
            100,
        )?,
    )?;
    let ws_init_timeout = parse_duration(
        "WAGATE_WS_INIT_TIMEOUT",
        a.ws_init_timeout.clone(),
        "10s",
        Duration::from_millis(10),
    )?;
    Ok(LimitsConfig {
        rate_per_minute,
        rate_burst,
        trusted_proxies: parse_proxies(a.trusted_proxies.clone())?,
        graphql,
        ws_max_subscriptions,
        ws_init_timeout,
    })
}
