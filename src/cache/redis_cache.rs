use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::AsyncCommands;

use super::{CacheError, Counter};

/// How long readiness waits for Redis's PING.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the breaker stays open after a failure: calls in that time fail at once (and take the
/// fallback) instead of each waiting out a timeout; the first call after it tries Redis again.
const OPEN_FOR: Duration = Duration::from_secs(1);

/// Redis-backed counters and markers, shared by every instance. Keys carry a configurable prefix so
/// several deployments (or test runs) can share one Redis.
///
/// A Redis that is down must cost a request at most `redis.command_timeout_ms` (100 ms: a healthy round
/// trip is well under a millisecond), once a second: the connection
/// is made in the background (an instance starts without Redis, and no request waits for a connect),
/// every command is bounded, and a failure opens a breaker for [`OPEN_FOR`].
#[derive(Clone)]
pub struct RedisCache {
    client: redis::Client,
    shared: Arc<Shared>,
    prefix: String,
    /// The longest a request waits on Redis for one command or a connection.
    timeout: Duration,
}

struct Shared {
    conn: Mutex<Option<ConnectionManager>>,
    connecting: AtomicBool,
    /// Milliseconds after `epoch` until which the breaker is open (0: closed).
    open_until: AtomicU64,
    epoch: Instant,
}

impl Shared {
    fn millis(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn is_open(&self) -> bool {
        self.millis() < self.open_until.load(Ordering::Relaxed)
    }

    fn trip(&self, why: &str) {
        let until = self.millis() + OPEN_FOR.as_millis() as u64;
        let before = self.open_until.swap(until, Ordering::Relaxed);
        // Logged once per spell of failures, not once per request.
        if before == 0 {
            tracing::warn!(error = why, "Redis unavailable; using the fallback");
        }
    }

    fn succeeded(&self) {
        if self.open_until.swap(0, Ordering::Relaxed) != 0 {
            tracing::info!("Redis answers again");
        }
    }
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
    /// Fails only on a malformed URL. A reachable Redis is connected before this returns (so the first
    /// requests already share it); an unreachable one is connected to later, in the background.
    pub async fn connect(url: &str, prefix: &str, timeout: Duration) -> anyhow::Result<RedisCache> {
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("redis.url: {e}"))?;
        let cache = RedisCache {
            client,
            shared: Arc::new(Shared {
                conn: Mutex::new(None),
                connecting: AtomicBool::new(false),
                open_until: AtomicU64::new(0),
                epoch: Instant::now(),
            }),
            prefix: prefix.to_string(),
            timeout,
        };
        Self::establish(cache.client.clone(), cache.shared.clone(), timeout).await;
        Ok(cache)
    }

    /// One attempt at a connection, kept when it succeeds; a failure opens the breaker.
    async fn establish(client: redis::Client, shared: Arc<Shared>, timeout: Duration) {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout)
            .set_number_of_retries(1);
        // The connection timeout bounds each TCP connect; this bounds the handshake and retries too.
        let attempt = tokio::time::timeout(timeout * 5, ConnectionManager::new_with_config(client, config));
        match attempt.await {
            Ok(Ok(conn)) => {
                *shared.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn);
                shared.succeeded();
            }
            Ok(Err(e)) => shared.trip(&e.to_string()),
            Err(_) => shared.trip("no connection within the timeout"),
        }
    }

    /// One connection attempt at a time, off the request path.
    fn reconnect_in_background(&self) {
        if self.shared.connecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let (client, shared, timeout) = (self.client.clone(), self.shared.clone(), self.timeout);
        tokio::spawn(async move {
            Self::establish(client, shared.clone(), timeout).await;
            shared.connecting.store(false, Ordering::Release);
        });
    }

    /// Runs one command within the timeout, or fails at once while the breaker is open or no
    /// connection is made yet.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, CacheError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, CacheError>>,
    {
        if self.shared.is_open() {
            return Err(CacheError("circuit open".into()));
        }
        self.call_within(self.timeout, f).await
    }

    /// As [`Self::call`], whatever the breaker says, waiting up to `timeout`.
    async fn call_within<T, F, Fut>(&self, timeout: Duration, f: F) -> Result<T, CacheError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, CacheError>>,
    {
        let conn = self.shared.conn.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(conn) = conn else {
            self.reconnect_in_background();
            return Err(CacheError("not connected".into()));
        };
        let answer = match tokio::time::timeout(timeout, f(conn)).await {
            Ok(answer) => answer,
            Err(_) => Err(CacheError(format!("no answer within {timeout:?}"))),
        };
        match &answer {
            Ok(_) => self.shared.succeeded(),
            Err(e) => self.shared.trip(&e.0),
        }
        answer
    }

    fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    pub async fn increment(&self, key: &str, window: Duration) -> Result<Counter, CacheError> {
        let script = redis::Script::new(INCREMENT);
        let mut invocation = script.key(self.key(key));
        invocation.arg(window.as_millis() as u64);
        let (count, pttl): (u64, i64) = self
            .call(|mut conn| async move { invocation.invoke_async(&mut conn).await.map_err(err) })
            .await?;
        Ok(Counter {
            count,
            resets_in: Duration::from_millis(pttl.max(0) as u64),
        })
    }

    pub async fn refund(&self, key: &str) -> Result<(), CacheError> {
        let script = redis::Script::new(REFUND);
        let invocation = script.key(self.key(key));
        self.call(|mut conn| async move { invocation.invoke_async::<()>(&mut conn).await.map_err(err) })
            .await
    }

    pub async fn delete(&self, key: &str) -> Result<(), CacheError> {
        let key = self.key(key);
        self.call(|mut conn| async move { conn.del::<_, ()>(key).await.map_err(err) })
            .await
    }

    pub async fn admit(
        &self,
        key: &str,
        interval: Duration,
        tolerance: Duration,
    ) -> Result<Option<Duration>, CacheError> {
        let script = redis::Script::new(ADMIT);
        let mut invocation = script.key(self.key(key));
        invocation
            .arg(interval.as_micros() as u64)
            .arg(tolerance.as_micros() as u64);
        let wait_micros: u64 = self
            .call(|mut conn| async move { invocation.invoke_async(&mut conn).await.map_err(err) })
            .await?;
        Ok((wait_micros > 0).then(|| Duration::from_micros(wait_micros)))
    }

    /// Readiness's question, asked past an open breaker and with longer to answer than a request's
    /// command: a Redis that is merely slow on a busy machine is not reported down, and an answer closes
    /// the breaker again.
    pub async fn ping(&self) -> Result<(), CacheError> {
        self.call_within(PING_TIMEOUT, |mut conn| async move {
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map(|_| ())
                .map_err(err)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After a failed connect, calls fail at once (the fallback answers) instead of each waiting out a
    /// connect; the process-level behaviour is in `tests/api/faults.rs`.
    #[tokio::test]
    async fn an_unreachable_redis_opens_the_breaker() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let timeout = Duration::from_millis(100);
        let cache = RedisCache::connect(&format!("redis://127.0.0.1:{port}"), "t:", timeout)
            .await
            .expect("a well-formed URL is enough to start");
        let refused = cache.increment("k", Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(refused.0, "circuit open");
        assert!(cache.ping().await.is_err());
    }
}
