//! Trip claims shared between carbon-inclusive platforms: an operator's code, its own id of a trip, and
//! the claim id every platform computes alike from the two, so that one trip is credited once.
//!
//! `claim id = lowercase hex SHA-256("tanhui-claim-v1\n" + operator_code + "\n" + trip_ref)`. Both parts
//! are plain ASCII (see [`TripRef`]): hashing bytes that two platforms could write differently (Unicode
//! normalisation, a trimmed space) would give one trip two claims.

use sha2::{Digest, Sha256};

/// What every claim's preimage starts with: a version, so another scheme can never collide with this one.
const CLAIM_PREFIX: &str = "tanhui-claim-v1\n";

/// The longest operator code: a company and a line of business fit (`shenzhen-metro`, `hellobike-sz`).
pub const OPERATOR_CODE_MAX_CHARS: usize = 64;

/// The longest trip reference: a UUID with a prefix, or an operator's composite key, fits.
pub const TRIP_REF_MAX_CHARS: usize = 128;

/// A claim id's length: 32 bytes of SHA-256 in hex.
pub const CLAIM_ID_CHARS: usize = 64;

/// An operator's registered code: a lowercase slug, `[a-z0-9]` runs joined by single hyphens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorCode(String);

impl OperatorCode {
    pub fn parse(text: &str) -> Result<OperatorCode, String> {
        let well_formed = !text.is_empty()
            && text.len() <= OPERATOR_CODE_MAX_CHARS
            && text.split('-').all(|run| {
                !run.is_empty() && run.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if well_formed {
            Ok(OperatorCode(text.to_string()))
        } else {
            Err(format!(
                "must be 1 to {OPERATOR_CODE_MAX_CHARS} lowercase letters and digits, \
                 in runs joined by single hyphens (like shenzhen-metro)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An operator's own id of a trip: printable ASCII (space to `~`), without a leading or trailing space,
/// so that what one platform hashes is byte for byte what another does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TripRef(String);

impl TripRef {
    pub fn parse(text: &str) -> Result<TripRef, String> {
        let printable = text.bytes().all(|b| (b' '..=b'~').contains(&b));
        let trimmed = !text.starts_with(' ') && !text.ends_with(' ');
        if !text.is_empty() && text.len() <= TRIP_REF_MAX_CHARS && printable && trimmed {
            Ok(TripRef(text.to_string()))
        } else {
            Err(format!(
                "must be 1 to {TRIP_REF_MAX_CHARS} printable ASCII characters, \
                 not starting or ending with a space"
            ))
        }
    }
}

/// A claim id: 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClaimId(String);

impl ClaimId {
    /// The claim of one operator's trip.
    pub fn of(operator: &OperatorCode, trip: &TripRef) -> ClaimId {
        let mut hash = Sha256::new();
        hash.update(CLAIM_PREFIX);
        hash.update(&operator.0);
        hash.update("\n");
        hash.update(&trip.0);
        ClaimId(hex::encode(hash.finalize()))
    }

    /// A claim id another platform sent: exactly 64 lowercase hex digits (an uppercase digit would be
    /// another text for the same claim, so it is refused rather than folded).
    pub fn parse(text: &str) -> Result<ClaimId, String> {
        let hex = text.len() == CLAIM_ID_CHARS
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if hex {
            Ok(ClaimId(text.to_string()))
        } else {
            Err(format!("must be {CLAIM_ID_CHARS} lowercase hex digits"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_codes_are_lowercase_slugs() {
        for good in ["shenzhen-metro", "a", "bus-2", "x1-y2-z3", &"a".repeat(64)] {
            assert!(OperatorCode::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Shenzhen-Metro",
            "shenzhen_metro",
            "-metro",
            "metro-",
            "shenzhen--metro",
            "深圳地铁",
            "metro ",
            &"a".repeat(65),
        ] {
            assert!(OperatorCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trip_refs_are_printable_ascii() {
        for good in ["T-2026-12-07/0815#4411", "a b", "~", &"x".repeat(128)] {
            assert!(TripRef::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            " a",
            "a ",
            "a\nb",
            "a\tb",
            "行程1",
            "a\u{7f}",
            &"x".repeat(129),
        ] {
            assert!(TripRef::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// `printf 'tanhui-claim-v1\nshenzhen-metro\nT-1' | sha256sum`
    #[test]
    fn a_claim_is_the_hash_of_the_operator_and_its_trip() {
        let claim = ClaimId::of(
            &OperatorCode::parse("shenzhen-metro").unwrap(),
            &TripRef::parse("T-1").unwrap(),
        );
        assert_eq!(
            claim.as_str(),
            "364e23f39fadbc64e060d39be3a4132277ee776797372fec71513fa9cd528ad6"
        );
        assert_eq!(ClaimId::parse(claim.as_str()), Ok(claim));
    }

    #[test]
    fn claim_ids_are_64_lowercase_hex_digits() {
        assert!(ClaimId::parse(&"0".repeat(64)).is_ok());
        for bad in [
            "0".repeat(63),
            "0".repeat(65),
            "A".repeat(64),
            "g".repeat(64),
            String::new(),
        ] {
            assert!(ClaimId::parse(&bad).is_err(), "{bad}");
        }
    }
}
