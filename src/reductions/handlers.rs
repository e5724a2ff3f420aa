//! Pooled reductions over HTTP: administrators draft a batch of a region's credited activities, submit
//! it, have a second administrator verify it, issue it as whole tonnes, and export its evidence; then
//! sell and settle it, or retire it.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::draft::{self, DraftError};
use super::evidence;
use super::payouts;
use super::retire::{self, Retirement};
use super::sale::{self, Sale, MOST_PRICE_FEN_PER_TONNE};
use super::service::{self, Actor, BatchError, Step};
use super::store::{self, BatchFilter, BatchStatus, Selection};
use super::views::{BatchRetirementRequest, BatchView, DraftRequest, IncentiveView, SaleRequest};
use crate::accounts::validate::display_name_problem;
use crate::auth::extract::Member;
use crate::cash::deposits::reference_problem;
use crate::error::{ApiError, ApiResult, ErrorCode, FieldError, Problem};
use crate::governance::Governor;
use crate::http::json::ApiJson;
use crate::http::pagination::{PageQuery, Paginated};
use crate::idempotency;
use crate::retirements::handlers::reason_problem;
use crate::state::AppState;

impl From<BatchError> for ApiError {
    fn from(e: BatchError) -> ApiError {
        use BatchError as E;
        let detail = e.to_string();
        match e {
            E::NotFound => ApiError::not_found(detail),
            E::OutOfScope(e) => e.into(),
            E::OwnRequest(e) => e.into(),
            E::InvalidState { .. } => ApiError::conflict(ErrorCode::InvalidState, detail),
            E::Empty => ApiError::unprocessable(ErrorCode::EmptyBatch, detail),
            E::BelowOneTonne { .. } => ApiError::unprocessable(ErrorCode::BelowOneTonne, detail),
            E::OutOfRange => ApiError::unprocessable(ErrorCode::AmountOutOfRange, detail),
            E::ReferenceTaken(_) => ApiError::conflict(ErrorCode::Conflict, detail),
            E::Ledger(e) => e.into(),
            E::Database(e) => e.into(),
        }
    }
}

impl From<DraftError> for ApiError {
    fn from(e: DraftError) -> ApiError {
        let detail = e.to_string();
        match e {
            DraftError::UnknownRegion(_) => ApiError::unprocessable(ErrorCode::UnknownRegion, detail),
            DraftError::UnknownActivityType(_) => {
                ApiError::unprocessable(ErrorCode::UnknownActivityType, detail)
            }
            DraftError::TypeCount => ApiError::field("activity_types", detail),
            DraftError::Window(e) => ApiError::field("to", e.to_string()),
        }
    }
}

const BATCHES: &str = "/admin/reduction-batches";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(BATCHES)
            .route(web::post().to(create_draft))
            .route(web::get().to(list_batches)),
    )
    .service(
        web::resource(format!("{BATCHES}/{{id}}"))
            .route(web::get().to(get_batch))
            .route(web::delete().to(delete_draft)),
    )
    .service(web::resource(format!("{BATCHES}/{{id}}/submit")).route(web::post().to(submit)))
    .service(web::resource(format!("{BATCHES}/{{id}}/verify")).route(web::post().to(verify)))
    .service(web::resource(format!("{BATCHES}/{{id}}/issue")).route(web::post().to(issue)))
    .service(web::resource(format!("{BATCHES}/{{id}}/sell")).route(web::post().to(sell)))
    .service(web::resource(format!("{BATCHES}/{{id}}/settle")).route(web::post().to(settle)))
    .service(web::resource(format!("{BATCHES}/{{id}}/retire")).route(web::post().to(retire)))
    .service(web::resource(format!("{BATCHES}/{{id}}/evidence")).route(web::get().to(evidence)))
    .service(web::resource("/me/incentives").route(web::get().to(my_incentives)));
}

fn actor(governor: &Governor, now: chrono::NaiveDateTime) -> Actor<'_> {
    Actor {
        admin: governor.user_id,
        scope: &governor.scope,
        now,
    }
}

