//! The ledger's service API. Every function runs inside the caller's database transaction (or opens
//! one when called outside any), so a flow can issue points together with the activity that earned them.
//!
//! Every function that records a transfer takes `now`, its `created_at`, read by the caller from its
//! clock (once per request or sweep).
//!
//! Floors are enforced by the SQL: a debit from a floored account is a conditional UPDATE that matches
//! no row when the available balance is short, and the table's CHECK refuses an overdraft whatever the
//! code does. Account rows are always updated in ascending id order, so opposite transfers cannot
//! deadlock. Derived accounts (regional issuance) are never updated: their balances are their transfers.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::lots::{self, NewLot, Origin};
use super::store::{self, AccountRow, TransferRow};
use crate::db::schema::{accounts, pending_holds, transfers, unsealed_transfers};
use crate::db::{self, AnyConnection, Tx};

pub use super::error::LedgerError;

/// What a transfer does (the name the ledger's callers use).
pub use super::kinds::TransferKind as Kind;

/// What caused a transfer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cause {
    pub ref_type: Option<String>,
    pub ref_id: Option<String>,
    pub memo: Option<String>,
}

impl Cause {
    pub fn of(ref_type: &str, ref_id: impl ToString) -> Cause {
        Cause {
            ref_type: Some(ref_type.to_string()),
            ref_id: Some(ref_id.to_string()),
            memo: None,
        }
    }

    pub fn memo(memo: Option<String>) -> Cause {
        Cause {
            ref_type: memo.as_ref().map(|_| "memo".to_string()),
            ref_id: None,
            memo,
        }
    }
}

type Result<T> = std::result::Result<T, LedgerError>;

/// The timeout of a hold that waits for a decision rather than a clock (a withdrawal under review, an
/// open market order): a century on, so no sweep ever expires it.
pub fn open_ended(now: NaiveDateTime) -> NaiveDateTime {
    now + chrono::Duration::days(36_500)
}

/// Which balance columns a step changes, on the debit or the credit side.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// Posted debit; checked against the floor.
    DebitPosted,
    CreditPosted,
    /// Posted credit by an `issue`: also raises the wallet's issued total.
    CreditIssued,
    /// Pending debit (a hold); checked against the floor.
    DebitPending,
    CreditPending,
    /// A hold posted: pending becomes posted.
    DebitPendingToPosted,
    CreditPendingToPosted,
    /// A hold voided or expired: pending released.
    DebitPendingReleased,
    CreditPendingReleased,
}

impl Change {
    /// The column this change raises, as it would stand after `amount`; `None` when it would leave the
    /// 64-bit range. Releasing a hold only lowers its pending columns, which always fits.
    fn raised(self, account: &AccountRow, amount: i64) -> Option<i64> {
        let column = match self {
            Change::DebitPosted | Change::DebitPendingToPosted => account.debits_posted,
            Change::CreditPosted | Change::CreditIssued | Change::CreditPendingToPosted => {
                account.credits_posted
            }
            Change::DebitPending => account.debits_pending,
            Change::CreditPending => account.credits_pending,
            Change::DebitPendingReleased | Change::CreditPendingReleased => 0,
        };
        column.checked_add(amount)
    }
}

