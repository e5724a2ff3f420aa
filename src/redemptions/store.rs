//! Redemption rows and the per-user counters. The conditional UPDATEs here are
//! where concurrent redemptions are decided: each matches at most one winner per unit, per limit, per
//! resolution.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::db::plan::ListQuery;
use crate::db::schema::{redemption_counts, redemptions};
use crate::db::AnyConnection;

crate::text_enum! {
    /// Where a redemption stands: held until a partner captures it, someone voids it, or it expires.
    pub enum RedemptionStatus {
        Held = "held",
        Captured = "captured",
        Voided = "voided",
        Expired = "expired",
    }
}

#[derive(Debug, Clone, Queryable, Selectable, PartialEq, Eq)]
#[diesel(table_name = redemptions)]
pub struct RedemptionRow {
    pub id: i64,
    pub offer_id: i64,
    pub partner_id: i64,
    pub account_id: i64,
    pub user_id: i64,
    pub points: i64,
    pub value_fen: Option<i64>,
    pub status: RedemptionStatus,
    pub hold_id: Option<i64>,
    pub stock_bucket: Option<i64>,
    pub resolution_id: Option<i64>,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub resolved_at: Option<NaiveDateTime>,
    pub resolved_by: Option<String>,
}

pub struct NewRedemption {
    pub offer_id: i64,
    pub partner_id: i64,
    pub account_id: i64,
    pub user_id: i64,
    pub points: i64,
    pub value_fen: Option<i64>,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

pub fn insert(conn: &mut AnyConnection, new: &NewRedemption) -> QueryResult<RedemptionRow> {
    diesel::insert_into(redemptions::table)
        .values((
            redemptions::offer_id.eq(new.offer_id),
            redemptions::partner_id.eq(new.partner_id),
            redemptions::account_id.eq(new.account_id),
            redemptions::user_id.eq(new.user_id),
            redemptions::points.eq(new.points),
            redemptions::value_fen.eq(new.value_fen),
            redemptions::status.eq(RedemptionStatus::Held),
            redemptions::expires_at.eq(new.expires_at),
            redemptions::created_at.eq(new.created_at),
        ))
        .returning(redemptions::all_columns)
        .get_result(conn)
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<RedemptionRow>> {
    redemptions::table
        .find(id)
        .select(RedemptionRow::as_select())
        .first(conn)
        .optional()
}

/// Whose redemptions a listing shows.
pub enum Owner {
    Account(i64),
    Partner {
        id: i64,
        status: Option<RedemptionStatus>,
    },
}

/// An account's or a partner's redemptions, newest first, below the cursor.
pub fn list(
    conn: &mut AnyConnection,
    owner: Owner,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<RedemptionRow>> {
    list_query(owner, before, limit).load(conn)
}

/// The query [`list`] runs: a walk of `redemptions_account (account_id, id)`, or of
/// `redemptions_partner (partner_id, id)` / `redemptions_partner_status (partner_id, status, id)`,
/// stopping after `limit` rows (its plan is tested).
pub fn list_query(owner: Owner, before: Option<i64>, limit: i64) -> impl ListQuery<RedemptionRow> {
    let mut query = redemptions::table
        .select(RedemptionRow::as_select())
        .order(redemptions::id.desc())
        .limit(limit)
        .into_boxed();
    match owner {
        Owner::Account(account) => query = query.filter(redemptions::account_id.eq(account)),
        Owner::Partner { id, status } => {
            query = query.filter(redemptions::partner_id.eq(id));
            if let Some(status) = status {
                query = query.filter(redemptions::status.eq(status));
            }
        }
    }
    if let Some(before) = before {
        query = query.filter(redemptions::id.lt(before));
    }
    query
}

/// Records the ledger hold and the stock bucket of a new redemption.
pub fn set_hold(conn: &mut AnyConnection, id: i64, hold_id: i64, stock_bucket: i64) -> QueryResult<()> {
    diesel::update(redemptions::table.find(id))
        .set((
            redemptions::hold_id.eq(hold_id),
            redemptions::stock_bucket.eq(stock_bucket),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn set_resolution(conn: &mut AnyConnection, id: i64, transfer_id: i64) -> QueryResult<()> {
    diesel::update(redemptions::table.find(id))
        .set(redemptions::resolution_id.eq(transfer_id))
        .execute(conn)
        .map(|_| ())
}

/// Counts one more held-or-captured redemption of the offer for the account; false when that would
/// pass `limit`.
pub fn take_limit(conn: &mut AnyConnection, offer_id: i64, account_id: i64, limit: i64) -> QueryResult<bool> {
    diesel::sql_query(
        "INSERT INTO redemption_counts (offer_id, account_id, active) VALUES ($1, $2, 0) \
         ON CONFLICT (offer_id, account_id) DO NOTHING",
    )
    .bind::<BigInt, _>(offer_id)
    .bind::<BigInt, _>(account_id)
    .execute(conn)?;
    let n = diesel::update(
        redemption_counts::table
            .find((offer_id, account_id))
            .filter(redemption_counts::active.lt(limit)),
    )
    .set(redemption_counts::active.eq(redemption_counts::active + 1i64))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn return_limit(conn: &mut AnyConnection, offer_id: i64, account_id: i64) -> QueryResult<()> {
    diesel::update(redemption_counts::table.find((offer_id, account_id)))
        .set(redemption_counts::active.eq(redemption_counts::active - 1i64))
        .execute(conn)
        .map(|_| ())
}

/// Held redemptions whose hold has run out at `now`, oldest first.
pub fn due(conn: &mut AnyConnection, now: NaiveDateTime, limit: i64) -> QueryResult<Vec<i64>> {
    redemptions::table
        .filter(redemptions::status.eq(RedemptionStatus::Held))
        .filter(redemptions::expires_at.le(now))
        .order(redemptions::expires_at)
        .select(redemptions::id)
        .limit(limit)
        .load(conn)
}
