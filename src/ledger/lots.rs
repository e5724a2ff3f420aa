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
use crate::db::prepared::{add_rows, insert_rows};
use crate::db::schema::{lot_exits, lot_holdings, lots};
use crate::db::AnyConnection;

pub mod check;

type Result<T> = std::result::Result<T, LedgerError>;

/// Free points, not reserved by a hold.
pub const FREE: i64 = 0;

/// Holdings read per round trip while a spend gathers its points.
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
    use lot_holdings::dsl as h;
    let mut taken: Vec<Piece> = Vec::new();
    // The last holding read and whether it was taken whole.
    let mut last: Option<(Piece, bool)> = None;
    let mut left = points;
    while left > 0 {
        let mut page = h::lot_holdings
            .filter(h::account_id.eq(account))
            .filter(h::hold_id.eq(hold_id))
            .into_boxed();
        if let Some((after, _)) = last {
            // The first conjunct bounds the key range: SQLite walks an `OR` alone row by row.
            page = page.filter(h::expires_at.ge(after.expires_at)).filter(
                h::expires_at
                    .gt(after.expires_at)
                    .or(h::expires_at.eq(after.expires_at).and(h::lot_id.gt(after.lot_id))),
            );
        }
        let rows: Vec<Piece> = page
            .order((h::expires_at, h::lot_id))
            .select((h::expires_at, h::lot_id, h::points))
            .limit(PAGE)
            .load(conn)?;
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
            last = Some((row, part == row.points));
            if left == 0 {
                break;
            }
        }
    }
    let (Some((boundary, whole)), Some(first)) = (last, taken.first().map(|p| p.expires_at)) else {
        return Ok(taken);
    };
    // What was taken whole is a prefix of the key range: one range delete; the last may be taken in part.
    // The range is bounded by the first and last expiry taken as well as by the exact boundary: SQLite
    // walks an `OR` alone over the whole wallet (100,000 lots read to spend one point).
    let through =
        |t: NaiveDateTime, lot: i64| h::expires_at.lt(t).or(h::expires_at.eq(t).and(h::lot_id.le(lot)));
    let before =
        |t: NaiveDateTime, lot: i64| h::expires_at.lt(t).or(h::expires_at.eq(t).and(h::lot_id.lt(lot)));
    let range = h::lot_holdings
        .filter(h::account_id.eq(account))
        .filter(h::hold_id.eq(hold_id))
        .filter(h::expires_at.ge(first))
        .filter(h::expires_at.le(boundary.expires_at));
    let (deleted, expected) = if whole {
        let n = diesel::delete(range.filter(through(boundary.expires_at, boundary.lot_id))).execute(conn)?;
        (n, taken.len())
    } else {
        let n = diesel::delete(range.filter(before(boundary.expires_at, boundary.lot_id))).execute(conn)?;
        let part = taken.last().map_or(0, |p| p.points);
        let updated = diesel::update(
            range
                .filter(h::expires_at.eq(boundary.expires_at))
                .filter(h::lot_id.eq(boundary.lot_id)),
        )
        .set(h::points.eq(h::points - part))
        .execute(conn)?;
        (n + updated, taken.len())
    };
    if deleted != expected {
        return Err(LedgerError::Inconsistent(format!(
            "account {account}'s holdings changed under its lock ({deleted} of {expected} written)"
        )));
    }
    Ok(taken)
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
        // Points from an account that keeps no lots (a partner's settlement) would reach a wallet with no
        // provenance: no flow does that, and the ledger refuses it rather than invent a lot.
        _ if wallet(credit) && !transfer.kind.resolves_hold(transfer.pending_id) => {
            Err(LedgerError::Inconsistent(format!(
                "{} transfer {} would bring points without lots into wallet {}",
                transfer.kind, transfer.id, credit.id
            )))
        }
        _ => Ok(()),
    }
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
    #[derive(QueryableByName)]
    struct Due {
        #[diesel(sql_type = Timestamp)]
        expires_at: NaiveDateTime,
        #[diesel(sql_type = BigInt)]
        points: i64,
    }
    let rows: Vec<Due> = diesel::sql_query(
        "SELECT expires_at, CAST(SUM(points) AS BIGINT) AS points FROM lot_holdings \
         WHERE account_id = $1 AND hold_id = 0 GROUP BY expires_at ORDER BY expires_at LIMIT $2",
    )
    .bind::<BigInt, _>(account)
    .bind::<BigInt, _>(limit)
    .load(conn)?;
    Ok(rows.into_iter().map(|d| (d.expires_at, d.points)).collect())
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
