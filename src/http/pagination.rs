//! `?limit=&cursor=` pagination: limit 1..200 (default 50); the cursor is opaque to clients.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Items on a page when the client does not say: a screenful.
pub const DEFAULT_LIMIT: i64 = 50;
/// The most items a page holds: bounds one query's rows and one answer's size.
pub const MAX_LIMIT: i64 = 200;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// 1..200, default 50.
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub limit: Option<i64>,
    /// From the previous page's `next_cursor`.
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub cursor: Option<String>,
}

/// A validated page request: items with ids below `before` (newest first), at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: i64,
    pub before: Option<i64>,
}

impl PageQuery {
    pub fn page(&self) -> Result<Page, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::field(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let before = match &self.cursor {
            None => None,
            Some(c) => Some(
                decode_cursor(c).ok_or_else(|| ApiError::field("cursor", "is not a cursor from this API"))?,
            ),
        };
        Ok(Page { limit, before })
    }
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    std::str::from_utf8(&bytes)
        .ok()?
        .strip_prefix("id:")?
        .parse()
        .ok()
}

pub fn encode_cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("id:{id}"))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Paginated<T: Serialize> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T: Serialize> Paginated<T> {
    /// Builds a page from `limit + 1` rows fetched newest first: the extra row only says another page exists.
    pub fn from_rows<R>(
        mut rows: Vec<R>,
        page: Page,
        id: impl Fn(&R) -> i64,
        view: impl FnMut(R) -> T,
    ) -> Self {
        let more = rows.len() as i64 > page.limit;
        rows.truncate(page.limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| encode_cursor(id(r)))
        } else {
            None
        };
        Paginated {
            items: rows.into_iter().map(view).collect(),
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let q = PageQuery {
            limit: Some(10),
            cursor: Some(encode_cursor(42)),
        };
        assert_eq!(q.page().unwrap().before, Some(42));
        let bad = PageQuery {
            limit: None,
            cursor: Some("zzz".into()),
        };
        assert_eq!(bad.page().unwrap_err().errors[0].field, "cursor");
        let bad = PageQuery {
            limit: Some(0),
            cursor: None,
        };
        assert!(bad.page().is_err());
    }
}
