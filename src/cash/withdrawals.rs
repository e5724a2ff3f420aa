//! Withdrawals: the money is held when asked for, then an administrator completes it (the hold is posted
//! to the bank account: the money has left) or rejects it (the hold is voided).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{accounts, WithdrawalStatus, WITHDRAWAL_REF};
use crate::db::schema::cash_withdrawals;
use crate::db::AnyConnection;
use crate::error::{ApiError, ErrorCode};
use crate::ledger::service::{self as ledger, Cause, LedgerError};

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = cash_withdrawals)]
pub struct WithdrawalRow {
    pub id: i64,
    /// The cash account debited.
    pub account_id: i64,
    pub amount_fen: i64,
    pub status: WithdrawalStatus,
    /// Set in the transaction that creates the row, once its id is known.
    pub hold_id: Option<i64>,
    pub resolved_by: Option<i64>,
    pub created_at: NaiveDateTime,
    pub resolved_at: Option<NaiveDateTime>,
}

/// Holds `amount_fen` of `wallet`'s cash for a withdrawal. Not that much available (or no cash account
/// yet): 409 `insufficient_funds`, and nothing is written.
pub fn request(
    conn: &mut AnyConnection,
    wallet: i64,
    amount_fen: i64,
    now: NaiveDateTime,
) -> Result<WithdrawalRow, ApiError> {
    let cash = accounts::of(conn, wallet)?.ok_or(LedgerError::InsufficientFunds)?;
    let bank = accounts::named(conn, accounts::BANK)?;
    let id: i64 = diesel::insert_into(cash_withdrawals::table)
        .values((
            cash_withdrawals::account_id.eq(cash.id),
            cash_withdrawals::amount_fen.eq(amount_fen),
            cash_withdrawals::status.eq(WithdrawalStatus::Held),
            cash_withdrawals::created_at.eq(now),
        ))
        .returning(cash_withdrawals::id)
        .get_result(conn)?;
    let hold = ledger::hold(
        conn,
        cash.id,
        bank.id,
        amount_fen,
        ledger::open_ended(now),
        &Cause::of(WITHDRAWAL_REF, id),
        now,
    )?;
    diesel::update(cash_withdrawals::table.find(id))
        .set(cash_withdrawals::hold_id.eq(hold.id))
        .execute(conn)?;
    find(conn, id)?.ok_or_else(|| ApiError::internal(anyhow::anyhow!("withdrawal {id} vanished")))
}

/// Completes (`pay_out`) or rejects a held withdrawal. One no longer held: 409 `invalid_state`.
pub fn resolve(
    conn: &mut AnyConnection,
    id: i64,
    pay_out: bool,
    admin: i64,
    now: NaiveDateTime,
) -> Result<WithdrawalRow, ApiError> {
    let row = find(conn, id)?.ok_or_else(|| ApiError::not_found("no such withdrawal"))?;
    let not_held = || {
        ApiError::conflict(
            ErrorCode::InvalidState,
            format!("the withdrawal is {} already", row.status),
        )
    };
    if row.status != WithdrawalStatus::Held {
        return Err(not_held());
    }
    let cause = Cause::of(WITHDRAWAL_REF, id);
    let hold = row
        .hold_id
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("withdrawal {id} has no hold")))?;
    let (status, resolved) = if pay_out {
        (WithdrawalStatus::Completed, ledger::post(conn, hold, &cause, now))
    } else {
        (WithdrawalStatus::Rejected, ledger::void(conn, hold, &cause, now))
    };
    match resolved {
        Ok(_) => {}
        Err(LedgerError::NotPending) => return Err(not_held()),
        Err(e) => return Err(e.into()),
    }
    let n = diesel::update(
        cash_withdrawals::table
            .find(id)
            .filter(cash_withdrawals::status.eq(WithdrawalStatus::Held)),
    )
    .set((
        cash_withdrawals::status.eq(status),
        cash_withdrawals::resolved_by.eq(admin),
        cash_withdrawals::resolved_at.eq(now),
    ))
    .execute(conn)?;
    if n != 1 {
        return Err(not_held());
    }
    find(conn, id)?.ok_or_else(|| ApiError::internal(anyhow::anyhow!("withdrawal {id} vanished")))
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<WithdrawalRow>> {
    cash_withdrawals::table
        .find(id)
        .select(WithdrawalRow::as_select())
        .first(conn)
        .optional()
}

/// Withdrawals newest first below the cursor id: of one status or all, of one cash account or all.
pub fn page(
    conn: &mut AnyConnection,
    status: Option<WithdrawalStatus>,
    account: Option<i64>,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<WithdrawalRow>> {
    let mut query = cash_withdrawals::table.into_boxed();
    if let Some(status) = status {
        query = query.filter(cash_withdrawals::status.eq(status));
    }
    if let Some(account) = account {
        query = query.filter(cash_withdrawals::account_id.eq(account));
    }
    if let Some(before) = before {
        query = query.filter(cash_withdrawals::id.lt(before));
    }
    query
        .order(cash_withdrawals::id.desc())
        .limit(limit)
        .select(WithdrawalRow::as_select())
        .load(conn)
}
