//! Request timestamps: RFC 3339 with a UTC offset, refused with a message that says what is missing.
//!
//! chrono's own refusal of `2026-11-29T08:00:00` (no offset) reads "premature end of input", which tells a
//! client nothing; a local time without an offset is the usual mistake, so it gets its own message. The
//! accepted forms are chrono's, unchanged.
//!
//! Times are kept in UTC to the microsecond, between the years 1 and 9999: PostgreSQL keeps microseconds
//! (two times a tenth of a microsecond apart would compare as different here and be stored equal, failing
//! a `CHECK (to > from)` there), and SQLite compares the stored text, in which chrono writes a five-digit
//! year as `+10000-…`, sorting it before every other (`9999-12-31T23:00:00-01:00` is such a year in UTC).
//! So a parsed time is truncated to the microsecond, and a UTC year outside 1–9999 is refused.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, SubsecRound};
use serde::{de, Deserialize, Deserializer};

use crate::error::ApiError;

const EXAMPLE: &str = "2026-11-29T08:30:00+08:00";

/// Parses a timestamp with its offset, or says why it is not one.
pub fn parse(text: &str) -> Result<DateTime<FixedOffset>, String> {
    let t = text.parse::<DateTime<FixedOffset>>().map_err(|e| {
        if text.parse::<NaiveDateTime>().is_ok() {
            format!("has no UTC offset: add one, as in {EXAMPLE} or 2026-11-29T00:30:00Z")
        } else {
            format!("must be an RFC 3339 date-time with an offset, as in {EXAMPLE} ({e})")
        }
    })?;
    if !(1..=9999).contains(&t.naive_utc().year()) {
        return Err("is out of range: a time must fall in the years 1 to 9999 in UTC".into());
    }
    Ok(t.trunc_subsecs(6))
}

/// A time given in a query string (a period's bound), in UTC, or 422 naming `field`. A `+` offset arrives
/// as a space when the client did not percent-encode it; that is taken back.
pub fn query_bound(field: &str, value: &str) -> Result<NaiveDateTime, ApiError> {
    let text = value.trim().replacen(' ', "+", 1);
    parse(&text)
        .map(|t| t.naive_utc())
        .map_err(|message| ApiError::field(field, message))
}

/// `#[serde(deserialize_with = "timestamp::required")]`
pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<FixedOffset>, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(de::Error::custom)
}

/// `#[serde(default, deserialize_with = "timestamp::optional")]`: absent or null is `None`.
pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(text) => parse(&text).map(Some).map_err(de::Error::custom),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_zulu_parse_to_the_same_instant() {
        let shanghai = parse("2026-11-29T08:30:00+08:00").unwrap();
        let utc = parse("2026-11-29T00:30:00Z").unwrap();
        assert_eq!(shanghai, utc);
        assert_eq!(shanghai.offset().local_minus_utc(), 8 * 3600);
    }

    #[test]
    fn a_missing_offset_is_named() {
        let e = parse("2026-11-29T08:30:00").unwrap_err();
        assert!(e.starts_with("has no UTC offset"), "{e}");
    }

    #[test]
    fn times_are_kept_to_the_microsecond_within_four_digit_utc_years() {
        let t = parse("2026-12-01T00:00:00.0000002Z").unwrap();
        assert_eq!(t, parse("2026-12-01T00:00:00Z").unwrap());
        assert_eq!(
            parse("2026-12-01T00:00:00.1234567Z")
                .unwrap()
                .timestamp_subsec_micros(),
            123_456
        );
        for text in ["9999-12-31T23:00:00-01:00", "0001-01-01T00:30:00+01:00"] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with("is out of range"), "{text}: {e}");
        }
        assert!(parse("9999-12-31T23:59:59Z").is_ok());
    }

    #[test]
    fn other_text_is_refused_with_an_example() {
        for text in ["", "yesterday", "2026-13-01T00:00:00Z", "2026-11-29"] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with("must be an RFC 3339 date-time"), "{text}: {e}");
        }
    }
}
