//! Settings: built-in defaults ▸ `config/default.toml` ▸ `config/$TANHUI_ENV.toml` ▸ `TANHUI__SECTION__KEY`.
//!
//! A value of the wrong type fails start-up with a message that names its key.

use std::net::IpAddr;

use secrecy::SecretString;
use serde::Deserialize;

/// The defaults ship inside the binary, so it starts anywhere, with or without a `config/` folder.
const BUILT_IN_DEFAULTS: &str = include_str!("../config/default.toml");

/// The largest rate or burst a limit may name: beyond it a limit limits nothing, and the interval
/// between requests (a microsecond at this rate) would round to zero.
pub const MAX_RATE: u32 = 1_000_000;

/// The longest an access token may live: a day.
pub const MAX_ACCESS_TOKEN_TTL_SECS: u64 = 86_400;
/// The longest a refresh token may live: a year.
pub const MAX_REFRESH_TOKEN_TTL_SECS: u64 = 366 * 86_400;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub log: LogSettings,
    pub auth: AuthSettings,
    pub throttle: ThrottleSettings,
    pub ledger: LedgerSettings,
    pub activities: ActivitySettings,
    pub redemptions: RedemptionSettings,
    pub market: MarketSettings,
    pub registry: RegistrySettings,
    pub retention: RetentionSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub body_limit_bytes: usize,
    pub shutdown_timeout_secs: u64,
    pub workers: usize,
    pub trusted_proxies: Vec<IpAddr>,
    /// When set, `/metrics` is served on this port (on `host`) instead of the main one.
    #[serde(default)]
    pub metrics_port: Option<u16>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub pool_size: u32,
    pub connect_timeout_secs: u64,
    pub sqlite_busy_timeout_ms: u64,
    /// A PostgreSQL streaming replica for anonymous, read-only work (docs/scaling.md, "Read replica").
    #[serde(default)]
    pub replica_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    pub url: Option<String>,
    pub key_prefix: String,
    /// The longest a request waits on Redis (a command, a connection) before the fallback answers.
    pub command_timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    pub jwt_secret: Option<SecretString>,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Threads that hash and verify passwords, each holding one argon2 buffer; 0: one per core.
    pub password_threads: usize,
    /// Hashings that may wait for a thread; past this a request is refused with 503 and `Retry-After`.
    pub password_queue: usize,
    /// Key (64 hex characters) that encrypts stored partner and provider secrets.
    pub secrets_key: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSettings {
    /// Failed logins per window for one phone from one client address.
    pub login_failures_per_phone: u64,
    pub login_failures_per_address: u64,
    pub login_window_secs: u64,
    /// Writes (any method but GET and HEAD) one account may make per second, sustained, and at once.
    pub account_writes_per_sec: u32,
    pub account_write_burst: u32,
    /// Signed calls one partner or provider key may make per second, sustained, and at once.
    pub key_requests_per_sec: u32,
    pub key_request_burst: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerSettings {
    pub seal_interval_ms: u64,
    pub seal_max_transfers: i64,
    pub expiry_sweep_interval_ms: u64,
    pub transfer_batch_window_ms: u64,
    pub transfer_batch_max: usize,
    pub transfer_writers: usize,
    pub signing_key: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedemptionSettings {
    pub hold_ttl_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketSettings {
    /// The market's fee, in basis points of what a buyer pays, taken from what the seller receives.
    pub fee_bps: u32,
}

/// The highest market fee the configuration may set: 10 %.
pub const MOST_FEE_BPS: u32 = 1_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    /// The platform's share of a pooled-reduction sale, in basis points of its proceeds; the rest is paid
    /// to the people whose activities the batch holds.
    pub platform_share_bps: u32,
}

/// The highest platform share of a sale: all of it.
pub const MOST_PLATFORM_SHARE_BPS: u32 = 10_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// Days an `Idempotency-Key`'s answer is kept; a retry after that is a new request.
    pub idempotency_days: u32,
    /// Days an activity's raw `data` is kept as posted; after them it is reduced to the fields its
    /// figure is computed from (docs/privacy.md).
    pub activity_data_days: u32,
    /// How often each instance deletes what is past its retention (idempotency records, spent refresh
    /// tokens).
    pub sweep_interval_secs: u64,
}

/// The most clock skew the configuration may allow an `occurred_at` (`activities.future_skew_secs`): so no
/// activity is stored more than this long before it occurred, which the simulation's search by time of
/// arrival relies on.
pub const MOST_FUTURE_SKEW_SECS: i64 = 86_400;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivitySettings {
    pub batch_window_ms: u64,
    pub batch_max: usize,
    pub writers: usize,
    /// Batch requests (500 events at most each) read and worked on at once; more wait their turn.
    pub batches_in_flight: usize,
    pub future_skew_secs: i64,
    pub annual_points_cap: i64,
    /// Grams one event may reduce and still be credited without review.
    pub max_reduction_g_per_event: i64,
}

/// A setting that fails its check: its key and why.
type Checked = Result<(), (&'static str, String)>;

fn fail(key: &'static str, why: &str) -> Checked {
    Err((key, why.to_string()))
}

impl Settings {
    /// Loads the layered configuration from the working directory and the process environment.
    pub fn load() -> Result<Settings, String> {
        let env_name = std::env::var("TANHUI_ENV").ok();
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(
                BUILT_IN_DEFAULTS,
                config::FileFormat::Toml,
            ))
            .add_source(config::File::with_name("config/default").required(false));
        if let Some(env_name) = env_name.filter(|e| !e.is_empty()) {
            builder =
                builder.add_source(config::File::with_name(&format!("config/{env_name}")).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("TANHUI")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("server.trusted_proxies"),
        );
        let settings: Settings = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| format!("configuration: {e}"))?;
        settings.validate()?;
        Ok(settings)
    }

    /// The built-in defaults alone (tests start from these and change what they need).
    pub fn defaults() -> Settings {
        config::Config::builder()
            .add_source(config::File::from_str(
                BUILT_IN_DEFAULTS,
                config::FileFormat::Toml,
            ))
            .build()
            .and_then(|c| c.try_deserialize())
            .expect("built-in defaults deserialize")
    }

    /// Checks that types alone cannot express; each message names its key.
    pub fn validate(&self) -> Result<(), String> {
        self.check_connections()
            .and_then(|()| self.check_auth())
            .and_then(|()| self.check_ledger())
            .and_then(|()| self.check_work())
            .map_err(|(key, why)| format!("configuration: {key}: {why}"))
    }

    /// The database, Redis and the HTTP server.
    fn check_connections(&self) -> Checked {
        crate::db::Backend::from_url(&self.database.url).map_err(|why| ("database.url", why))?;
        if let Some(url) = &self.redis.url {
            if !(url.is_empty() || url.starts_with("redis://") || url.starts_with("rediss://")) {
                return fail("redis.url", "must start with redis:// or rediss://");
            }
        }
        if self.database.pool_size == 0 {
            return fail("database.pool_size", "must be at least 1");
        }
        if !(1..=10_000).contains(&self.redis.command_timeout_ms) {
            return fail("redis.command_timeout_ms", "must be between 1 and 10000");
        }
        if let Some(replica) = self.replica_url() {
            let postgres = crate::db::Backend::Postgres;
            if crate::db::Backend::from_url(replica) != Ok(postgres)
                || crate::db::Backend::from_url(&self.database.url) != Ok(postgres)
            {
                return fail(
                    "database.replica_url",
                    "a replica is for a PostgreSQL primary: postgres://…",
                );
            }
        }
        if self.server.body_limit_bytes < 1024 {
            return fail("server.body_limit_bytes", "must be at least 1024");
        }
        Ok(())
    }

    /// Tokens, password hashing, the secrets key and the login throttle.
    ///
    /// Token lifetimes are bounded: an access token is short-lived by design (every instance keeps the
    /// sessions revoked within one lifetime in memory), and neither may push a time beyond the calendar.
    fn check_auth(&self) -> Checked {
        use secrecy::ExposeSecret;
        if self.auth.access_token_ttl_secs == 0 || self.auth.refresh_token_ttl_secs == 0 {
            return fail("auth.access_token_ttl_secs", "token lifetimes must be positive");
        }
        if self.auth.access_token_ttl_secs > MAX_ACCESS_TOKEN_TTL_SECS {
            return fail(
                "auth.access_token_ttl_secs",
                "an access token lives at most a day",
            );
        }
        if self.auth.refresh_token_ttl_secs > MAX_REFRESH_TOKEN_TTL_SECS {
            return fail(
                "auth.refresh_token_ttl_secs",
                "a refresh token lives at most a year",
            );
        }
        if let Some(secret) = &self.auth.jwt_secret {
            if secret.expose_secret().len() < 32 {
                return fail("auth.jwt_secret", "must be at least 32 bytes");
            }
        }
        let auth = &self.auth;
        if argon2::Params::new(
            auth.argon2_memory_kib,
            auth.argon2_iterations,
            auth.argon2_parallelism,
            None,
        )
        .is_err()
        {
            return fail("auth.argon2_memory_kib", "argon2 parameters are out of range");
        }
        if let Some(key) = &self.auth.secrets_key {
            crate::secrets::SecretBox::from_hex(key.expose_secret())
                .map_err(|why| ("auth.secrets_key", why))?;
        }
        if self.throttle.login_window_secs == 0 {
            return fail("throttle.login_window_secs", "must be positive");
        }
        let t = &self.throttle;
        for (name, value) in [
            ("throttle.account_writes_per_sec", t.account_writes_per_sec),
            ("throttle.account_write_burst", t.account_write_burst),
            ("throttle.key_requests_per_sec", t.key_requests_per_sec),
            ("throttle.key_request_burst", t.key_request_burst),
        ] {
            if !(1..=MAX_RATE).contains(&value) {
                return fail(name, "must be 1 to 1,000,000");
            }
        }
        Ok(())
    }

    /// Sealing, expiry, the signing key and the transfer writers.
    fn check_ledger(&self) -> Checked {
        use secrecy::ExposeSecret;
        if self.ledger.seal_interval_ms == 0 || self.ledger.expiry_sweep_interval_ms == 0 {
            return fail("ledger.seal_interval_ms", "intervals must be positive");
        }
        if self.ledger.seal_max_transfers < 1 {
            return fail("ledger.seal_max_transfers", "must be at least 1");
        }
        if let Some(key) = &self.ledger.signing_key {
            crate::ledger::signing::PlatformKey::from_hex(key.expose_secret())
                .map_err(|why| ("ledger.signing_key", why))?;
        }
        if self.ledger.transfer_batch_max == 0 || self.ledger.transfer_writers == 0 {
            return fail(
                "ledger.transfer_batch_max",
                "transfer_batch_max and transfer_writers must be at least 1",
            );
        }
        Ok(())
    }

    /// Activities, redemptions, the market and retention.
    fn check_work(&self) -> Checked {
        if self.activities.batch_max == 0 || self.activities.writers == 0 {
            return fail("activities.batch_max", "batch_max and writers must be at least 1");
        }
        if self.activities.batches_in_flight == 0 {
            return fail("activities.batches_in_flight", "must be at least 1");
        }
        let most_skew = MOST_FUTURE_SKEW_SECS;
        if !(0..=most_skew).contains(&self.activities.future_skew_secs) {
            return fail(
                "activities.future_skew_secs",
                &format!("must be between 0 and {most_skew} s"),
            );
        }
        if self.activities.annual_points_cap < 0 {
            return fail("activities.annual_points_cap", "must not be negative");
        }
        if self.activities.max_reduction_g_per_event < 1 {
            return fail("activities.max_reduction_g_per_event", "must be at least 1");
        }
        if !(60..=30 * 86_400).contains(&self.redemptions.hold_ttl_secs) {
            return fail("redemptions.hold_ttl_secs", "must be between 60 s and 30 days");
        }
        if self.market.fee_bps > MOST_FEE_BPS {
            return fail(
                "market.fee_bps",
                &format!("must be at most {MOST_FEE_BPS} (10 %)"),
            );
        }
        if self.registry.platform_share_bps > MOST_PLATFORM_SHARE_BPS {
            return fail("registry.platform_share_bps", "must be at most 10000 (all of it)");
        }
        if self.retention.idempotency_days == 0 {
            return fail("retention.idempotency_days", "must be at least 1");
        }
        if self.retention.activity_data_days == 0 {
            return fail("retention.activity_data_days", "must be at least 1");
        }
        if self.retention.sweep_interval_secs == 0 {
            return fail("retention.sweep_interval_secs", "must be positive");
        }
        Ok(())
    }

    /// The Redis URL, treating an empty string as unset.
    pub fn redis_url(&self) -> Option<&str> {
        self.redis.url.as_deref().filter(|u| !u.is_empty())
    }

    pub fn replica_url(&self) -> Option<&str> {
        self.database.replica_url.as_deref().filter(|u| !u.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_embedded() {
        let s = Settings::defaults();
        assert_eq!(s.server.port, 8080);
        assert_eq!(s.database.url, "sqlite://data/tanhui.db");
        assert!(s.redis_url().is_none());
        s.validate().unwrap();
    }

    #[test]
    fn a_bad_url_names_its_key() {
        let mut s = Settings::defaults();
        s.database.url = "mysql://x".into();
        assert!(s.validate().unwrap_err().contains("database.url"));
    }

    #[test]
    fn the_bound_on_one_events_reduction_is_positive() {
        let mut s = Settings::defaults();
        assert_eq!(s.activities.max_reduction_g_per_event, 100_000);
        s.activities.max_reduction_g_per_event = 0;
        let why = s.validate().unwrap_err();
        assert!(why.contains("activities.max_reduction_g_per_event"), "{why}");
    }

    #[test]
    fn clock_skew_is_bounded_by_what_the_simulation_searches() {
        let mut s = Settings::defaults();
        s.activities.future_skew_secs = MOST_FUTURE_SKEW_SECS;
        s.validate().unwrap();
        for skew in [-1, MOST_FUTURE_SKEW_SECS + 1] {
            s.activities.future_skew_secs = skew;
            assert!(s.validate().unwrap_err().contains("activities.future_skew_secs"));
        }
    }
}
