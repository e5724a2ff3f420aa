//! Failed-login throttling per phone and per client address.

use std::net::IpAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::cache::{Cache, CacheError};
use crate::config::ThrottleSettings;
use crate::error::ApiError;

#[derive(Clone)]
pub struct LoginThrottle {
    cache: Cache,
    settings: ThrottleSettings,
}

fn unavailable(e: CacheError) -> ApiError {
    ApiError::unavailable(e.to_string())
}

impl LoginThrottle {
    pub fn new(cache: Cache, settings: ThrottleSettings) -> LoginThrottle {
        LoginThrottle { cache, settings }
    }

    /// Phones are personal data: the key holds a digest, not the number.
    fn phone_key(phone: &str) -> String {
        let digest = Sha256::digest(phone.as_bytes());
        format!("login-fail:phone:{}", hex::encode(&digest[..12]))
    }

    fn address_key(ip: IpAddr) -> String {
        format!("login-fail:addr:{ip}")
    }

    fn keys(phone: &str, ip: Option<IpAddr>) -> Vec<(String, u64)> {
        let mut keys = vec![(Self::phone_key(phone), 0)];
        if let Some(ip) = ip {
            keys.push((Self::address_key(ip), 1));
        }
        keys
    }

    fn limit(&self, which: u64) -> u64 {
        if which == 0 {
            self.settings.login_failures_per_phone
        } else {
            self.settings.login_failures_per_address
        }
    }

    /// 429 with the time until the fullest counter resets, when the phone or the address is over its limit.
    pub async fn check(&self, phone: &str, ip: Option<IpAddr>) -> Result<(), ApiError> {
        for (key, which) in Self::keys(phone, ip) {
            let counter = self.cache.counter(&key).await.map_err(unavailable)?;
            if counter.count >= self.limit(which) {
                return Err(ApiError::rate_limited(counter.resets_in.as_secs() + 1));
            }
        }
        Ok(())
    }

    pub async fn record_failure(&self, phone: &str, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let window = Duration::from_secs(self.settings.login_window_secs);
        for (key, _) in Self::keys(phone, ip) {
            self.cache.increment(&key, window).await.map_err(unavailable)?;
        }
        Ok(())
    }

    pub async fn record_success(&self, phone: &str) -> Result<(), ApiError> {
        self.cache
            .delete(&Self::phone_key(phone))
            .await
            .map_err(unavailable)
    }
}