fn apply(conn: &mut AnyConnection, account: &AccountRow, change: Change, amount: i64) -> Result<()> {
    if account.derived {
        return Ok(());
    }
    if change.raised(account, amount).is_none() {
        return Err(LedgerError::OutOfRange);
    }
    use accounts::dsl as a;
    let row = a::accounts.find(account.id);
    // Available = posted credits − posted debits − pending debits; a floored account keeps it ≥ 0.
    let affordable = a::floored
        .eq(false)
        .or((a::credits_posted - a::debits_posted - a::debits_pending).ge(amount));
    // Each raised column must still fit after the change (`amount` > 0, so this never wraps): the row is
    // read above unlocked, and the guard is what keeps a concurrent change from taking it out of range,
    // where SQLite would store a float and PostgreSQL fail the statement.
    let room = i64::MAX - amount;
    let n = match change {
        Change::DebitPosted => diesel::update(row.filter(affordable).filter(a::debits_posted.le(room)))
            .set(a::debits_posted.eq(a::debits_posted + amount))
            .execute(conn)?,
        Change::DebitPending => diesel::update(row.filter(affordable).filter(a::debits_pending.le(room)))
            .set(a::debits_pending.eq(a::debits_pending + amount))
            .execute(conn)?,
        Change::CreditPosted => diesel::update(row.filter(a::credits_posted.le(room)))
            .set(a::credits_posted.eq(a::credits_posted + amount))
            .execute(conn)?,
        // The issued total is part of the posted credits: it fits wherever they fit.
        Change::CreditIssued => diesel::update(row.filter(a::credits_posted.le(room)))
            .set((
                a::credits_posted.eq(a::credits_posted + amount),
                a::issued_posted.eq(a::issued_posted + amount),
            ))
            .execute(conn)?,
        Change::CreditPending => diesel::update(row.filter(a::credits_pending.le(room)))
            .set(a::credits_pending.eq(a::credits_pending + amount))
            .execute(conn)?,
        Change::DebitPendingToPosted => diesel::update(row.filter(a::debits_posted.le(room)))
            .set((
                a::debits_pending.eq(a::debits_pending - amount),
                a::debits_posted.eq(a::debits_posted + amount),
            ))
            .execute(conn)?,
        Change::CreditPendingToPosted => diesel::update(row.filter(a::credits_posted.le(room)))
            .set((
                a::credits_pending.eq(a::credits_pending - amount),
                a::credits_posted.eq(a::credits_posted + amount),
            ))
            .execute(conn)?,
        Change::DebitPendingReleased => diesel::update(row)
            .set(a::debits_pending.eq(a::debits_pending - amount))
            .execute(conn)?,
        Change::CreditPendingReleased => diesel::update(row)
            .set(a::credits_pending.eq(a::credits_pending - amount))
            .execute(conn)?,
    };
    if n == 1 {
        Ok(())
    } else {
        Err(refusal(conn, account.id, change, amount)?)
    }
}

/// Why a guarded update matched no row, from the account as it stands now: its raised column would
/// leave the 64-bit range, or the points are not there.
fn refusal(conn: &mut AnyConnection, id: i64, change: Change, amount: i64) -> Result<LedgerError> {
    let now = store::account(conn, id)?.ok_or(LedgerError::UnknownAccount(id))?;
    Ok(match change.raised(&now, amount) {
        None => LedgerError::OutOfRange,
        Some(_) => LedgerError::InsufficientFunds,
    })
}

/// Updates both sides, the lower account id first (the global lock order).
fn apply_both(
    conn: &mut AnyConnection,
    debit: &AccountRow,
    credit: &AccountRow,
    changes: (Change, Change),
    amount: i64,
) -> Result<()> {
    if debit.id < credit.id {
        apply(conn, debit, changes.0, amount)?;
        apply(conn, credit, changes.1, amount)
    } else {
        apply(conn, credit, changes.1, amount)?;
        apply(conn, debit, changes.0, amount)
    }
}

struct NewTransfer<'a> {
    kind: Kind,
    debit: i64,
    credit: i64,
    amount: i64,
    pending_id: Option<i64>,
    timeout_at: Option<NaiveDateTime>,
    cause: &'a Cause,
    created_at: NaiveDateTime,
}

