//! Regions, activity types, methodologies, quantification and the audit log over HTTP.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::draft::{self, DraftError, DraftRequest};
use super::impact::Simulation;
use super::quantify::quantify;
use super::service::{self, MethodologyError, NewActivityType};
use super::simulate::{self as simulation, SimulateRequest};
use super::store::{self, MethodologyStatus, VersionFilter};
use super::views::{utc, ActivityTypeView, MethodologyRef, RegionView, VersionView};
use crate::audit::{self, AuditAction, AuditEntity};
use crate::auth::extract::{Admin, Authenticated};
use crate::domain::catalog::Evidence;
use crate::domain::data_schema::DataSchema;
use crate::domain::formula::Step;
use crate::error::{ApiError, ApiResult, ErrorCode, FieldError, Problem};
use crate::governance::Governor;
use crate::http::json::ApiJson;
use crate::http::pagination::{PageQuery, Paginated};
use crate::state::AppState;

impl From<MethodologyError> for ApiError {
    fn from(e: MethodologyError) -> ApiError {
        use MethodologyError as E;
        let detail = e.to_string();
        match e {
            E::NoSuchVersion => ApiError::not_found(detail),
            E::OwnDraft => ApiError::forbidden(detail),
            E::NotADraft(_) | E::ChangedMeanwhile | E::AlreadyFinal(_) => {
                ApiError::conflict(ErrorCode::InvalidState, detail)
            }
            E::VersionNumberTaken | E::ActivityTypeExists => ApiError::conflict(ErrorCode::Conflict, detail),
            E::Vanished(_) | E::Json(_) => ApiError::internal(e),
            E::Database(e) => e.into(),
        }
    }
}

impl From<DraftError> for ApiError {
    /// Field errors as 422 `validation_failed`; a formula problem as 422 `invalid_formula` that says
    /// where and which.
    fn from(e: DraftError) -> ApiError {
        match e {
            DraftError::Fields(errors) => ApiError::validation(errors),
            DraftError::Formula(e) => {
                let mut error = ApiError::unprocessable(ErrorCode::InvalidFormula, e.to_string());
                error.errors = vec![FieldError {
                    field: "formula".into(),
                    message: e.to_string(),
                }];
                error
            }
        }
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/regions").route(web::get().to(list_regions)))
        .service(web::resource("/regions/{code}").route(web::get().to(get_region)))
        .service(web::resource("/activity-types").route(web::get().to(list_activity_types)))
        .service(web::resource("/methodologies").route(web::get().to(list_methodologies)))
        .service(web::resource("/methodologies/{id}").route(web::get().to(get_methodology)))
        .service(web::resource("/quantify").route(web::post().to(quantify_dry_run)))
        .service(web::resource("/admin/activity-types").route(web::post().to(create_activity_type)))
        .service(web::resource("/admin/methodologies").route(web::post().to(create_draft)))
        .service(web::resource("/admin/methodologies/{id}/activate").route(web::post().to(activate)))
        .service(web::resource("/admin/methodologies/{id}/retire").route(web::post().to(retire)))
        .service(web::resource("/admin/methodologies/{id}/simulate").route(web::post().to(simulate)))
        .service(web::resource("/admin/audit").route(web::get().to(list_audit)));
}

#[derive(Serialize, ToSchema)]
pub struct RegionList {
    pub items: Vec<RegionView>,
}

/// Every region (nation, provinces, pilot cities), unpaginated.
#[utoipa::path(get, path = "/api/v1/regions", tag = "regions", responses((status = 200, body = RegionList)))]
pub async fn list_regions(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let rows = state.db.run(|conn| Ok(store::all_regions(conn)?)).await?;
    let catalog = state.catalog.get();
    let items = rows
        .into_iter()
        .map(|r| {
            let rate = catalog.points_per_gram(&r.code).to_string();
            RegionView::new(r, rate)
        })
        .collect();
    Ok(HttpResponse::Ok().json(RegionList { items }))
}

/// One region.
#[utoipa::path(get, path = "/api/v1/regions/{code}", tag = "regions",
    responses((status = 200, body = RegionView), (status = 404, body = Problem)))]
