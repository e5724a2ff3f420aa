//! Public, signed documents over HTTP.

use actix_web::{web, HttpResponse};

use super::{jws, methodology, region_parameters};
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::reader::Reader;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/public/methodologies/{id}/signed").route(web::get().to(signed_methodology)))
        .service(
            web::resource("/public/region-parameters/{id}/signed")
                .route(web::get().to(signed_region_parameters)),
        );
}

/// An active or retired methodology version as a compact JWS (`application/jose`, `EdDSA`, `kid` of the
/// key in `/.well-known/jwks.json`) whose payload is its full content: formula, parameters with units and
/// sources, cap, evidence weights, effective dates, status, the version it replaces, and its activity
/// type with the data schema. Drafts are not published (404).
#[utoipa::path(get, path = "/api/v1/public/methodologies/{id}/signed", tag = "methodologies",
    responses((status = 200, description = "A compact JWS whose payload is a PublishedMethodology",
        content_type = "application/jose", body = String), (status = 404, body = Problem)))]
pub async fn signed_methodology(
    state: web::Data<AppState>,
    reader: Reader,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let document = reader
        .run(&state.db, move |conn| Ok(methodology::published(conn, id)?))
        .await?
        .ok_or_else(|| ApiError::not_found("no such active or retired methodology version"))?;
    jws::respond(&state.platform_key, methodology::TYP, &document).map_err(ApiError::internal)
}

/// An active region-parameter version as a compact JWS (`application/jose`, `EdDSA`, `kid` of the key in
/// `/.well-known/jwks.json`) whose payload is its values with units, its effective date, its citation, the
/// version it follows and the region its unset values come from. Drafts are not published (404).
#[utoipa::path(get, path = "/api/v1/public/region-parameters/{id}/signed", tag = "regions",
    responses((status = 200, description = "A compact JWS whose payload is a PublishedRegionParameters",
        content_type = "application/jose", body = String), (status = 404, body = Problem)))]
pub async fn signed_region_parameters(
    state: web::Data<AppState>,
    reader: Reader,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let document = reader
        .run(&state.db, move |conn| Ok(region_parameters::published(conn, id)?))
        .await?
        .ok_or_else(|| ApiError::not_found("no such active region-parameter version"))?;
    jws::respond(&state.platform_key, region_parameters::TYP, &document).map_err(ApiError::internal)
}