/// Records a transfer and queues it for sealing. The row is built here rather than read back: every
/// column is known, and reading it back (timestamps parsed from text on SQLite) cost more than the insert.
fn insert(conn: &mut AnyConnection, new: NewTransfer<'_>) -> Result<TransferRow> {
    let created_at = new.created_at;
    let id: i64 = diesel::insert_into(transfers::table)
        .values((
            transfers::kind.eq(new.kind),
            transfers::debit_account_id.eq(new.debit),
            transfers::credit_account_id.eq(new.credit),
            transfers::amount.eq(new.amount),
            transfers::pending_id.eq(new.pending_id),
            transfers::timeout_at.eq(new.timeout_at),
            transfers::ref_type.eq(&new.cause.ref_type),
            transfers::ref_id.eq(&new.cause.ref_id),
            transfers::memo.eq(&new.cause.memo),
            transfers::created_at.eq(created_at),
        ))
        .returning(transfers::id)
        .get_result(conn)?;
    diesel::insert_into(unsealed_transfers::table)
        .values(unsealed_transfers::transfer_id.eq(id))
        .execute(conn)?;
    Ok(TransferRow {
        id,
        kind: new.kind,
        debit_account_id: new.debit,
        credit_account_id: new.credit,
        amount: new.amount,
        pending_id: new.pending_id,
        timeout_at: new.timeout_at,
        ref_type: new.cause.ref_type.clone(),
        ref_id: new.cause.ref_id.clone(),
        memo: new.cause.memo.clone(),
        created_at,
    })
}

fn pair(conn: &mut AnyConnection, debit: i64, credit: i64, amount: i64) -> Result<(AccountRow, AccountRow)> {
    if amount <= 0 {
        return Err(LedgerError::NonPositive);
    }
    if debit == credit {
        return Err(LedgerError::SameAccount);
    }
    let d = store::account(conn, debit)?.ok_or(LedgerError::UnknownAccount(debit))?;
    let c = store::account(conn, credit)?.ok_or(LedgerError::UnknownAccount(credit))?;
    if d.asset != c.asset {
        return Err(LedgerError::OtherAsset(credit));
    }
    Ok((d, c))
}

fn in_tx<T>(conn: &mut AnyConnection, f: impl FnOnce(&mut AnyConnection) -> Result<T>) -> Result<T> {
    db::transaction(conn, Tx::Write, f)
}

/// A single-phase transfer of any kind but issue (transfer, reverse, retire, a lot's expiry): the points
/// taken from a wallet are its soonest-expiring ones.
pub fn transfer(
    conn: &mut AnyConnection,
    kind: Kind,
    debit: i64,
    credit: i64,
    amount: i64,
    cause: &Cause,
    now: NaiveDateTime,
) -> Result<TransferRow> {
    in_tx(conn, |conn| {
        let (d, c) = pair(conn, debit, credit, amount)?;
        posted(conn, kind, &d, &c, amount, cause, now, None)
    })
}

/// The body of a single-phase transfer between two loaded accounts, inside the caller's transaction. An
/// issue creates a lot of `origin`; any other transfer moves lots ([`lots::follow`]).
#[allow(clippy::too_many_arguments)]
fn posted(
    conn: &mut AnyConnection,
    kind: Kind,
    debit: &AccountRow,
    credit: &AccountRow,
    amount: i64,
    cause: &Cause,
    now: NaiveDateTime,
    origin: Option<&Origin<'_>>,
) -> Result<TransferRow> {
    if (kind == Kind::Issue) != origin.is_some() {
        return Err(LedgerError::Inconsistent(format!(
            "a lot's origin is given with every issue and only then ({kind})"
        )));
    }
    let credited = if kind == Kind::Issue {
        Change::CreditIssued
    } else {
        Change::CreditPosted
    };
    apply_both(conn, debit, credit, (Change::DebitPosted, credited), amount)?;
    let row = insert(
        conn,
        NewTransfer {
            kind,
            debit: debit.id,
            credit: credit.id,
            amount,
            pending_id: None,
            timeout_at: None,
            cause,
            created_at: now,
        },
    )?;
    match origin {
        Some(origin) => lots::create(
            conn,
            &[NewLot {
                id: row.id,
                account_id: credit.id,
                points: amount,
                origin,
                created_at: now,
            }],
        )?,
        None => lots::follow(conn, &row, debit, credit)?,
    }
    Ok(row)
}

