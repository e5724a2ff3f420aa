//! Short-lived shared state: login throttles, rate limits, request nonces.
//!
//! With Redis configured every instance sees the same values; without it they live in this process,
//! which is right for the single-instance embedded default. Nothing here must survive a restart.
//!
//! A configured Redis that does not answer (down, unreachable, or its breaker open) is not an outage:
//! the login throttle and the binding-code allowance go to the database every instance shares
//! (`cache_entries`), so password guessing stays refused; rate limits go to this process's memory
//! (they admit when unsure anyway). Nonces never live here: see `auth::signature`. See
//! docs/operations.md, "Faults".

mod database;
mod memory;
mod redis_cache;

use std::time::Duration;

pub use database::DatabaseCache;
pub use memory::MemoryCache;
pub use redis_cache::RedisCache;

use crate::config::RedisSettings;
use crate::db::Db;

#[derive(Clone)]
pub enum Cache {
    Memory(MemoryCache),
    Redis(Box<Shared>),
}

/// Redis with what stands in for it while it does not answer.
#[derive(Clone)]
pub struct Shared {
    redis: RedisCache,
    database: DatabaseCache,
    local: MemoryCache,
}

/// A counter's value and how long until it resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub count: u64,
    pub resets_in: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("cache unavailable: {0}")]
pub struct CacheError(pub String);

impl Cache {
    /// Redis when a URL is given (connected in the background: an unreachable Redis does not stop the
    /// start, only a malformed URL does), falling back to `db`; else an in-process cache.
    pub async fn connect(settings: &RedisSettings, db: &Db) -> anyhow::Result<Cache> {
        let url = settings.url.as_deref().filter(|u| !u.is_empty());
        match url {
            Some(url) => Ok(Cache::Redis(Box::new(Shared {
                redis: RedisCache::connect(
                    url,
                    &settings.key_prefix,
                    Duration::from_millis(settings.command_timeout_ms),
                )
                .await?,
                database: DatabaseCache::new(db.clone()),
                local: MemoryCache::default(),
            }))),
            None => Ok(Cache::Memory(MemoryCache::default())),
        }
    }

    pub fn is_shared(&self) -> bool {
        matches!(self, Cache::Redis(_))
    }

    /// Adds one to a counter that lives `window` from its first increment.
    pub async fn increment(&self, key: &str, window: Duration) -> Result<Counter, CacheError> {
        match self {
            Cache::Memory(m) => Ok(m.increment(key, window)),
            Cache::Redis(s) => match s.redis.increment(key, window).await {
                Ok(counter) => Ok(counter),
                Err(_) => s.database.increment(key, window).await,
            },
        }
    }

    /// Takes one back from a live counter (never below zero; an expired or absent one stays absent).
    pub async fn refund(&self, key: &str) -> Result<(), CacheError> {
        match self {
            Cache::Memory(m) => {
                m.refund(key);
                Ok(())
            }
            Cache::Redis(s) => match s.redis.refund(key).await {
                Ok(()) => Ok(()),
                Err(_) => s.database.refund(key).await,
            },
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), CacheError> {
        match self {
            Cache::Memory(m) => {
                m.delete(key);
                Ok(())
            }
            Cache::Redis(s) => match s.redis.delete(key).await {
                Ok(()) => Ok(()),
                Err(_) => s.database.delete(key).await,
            },
        }
    }

    /// One request against a generic cell rate limit on `key`: `None` when admitted, else how long until
    /// the next one would be.
    pub async fn admit(
        &self,
        key: &str,
        interval: Duration,
        tolerance: Duration,
    ) -> Result<Option<Duration>, CacheError> {
        match self {
            Cache::Memory(m) => Ok(m.admit(key, interval, tolerance)),
            Cache::Redis(s) => match s.redis.admit(key, interval, tolerance).await {
                Ok(wait) => Ok(wait),
                Err(_) => Ok(s.local.admit(key, interval, tolerance)),
            },
        }
    }

    /// Whether Redis itself answers (the fallback keeps the service up, but without Redis an instance
    /// is not ready: readiness says so).
    pub async fn ping(&self) -> Result<(), CacheError> {
        match self {
            Cache::Memory(_) => Ok(()),
            Cache::Redis(s) => s.redis.ping().await,
        }
    }
}
