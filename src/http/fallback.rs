//! Turns every error answer that did not come from `ApiError` (unknown routes, wrong methods, bad path or
//! query parameters, framework limits) into problem+json with a stable code.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::{header, StatusCode};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::HttpResponse;

use crate::error::ApiError;
use crate::error::ErrorCode;

fn code_for(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        StatusCode::REQUEST_TIMEOUT => ErrorCode::RequestTimeout,
        s if s.is_server_error() => ErrorCode::InternalError,
        _ => ErrorCode::BadRequest,
    }
}

pub fn to_problem<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let detail = match status {
        StatusCode::NOT_FOUND => format!("no route for {} {}", res.request().method(), res.request().path()),
        StatusCode::METHOD_NOT_ALLOWED => format!("{} is not allowed here", res.request().method()),
        _ => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let problem = ApiError::new(status, code_for(status), detail);
    // A 405 names the methods the resource takes (RFC 9110 §15.5.6); actix's own answer carries them.
    let allow = res.headers().get(header::ALLOW).cloned();
    let (req, _) = res.into_parts();
    let mut response: HttpResponse<BoxBody> = actix_web::ResponseError::error_response(&problem);
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, response).map_into_right_body(),
    ))
}

/// Path and query parse failures (a non-numeric id, a bad `limit`) are client mistakes.
pub fn path_error(err: actix_web::error::PathError, _: &actix_web::HttpRequest) -> actix_web::Error {
    ApiError::bad_request(ErrorCode::InvalidPath, format!("bad path parameter: {err}")).into()
}

pub fn query_error(err: actix_web::error::QueryPayloadError, _: &actix_web::HttpRequest) -> actix_web::Error {
    ApiError::bad_request(ErrorCode::InvalidQuery, format!("bad query parameter: {err}")).into()
}
