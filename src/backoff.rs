//! Exponential backoff with jitter, shared by message retries and provider reconnects.

use std::time::Duration;

use rand::Rng;

/// The delay before retry `attempt` (1 for the first): `base × 2^(attempt − 1)`, capped at
/// `max`, plus up to 20 % jitter (still at most `max`) so many retries spread out instead of
/// arriving together.
pub fn exponential(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let raw = base.saturating_mul(2u32.saturating_pow(exp)).min(max);
    let jitter = rand::rng().random_range(0.0..0.2);
    raw.mul_f64(1.0 + jitter).min(max)
}

/// First reconnect delay of a dropped provider connection.
pub const RECONNECT_BASE: Duration = Duration::from_secs(1);
/// Longest reconnect delay.
pub const RECONNECT_MAX: Duration = Duration::from_secs(60);

/// The delay before reconnect attempt `attempt` (1 for the first): 1 s, 2 s, 4 s, … up to a
/// minute, with jitter. Providers report it in `ProviderEvent::Reconnecting`.
pub fn reconnect_delay(attempt: u32) -> Duration {
    exponential(attempt, RECONNECT_BASE, RECONNECT_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_bounded_jitter_and_caps() {
        let base = Duration::from_secs(2);
        let max = Duration::from_secs(60);
        for (attempt, low) in [(1, 2), (2, 4), (3, 8), (4, 16)] {
            let d = exponential(attempt, base, max);
            assert!(
                d >= Duration::from_secs(low) && d <= Duration::from_secs(low) * 6 / 5,
                "{attempt}: {d:?}"
            );
        }
        assert_eq!(exponential(30, base, max), max);
        assert_eq!(exponential(u32::MAX, base, max), max);
        let first = reconnect_delay(1);
        assert!(first >= RECONNECT_BASE && first <= RECONNECT_BASE * 6 / 5);
        assert_eq!(reconnect_delay(40), RECONNECT_MAX);
    }

    #[test]
    fn jitter_spreads_retries() {
        let delays: std::collections::HashSet<Duration> = (0..20)
            .map(|_| exponential(3, Duration::from_secs(1), Duration::from_secs(60)))
            .collect();
        assert!(delays.len() > 1, "twenty retries all at {delays:?}");
    }
}
