//! `POST /retirements` (a person or a business), and the public registry of retirements.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::store::{self, NewRetirement, RetirementRow};
use super::{certificate, service};
use crate::accounts::validate::display_name_problem;
use crate::auth::extract::Member;
use crate::db::AnyConnection;
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::http::json::ApiJson;
use crate::http::pagination::{PageQuery, Paginated};
use crate::http::reader::Reader;
use crate::idempotency;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/retirements").route(web::post().to(create_retirement)))
        .service(web::resource("/public/retirements").route(web::get().to(list_retirements)))
        .service(web::resource("/public/retirements/{id}").route(web::get().to(get_retirement)));
}

/// The longest reason: a sentence or two for an offset claim.
const REASON_MAX_CHARS: usize = 500;

/// What is wrong with a retirement's reason (already trimmed), if anything: points' and pooled batches'.
pub fn reason_problem(reason: &str) -> Option<String> {
    if reason.is_empty() || reason.chars().count() > REASON_MAX_CHARS {
        Some(format!("must be 1 to {REASON_MAX_CHARS} characters"))
    } else if reason.chars().any(char::is_control) {
        Some("must not contain control characters".into())
    } else {
        None
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetirementRequest {
    pub points: i64,
    /// Who the reduction is retired for, as the registry shows it (1 to 64 characters).
    pub beneficiary: String,
    /// Why (1 to 500 characters).
    pub reason: String,
    /// The period the offset covers, `YYYY-MM-DD`, both or neither.
    pub period_from: Option<String>,
    pub period_to: Option<String>,
}

/// A retirement as the public registry lists it: no account, no person, only the chosen beneficiary.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetirementView {
    pub retirement_id: String,
    pub serial: String,
    pub beneficiary: String,
    pub reason: String,
    pub points: i64,
    /// The grams behind the retired points, from their lots.
    pub reduction_g: i64,
    pub period_from: Option<String>,
    pub period_to: Option<String>,
    pub retired_at: DateTime<Utc>,
    /// An EdDSA JWT stating the same, verifiable with `/.well-known/jwks.json` (on a single retirement
    /// and on creation; lists leave it out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
}

fn view_of(r: RetirementRow, certificate: Option<String>) -> RetirementView {
    RetirementView {
        retirement_id: r.id.to_string(),
        serial: r.serial.unwrap_or_default(),
        beneficiary: r.beneficiary,
        reason: r.reason,
        points: r.points,
        reduction_g: r.reduction_g,
        period_from: r.period_from,
        period_to: r.period_to,
        retired_at: r.retired_at.and_utc(),
        certificate,
    }
}

fn certified(state: &AppState, r: RetirementRow) -> RetirementView {
    let serial = r.serial.clone().unwrap_or_default();
    let certificate = certificate::issue(&state.platform_key, &r, &serial);
    view_of(r, Some(certificate))
}

/// The request checked: every wrong field listed at once.
fn checked(account_id: i64, request: RetirementRequest) -> Result<NewRetirement, ApiError> {
    let mut problems = Vec::new();
    let mut problem = |field: &str, message: String| {
        problems.push(FieldError {
            field: field.into(),
            message,
        })
    };
    if request.points <= 0 {
        problem("points", "must be a positive number of points".into());
    }
    if let Some(why) = display_name_problem(&request.beneficiary) {
        problem("beneficiary", why);
    }
    let reason = request.reason.trim();
    if let Some(why) = reason_problem(reason) {
        problem("reason", why);
    }
    let date = |text: &Option<String>| text.as_deref().map(|t| NaiveDate::parse_from_str(t, "%Y-%m-%d"));
    match (date(&request.period_from), date(&request.period_to)) {
        (None, None) => {}
        (Some(Ok(from)), Some(Ok(to))) if from <= to => {}
        (Some(Ok(_)), Some(Ok(_))) => problem("period_to", "must not be before period_from".into()),
        (Some(Ok(_)), None) | (None, Some(Ok(_))) => {
            problem("period_from", "period_from and period_to come together".into())
        }
        (from, to) => {
            for (field, parsed) in [("period_from", from), ("period_to", to)] {
                if matches!(parsed, Some(Err(_))) {
                    problem(field, "must be a date, YYYY-MM-DD".into());
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    Ok(NewRetirement {
        account_id,
        points: request.points,
        beneficiary: request.beneficiary.trim().to_string(),
        reason: reason.to_string(),
        period_from: request.period_from,
        period_to: request.period_to,
    })
}

/// Retire points for a beneficiary: final, listed publicly with a signed certificate. Needs an
/// `Idempotency-Key`: a retry is answered the first retirement.
#[utoipa::path(post, path = "/api/v1/retirements", tag = "registry", request_body = RetirementRequest,
    security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = RetirementView), (status = 409, body = Problem, description = "insufficient_funds"),
        (status = 422, body = Problem)))]
pub async fn create_retirement(
    req: HttpRequest,
    state: web::Data<AppState>,
    member: Member,
    body: ApiJson<RetirementRequest>,
) -> ApiResult<HttpResponse> {
    let key = idempotency::required_key(&req)?;
    let account_id = member.0.account_id()?;
    let hash = idempotency::request_hash(&serde_json::to_value(&body.0).map_err(ApiError::internal)?);
    let new = checked(account_id, body.0)?;
    let scope = format!("retirement:{account_id}");
    let signer = state.clone();
    idempotency::create(&state.db, &state.clock, scope, key, hash, move |conn, now| {
        let row = service::retire(conn, &new, now)?;
        idempotency::body_of(&certified(&signer, row))
    })
    .await
}

/// The public registry of retirements, newest first; `Accept: text/csv` for the same page as CSV.
#[utoipa::path(get, path = "/api/v1/public/retirements", tag = "registry",
    params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Paginated<RetirementView>, description = "or text/csv: the page's items"),
        (status = 422, body = Problem)))]
