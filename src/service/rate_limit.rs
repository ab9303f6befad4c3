//! Per-caller rate limits (GCRA). Every authenticated request spends one unit of its API key's
//! or user's allowance; a GraphQL operation spends one unit per `complexity_per_unit` points of
//! complexity. With Redis configured the allowance is shared by every instance through one
//! atomic script; when Redis cannot be reached the instance falls back to its own limiter for a
//! few seconds (never an error for the caller).

use std::{
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use governor::{
    Quota, RateLimiter as Gcra, clock::Clock as _, middleware::StateInformationMiddleware,
    state::keyed::DefaultKeyedStateStore,
};
use tokio::sync::OnceCell;

use crate::{
    auth::{Actor, Principal},
    config::LimitsConfig,
    error::AppError,
};

/// How long a Redis call may take before the local limiter decides instead.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// How long Redis is left alone after it failed.
const REDIS_BACKOFF: Duration = Duration::from_secs(5);

/// GCRA over one Redis key. KEYS[1] = the caller's key; ARGV = emission interval (µs), burst,
/// cost. Returns {allowed, remaining, wait µs until allowed (denied) or until full (allowed)}.
/// Time comes from the Redis server, so instances with skewed clocks agree.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + emission * cost
local allow_at = new_tat - emission * burst
if allow_at > now then
  local remaining = math.floor((now - (tat - emission * burst)) / emission)
  if remaining < 0 then remaining = 0 end
  return {0, remaining, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, math.floor((now - allow_at) / emission), new_tat - now}
";

type Local = Gcra<
    RateKey,
    DefaultKeyedStateStore<RateKey>,
    governor::clock::DefaultClock,
    StateInformationMiddleware,
>;

/// Whose allowance a request spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// A user (every access token of theirs shares it).
    User(uuid::Uuid),
    /// One API key.
    ApiKey(uuid::Uuid),
}

impl RateKey {
    /// The caller's key.
    pub fn of(p: &Principal) -> Self {
        match p.actor {
            Actor::User(u) => RateKey::User(u.uuid()),
            Actor::ApiKey(k) => RateKey::ApiKey(k.uuid()),
        }
    }

    fn redis_key(self) -> String {
        match self {
            RateKey::User(u) => format!("wagate:rl:u:{u}"),
            RateKey::ApiKey(k) => format!("wagate:rl:k:{k}"),
        }
    }
}

/// What the `RateLimit-*` headers say after a request was counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateInfo {
    /// Requests per minute.
    pub limit: u32,
    /// Requests that may be made right now.
    pub remaining: u32,
    /// Seconds until the allowance is whole again (or, when refused, until a retry may pass).
    pub reset_secs: u64,
}

