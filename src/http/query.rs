//! Query-string values. Clients that fill in a filter template (`?kind=&region_code=`) send parameters
//! with no value: such a parameter means the same as one left out.

use std::fmt::Display;
use std::str::FromStr;

use serde::{de, Deserialize, Deserializer};

/// `#[serde(default, deserialize_with = "query::blank_is_absent")]`: absent or empty is `None`; anything
/// else must parse as `T`.
pub fn blank_is_absent<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    match Option::<String>::deserialize(d)? {
        Some(text) if !text.is_empty() => text.parse().map(Some).map_err(de::Error::custom),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Filter {
        #[serde(default, deserialize_with = "blank_is_absent")]
        kind: Option<String>,
        #[serde(default, deserialize_with = "blank_is_absent")]
        limit: Option<i64>,
    }

    fn parse(query: &str) -> Result<Filter, actix_web::error::QueryPayloadError> {
        actix_web::web::Query::<Filter>::from_query(query).map(|q| q.into_inner())
    }

    #[test]
    fn empty_values_are_absent_ones() {
        let none = Filter {
            kind: None,
            limit: None,
        };
        assert_eq!(parse("").unwrap(), none);
        assert_eq!(parse("kind=&limit=").unwrap(), none);
        assert_eq!(
            parse("kind=scenic&limit=20").unwrap(),
            Filter {
                kind: Some("scenic".into()),
                limit: Some(20)
            }
        );
        assert!(parse("limit=many").is_err());
    }
}
