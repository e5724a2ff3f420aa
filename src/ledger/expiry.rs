//! Expired points leave their wallets by one `expire` transfer per wallet and sweep, to `sink:expired`.
//!
//! Every instance sweeps. Exactly once comes from the wallet's row lock: a sweep takes it, then reads the
//! wallet's free holdings that are due and writes them off; a second sweeper of the same wallet waits for
//! the lock and then finds none due (they were deleted), so it writes nothing. Points reserved by a hold
//! do not expire while held: a void gives them back free, and the next sweep takes them if they are due.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::lots::FREE;
use crate::db::schema::lot_holdings;
use crate::db::{self, AnyConnection, Tx};
use crate::ledger::batch::lock_accounts;
use crate::ledger::service::{self, Cause, Kind, LedgerError};
use crate::ledger::store::{self, TransferRow};

type Result<T> = std::result::Result<T, LedgerError>;

/// The account points go to when they expire.
pub const EXPIRED: &str = "sink:expired";

/// Expires the due points of up to `limit` wallets at `now`, each wallet in its own transaction; returns
/// the `expire` transfers made.
pub fn expire_due(conn: &mut AnyConnection, now: NaiveDateTime, limit: i64) -> Result<Vec<TransferRow>> {
    use lot_holdings::dsl as h;
    let mut wallets: Vec<i64> = h::lot_holdings
        .filter(h::hold_id.eq(FREE))
        .filter(h::expires_at.le(now))
        .order(h::expires_at)
        .select(h::account_id)
        .limit(limit)
        .load(conn)?;
    wallets.sort_unstable();
    wallets.dedup();
    let sink = store::account_by_code(conn, EXPIRED)?
        .ok_or_else(|| LedgerError::Inconsistent(format!("no account {EXPIRED}")))?
        .id;
    let mut made = Vec::new();
    for wallet in wallets {
        if let Some(transfer) =
            db::transaction(conn, Tx::Write, |conn| expire_wallet(conn, wallet, sink, now))?
        {
            made.push(transfer);
        }
    }
    Ok(made)
}

/// Writes off `wallet`'s free points due at `now`, under its row lock: `None` when none are due (another
/// instance took them first).
fn expire_wallet(
    conn: &mut AnyConnection,
    wallet: i64,
    sink: i64,
    now: NaiveDateTime,
) -> Result<Option<TransferRow>> {
    use lot_holdings::dsl as h;
    lock_accounts(conn, &[wallet])?;
    let due: Vec<i64> = h::lot_holdings
        .filter(h::account_id.eq(wallet))
        .filter(h::hold_id.eq(FREE))
        .filter(h::expires_at.le(now))
        .select(h::points)
        .load(conn)?;
    let mut amount: i64 = 0;
    for points in due {
        amount = amount.checked_add(points).ok_or(LedgerError::OutOfRange)?;
    }
    if amount == 0 {
        return Ok(None);
    }
    // The due points are the wallet's soonest-expiring free ones: the transfer takes exactly them.
    let cause = Cause {
        ref_type: Some("lots".into()),
        ref_id: None,
        memo: Some("points expired".into()),
    };
    Ok(Some(service::transfer(
        conn,
        Kind::Expire,
        wallet,
        sink,
        amount,
        &cause,
        now,
    )?))
}
