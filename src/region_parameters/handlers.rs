//! Region parameters over HTTP: administrators draft, edit, delete and activate versions; anyone reads the
//! values in force for a region at an instant.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::draft::{self, earliest_start, DraftRequest, EditRequest};
use super::service::{self, Actor, ParameterError};
use super::simulate::{self as simulation, ParameterSimulationError, ParameterSimulationRequest};
use super::store::{self, ParameterFilter, ParameterStatus};
use super::views::{ParameterVersionView, ParametersInForce, ValueInForce};
use crate::domain::region_parameters::Source;
use crate::error::{ApiError, ApiResult, ErrorCode, Problem};
use crate::governance::Governor;
use crate::http::json::ApiJson;
use crate::http::pagination::{PageQuery, Paginated};
use crate::methodology::impact::Simulation;
use crate::state::AppState;

impl From<ParameterError> for ApiError {
    fn from(e: ParameterError) -> ApiError {
        use ParameterError as E;
        let detail = e.to_string();
        match e {
            E::NotFound => ApiError::not_found(detail),
            E::OwnRequest(e) => e.into(),
            E::OutOfScope(e) => e.into(),
            E::NotADraft(_) | E::StartPassed { .. } | E::ChangedMeanwhile => {
                ApiError::conflict(ErrorCode::InvalidState, detail)
            }
            E::Fields(errors) => ApiError::validation(errors),
            E::Database(e) => e.into(),
        }
    }
}

/// The governor acting at `now`, as the service takes it.
fn actor(governor: &Governor, now: chrono::NaiveDateTime) -> Actor<'_> {
    Actor {
        admin: governor.user_id,
        scope: &governor.scope,
        now,
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/regions/{code}/parameters").route(web::get().to(parameters_in_force)))
        .service(
            web::resource("/admin/region-parameters")
                .route(web::post().to(create_draft))
                .route(web::get().to(list_versions)),
        )
        .service(
            web::resource("/admin/region-parameters/{id}")
                .route(web::get().to(get_version))
                .route(web::patch().to(edit_draft))
                .route(web::delete().to(delete_draft)),
        )
        .service(web::resource("/admin/region-parameters/{id}/activate").route(web::post().to(activate)))
        .service(web::resource("/admin/region-parameters/{id}/simulate").route(web::post().to(simulate)));
}