pub async fn get_region(state: web::Data<AppState>, code: web::Path<String>) -> ApiResult<HttpResponse> {
    let code = code.into_inner();
    let row = state
        .db
        .run(move |conn| Ok(store::find_region(conn, &code)?))
        .await?
        .ok_or_else(|| ApiError::not_found("no such region"))?;
    let rate = state.catalog.get().points_per_gram(&row.code).to_string();
    Ok(HttpResponse::Ok().json(RegionView::new(row, rate)))
}

#[derive(Serialize, ToSchema)]
pub struct ActivityTypeList {
    pub items: Vec<ActivityTypeView>,
}

/// Every activity type with the schema of its data.
#[utoipa::path(get, path = "/api/v1/activity-types", tag = "methodologies", responses((status = 200, body = ActivityTypeList)))]
pub async fn list_activity_types(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let rows = state.db.run(|conn| Ok(store::all_activity_types(conn)?)).await?;
    Ok(HttpResponse::Ok().json(ActivityTypeList {
        items: rows.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityTypeRequest {
    /// Lower-case, dot-separated, e.g. `transit.ferry`.
    pub code: String,
    pub name: String,
    pub unit: String,
    #[schema(value_type = Object)]
    pub data_schema: serde_json::Value,
    /// Days after which an event is too late to claim (default 7).
    pub claim_window_days: Option<i32>,
}

/// The longest activity type code: room for a few dotted words, and short enough to key every activity row.
pub const TYPE_CODE_MAX_LEN: usize = 64;
/// The longest name or unit of an activity type: a label in lists, not a description.
pub const TYPE_LABEL_MAX_CHARS: usize = 64;
/// How many days late an event may still be claimed when a new type does not say: a week covers a
/// provider's weekly upload.
pub const DEFAULT_CLAIM_WINDOW_DAYS: i32 = 7;
/// The longest claim window a type may have: a year, beyond which an event is history, not a claim.
pub const MAX_CLAIM_WINDOW_DAYS: i32 = 365;

fn is_type_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= TYPE_CODE_MAX_LEN
        && code.split('.').all(|part| {
            part.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

impl ActivityTypeRequest {
    /// The new type with its name and unit trimmed, or every field that is wrong.
    fn check(self) -> Result<NewActivityType, Vec<FieldError>> {
        let mut errors = Vec::new();
        if !is_type_code(&self.code) {
            errors.push(FieldError {
                field: "code".into(),
                message: "lower-case words separated by dots, e.g. transit.ferry".into(),
            });
        }
        for (field, value) in [("name", &self.name), ("unit", &self.unit)] {
            if value.trim().is_empty() || value.chars().count() > TYPE_LABEL_MAX_CHARS {
                errors.push(FieldError {
                    field: field.into(),
                    message: format!("must be 1 to {TYPE_LABEL_MAX_CHARS} characters"),
                });
            }
        }
        let window = self.claim_window_days.unwrap_or(DEFAULT_CLAIM_WINDOW_DAYS);
        if !(1..=MAX_CLAIM_WINDOW_DAYS).contains(&window) {
            errors.push(FieldError {
                field: "claim_window_days".into(),
                message: format!("must be between 1 and {MAX_CLAIM_WINDOW_DAYS}"),
            });
        }
        if let Err(schema_errors) = DataSchema::parse(&self.data_schema) {
            errors.extend(schema_errors);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(NewActivityType {
            code: self.code,
            name: self.name.trim().to_string(),
            unit: self.unit.trim().to_string(),
            schema: self.data_schema,
            claim_window_days: window,
        })
    }
}

/// Add an activity type without a code change.
#[utoipa::path(post, path = "/api/v1/admin/activity-types", tag = "admin", request_body = ActivityTypeRequest,
    security(("bearer" = [])),
    responses((status = 201, body = ActivityTypeView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_activity_type(
    state: web::Data<AppState>,
    admin: Admin,
    body: ApiJson<ActivityTypeRequest>,
) -> ApiResult<HttpResponse> {
    let new = body.0.check().map_err(ApiError::validation)?;
    let admin_id = admin.0.user_id()?;
    let now = state.clock.now_naive();
    let cache = state.catalog.clone();
    let row = state
        .db
        .run(move |conn| {
            let row = service::create_activity_type(conn, now, admin_id, &new)?;
            cache.reload(conn)?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Created().json(ActivityTypeView::from(row)))
}

/// The listing's filter as given in the query string.
#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
pub struct VersionQuery {
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub activity_type: Option<String>,
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub region_code: Option<String>,
    /// draft, active or retired
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    #[param(value_type = Option<MethodologyStatus>)]
    pub status: Option<String>,
}

impl VersionQuery {
    /// The filter, or 422 naming `status` when it is not a status (parsed here, not by serde, so the
    /// refusal names the field like every other validation answer).
    fn filter(self) -> ApiResult<VersionFilter> {
        let status = match self.status {
            None => None,
            Some(s) => Some(
                s.parse::<MethodologyStatus>()
                    .map_err(|_| ApiError::field("status", "must be draft, active or retired"))?,
            ),
        };
        Ok(VersionFilter {
            activity_type: self.activity_type,
            region_code: self.region_code,
            status,
        })
    }
}

/// Methodology versions, newest first; all statuses unless filtered.
#[utoipa::path(get, path = "/api/v1/methodologies", tag = "methodologies", params(VersionQuery, PageQuery),
    responses((status = 200, body = Paginated<VersionView>)))]
pub async fn list_methodologies(
    state: web::Data<AppState>,
    query: web::Query<VersionQuery>,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let page = page.page()?;
    let filter = query.into_inner().filter()?;
    let rows = state
        .db
        .run(move |conn| Ok(store::list_versions(conn, &filter, page.before, page.limit + 1)?))
        .await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page, |r| r.id, VersionView::from)))
}

/// One methodology version.
#[utoipa::path(get, path = "/api/v1/methodologies/{id}", tag = "methodologies",
    responses((status = 200, body = VersionView), (status = 404, body = Problem)))]
pub async fn get_methodology(state: web::Data<AppState>, id: web::Path<i64>) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let row = state
        .db
        .run(move |conn| Ok(store::find_version(conn, id)?))
        .await?
        .ok_or_else(|| ApiError::not_found("no such methodology version"))?;
    Ok(HttpResponse::Ok().json(VersionView::from(row)))
}

/// Draft a new methodology version; the formula is parsed and its names checked now.
#[utoipa::path(post, path = "/api/v1/admin/methodologies", tag = "admin", request_body = DraftRequest,
    security(("bearer" = [])),
    responses((status = 201, body = VersionView), (status = 422, body = Problem)))]
