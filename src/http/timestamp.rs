//! Request timestamps: RFC 3339 with a UTC offset, refused with a message that says what is missing.
//!
//! chrono's own refusal of `2026-11-29T08:00:00` (no offset) reads "premature end of input", which tells a
//! client nothing; a local time without an offset is the usual mistake, so it gets its own message. The
//! accepted forms are chrono's, unchanged.

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use serde::{de, Deserialize, Deserializer};

const EXAMPLE: &str = "2026-11-29T08:30:00+08:00";

/// Parses a timestamp with its offset, or says why it is not one.
pub fn parse(text: &str) -> Result<DateTime<FixedOffset>, String> {
    text.parse::<DateTime<FixedOffset>>().map_err(|e| {
        if text.parse::<NaiveDateTime>().is_ok() {
            format!("has no UTC offset: add one, as in {EXAMPLE} or 2026-11-29T00:30:00Z")
        } else {
            format!("must be an RFC 3339 date-time with an offset, as in {EXAMPLE} ({e})")
        }
    })
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
    fn other_text_is_refused_with_an_example() {
        for text in ["", "yesterday", "2026-13-01T00:00:00Z", "2026-11-29"] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with("must be an RFC 3339 date-time"), "{text}: {e}");
        }
    }
}
