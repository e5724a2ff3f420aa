//! `GET /api/v1/admin/audit`: the audit log searched by actor, entity and time, newest first.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{AuditAction, AuditEntity, Search};
use crate::error::{ApiError, ApiResult, Problem};
use crate::governance::Governor;
use crate::http::pagination::{PageQuery, Paginated};
use crate::http::timestamp;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/audit").route(web::get().to(list_audit)));
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub id: String,
    /// The administrator who acted (`null`: the command line).
    pub actor_id: Option<String>,
    pub action: AuditAction,
    pub entity: AuditEntity,
    pub entity_id: String,
    pub at: DateTime<Utc>,
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Only what this administrator did.
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub actor_id: Option<i64>,
    /// Only changes to this kind of thing.
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    #[param(value_type = Option<AuditEntity>)]
    pub entity: Option<AuditEntity>,
    /// Only changes to this one (with `entity`).
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub entity_id: Option<String>,
    /// Recorded at or after (RFC 3339).
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub from: Option<String>,
    /// Recorded before (RFC 3339).
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub to: Option<String>,
}

impl AuditQuery {
    fn search(self) -> ApiResult<Search> {
        let bound =
            |field: &str, value: Option<String>| value.map(|v| timestamp::query_bound(field, &v)).transpose();
        let from = bound("from", self.from)?;
        let to = bound("to", self.to)?;
        if let (Some(from), Some(to)) = (from, to) {
            if to <= from {
                return Err(ApiError::field("to", "must be after from"));
            }
        }
        Ok(Search {
            actor_user_id: self.actor_id,
            entity: self.entity,
            entity_id: self.entity_id,
            from,
            to,
        })
    }
}

/// The audit log, newest first, filtered by who acted, on what, and when (`from` inclusive, `to`
/// exclusive). Any administrator reads all of it: entries name no region to narrow it by.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", params(AuditQuery, PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Paginated<AuditView>), (status = 422, body = Problem)))]
pub async fn list_audit(
    state: web::Data<AppState>,
    _governor: Governor,
    query: web::Query<AuditQuery>,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let search = query.into_inner().search()?;
    let page = page.page()?;
    let rows = state
        .db
        .run(move |conn| Ok(super::list(conn, &search, page.before, page.limit + 1)?))
        .await?;
    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    Ok(HttpResponse::Ok().json(Paginated::from_rows(
        rows,
        page,
        |r| r.id,
        |r| AuditView {
            id: r.id.to_string(),
            actor_id: r.actor_user_id.map(|u| u.to_string()),
            action: r.action,
            entity: r.entity,
            entity_id: r.entity_id,
            at: r.created_at.and_utc(),
            before: parse(r.before_json),
            after: parse(r.after_json),
        },
    )))
}
