//! Placing and cancelling orders. Every placement and cancellation runs under the market's lock (a
//! transaction-scoped advisory lock on PostgreSQL; SQLite's single writer), so one matcher works the book
//! at a time whichever instance took the request: the book it reads is the book it changes, and it is
//! never crossed after a commit. The order is durable, with its fills, before it is answered.

use chrono::NaiveDateTime;

use super::store::{self, NewOrder, OrderRow, TradeRow};
use super::{data, rules, settle, Side, TimeInForce};
use crate::cash::accounts as cash;
use crate::db::{self, AnyConnection};
use crate::error::{ApiError, ErrorCode};
use crate::ledger::service::LedgerError;

/// Resting orders read per round trip while an order matches.
const PAGE: i64 = 32;

/// An order as placed, with the fills it made at once (oldest first).
#[derive(Debug, Clone)]
pub struct Placed {
    pub order: OrderRow,
    pub fills: Vec<TradeRow>,
}

/// Takes the market's lock until the transaction ends (again, harmlessly, if it holds it already).
pub fn lock(conn: &mut AnyConnection) -> Result<(), ApiError> {
    Ok(db::lock_until_commit(conn, "market", 0)?)
}

fn opposite(side: Side) -> Side {
    match side {
        Side::Buy => Side::Sell,
        Side::Sell => Side::Buy,
    }
}

fn vanished(id: i64) -> ApiError {
    ApiError::internal(anyhow::anyhow!("order {id} vanished"))
}

/// Places `new` for points wallet `wallet` inside the caller's transaction: holds its points or cash
/// (409 `insufficient_funds`, and nothing is written), matches it against the book, and leaves what is
/// left on the book (good till cancelled) or cancels it (immediate or cancel).
pub fn place(
    conn: &mut AnyConnection,
    wallet: i64,
    new: &NewOrder,
    fee_bps: u32,
    now: NaiveDateTime,
) -> Result<Placed, ApiError> {
    lock(conn)?;
    let wallet = cash::wallet(conn, wallet)?;
    let cash = cash::open(conn, &wallet, now)?;
    let id = store::insert(conn, wallet.id, cash.id, new, now)?;
    let mut order = store::find(conn, id)?.ok_or_else(|| vanished(id))?;
    order.hold_id = settle::hold(conn, &order, order.points, now)?;
    let mut fills = Vec::new();
    while order.remaining() > 0 {
        let resting = store::crossing(conn, opposite(order.side), order.price_fen_per_1000, PAGE)?;
        if resting.is_empty() {
            break;
        }
        for maker in resting {
            if order.remaining() == 0 {
                break;
            }
            // Never a trade with oneself: the resting order goes.
            if maker.account_id == order.account_id {
                cancel_open(conn, &maker, now)?;
                continue;
            }
            fills.push(fill(conn, &mut order, &maker, fee_bps, now)?);
        }
    }
    let on_book = order.time_in_force == TimeInForce::Gtc && order.remaining() > 0;
    if !on_book {
        settle::release(conn, &order, now)?;
        order.hold_id = None;
    }
    order.status = rules::status_of(order.points, order.filled_points, on_book);
    store::update(
        conn,
        order.id,
        order.filled_points,
        order.status,
        order.hold_id,
        now,
    )?;
    order.updated_at = now;
    Ok(Placed { order, fills })
}

/// One fill of the incoming `taker` against resting `maker`, at the maker's price: settled, recorded,
/// both orders advanced (the taker in memory; the caller writes it once matching ends).
fn fill(
    conn: &mut AnyConnection,
    taker: &mut OrderRow,
    maker: &OrderRow,
    fee_bps: u32,
    now: NaiveDateTime,
) -> Result<TradeRow, ApiError> {
    let points = taker.remaining().min(maker.remaining());
    let price = maker.price_fen_per_1000;
    let cash = rules::cash_for(points, price).ok_or(LedgerError::OutOfRange)?;
    let fee = rules::fee_of(cash, fee_bps);
    let (buy, sell) = match taker.side {
        Side::Buy => (&*taker, maker),
        Side::Sell => (maker, &*taker),
    };
    let trade = store::insert_trade(conn, buy.id, sell.id, taker.side, points, price, cash, fee, now)?;
    let (buy_hold, sell_hold) = settle::fill(conn, buy, sell, &trade, now)?;
    data::record(conn, &trade)?;
    let (taker_hold, maker_hold) = match taker.side {
        Side::Buy => (buy_hold, sell_hold),
        Side::Sell => (sell_hold, buy_hold),
    };
    let maker_filled = maker.filled_points + points;
    let maker_status = rules::status_of(maker.points, maker_filled, true);
    store::update(conn, maker.id, maker_filled, maker_status, maker_hold, now)?;
    taker.filled_points += points;
    taker.hold_id = taker_hold;
    Ok(trade)
}

/// Takes an open order off the book: its hold released, its status cancelled (or filled, which an open
/// order never is).
fn cancel_open(conn: &mut AnyConnection, order: &OrderRow, now: NaiveDateTime) -> Result<OrderRow, ApiError> {
    settle::release(conn, order, now)?;
    let status = rules::status_of(order.points, order.filled_points, false);
    store::update(conn, order.id, order.filled_points, status, None, now)?;
    store::find(conn, order.id)?.ok_or_else(|| vanished(order.id))
}

/// Cancels `wallet`'s order `id` inside the caller's transaction: the rest of its hold is released. Not
/// the wallet's order: 404; no longer on the book: 409 `invalid_state`.
pub fn cancel(
    conn: &mut AnyConnection,
    wallet: i64,
    id: i64,
    now: NaiveDateTime,
) -> Result<OrderRow, ApiError> {
    lock(conn)?;
    let order = store::find(conn, id)?
        .filter(|o| o.account_id == wallet)
        .ok_or_else(|| ApiError::not_found("no such order"))?;
    if !order.status.is_open() {
        return Err(ApiError::conflict(
            ErrorCode::InvalidState,
            format!("the order is {} already", order.status),
        ));
    }
    cancel_open(conn, &order, now)
}