/// The issuance account of a region.
pub fn issuance_account(conn: &mut AnyConnection, region_code: &str) -> Result<AccountRow> {
    store::account_by_code(conn, &format!("issuance:{region_code}"))?
        .ok_or_else(|| LedgerError::Inconsistent(format!("no issuance account for region {region_code}")))
}

/// New points from the issuance account of `origin`'s region into a wallet, as a lot of `origin`.
pub fn issue(
    conn: &mut AnyConnection,
    origin: &Origin<'_>,
    wallet: i64,
    amount: i64,
    cause: &Cause,
    now: NaiveDateTime,
) -> Result<TransferRow> {
    let region_code = origin.region_code;
    if amount <= 0 {
        return Err(LedgerError::NonPositive);
    }
    // One savepoint, and the issuance account is read once (it is never locked: it is derived).
    in_tx(conn, |conn| {
        let source = issuance_account(conn, region_code)?;
        let target = store::account(conn, wallet)?.ok_or(LedgerError::UnknownAccount(wallet))?;
        if source.id == target.id {
            return Err(LedgerError::SameAccount);
        }
        posted(
            conn,
            Kind::Issue,
            &source,
            &target,
            amount,
            cause,
            now,
            Some(origin),
        )
    })
}

/// Issuance accounts by region, remembered: they are created with their regions, and being derived their
/// rows never change (no balance column is kept for them, and they are never locked).
#[derive(Debug, Default)]
pub struct IssuanceAccounts(std::collections::HashMap<String, AccountRow>);

impl IssuanceAccounts {
    pub fn id(&mut self, conn: &mut AnyConnection, region_code: &str) -> Result<i64> {
        if let Some(account) = self.0.get(region_code) {
            return Ok(account.id);
        }
        let account = issuance_account(conn, region_code)?;
        let id = account.id;
        self.0.insert(region_code.to_string(), account);
        Ok(id)
    }

    /// The row of issuance account `id`, if it was looked up through [`IssuanceAccounts::id`].
    pub fn row(&self, id: i64) -> Option<&AccountRow> {
        self.0.values().find(|account| account.id == id)
    }
}

/// Reserves points until `timeout_at`: they stay in the wallet but cannot be spent.
pub fn hold(
    conn: &mut AnyConnection,
    debit: i64,
    credit: i64,
    amount: i64,
    timeout_at: NaiveDateTime,
    cause: &Cause,
    now: NaiveDateTime,
) -> Result<TransferRow> {
    in_tx(conn, |conn| {
        let (d, c) = pair(conn, debit, credit, amount)?;
        apply_both(
            conn,
            &d,
            &c,
            (Change::DebitPending, Change::CreditPending),
            amount,
        )?;
        let row = insert(
            conn,
            NewTransfer {
                kind: Kind::Hold,
                debit,
                credit,
                amount,
                pending_id: None,
                timeout_at: Some(timeout_at),
                cause,
                created_at: now,
            },
        )?;
        lots::follow(conn, &row, &d, &c)?;
        diesel::insert_into(pending_holds::table)
            .values((
                pending_holds::hold_id.eq(row.id),
                pending_holds::timeout_at.eq(timeout_at),
            ))
            .execute(conn)?;
        Ok(row)
    })
}

