//! Redemption endpoints: users redeem and void; partners capture, void and read their settlements.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::service::{self, Actor, Outcome, Redeemer};
use super::settlement::{self, Statement};
use super::store::{self, RedemptionRow, RedemptionStatus};
use super::voucher::{self, VoucherError};
use crate::auth::extract::Member;
use crate::error::ErrorCode;
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::json::{self, ApiJson};
use crate::http::pagination::{PageQuery, Paginated};
use crate::http::timestamp;
use crate::idempotency;
use crate::ledger::signing::PlatformKey;
use crate::partners::SignedPartner;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/redemptions")
            .route(web::post().to(create_redemption))
            .route(web::get().to(list_redemptions)),
    )
    .service(web::resource("/redemptions/{id}").route(web::get().to(get_redemption)))
    .service(web::resource("/redemptions/{id}/void").route(web::post().to(void_own)))
    .service(web::resource("/partner/redemptions/{id}/capture").route(web::post().to(partner_capture)))
    .service(web::resource("/partner/redemptions").route(web::get().to(partner_redemptions)))
    .service(web::resource("/partner/redemptions/{id}").route(web::get().to(partner_redemption)))
    .service(web::resource("/partner/vouchers/inspect").route(web::post().to(inspect_voucher)))
    .service(web::resource("/partner/redemptions/{id}/void").route(web::post().to(partner_void)))
    .service(web::resource("/partner/vouchers/redeem").route(web::post().to(redeem_voucher)))
    .service(web::resource("/partner/settlements").route(web::get().to(settlements)));
}

/// Served at the root, beside the API: `/.well-known/jwks.json`.
pub fn well_known(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/.well-known/jwks.json").route(web::get().to(jwks)));
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RedemptionView {
    pub redemption_id: String,
    pub status: RedemptionStatus,
    pub offer_id: String,
    pub partner_id: String,
    pub points: i64,
    pub value_fen: Option<i64>,
    /// The signed voucher, while the redemption is held.
    pub voucher: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The ledger hold and the transfer that resolved it.
    pub hold_transfer_id: Option<String>,
    pub resolution_transfer_id: Option<String>,
}

fn view(key: &PlatformKey, r: RedemptionRow) -> RedemptionView {
    RedemptionView {
        voucher: (r.status == RedemptionStatus::Held).then(|| voucher::issue(key, &r)),
        redemption_id: r.id.to_string(),
        status: r.status,
        offer_id: r.offer_id.to_string(),
        partner_id: r.partner_id.to_string(),
        points: r.points,
        value_fen: r.value_fen,
        expires_at: r.expires_at.and_utc(),
        created_at: r.created_at.and_utc(),
        resolved_at: r.resolved_at.map(|t| t.and_utc()),
        hold_transfer_id: r.hold_id.map(|t| t.to_string()),
        resolution_transfer_id: r.resolution_id.map(|t| t.to_string()),
    }
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedemptionRequest {
    pub offer_id: String,
}

/// Redeem points for an offer. Requires an `Idempotency-Key` header. The points are held until the
/// partner captures the voucher, someone voids it, or it expires.
#[utoipa::path(post, path = "/api/v1/redemptions", tag = "redemptions", request_body = RedemptionRequest,
    params(("Idempotency-Key" = String, Header, description = "Unique per intended redemption")),
    security(("bearer" = [])),
    responses((status = 201, body = RedemptionView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "insufficient_funds, out_of_stock, limit_reached, offer_inactive, region_not_served")))]
