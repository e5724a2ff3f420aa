//! Queries of a sale's payouts: who a batch pays (the wallets whose activities it holds, with their
//! grams), their cash accounts, and what each batch paid a wallet.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Timestamp};

use crate::db::schema::{reduction_batches as batches, reduction_incentives as incentives};
use crate::db::AnyConnection;

/// One wallet a batch pays: its grams in the batch, and its cash account (`None` when its owner was
/// erased: an erased person's wallet takes nothing new, so the share stays with the platform).
#[derive(Debug, Clone, QueryableByName)]
pub struct Holder {
    #[diesel(sql_type = BigInt)]
    pub account_id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub cash_account_id: Option<i64>,
    #[diesel(sql_type = BigInt)]
    pub granted_g: i64,
}

/// Makes a cash account (`cash:{wallet}`, floored, in the wallet's region, as `cash::accounts::open`
/// makes one) for every wallet of a person not erased whose activities batch `batch_id` holds and that
/// has none yet: one statement, however many people the batch pays.
pub fn open_cash_accounts(conn: &mut AnyConnection, batch_id: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO accounts (kind, code, region_code, floored, derived, asset, created_at) \
         SELECT 'wallet', 'cash:' || CAST(w.id AS TEXT), w.region_code, TRUE, FALSE, 'cny', $1 \
         FROM accounts w JOIN users u ON u.account_id = w.id AND u.erased_at IS NULL \
         WHERE w.id IN (SELECT a.account_id FROM reduction_batch_items i \
                        JOIN activities a ON a.id = i.activity_id WHERE i.batch_id = $2) \
         ON CONFLICT (code) DO NOTHING",
    )
    // Bound in the order the parameters appear: SQLite numbers `$n` by first appearance.
    .bind::<Timestamp, _>(now)
    .bind::<BigInt, _>(batch_id)
    .execute(conn)
}

/// The wallets batch `batch_id` pays, in account id order: their granted grams in it (those with none
/// are left out) and their cash accounts, as [`open_cash_accounts`] left them.
pub fn holders(conn: &mut AnyConnection, batch_id: i64) -> QueryResult<Vec<Holder>> {
    diesel::sql_query(
        "SELECT h.account_id AS account_id, c.id AS cash_account_id, h.granted_g AS granted_g \
         FROM (SELECT a.account_id AS account_id, CAST(SUM(i.granted_g) AS BIGINT) AS granted_g \
               FROM reduction_batch_items i JOIN activities a ON a.id = i.activity_id \
               WHERE i.batch_id = $1 GROUP BY a.account_id) h \
         LEFT JOIN users u ON u.account_id = h.account_id AND u.erased_at IS NULL \
         LEFT JOIN accounts c ON u.id IS NOT NULL AND c.code = 'cash:' || CAST(h.account_id AS TEXT) \
         WHERE h.granted_g > 0 ORDER BY h.account_id",
    )
    .bind::<BigInt, _>(batch_id)
    .load(conn)
}

/// A payout to record.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = incentives)]
pub struct NewIncentive {
    pub batch_id: i64,
    pub account_id: i64,
    pub cash_account_id: i64,
    pub granted_g: i64,
    pub amount_fen: i64,
    pub transfer_id: Option<i64>,
}

/// Stores the payouts, a few hundred rows per statement. The key (batch, wallet) makes a second payout of
/// one batch to one wallet fail the statement, and with it the settlement.
pub fn record(conn: &mut AnyConnection, rows: &[NewIncentive]) -> QueryResult<()> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        match conn {
            AnyConnection::Postgresql(c) => {
                diesel::insert_into(incentives::table).values(chunk).execute(c)?
            }
            AnyConnection::Sqlite(c) => diesel::insert_into(incentives::table).values(chunk).execute(c)?,
        };
    }
    Ok(())
}

/// Rows per multi-row insert: six binds each stays far below SQLite's limit of 32,766.
const ROWS_PER_INSERT: usize = 500;

/// What one batch paid a wallet, with the batch it came from.
#[derive(Debug, Clone, Queryable)]
pub struct Paid {
    pub batch_id: i64,
    pub region_code: String,
    pub tonnes: Option<i64>,
    pub serial_year: Option<i32>,
    pub serial_first: Option<i64>,
    pub buyer: Option<String>,
    pub price_fen_per_tonne: Option<i64>,
    pub granted_g: i64,
    pub amount_fen: i64,
    pub transfer_id: Option<i64>,
    pub settled_at: Option<NaiveDateTime>,
}

/// What batches paid wallet `account_id`, newest batch first, below the cursor batch id.
pub fn paid_to(
    conn: &mut AnyConnection,
    account_id: i64,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Paid>> {
    let mut query = incentives::table
        .inner_join(batches::table.on(batches::id.eq(incentives::batch_id)))
        .filter(incentives::account_id.eq(account_id))
        .order(incentives::batch_id.desc())
        .limit(limit)
        .select((
            incentives::batch_id,
            batches::region_code,
            batches::tonnes,
            batches::serial_year,
            batches::serial_first,
            batches::buyer,
            batches::price_fen_per_tonne,
            incentives::granted_g,
            incentives::amount_fen,
            incentives::transfer_id,
            batches::settled_at,
        ))
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(incentives::batch_id.lt(before));
    }
    query.load(conn)
}
