//! Retirement certificates: compact JWTs (`alg: EdDSA`, the platform key's `kid`) that anyone verifies
//! offline against `/.well-known/jwks.json`, as vouchers are.

use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};

use super::store::RetirementRow;
use crate::ledger::signing::PlatformKey;

/// What a certificate states: the retirement as the public registry lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateClaims {
    pub iss: String,
    /// `retirement:{id}`.
    pub sub: String,
    pub retirement_id: String,
    pub serial: String,
    pub points: i64,
    pub reduction_g: i64,
    pub beneficiary: String,
    pub reason: String,
    pub period_from: Option<String>,
    pub period_to: Option<String>,
    /// When the points were retired (Unix seconds). A certificate does not expire: a retirement is final.
    pub iat: i64,
}

/// The certificate of a retirement. Ed25519 signatures are deterministic: the same retirement always
/// has the same certificate, so it is made again on each read rather than stored.
pub fn issue(key: &PlatformKey, r: &RetirementRow, serial: &str) -> String {
    let claims = CertificateClaims {
        iss: crate::redemptions::voucher::ISSUER.into(),
        sub: format!("retirement:{}", r.id),
        retirement_id: r.id.to_string(),
        serial: serial.to_string(),
        points: r.points,
        reduction_g: r.reduction_g,
        beneficiary: r.beneficiary.clone(),
        reason: r.reason.clone(),
        period_from: r.period_from.clone(),
        period_to: r.period_to.clone(),
        iat: r.retired_at.and_utc().timestamp(),
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.key_id());
    jsonwebtoken::encode(&header, &claims, &key.jwt_encoding_key()).expect("serializable claims always sign")
}
