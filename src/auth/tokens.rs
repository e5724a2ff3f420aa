//! Short-lived access tokens: HS256 JWTs. Only HS256 is accepted, so `alg: none` or a switched
//! algorithm never verifies.

use chrono::Utc;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::Role;
use crate::error::ApiError;
use crate::error::ErrorCode;

const ISSUER: &str = "tanhui";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Wallet account id.
    pub acc: String,
    pub roles: Vec<Role>,
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
        validation.leeway = 5;
        validation.set_issuer(&[ISSUER]);
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
        user_id: i64,
        account_id: i64,
        region: &str,
        roles: Vec<Role>,
    ) -> Result<String, ApiError> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            acc: account_id.to_string(),
            roles,
            reg: region.to_string(),
            iss: ISSUER.to_string(),
            iat: now,
            exp: now + self.ttl_secs as i64,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(ApiError::internal)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => ApiError::new(
                    actix_web::http::StatusCode::UNAUTHORIZED,
                    ErrorCode::TokenExpired,
                    "access token expired",
                ),
                _ => ApiError::unauthorized("invalid access token"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tampering() {
        let issuer = TokenIssuer::new(&[7u8; 32], 60);
        let token = issuer.issue(1, 2, "440300", vec![Role::User]).unwrap();
        let claims = issuer.verify(&token).unwrap();
        assert_eq!(claims.user_id().unwrap(), 1);
        assert_eq!(claims.account_id().unwrap(), 2);
        let other = TokenIssuer::new(&[8u8; 32], 60);
        assert_eq!(other.verify(&token).unwrap_err().code, ErrorCode::Unauthorized);
    }
}
