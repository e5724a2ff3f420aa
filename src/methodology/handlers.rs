//! Regions, activity types, methodologies and quantification over HTTP.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::check::{self, FormulaCheck, FormulaCheckRequest};
use super::diff::{self, VersionDiff};
use super::draft::{self, DraftError, DraftRequest};
use super::impact::Simulation;
use super::quantify::quantify;
use super::service::{self, Actor, MethodologyError};
use super::simulate::{self as simulation, SimulateRequest};
use super::store::{self, MethodologyStatus, VersionFilter, VersionRow};
use super::views::{utc, ActivityTypeView, MethodologyRef, RegionView, VersionView};
use crate::auth::extract::Authenticated;
use crate::domain::catalog::Evidence;
use crate::domain::formula::Step;
use crate::error::{ApiError, ApiResult, ErrorCode, FieldError, Problem};
use crate::governance::Governor;
use crate::http::json::ApiJson;
use crate::http::pagination::{PageQuery, Paginated};
use crate::http::reader::Reader;
use crate::state::AppState;

impl From<MethodologyError> for ApiError {
    fn from(e: MethodologyError) -> ApiError {
        use MethodologyError as E;
        let detail = e.to_string();
        match e {
            E::NoSuchVersion => ApiError::not_found(detail),
            E::OutOfScope(e) => e.into(),
            E::OwnRequest(e) => e.into(),
            E::NotTheDrafter => ApiError::forbidden(detail),
            E::NotADraft(_)
            | E::NotActive(_)
            | E::ChangedMeanwhile
            | E::RetireAlreadyRequested
            | E::NoRetireRequest => ApiError::conflict(ErrorCode::InvalidState, detail),
            E::VersionNumberTaken => ApiError::conflict(ErrorCode::Conflict, detail),
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
        .service(web::resource("/admin/methodologies").route(web::post().to(create_draft)))
        // Before `{id}`, which would take `validate` for an id and answer 405.
        .service(web::resource("/admin/methodologies/validate").route(web::post().to(check_formula)))
        .service(
            web::resource("/admin/methodologies/{id}")
                .route(web::patch().to(edit_draft))
                .route(web::delete().to(delete_draft)),
        )
        .service(web::resource("/admin/methodologies/{id}/diff").route(web::get().to(version_diff)))
        .service(web::resource("/admin/methodologies/{id}/activate").route(web::post().to(activate)))
        .service(web::resource("/admin/methodologies/{id}/retire").route(web::post().to(retire)))
        .service(
            web::resource("/admin/methodologies/{id}/retire/approve").route(web::post().to(approve_retire)),
        )
        .service(web::resource("/admin/methodologies/{id}/simulate").route(web::post().to(simulate)));
}

#[derive(Serialize, ToSchema)]
pub struct RegionList {
    pub items: Vec<RegionView>,
}

/// Every region (nation, provinces, pilot cities), unpaginated.
#[utoipa::path(get, path = "/api/v1/regions", tag = "regions", responses((status = 200, body = RegionList)))]
pub async fn list_regions(state: web::Data<AppState>, reader: Reader) -> ApiResult<HttpResponse> {
    let rows = reader
        .run(&state.db, |conn| Ok(store::all_regions(conn)?))
        .await?;
    let catalog = state.catalog.get();
    let now = state.clock.now_naive();
    let items = rows
        .into_iter()
        .map(|r| {
            let rate = catalog.points_per_gram(&r.code, now).to_string();
            RegionView::new(r, rate)
        })
        .collect();
    Ok(HttpResponse::Ok().json(RegionList { items }))
}

/// One region.
#[utoipa::path(get, path = "/api/v1/regions/{code}", tag = "regions",
    responses((status = 200, body = RegionView), (status = 404, body = Problem)))]
pub async fn get_region(
    state: web::Data<AppState>,
    reader: Reader,
    code: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let code = code.into_inner();
    let row = reader
        .run(&state.db, move |conn| Ok(store::find_region(conn, &code)?))
        .await?
        .ok_or_else(|| ApiError::not_found("no such region"))?;
    let rate = state
        .catalog
        .get()
        .points_per_gram(&row.code, state.clock.now_naive())
        .to_string();
    Ok(HttpResponse::Ok().json(RegionView::new(row, rate)))
}

#[derive(Serialize, ToSchema)]
pub struct ActivityTypeList {
    pub items: Vec<ActivityTypeView>,
}

