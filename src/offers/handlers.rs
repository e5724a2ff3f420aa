//! Offer endpoints: partners publish and change their offers (signed); anyone lists the open ones.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::stock;
use super::store::{self, Filter, Listed};
use super::terms::{NewOffer, OfferPatch, Terms};
use crate::db::{self, AnyConnection, Tx};
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::json;
use crate::http::pagination::{Page, PageQuery, Paginated};
use crate::http::reader::Reader;
use crate::idempotency;
use crate::partners::{self, Partner, PartnerKind, SignedPartner, PARTNER_KINDS};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/offers").route(web::get().to(list_offers)))
        .service(web::resource("/offers/{id}").route(web::get().to(get_offer)))
        .service(
            web::resource("/partner/offers")
                .route(web::post().to(create_offer))
                .route(web::get().to(partner_offers)),
        )
        .service(web::resource("/partner/offers/{id}").route(web::patch().to(update_offer)));
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OfferView {
    pub id: String,
    pub partner_id: String,
    pub partner_name: String,
    /// The partner's kind.
    pub kind: PartnerKind,
    pub title: String,
    pub description: String,
    pub points_cost: i64,
    pub value_fen: Option<i64>,
    /// Units left.
    pub stock: i64,
    pub per_user_limit: i64,
    pub valid_from: DateTime<Utc>,
    pub valid_to: DateTime<Utc>,
    pub region_codes: Vec<String>,
    /// Only residents of `region_codes` may redeem it (otherwise visitors may too).
    pub residents_only: bool,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn view((o, partner_name, kind): Listed, region_codes: Vec<String>, stock: i64) -> OfferView {
    OfferView {
        id: o.id.to_string(),
        partner_id: o.partner_id.to_string(),
        partner_name,
        kind,
        title: o.title,
        description: o.description,
        points_cost: o.points_cost,
        value_fen: o.value_fen,
        stock,
        per_user_limit: o.per_user_limit,
        valid_from: o.valid_from.and_utc(),
        valid_to: o.valid_to.and_utc(),
        region_codes,
        residents_only: o.residents_only,
        active: o.active,
        created_at: o.created_at.and_utc(),
        updated_at: o.updated_at.and_utc(),
    }
}

/// One offer with its partner and regions, as the API shows it.
fn load_view(conn: &mut AnyConnection, id: i64) -> Result<Option<OfferView>, ApiError> {
    let Some(offer) = store::find(conn, id)? else {
        return Ok(None);
    };
    let partner = partners::find(conn, offer.partner_id)?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("offer {id} has no partner")))?;
    let regions = store::regions_of(conn, &[id])?.remove(&id).unwrap_or_default();
    let units = stock::totals(conn, &[id])?.remove(&id).unwrap_or_default();
    Ok(Some(view((offer, partner.name, partner.kind), regions, units)))
}

fn page_of(
    conn: &mut AnyConnection,
    rows: Vec<Listed>,
    page: Page,
) -> Result<Paginated<OfferView>, ApiError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.0.id).collect();
    let mut regions = store::regions_of(conn, &ids)?;
    let units = stock::totals(conn, &ids)?;
    Ok(Paginated::from_rows(
        rows,
        page,
        |r| r.0.id,
        |r| {
            let codes = regions.remove(&r.0.id).unwrap_or_default();
            let left = units.get(&r.0.id).copied().unwrap_or_default();
            view(r, codes, left)
        },
    ))
}

/// One page of offers matching `filter`, as JSON.
async fn listing(state: &AppState, reader: Reader, filter: Filter, page: Page) -> ApiResult<HttpResponse> {
    let now = state.clock.now_naive();
    let listed = reader
        .run(&state.db, move |conn| {
            let rows = store::list(conn, &filter, now, page.before, page.limit + 1)?;
            page_of(conn, rows, page)
        })
        .await?;
    Ok(HttpResponse::Ok().json(listed))
}

fn invalid(errors: Vec<crate::error::FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

fn check(terms: &Terms, partner: &Partner, state: &AppState) -> Result<(), ApiError> {
    invalid(terms.errors(partner.kind, &partner.regions(), &state.catalog.get()))
}

/// Publish an offer (signed partner call).
#[utoipa::path(post, path = "/api/v1/partner/offers", tag = "partners", request_body = NewOffer,
    params(("Idempotency-Key" = Option<String>, Header), ("X-Key-Id" = String, Header), ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 201, body = OfferView), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn create_offer(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let SignedPartner { partner, body } = SignedPartner::authenticate(&req, &mut payload, &state).await?;
    let offer: NewOffer = json::parse(&body)?;
    // A retry under the same Idempotency-Key is answered the offer the first call published, not a
    // second offer with a stock of its own.
    let key = idempotency::optional_key(&req)?;
    let hash = idempotency::request_hash(&serde_json::json!({"publish": offer}));
    let terms = Terms::from(offer);
    check(&terms, &partner, &state)?;
    let scope = format!("partner:{}", partner.id);
    let clock = state.clock.clone();
    let now = clock.now_naive();
    let answered = state
        .db
        .run(move |conn| {
            idempotency::run(
                conn,
                &clock,
                &scope,
                key.as_deref(),
                &hash,
                StatusCode::CREATED,
                |conn| {
                    let id = store::insert(conn, partner.id, &terms, now)?;
                    let view = load_view(conn, id)?
                        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("new offer vanished")))?;
                    idempotency::body_of(&view)
                },
            )
        })
        .await?;
    Ok(idempotency::respond(answered))
}