pub async fn create_draft(
    state: web::Data<AppState>,
    admin: Admin,
    body: ApiJson<DraftRequest>,
) -> ApiResult<HttpResponse> {
    let draft = draft::validate(body.0, &state.catalog.get())?;
    let admin_id = admin.0.user_id()?;
    let now = state.clock.now_naive();
    let row = state
        .db
        .run(move |conn| Ok(service::create_draft(conn, now, admin_id, &draft)?))
        .await?;
    Ok(HttpResponse::Created().json(VersionView::from(row)))
}

/// Put a draft in force. Needs an administrator other than the drafter.
#[utoipa::path(post, path = "/api/v1/admin/methodologies/{id}/activate", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = VersionView), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn activate(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let (admin_id, id) = (admin.0.user_id()?, id.into_inner());
    let now = state.clock.now_naive();
    let cache = state.catalog.clone();
    let row = state
        .db
        .run(move |conn| {
            let row = service::activate(conn, now, admin_id, id)?;
            cache.reload(conn)?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(VersionView::from(row)))
}

/// Retire a draft or an active version.
#[utoipa::path(post, path = "/api/v1/admin/methodologies/{id}/retire", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = VersionView), (status = 409, body = Problem)))]
pub async fn retire(state: web::Data<AppState>, admin: Admin, id: web::Path<i64>) -> ApiResult<HttpResponse> {
    let (admin_id, id) = (admin.0.user_id()?, id.into_inner());
    let now = state.clock.now_naive();
    let cache = state.catalog.clone();
    let row = state
        .db
        .run(move |conn| {
            let row = service::retire(conn, now, admin_id, id)?;
            cache.reload(conn)?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(VersionView::from(row)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuantifyRequest {
    pub activity_type: String,
    pub region_code: String,
    #[serde(deserialize_with = "crate::http::timestamp::required")]
    pub occurred_at: DateTime<FixedOffset>,
    #[schema(value_type = Object)]
    pub data: serde_json::Map<String, serde_json::Value>,
    /// Evidence tier for the points estimate; `self_report` unless given.
    pub evidence: Option<Evidence>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuantifyResponse {
    pub reduction_g: i64,
    /// Points this reduction would earn with the given evidence, before any daily cap.
    pub points: i64,
    pub evidence: Evidence,
    pub points_per_gram: String,
    pub methodology: MethodologyRef,
    #[schema(value_type = Vec<Object>)]
    pub breakdown: Vec<Step>,
}

/// Dry run: quantify an activity with the version in force; nothing is stored.
#[utoipa::path(post, path = "/api/v1/quantify", tag = "methodologies", request_body = QuantifyRequest,
    security(("bearer" = [])),
    responses((status = 200, body = QuantifyResponse), (status = 422, body = Problem)))]
pub async fn quantify_dry_run(
    state: web::Data<AppState>,
    _caller: Authenticated,
    body: ApiJson<QuantifyRequest>,
) -> ApiResult<HttpResponse> {
    let req = body.0;
    let evidence = req.evidence.unwrap_or(Evidence::SelfReport);
    let catalog = state.catalog.get();
    let q = quantify(
        &catalog,
        &req.activity_type,
        &req.region_code,
        req.occurred_at.naive_utc(),
        &req.data,
        evidence,
        true,
    )?;
    Ok(HttpResponse::Ok().json(QuantifyResponse {
        reduction_g: q.quantity.reduction_g,
        points: q.points,
        evidence,
        points_per_gram: q.quantity.points_per_gram.to_string(),
        methodology: q.methodology(),
        breakdown: q.quantity.breakdown,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub id: String,
    pub actor_user_id: Option<String>,
    pub action: AuditAction,
    pub entity: AuditEntity,
    pub entity_id: String,
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Paginated<AuditView>)))]
pub async fn list_audit(
    state: web::Data<AppState>,
    _admin: Admin,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let page = page.page()?;
    let rows = state
        .db
        .run(move |conn| Ok(audit::list(conn, page.before, page.limit + 1)?))
        .await?;
    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    Ok(HttpResponse::Ok().json(Paginated::from_rows(
        rows,
        page,
        |r| r.id,
        |r| AuditView {
            id: r.id.to_string(),
            actor_user_id: r.actor_user_id.map(|u| u.to_string()),
            action: r.action,
            entity: r.entity,
            entity_id: r.entity_id,
            before: parse(r.before_json),
            after: parse(r.after_json),
            created_at: utc(r.created_at),
        },
    )))
}

/// Simulate a draft before activating it: the stored activities it would take in the window (those that
/// occurred then, in its region, where no nearer or later version keeps them) quantified under the rules
/// in force now and under the draft, in grams and in points, with the split by region code and by
/// macro-region and the number of people whose result changes. Points follow crediting (the region's
/// points per gram, the evidence's weight) but ignore daily and annual caps. Nothing changes. The
/// administrator's scope must cover the draft's region (403 `out_of_scope`).
#[utoipa::path(post, path = "/api/v1/admin/methodologies/{id}/simulate", tag = "admin", request_body = SimulateRequest,
    security(("bearer" = [])),
    responses((status = 200, body = Simulation), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn simulate(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
    body: ApiJson<SimulateRequest>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let req = body.0;
    let catalog = state.catalog.get();
    let result = state
        .db
        .run(move |conn| Ok(simulation::simulate(conn, &catalog, &governor.scope, id, &req)?))
        .await?;
    Ok(HttpResponse::Ok().json(result))
}