/// Every activity type with the schema of its data.
#[utoipa::path(get, path = "/api/v1/activity-types", tag = "methodologies", responses((status = 200, body = ActivityTypeList)))]
pub async fn list_activity_types(state: web::Data<AppState>, reader: Reader) -> ApiResult<HttpResponse> {
    let rows = reader
        .run(&state.db, |conn| Ok(store::all_activity_types(conn)?))
        .await?;
    Ok(HttpResponse::Ok().json(ActivityTypeList {
        items: rows.into_iter().map(Into::into).collect(),
    }))
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
    reader: Reader,
    query: web::Query<VersionQuery>,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let page = page.page()?;
    let filter = query.into_inner().filter()?;
    let rows = reader
        .run(&state.db, move |conn| {
            Ok(store::list_versions(conn, &filter, page.before, page.limit + 1)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page, |r| r.id, VersionView::from)))
}

/// One methodology version.
#[utoipa::path(get, path = "/api/v1/methodologies/{id}", tag = "methodologies",
    responses((status = 200, body = VersionView), (status = 404, body = Problem)))]
pub async fn get_methodology(
    state: web::Data<AppState>,
    reader: Reader,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let row = reader
        .run(&state.db, move |conn| Ok(store::find_version(conn, id)?))
        .await?
        .ok_or_else(|| ApiError::not_found("no such methodology version"))?;
    Ok(HttpResponse::Ok().json(VersionView::from(row)))
}

/// Draft a new methodology version; the formula is parsed and its names checked now. The region must be in
/// the caller's scope.
#[utoipa::path(post, path = "/api/v1/admin/methodologies", tag = "admin", request_body = DraftRequest,
    security(("bearer" = [])),
    responses((status = 201, body = VersionView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_draft(
    state: web::Data<AppState>,
    governor: Governor,
    body: ApiJson<DraftRequest>,
) -> ApiResult<HttpResponse> {
    let draft = draft::validate(body.0, &state.catalog.get())?;
    let now = state.clock.now_naive();
    let row = state
        .db
        .run(move |conn| {
            let actor = actor(&governor, now);
            Ok(service::create_draft(conn, &actor, &draft)?)
        })
        .await?;
    Ok(HttpResponse::Created().json(VersionView::from(row)))
}

/// Check a draft's formula as it is written, storing nothing: where it fails to parse (line, column and
/// span), which names it does not know, which parameters are wrong and, when it is valid and a sample is
/// given, the sample's reduction, points and breakdown in the draft's region. Answers 200 with the
/// problems; only a malformed body is refused. Any administrator.
#[utoipa::path(post, path = "/api/v1/admin/methodologies/validate", tag = "admin", request_body = FormulaCheckRequest,
    security(("bearer" = [])),
    responses((status = 200, body = FormulaCheck), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)))]
pub async fn check_formula(
    state: web::Data<AppState>,
    _governor: Governor,
    body: ApiJson<FormulaCheckRequest>,
) -> ApiResult<HttpResponse> {
    let result = check::check(body.0, &state.catalog.get(), state.clock.now_naive());
    Ok(HttpResponse::Ok().json(result))
}

fn actor(governor: &Governor, at: chrono::NaiveDateTime) -> Actor<'_> {
    Actor {
        at,
        admin: governor.user_id,
        scope: &governor.scope,
    }
}

async fn find_version(state: &AppState, id: i64) -> ApiResult<VersionRow> {
    state
        .db
        .run(move |conn| Ok(store::find_version(conn, id)?))
        .await?
        .ok_or_else(|| ApiError::not_found("no such methodology version"))
}

/// A draft as the request that would draft it, for a correction to be laid over.
fn as_request(row: &VersionRow) -> serde_json::Value {
    serde_json::json!({
        "activity_type": row.activity_type,
        "region_code": row.region_code,
        "effective_from": utc(row.effective_from).to_rfc3339(),
        "effective_to": row.effective_to.map(|t| utc(t).to_rfc3339()),
        "parameters": row.parameters(),
        "formula": row.formula,
        "daily_cap_g": row.daily_cap_g,
        "citation": row.citation,
        "evidence_weights": row.weights(),
    })
}

