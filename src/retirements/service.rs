//! Retiring points: one transaction moves them to `sink:retired`, soonest-expiring lots first, and
//! records the retirement with the grams its lots hold behind those points.

use chrono::NaiveDateTime;

use super::store::{self, NewRetirement, RetirementRow};
use crate::db::AnyConnection;
use crate::error::ApiError;
use crate::ledger::lots;
use crate::ledger::service::{self as ledger, Cause, Kind, LedgerError};
use crate::ledger::store as accounts;

/// The account retired points end in.
pub const RETIRED: &str = "sink:retired";

/// What a transfer made for a retirement names as its cause.
pub const REF_TYPE: &str = "retirement";

/// Retires `new.points` of `new.account_id` at `now`, inside the caller's transaction. Short of points:
/// 409 `insufficient_funds`, and nothing is written.
pub fn retire(
    conn: &mut AnyConnection,
    new: &NewRetirement,
    now: NaiveDateTime,
) -> Result<RetirementRow, ApiError> {
    let id = store::insert(conn, new, now)?;
    let sink = accounts::account_by_code(conn, RETIRED)?
        .ok_or_else(|| LedgerError::Inconsistent(format!("no account {RETIRED}")))?;
    let cause = Cause::of(REF_TYPE, id);
    let transfer = ledger::transfer(
        conn,
        Kind::Retire,
        new.account_id,
        sink.id,
        new.points,
        &cause,
        now,
    )?;
    // The grams behind the points: each lot's share, rounded down, so a retirement never claims more
    // than its lots reduced.
    let reduction_g = lots::exits_of(conn, transfer.id)?
        .iter()
        .fold(0i64, |sum, (lot, points)| {
            sum.saturating_add(lot.grams_of(*points))
        });
    let serial = store::serial(id, now);
    store::complete(conn, id, &serial, transfer.id, reduction_g)?;
    store::find(conn, id)?.ok_or_else(|| ApiError::internal(anyhow::anyhow!("retirement {id} vanished")))
}
