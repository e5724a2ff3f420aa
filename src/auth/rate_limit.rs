//! Rate limits per account (on writes) and per signing key (on signed calls): a generic cell rate
//! algorithm (GCRA) over the cache, shared by every instance through Redis and kept in this process
//! without it. Each key's state is one timestamp, so a flood costs one small entry per flooding account.

use std::time::Duration;

use crate::error::ApiError;
use crate::state::AppState;

/// A sustained rate and the burst allowed on top of it.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl Rate {
    /// The time one request uses up, and how far ahead of now the schedule may already be when a request
    /// is admitted (`burst - 1` requests' worth: `burst` at once from rest).
    fn cell(self) -> (Duration, Duration) {
        let interval = Duration::from_secs(1) / self.per_second.max(1);
        (interval, interval * self.burst.saturating_sub(1))
    }
}

/// Admits one request on `key` at `rate`, or refuses it with 429 `rate_limited` and the seconds to wait.
/// A cache that does not answer admits the request: limits protect the service, and must not be what
/// takes it down.
pub async fn admit(state: &AppState, key: &str, rate: Rate) -> Result<(), ApiError> {
    let (interval, tolerance) = rate.cell();
    match state.cache.admit(key, interval, tolerance).await {
        Ok(None) => Ok(()),
        Ok(Some(wait)) => Err(ApiError::rate_limited(wait.as_secs_f64().ceil() as u64)),
        Err(e) => {
            tracing::warn!(error = %e, "rate limit unavailable; admitting");
            Ok(())
        }
    }
}

/// The writes of one account.
pub async fn account_write(state: &AppState, account_id: &str) -> Result<(), ApiError> {
    let t = &state.settings.throttle;
    let rate = Rate {
        per_second: t.account_writes_per_sec,
        burst: t.account_write_burst,
    };
    admit(state, &format!("rate:account:{account_id}"), rate).await
}

/// The signed calls of one key.
pub async fn key_request(state: &AppState, key_id: &str) -> Result<(), ApiError> {
    let t = &state.settings.throttle;
    let rate = Rate {
        per_second: t.key_requests_per_sec,
        burst: t.key_request_burst,
    };
    admit(state, &format!("rate:key:{key_id}"), rate).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::MemoryCache;

    #[test]
    fn a_burst_passes_then_the_sustained_rate_and_a_wait_is_told() {
        let cache = MemoryCache::default();
        let (interval, tolerance) = Rate {
            per_second: 10,
            burst: 5,
        }
        .cell();
        assert_eq!(
            (interval, tolerance),
            (Duration::from_millis(100), Duration::from_millis(400))
        );
        for _ in 0..5 {
            assert_eq!(cache.admit("k", interval, tolerance), None);
        }
        let wait = cache
            .admit("k", interval, tolerance)
            .expect("the sixth at once waits");
        assert!(wait > Duration::from_millis(50) && wait <= interval, "{wait:?}");
        // Another key has its own allowance.
        assert_eq!(cache.admit("other", interval, tolerance), None);
    }

    #[test]
    fn a_burst_of_one_admits_one_request_per_interval() {
        let cache = MemoryCache::default();
        let (interval, tolerance) = Rate {
            per_second: 1,
            burst: 1,
        }
        .cell();
        assert_eq!(tolerance, Duration::ZERO);
        assert_eq!(cache.admit("k", interval, tolerance), None);
        assert!(cache.admit("k", interval, tolerance).is_some());
    }
}
