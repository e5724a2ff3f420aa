//! Ledger rows and their canonical encodings.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::kinds::{AccountKind, TransferKind};
use crate::db::schema::{accounts, ledger_blocks, transfers};
use crate::db::AnyConnection;

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = accounts)]
pub struct AccountRow {
    pub id: i64,
    pub kind: AccountKind,
    pub code: String,
    pub region_code: Option<String>,
    pub floored: bool,
    pub derived: bool,
    pub debits_posted: i64,
    pub credits_posted: i64,
    pub debits_pending: i64,
    pub credits_pending: i64,
    /// The part of `credits_posted` that came by `issue` transfers (0 on derived accounts).
    pub issued_posted: i64,
}

impl AccountRow {
    pub fn balance(&self) -> i64 {
        self.credits_posted - self.debits_posted
    }
}

#[derive(Debug, Clone, Queryable, Selectable, PartialEq, serde::Serialize)]
#[diesel(table_name = transfers)]
pub struct TransferRow {
    pub id: i64,
    pub kind: TransferKind,
    pub debit_account_id: i64,
    pub credit_account_id: i64,
    pub amount: i64,
    pub pending_id: Option<i64>,
    pub timeout_at: Option<NaiveDateTime>,
    pub ref_type: Option<String>,
    pub ref_id: Option<String>,
    pub memo: Option<String>,
    pub created_at: NaiveDateTime,
}

fn micros(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

impl TransferRow {
    /// The bytes a Merkle leaf commits to: a JSON array of every field, times in Unix microseconds.
    /// Any change to any field changes the leaf.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(&(
            "tanhui-transfer-v1",
            self.id,
            &self.kind,
            self.debit_account_id,
            self.credit_account_id,
            self.amount,
            self.pending_id,
            self.timeout_at.map(micros),
            &self.ref_type,
            &self.ref_id,
            &self.memo,
            micros(self.created_at),
        ))
        .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, PartialEq, serde::Serialize)]
#[diesel(table_name = ledger_blocks)]
pub struct BlockRow {
    pub height: i64,
    pub prev_hash: String,
    pub merkle_root: String,
    pub hash: String,
    pub transfer_count: i64,
    pub sealed_at: NaiveDateTime,
    pub signature: String,
}

/// The bytes a block's hash covers: height, the previous block's hash, the Merkle root, the leaf count
/// and the sealing time.
pub fn block_header(
    height: i64,
    prev_hash: &str,
    merkle_root: &str,
    count: i64,
    sealed_at: NaiveDateTime,
) -> Vec<u8> {
    serde_json::to_vec(&(
        "tanhui-block-v1",
        height,
        prev_hash,
        merkle_root,
        count,
        micros(sealed_at),
    ))
    .unwrap_or_default()
}

pub fn account(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<AccountRow>> {
    accounts::table
        .find(id)
        .select(AccountRow::as_select())
        .first(conn)
        .optional()
}

pub fn account_by_code(conn: &mut AnyConnection, code: &str) -> QueryResult<Option<AccountRow>> {
    accounts::table
        .filter(accounts::code.eq(code))
        .select(AccountRow::as_select())
        .first(conn)
        .optional()
}

pub fn transfer(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<TransferRow>> {
    transfers::table
        .find(id)
        .select(TransferRow::as_select())
        .first(conn)
        .optional()
}

/// An account's transfers, newest first, below the cursor id.
pub fn account_transfers(
    conn: &mut AnyConnection,
    account_id: i64,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<TransferRow>> {
    let mut query = transfers::table
        .select(TransferRow::as_select())
        .filter(
            transfers::debit_account_id
                .eq(account_id)
                .or(transfers::credit_account_id.eq(account_id)),
        )
        .order(transfers::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(transfers::id.lt(before));
    }
    query.load(conn)
}

/// Sum of one kind of transfer into an account.
pub fn credited_total(conn: &mut AnyConnection, account_id: i64, kind: TransferKind) -> QueryResult<i64> {
    transfers::table
        .filter(transfers::credit_account_id.eq(account_id))
        .filter(transfers::kind.eq(kind))
        .select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "CAST(COALESCE(SUM(amount), 0) AS BIGINT)",
        ))
        .first(conn)
}

pub fn block(conn: &mut AnyConnection, height: i64) -> QueryResult<Option<BlockRow>> {
    ledger_blocks::table
        .find(height)
        .select(BlockRow::as_select())
        .first(conn)
        .optional()
}

pub fn latest_block(conn: &mut AnyConnection) -> QueryResult<Option<BlockRow>> {
    ledger_blocks::table
        .order(ledger_blocks::height.desc())
        .select(BlockRow::as_select())
        .first(conn)
        .optional()
}