pub async fn create_redemption(
    req: HttpRequest,
    state: web::Data<AppState>,
    member: Member,
    body: ApiJson<RedemptionRequest>,
) -> ApiResult<HttpResponse> {
    let key = idempotency::required_key(&req)?;
    let hash = idempotency::request_hash(&serde_json::to_value(&body.0).map_err(ApiError::internal)?);
    let offer_id: i64 = body
        .0
        .offer_id
        .parse()
        .map_err(|_| ApiError::field("offer_id", "is not an offer id"))?;
    let who = Redeemer {
        user_id: member.0.user_id()?,
        account_id: member.0.account_id()?,
        region_code: member.0.reg.clone(),
    };
    let ttl = Duration::seconds(state.settings.redemptions.hold_ttl_secs as i64);
    let scope = format!("redemption:{}", who.account_id);
    let task_state = state.clone();
    let clock = state.clock.clone();
    let answered = state
        .db
        .run(move |conn| {
            idempotency::run(
                conn,
                &clock,
                &scope,
                Some(&key),
                &hash,
                StatusCode::CREATED,
                |conn| {
                    let catalog = task_state.catalog.get();
                    let row = service::redeem(conn, &catalog, &who, offer_id, ttl, clock.now_naive())?;
                    idempotency::body_of(&view(&task_state.platform_key, row))
                },
            )
        })
        .await?;
    Ok(idempotency::respond(answered))
}

/// The caller's redemptions, newest first.
#[utoipa::path(get, path = "/api/v1/redemptions", tag = "redemptions", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Paginated<RedemptionView>)))]
pub async fn list_redemptions(
    state: web::Data<AppState>,
    member: Member,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let account_id = member.0.account_id()?;
    let page = page.page()?;
    let rows = state
        .db
        .run(move |conn| {
            let owner = store::Owner::Account(account_id);
            Ok(store::list(conn, owner, page.before, page.limit + 1)?)
        })
        .await?;
    let key = &state.platform_key;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page, |r| r.id, |r| view(key, r))))
}

/// One of the caller's redemptions.
#[utoipa::path(get, path = "/api/v1/redemptions/{id}", tag = "redemptions", security(("bearer" = [])),
    responses((status = 200, body = RedemptionView), (status = 404, body = Problem)))]
pub async fn get_redemption(
    state: web::Data<AppState>,
    member: Member,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let account_id = member.0.account_id()?;
    let id = id.into_inner();
    let row = state
        .db
        .run(move |conn| Ok(store::find(conn, id)?))
        .await?
        .filter(|r| r.account_id == account_id)
        .ok_or_else(|| ApiError::not_found("no such redemption"))?;
    Ok(HttpResponse::Ok().json(view(&state.platform_key, row)))
}

/// The request digest of ending redemption `id` with `outcome`. Stored digests name the outcomes as
/// written here (once their `Debug` names), fixed whatever the variants are called.
fn end_digest(id: i64, outcome: Outcome) -> String {
    idempotency::request_hash(&serde_json::json!({"redemption_id": id, "outcome": outcome.hashed_name()}))
}

/// Ends a held redemption for `actor`, under an optional idempotency key.
async fn end(
    state: &web::Data<AppState>,
    key: Option<String>,
    scope: String,
    id: i64,
    outcome: Outcome,
    actor: Actor,
) -> ApiResult<HttpResponse> {
    let hash = end_digest(id, outcome);
    let task_state = state.clone();
    let clock = state.clock.clone();
    let answered = state
        .db
        .run(move |conn| {
            idempotency::run(
                conn,
                &clock,
                &scope,
                key.as_deref(),
                &hash,
                StatusCode::OK,
                |conn| {
                    let row = service::resolve(conn, id, outcome, actor, clock.now_naive())?;
                    idempotency::body_of(&view(&task_state.platform_key, row))
                },
            )
        })
        .await?;
    Ok(idempotency::respond(answered))
}

/// Void one of the caller's held redemptions: the points come back and the stock is restored.
#[utoipa::path(post, path = "/api/v1/redemptions/{id}/void", tag = "redemptions", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = RedemptionView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn void_own(
    req: HttpRequest,
    state: web::Data<AppState>,
    member: Member,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let account_id = member.0.account_id()?;
    let key = idempotency::optional_key(&req)?;
    let scope = format!("redemption:{account_id}");
    end(
        &state,
        key,
        scope,
        id.into_inner(),
        Outcome::Voided,
        Actor::Holder(account_id),
    )
    .await
}

