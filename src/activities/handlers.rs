//! `/api/v1/activities*`: posting activities and listing one's own (one activity explained is in
//! `explain`, the review queue in `queue`).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::{ActivityResult, Event, Outcome, Poster, Reason, Status};
use super::request::{self, ActivityRequest};
use super::retry::{self, Refused, RetryOf};
use super::store::{self, ActivityRow};
use crate::auth::extract::Member;
use crate::domain::catalog::Evidence;
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::json::{self, ApiJson};
use crate::http::pagination::{PageQuery, Paginated};
use crate::state::AppState;

/// The most events one batch request holds. A batch is one job for the ingest writer, which takes whole
/// jobs up to `activities.batch_max` events (2,000 by default): four full batches share a commit.
pub const BATCH_MAX: usize = 500;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/activities")
            .route(web::post().to(post_activity))
            .route(web::get().to(list_activities)),
    )
    .service(web::resource("/activities/batch").route(web::post().to(post_batch)));
}

fn poster(member: &Member) -> ApiResult<Poster> {
    Ok(Poster {
        user_id: member.0.user_id()?,
        account_id: member.0.account_id()?,
        home_region: member.0.reg.clone(),
        provider_id: None,
        operator_code: None,
    })
}

/// Validates against the time `now` (the request's), queues for the next group commit, and answers once
/// stored.
pub async fn ingest_one(
    state: &AppState,
    req: ActivityRequest,
    poster: Poster,
    now: DateTime<Utc>,
) -> ApiResult<Outcome> {
    match validate(state, req, poster, now) {
        Ok(event) => state.ingest.submit(event).await?,
        Err(refused) => retry::answer_one(state, refused).await,
    }
}

fn validate(
    state: &AppState,
    req: ActivityRequest,
    poster: Poster,
    now: DateTime<Utc>,
) -> Result<Event, Refused> {
    let retry_of = RetryOf::of(&req, &poster)?;
    request::validate(
        req,
        retry_of.digest().to_string(),
        poster,
        &state.catalog.get(),
        now,
        &state.settings.activities,
    )
    .map_err(|error| Refused::new(error, retry_of))
}

pub fn respond(outcome: Outcome) -> HttpResponse {
    match outcome {
        Outcome::Created(result) => HttpResponse::Created().json(result),
        Outcome::Replayed(result) => HttpResponse::Ok().json(result),
    }
}

