//! The cash accounts: each wallet's own (made on first use), the bank account deposits come from and
//! withdrawals go to, and the market's fee income.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::ledger::kinds::{AccountKind, Asset};
use crate::ledger::service::LedgerError;
use crate::ledger::store::{self, AccountRow};
use diesel::sql_types::{Nullable, Text, Timestamp};

/// Where deposited money is kept: derived, its balance is minus the money in the platform.
pub const BANK: &str = "cash:bank";

/// The market's fee income.
pub const FEES: &str = "cash:fees";

/// A well-known account that the migrations create.
pub fn named(conn: &mut AnyConnection, code: &str) -> Result<AccountRow, LedgerError> {
    store::account_by_code(conn, code)?.ok_or_else(|| LedgerError::Inconsistent(format!("no account {code}")))
}

fn code_of(wallet: i64) -> String {
    format!("cash:{wallet}")
}

/// The cash account of points wallet `wallet`, if it has one yet.
pub fn of(conn: &mut AnyConnection, wallet: i64) -> QueryResult<Option<AccountRow>> {
    store::account_by_code(conn, &code_of(wallet))
}

/// The cash account of points wallet `wallet`, made now if it has none (floored, in the wallet's
/// region). Two requests making it at once both end with the one row: the code is unique.
pub fn open(
    conn: &mut AnyConnection,
    wallet: &AccountRow,
    now: NaiveDateTime,
) -> Result<AccountRow, LedgerError> {
    if wallet.kind != AccountKind::Wallet || wallet.asset != Asset::Points {
        return Err(LedgerError::UnknownAccount(wallet.id));
    }
    if let Some(row) = of(conn, wallet.id)? {
        return Ok(row);
    }
    diesel::sql_query(
        "INSERT INTO accounts (kind, code, region_code, floored, derived, asset, created_at) \
         VALUES ($1, $2, $3, TRUE, FALSE, $4, $5) ON CONFLICT (code) DO NOTHING",
    )
    .bind::<Text, _>(AccountKind::Wallet.as_str())
    .bind::<Text, _>(code_of(wallet.id))
    .bind::<Nullable<Text>, _>(&wallet.region_code)
    .bind::<Text, _>(Asset::Cny.as_str())
    .bind::<Timestamp, _>(now)
    .execute(conn)?;
    of(conn, wallet.id)?
        .ok_or_else(|| LedgerError::Inconsistent(format!("cash account of {} vanished", wallet.id)))
}

/// A points wallet by id: what deposits and orders name.
pub fn wallet(conn: &mut AnyConnection, id: i64) -> Result<AccountRow, LedgerError> {
    match store::account(conn, id)? {
        Some(row) if row.kind == AccountKind::Wallet && row.asset == Asset::Points => Ok(row),
        _ => Err(LedgerError::UnknownAccount(id)),
    }
}
