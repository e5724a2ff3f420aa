//! What the export holds of a person's money and trades: retirements of their points, market orders,
//! cash deposits and withdrawals, and what sales of pooled reductions paid them. Their transfers, cash
//! ones included, are in the export's `transfers`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::schema::{cash_deposits, cash_withdrawals, market_orders, reduction_incentives, retirements};
use crate::db::AnyConnection;

#[derive(Debug, Serialize, ToSchema, Queryable)]
pub struct ExportedRetirement {
    pub id: i64,
    pub serial: Option<String>,
    pub points: i64,
    pub reduction_g: i64,
    pub beneficiary: String,
    pub reason: String,
    pub retired_at: NaiveDateTime,
}

#[derive(Debug, Serialize, ToSchema, Queryable)]
pub struct ExportedOrder {
    pub id: i64,
    pub side: String,
    pub price_fen_per_1000: i64,
    pub points: i64,
    pub filled_points: i64,
    pub status: String,
    pub time_in_force: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A deposit into, or a withdrawal from, the person's cash account.
#[derive(Debug, Serialize, ToSchema, Queryable)]
pub struct ExportedCashMovement {
    pub id: i64,
    pub amount_fen: i64,
    pub status: String,
    pub created_at: NaiveDateTime,
}

/// What one settled sale of pooled reductions paid the person.
#[derive(Debug, Serialize, ToSchema, Queryable)]
pub struct ExportedIncentive {
    pub batch_id: i64,
    pub granted_g: i64,
    pub amount_fen: i64,
    pub transfer_id: Option<i64>,
}

/// Each kind newest first, at most the rows asked for.
pub struct MoneyRecords {
    pub retirements: Vec<ExportedRetirement>,
    pub market_orders: Vec<ExportedOrder>,
    pub cash_deposits: Vec<ExportedCashMovement>,
    pub cash_withdrawals: Vec<ExportedCashMovement>,
    pub incentives: Vec<ExportedIncentive>,
}

/// The newest `rows` records of each kind of points wallet `wallet` and of its cash account `cash`
/// (`None`: it has none yet).
pub fn gather(
    conn: &mut AnyConnection,
    wallet: i64,
    cash: Option<i64>,
    rows: i64,
) -> QueryResult<MoneyRecords> {
    // No account has id 0: a wallet without cash matches no cash row.
    let cash = cash.unwrap_or(0);
    Ok(MoneyRecords {
        retirements: retirements::table
            .filter(retirements::account_id.eq(wallet))
            .order(retirements::id.desc())
            .limit(rows)
            .select((
                retirements::id,
                retirements::serial,
                retirements::points,
                retirements::reduction_g,
                retirements::beneficiary,
                retirements::reason,
                retirements::retired_at,
            ))
            .load(conn)?,
        market_orders: market_orders::table
            .filter(market_orders::account_id.eq(wallet))
            .order(market_orders::id.desc())
            .limit(rows)
            .select((
                market_orders::id,
                market_orders::side,
                market_orders::price_fen_per_1000,
                market_orders::points,
                market_orders::filled_points,
                market_orders::status,
                market_orders::time_in_force,
                market_orders::created_at,
                market_orders::updated_at,
            ))
            .load(conn)?,
        cash_deposits: cash_deposits::table
            .filter(cash_deposits::account_id.eq(cash))
            .order(cash_deposits::id.desc())
            .limit(rows)
            .select((
                cash_deposits::id,
                cash_deposits::amount_fen,
                cash_deposits::status,
                cash_deposits::created_at,
            ))
            .load(conn)?,
        cash_withdrawals: cash_withdrawals::table
            .filter(cash_withdrawals::account_id.eq(cash))
            .order(cash_withdrawals::id.desc())
            .limit(rows)
            .select((
                cash_withdrawals::id,
                cash_withdrawals::amount_fen,
                cash_withdrawals::status,
                cash_withdrawals::created_at,
            ))
            .load(conn)?,
        incentives: reduction_incentives::table
            .filter(reduction_incentives::account_id.eq(wallet))
            .order(reduction_incentives::batch_id.desc())
            .limit(rows)
            .select((
                reduction_incentives::batch_id,
                reduction_incentives::granted_g,
                reduction_incentives::amount_fen,
                reduction_incentives::transfer_id,
            ))
            .load(conn)?,
    })
}