async fn partner_end(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
    id: i64,
    outcome: Outcome,
) -> ApiResult<HttpResponse> {
    let SignedPartner { partner, .. } = SignedPartner::authenticate(&req, &mut payload, &state).await?;
    let key = idempotency::optional_key(&req)?;
    let scope = format!("partner:{}", partner.id);
    end(&state, key, scope, id, outcome, Actor::Partner(partner.id)).await
}

/// Capture a held redemption (signed partner call): the points move to the partner's settlement account.
#[utoipa::path(post, path = "/api/v1/partner/redemptions/{id}/capture", tag = "partners",
    params(("id" = String, Path), ("X-Key-Id" = String, Header), ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 200, body = RedemptionView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn partner_capture(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    partner_end(req, payload, state, id.into_inner(), Outcome::Captured).await
}

/// Void a held redemption (signed partner call): the points go back to the user.
#[utoipa::path(post, path = "/api/v1/partner/redemptions/{id}/void", tag = "partners",
    params(("id" = String, Path), ("X-Key-Id" = String, Header), ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 200, body = RedemptionView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn partner_void(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    partner_end(req, payload, state, id.into_inner(), Outcome::Voided).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PartnerRedemptionQuery {
    /// held, captured, voided or expired
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub limit: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub cursor: Option<String>,
}

/// The calling partner's redemptions, newest first (signed partner call). Vouchers are not shown: the
/// user presents them.
#[utoipa::path(get, path = "/api/v1/partner/redemptions", tag = "partners", params(PartnerRedemptionQuery),
    responses((status = 200, body = Paginated<RedemptionView>), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn partner_redemptions(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
    query: web::Query<PartnerRedemptionQuery>,
) -> ApiResult<HttpResponse> {
    let SignedPartner { partner, .. } = SignedPartner::authenticate(&req, &mut payload, &state).await?;
    let query = query.into_inner();
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .page()?;
    let status = query
        .status
        .as_deref()
        .map(str::parse::<RedemptionStatus>)
        .transpose()
        .map_err(|_| {
            let statuses: Vec<&str> = RedemptionStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::field("status", format!("must be one of {}", statuses.join(", ")))
        })?;
    let rows = state
        .db
        .run(move |conn| {
            let owner = store::Owner::Partner {
                id: partner.id,
                status,
            };
            Ok(store::list(conn, owner, page.before, page.limit + 1)?)
        })
        .await?;
    let key = &state.platform_key;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(
        rows,
        page,
        |r| r.id,
        |r| RedemptionView {
            voucher: None,
            ..view(key, r)
        },
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoucherRequest {
    pub voucher: String,
}

/// The redemption a voucher in `body` is for, once the voucher is verified as this partner's and live.
fn voucher_redemption(state: &AppState, body: &[u8], partner_id: i64) -> ApiResult<i64> {
    let request: VoucherRequest = json::parse(body)?;
    let invalid = || ApiError::unprocessable(ErrorCode::InvalidVoucher, "this is not a valid voucher");
    let claims = voucher::verify(
        &state.platform_key.public_key_base64url(),
        request.voucher.trim(),
        partner_id,
        state.clock.unix_seconds(),
    )
    .map_err(|e| match e {
        VoucherError::Invalid => invalid(),
        VoucherError::Expired => ApiError::conflict(ErrorCode::VoucherExpired, "this voucher has expired"),
        VoucherError::OtherPartner => ApiError::not_found("no such redemption"),
    })?;
    claims.sub.parse().map_err(|_| invalid())
}

/// One of the calling partner's redemptions as it stands now (a partner's view: no voucher).
async fn partner_view(state: &AppState, partner_id: i64, id: i64) -> ApiResult<RedemptionView> {
    let row = state
        .db
        .run(move |conn| Ok(store::find(conn, id)?))
        .await?
        .filter(|r| r.partner_id == partner_id)
        .ok_or_else(|| ApiError::not_found("no such redemption"))?;
    Ok(RedemptionView {
        voucher: None,
        ..view(&state.platform_key, row)
    })
}

/// One of the calling partner's redemptions (signed partner call): to learn what became of a capture
/// whose answer was lost.
#[utoipa::path(get, path = "/api/v1/partner/redemptions/{id}", tag = "partners",
    params(("id" = String, Path), ("X-Key-Id" = String, Header), ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 200, body = RedemptionView), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn partner_redemption(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let SignedPartner { partner, .. } = SignedPartner::authenticate(&req, &mut payload, &state).await?;
    Ok(HttpResponse::Ok().json(partner_view(&state, partner.id, id.into_inner()).await?))
}

/// What a voucher is for and where its redemption stands, capturing nothing (signed partner call): a
/// gate shows the person what they are about to spend before it captures.
#[utoipa::path(post, path = "/api/v1/partner/vouchers/inspect", tag = "partners", request_body = VoucherRequest,
    params(("X-Key-Id" = String, Header), ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 200, body = RedemptionView), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn inspect_voucher(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let SignedPartner { partner, body } = SignedPartner::authenticate(&req, &mut payload, &state).await?;
    let id = voucher_redemption(&state, &body, partner.id)?;
    Ok(HttpResponse::Ok().json(partner_view(&state, partner.id, id).await?))
}

/// Capture by voucher (signed partner call), as a gate does when it scans one.
#[utoipa::path(post, path = "/api/v1/partner/vouchers/redeem", tag = "partners", request_body = VoucherRequest,
    params(("X-Key-Id" = String, Header), ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 200, body = RedemptionView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn redeem_voucher(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let SignedPartner { partner, body } = SignedPartner::authenticate(&req, &mut payload, &state).await?;
    let id = voucher_redemption(&state, &body, partner.id)?;
    let key = idempotency::optional_key(&req)?;
    let scope = format!("partner:{}", partner.id);
    end(
        &state,
        key,
        scope,
        id,
        Outcome::Captured,
        Actor::Partner(partner.id),
    )
    .await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct Period {
    /// Start (inclusive), RFC 3339 with offset.
    pub from: String,
    /// End (exclusive), RFC 3339 with offset.
    pub to: String,
}

/// The calling partner's settlement for redemptions resolved in [from, to): per offer and in total.
/// With `Accept: text/csv`, the line items instead.
#[utoipa::path(get, path = "/api/v1/partner/settlements", tag = "partners", params(Period),
    responses((status = 200, body = Statement, description = "or text/csv line items"), (status = 422, body = Problem)))]
pub async fn settlements(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
    period: web::Query<Period>,
) -> ApiResult<HttpResponse> {
    let SignedPartner { partner, .. } = SignedPartner::authenticate(&req, &mut payload, &state).await?;
    let from = timestamp::query_bound("from", &period.from)?;
    let to = timestamp::query_bound("to", &period.to)?;
    if to <= from {
        return Err(ApiError::field("to", "must be after from"));
    }
    let wants_csv = crate::http::csv::wanted(&req);
    if wants_csv {
        let csv = state
            .db
            .run(move |conn| Ok(settlement::line_items_csv(conn, &partner, from, to)?))
            .await?;
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .body(csv));
    }
    let statement = state
        .db
        .run(move |conn| Ok(settlement::statement(conn, &partner, from, to)?))
        .await?;
    Ok(HttpResponse::Ok().json(statement))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Jwks {
    /// The platform's Ed25519 key as an OKP JSON Web Key (RFC 8037).
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<serde_json::Value>,
}

/// The keys that verify vouchers offline (and ledger blocks).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "redemptions", responses((status = 200, body = Jwks)))]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(Jwks {
            keys: vec![state.platform_key.jwk()],
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An end retried after an upgrade must be recognised by the digest stored before it.
    #[test]
    fn an_end_digest_is_fixed() {
        assert_eq!(
            end_digest(7, Outcome::Captured),
            "86112f639409ebb8d7aff008fa79595e724ca604d43295999d36640e9944aff2"
        );
    }
}