/// The earliest start a version may have now.
fn earliest(state: &AppState) -> chrono::NaiveDateTime {
    earliest_start(
        state.clock.now_naive(),
        state.settings.activities.future_skew_secs,
    )
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AtQuery {
    /// RFC 3339; now unless given.
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub at: Option<String>,
}

/// The region parameters in force for a region at an instant (now unless `at` is given): each value with
/// the version, and the region of that version, it comes from (inherited city ▸ province ▸ nation).
#[utoipa::path(get, path = "/api/v1/regions/{code}/parameters", tag = "regions", params(AtQuery),
    responses((status = 200, body = ParametersInForce), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn parameters_in_force(
    state: web::Data<AppState>,
    code: web::Path<String>,
    query: web::Query<AtQuery>,
) -> ApiResult<HttpResponse> {
    let at = match &query.at {
        Some(text) => crate::http::timestamp::parse(text)
            .map_err(|why| ApiError::field("at", why))?
            .naive_utc(),
        None => state.clock.now_naive(),
    };
    let catalog = state.catalog.get();
    let code = code.into_inner();
    if catalog.region(&code).is_none() {
        return Err(ApiError::not_found("no such region"));
    }
    let values = catalog
        .region_values(&code, at)
        .into_iter()
        .map(|(name, resolved)| {
            let (version_id, region_code) = match resolved.source {
                Source::Version(v) => (Some(v.id.to_string()), Some(v.region_code.clone())),
                Source::Default => (None, None),
            };
            let value = ValueInForce {
                value: resolved.value.to_string(),
                version_id,
                region_code,
            };
            (name, value)
        })
        .collect();
    Ok(HttpResponse::Ok().json(ParametersInForce {
        region_parameters_id: catalog.region_parameters_id(&code, at).map(|id| id.to_string()),
        region_code: code,
        at: at.and_utc(),
        values,
    }))
}

/// Draft a region-parameter version for a region the caller governs. Audited.
#[utoipa::path(post, path = "/api/v1/admin/region-parameters", tag = "admin", request_body = DraftRequest,
    security(("bearer" = [])),
    responses((status = 201, body = ParameterVersionView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_draft(
    state: web::Data<AppState>,
    governor: Governor,
    body: ApiJson<DraftRequest>,
) -> ApiResult<HttpResponse> {
    let draft =
        draft::check(body.0.into(), &state.catalog.get(), earliest(&state)).map_err(ApiError::validation)?;
    let now = state.clock.now_naive();
    let row = state
        .db
        .run(move |conn| {
            let actor = actor(&governor, now);
            Ok(service::create_draft(conn, actor, &draft)?)
        })
        .await?;
    Ok(HttpResponse::Created().json(ParameterVersionView::from(&row)))
}

/// The listing's filter as given in the query string.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct VersionQuery {
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub region_code: Option<String>,
    /// draft or active
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    #[param(value_type = Option<ParameterStatus>)]
    pub status: Option<String>,
}

/// Region-parameter versions, newest first; every region and status unless filtered.
#[utoipa::path(get, path = "/api/v1/admin/region-parameters", tag = "admin", params(VersionQuery, PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Paginated<ParameterVersionView>), (status = 422, body = Problem)))]
pub async fn list_versions(
    state: web::Data<AppState>,
    _governor: Governor,
    query: web::Query<VersionQuery>,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let page = page.page()?;
    let query = query.into_inner();
    let status = match query.status {
        None => None,
        Some(s) => Some(
            s.parse::<ParameterStatus>()
                .map_err(|_| ApiError::field("status", "must be draft or active"))?,
        ),
    };
    let filter = ParameterFilter {
        region_code: query.region_code,
        status,
    };
    let rows = state
        .db
        .run(move |conn| Ok(store::list(conn, &filter, page.before, page.limit + 1)?))
        .await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(
        rows,
        page,
        |r| r.id,
        |r| ParameterVersionView::from(&r),
    )))
}

/// One region-parameter version.
#[utoipa::path(get, path = "/api/v1/admin/region-parameters/{id}", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = ParameterVersionView), (status = 404, body = Problem)))]
pub async fn get_version(
    state: web::Data<AppState>,
    _governor: Governor,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let row = state
        .db
        .run(move |conn| Ok(store::find(conn, id)?))
        .await?
        .ok_or(ParameterError::NotFound)?;
    Ok(HttpResponse::Ok().json(ParameterVersionView::from(&row)))
}

/// Change a draft (in scope); `values`, when given, replaces all its values. The editor becomes its
/// drafter. Audited.
#[utoipa::path(patch, path = "/api/v1/admin/region-parameters/{id}", tag = "admin", request_body = EditRequest,
    security(("bearer" = [])),
    responses((status = 200, body = ParameterVersionView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn edit_draft(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
    body: ApiJson<EditRequest>,
) -> ApiResult<HttpResponse> {
    let (id, edit) = (id.into_inner(), body.0);
    let (now, earliest, catalog) = (state.clock.now_naive(), earliest(&state), state.catalog.get());
    let row = state
        .db
        .run(move |conn| {
            let actor = actor(&governor, now);
            Ok(service::edit_draft(conn, actor, id, edit, &catalog, earliest)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ParameterVersionView::from(&row)))
}

/// Delete a draft (in scope). Audited.
#[utoipa::path(delete, path = "/api/v1/admin/region-parameters/{id}", tag = "admin", security(("bearer" = [])),
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
            Ok(service::delete_draft(conn, actor, id)?)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Put a draft in force: by an administrator other than its drafter, whose scope covers its region, while
/// its start is still ahead. Audited; every instance reloads.
#[utoipa::path(post, path = "/api/v1/admin/region-parameters/{id}/activate", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = ParameterVersionView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
pub async fn activate(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let (now, earliest) = (state.clock.now_naive(), earliest(&state));
    let row = state
        .catalog
        .apply(&state.db, move |conn| {
            let actor = actor(&governor, now);
            Ok(service::activate(conn, actor, id, earliest)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ParameterVersionView::from(&row)))
}

impl From<ParameterSimulationError> for ApiError {
    fn from(e: ParameterSimulationError) -> ApiError {
        use ParameterSimulationError as E;
        let detail = e.to_string();
        match e {
            E::Window(e) => ApiError::field("to", e.to_string()),
            E::OutsideDraft => ApiError::field("region_code", detail),
            E::UnknownActivityType => ApiError::unprocessable(ErrorCode::UnknownActivityType, detail),
            E::NotFound => ApiError::not_found(detail),
            E::OutOfScope(e) => e.into(),
            E::BrokenVersion(why) => ApiError::internal(anyhow::anyhow!(why)),
            E::Query(e) => e.into(),
        }
    }
}

/// What a region-parameter draft would change, decided before activating it: the stored activities of
/// its region (and below) in the window, in grams and points under the values in force and as if the
/// draft had been in force from the window's start, with the split by region code and macro-region and the
/// number of people whose result changes. Points follow crediting but ignore caps. Nothing changes. The
/// administrator's scope must cover the draft's region (403 `out_of_scope`).
#[utoipa::path(post, path = "/api/v1/admin/region-parameters/{id}/simulate", tag = "admin",
    request_body = ParameterSimulationRequest, security(("bearer" = [])),
    responses((status = 200, body = Simulation), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn simulate(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
    body: ApiJson<ParameterSimulationRequest>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let request = body.0;
    let catalog = state.catalog.get();
    let result = state
        .db
        .run(move |conn| {
            Ok(simulation::simulate(
                conn,
                &catalog,
                &governor.scope,
                id,
                &request,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(result))
}
