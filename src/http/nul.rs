//! U+0000 is refused at the edge, in JSON strings and in URLs alike.
//!
//! PostgreSQL's `text` cannot hold it (SQLite's can), so such a string would fail its statement with a
//! database error: a 500 for a client's mistake, and in a group commit the failure of every neighbour's
//! statement until the group is retried one by one. Refusing it before any handler runs gives one answer
//! on both backends and keeps it out of shared transactions.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use serde_json::Value;

use crate::error::ApiError;
use crate::error::ErrorCode;

const MESSAGE: &str = "may not contain the NUL character (U+0000)";

/// Whether a JSON document holds a NUL: JSON can only spell it as the escape `\u0000` (a raw control
/// character is a syntax error), which counts when it is not itself an escaped backslash followed by
/// `u0000`.
pub fn json_has_nul(bytes: &[u8]) -> bool {
    const ESCAPE: &[u8] = br"\u0000";
    bytes
        .windows(ESCAPE.len())
        .enumerate()
        .any(|(i, w)| w == ESCAPE && bytes[..i].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0)
}

/// The 422 naming the first field (or key) that holds a NUL, in the path notation of the other field
/// errors (`events[3].memo`).
pub fn refusal(document: &Value) -> ApiError {
    ApiError::field(
        &path_of_nul(document, String::new()).unwrap_or_else(|| "body".into()),
        MESSAGE,
    )
}

fn path_of_nul(value: &Value, at: String) -> Option<String> {
    let nul = |s: &str| s.contains('\0');
    match value {
        Value::String(s) if nul(s) => Some(if at.is_empty() { "body".into() } else { at }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| path_of_nul(item, format!("{at}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, field)| {
            let here = if at.is_empty() {
                key.clone()
            } else {
                format!("{at}.{key}")
            };
            if nul(key) {
                Some(here)
            } else {
                path_of_nul(field, here)
            }
        }),
        _ => None,
    }
}

/// Refuses a request whose path or query would decode to a NUL (`%00`; a raw NUL cannot be sent).
pub async fn refuse_in_url(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let target = req.uri().path_and_query().map_or("", |p| p.as_str());
    if target
        .as_bytes()
        .windows(3)
        .any(|w| w.eq_ignore_ascii_case(b"%00"))
    {
        return Err(ApiError::bad_request(ErrorCode::InvalidPath, format!("the URL {MESSAGE}")).into());
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_real_escape_is_a_nul() {
        assert!(json_has_nul(br#"{"a":"x\u0000"}"#));
        assert!(
            json_has_nul(br#"{"a":"\\\u0000"}"#),
            "an escaped backslash, then the escape"
        );
        assert!(!json_has_nul(br#"{"a":"\\u0000"}"#), "the text \\u0000, no NUL");
        assert!(!json_has_nul(br#"{"a":"\u0001"}"#));
    }

    #[test]
    fn the_refusal_names_the_field() {
        let path = |v: Value| refusal(&v).problem().errors[0].field.clone();
        assert_eq!(
            path(serde_json::json!({"events": [{}, {"memo": "a\0"}]})),
            "events[1].memo"
        );
        assert_eq!(path(serde_json::json!({"a\0": 1})), "a\0");
        assert_eq!(path(serde_json::json!("\0")), "body");
    }
}