/// The per-caller limiter of this instance.
#[derive(Clone)]
pub struct RateLimits {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    per_minute: u32,
    burst: u32,
    emission: Duration,
    local: Local,
    redis: Option<redis::Client>,
    conn: OnceCell<redis::aio::ConnectionManager>,
    redis_down_until: Mutex<Option<Instant>>,
    script: redis::Script,
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl RateLimits {
    /// A limiter from the configuration; shared through Redis when a client is given.
    pub fn new(cfg: &LimitsConfig, redis: Option<redis::Client>) -> Self {
        let Some(per_minute) = NonZeroU32::new(cfg.rate_per_minute) else {
            return Self { inner: None };
        };
        let burst = NonZeroU32::new(cfg.rate_burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        Self {
            inner: Some(Arc::new(Inner {
                per_minute: per_minute.get(),
                burst: burst.get(),
                emission: quota.replenish_interval(),
                local: Gcra::keyed(quota).with_middleware::<StateInformationMiddleware>(),
                redis,
                conn: OnceCell::new(),
                redis_down_until: Mutex::new(None),
                script: redis::Script::new(SCRIPT),
            })),
        }
    }

    /// Whether limiting is on.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Spends `cost` units of `p`'s allowance: the header values, or 429 `RATE_LIMITED` with
    /// the header values for the refusal. `None` when limiting is off.
    pub async fn charge(
        &self,
        p: &Principal,
        cost: u32,
    ) -> Result<Option<RateInfo>, (AppError, RateInfo)> {
        let Some(inner) = &self.inner else {
            return Ok(None);
        };
        let key = RateKey::of(p);
        let cost = cost.clamp(1, inner.burst);
        let (allowed, info) = match inner.shared(key, cost).await {
            Some(r) => r,
            None => inner.local(key, cost),
        };
        if allowed {
            Ok(Some(info))
        } else {
            Err((
                AppError::RateLimited {
                    retry_after_secs: info.reset_secs.max(1),
                },
                info,
            ))
        }
    }

    /// Drops local entries that have fully recovered (called periodically).
    pub fn prune(&self) {
        if let Some(inner) = &self.inner {
            inner.local.retain_recent();
        }
    }
}

impl Inner {
    fn local(&self, key: RateKey, cost: u32) -> (bool, RateInfo) {
        let n = NonZeroU32::new(cost).unwrap_or(NonZeroU32::MIN);
        match self.local.check_key_n(&key, n) {
            Ok(Ok(snapshot)) => {
                let remaining = snapshot.remaining_burst_capacity();
                let refill = self.emission * (self.burst - remaining.min(self.burst));
                (true, self.info(remaining, ceil_secs(refill)))
            }
            Ok(Err(not_until)) => {
                let now = governor::clock::DefaultClock::default().now();
                let wait = not_until.wait_time_from(now);
                (false, self.info(0, ceil_secs(wait)))
            }
            // cost is clamped to the burst, so this cannot happen; refuse for a moment.
            Err(_) => (false, self.info(0, ceil_secs(self.emission))),
        }
    }

    fn info(&self, remaining: u32, reset_secs: u64) -> RateInfo {
        RateInfo {
            limit: self.per_minute,
            remaining,
            reset_secs,
        }
    }

    /// The shared decision through Redis; `None` when Redis is not configured or failing.
    async fn shared(&self, key: RateKey, cost: u32) -> Option<(bool, RateInfo)> {
        let client = self.redis.as_ref()?;
        {
            let mut down = self
                .redis_down_until
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match *down {
                Some(until) if Instant::now() < until => return None,
                Some(_) => *down = None,
                None => {}
            }
        }
        let attempt = async {
            let conn = self
                .conn
                .get_or_try_init(|| async {
                    let cfg = redis::aio::ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(REDIS_TIMEOUT))
                        .set_response_timeout(Some(REDIS_TIMEOUT))
                        .set_number_of_retries(0);
                    redis::aio::ConnectionManager::new_with_config(client.clone(), cfg).await
                })
                .await?;
            let mut conn = conn.clone();
            let emission_us = u64::try_from(self.emission.as_micros()).unwrap_or(u64::MAX);
            self.script
                .key(key.redis_key())
                .arg(emission_us)
                .arg(self.burst)
                .arg(cost)
                .invoke_async::<(i64, i64, i64)>(&mut conn)
                .await
        };
        match tokio::time::timeout(REDIS_TIMEOUT * 2, attempt).await {
            Ok(Ok((allowed, remaining, wait_us))) => {
                let remaining = u32::try_from(remaining.max(0)).unwrap_or(u32::MAX);
                let wait = Duration::from_micros(u64::try_from(wait_us.max(0)).unwrap_or(0));
                Some((allowed == 1, self.info(remaining, ceil_secs(wait))))
            }
            Ok(Err(e)) => {
                self.redis_failed(&e.to_string());
                None
            }
            Err(_) => {
                self.redis_failed("timed out");
                None
            }
        }
    }

    fn redis_failed(&self, why: &str) {
        let mut down = self
            .redis_down_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if down.is_none() {
            tracing::warn!(error = %why, "rate limits: Redis unreachable; this instance limits on its own for now");
        }
        *down = Some(Instant::now() + REDIS_BACKOFF);
    }
}
