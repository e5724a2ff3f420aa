//! Order and trade rows.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{OrderStatus, Side, TimeInForce};
use crate::db::schema::{market_orders, market_trades};
use crate::db::AnyConnection;

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = market_orders)]
pub struct OrderRow {
    pub id: i64,
    /// The trader's points wallet.
    pub account_id: i64,
    pub cash_account_id: i64,
    pub side: Side,
    pub price_fen_per_1000: i64,
    pub points: i64,
    pub filled_points: i64,
    pub status: OrderStatus,
    pub time_in_force: TimeInForce,
    /// The order's current hold, while it is on the book.
    pub hold_id: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl OrderRow {
    pub fn remaining(&self) -> i64 {
        self.points - self.filled_points
    }
}

/// An order as asked for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub side: Side,
    pub points: i64,
    pub price_fen_per_1000: i64,
    pub time_in_force: TimeInForce,
}

#[derive(Debug, Clone, Queryable, Selectable, PartialEq, Eq)]
#[diesel(table_name = market_trades)]
pub struct TradeRow {
    pub id: i64,
    pub buy_order_id: i64,
    pub sell_order_id: i64,
    pub taker_side: Side,
    pub points: i64,
    pub price_fen_per_1000: i64,
    /// What the buyer paid; the seller received it less the fee.
    pub cash_fen: i64,
    pub fee_fen: i64,
    pub at: NaiveDateTime,
}

/// Inserts an order, on the book with no hold yet (the caller holds its points or cash next, in the same
/// transaction); returns its id.
pub fn insert(
    conn: &mut AnyConnection,
    account: i64,
    cash_account: i64,
    order: &NewOrder,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    diesel::insert_into(market_orders::table)
        .values((
            market_orders::account_id.eq(account),
            market_orders::cash_account_id.eq(cash_account),
            market_orders::side.eq(order.side),
            market_orders::price_fen_per_1000.eq(order.price_fen_per_1000),
            market_orders::points.eq(order.points),
            market_orders::filled_points.eq(0),
            market_orders::status.eq(OrderStatus::Open),
            market_orders::time_in_force.eq(order.time_in_force),
            market_orders::created_at.eq(now),
            market_orders::updated_at.eq(now),
        ))
        .returning(market_orders::id)
        .get_result(conn)
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<OrderRow>> {
    market_orders::table
        .find(id)
        .select(OrderRow::as_select())
        .first(conn)
        .optional()
}

/// Writes an order's progress: what is filled, its status and its hold.
pub fn update(
    conn: &mut AnyConnection,
    id: i64,
    filled: i64,
    status: OrderStatus,
    hold: Option<i64>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(market_orders::table.find(id))
        .set((
            market_orders::filled_points.eq(filled),
            market_orders::status.eq(status),
            market_orders::hold_id.eq(hold),
            market_orders::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The best resting orders of `side` that an incoming order at `limit` crosses, best price first, then
/// oldest: at most `n`.
pub fn crossing(conn: &mut AnyConnection, side: Side, limit: i64, n: i64) -> QueryResult<Vec<OrderRow>> {
    use market_orders::dsl as o;
    let open = o::market_orders
        .filter(o::side.eq(side))
        .filter(o::status.eq_any([OrderStatus::Open, OrderStatus::PartiallyFilled]))
        .select(OrderRow::as_select())
        .limit(n);
    match side {
        Side::Sell => open
            .filter(o::price_fen_per_1000.le(limit))
            .order((o::price_fen_per_1000.asc(), o::id.asc()))
            .load(conn),
        Side::Buy => open
            .filter(o::price_fen_per_1000.ge(limit))
            .order((o::price_fen_per_1000.desc(), o::id.asc()))
            .load(conn),
    }
}

/// Records a fill; returns it with its id.
#[allow(clippy::too_many_arguments)]
pub fn insert_trade(
    conn: &mut AnyConnection,
    buy: i64,
    sell: i64,
    taker: Side,
    points: i64,
    price: i64,
    cash_fen: i64,
    fee_fen: i64,
    at: NaiveDateTime,
) -> QueryResult<TradeRow> {
    let id = diesel::insert_into(market_trades::table)
        .values((
            market_trades::buy_order_id.eq(buy),
            market_trades::sell_order_id.eq(sell),
            market_trades::taker_side.eq(taker),
            market_trades::points.eq(points),
            market_trades::price_fen_per_1000.eq(price),
            market_trades::cash_fen.eq(cash_fen),
            market_trades::fee_fen.eq(fee_fen),
            market_trades::at.eq(at),
        ))
        .returning(market_trades::id)
        .get_result(conn)?;
    Ok(TradeRow {
        id,
        buy_order_id: buy,
        sell_order_id: sell,
        taker_side: taker,
        points,
        price_fen_per_1000: price,
        cash_fen,
        fee_fen,
        at,
    })
}

/// A trader's orders newest first below the cursor id, of one status or all.
pub fn of_account(
    conn: &mut AnyConnection,
    account: i64,
    status: Option<OrderStatus>,
    before: Option<i64>,
    n: i64,
) -> QueryResult<Vec<OrderRow>> {
    let mut query = market_orders::table
        .filter(market_orders::account_id.eq(account))
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(market_orders::status.eq(status));
    }
    if let Some(before) = before {
        query = query.filter(market_orders::id.lt(before));
    }
    query
        .order(market_orders::id.desc())
        .limit(n)
        .select(OrderRow::as_select())
        .load(conn)
}

/// The fills of an order, oldest first.
pub fn trades_of(conn: &mut AnyConnection, order: i64) -> QueryResult<Vec<TradeRow>> {
    market_trades::table
        .filter(
            market_trades::buy_order_id
                .eq(order)
                .or(market_trades::sell_order_id.eq(order)),
        )
        .order(market_trades::id)
        .select(TradeRow::as_select())
        .load(conn)
}
