//! The review queue over HTTP: the flagged activities an administrator governs, filtered by region,
//! type and reason; decisions one at a time, or many under one `Idempotency-Key`.

use std::collections::HashSet;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::handlers::{ActivityView, BatchStatus};
use super::model::{ActivityResult, Reason};
use super::review::{self, Decision, Review};
use super::store::{self, QueueFilter};
use crate::domain::catalog::Catalog;
use crate::error::{ApiError, ApiResult, ErrorCode, Problem};
use crate::governance::{Governor, Scope};
use crate::http::json::ApiJson;
use crate::http::pagination::{PageQuery, Paginated};
use crate::idempotency;
use crate::state::AppState;

/// The longest note an administrator may leave on a review, in characters.
pub const REVIEW_NOTE_MAX_CHARS: usize = 500;

/// The most activities one bulk decision names: every one is decided in the same transaction as its
/// stored answer, so this bounds how long it holds the writer.
pub const DECISIONS_MAX: usize = 100;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/reviews").route(web::get().to(list_reviews)))
        .service(web::resource("/admin/reviews/decisions").route(web::post().to(decide_many)))
        .service(web::resource("/admin/reviews/{activity_id}").route(web::post().to(review_activity)));
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct QueueQuery {
    /// Only activities of this region and the regions under it (within the caller's scope).
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub region_code: Option<String>,
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub activity_type: Option<String>,
    /// Only activities flagged (among others) for this reason.
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    #[param(value_type = Option<Reason>)]
    pub reason: Option<Reason>,
}

/// The regions a queue shows: the caller's scope, narrowed to `region_code`'s subtree when one is asked
/// for (`None`: every region).
fn queue_regions(
    scope: &Scope,
    catalog: &Catalog,
    region_code: Option<&str>,
) -> ApiResult<Option<Vec<String>>> {
    let Some(root) = region_code else {
        return Ok(scope.region_codes());
    };
    if catalog.region(root).is_none() {
        return Err(ApiError::unprocessable(
            ErrorCode::UnknownRegion,
            format!("unknown region `{root}`"),
        ));
    }
    Ok(Some(
        catalog
            .region_codes()
            .filter(|code| catalog.is_within(code, root) && scope.covers(code))
            .map(str::to_string)
            .collect(),
    ))
}

/// Flagged activities waiting for a decision in the regions the caller governs, newest first.
#[utoipa::path(get, path = "/api/v1/admin/reviews", tag = "admin", params(QueueQuery, PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Paginated<ActivityView>), (status = 422, body = Problem)))]
pub async fn list_reviews(
    state: web::Data<AppState>,
    governor: Governor,
    query: web::Query<QueueQuery>,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let page = page.page()?;
    let QueueQuery {
        region_code,
        activity_type,
        reason,
    } = query.into_inner();
    let filter = QueueFilter {
        regions: queue_regions(&governor.scope, &state.catalog.get(), region_code.as_deref())?,
        activity_type,
        reason,
    };
    let rows = if filter.regions.as_ref().is_some_and(Vec::is_empty) {
        Vec::new()
    } else {
        state
            .db
            .run(move |conn| Ok(store::list_flagged(conn, &filter, page.before, page.limit + 1)?))
            .await?
    };
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page, |r| r.id, ActivityView::from)))
}

