//! Ledger rows and their canonical encodings.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::kinds::{AccountKind, Asset, TransferKind};
use crate::db::plan::ListQuery;
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
    pub asset: Asset,
}

impl AccountRow {
    /// A points wallet holding `balance` with `held` of it reserved, for unit tests of ledger logic.
    #[cfg(test)]
    pub fn wallet_for_tests(id: i64, balance: i64, held: i64) -> AccountRow {
        AccountRow {
            id,
            kind: AccountKind::Wallet,
            code: format!("wallet:{id}"),
            region_code: None,
            floored: true,
            derived: false,
            debits_posted: 0,
            credits_posted: balance,
            debits_pending: held,
            credits_pending: 0,
            issued_posted: 0,
            asset: Asset::Points,
        }
    }

    pub fn balance(&self) -> i64 {
        self.credits_posted - self.debits_posted
    }

    /// A wallet of points: what keeps lots.
    pub fn holds_lots(&self) -> bool {
        self.floored && self.asset == Asset::Points
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
/// An account's transfers, newest first, below the cursor. Read as two walks that each stop after
/// `limit` rows (the account's debits by `transfers_debit (debit_account_id, id)`, its credits by
/// `transfers_credit (credit_account_id, id)`) merged here: one statement with `debit = ? OR credit = ?`
/// gathers every transfer of the account and sorts them, so a deep page of a long history grows slower
/// with every transfer.
pub fn account_transfers(
    conn: &mut AnyConnection,
    account_id: i64,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<TransferRow>> {
    let debits = account_side_query(Side::Debit, account_id, before, limit).load(conn)?;
    let credits = account_side_query(Side::Credit, account_id, before, limit).load(conn)?;
    Ok(newest_first(debits, credits, limit))
}

/// Which column of a transfer names the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Debit,
    Credit,
}

/// One side of [`account_transfers`] (its plan is tested).
pub fn account_side_query(
    side: Side,
    account_id: i64,
    before: Option<i64>,
    limit: i64,
) -> impl ListQuery<TransferRow> {
    let mut query = transfers::table
        .select(TransferRow::as_select())
        .order(transfers::id.desc())
        .limit(limit)
        .into_boxed();
    query = match side {
        Side::Debit => query.filter(transfers::debit_account_id.eq(account_id)),
        Side::Credit => query.filter(transfers::credit_account_id.eq(account_id)),
    };
    if let Some(before) = before {
        query = query.filter(transfers::id.lt(before));
    }
    query
}

/// The first `limit` of two lists that are each newest first, newest first. A transfer's two accounts
/// differ, so no transfer is in both.
fn newest_first(a: Vec<TransferRow>, b: Vec<TransferRow>, limit: i64) -> Vec<TransferRow> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let mut merged = Vec::with_capacity(limit.min(a.len() + b.len()));
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    while merged.len() < limit {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.id > y.id => a.next(),
            (Some(_), Some(_)) | (None, Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, None) => None,
        };
        let Some(t) = next else { break };
        merged.push(t);
    }
    merged
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64) -> TransferRow {
        TransferRow {
            id,
            kind: TransferKind::Transfer,
            debit_account_id: 1,
            credit_account_id: 2,
            amount: 1,
            pending_id: None,
            timeout_at: None,
            ref_type: None,
            ref_id: None,
            memo: None,
            created_at: NaiveDateTime::default(),
        }
    }

    #[test]
    fn two_sides_merge_newest_first_up_to_the_limit() {
        let ids = |rows: Vec<TransferRow>| rows.iter().map(|t| t.id).collect::<Vec<_>>();
        let debits = vec![row(9), row(4), row(3)];
        let credits = vec![row(8), row(7), row(1)];
        assert_eq!(
            ids(newest_first(debits.clone(), credits.clone(), 4)),
            [9, 8, 7, 4]
        );
        assert_eq!(ids(newest_first(debits, credits, 10)), [9, 8, 7, 4, 3, 1]);
        assert_eq!(ids(newest_first(vec![], vec![row(2)], 3)), [2]);
    }
}
