//! Points lots: where each wallet's points came from and when they expire (docs/ledger.md, "Lots").
//!
//! Every issue creates a lot (its points, the grams behind them, region, activity type, methodology
//! version, expiry) and a holding of it in the receiving wallet. A wallet's holdings are keyed in spending
//! order, `(account, hold, expires_at, lot)`, so a spend takes the first rows of the wallet's key range,
//! the soonest-expiring points, and deletes what it emptied as one range: what was spent never stays in
//! the way of the next spend, and a wallet with 100,000 lots spends like one with ten.
//!
//! Every transfer the ledger writes is followed here in the same transaction ([`follow`]): points that
//! move between wallets keep their lot and expiry; a hold moves them to a holding reserved by the hold,
//! which its post takes on and its void or expiry gives back; points that leave the wallets (captured by
//! a partner, retired, expired) are written off their lots as exits. So, at every commit:
//! a wallet's holdings sum to its balance, a hold's to its amount, and a lot's holdings and exits to its
//! points; `verify` checks all three ([`check`]).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamp};

use super::error::LedgerError;
use super::kinds::TransferKind as Kind;
use super::store::{AccountRow, TransferRow};
use crate::db::columns::columns;
use crate::db::prepared::{add_rows, insert_rows, Dynamic, Value};
use crate::db::schema::{lot_exits, lot_holdings, lots};
use crate::db::AnyConnection;

pub mod check;
pub mod flow;

type Result<T> = std::result::Result<T, LedgerError>;

/// Free points, not reserved by a hold.
pub const FREE: i64 = 0;

/// Holdings read by a spend's first round trip, doubled on each further one up to [`PAGE`].
const FIRST_PAGE: i64 = 4;
/// The most holdings read per round trip while a spend gathers its points.
const PAGE: i64 = 64;

/// Where an issue's points came from, and when they expire.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin<'a> {
    pub region_code: &'a str,
    pub activity_type: Option<&'a str>,
    pub methodology_id: Option<i64>,
    /// The grams behind the points (what the activity was granted).
    pub reduction_g: i64,
    pub expires_at: NaiveDateTime,
}

impl<'a> Origin<'a> {
    /// Points granted in a region without an activity behind them (a seeded balance): no grams.
    pub fn plain(region_code: &'a str, expires_at: NaiveDateTime) -> Origin<'a> {
        Origin {
            region_code,
            activity_type: None,
            methodology_id: None,
            reduction_g: 0,
            expires_at,
        }
    }
}

/// A lot as created by an issue.
#[derive(Debug, Clone)]
pub struct NewLot<'a> {
    /// The issue transfer.
    pub id: i64,
    pub account_id: i64,
    pub points: i64,
    pub origin: &'a Origin<'a>,
    pub created_at: NaiveDateTime,
}

columns! {
    lots for NewLot<'_>, |row| {
        id: row.id,
        account_id: row.account_id,
        region_code: row.origin.region_code,
        activity_type: row.origin.activity_type,
        methodology_id: row.origin.methodology_id,
        points: row.points,
        reduction_g: row.origin.reduction_g,
        expires_at: row.origin.expires_at,
        created_at: row.created_at,
    }
}

/// Points of one lot in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Queryable)]
pub struct Piece {
    pub expires_at: NaiveDateTime,
    pub lot_id: i64,
    pub points: i64,
}

/// A holding row: `piece` held by `account_id` under `hold_id`.
struct Holding {
    account_id: i64,
    hold_id: i64,
    piece: Piece,
}

columns! {
    lot_holdings for Holding, |row| {
        account_id: row.account_id,
        hold_id: row.hold_id,
        expires_at: row.piece.expires_at,
        lot_id: row.piece.lot_id,
        points: row.piece.points,
    }
}

/// A holding's key (account, hold, expiry, lot): what [`add_rows`] adds to when it is stored already.
type HoldingKey = (i64, i64, NaiveDateTime, i64);

