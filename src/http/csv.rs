//! Content negotiation for the lists that also come as CSV.

use actix_web::http::header;
use actix_web::HttpRequest;

/// Whether the request asks for CSV (`Accept: text/csv`) rather than JSON.
pub fn wanted(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"))
}