pub async fn list_retirements(
    req: HttpRequest,
    state: web::Data<AppState>,
    reader: Reader,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let page = query.page()?;
    let rows = reader
        .run(&state.db, move |conn: &mut AnyConnection| {
            Ok(store::page(conn, page.before, page.limit + 1)?)
        })
        .await?;
    let listed = Paginated::from_rows(rows, page, |r| r.id, |r| view_of(r, None));
    let wants_csv = crate::http::csv::wanted(&req);
    if !wants_csv {
        return Ok(HttpResponse::Ok().json(listed));
    }
    let mut response = HttpResponse::Ok();
    response.content_type("text/csv; charset=utf-8");
    if let Some(cursor) = &listed.next_cursor {
        response.insert_header(("X-Next-Cursor", cursor.as_str()));
    }
    Ok(response.body(csv_of(&listed.items)?))
}

fn csv_of(items: &[RetirementView]) -> Result<Vec<u8>, ApiError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "retirement_id",
        "serial",
        "beneficiary",
        "reason",
        "points",
        "reduction_g",
        "period_from",
        "period_to",
        "retired_at",
    ])
    .map_err(ApiError::internal)?;
    for r in items {
        out.write_record([
            r.retirement_id.as_str(),
            &r.serial,
            &r.beneficiary,
            &r.reason,
            &r.points.to_string(),
            &r.reduction_g.to_string(),
            r.period_from.as_deref().unwrap_or(""),
            r.period_to.as_deref().unwrap_or(""),
            &r.retired_at.to_rfc3339(),
        ])
        .map_err(ApiError::internal)?;
    }
    out.into_inner().map_err(ApiError::internal)
}

/// One retirement, with its certificate.
#[utoipa::path(get, path = "/api/v1/public/retirements/{id}", tag = "registry",
    params(("id" = String, Path)),
    responses((status = 200, body = RetirementView), (status = 404, body = Problem)))]
pub async fn get_retirement(
    state: web::Data<AppState>,
    reader: Reader,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::not_found("no such retirement"))?;
    let row = reader
        .run(&state.db, move |conn| Ok(store::find(conn, id)?))
        .await?
        .ok_or_else(|| ApiError::not_found("no such retirement"))?;
    Ok(HttpResponse::Ok().json(certified(&state, row)))
}
