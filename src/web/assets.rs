//! Scripts, styles and icons under `web/`, embedded in the binary and served from
//! `/assets/{version}/{path}`.
//!
//! One version covers the whole set (a digest of every file), so modules import each other by relative
//! paths and a changed file changes every URL: browsers may keep an asset for a year.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

struct Asset {
    path: &'static str,
    bytes: &'static [u8],
}

macro_rules! assets {
    ($($path:literal),+ $(,)?) => {
        &[$(Asset { path: $path, bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path)) }),+]
    };
}

/// Every file served; a page names one with [`url`].
const ASSETS: &[Asset] = assets![
    "shared/base.css",
    "shared/icon.svg",
    "shared/dom.js",
    "shared/charts.js",
    "shared/format.js",
    "dashboard/dashboard.css",
    "dashboard/dashboard.js",
    "console/console.css",
    "console/main.js",
    "console/api.js",
    "console/ui.js",
    "console/chart.js",
];

/// The digest of every asset's path and bytes: the version segment of their URLs.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut digest = Sha256::new();
        for asset in ASSETS {
            digest.update(asset.path.as_bytes());
            digest.update([0]);
            digest.update(asset.bytes);
        }
        hex::encode(&digest.finalize()[..6])
    })
}

/// The URL of the embedded asset `path` (relative to `web/`, e.g. `"dashboard/dashboard.js"`).
///
/// # Panics
/// When no such asset is embedded: a page naming a missing file is a programming error, caught by any
/// test that renders the page.
pub fn url(path: &str) -> String {
    assert!(find(path).is_some(), "no embedded asset {path}");
    format!("/assets/{}/{path}", version())
}

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/{version}/{path:.+}", web::get().to(serve));
}

/// An asset of the current version, cacheable for a year; another version is a 404 (a page that names
/// it was rendered by another build).
async fn serve(path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (asked_version, asset_path) = path.into_inner();
    let asset = find(&asset_path)
        .filter(|_| asked_version == version())
        .ok_or_else(|| ApiError::not_found("no such asset"))?;
    Ok(HttpResponse::Ok()
        .content_type(content_type(asset.path))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(asset.bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_known_content_type_and_a_unique_path() {
        for (i, asset) in ASSETS.iter().enumerate() {
            assert_ne!(
                content_type(asset.path),
                "application/octet-stream",
                "{}",
                asset.path
            );
            assert!(
                ASSETS[..i].iter().all(|a| a.path != asset.path),
                "{} twice",
                asset.path
            );
        }
    }

    #[test]
    fn urls_carry_the_version() {
        let url = url("shared/base.css");
        assert_eq!(url, format!("/assets/{}/shared/base.css", version()));
        assert_eq!(version().len(), 12);
    }
}
