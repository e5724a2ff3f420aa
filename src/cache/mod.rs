//! Short-lived shared state: login throttles, rate limits, request nonces.
//!
//! With Redis configured every instance sees the same values; without it they live in this process,
//! which is right for the single-instance embedded default. Nothing here must survive a restart.

mod memory;
mod redis_cache;

use std::time::Duration;

pub use memory::MemoryCache;
pub use redis_cache::RedisCache;

#[derive(Clone)]
pub enum Cache {
    Memory(MemoryCache),
    Redis(RedisCache),
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
    /// Connects to Redis when a URL is given (failing with Redis's own error), else an in-process cache.
    pub async fn connect(url: Option<&str>, key_prefix: &str) -> anyhow::Result<Cache> {
        match url {
            Some(url) => Ok(Cache::Redis(RedisCache::connect(url, key_prefix).await?)),
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
            Cache::Redis(r) => r.increment(key, window).await,
        }
    }

    /// Takes one back from a live counter (never below zero; an expired or absent one stays absent).
    pub async fn refund(&self, key: &str) -> Result<(), CacheError> {
        match self {
            Cache::Memory(m) => {
                m.refund(key);
                Ok(())
            }
            Cache::Redis(r) => r.refund(key).await,
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), CacheError> {
        match self {
            Cache::Memory(m) => {
                m.delete(key);
                Ok(())
            }
            Cache::Redis(r) => r.delete(key).await,
        }
    }

    /// Sets `key` only if it is absent; true when this call set it (a nonce seen for the first time).
    pub async fn insert_once(&self, key: &str, ttl: Duration) -> Result<bool, CacheError> {
        match self {
            Cache::Memory(m) => Ok(m.insert_once(key, ttl)),
            Cache::Redis(r) => r.insert_once(key, ttl).await,
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
            Cache::Redis(r) => r.admit(key, interval, tolerance).await,
        }
    }

    pub async fn ping(&self) -> Result<(), CacheError> {
        match self {
            Cache::Memory(_) => Ok(()),
            Cache::Redis(r) => r.ping().await,
        }
    }
}
