//! An offer's units left, split over buckets so that concurrent redemptions of one popular offer do not
//! all queue on one row's lock until their commits (the hot-row problem of DESIGN.md §3, for stock).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::db::schema::offer_stock;
use crate::db::AnyConnection;

/// Most buckets an offer's stock is split over.
pub const BUCKETS: i64 = 16;

/// How `total` units are split: as evenly as possible over min(total, BUCKETS) buckets (one bucket
/// for an empty stock).
pub fn split(total: i64) -> Vec<i64> {
    let n = total.clamp(1, BUCKETS);
    (0..n).map(|i| total / n + i64::from(i < total % n)).collect()
}

/// Sets an offer's units left to `total`, replacing its buckets.
pub fn set(conn: &mut AnyConnection, offer_id: i64, total: i64) -> QueryResult<()> {
    diesel::delete(offer_stock::table.filter(offer_stock::offer_id.eq(offer_id))).execute(conn)?;
    for (bucket, stock) in split(total).into_iter().enumerate() {
        diesel::insert_into(offer_stock::table)
            .values((
                offer_stock::offer_id.eq(offer_id),
                offer_stock::bucket.eq(bucket as i64),
                offer_stock::stock.eq(stock),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Takes one unit from a bucket that has one, starting at a random bucket so concurrent takers spread
/// out. Each attempt is a conditional UPDATE (stock > 0) that waits for a concurrent taker of the same
/// bucket and then sees its result, so `None` (sold out) only after every bucket was found empty.
///
/// A restock ([`set`]) replaces the buckets: an attempt that waited on a bucket the restock deleted finds
/// nothing, though the new buckets hold stock. So when every bucket read was found empty, the buckets are
/// read once more (on PostgreSQL each statement sees what committed before it) before answering sold out.
pub fn take(conn: &mut AnyConnection, offer_id: i64) -> QueryResult<Option<i64>> {
    for _ in 0..2 {
        let candidates = with_stock(conn, offer_id)?;
        if candidates.is_empty() {
            return Ok(None);
        }
        if let Some(bucket) = take_from(conn, offer_id, &candidates)? {
            return Ok(Some(bucket));
        }
    }
    Ok(None)
}

/// The buckets of an offer that had stock when read.
fn with_stock(conn: &mut AnyConnection, offer_id: i64) -> QueryResult<Vec<i64>> {
    offer_stock::table
        .filter(offer_stock::offer_id.eq(offer_id))
        .filter(offer_stock::stock.gt(0))
        .select(offer_stock::bucket)
        .order(offer_stock::bucket)
        .load(conn)
}

/// One unit from the first of `candidates` (from a random start) that still has one.
fn take_from(conn: &mut AnyConnection, offer_id: i64, candidates: &[i64]) -> QueryResult<Option<i64>> {
    let start = rand::random::<u32>() as usize % candidates.len();
    for i in 0..candidates.len() {
        let bucket = candidates[(start + i) % candidates.len()];
        let taken = diesel::update(
            offer_stock::table
                .find((offer_id, bucket))
                .filter(offer_stock::stock.gt(0)),
        )
        .set(offer_stock::stock.eq(offer_stock::stock - 1))
        .execute(conn)?;
        if taken == 1 {
            return Ok(Some(bucket));
        }
    }
    Ok(None)
}

/// Gives a unit back to the bucket it came from (recreated if the partner reset the stock meanwhile).
pub fn give_back(conn: &mut AnyConnection, offer_id: i64, bucket: i64) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO offer_stock (offer_id, bucket, stock) VALUES ($1, $2, 1) \
         ON CONFLICT (offer_id, bucket) DO UPDATE SET stock = offer_stock.stock + 1",
    )
    .bind::<BigInt, _>(offer_id)
    .bind::<BigInt, _>(bucket)
    .execute(conn)
    .map(|_| ())
}

#[derive(QueryableByName)]
struct Total {
    #[diesel(sql_type = BigInt)]
    offer_id: i64,
    #[diesel(sql_type = BigInt)]
    stock: i64,
}

/// Units left per offer.
pub fn totals(conn: &mut AnyConnection, ids: &[i64]) -> QueryResult<HashMap<i64, i64>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    // The ids are integers, so listing them inline is safe, and it works the same on both backends.
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let rows: Vec<Total> = diesel::sql_query(format!(
        "SELECT offer_id, CAST(SUM(stock) AS BIGINT) AS stock FROM offer_stock \
         WHERE offer_id IN ({list}) GROUP BY offer_id"
    ))
    .load(conn)?;
    Ok(rows.into_iter().map(|t| (t.offer_id, t.stock)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_splits_evenly_over_at_most_sixteen_buckets() {
        assert_eq!(split(0), [0]);
        assert_eq!(split(2), [1, 1]);
        assert_eq!(split(16), [1; 16]);
        let big = split(1003);
        assert_eq!(big.len(), 16);
        assert_eq!(big.iter().sum::<i64>(), 1003);
        assert!(big.iter().max().unwrap() - big.iter().min().unwrap() <= 1);
    }
}