fn check_note(note: &str) -> ApiResult<()> {
    if note.chars().count() > REVIEW_NOTE_MAX_CHARS {
        return Err(ApiError::field(
            "note",
            format!("at most {REVIEW_NOTE_MAX_CHARS} characters"),
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub decision: Decision,
    pub note: String,
}

/// Approve (credit under that day's cap) or reject a flagged activity of a region the caller governs
/// (else 403 `out_of_scope`). A trip reported by both the app and its operator is credited once:
/// approving the operator's record tops up what the app's records of it were granted, and the app's
/// record of a trip the operator also reported can only be rejected (409 `duplicate_trip`); 409
/// `invalid_state` once it is decided.
#[utoipa::path(post, path = "/api/v1/admin/reviews/{activity_id}", tag = "admin", request_body = ReviewRequest,
    security(("bearer" = [])), params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = ActivityResult), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
pub async fn review_activity(
    req: HttpRequest,
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
    body: ApiJson<ReviewRequest>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let ReviewRequest { decision, note } = body.0;
    check_note(&note)?;
    // An approval issues points: under an Idempotency-Key, a retry is answered what the first call was
    // (not `invalid_state` because the first one decided it).
    let key = idempotency::optional_key(&req)?;
    let hash =
        idempotency::request_hash(&serde_json::json!({"review": id, "decision": decision, "note": note}));
    let task_state = state.clone();
    let answered = state
        .db
        .run(move |conn| {
            let clock = &task_state.clock;
            let key_scope = format!("admin:{}", governor.user_id);
            idempotency::run(
                conn,
                clock,
                &key_scope,
                key.as_deref(),
                &hash,
                StatusCode::OK,
                |conn| {
                    let review = Review {
                        admin: governor.user_id,
                        scope: &governor.scope,
                        activity_id: id,
                        decision,
                        note: &note,
                        at: clock.now_naive(),
                    };
                    let catalog = task_state.catalog.get();
                    let settings = &task_state.settings.activities;
                    let result = review::decide(conn, &catalog, settings, &review)?;
                    idempotency::body_of(&result)
                },
            )
        })
        .await?;
    Ok(idempotency::respond(answered))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionsRequest {
    /// 1 to 100 distinct flagged activities.
    pub activity_ids: Vec<String>,
    pub decision: Decision,
    pub note: String,
}

/// One activity's answer in a bulk decision: its result, or the problem that refused it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionItem {
    pub activity_id: String,
    /// The activity's status after the decision, or `error`.
    pub status: BatchStatus,
    pub result: Option<ActivityResult>,
    pub error: Option<Problem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionsResponse {
    pub results: Vec<DecisionItem>,
}

fn check_ids(ids: &[String]) -> ApiResult<()> {
    if ids.is_empty() || ids.len() > DECISIONS_MAX {
        return Err(ApiError::field(
            "activity_ids",
            format!("must name 1 to {DECISIONS_MAX} activities"),
        ));
    }
    let mut seen = HashSet::new();
    if let Some(twice) = ids.iter().find(|id| !seen.insert(id.as_str())) {
        return Err(ApiError::field(
            "activity_ids",
            format!("names activity {twice} twice"),
        ));
    }
    Ok(())
}

/// The same decision on up to 100 flagged activities, each decided on its own: one refused (out of
/// scope, decided already, unknown) is answered its problem and the others stand. The whole answer is
/// stored under the required `Idempotency-Key`, and a replay is answered it again.
#[utoipa::path(post, path = "/api/v1/admin/reviews/decisions", tag = "admin", request_body = DecisionsRequest,
    security(("bearer" = [])), params(("Idempotency-Key" = String, Header)),
    responses((status = 200, body = DecisionsResponse), (status = 400, body = Problem, description = "no Idempotency-Key"),
        (status = 409, body = Problem, description = "idempotency_conflict"), (status = 422, body = Problem)))]
pub async fn decide_many(
    req: HttpRequest,
    state: web::Data<AppState>,
    governor: Governor,
    body: ApiJson<DecisionsRequest>,
) -> ApiResult<HttpResponse> {
    let key = idempotency::required_key(&req)?;
    let DecisionsRequest {
        activity_ids,
        decision,
        note,
    } = body.0;
    check_ids(&activity_ids)?;
    check_note(&note)?;
    let hash = idempotency::request_hash(
        &serde_json::json!({"reviews": activity_ids, "decision": decision, "note": note}),
    );
    let task_state = state.clone();
    let answered = state
        .db
        .run(move |conn| {
            let clock = &task_state.clock;
            let key_scope = format!("admin:{}", governor.user_id);
            idempotency::run(
                conn,
                clock,
                &key_scope,
                Some(&key),
                &hash,
                StatusCode::OK,
                |conn| {
                    let catalog = task_state.catalog.get();
                    let settings = &task_state.settings.activities;
                    let at = clock.now_naive();
                    let mut results = Vec::with_capacity(activity_ids.len());
                    for activity_id in activity_ids {
                        // Each decision is a savepoint of its own: a refused one undoes itself alone.
                        let decided = match activity_id.parse::<i64>() {
                            Ok(id) => {
                                let review = Review {
                                    admin: governor.user_id,
                                    scope: &governor.scope,
                                    activity_id: id,
                                    decision,
                                    note: &note,
                                    at,
                                };
                                review::decide(conn, &catalog, settings, &review).map_err(ApiError::from)
                            }
                            Err(_) => Err(ApiError::not_found("no such activity")),
                        };
                        results.push(match decided {
                            Ok(result) => DecisionItem {
                                activity_id,
                                status: result.status.into(),
                                result: Some(result),
                                error: None,
                            },
                            // A failure (5xx) fails the whole request: nothing is stored, a retry runs
                            // afresh.
                            Err(e) if !e.status.is_client_error() => return Err(e),
                            Err(refused) => DecisionItem {
                                activity_id,
                                status: BatchStatus::Error,
                                result: None,
                                error: Some(refused.problem()),
                            },
                        });
                    }
                    idempotency::body_of(&DecisionsResponse { results })
                },
            )
        })
        .await?;
    Ok(idempotency::respond(answered))
}
