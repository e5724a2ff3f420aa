//! Security headers for every page and asset.

use actix_web::middleware::DefaultHeaders;

/// Scripts, styles and images come from this origin only, and no inline script or style runs: pages
/// build their DOM with `createElement`/`textContent` and style it through classes. `data:` images are
/// allowed for icons drawn in CSS; `connect-src 'self'` lets the scripts read the API and nothing else.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The headers every HTML page and asset is answered with (a handler's own value of one wins).
pub fn security() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
}
