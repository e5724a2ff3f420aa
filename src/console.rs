//! The administrators' console: an HTML shell and a few ES modules and a style sheet, embedded in the
//! binary and served from this origin only. The shell is public (it is the sign-in page); everything it
//! shows after sign-in comes from the admin API, which checks the session and the scope of every call.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpResponse};

use crate::error::{ApiError, ApiResult};

const SHELL: &str = include_str!("../web/console/index.html");

/// Every asset by name, with its media type.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "main.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/console/main.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/console/api.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/console/dom.js"),
    ),
    (
        "chart.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/console/chart.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../web/console/console.css"),
    ),
];

/// Scripts, styles and calls from this origin only, no inline code or style, no frames, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/console").route(web::get().to(shell)))
        .service(web::resource("/console/assets/{name}").route(web::get().to(asset)));
}

fn secured(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The console's page: its sign-in form until an administrator signs in.
async fn shell() -> HttpResponse {
    secured(
        HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(SHELL),
    )
}

async fn asset(name: web::Path<String>) -> ApiResult<HttpResponse> {
    let (_, media_type, body) = ASSETS
        .iter()
        .find(|(n, _, _)| *n == name.as_str())
        .ok_or_else(|| ApiError::not_found("no such asset"))?;
    Ok(secured(
        HttpResponse::Ok()
            .content_type(*media_type)
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(*body),
    ))
}
