//! What orders do to the ledgers. An order holds what it may still trade (a sale its points, a purchase
//! its cash at its own limit), on the market account of that asset as the hold's other side. A fill
//! releases both orders' holds, moves the points from seller to buyer and the cash from buyer to seller
//! (less the fee, which goes to the fee account), and holds again what each order has left: all in the
//! caller's transaction, so a fill happens whole or not at all. Market accounts are derived (no row is
//! updated), so holds on them never contend.

use chrono::NaiveDateTime;

use super::rules;
use super::store::{OrderRow, TradeRow};
use super::{Side, ORDER_REF, TRADE_REF};
use crate::cash::accounts::{self as cash, FEES};
use crate::db::AnyConnection;
use crate::ledger::service::{self as ledger, Cause, Kind, LedgerError};

/// The hold's other side for orders of `side`.
fn market_account(conn: &mut AnyConnection, side: Side) -> Result<i64, LedgerError> {
    let code = match side {
        Side::Sell => "market:points",
        Side::Buy => "market:cash",
    };
    Ok(cash::named(conn, code)?.id)
}

/// The account an order of `side` holds from: the trader's points wallet or cash account.
fn debited(order: &OrderRow) -> i64 {
    match order.side {
        Side::Sell => order.account_id,
        Side::Buy => order.cash_account_id,
    }
}

/// Holds what `order` needs for `remaining` of its points; returns the hold, or none when nothing
/// remains. Short of points or cash: `InsufficientFunds`.
pub fn hold(
    conn: &mut AnyConnection,
    order: &OrderRow,
    remaining: i64,
    now: NaiveDateTime,
) -> Result<Option<i64>, LedgerError> {
    if remaining == 0 {
        return Ok(None);
    }
    let amount =
        rules::held_for(order.side, remaining, order.price_fen_per_1000).ok_or(LedgerError::OutOfRange)?;
    let market = market_account(conn, order.side)?;
    let held = ledger::hold(
        conn,
        debited(order),
        market,
        amount,
        ledger::open_ended(now),
        &Cause::of(ORDER_REF, order.id),
        now,
    )?;
    Ok(Some(held.id))
}

/// Releases `order`'s hold, if it has one.
pub fn release(conn: &mut AnyConnection, order: &OrderRow, now: NaiveDateTime) -> Result<(), LedgerError> {
    if let Some(hold) = order.hold_id {
        ledger::void(conn, hold, &Cause::of(ORDER_REF, order.id), now)?;
    }
    Ok(())
}

/// Settles `trade` between `buy` and `sell` (as they stood before it); returns the holds of what each
/// has left, (buy's, sell's).
pub fn fill(
    conn: &mut AnyConnection,
    buy: &OrderRow,
    sell: &OrderRow,
    trade: &TradeRow,
    now: NaiveDateTime,
) -> Result<(Option<i64>, Option<i64>), LedgerError> {
    let cause = Cause::of(TRADE_REF, trade.id);
    release(conn, sell, now)?;
    ledger::transfer(
        conn,
        Kind::Transfer,
        sell.account_id,
        buy.account_id,
        trade.points,
        &cause,
        now,
    )?;
    let sell_hold = hold(conn, sell, sell.remaining() - trade.points, now)?;
    release(conn, buy, now)?;
    let proceeds = trade.cash_fen - trade.fee_fen;
    if proceeds > 0 {
        ledger::transfer(
            conn,
            Kind::Transfer,
            buy.cash_account_id,
            sell.cash_account_id,
            proceeds,
            &cause,
            now,
        )?;
    }
    if trade.fee_fen > 0 {
        let fees = cash::named(conn, FEES)?.id;
        ledger::transfer(
            conn,
            Kind::Transfer,
            buy.cash_account_id,
            fees,
            trade.fee_fen,
            &cause,
            now,
        )?;
    }
    let buy_hold = hold(conn, buy, buy.remaining() - trade.points, now)?;
    Ok((buy_hold, sell_hold))
}