/// Change an offer (signed partner call; only the partner's own). `stock` sets the units left.
#[utoipa::path(patch, path = "/api/v1/partner/offers/{id}", tag = "partners", request_body = OfferPatch,
    params(("id" = String, Path), ("X-Key-Id" = String, Header), ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 200, body = OfferView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update_offer(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let SignedPartner { partner, body } = SignedPartner::authenticate(&req, &mut payload, &state).await?;
    let patch: OfferPatch = json::parse(&body)?;
    let id = id.into_inner();
    let task_state = state.clone();
    let offer = state
        .db
        .run(move |conn| {
            db::transaction(conn, Tx::Write, |conn| {
                let current = store::find(conn, id)?
                    .filter(|o| o.partner_id == partner.id)
                    .ok_or_else(|| ApiError::not_found("no such offer"))?;
                let regions_changed = patch.region_codes.is_some();
                let stock_changed = patch.stock.is_some();
                let active = patch.active.unwrap_or(current.active);
                let regions = store::regions_of(conn, &[id])?.remove(&id).unwrap_or_default();
                let units = stock::totals(conn, &[id])?.remove(&id).unwrap_or_default();
                let terms = current.terms(regions, units).patched(patch);
                check(&terms, &partner, &task_state)?;
                store::update(
                    conn,
                    id,
                    &terms,
                    stock_changed,
                    active,
                    task_state.clock.now_naive(),
                )?;
                if regions_changed {
                    store::set_regions(conn, id, &terms.region_codes)?;
                }
                load_view(conn, id)
            })
        })
        .await?
        .ok_or_else(|| ApiError::not_found("no such offer"))?;
    Ok(HttpResponse::Ok().json(offer))
}

/// The calling partner's offers, withdrawn and past ones included, newest first.
#[utoipa::path(get, path = "/api/v1/partner/offers", tag = "partners", params(PageQuery),
    responses((status = 200, body = Paginated<OfferView>), (status = 401, body = Problem)))]
pub async fn partner_offers(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let SignedPartner { partner, .. } = SignedPartner::authenticate(&req, &mut payload, &state).await?;
    let page = page.page()?;
    let filter = Filter {
        kind: None,
        regions: None,
        partner_id: Some(partner.id),
    };
    listing(&state, Reader::signed_in(), filter, page).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct OfferQuery {
    /// transit, scenic or green_credit
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub kind: Option<String>,
    /// Offers a user of this region can redeem (offered there or in a region containing it).
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub region_code: Option<String>,
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub limit: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub cursor: Option<String>,
}

/// Offers open now, newest first. Public.
#[utoipa::path(get, path = "/api/v1/offers", tag = "partners", params(OfferQuery),
    responses((status = 200, body = Paginated<OfferView>), (status = 422, body = Problem)))]
pub async fn list_offers(
    state: web::Data<AppState>,
    reader: Reader,
    query: web::Query<OfferQuery>,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .page()?;
    let kind = query
        .kind
        .as_deref()
        .map(str::parse::<PartnerKind>)
        .transpose()
        .map_err(|_| ApiError::field("kind", format!("must be one of {}", PARTNER_KINDS.join(", "))))?;
    let regions = match &query.region_code {
        None => None,
        Some(code) => {
            let catalog = state.catalog.get();
            if catalog.region(code).is_none() {
                return Err(ApiError::field("region_code", format!("unknown region {code}")));
            }
            Some(catalog.lineage(code).map(|r| r.code.clone()).collect())
        }
    };
    let filter = Filter {
        kind,
        regions,
        partner_id: None,
    };
    listing(&state, reader, filter, page).await
}

/// One offer, open or not. Public.
#[utoipa::path(get, path = "/api/v1/offers/{id}", tag = "partners",
    responses((status = 200, body = OfferView), (status = 404, body = Problem)))]
pub async fn get_offer(
    state: web::Data<AppState>,
    reader: Reader,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let offer = reader
        .run(&state.db, move |conn| load_view(conn, id))
        .await?
        .ok_or_else(|| ApiError::not_found("no such offer"))?;
    Ok(HttpResponse::Ok().json(offer))
}
