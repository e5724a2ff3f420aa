//! The HTML pages the binary serves: the public dashboard and the administrators' console.
//!
//! No JavaScript build step: pages are rendered by maud (escaping by default), and small hand-written ES
//! modules and CSS under `web/` are embedded in the binary and served from versioned URLs. Every page
//! and asset carries the security headers of [`headers::security`]. See `docs/web.md`.

pub mod assets;
mod console;
mod dashboard;
pub mod headers;
pub mod layout;

use actix_web::web;

/// Registers the pages and `/assets/…`, each behind the security headers.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/assets")
            .wrap(headers::security())
            .configure(assets::routes),
    )
    .service(
        web::resource("/dashboard")
            .wrap(headers::security())
            .route(web::get().to(dashboard::page)),
    )
    .service(
        web::resource("/console")
            .wrap(headers::security())
            .route(web::get().to(console::page)),
    );
}
