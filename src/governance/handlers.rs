//! Role grants over HTTP: national administrators grant and revoke scopes.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::Governor;
use super::grants::{self, GrantError, GrantRole, GrantRow};
use crate::domain::catalog::NATION;
use crate::error::{ApiError, ApiResult, ErrorCode, Problem};
use crate::http::json::ApiJson;
use crate::state::AppState;

impl From<GrantError> for ApiError {
    fn from(e: GrantError) -> ApiError {
        let detail = e.to_string();
        match e {
            GrantError::UnknownUser | GrantError::NoSuchGrant => ApiError::not_found(detail),
            GrantError::UnknownRegion(_) => ApiError::unprocessable(ErrorCode::UnknownRegion, detail),
            GrantError::NationalElsewhere => ApiError::unprocessable(ErrorCode::ValidationFailed, detail),
            GrantError::NotAnAdministrator(_) | GrantError::LastNational => {
                ApiError::conflict(ErrorCode::InvalidState, detail)
            }
            GrantError::AlreadyGranted(_) => ApiError::conflict(ErrorCode::Conflict, detail),
            GrantError::Query(e) => e.into(),
        }
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/role-grants")
            .route(web::post().to(create_grant))
            .route(web::get().to(list_grants)),
    )
    .service(web::resource("/admin/role-grants/{id}").route(web::delete().to(revoke_grant)));
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// An administrator account (`tanhui admin create`).
    pub user_id: i64,
    pub role: GrantRole,
    /// The region governed, with everything under it; `CN` (the default) for a national `admin`.
    pub region_code: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantView {
    pub grant_id: String,
    pub user_id: String,
    pub role: GrantRole,
    pub region_code: String,
    pub granted_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<GrantRow> for GrantView {
    fn from(row: GrantRow) -> GrantView {
        GrantView {
            grant_id: row.id.to_string(),
            user_id: row.user_id.to_string(),
            role: row.role,
            region_code: row.region_code,
            granted_by: row.granted_by.map(|u| u.to_string()),
            created_at: row.created_at.and_utc(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantList {
    pub items: Vec<GrantView>,
}

/// Grant an administrator a scope (national administrators only). Audited.
#[utoipa::path(post, path = "/api/v1/admin/role-grants", tag = "admin", request_body = GrantRequest,
    security(("bearer" = [])),
    responses((status = 201, body = GrantView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_grant(
    state: web::Data<AppState>,
    governor: Governor,
    body: ApiJson<GrantRequest>,
) -> ApiResult<HttpResponse> {
    governor.scope.check_national()?;
    let GrantRequest {
        user_id,
        role,
        region_code,
    } = body.0;
    let region = region_code.unwrap_or_else(|| NATION.to_string());
    let now = state.clock.now_naive();
    let row = state
        .db
        .run(move |conn| {
            Ok(grants::grant(
                conn,
                now,
                governor.user_id,
                user_id,
                role,
                &region,
            )?)
        })
        .await?;
    Ok(HttpResponse::Created().json(GrantView::from(row)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct GrantQuery {
    /// Only this administrator's grants.
    pub user_id: Option<i64>,
}

/// The live grants (any administrator may read who governs what).
#[utoipa::path(get, path = "/api/v1/admin/role-grants", tag = "admin", params(GrantQuery), security(("bearer" = [])),
    responses((status = 200, body = GrantList)))]
pub async fn list_grants(
    state: web::Data<AppState>,
    _governor: Governor,
    query: web::Query<GrantQuery>,
) -> ApiResult<HttpResponse> {
    let user_id = query.user_id;
    let rows = state.db.run(move |conn| Ok(grants::list(conn, user_id)?)).await?;
    Ok(HttpResponse::Ok().json(GrantList {
        items: rows.into_iter().map(Into::into).collect(),
    }))
}

/// Revoke a grant (national administrators only); the next request of its holder, on any instance, has
/// the narrower scope. The last national grant cannot be revoked. Audited.
#[utoipa::path(delete, path = "/api/v1/admin/role-grants/{id}", tag = "admin", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn revoke_grant(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    governor.scope.check_national()?;
    let id = id.into_inner();
    let now = state.clock.now_naive();
    state
        .db
        .run(move |conn| Ok(grants::revoke(conn, now, governor.user_id, id)?))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
