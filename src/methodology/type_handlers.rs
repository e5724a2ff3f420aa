//! Activity types over HTTP: created at once, changed through a pending change that a second national
//! administrator approves. Activity types are national: only a national administrator creates, changes or
//! approves.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::activity_types::{self, ChangeRow, ChangeStatus, NewActivityType, TypeChange, TypeError};
use super::views::{utc, ActivityTypeView};
use crate::domain::data_schema::DataSchema;
use crate::error::{ApiError, ApiResult, ErrorCode, FieldError, Problem};
use crate::governance::Governor;
use crate::http::json::ApiJson;
use crate::http::pagination::{PageQuery, Paginated};
use crate::state::AppState;

impl From<TypeError> for ApiError {
    fn from(e: TypeError) -> ApiError {
        let detail = e.to_string();
        match e {
            TypeError::NoSuchType | TypeError::NoSuchChange => ApiError::not_found(detail),
            TypeError::Exists => ApiError::conflict(ErrorCode::Conflict, detail),
            TypeError::NotPending(_) => ApiError::conflict(ErrorCode::InvalidState, detail),
            TypeError::OwnRequest(e) => e.into(),
            TypeError::Incompatible(errors) => {
                let mut error = ApiError::conflict(ErrorCode::IncompatibleSchema, detail);
                error.errors = errors;
                error
            }
            TypeError::UnusableStoredSchema | TypeError::Vanished(_) | TypeError::Json(_) => {
                ApiError::internal(e)
            }
            TypeError::Database(e) => e.into(),
        }
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/activity-types").route(web::post().to(create_activity_type)))
        .service(web::resource("/admin/activity-types/{code}").route(web::patch().to(change_activity_type)))
        .service(web::resource("/admin/activity-type-changes").route(web::get().to(list_changes)))
        .service(
            web::resource("/admin/activity-type-changes/{id}/approve").route(web::post().to(approve_change)),
        );
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
    /// Whether a person does one activity of this type at a time (default false).
    #[serde(default)]
    pub travel: bool,
    /// Average speeds above this (km/h) flag an activity for review (default: no bound).
    pub max_speed_kmh: Option<i32>,
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
/// The highest speed bound a type may have: above any train, so a bound is a plausibility check and
/// not a typo's way to switch it off.
pub const MAX_SPEED_KMH: i32 = 1_000;

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

fn field(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Notes a name that is blank or too long.
fn check_label(name: &str, value: &str, errors: &mut Vec<FieldError>) {
    if value.trim().is_empty() || value.chars().count() > TYPE_LABEL_MAX_CHARS {
        errors.push(field(
            name,
            format!("must be 1 to {TYPE_LABEL_MAX_CHARS} characters"),
        ));
    }
}

fn check_window(days: i32, errors: &mut Vec<FieldError>) {
    if !(1..=MAX_CLAIM_WINDOW_DAYS).contains(&days) {
        errors.push(field(
            "claim_window_days",
            format!("must be between 1 and {MAX_CLAIM_WINDOW_DAYS}"),
        ));
    }
}

fn check_speed(kmh: Option<i32>, errors: &mut Vec<FieldError>) {
    if kmh.is_some_and(|k| !(1..=MAX_SPEED_KMH).contains(&k)) {
        errors.push(field(
            "max_speed_kmh",
            format!("must be between 1 and {MAX_SPEED_KMH}"),
        ));
    }
}

impl ActivityTypeRequest {
    /// The new type with its name and unit trimmed, or every field that is wrong.
    fn check(self) -> Result<NewActivityType, Vec<FieldError>> {
        let mut errors = Vec::new();
        if !is_type_code(&self.code) {
            errors.push(field(
                "code",
                "lower-case words separated by dots, e.g. transit.ferry",
            ));
        }
        check_label("name", &self.name, &mut errors);
        check_label("unit", &self.unit, &mut errors);
        let window = self.claim_window_days.unwrap_or(DEFAULT_CLAIM_WINDOW_DAYS);
        check_window(window, &mut errors);
        check_speed(self.max_speed_kmh, &mut errors);
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
            travel: self.travel,
            max_speed_kmh: self.max_speed_kmh,
        })
    }
}

/// A change's fields checked one by one (its schema's compatibility is checked against the stored one),
/// its name trimmed; at least one field.
fn check_change(mut change: TypeChange) -> Result<TypeChange, Vec<FieldError>> {
    let mut errors = Vec::new();
    if change.is_empty() {
        errors.push(field(
            "body",
            "name at least one of name, claim_window_days, travel, max_speed_kmh, data_schema",
        ));
    }
    if let Some(name) = &change.name {
        check_label("name", name, &mut errors);
    }
    change.name = change.name.map(|n| n.trim().to_string());
    if let Some(days) = change.claim_window_days {
        check_window(days, &mut errors);
    }
    check_speed(change.max_speed_kmh.flatten(), &mut errors);
    if let Some(Err(schema_errors)) = change.data_schema.as_ref().map(DataSchema::parse) {
        errors.extend(schema_errors);
    }
    if errors.is_empty() {
        Ok(change)
    } else {
        Err(errors)
    }
}

/// Add an activity type without a code change: in force at once, audited (national administrators).
#[utoipa::path(post, path = "/api/v1/admin/activity-types", tag = "admin", request_body = ActivityTypeRequest,
    security(("bearer" = [])),
    responses((status = 201, body = ActivityTypeView), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn create_activity_type(
    state: web::Data<AppState>,
    governor: Governor,
    body: ApiJson<ActivityTypeRequest>,
) -> ApiResult<HttpResponse> {
    governor.scope.check_national()?;
    let new = body.0.check().map_err(ApiError::validation)?;
    let now = state.clock.now_naive();
    let row = state
        .catalog
        .apply(&state.db, move |conn| {
            Ok(activity_types::create(conn, now, governor.user_id, &new)?)
        })
        .await?;
    Ok(HttpResponse::Created().json(ActivityTypeView::from(row)))
}

/// A change to an activity type, pending or approved.
#[derive(Debug, Serialize, ToSchema)]
pub struct TypeChangeView {
    pub change_id: String,
    pub activity_type: String,
    pub status: ChangeStatus,
    /// The fields the change sets.
    #[schema(value_type = Object)]
    pub proposed: serde_json::Value,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
}

impl From<ChangeRow> for TypeChangeView {
    fn from(row: ChangeRow) -> TypeChangeView {
        TypeChangeView {
            change_id: row.id.to_string(),
            proposed: row.proposed(),
            activity_type: row.activity_type,
            status: row.status,
            requested_by: row.requested_by.to_string(),
            requested_at: utc(row.requested_at),
            approved_by: row.approved_by.map(|u| u.to_string()),
            approved_at: row.approved_at.map(utc),
        }
    }
}

/// Propose a change to an activity type (national administrators): nothing changes until another
/// national administrator approves it. A data schema may only add optional fields or widen bounds; any
/// other schema change → 409 `incompatible_schema`, each field named in `errors`.
#[utoipa::path(patch, path = "/api/v1/admin/activity-types/{code}", tag = "admin", request_body = TypeChange,
    security(("bearer" = [])),
    responses((status = 202, body = TypeChangeView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn change_activity_type(
    state: web::Data<AppState>,
    governor: Governor,
    code: web::Path<String>,
    body: ApiJson<TypeChange>,
) -> ApiResult<HttpResponse> {
    governor.scope.check_national()?;
    let change = check_change(body.0).map_err(ApiError::validation)?;
    let (code, now) = (code.into_inner(), state.clock.now_naive());
    let row = state
        .db
        .run(move |conn| {
            Ok(activity_types::request_change(
                conn,
                now,
                governor.user_id,
                &code,
                &change,
            )?)
        })
        .await?;
    Ok(HttpResponse::Accepted().json(TypeChangeView::from(row)))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct ChangeQuery {
    /// pending or approved
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    #[param(value_type = Option<ChangeStatus>)]
    pub status: Option<String>,
}

/// Changes to activity types, newest first (any administrator): what waits for approval with
/// `status=pending`.
#[utoipa::path(get, path = "/api/v1/admin/activity-type-changes", tag = "admin", params(ChangeQuery, PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Paginated<TypeChangeView>), (status = 422, body = Problem)))]
pub async fn list_changes(
    state: web::Data<AppState>,
    _governor: Governor,
    query: web::Query<ChangeQuery>,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let page = page.page()?;
    let status = match &query.status {
        None => None,
        Some(s) => Some(
            s.parse::<ChangeStatus>()
                .map_err(|_| ApiError::field("status", "must be pending or approved"))?,
        ),
    };
    let rows = state
        .db
        .run(move |conn| {
            Ok(activity_types::list_changes(
                conn,
                status,
                page.before,
                page.limit + 1,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page, |r| r.id, TypeChangeView::from)))
}

/// The change approved and the type as it now is.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovedChange {
    pub change_id: String,
    pub status: ChangeStatus,
    pub activity_type: ActivityTypeView,
}

/// Approve a pending change (a national administrator other than its requester): in force at once, on
/// every instance within a catalog poll.
#[utoipa::path(post, path = "/api/v1/admin/activity-type-changes/{id}/approve", tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, body = ApprovedChange), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
pub async fn approve_change(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    governor.scope.check_national()?;
    let (id, now) = (id.into_inner(), state.clock.now_naive());
    let (change, kind) = state
        .catalog
        .apply(&state.db, move |conn| {
            Ok(activity_types::approve_change(conn, now, governor.user_id, id)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ApprovedChange {
        change_id: change.id.to_string(),
        status: change.status,
        activity_type: ActivityTypeView::from(kind),
    }))
}
