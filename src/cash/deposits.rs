//! Deposits: one administrator records money that arrived at the bank, another confirms it, and only the
//! confirmation moves money, from the bank account into the wallet's cash account.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{accounts, DepositStatus, DEPOSIT_REF};
use crate::db::schema::{cash_deposits, reduction_batches};
use crate::db::AnyConnection;
use crate::error::{ApiError, ErrorCode};
use crate::governance::scope::require_second_admin;
use crate::ledger::service::{self as ledger, Cause, Kind};

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = cash_deposits)]
pub struct DepositRow {
    pub id: i64,
    /// The cash account credited.
    pub account_id: i64,
    pub amount_fen: i64,
    pub bank_reference: String,
    pub status: DepositStatus,
    pub recorded_by: i64,
    pub confirmed_by: Option<i64>,
    pub transfer_id: Option<i64>,
    pub created_at: NaiveDateTime,
    pub confirmed_at: Option<NaiveDateTime>,
}

/// The longest bank reference: a bank's transaction number, with room to spare.
pub const REFERENCE_MAX_CHARS: usize = 64;

/// Why `reference` (trimmed) cannot be a bank reference, if it cannot.
pub fn reference_problem(reference: &str) -> Option<String> {
    let reference = reference.trim();
    (reference.is_empty()
        || reference.chars().count() > REFERENCE_MAX_CHARS
        || reference.chars().any(char::is_control))
    .then(|| format!("must be 1 to {REFERENCE_MAX_CHARS} printable characters"))
}

/// Whether money under bank reference `reference` was accounted for already: by a deposit, or by the
/// sale of a reduction batch (the two ways money enters). A payment is accepted once.
pub fn reference_used(conn: &mut AnyConnection, reference: &str) -> QueryResult<bool> {
    let deposit: bool = diesel::select(diesel::dsl::exists(
        cash_deposits::table.filter(cash_deposits::bank_reference.eq(reference)),
    ))
    .get_result(conn)?;
    let sale: bool = diesel::select(diesel::dsl::exists(
        reduction_batches::table.filter(reduction_batches::bank_reference.eq(reference)),
    ))
    .get_result(conn)?;
    Ok(deposit || sale)
}

/// Records a deposit into `wallet`'s cash account (made now if it has none). A bank reference recorded
/// before: 409 `conflict`, and nothing is written.
pub fn record(
    conn: &mut AnyConnection,
    wallet: i64,
    amount_fen: i64,
    bank_reference: &str,
    admin: i64,
    now: NaiveDateTime,
) -> Result<DepositRow, ApiError> {
    let wallet = accounts::wallet(conn, wallet)?;
    let cash = accounts::open(conn, &wallet, now)?;
    if reference_used(conn, bank_reference)? {
        return Err(reference_taken(bank_reference));
    }
    let id: i64 = diesel::insert_into(cash_deposits::table)
        .values((
            cash_deposits::account_id.eq(cash.id),
            cash_deposits::amount_fen.eq(amount_fen),
            cash_deposits::bank_reference.eq(bank_reference),
            cash_deposits::status.eq(DepositStatus::Pending),
            cash_deposits::recorded_by.eq(admin),
            cash_deposits::created_at.eq(now),
        ))
        .returning(cash_deposits::id)
        .get_result(conn)
        // Two administrators recording the same reference at once: the unique index decides.
        .map_err(|e| match e {
            diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
                reference_taken(bank_reference)
            }
            e => e.into(),
        })?;
    find(conn, id)?.ok_or_else(|| ApiError::internal(anyhow::anyhow!("deposit {id} vanished")))
}

fn reference_taken(reference: &str) -> ApiError {
    ApiError::conflict(
        ErrorCode::Conflict,
        format!("bank reference {reference:?} was recorded already"),
    )
}

/// Confirms a pending deposit: the money moves from the bank into the cash account. The administrator
/// who recorded it cannot (403); a deposit no longer pending: 409 `invalid_state`.
pub fn confirm(
    conn: &mut AnyConnection,
    id: i64,
    admin: i64,
    now: NaiveDateTime,
) -> Result<DepositRow, ApiError> {
    let row = find(conn, id)?.ok_or_else(|| ApiError::not_found("no such deposit"))?;
    require_second_admin(Some(row.recorded_by), admin)?;
    if row.status != DepositStatus::Pending {
        return Err(ApiError::conflict(
            ErrorCode::InvalidState,
            "the deposit is posted already",
        ));
    }
    let bank = accounts::named(conn, accounts::BANK)?;
    let transfer = ledger::transfer(
        conn,
        Kind::Transfer,
        bank.id,
        row.account_id,
        row.amount_fen,
        &Cause::of(DEPOSIT_REF, id),
        now,
    )?;
    // Conditional on its state, so of two confirmations racing on two instances one posts and the
    // other rolls its transfer back.
    let n = diesel::update(
        cash_deposits::table
            .find(id)
            .filter(cash_deposits::status.eq(DepositStatus::Pending)),
    )
    .set((
        cash_deposits::status.eq(DepositStatus::Posted),
        cash_deposits::confirmed_by.eq(admin),
        cash_deposits::transfer_id.eq(transfer.id),
        cash_deposits::confirmed_at.eq(now),
    ))
    .execute(conn)?;
    if n != 1 {
        return Err(ApiError::conflict(
            ErrorCode::InvalidState,
            "the deposit is posted already",
        ));
    }
    find(conn, id)?.ok_or_else(|| ApiError::internal(anyhow::anyhow!("deposit {id} vanished")))
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<DepositRow>> {
    cash_deposits::table
        .find(id)
        .select(DepositRow::as_select())
        .first(conn)
        .optional()
}

/// Deposits newest first below the cursor id, of one status or all.
pub fn page(
    conn: &mut AnyConnection,
    status: Option<DepositStatus>,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<DepositRow>> {
    let mut query = cash_deposits::table.into_boxed();
    if let Some(status) = status {
        query = query.filter(cash_deposits::status.eq(status));
    }
    if let Some(before) = before {
        query = query.filter(cash_deposits::id.lt(before));
    }
    query
        .order(cash_deposits::id.desc())
        .limit(limit)
        .select(DepositRow::as_select())
        .load(conn)
}
