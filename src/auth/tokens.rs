//! Short-lived access tokens: HS256 JWTs. Only HS256 is accepted, so `alg: none` or a switched
//! algorithm never verifies.
//!
//! jsonwebtoken checks the signature and that the claims are present; expiry is checked here against
//! the caller's clock (jsonwebtoken would read the system time), then the issuer, in jsonwebtoken's order.

use chrono::{DateTime, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::Role;
use crate::error::ApiError;

const ISSUER: &str = "tanhui";

/// Seconds past `exp` a token is still accepted: covers clock drift between instances.
pub const EXPIRY_LEEWAY_SECS: i64 = 5;

/// Why an access token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("access token expired")]
    Expired,
    #[error("invalid access token")]
    Invalid,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Wallet account id.
    pub acc: String,
    pub roles: Vec<Role>,
    /// The session (refresh-token family) the token was issued to, so that ending the session ends it.
    /// Required: a token without one could not be revoked.
    pub sid: String,
    /// Home region, so the hot path needs no lookup to default an activity's region.
    #[serde(default)]
    pub reg: String,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
}

impl Claims {
    pub fn user_id(&self) -> Result<i64, ApiError> {
        self.sub
            .parse()
            .map_err(|_| ApiError::unauthorized("invalid token"))
    }

    pub fn account_id(&self) -> Result<i64, ApiError> {
        self.acc
            .parse()
            .map_err(|_| ApiError::unauthorized("invalid token"))
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[derive(Clone)]
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: u64,
}

impl TokenIssuer {
    pub fn new(secret: &[u8], ttl_secs: u64) -> TokenIssuer {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        TokenIssuer {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs,
        }
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    pub fn issue(
        &self,
        now: DateTime<Utc>,
        user_id: i64,
        account_id: i64,
        session_id: &str,
        region: &str,
        roles: Vec<Role>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = now.timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            acc: account_id.to_string(),
            roles,
            sid: session_id.to_string(),
            reg: region.to_string(),
            iss: ISSUER.to_string(),
            iat: now,
            exp: now + self.ttl_secs as i64,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The claims of a token signed here, unexpired at `now` (give or take the leeway).
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, TokenError> {
        let claims = decode::<serde_json::Value>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?
            .claims;
        // Present and a whole number of seconds: jsonwebtoken refused the token otherwise.
        let exp = claims["exp"].as_i64().ok_or(TokenError::Invalid)?;
        if exp < now.timestamp() - EXPIRY_LEEWAY_SECS {
            return Err(TokenError::Expired);
        }
        if claims["iss"] != ISSUER {
            return Err(TokenError::Invalid);
        }
        serde_json::from_value(claims).map_err(|_| TokenError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tampering() {
        let now = crate::clock::Clock::system().now();
        let issuer = TokenIssuer::new(&[7u8; 32], 60);
        let token = issuer.issue(now, 1, 2, "s", "440300", vec![Role::User]).unwrap();
        let claims = issuer.verify(&token, now).unwrap();
        assert_eq!(claims.user_id().unwrap(), 1);
        assert_eq!(claims.account_id().unwrap(), 2);
        assert_eq!(claims.sid, "s");
        let other = TokenIssuer::new(&[8u8; 32], 60);
        assert_eq!(other.verify(&token, now).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn expiry_is_read_from_the_given_time_with_the_leeway() {
        let issued = crate::clock::Clock::system().now();
        let issuer = TokenIssuer::new(&[7u8; 32], 60);
        let token = issuer
            .issue(issued, 1, 2, "s", "440300", vec![Role::User])
            .unwrap();
        let last = issued + chrono::Duration::seconds(60 + EXPIRY_LEEWAY_SECS);
        assert!(issuer.verify(&token, last).is_ok());
        let late = issuer.verify(&token, last + chrono::Duration::seconds(1));
        assert_eq!(late.unwrap_err(), TokenError::Expired);
    }
}
