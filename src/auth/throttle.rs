//! Failed-login throttling per (phone, client address) and per client address.
//!
//! A phone's failures are counted per address they came from: guesses sent from elsewhere never lock the
//! owner out of their own address, while each address still gets only a few guesses at any one phone and
//! a bounded number across all phones.

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
    ApiError::unavailable_because("the login throttle's cache is unavailable", e)
}

impl LoginThrottle {
    pub fn new(cache: Cache, settings: ThrottleSettings) -> LoginThrottle {
        LoginThrottle { cache, settings }
    }

    /// The counter of one phone's failures from one address. Phones are personal data: the key holds a
    /// digest, not the number. A request without a known address counts under `-`.
    fn phone_key(phone: &str, ip: Option<IpAddr>) -> String {
        let digest = Sha256::digest(phone.as_bytes());
        let address = ip.map_or_else(|| "-".to_string(), |ip| ip.to_string());
        format!("login-fail:phone-addr:{}:{address}", hex::encode(&digest[..12]))
    }

    fn address_key(ip: IpAddr) -> String {
        format!("login-fail:addr:{ip}")
    }

    fn keys(phone: &str, ip: Option<IpAddr>) -> Vec<(String, u64)> {
        let mut keys = vec![(Self::phone_key(phone, ip), 0)];
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

    /// Takes one attempt from the (phone, address) pair's and the address's allowances before the password is checked,
    /// so that guesses sent together cannot all pass a check made before any of them failed. 429, with
    /// the time until that allowance renews, when either is spent; a refused attempt gives back what it
    /// took, since it checks no password. A failed attempt keeps its slots; [`Self::succeeded`] returns them.
    pub async fn attempt(&self, phone: &str, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let window = Duration::from_secs(self.settings.login_window_secs);
        let mut taken: Vec<String> = Vec::new();
        for (key, which) in Self::keys(phone, ip) {
            let counter = self.cache.increment(&key, window).await.map_err(unavailable)?;
            if counter.count > self.limit(which) {
                taken.push(key);
                for key in &taken {
                    self.cache.refund(key).await.map_err(unavailable)?;
                }
                return Err(ApiError::rate_limited(counter.resets_in.as_secs() + 1));
            }
            taken.push(key);
        }
        Ok(())
    }

    /// An attempt that checked no password (refused before its check) gives back what it took.
    pub async fn refund(&self, phone: &str, ip: Option<IpAddr>) -> Result<(), ApiError> {
        for (key, _) in Self::keys(phone, ip) {
            self.cache.refund(&key).await.map_err(unavailable)?;
        }
        Ok(())
    }

    /// A sign-in succeeded: the phone's failures from this address are forgotten and the address gets its
    /// slot back, so that many people signing in from one address (an office) do not lock it.
    pub async fn succeeded(&self, phone: &str, ip: Option<IpAddr>) -> Result<(), ApiError> {
        self.cache
            .delete(&Self::phone_key(phone, ip))
            .await
            .map_err(unavailable)?;
        if let Some(ip) = ip {
            self.cache
                .refund(&Self::address_key(ip))
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }
}