/// Draft a batch: the credited activities of `region_code`'s subtree (the caller must govern it) that
/// occurred in [`from`, `to`), of `activity_types` (every type when left out), and are in no batch yet —
/// an activity is in one batch, ever. Counts granted grams (what the activities' points were issued
/// for). None free → 422 `empty_batch`. Under an `Idempotency-Key`, a retry is answered the first
/// answer. Audited.
#[utoipa::path(post, path = "/api/v1/admin/reduction-batches", tag = "registry", request_body = DraftRequest,
    security(("bearer" = [])), params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = BatchView), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn create_draft(
    req: HttpRequest,
    state: web::Data<AppState>,
    governor: Governor,
    body: ApiJson<DraftRequest>,
) -> ApiResult<HttpResponse> {
    let key = idempotency::optional_key(&req)?;
    let hash = idempotency::request_hash(&serde_json::json!({ "reduction_batch": &body.0 }));
    let valid = draft::check(body.0, &state.catalog.get())?;
    let clock = state.clock.clone();
    let answered = state
        .db
        .run(move |conn| {
            let key_scope = format!("admin:{}", governor.user_id);
            let now = clock.now_naive();
            idempotency::run(
                conn,
                &clock,
                &key_scope,
                key.as_deref(),
                &hash,
                StatusCode::CREATED,
                |conn| {
                    let selection = Selection {
                        regions: valid.regions.as_deref(),
                        activity_types: valid.activity_types.as_deref(),
                        from: valid.from,
                        to: valid.to,
                    };
                    let row = service::draft(
                        conn,
                        actor(&governor, now),
                        &valid.region_code,
                        valid.activity_types.as_deref(),
                        &selection,
                    )?;
                    idempotency::body_of(&BatchView::from(&row))
                },
            )
        })
        .await?;
    Ok(idempotency::respond(answered))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct BatchQuery {
    /// Only batches of exactly this region.
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub region_code: Option<String>,
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    #[param(value_type = Option<BatchStatus>)]
    pub status: Option<String>,
}

/// The batches of the regions the caller governs, newest first.
#[utoipa::path(get, path = "/api/v1/admin/reduction-batches", tag = "registry", params(BatchQuery, PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Paginated<BatchView>), (status = 422, body = Problem)))]
pub async fn list_batches(
    state: web::Data<AppState>,
    governor: Governor,
    query: web::Query<BatchQuery>,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let page = page.page()?;
    let BatchQuery { region_code, status } = query.into_inner();
    let status = match status {
        None => None,
        Some(s) => Some(s.parse::<BatchStatus>().map_err(|_| {
            ApiError::field(
                "status",
                "must be draft, submitted, verified, issued, sold or settled",
            )
        })?),
    };
    let filter = BatchFilter {
        regions: governor.scope.region_codes(),
        region_code,
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
        |r| BatchView::from(&r),
    )))
}

/// The batch, if the caller governs its region.
async fn governed_batch(state: &AppState, governor: &Governor, id: i64) -> ApiResult<store::BatchRow> {
    let row = state
        .db
        .run(move |conn| Ok(store::find(conn, id)?))
        .await?
        .ok_or(BatchError::NotFound)?;
    governor.scope.check(&row.region_code)?;
    Ok(row)
}