/// Correct a draft (its drafter only, in scope): any fields of a draft, laid over the stored ones and
/// checked again as a whole; `null` clears `effective_to` or `daily_cap_g`. A version that is not a draft
/// → 409 `invalid_state`.
#[utoipa::path(patch, path = "/api/v1/admin/methodologies/{id}", tag = "admin",
    request_body(content = DraftRequest, description = "Any subset of a draft's fields"),
    security(("bearer" = [])),
    responses((status = 200, body = VersionView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn edit_draft(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
    body: ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let row = find_version(&state, id).await?;
    if row.status != MethodologyStatus::Draft {
        return Err(MethodologyError::NotADraft(row.status).into());
    }
    governor.scope.check(&row.region_code)?;
    let mut merged = as_request(&row);
    for (field, value) in body.0 {
        merged[field] = value;
    }
    let bytes = serde_json::to_vec(&merged).map_err(ApiError::internal)?;
    let request: DraftRequest = crate::http::json::parse(&bytes)?;
    let draft = draft::validate(request, &state.catalog.get())?;
    let now = state.clock.now_naive();
    let row = state
        .db
        .run(move |conn| {
            let actor = actor(&governor, now);
            Ok(service::edit_draft(conn, &actor, id, &draft)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(VersionView::from(row)))
}

/// Delete a draft (any administrator whose scope covers it); it is gone, not listed. A version that is not
/// a draft → 409 `invalid_state`.
#[utoipa::path(delete, path = "/api/v1/admin/methodologies/{id}", tag = "admin", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete_draft(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let now = state.clock.now_naive();
    state
        .db
        .run(move |conn| {
            let actor = actor(&governor, now);
            Ok(service::delete_draft(conn, &actor, id)?)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// What a version changes against the one it replaces (the active version of the same type and region in
/// force when it takes effect): dates, formula, cap, each parameter and each evidence weight. For the
/// approver to read before activating.
#[utoipa::path(get, path = "/api/v1/admin/methodologies/{id}/diff", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = VersionDiff), (status = 404, body = Problem)))]
pub async fn version_diff(
    state: web::Data<AppState>,
    _governor: Governor,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let (row, replaced) = state
        .db
        .run(move |conn| {
            let Some(row) = store::find_version(conn, id)? else {
                return Ok(None);
            };
            let replaced = store::replaced_version(conn, &row)?;
            Ok(Some((row, replaced)))
        })
        .await?
        .ok_or_else(|| ApiError::not_found("no such methodology version"))?;
    Ok(HttpResponse::Ok().json(diff::diff(replaced.as_ref(), &row)))
}

/// Put a draft in force. Needs an administrator in scope other than the drafter.
#[utoipa::path(post, path = "/api/v1/admin/methodologies/{id}/activate", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = VersionView), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn activate(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let now = state.clock.now_naive();
    let row = state
        .catalog
        .apply(&state.db, move |conn| {
            Ok(service::activate(conn, &actor(&governor, now), id)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(VersionView::from(row)))
}

crate::text_enum! {
    /// Where a requested retirement stands: the version stays in force until a second administrator approves.
    pub enum RetirementStatus {
        Pending = "retire_pending",
    }
}

/// A retirement waiting for a second administrator.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetireRequestView {
    pub id: String,
    pub status: RetirementStatus,
    pub retire_requested_by: Option<String>,
    pub retire_requested_at: Option<DateTime<Utc>>,
}

/// Ask to retire an active version (in scope); it stays in force until another administrator in scope
/// approves. A draft is deleted instead (409 `invalid_state`), as is a version already retired or whose
/// retirement is already requested.
#[utoipa::path(post, path = "/api/v1/admin/methodologies/{id}/retire", tag = "admin", security(("bearer" = [])),
    responses((status = 202, body = RetireRequestView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
pub async fn retire(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let now = state.clock.now_naive();
    let row = state
        .db
        .run(move |conn| Ok(service::request_retire(conn, &actor(&governor, now), id)?))
        .await?;
    Ok(HttpResponse::Accepted().json(RetireRequestView {
        id: row.id.to_string(),
        status: RetirementStatus::Pending,
        retire_requested_by: row.retire_requested_by.map(|u| u.to_string()),
        retire_requested_at: row.retire_requested_at.map(utc),
    }))
}

/// Approve a requested retirement: an administrator in scope other than the requester. Stored results keep
/// their version and stay explainable.
#[utoipa::path(post, path = "/api/v1/admin/methodologies/{id}/retire/approve", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = VersionView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
pub async fn approve_retire(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let now = state.clock.now_naive();
    let row = state
        .catalog
        .apply(&state.db, move |conn| {
            Ok(service::approve_retire(conn, &actor(&governor, now), id)?)
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
