//! The market over HTTP: members place, list and cancel orders; anyone reads the book, the trades and
//! the candles.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::data::{self, CandleRow, Level, Period};
use super::store::{self, NewOrder};
use super::views::{view_of, FillView, OrderView};
use super::writer::OrderJob;
use super::{rules, service, OrderStatus, Side, TimeInForce};
use crate::auth::extract::Member;
use crate::auth::Role;
use crate::db::{self, AnyConnection, Tx};
use crate::error::{ApiError, ApiResult, ErrorCode, FieldError, Problem};
use crate::http::json::ApiJson;
use crate::http::pagination::{Page, PageQuery, Paginated};
use crate::http::reader::Reader;
use crate::idempotency;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/market/orders")
            .route(web::post().to(place_order))
            .route(web::get().to(my_orders)),
    )
    .service(
        web::resource("/market/orders/{id}")
            .route(web::get().to(get_order))
            .route(web::delete().to(cancel_order)),
    )
    .service(web::resource("/market/book").route(web::get().to(book)))
    .service(web::resource("/market/trades").route(web::get().to(trades)))
    .service(web::resource("/market/candles").route(web::get().to(candles)));
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    pub side: Side,
    /// A positive multiple of 1,000.
    pub points: i64,
    /// The limit: the most a buyer pays, the least a seller takes, in fen per 1,000 points.
    pub price_fen_per_1000: i64,
    /// `gtc` (default) or `ioc`.
    pub time_in_force: Option<TimeInForce>,
}

fn checked(request: &OrderRequest) -> Result<NewOrder, ApiError> {
    let problems = rules::problems(request.points, request.price_fen_per_1000);
    if !problems.is_empty() {
        return Err(ApiError::validation(
            problems
                .into_iter()
                .map(|(field, message)| FieldError {
                    field: field.into(),
                    message,
                })
                .collect(),
        ));
    }
    Ok(NewOrder {
        side: request.side,
        points: request.points,
        price_fen_per_1000: request.price_fen_per_1000,
        time_in_force: request.time_in_force.unwrap_or(TimeInForce::Gtc),
    })
}

/// Place a limit order: its points (a sale) or its cash at its limit (a purchase) are held, and it is
/// matched against the book before the answer, which carries its fills. Needs an `Idempotency-Key`.
/// Not enough available → 409 `insufficient_funds`; a person homed where trading is off → 403
/// `trading_disabled`.
#[utoipa::path(post, path = "/api/v1/market/orders", tag = "market", request_body = OrderRequest,
    security(("bearer" = [])), params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = OrderView), (status = 403, body = Problem, description = "trading_disabled"),
        (status = 409, body = Problem, description = "insufficient_funds"), (status = 422, body = Problem)))]
pub async fn place_order(
    req: HttpRequest,
    state: web::Data<AppState>,
    member: Member,
    body: ApiJson<OrderRequest>,
) -> ApiResult<HttpResponse> {
    let key = idempotency::required_key(&req)?;
    let claims = member.0;
    let wallet = claims.account_id()?;
    let new = checked(&body.0)?;
    let clock = state.clock.clone();
    if claims.has_role(Role::User)
        && !state
            .catalog
            .get()
            .trading_enabled(&claims.reg, clock.now_naive())
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::TradingDisabled,
            format!("people homed in region {} may not trade points", claims.reg),
        ));
    }
    let request_hash = idempotency::request_hash(&serde_json::to_value(&body.0).map_err(ApiError::internal)?);
    let job = OrderJob {
        wallet,
        order: new,
        idempotency_key: key,
        request_hash,
    };
    let answered = state.market_orders.submit(job).await??;
    Ok(idempotency::respond(answered))
}

fn order_id(id: &str) -> Result<i64, ApiError> {
    id.parse().map_err(|_| ApiError::not_found("no such order"))
}

/// Cancel an order on the book: the rest of its hold is released. Not on the book any more → 409
/// `invalid_state`.
#[utoipa::path(delete, path = "/api/v1/market/orders/{id}", tag = "market", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = OrderView), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "invalid_state")))]
pub async fn cancel_order(
    state: web::Data<AppState>,
    member: Member,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let wallet = member.0.account_id()?;
    let id = order_id(&id)?;
    let clock = state.clock.clone();
    let order = state
        .db
        .run(move |conn| {
            db::transaction(conn, Tx::Write, |conn| {
                service::cancel(conn, wallet, id, clock.now_naive())
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(view_of(order, None)))
}

/// One of the caller's orders, with its fills.
#[utoipa::path(get, path = "/api/v1/market/orders/{id}", tag = "market", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = OrderView), (status = 404, body = Problem)))]
pub async fn get_order(
    state: web::Data<AppState>,
    member: Member,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let wallet = member.0.account_id()?;
    let id = order_id(&id)?;
    let found = state
        .db
        .run(move |conn| {
            let Some(order) = store::find(conn, id)?.filter(|o| o.account_id == wallet) else {
                return Ok(None);
            };
            let fills = store::trades_of(conn, id)?;
            Ok(Some((order, fills)))
        })
        .await?;
    let (order, fills) = found.ok_or_else(|| ApiError::not_found("no such order"))?;
    Ok(HttpResponse::Ok().json(view_of(order, Some(&fills))))
}

#[derive(Debug, Deserialize)]
pub struct OrdersQuery {
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub status: Option<OrderStatus>,
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub limit: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub cursor: Option<String>,
}

/// The caller's orders, newest first, of one status or all.
#[utoipa::path(get, path = "/api/v1/market/orders", tag = "market", security(("bearer" = [])),
    params(("status" = Option<OrderStatus>, Query), ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Paginated<OrderView>), (status = 422, body = Problem)))]
