//! Every figure explained: one stored activity with how its grams were worked out and who decided it,
//! for its owner or an administrator governing its region; and its recomputation from the stored
//! inputs under the version it recorded, said to match or not.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::model::{BrokenAnswer, Reason, Status};
use super::review::Decision;
use super::store::{self, ActivityRow};
use crate::auth::extract::Authenticated;
use crate::auth::Role;
use crate::domain::catalog::Evidence;
use crate::domain::formula::Step;
use crate::error::{ApiError, ApiResult, Problem};
use crate::governance::Governor;
use crate::methodology::requantify::requantify;
use crate::methodology::store as methodology_store;
use crate::methodology::views::MethodologyRef;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/activities/{id}").route(web::get().to(get_activity)))
        .service(
            web::resource("/admin/activities/{id}/requantify").route(web::post().to(requantify_activity)),
        );
}

/// An administrator's decision on a flagged activity.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewRecord {
    pub decision: Decision,
    pub note: Option<String>,
    /// The administrator's user id.
    pub by: String,
    pub at: DateTime<Utc>,
}

/// A stored activity with everything its figures came from.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplainedActivity {
    pub activity_id: String,
    pub client_event_id: String,
    pub activity_type: String,
    pub region_code: String,
    pub occurred_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub evidence: Evidence,
    /// The data provider that reported it (`null`: the person's own app).
    pub provider_id: Option<String>,
    pub status: Status,
    pub reasons: Vec<Reason>,
    /// What the methodology gives, in grams CO2e.
    pub reduction_g: i64,
    /// What the caps let through.
    pub granted_g: i64,
    pub points: i64,
    /// The version it was quantified under (`null`: it came after its claim window and recorded none).
    pub methodology: Option<MethodologyRef>,
    /// The most specific region-parameter version in force for its region at its time; every value it
    /// used is `GET /api/v1/regions/{region_code}/parameters?at={occurred_at}`, fixed once that time
    /// passed (`null`: recorded none, as before region parameters were versioned).
    pub region_parameters_id: Option<String>,
    /// Each step of the formula with its value, as stored when it was quantified.
    #[schema(value_type = Vec<Object>)]
    pub breakdown: Vec<Step>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// The administrator's decision, once a flagged activity was decided.
    pub review: Option<ReviewRecord>,
    /// The issue transfer of its points, if any.
    pub transfer_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

fn parsed<T: serde::de::DeserializeOwned>(id: i64, json: &str) -> Result<T, BrokenAnswer> {
    serde_json::from_str(json).map_err(|source| BrokenAnswer { id, source })
}

impl ExplainedActivity {
    fn new(row: ActivityRow, methodology: Option<MethodologyRef>) -> Result<Self, BrokenAnswer> {
        let review = match (row.reviewed_by, row.reviewed_at) {
            (Some(by), Some(at)) => Some(ReviewRecord {
                // A decision leaves it rejected, or credited or capped by an approval.
                decision: if row.status == Status::Rejected {
                    Decision::Reject
                } else {
                    Decision::Approve
                },
                note: row.review_note.clone(),
                by: by.to_string(),
                at: at.and_utc(),
            }),
            _ => None,
        };
        Ok(ExplainedActivity {
            activity_id: row.id.to_string(),
            reasons: parsed(row.id, &row.reasons)?,
            breakdown: match &row.breakdown {
                Some(steps) => parsed(row.id, steps)?,
                None => Vec::new(),
            },
            data: parsed(row.id, &row.data)?,
            client_event_id: row.client_event_id,
            activity_type: row.activity_type,
            region_code: row.region_code,
            occurred_at: row.occurred_at.and_utc(),
            ended_at: row.ended_at.map(|t| t.and_utc()),
            evidence: row.evidence,
            provider_id: row.provider_id.map(|p| p.to_string()),
            region_parameters_id: row.region_parameters_id.map(|p| p.to_string()),
            status: row.status,
            reduction_g: row.reduction_g,
            granted_g: row.granted_g,
            points: row.points,
            methodology,
            review,
            transfer_id: row.transfer_id.map(|t| t.to_string()),
            created_at: row.created_at.and_utc(),
        })
    }
}

fn no_such_activity() -> ApiError {
    ApiError::not_found("no such activity")
}

/// One stored activity, explained: its breakdown, methodology version, evidence, reasons and review.
/// Its owner (a person's or business's token) reads its own; anyone else's is 404. An administrator
/// reads those of the regions it governs; elsewhere 403 `out_of_scope`.
#[utoipa::path(get, path = "/api/v1/activities/{id}", tag = "activities", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = ExplainedActivity), (status = 403, body = Problem, description = "out_of_scope"),
        (status = 404, body = Problem)))]
pub async fn get_activity(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let (row, methodology) = state
        .db
        .run(move |conn| {
            let Some(row) = store::find(conn, id)? else {
                return Ok((None, None));
            };
            let methodology = match row.methodology_id {
                Some(version) => methodology_store::find_version(conn, version)?.map(|v| MethodologyRef {
                    id: v.id.to_string(),
                    activity_type: v.activity_type,
                    region_code: v.region_code,
                    version: v.version,
                }),
                None => None,
            };
            Ok((Some(row), methodology))
        })
        .await?;
    let claims = caller.0;
    let row = if claims.has_role(Role::Admin) {
        let row = row.ok_or_else(no_such_activity)?;
        let governor = Governor::load(&state, claims.user_id()?).await?;
        governor.scope.check(&row.region_code)?;
        row
    } else {
        // Another's activity is answered as if there were none: its existence is not the caller's to know.
        let account = claims.account_id()?;
        row.filter(|r| r.account_id == account)
            .ok_or_else(no_such_activity)?
    };
    Ok(HttpResponse::Ok().json(ExplainedActivity::new(row, methodology)?))
}

/// A stored activity quantified again.
#[derive(Debug, Serialize, ToSchema)]
pub struct Requantified {
    pub activity_id: String,
    /// The grams its stored inputs give now under the version it recorded.
    pub reduction_g: i64,
    /// The grams stored when it was quantified.
    pub stored_reduction_g: i64,
    /// Whether the two agree (invariant 5: a result is reproducible).
    pub same: bool,
    pub methodology: Option<MethodologyRef>,
    #[schema(value_type = Vec<Object>)]
    pub breakdown: Vec<Step>,
}

/// Quantify a stored activity again, from its stored data, region, time and evidence under the
/// methodology version it recorded, and say whether the grams match what was stored. An activity that
/// recorded no version (it came after its claim window) gives 0 g. For administrators governing its
/// region (else 403 `out_of_scope`); nothing is changed.
#[utoipa::path(post, path = "/api/v1/admin/activities/{id}/requantify", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Requantified), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn requantify_activity(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let task_state = state.clone();
    let answer = state
        .db
        .run(move |conn| {
            let row = store::find(conn, id)?.ok_or_else(no_such_activity)?;
            governor.scope.check(&row.region_code)?;
            let again = requantify(conn, &task_state.catalog.get(), &row.recorded())?;
            let (reduction_g, methodology, breakdown) = match again {
                Some(q) => (
                    q.quantity.reduction_g,
                    Some(q.methodology()),
                    q.quantity.breakdown,
                ),
                None => (0, None, Vec::new()),
            };
            Ok(Requantified {
                activity_id: row.id.to_string(),
                reduction_g,
                stored_reduction_g: row.reduction_g,
                same: reduction_g == row.reduction_g,
                methodology,
                breakdown,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(answer))
}
