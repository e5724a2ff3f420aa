//! Many single-phase transfers in a handful of statements, inside the caller's transaction.
//!
//! The accounts a batch touches are locked first, all in one statement in ascending id order (the same
//! global lock order every other ledger write follows), and read. The transfers are then decided in
//! order, in memory, against those balances: a transfer that would take a floored account below zero
//! is refused, and later ones see the balances the earlier ones left. What was accepted is written as
//! one multi-row insert of transfers, one of their sealing-queue rows, and one update of every account's
//! net change. The table's CHECK still refuses any overdraft, whatever this code decided: a wrong
//! decision fails the whole transaction, never the floor.

use chrono::NaiveDateTime;
use std::collections::{BTreeMap, HashMap};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};

use super::lots::{self, flow, NewLot, Origin};
use super::service::{Cause, Kind, LedgerError};
use super::store::{AccountRow, TransferRow};
use crate::db::columns::columns;
use crate::db::prepared::{
    in_list, insert_rows, is_postgres, Array, Dynamic, Planning, Value, ROWS_PER_STATEMENT,
};
use crate::db::schema::{accounts, transfers, unsealed_transfers};
use crate::db::{self, AnyConnection, Ids};

type Result<T> = std::result::Result<T, LedgerError>;

/// One transfer to make.
#[derive(Debug, Clone)]
pub struct Order<'a> {
    pub kind: Kind,
    pub debit: i64,
    pub credit: i64,
    pub amount: i64,
    pub cause: &'a Cause,
    /// Where an issue's points come from (every issue has one; no other kind does).
    pub lot: Option<&'a Origin<'a>>,
}

/// A transfer made, with the debit account's balance right after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Posted {
    pub transfer: TransferRow,
    pub debit_balance: i64,
}

type AccountColumns = (
    BigInt,
    Text,
    Text,
    Nullable<Text>,
    Bool,
    Bool,
    BigInt,
    BigInt,
    BigInt,
    BigInt,
    BigInt,
    Text,
);

/// Locks and reads the accounts, in ascending id order. Derived accounts (regional issuance) are read
/// but never locked: their rows never change, and every issue of a region would queue on it. On SQLite
/// the caller's write transaction already holds the database's only write lock.
pub fn lock_accounts(conn: &mut AnyConnection, ids: &[i64]) -> Result<HashMap<i64, AccountRow>> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let query = |ids: Vec<i64>| {
        accounts::table
            .filter(accounts::id.eq_any(ids))
            .order(accounts::id)
    };
    // `as_select` is typed by backend, so each arm names its own.
    let rows: Vec<AccountRow> = match conn {
        AnyConnection::Postgresql(pg) => {
            let mut rows: Vec<AccountRow> = query(ids.clone())
                .filter(accounts::derived.eq(false))
                .select(AccountRow::as_select())
                .for_update()
                .load(pg)?;
            let unlocked: Vec<i64> = ids
                .into_iter()
                .filter(|id| rows.binary_search_by_key(id, |a| a.id).is_err())
                .collect();
            if !unlocked.is_empty() {
                rows.extend(
                    query(unlocked)
                        .filter(accounts::derived.eq(true))
                        .select(AccountRow::as_select())
                        .load(pg)?,
                );
            }
            rows
        }
        AnyConnection::Sqlite(_) => {
            let mut rows = Vec::with_capacity(ids.len());
            for query in in_list::<AccountColumns>(
                conn,
                Dynamic::new(
                    "SELECT id, kind, code, region_code, floored, derived, debits_posted, credits_posted, \
                     debits_pending, credits_pending, issued_posted, asset FROM accounts WHERE id IN ",
                ),
                &ids,
                // Read only on PostgreSQL: SQLite keeps every shape prepared.
                Planning::EachTime,
            ) {
                rows.extend(query.load_rows::<AccountRow>(conn)?);
            }
            rows
        }
    };
    Ok(rows.into_iter().map(|a| (a.id, a)).collect())
}