columns! {
    lot_holdings for HoldingKey, |(account_id, hold_id, expires_at, lot_id)| {
        account_id: *account_id,
        hold_id: *hold_id,
        expires_at: *expires_at,
        lot_id: *lot_id,
    }
}

/// Points of one lot that one transfer took out of the wallets.
struct Exit {
    transfer_id: i64,
    piece: Piece,
}

columns! {
    lot_exits for Exit, |row| {
        transfer_id: row.transfer_id,
        lot_id: row.piece.lot_id,
        points: row.piece.points,
    }
}

/// Creates issued lots and their holdings in the receiving wallets: two multi-row inserts.
pub fn create(conn: &mut AnyConnection, new: &[NewLot<'_>]) -> Result<()> {
    if new.is_empty() {
        return Ok(());
    }
    insert_rows(conn, lots::table, new)?;
    let holdings: Vec<Holding> = new
        .iter()
        .map(|lot| Holding {
            account_id: lot.account_id,
            hold_id: FREE,
            piece: Piece {
                expires_at: lot.origin.expires_at,
                lot_id: lot.id,
                points: lot.points,
            },
        })
        .collect();
    insert_rows(conn, lot_holdings::table, &holdings)?;
    Ok(())
}

/// Takes `points` off `account`'s holdings under `hold_id`, soonest expiry first, and returns the pieces
/// taken. The caller holds the account's row lock (every writer of a wallet's holdings takes it first).
pub fn take(conn: &mut AnyConnection, account: i64, hold_id: i64, points: i64) -> Result<Vec<Piece>> {
    let mut taken: Vec<Piece> = Vec::new();
    // Whether the last holding read was taken whole.
    let mut last_whole = true;
    let mut left = points;
    // Most spends take one or two holdings: read a few first, more only when they do not cover it, so
    // that a wallet of many lots reads no more than one of few.
    let mut page = FIRST_PAGE;
    while left > 0 {
        let after = taken.last().map(|p| (p.expires_at, p.lot_id));
        let rows = holdings_after(conn, account, hold_id, after, page)?;
        if rows.is_empty() {
            return Err(LedgerError::Inconsistent(format!(
                "account {account}'s lots (hold {hold_id}) hold {} points fewer than it spends",
                left
            )));
        }
        for row in rows {
            let part = row.points.min(left);
            left -= part;
            taken.push(Piece { points: part, ..row });
            last_whole = part == row.points;
            if left == 0 {
                break;
            }
        }
        page = (page * 2).min(PAGE);
    }
    // What was taken whole is a prefix of the key range, deleted as one range; the last may be taken in
    // part. Both bounds are row values, which both backends read as a range of the key: the holdings
    // read are the ones deleted, however many share an expiry.
    let whole = if last_whole { taken.len() } else { taken.len() - 1 };
    if let (Some(first), Some(end)) = (taken.first(), taken[..whole].last()) {
        let deleted = Dynamic::<BigInt>::new("DELETE FROM lot_holdings WHERE account_id = ")
            .bind(Value::BigInt(account))
            .sql(" AND hold_id = ")
            .bind(Value::BigInt(hold_id))
            .sql(" AND (expires_at, lot_id) >= (")
            .bind(Value::Timestamp(first.expires_at))
            .sql(", ")
            .bind(Value::BigInt(first.lot_id))
            .sql(") AND (expires_at, lot_id) <= (")
            .bind(Value::Timestamp(end.expires_at))
            .sql(", ")
            .bind(Value::BigInt(end.lot_id))
            .sql(")")
            .execute(conn)?;
        changed_under_lock(account, deleted, whole)?;
    }
    if let (false, Some(part)) = (last_whole, taken.last()) {
        use lot_holdings::dsl as h;
        let updated = diesel::update(
            h::lot_holdings
                .filter(h::account_id.eq(account))
                .filter(h::hold_id.eq(hold_id))
                .filter(h::expires_at.eq(part.expires_at))
                .filter(h::lot_id.eq(part.lot_id)),
        )
        .set(h::points.eq(h::points - part.points))
        .execute(conn)?;
        changed_under_lock(account, updated, 1)?;
    }
    Ok(taken)
}

/// Up to `limit` of `account`'s holdings under `hold_id` in key order (soonest expiry first), after the
/// holding `after` when given.
fn holdings_after(
    conn: &mut AnyConnection,
    account: i64,
    hold_id: i64,
    after: Option<(NaiveDateTime, i64)>,
    limit: i64,
) -> Result<Vec<Piece>> {
    let mut page = Dynamic::<(Timestamp, BigInt, BigInt)>::new(
        "SELECT expires_at, lot_id, points FROM lot_holdings WHERE account_id = ",
    )
    .bind(Value::BigInt(account))
    .sql(" AND hold_id = ")
    .bind(Value::BigInt(hold_id));
    if let Some((expires_at, lot_id)) = after {
        page = page
            .sql(" AND (expires_at, lot_id) > (")
            .bind(Value::Timestamp(expires_at))
            .sql(", ")
            .bind(Value::BigInt(lot_id))
            .sql(")");
    }
    Ok(page
        .sql(" ORDER BY expires_at, lot_id LIMIT ")
        .bind(Value::BigInt(limit))
        .load_rows(conn)?)
}

/// Holdings are written only under their account's row lock: a count other than the one read means
/// they changed behind it.
fn changed_under_lock(account: i64, written: usize, expected: usize) -> Result<()> {
    if written == expected {
        return Ok(());
    }
    Err(LedgerError::Inconsistent(format!(
        "account {account}'s holdings changed under its lock ({written} of {expected} written)"
    )))
}

/// Adds `pieces` to `account`'s holdings under `hold_id` (to a stored holding of the same lot, or new).
pub fn put(conn: &mut AnyConnection, account: i64, hold_id: i64, pieces: &[Piece]) -> Result<()> {
    let rows: Vec<Holding> = pieces
        .iter()
        .map(|&piece| Holding {
            account_id: account,
            hold_id,
            piece,
        })
        .collect();
    add_rows::<HoldingKey, _, _>(conn, lot_holdings::table, &rows)?;
    Ok(())
}

/// Writes `pieces` off their lots as having left the wallets by `transfer_id`.
fn exit(conn: &mut AnyConnection, transfer_id: i64, pieces: &[Piece]) -> Result<()> {
    let rows: Vec<Exit> = pieces.iter().map(|&piece| Exit { transfer_id, piece }).collect();
    insert_rows(conn, lot_exits::table, &rows)?;
    Ok(())
}

/// Makes the lots follow `transfer`, just written between `debit` and `credit` in this transaction.
/// An issue's lot is created by the caller (it knows the origin: see [`create`]).
pub fn follow(
    conn: &mut AnyConnection,
    transfer: &TransferRow,
    debit: &AccountRow,
    credit: &AccountRow,
) -> Result<()> {
    let amount = transfer.amount;
    let wallet = AccountRow::holds_lots;
    match (transfer.kind, transfer.pending_id) {
        (Kind::Issue, _) => Ok(()),
        (Kind::Hold, _) if wallet(debit) => {
            let pieces = take(conn, debit.id, FREE, amount)?;
            put(conn, debit.id, transfer.id, &pieces)
        }
        (Kind::Post, Some(hold)) if wallet(debit) => {
            let pieces = take(conn, debit.id, hold, amount)?;
            arrive(conn, transfer.id, credit, &pieces)
        }
        (Kind::Void | Kind::Expire, Some(hold)) if wallet(debit) => {
            let pieces = take(conn, debit.id, hold, amount)?;
            put(conn, debit.id, FREE, &pieces)
        }
        _ if wallet(debit) => {
            let pieces = take(conn, debit.id, FREE, amount)?;
            arrive(conn, transfer.id, credit, &pieces)
        }
        _ if wallet(credit) && !transfer.kind.resolves_hold(transfer.pending_id) => {
            Err(without_provenance(transfer, credit))
        }
        _ => Ok(()),
    }
}

/// The refusal of `transfer`, which would bring wallet `credit` points from an account that keeps no lots
/// (a partner's settlement, say): they would have no provenance. No flow does that, and the ledger
/// refuses it rather than invent a lot.
fn without_provenance(transfer: &TransferRow, credit: &AccountRow) -> LedgerError {
    LedgerError::Inconsistent(format!(
        "{} transfer {} would bring points without lots into wallet {}",
        transfer.kind, transfer.id, credit.id
    ))
}

/// Pieces taken from a wallet arrive in `credit`: kept as its holdings when it is a wallet, else written
/// off as exits of transfer `transfer_id`.
fn arrive(conn: &mut AnyConnection, transfer_id: i64, credit: &AccountRow, pieces: &[Piece]) -> Result<()> {
    if credit.holds_lots() {
        put(conn, credit.id, FREE, pieces)
    } else {
        exit(conn, transfer_id, pieces)
    }
}

/// A wallet's free points by expiry, soonest first: at most `limit` dates, each with the points that
/// expire then. Lots expire at the end of a local day, so the rows read are the lots of those dates: a
/// day's activities, or what transfers brought of other wallets' days (a transfer adds to the holding of
/// the lot it carries, so no one can split a lot into more rows than there are lots).
pub fn expiring(conn: &mut AnyConnection, account: i64, limit: i64) -> Result<Vec<(NaiveDateTime, i64)>> {
    // Kept prepared: every wallet read runs it, and `sql_query` would parse and plan it each time.
    Ok(Dynamic::<(Timestamp, BigInt)>::new(
        "SELECT expires_at, CAST(SUM(points) AS BIGINT) AS points FROM lot_holdings WHERE account_id = ",
    )
    .bind(Value::BigInt(account))
    .sql(" AND hold_id = 0 GROUP BY expires_at ORDER BY expires_at LIMIT ")
    .bind(Value::BigInt(limit))
    .load_rows(conn)?)
}

/// The lots a transfer wrote off (a retirement's, a capture's), with what it took of each: for the grams
/// behind spent points.
pub fn exits_of(conn: &mut AnyConnection, transfer_id: i64) -> Result<Vec<(LotRow, i64)>> {
    Ok(lot_exits::table
        .inner_join(lots::table.on(lots::id.eq(lot_exits::lot_id)))
        .filter(lot_exits::transfer_id.eq(transfer_id))
        .order(lots::id)
        .select((LotRow::as_select(), lot_exits::points))
        .load(conn)?)
}

/// A lot as stored.
#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = lots)]
pub struct LotRow {
    pub id: i64,
    pub account_id: i64,
    pub region_code: String,
    pub activity_type: Option<String>,
    pub methodology_id: Option<i64>,
    pub points: i64,
    pub reduction_g: i64,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

impl LotRow {
    /// The grams behind `points` of this lot: its grams pro rata, rounded down, so that pieces of a lot
    /// never claim more grams than the lot holds.
    pub fn grams_of(&self, points: i64) -> i64 {
        if self.points <= 0 {
            return 0;
        }
        let grams = i128::from(self.reduction_g) * i128::from(points) / i128::from(self.points);
        i64::try_from(grams).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lot(points: i64, grams: i64) -> LotRow {
        LotRow {
            id: 1,
            account_id: 1,
            region_code: "CN".into(),
            activity_type: None,
            methodology_id: None,
            points,
            reduction_g: grams,
            expires_at: NaiveDateTime::MIN,
            created_at: NaiveDateTime::MIN,
        }
    }

    #[test]
    fn pieces_of_a_lot_never_claim_more_grams_than_it_holds() {
        let l = lot(3, 100);
        assert_eq!(l.grams_of(3), 100);
        assert_eq!(l.grams_of(1) * 3, 99);
        assert_eq!(lot(i64::MAX, i64::MAX).grams_of(i64::MAX), i64::MAX);
        assert_eq!(lot(0, 5).grams_of(1), 0);
    }
}
