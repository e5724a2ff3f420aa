use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::AsyncCommands;

use super::{CacheError, Counter};

/// Redis-backed counters and markers, shared by every instance. Keys carry a configurable prefix so
/// several deployments (or test runs) can share one Redis.
#[derive(Clone)]
pub struct RedisCache {
    conn: ConnectionManager,
    prefix: String,
}

fn err(e: redis::RedisError) -> CacheError {
    crate::metrics::REDIS_ERRORS.inc();
    CacheError(e.to_string())
}

/// INCR and set the expiry on the first increment, atomically, and report the remaining time.
const INCREMENT: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}
";

/// DECR on a key that expired would create it without an expiry, at -1: only a live, positive counter is
/// decremented (DECR keeps its expiry).
const REFUND: &str = r"
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then redis.call('DECR', KEYS[1]) end
return 0
";

/// GCRA on the Redis server's clock (instances' clocks may differ): the key holds the theoretical arrival
/// time in microseconds; answers 0 when admitted, else the microseconds to wait.
const ADMIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat > now + tolerance then return tat - now - tolerance end
local next = tat + interval
redis.call('SET', KEYS[1], string.format('%d', next), 'PX', math.floor((next - now) / 1000) + 1)
return 0
";

impl RedisCache {
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<RedisCache> {
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("redis.url: {e}"))?;
        // Bounded waits: a Redis that stops answering must give 503s, not hang requests.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to Redis: {e}"))?;
        Ok(RedisCache {
            conn,
            prefix: prefix.to_string(),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    pub async fn increment(&self, key: &str, window: Duration) -> Result<Counter, CacheError> {
        let mut conn = self.conn.clone();
        let (count, pttl): (u64, i64) = redis::Script::new(INCREMENT)
            .key(self.key(key))
            .arg(window.as_millis() as u64)
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        Ok(Counter {
            count,
            resets_in: Duration::from_millis(pttl.max(0) as u64),
        })
    }

    pub async fn refund(&self, key: &str) -> Result<(), CacheError> {
        let mut conn = self.conn.clone();
        redis::Script::new(REFUND)
            .key(self.key(key))
            .invoke_async::<()>(&mut conn)
            .await
            .map_err(err)
    }

    pub async fn delete(&self, key: &str) -> Result<(), CacheError> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(self.key(key)).await.map_err(err)
    }

    pub async fn insert_once(&self, key: &str, ttl: Duration) -> Result<bool, CacheError> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .query_async(&mut conn)
            .await
            .map_err(err)?;
        Ok(set.is_some())
    }

    pub async fn admit(
        &self,
        key: &str,
        interval: Duration,
        tolerance: Duration,
    ) -> Result<Option<Duration>, CacheError> {
        let mut conn = self.conn.clone();
        let wait_micros: u64 = redis::Script::new(ADMIT)
            .key(self.key(key))
            .arg(interval.as_micros() as u64)
            .arg(tolerance.as_micros() as u64)
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        Ok((wait_micros > 0).then(|| Duration::from_micros(wait_micros)))
    }

    pub async fn ping(&self) -> Result<(), CacheError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(err)
    }
}