pub async fn my_orders(
    state: web::Data<AppState>,
    member: Member,
    query: web::Query<OrdersQuery>,
) -> ApiResult<HttpResponse> {
    let wallet = member.0.account_id()?;
    let page: Page = PageQuery {
        limit: query.limit,
        cursor: query.cursor.clone(),
    }
    .page()?;
    let status = query.status;
    let rows = state
        .db
        .run(move |conn| {
            Ok(store::of_account(
                conn,
                wallet,
                status,
                page.before,
                page.limit + 1,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page, |o| o.id, |o| view_of(o, None))))
}

/// Price levels shown per side at most.
const MAX_LEVELS: i64 = 200;

#[derive(Debug, Deserialize)]
pub struct CountQuery {
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub limit: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub interval: Option<Period>,
}

impl CountQuery {
    /// `limit`, 1 to `most` (default `default`).
    fn count(&self, default: i64, most: i64) -> Result<i64, ApiError> {
        let n = self.limit.unwrap_or(default);
        if (1..=most).contains(&n) {
            Ok(n)
        } else {
            Err(ApiError::field("limit", format!("must be between 1 and {most}")))
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LevelView {
    pub price_fen_per_1000: i64,
    pub points: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BookView {
    /// Buy orders by price level, highest first.
    pub bids: Vec<LevelView>,
    /// Sell orders by price level, lowest first.
    pub asks: Vec<LevelView>,
}

fn levels(rows: Vec<Level>) -> Vec<LevelView> {
    rows.into_iter()
        .map(|l| LevelView {
            price_fen_per_1000: l.price_fen_per_1000,
            points: l.points,
        })
        .collect()
}

/// A public answer that a page polling every second may cache for that second.
fn public(body: impl Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=1"))
        .json(body)
}

/// The book: open orders summed by price level, best first (`limit` levels a side, default 50).
#[utoipa::path(get, path = "/api/v1/market/book", tag = "market",
    params(("limit" = Option<i64>, Query)),
    responses((status = 200, body = BookView), (status = 422, body = Problem)))]
pub async fn book(
    state: web::Data<AppState>,
    reader: Reader,
    query: web::Query<CountQuery>,
) -> ApiResult<HttpResponse> {
    let n = query.count(50, MAX_LEVELS)?;
    let (bids, asks) = reader
        .run(&state.db, move |conn: &mut AnyConnection| {
            Ok((
                data::depth(conn, Side::Buy, n)?,
                data::depth(conn, Side::Sell, n)?,
            ))
        })
        .await?;
    Ok(public(BookView {
        bids: levels(bids),
        asks: levels(asks),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TradesView {
    pub items: Vec<FillView>,
}

/// The latest trades, newest first (`limit`, default 50, at most 200).
#[utoipa::path(get, path = "/api/v1/market/trades", tag = "market",
    params(("limit" = Option<i64>, Query)),
    responses((status = 200, body = TradesView), (status = 422, body = Problem)))]
pub async fn trades(
    state: web::Data<AppState>,
    reader: Reader,
    query: web::Query<CountQuery>,
) -> ApiResult<HttpResponse> {
    let n = query.count(50, 200)?;
    let rows = reader
        .run(&state.db, move |conn: &mut AnyConnection| {
            Ok(data::trades(conn, n)?)
        })
        .await?;
    Ok(public(TradesView {
        items: rows.iter().map(FillView::from).collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CandleView {
    /// The start of the hour, or of the Asia/Shanghai day.
    pub at: DateTime<Utc>,
    pub open: i64,
    pub high: i64,
    pub low: i64,
    pub close: i64,
    pub volume_points: i64,
    pub volume_fen: i64,
    pub trades: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CandlesView {
    pub interval: Period,
    /// Oldest first; periods without trades are left out.
    pub items: Vec<CandleView>,
}

fn candle_view(c: CandleRow) -> CandleView {
    CandleView {
        at: c.bucket.and_utc(),
        open: c.open_price,
        high: c.high_price,
        low: c.low_price,
        close: c.close_price,
        volume_points: c.volume_points,
        volume_fen: c.volume_fen,
        trades: c.trades,
    }
}

/// Hourly (`1h`) or daily (`1d`, Asia/Shanghai days) candles of the prices traded (fen per 1,000
/// points): the latest `limit` (default 100, at most 1000), oldest first.
#[utoipa::path(get, path = "/api/v1/market/candles", tag = "market",
    params(("interval" = Option<Period>, Query), ("limit" = Option<i64>, Query)),
    responses((status = 200, body = CandlesView), (status = 422, body = Problem)))]
pub async fn candles(
    state: web::Data<AppState>,
    reader: Reader,
    query: web::Query<CountQuery>,
) -> ApiResult<HttpResponse> {
    let n = query.count(100, 1000)?;
    let interval = query.interval.unwrap_or(Period::Hour);
    let rows = reader
        .run(&state.db, move |conn: &mut AnyConnection| {
            Ok(data::candles(conn, interval, n)?)
        })
        .await?;
    Ok(public(CandlesView {
        interval,
        items: rows.into_iter().map(candle_view).collect(),
    }))
}
