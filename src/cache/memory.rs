use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Counter;

/// Expiring counters and markers for a single instance.
#[derive(Clone, Default)]
pub struct MemoryCache {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

#[derive(Clone, Copy)]
struct Entry {
    count: u64,
    expires: Instant,
}

/// Above this many entries, expired ones are swept on the next write (keeps memory bounded under a flood).
const SWEEP_ABOVE: usize = 10_000;

impl MemoryCache {
    fn with_entries<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>, Instant) -> T) -> T {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        if entries.len() > SWEEP_ABOVE {
            entries.retain(|_, e| e.expires > now);
        }
        f(&mut entries, now)
    }

    pub fn increment(&self, key: &str, window: Duration) -> Counter {
        self.with_entries(|entries, now| {
            let entry = entries.entry(key.to_string()).or_insert(Entry {
                count: 0,
                expires: now + window,
            });
            if entry.expires <= now {
                *entry = Entry {
                    count: 0,
                    expires: now + window,
                };
            }
            entry.count += 1;
            Counter {
                count: entry.count,
                resets_in: entry.expires - now,
            }
        })
    }

    /// One request under the cell rate `interval` (the time one request uses up) with `tolerance` (how far
    /// ahead of now the schedule may be when a request comes: the burst): `None` when admitted, else how
    /// long to wait. The
    /// entry's expiry is the theoretical arrival time; once it passes, the entry means nothing and goes.
    pub fn admit(&self, key: &str, interval: Duration, tolerance: Duration) -> Option<Duration> {
        self.with_entries(|entries, now| {
            let tat = entries
                .get(key)
                .map(|e| e.expires)
                .filter(|tat| *tat > now)
                .unwrap_or(now);
            let limit = now + tolerance;
            if tat > limit {
                return Some(tat - limit);
            }
            entries.insert(
                key.to_string(),
                Entry {
                    count: 0,
                    expires: tat + interval,
                },
            );
            None
        })
    }

    pub fn refund(&self, key: &str) {
        self.with_entries(|entries, now| {
            if let Some(e) = entries.get_mut(key).filter(|e| e.expires > now) {
                e.count = e.count.saturating_sub(1);
            }
        })
    }

    pub fn delete(&self, key: &str) {
        self.with_entries(|entries, _| entries.remove(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_expire_and_reset() {
        // Long enough that a test thread descheduled on a busy machine still counts twice in time.
        let ttl = Duration::from_millis(500);
        let cache = MemoryCache::default();
        assert_eq!(cache.increment("k", ttl).count, 1);
        assert_eq!(cache.increment("k", ttl).count, 2);
        std::thread::sleep(ttl + Duration::from_millis(50));
        assert_eq!(cache.increment("k", ttl).count, 1);
    }

    #[test]
    fn refunds_take_back_from_live_counters_only() {
        let ttl = Duration::from_secs(60);
        let cache = MemoryCache::default();
        cache.increment("k", ttl);
        cache.increment("k", ttl);
        cache.refund("k");
        assert_eq!(cache.increment("k", ttl).count, 2);
        for _ in 0..3 {
            cache.refund("k");
        }
        assert_eq!(cache.increment("k", ttl).count, 1, "never below zero");
        cache.refund("absent");
        assert_eq!(cache.increment("absent", ttl).count, 1);
    }
}