/// Post one low-carbon action. A retry with the same `client_event_id` returns the original answer (200).
#[utoipa::path(post, path = "/api/v1/activities", tag = "activities", request_body = ActivityRequest,
    security(("bearer" = [])),
    responses((status = 201, body = ActivityResult), (status = 200, body = ActivityResult, description = "replay"),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn post_activity(
    state: web::Data<AppState>,
    member: Member,
    body: ApiJson<ActivityRequest>,
) -> ApiResult<HttpResponse> {
    let poster = poster(&member)?;
    let now = state.clock.now();
    Ok(respond(ingest_one(&state, body.0, poster, now).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BatchRequest {
    /// Up to 500 events; each stands or falls alone.
    #[schema(value_type = Vec<ActivityRequest>)]
    pub events: Vec<serde_json::Value>,
}

crate::text_enum! {
    /// A batch item's status: its activity's, or `error` when the event was refused.
    pub enum BatchStatus {
        Credited = "credited",
        Capped = "capped",
        Flagged = "flagged",
        Rejected = "rejected",
        Error = "error",
    }
}

impl From<Status> for BatchStatus {
    fn from(status: Status) -> BatchStatus {
        match status {
            Status::Credited => BatchStatus::Credited,
            Status::Capped => BatchStatus::Capped,
            Status::Flagged => BatchStatus::Flagged,
            Status::Rejected => BatchStatus::Rejected,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItem {
    pub client_event_id: Option<String>,
    pub status: BatchStatus,
    pub activity_id: Option<String>,
    pub points: Option<i64>,
    /// true when this event had been stored before (a retry).
    pub replayed: bool,
    pub error: Option<Problem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    pub results: Vec<BatchItem>,
}

fn item(client_event_id: Option<String>, outcome: ApiResult<Outcome>) -> BatchItem {
    let stored = match outcome {
        Ok(Outcome::Created(result)) => Ok((result, false)),
        Ok(Outcome::Replayed(result)) => Ok((result, true)),
        Err(e) => Err(e),
    };
    match stored {
        Ok((result, replayed)) => BatchItem {
            client_event_id,
            status: result.status.into(),
            activity_id: Some(result.activity_id),
            points: Some(result.points),
            replayed,
            error: None,
        },
        Err(e) => BatchItem {
            client_event_id,
            status: BatchStatus::Error,
            activity_id: None,
            points: None,
            replayed: false,
            error: Some(e.problem()),
        },
    }
}

/// Post up to 500 events at once; one result per event, in order.
#[utoipa::path(post, path = "/api/v1/activities/batch", tag = "activities", request_body = BatchRequest,
    security(("bearer" = [])),
    responses((status = 200, body = BatchResponse), (status = 422, body = Problem)))]
pub async fn post_batch(
    state: web::Data<AppState>,
    member: Member,
    req: HttpRequest,
    mut payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let _turn = state.batch_gate.enter().await?;
    let events = batch_events(&json::read_body(&req, &mut payload).await?)?;
    let poster = poster(&member)?;
    let now = state.clock.now();
    let checked = events
        .into_iter()
        .map(|raw| {
            let id = event_id(&raw);
            (id, check_raw(&state, &raw, poster.clone(), now))
        })
        .collect();
    Ok(HttpResponse::Ok().json(answer_batch(&state, checked).await?))
}

/// A batch's events, unparsed: the envelope alone is read here, each event is parsed, and refused, on its
/// own. 1 to [`BATCH_MAX`] of them.
pub fn batch_events(body: &[u8]) -> ApiResult<Vec<serde_json::Value>> {
    let events = json::parse_allowing_nul::<BatchRequest>(body)?.events;
    if events.is_empty() || events.len() > BATCH_MAX {
        return Err(ApiError::field(
            "events",
            format!("must hold 1 to {BATCH_MAX} events"),
        ));
    }
    Ok(events)
}

/// The `client_event_id` a batch item is answered under, if the event names one.
pub fn event_id(raw: &serde_json::Value) -> Option<String> {
    raw.get("client_event_id")
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// One batch event parsed and checked for `poster`.
pub fn check_raw(
    state: &AppState,
    raw: &serde_json::Value,
    poster: Poster,
    now: DateTime<Utc>,
) -> Result<Event, Refused> {
    json::parse::<ActivityRequest>(raw.to_string().as_bytes())
        .map_err(Refused::from)
        .and_then(|req| validate(state, req, poster, now))
}

/// The answers of a batch's events, in order: the checked ones go to the writer as one job, the refused
/// ones are answered as stored (a retry) or with their refusal.
pub async fn answer_batch(
    state: &AppState,
    checked: Vec<(Option<String>, Result<Event, Refused>)>,
) -> ApiResult<BatchResponse> {
    let mut ids = Vec::with_capacity(checked.len());
    let mut was_refused = Vec::with_capacity(checked.len());
    let mut refusals = Vec::new();
    let mut valid = Vec::with_capacity(checked.len());
    for (id, checked) in checked {
        ids.push(id);
        was_refused.push(checked.is_err());
        match checked {
            Ok(event) => valid.push(event),
            Err(refused) => refusals.push(refused),
        }
    }
    let mut stored = state.ingest.submit_all(valid).await?.into_iter();
    let mut refused = retry::answer(state, refusals).await.into_iter();
    let results = ids
        .into_iter()
        .zip(was_refused)
        .map(|(id, was_refused)| {
            let answers = if was_refused { &mut refused } else { &mut stored };
            let outcome = answers
                .next()
                .unwrap_or_else(|| Err(ApiError::unavailable("no answer for this event")));
            item(id, outcome)
        })
        .collect();
    Ok(BatchResponse { results })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityView {
    pub activity_id: String,
    pub client_event_id: String,
    pub activity_type: String,
    pub region_code: String,
    pub occurred_at: DateTime<Utc>,
    pub evidence: Evidence,
    pub status: Status,
    pub reasons: Vec<Reason>,
    pub reduction_g: i64,
    pub granted_g: i64,
    pub points: i64,
    pub methodology_id: Option<String>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub review_note: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<ActivityRow> for ActivityView {
    fn from(r: ActivityRow) -> ActivityView {
        ActivityView {
            activity_id: r.id.to_string(),
            client_event_id: r.client_event_id,
            activity_type: r.activity_type,
            region_code: r.region_code,
            occurred_at: r.occurred_at.and_utc(),
            evidence: r.evidence,
            status: r.status,
            reasons: serde_json::from_str(&r.reasons).unwrap_or_default(),
            reduction_g: r.reduction_g,
            granted_g: r.granted_g,
            points: r.points,
            methodology_id: r.methodology_id.map(|m| m.to_string()),
            data: serde_json::from_str(&r.data).unwrap_or_default(),
            review_note: r.review_note,
            created_at: r.created_at.and_utc(),
        }
    }
}

/// The caller's activities, newest first.
#[utoipa::path(get, path = "/api/v1/activities", tag = "activities", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Paginated<ActivityView>)))]
pub async fn list_activities(
    state: web::Data<AppState>,
    member: Member,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let account = member.0.account_id()?;
    let page = page.page()?;
    let rows = state
        .db
        .run(move |conn| {
            Ok(store::list_for_account(
                conn,
                account,
                page.before,
                page.limit + 1,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page, |r| r.id, ActivityView::from)))
}