/// One batch (in scope).
#[utoipa::path(get, path = "/api/v1/admin/reduction-batches/{id}", tag = "registry", security(("bearer" = [])),
    responses((status = 200, body = BatchView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_batch(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let row = governed_batch(&state, &governor, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(BatchView::from(&row)))
}

/// Delete a draft (any administrator in scope): its activities are free for another batch at once, and
/// the draft is gone (404), kept in the audit log. Only drafts (else 409 `invalid_state`).
#[utoipa::path(delete, path = "/api/v1/admin/reduction-batches/{id}", tag = "registry", security(("bearer" = [])),
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
        .run(move |conn| Ok(service::delete_draft(conn, actor(&governor, now), id)?))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn take_step(
    state: web::Data<AppState>,
    governor: Governor,
    id: i64,
    step: Step,
) -> ApiResult<HttpResponse> {
    let now = state.clock.now_naive();
    let row = state
        .db
        .run(move |conn| Ok(service::take(conn, actor(&governor, now), id, step)?))
        .await?;
    Ok(HttpResponse::Ok().json(BatchView::from(&row)))
}

/// Submit a draft for verification (any administrator in scope). A batch under one tonne → 422
/// `below_one_tonne` (only whole tonnes are issued; delete the draft to free its activities). A
/// submitted batch answers as it is; a later state → 409 `invalid_state`. Audited.
#[utoipa::path(post, path = "/api/v1/admin/reduction-batches/{id}/submit", tag = "registry", security(("bearer" = [])),
    responses((status = 200, body = BatchView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn submit(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    take_step(state, governor, id.into_inner(), Step::Submit).await
}

/// Verify a submitted batch: another administrator in scope than its maker (the maker → 403). A
/// verified batch answers as it is; any other state → 409 `invalid_state`. Audited.
#[utoipa::path(post, path = "/api/v1/admin/reduction-batches/{id}/verify", tag = "registry", security(("bearer" = [])),
    responses((status = 200, body = BatchView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
pub async fn verify(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    take_step(state, governor, id.into_inner(), Step::Verify).await
}

/// Issue a verified batch (any administrator in scope) as whole tonnes (`floor(reduction_g / 10⁶)`),
/// numbered `CN-{region_code}-{year}-{n:06}` in the Asia/Shanghai year of issue, without gaps per region
/// and year; the grams beyond the whole tonnes (`remainder_g`) are never issued. An issued batch answers
/// as it is (the same serials); any other state → 409 `invalid_state`. Audited.
#[utoipa::path(post, path = "/api/v1/admin/reduction-batches/{id}/issue", tag = "registry", security(("bearer" = [])),
    responses((status = 200, body = BatchView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn issue(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    take_step(state, governor, id.into_inner(), Step::Issue).await
}

/// The sale checked, or every field that is wrong.
fn checked_sale(request: SaleRequest) -> Result<Sale, ApiError> {
    let mut problems = Vec::new();
    let mut fail = |field: &str, message: String| {
        problems.push(FieldError {
            field: field.into(),
            message,
        })
    };
    if let Some(message) = display_name_problem(&request.buyer) {
        fail("buyer", message);
    }
    if !(1..=MOST_PRICE_FEN_PER_TONNE).contains(&request.price_fen_per_tonne) {
        fail(
            "price_fen_per_tonne",
            format!("must be 1 to {MOST_PRICE_FEN_PER_TONNE} fen"),
        );
    }
    if let Some(message) = reference_problem(&request.bank_reference) {
        fail("bank_reference", message);
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    Ok(Sale {
        buyer: request.buyer.trim().to_string(),
        price_fen_per_tonne: request.price_fen_per_tonne,
        bank_reference: request.bank_reference.trim().to_string(),
    })
}

/// Record the sale of an issued batch (any administrator in scope): the buyer, the price per tonne, and
/// the bank reference the buyer's payment will arrive under; `proceeds_fen` is the whole tonnes × the
/// price. Nothing is paid yet: a second administrator settles once the money arrived. The same sale
/// again answers the batch as it is; another sale, or a batch not issued → 409 `invalid_state`; a bank
/// reference a deposit or another sale has → 409 `conflict`. Audited.
#[utoipa::path(post, path = "/api/v1/admin/reduction-batches/{id}/sell", tag = "registry", request_body = SaleRequest,
    security(("bearer" = [])),
    responses((status = 200, body = BatchView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn sell(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
    body: ApiJson<SaleRequest>,
) -> ApiResult<HttpResponse> {
    let sale = checked_sale(body.0)?;
    let (id, now) = (id.into_inner(), state.clock.now_naive());
    let row = state
        .db
        .run(move |conn| Ok(sale::sell(conn, actor(&governor, now), id, &sale)?))
        .await?;
    Ok(HttpResponse::Ok().json(BatchView::from(&row)))
}

/// Settle a sold batch: another administrator in scope than the seller (the seller → 403) confirms that
/// the buyer's payment arrived under the sale's bank reference. In one transaction the proceeds enter
/// the cash ledger: `registry.platform_share_bps` of them to the platform (`cash:fees`), the rest to the
/// cash accounts of the people whose activities the batch holds, pro rata to their granted grams (the
/// fen left by rounding to the largest remainders), each once. A share of a person erased since stays
/// with the platform. A settled batch answers as it is; any other state → 409 `invalid_state`. Audited.
#[utoipa::path(post, path = "/api/v1/admin/reduction-batches/{id}/settle", tag = "registry", security(("bearer" = [])),
    responses((status = 200, body = BatchView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
pub async fn settle(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let (id, now) = (id.into_inner(), state.clock.now_naive());
    let share = state.settings.registry.platform_share_bps;
    let row = state
        .db
        .run(move |conn| Ok(sale::settle(conn, actor(&governor, now), id, share)?))
        .await?;
    Ok(HttpResponse::Ok().json(BatchView::from(&row)))
}

/// Retire an issued batch instead of selling it: its whole tonnes are cancelled for good for a
/// beneficiary and a reason, so that no buyer claims them again. Another administrator in scope than its
/// issuer (the issuer → 403). Nothing moves in either ledger. The same retirement again answers the
/// batch as it is; a batch retired otherwise, sold or not issued → 409 `invalid_state`. Audited.
#[utoipa::path(post, path = "/api/v1/admin/reduction-batches/{id}/retire", tag = "registry",
    request_body = BatchRetirementRequest, security(("bearer" = [])),
    responses((status = 200, body = BatchView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn retire(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
    body: ApiJson<BatchRetirementRequest>,
) -> ApiResult<HttpResponse> {
    let retirement = checked_retirement(body.0)?;
    let (id, now) = (id.into_inner(), state.clock.now_naive());
    let row = state
        .db
        .run(move |conn| Ok(retire::retire(conn, actor(&governor, now), id, &retirement)?))
        .await?;
    Ok(HttpResponse::Ok().json(BatchView::from(&row)))
}

/// The retirement checked, or every field that is wrong (the rules of a retirement of points).
fn checked_retirement(request: BatchRetirementRequest) -> Result<Retirement, ApiError> {
    let beneficiary = request.beneficiary.trim();
    let reason = request.reason.trim();
    let problems: Vec<FieldError> = [
        ("beneficiary", display_name_problem(beneficiary)),
        ("reason", reason_problem(reason)),
    ]
    .into_iter()
    .filter_map(|(field, problem)| {
        problem.map(|message| FieldError {
            field: field.into(),
            message,
        })
    })
    .collect();
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    Ok(Retirement {
        beneficiary: beneficiary.to_string(),
        reason: reason.to_string(),
    })
}

/// What settled sales of pooled reductions paid the caller, newest batch first: the batch, its serials
/// and buyer, the caller's grams in it and the fen paid into their cash account.
#[utoipa::path(get, path = "/api/v1/me/incentives", tag = "registry", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Paginated<IncentiveView>), (status = 401, body = Problem)))]
pub async fn my_incentives(
    state: web::Data<AppState>,
    member: Member,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let page = page.page()?;
    let wallet = member.0.account_id()?;
    let rows = state
        .db
        .run(move |conn| Ok(payouts::paid_to(conn, wallet, page.before, page.limit + 1)?))
        .await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(
        rows,
        page,
        |r| r.batch_id,
        IncentiveView::from,
    )))
}

/// The batch's evidence (in scope), as CSV streamed in activity id order: `activity_id, account_hash,
/// activity_type, occurred_at, methodology_id, methodology_version, reduction_g, granted_g,
/// block_height`. `account_hash` is a keyed pseudonym of the account (never a phone, name or account
/// id); `reduction_g` is what the methodology gave, `granted_g` what the batch counts; `block_height`
/// is the sealed ledger block holding the activity's issue transfer, empty until it is sealed.
#[utoipa::path(get, path = "/api/v1/admin/reduction-batches/{id}/evidence", tag = "registry", security(("bearer" = [])),
    responses((status = 200, content_type = "text/csv", body = String), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub async fn evidence(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let row = governed_batch(&state, &governor, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"reduction-batch-{}.csv\"", row.id),
        ))
        .streaming(evidence::stream(state.db.clone(), state.secrets.clone(), row.id)))
}