/// Decides each order against the balances in `accounts`, updating them as it accepts. Returns, per
/// order, the debit account's balance after it or why it was refused.
fn decide(accounts: &mut HashMap<i64, AccountRow>, orders: &[Order<'_>]) -> Vec<Result<i64>> {
    orders
        .iter()
        .map(|order| {
            if order.amount <= 0 {
                return Err(LedgerError::NonPositive);
            }
            if order.debit == order.credit {
                return Err(LedgerError::SameAccount);
            }
            for id in [order.debit, order.credit] {
                if !accounts.contains_key(&id) {
                    return Err(LedgerError::UnknownAccount(id));
                }
            }
            if accounts[&order.debit].asset != accounts[&order.credit].asset {
                return Err(LedgerError::OtherAsset(order.credit));
            }
            let debit = &accounts[&order.debit];
            // In 128 bits: columns edited out of step must not wrap the comparison.
            let available = i128::from(debit.credits_posted)
                - i128::from(debit.debits_posted)
                - i128::from(debit.debits_pending);
            if debit.floored && available < i128::from(order.amount) {
                return Err(LedgerError::InsufficientFunds);
            }
            // Both sides are checked before either changes: a refused order leaves no trace.
            let debits = raised(&accounts[&order.debit], |a| a.debits_posted, order.amount)?;
            let credits = raised(&accounts[&order.credit], |a| a.credits_posted, order.amount)?;
            // The wallet's issued total is part of its credits, so it fits where they fit.
            let issued = (order.kind == Kind::Issue).then_some(order.amount);
            // Derived accounts (regional issuance) keep no balance columns: their transfers are it.
            if let Some(debits) = debits {
                accounts
                    .get_mut(&order.debit)
                    .expect("checked above")
                    .debits_posted = debits;
            }
            if let Some(credits) = credits {
                let credit = accounts.get_mut(&order.credit).expect("checked above");
                credit.credits_posted = credits;
                credit.issued_posted += issued.unwrap_or(0);
            }
            Ok(accounts[&order.debit].balance())
        })
        .collect()
}

/// A posted column of `account` raised by `amount`: `None` for a derived account, which keeps no
/// balance columns, and a refusal when the column would leave the 64-bit range.
fn raised(account: &AccountRow, column: fn(&AccountRow) -> i64, amount: i64) -> Result<Option<i64>> {
    if account.derived {
        return Ok(None);
    }
    column(account)
        .checked_add(amount)
        .map(Some)
        .ok_or(LedgerError::OutOfRange)
}

/// Net posted (debits, credits, of which issued) per account between two readings, for the accounts
/// that changed.
fn net_changes(
    before: &HashMap<i64, AccountRow>,
    after: &HashMap<i64, AccountRow>,
) -> BTreeMap<i64, (i64, i64, i64)> {
    after
        .values()
        .filter_map(|a| {
            let b = &before[&a.id];
            let change = (
                a.debits_posted - b.debits_posted,
                a.credits_posted - b.credits_posted,
                a.issued_posted - b.issued_posted,
            );
            (change != (0, 0, 0)).then_some((a.id, change))
        })
        .collect()
}

columns! {
    /// The columns a single-phase transfer sets (the rest stay NULL).
    transfers for TransferRow, |row| {
        id: row.id,
        kind: &row.kind,
        debit_account_id: row.debit_account_id,
        credit_account_id: row.credit_account_id,
        amount: row.amount,
        ref_type: row.ref_type.as_deref(),
        ref_id: row.ref_id.as_deref(),
        memo: row.memo.as_deref(),
        created_at: row.created_at,
    }
}

columns! {
    /// A transfer's place in the sealing queue.
    unsealed_transfers for TransferRow, |row| {
        transfer_id: row.id,
    }
}

/// Makes the orders, in order, against the locked `accounts` (see [`lock_accounts`]), which are left
/// holding the balances after the batch. Each order is answered on its own; the `Err` of the whole is a
/// database failure, after which the caller must roll back.
pub fn post(
    conn: &mut AnyConnection,
    accounts: &mut HashMap<i64, AccountRow>,
    orders: &[Order<'_>],
    created_at: NaiveDateTime,
) -> Result<Vec<Result<Posted>>> {
    let before = accounts.clone();
    let decisions = decide(accounts, orders);
    let accepted = decisions.iter().filter(|d| d.is_ok()).count();
    let mut ids = db::reserve_ids(conn, Ids::Transfers, accepted)?.into_iter();
    let answers: Vec<Result<Posted>> = orders
        .iter()
        .zip(decisions)
        .map(|(order, decision)| {
            let debit_balance = decision?;
            let id = ids
                .next()
                .ok_or_else(|| LedgerError::Inconsistent("too few transfer ids".into()))?;
            let transfer = TransferRow {
                id,
                kind: order.kind,
                debit_account_id: order.debit,
                credit_account_id: order.credit,
                amount: order.amount,
                pending_id: None,
                timeout_at: None,
                ref_type: order.cause.ref_type.clone(),
                ref_id: order.cause.ref_id.clone(),
                memo: order.cause.memo.clone(),
                created_at,
            };
            Ok(Posted {
                transfer,
                debit_balance,
            })
        })
        .collect();
    let made: Vec<&TransferRow> = answers.iter().flatten().map(|p| &p.transfer).collect();
    if made.is_empty() {
        return Ok(answers);
    }
    insert_rows(conn, transfers::table, &made)?;
    insert_rows(conn, unsealed_transfers::table, &made)?;
    apply_net_changes(conn, &net_changes(&before, accounts))?;
    follow_lots(conn, accounts, orders, &answers)?;
    Ok(answers)
}

/// Creates the lots of the batch's issues (one multi-row insert), then moves lots for its other transfers
/// in sets, decided in order, so that a transfer spends what an earlier one of the batch brought
/// (`lots::flow`).
fn follow_lots(
    conn: &mut AnyConnection,
    accounts: &HashMap<i64, AccountRow>,
    orders: &[Order<'_>],
    answers: &[Result<Posted>],
) -> Result<()> {
    let made = || {
        orders
            .iter()
            .zip(answers)
            .filter_map(|(o, a)| Some((o, &a.as_ref().ok()?.transfer)))
    };
    let mut issued = Vec::new();
    for (order, transfer) in made() {
        match (order.kind, order.lot) {
            (Kind::Issue, Some(origin)) => issued.push(NewLot {
                id: transfer.id,
                account_id: transfer.credit_account_id,
                points: transfer.amount,
                origin,
                created_at: transfer.created_at,
            }),
            (Kind::Issue, None) | (_, Some(_)) => {
                return Err(LedgerError::Inconsistent(format!(
                    "a lot's origin is given with every issue and only then (transfer {})",
                    transfer.id
                )))
            }
            _ => {}
        }
    }
    lots::create(conn, &issued)?;
    let account = |id: i64| {
        accounts
            .get(&id)
            .ok_or_else(|| LedgerError::Inconsistent(format!("account {id} was not locked")))
    };
    let moves = made()
        .filter(|(o, _)| o.kind != Kind::Issue)
        .map(|(_, transfer)| {
            Ok(flow::Move {
                transfer,
                debit: account(transfer.debit_account_id)?,
                credit: account(transfer.credit_account_id)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if moves.is_empty() {
        return Ok(());
    }
    flow::follow_all(conn, &moves)
}

/// Adds each account's net change: on PostgreSQL in one statement (the changes bound as arrays), on SQLite
/// up to 32 accounts per statement, each shape kept prepared. The changes were decided against the locked
/// rows, so none takes a column out of the 64-bit range; the guard makes the database hold to that too (a
/// row it skips fails the count below and the batch).
fn apply_net_changes(conn: &mut AnyConnection, changes: &BTreeMap<i64, (i64, i64, i64)>) -> Result<()> {
    const SET: &str = "UPDATE accounts SET debits_posted = debits_posted + v.d, \
                       credits_posted = credits_posted + v.c, issued_posted = issued_posted + v.i FROM ";
    const GUARD: &str = " WHERE accounts.id = v.id \
                         AND accounts.debits_posted <= 9223372036854775807 - v.d \
                         AND accounts.credits_posted <= 9223372036854775807 - v.c";
    let rows: Vec<[i64; 4]> = changes
        .iter()
        .map(|(&id, &(debits, credits, issued))| [id, debits, credits, issued])
        .collect();
    let mut updated = 0;
    if is_postgres(conn) {
        let mut statement = Dynamic::<BigInt>::new(SET);
        let column = |i: usize| Array::BigInt(rows.iter().map(|row| row[i]).collect());
        statement.push_unnest((0..4).map(column).collect());
        updated += statement.sql(" AS v (id, d, c, i)").sql(GUARD).execute(conn)?;
    } else {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut statement = Dynamic::<BigInt>::new(format!(
                "{SET}(SELECT column1 AS id, column2 AS d, column3 AS c, column4 AS i FROM (VALUES "
            ));
            statement.push_tuples(chunk.iter().map(|row| row.map(Value::BigInt)));
            updated += statement.sql(") AS t) AS v").sql(GUARD).execute(conn)?;
        }
    }
    if updated != changes.len() {
        return Err(LedgerError::Inconsistent(format!(
            "{updated} of {} accounts updated",
            changes.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wallet(id: i64, balance: i64, held: i64) -> AccountRow {
        AccountRow::wallet_for_tests(id, balance, held)
    }

    fn order(debit: i64, credit: i64, amount: i64, cause: &Cause) -> Order<'_> {
        Order {
            kind: Kind::Transfer,
            debit,
            credit,
            amount,
            cause,
            lot: None,
        }
    }

    #[test]
    fn later_orders_see_what_earlier_ones_left() {
        let cause = Cause::default();
        let mut accounts: HashMap<i64, AccountRow> = [wallet(1, 100, 30), wallet(2, 0, 0), wallet(3, 5, 0)]
            .into_iter()
            .map(|a| (a.id, a))
            .collect();
        let before = accounts.clone();
        let decisions = decide(
            &mut accounts,
            &[
                order(1, 2, 50, &cause), // 70 available: accepted, 1 keeps 50 (20 available)
                order(1, 3, 21, &cause), // 20 available: refused
                order(2, 3, 50, &cause), // 2 received 50 just before: accepted
                order(1, 3, 20, &cause), // exactly what is available: accepted
                order(3, 3, 1, &cause),
                order(3, 9, 1, &cause),
                order(3, 1, 0, &cause),
            ],
        );
        assert_eq!(
            decisions,
            vec![
                Ok(50),
                Err(LedgerError::InsufficientFunds),
                Ok(0),
                Ok(30),
                Err(LedgerError::SameAccount),
                Err(LedgerError::UnknownAccount(9)),
                Err(LedgerError::NonPositive),
            ]
        );
        assert_eq!(
            net_changes(&before, &accounts),
            BTreeMap::from([(1, (70, 0, 0)), (2, (50, 50, 0)), (3, (0, 70, 0))])
        );
    }

    #[test]
    fn derived_and_unfloored_accounts_are_never_refused_nor_updated() {
        let cause = Cause::default();
        let mut issuance = wallet(1, 0, 0);
        issuance.floored = false;
        issuance.derived = true;
        let mut accounts: HashMap<i64, AccountRow> = [issuance, wallet(2, 0, 0)]
            .into_iter()
            .map(|a| (a.id, a))
            .collect();
        let before = accounts.clone();
        let issue = Order {
            kind: Kind::Issue,
            ..order(1, 2, 7, &cause)
        };
        assert_eq!(
            decide(&mut accounts, &[order(1, 2, 500, &cause), issue]),
            vec![Ok(0), Ok(0)]
        );
        // Only the issue counts in the wallet's issued total; the issuance account keeps no totals.
        assert_eq!(
            net_changes(&before, &accounts),
            BTreeMap::from([(2, (0, 507, 7))])
        );
    }

    #[test]
    fn an_order_that_would_overflow_a_column_is_refused_and_changes_nothing() {
        let cause = Cause::default();
        let mut full = wallet(2, i64::MAX - 10, 0);
        full.debits_posted = 5;
        let mut accounts: HashMap<i64, AccountRow> = [wallet(1, 100, 0), full, wallet(3, i64::MAX, 0)]
            .into_iter()
            .map(|a| (a.id, a))
            .collect();
        let before = accounts.clone();
        assert_eq!(
            decide(
                &mut accounts,
                &[
                    order(1, 2, 11, &cause),       // 2's credits would pass i64::MAX
                    order(3, 1, i64::MAX, &cause), // 1's credits would pass i64::MAX
                    order(1, 3, i64::MAX, &cause), // far beyond what 1 holds
                ]
            ),
            vec![
                Err(LedgerError::OutOfRange),
                Err(LedgerError::OutOfRange),
                Err(LedgerError::InsufficientFunds),
            ]
        );
        assert_eq!(accounts, before);
        assert_eq!(decide(&mut accounts, &[order(1, 2, 10, &cause)]), vec![Ok(90)]);
        assert_eq!(accounts[&2].credits_posted, i64::MAX);
    }
}
