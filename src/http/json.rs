//! `ApiJson<T>`: a JSON body extractor whose every failure is a problem+json answer that names the field.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::{header, StatusCode};
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::nul;
use crate::error::ErrorCode;
use crate::error::{ApiError, FieldError};

#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T> std::ops::Deref for ApiJson<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        format!("request body exceeds {limit} bytes"),
    )
}

/// The configured `server.body_limit_bytes`, registered as app data so that reading a body needs nothing
/// else of the application.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// The limit where none is registered (a handler under test without the app): 1 MiB, the default setting.
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 1 << 20;

/// Reads the whole body, refusing it as soon as it passes the configured limit.
pub async fn read_body<S>(req: &HttpRequest, payload: &mut S) -> Result<web::BytesMut, ApiError>
where
    S: futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>> + Unpin,
{
    let limit = req
        .app_data::<BodyLimit>()
        .map_or(DEFAULT_BODY_LIMIT_BYTES, |l| l.0);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(ErrorCode::BadBody, format!("could not read body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parses JSON, telling a broken document (400) from a well-formed one of the wrong shape (422, naming the
/// field); a string holding U+0000 is refused too (422, see `nul`).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = parse_allowing_nul(bytes)?;
    if nul::json_has_nul(bytes) {
        let document = serde_json::from_slice(bytes).unwrap_or_default();
        return Err(nul::refusal(&document));
    }
    Ok(value)
}

/// [`parse`] without the NUL check: only for an envelope whose items are each parsed with [`parse`], so
/// that one item's NUL refuses that item alone.
pub fn parse_allowing_nul<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        use serde_json::error::Category;
        match inner.classify() {
            Category::Data => ApiError::validation(vec![FieldError {
                field: if path == "." { "body".into() } else { path },
                message: strip_position(&inner.to_string()),
            }]),
            Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(
                ErrorCode::MalformedJson,
                format!("request body is not valid JSON: {inner}"),
            ),
        }
    })?;
    de.end().map_err(|e| {
        ApiError::bad_request(
            ErrorCode::MalformedJson,
            format!("trailing data after the JSON body: {e}"),
        )
    })?;
    Ok(value)
}

/// serde's messages end in " at line 1 column 42", which means nothing once a field is named.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let body = read_body(&req, &mut payload).await?;
            if body.is_empty() {
                return Err(ApiError::bad_request(
                    ErrorCode::MalformedJson,
                    "request body is empty; expected JSON",
                ));
            }
            parse(&body).map(ApiJson)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Sample {
        n: i64,
        kind: Kind,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        A,
    }

    #[test]
    fn syntax_is_400_and_shape_is_422_naming_the_field() {
        assert_eq!(parse::<Sample>(b"{").unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(
            parse::<Sample>(b"\xff\xfe").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        let e = parse::<Sample>(br#"{"n": "x", "kind": "a"}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.errors[0].field, "n");
        let e = parse::<Sample>(br#"{"n": 1, "kind": "b"}"#).unwrap_err();
        assert_eq!(e.errors[0].field, "kind");
        let e = parse::<Sample>(br#"{"n": 99999999999999999999999, "kind": "a"}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        let e = parse::<Sample>(br#"{"kind": "a"}"#).unwrap_err();
        assert!(e.errors[0].message.contains("missing field"));
        assert!(parse::<Sample>(br#"{"n": 1, "kind": "a"} trailing"#).is_err());
    }
}