/// Resolves a pending hold as posted, voided or expired. Claiming the `pending_holds` row is the race:
/// exactly one resolver deletes it; every other finds nothing and gets `NotPending`.
fn resolve(
    conn: &mut AnyConnection,
    hold_id: i64,
    kind: Kind,
    cause: &Cause,
    now: NaiveDateTime,
) -> Result<TransferRow> {
    in_tx(conn, |conn| {
        let claimed = diesel::delete(pending_holds::table.find(hold_id)).execute(conn)?;
        if claimed == 0 {
            return match store::transfer(conn, hold_id)? {
                Some(t) if t.kind == Kind::Hold => Err(LedgerError::NotPending),
                _ => Err(LedgerError::UnknownHold),
            };
        }
        let hold = store::transfer(conn, hold_id)?.ok_or(LedgerError::UnknownHold)?;
        let (d, c) = pair(conn, hold.debit_account_id, hold.credit_account_id, hold.amount)?;
        let changes = if kind == Kind::Post {
            (Change::DebitPendingToPosted, Change::CreditPendingToPosted)
        } else {
            (Change::DebitPendingReleased, Change::CreditPendingReleased)
        };
        apply_both(conn, &d, &c, changes, hold.amount)?;
        let row = insert(
            conn,
            NewTransfer {
                kind,
                debit: hold.debit_account_id,
                credit: hold.credit_account_id,
                amount: hold.amount,
                pending_id: Some(hold_id),
                timeout_at: None,
                cause,
                created_at: now,
            },
        )?;
        lots::follow(conn, &row, &d, &c)?;
        Ok(row)
    })
}

/// Posts a hold in full: the points move.
pub fn post(
    conn: &mut AnyConnection,
    hold_id: i64,
    cause: &Cause,
    now: NaiveDateTime,
) -> Result<TransferRow> {
    resolve(conn, hold_id, Kind::Post, cause, now)
}

/// Voids a hold: the points are free again.
pub fn void(
    conn: &mut AnyConnection,
    hold_id: i64,
    cause: &Cause,
    now: NaiveDateTime,
) -> Result<TransferRow> {
    resolve(conn, hold_id, Kind::Void, cause, now)
}

/// Expires one hold whose timeout has passed.
pub fn expire(conn: &mut AnyConnection, hold_id: i64, now: NaiveDateTime) -> Result<TransferRow> {
    in_tx(conn, |conn| {
        let due: Option<NaiveDateTime> = pending_holds::table
            .find(hold_id)
            .select(pending_holds::timeout_at)
            .first(conn)
            .optional()?;
        if due.is_some_and(|t| t > now) {
            return Err(LedgerError::NotPending);
        }
        let cause = store::transfer(conn, hold_id)?
            .map(|h| Cause {
                ref_type: h.ref_type,
                ref_id: h.ref_id,
                memo: None,
            })
            .unwrap_or_default();
        resolve(conn, hold_id, Kind::Expire, &cause, now)
    })
}

/// Holds due at `now`, oldest first, except those caused by `owned_by` (flows that expire their own
/// holds because more than the ledger must change with them).
pub fn due_holds(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    limit: i64,
    owned_by: &[&str],
) -> Result<Vec<i64>> {
    let owned: Vec<String> = owned_by.iter().map(|s| s.to_string()).collect();
    Ok(pending_holds::table
        .inner_join(transfers::table.on(transfers::id.eq(pending_holds::hold_id)))
        .filter(pending_holds::timeout_at.le(now))
        .filter(
            transfers::ref_type
                .is_null()
                .or(transfers::ref_type.ne_all(owned)),
        )
        .order(pending_holds::timeout_at)
        .select(pending_holds::hold_id)
        .limit(limit)
        .load(conn)?)
}

/// Expires up to `limit` due holds (except those of `owned_by`), each in its own transaction; a hold
/// that another instance resolved first is skipped. Returns the expiry transfers made.
pub fn expire_due(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    limit: i64,
    owned_by: &[&str],
) -> Result<Vec<TransferRow>> {
    let mut expired = Vec::new();
    for hold_id in due_holds(conn, now, limit, owned_by)? {
        match expire(conn, hold_id, now) {
            Ok(t) => expired.push(t),
            Err(LedgerError::NotPending) | Err(LedgerError::UnknownHold) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(expired)
}
