//! Vouchers: compact JWTs (`alg: EdDSA`) signed with the platform's Ed25519 key, which a gate or a bank
//! verifies offline against `/.well-known/jwks.json`.

use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::store::RedemptionRow;
use crate::ledger::signing::PlatformKey;

pub const ISSUER: &str = "tanhui";

/// What a voucher states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoucherClaims {
    pub iss: String,
    /// `partner:{id}`: only that partner may capture it.
    pub aud: String,
    /// The redemption id.
    pub sub: String,
    pub offer_id: String,
    pub partner_id: String,
    pub points: i64,
    /// What the benefit is worth in fen, when the offer says.
    pub value_fen: Option<i64>,
    pub iat: i64,
    /// A margin before the hold expires (see [`acceptance_margin_secs`]); the voucher is worthless after it.
    pub exp: i64,
}

/// How long before its hold expires a voucher stops verifying: five minutes, or a tenth of a shorter
/// hold. A gate checks a voucher offline, often with a JWT library's default leeway (a minute), and
/// captures it afterwards; a voucher valid to the hold's last second could be accepted at a gate and
/// then find its hold expired and the points gone back.
fn acceptance_margin_secs(r: &RedemptionRow) -> i64 {
    let hold_secs = (r.expires_at - r.created_at).num_seconds().max(0);
    (hold_secs / SHORT_HOLD_MARGIN_DIVISOR).min(MAX_ACCEPTANCE_MARGIN_SECS)
}

/// The margin of a usual hold: five minutes covers a gate's leeway (a minute) and its capture call.
const MAX_ACCEPTANCE_MARGIN_SECS: i64 = 300;

/// A hold shorter than fifty minutes keeps nine tenths of itself usable rather than losing five minutes.
const SHORT_HOLD_MARGIN_DIVISOR: i64 = 10;

pub fn audience(partner_id: i64) -> String {
    format!("partner:{partner_id}")
}

/// The voucher of a redemption. Ed25519 signatures are deterministic, so the same redemption always
/// gets the same voucher: it can be shown again without being stored.
pub fn issue(key: &PlatformKey, r: &RedemptionRow) -> String {
    let claims = VoucherClaims {
        iss: ISSUER.into(),
        aud: audience(r.partner_id),
        sub: r.id.to_string(),
        offer_id: r.offer_id.to_string(),
        partner_id: r.partner_id.to_string(),
        points: r.points,
        value_fen: r.value_fen,
        iat: r.created_at.and_utc().timestamp(),
        exp: r.expires_at.and_utc().timestamp() - acceptance_margin_secs(r),
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.key_id());
    jsonwebtoken::encode(&header, &claims, &key.jwt_encoding_key()).expect("serializable claims always sign")
}

#[derive(Debug, PartialEq, Eq)]
pub enum VoucherError {
    /// Not a voucher of this platform: malformed, or its signature does not verify.
    Invalid,
    Expired,
    /// Valid, but for another partner.
    OtherPartner,
}

/// Checks a voucher presented by `partner_id` at `now` (Unix seconds) with the public key alone, as a
/// gate would offline. The expiry is checked against `now` rather than the library's own clock, and
/// before the audience, as the library did.
pub fn verify(
    public_key_base64url: &str,
    token: &str,
    partner_id: i64,
    now: i64,
) -> Result<VoucherClaims, VoucherError> {
    let key = DecodingKey::from_ed_components(public_key_base64url).map_err(|_| VoucherError::Invalid)?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.leeway = 0;
    validation.set_issuer(&[ISSUER]);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<VoucherClaims>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|_| VoucherError::Invalid)?;
    if claims.exp < now {
        Err(VoucherError::Expired)
    } else if claims.aud != audience(partner_id) {
        Err(VoucherError::OtherPartner)
    } else {
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::clock::Clock;
    use crate::redemptions::store::RedemptionStatus;

    fn now() -> i64 {
        Clock::system().unix_seconds()
    }

    fn redemption(expires_in: Duration) -> RedemptionRow {
        let now = Clock::system().now_naive();
        RedemptionRow {
            id: 7,
            offer_id: 3,
            partner_id: 2,
            account_id: 9,
            user_id: 4,
            points: 500,
            value_fen: Some(200),
            status: RedemptionStatus::Held,
            hold_id: Some(11),
            stock_bucket: Some(0),
            resolution_id: None,
            expires_at: now + expires_in,
            created_at: now,
            resolved_at: None,
            resolved_by: None,
        }
    }

    #[test]
    fn a_voucher_verifies_with_the_public_key_for_its_partner_only() {
        let key = PlatformKey::from_hex(&"42".repeat(32)).unwrap();
        let token = issue(&key, &redemption(Duration::hours(1)));
        let claims = verify(&key.public_key_base64url(), &token, 2, now()).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.points, claims.value_fen),
            ("7", 500, Some(200))
        );
        assert_eq!(issue(&key, &redemption(Duration::hours(1))).len(), token.len());
        assert_eq!(
            verify(&key.public_key_base64url(), &token, 5, now()),
            Err(VoucherError::OtherPartner)
        );
    }

    #[test]
    fn a_voucher_stops_verifying_before_its_hold_expires() {
        let key = PlatformKey::from_hex(&"42".repeat(32)).unwrap();
        for (hold, margin) in [(Duration::hours(24), 300), (Duration::minutes(10), 60)] {
            let r = redemption(hold);
            let claims = verify(&key.public_key_base64url(), &issue(&key, &r), 2, now()).unwrap();
            assert_eq!(claims.exp, r.expires_at.and_utc().timestamp() - margin);
        }
        // A short hold keeps a tenth of itself.
        let r = redemption(Duration::seconds(20));
        assert_eq!(
            verify(&key.public_key_base64url(), &issue(&key, &r), 2, now()).map(|c| c.exp),
            Ok(r.expires_at.and_utc().timestamp() - 2)
        );
    }

    #[test]
    fn forged_and_expired_vouchers_are_refused() {
        let key = PlatformKey::from_hex(&"42".repeat(32)).unwrap();
        let other = PlatformKey::from_hex(&"43".repeat(32)).unwrap();
        let token = issue(&other, &redemption(Duration::hours(1)));
        assert_eq!(
            verify(&key.public_key_base64url(), &token, 2, now()),
            Err(VoucherError::Invalid)
        );
        let mut tampered = issue(&key, &redemption(Duration::hours(1)));
        tampered.insert(tampered.len() / 2, 'x');
        assert_eq!(
            verify(&key.public_key_base64url(), &tampered, 2, now()),
            Err(VoucherError::Invalid)
        );
        assert_eq!(
            verify(&key.public_key_base64url(), "garbage", 2, now()),
            Err(VoucherError::Invalid)
        );
        let expired = issue(&key, &redemption(Duration::seconds(-5)));
        assert_eq!(
            verify(&key.public_key_base64url(), &expired, 2, now()),
            Err(VoucherError::Expired)
        );
    }
}
