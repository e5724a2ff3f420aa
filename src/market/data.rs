//! Market data: depth by price, recent trades, and hourly and daily candles. Candles are kept by the
//! fills that make them (one row per period and bucket), so a chart reads a few rows whatever the
//! number of trades.

use chrono::{NaiveDateTime, Timelike};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::store::TradeRow;
use super::{OrderStatus, Side};
use crate::db::schema::{market_candles, market_trades};
use crate::db::AnyConnection;
use crate::domain::catalog::china;

crate::text_enum! {
    /// A candle's period: an hour, or an Asia/Shanghai day.
    pub enum Period {
        Hour = "1h",
        Day = "1d",
    }
}

impl Period {
    /// The start of the bucket `at` falls in (UTC).
    pub fn bucket(self, at: NaiveDateTime) -> NaiveDateTime {
        let hour = at.date().and_hms_opt(at.hour(), 0, 0).unwrap_or(at);
        match self {
            Period::Hour => hour,
            Period::Day => {
                let offset = chrono::Duration::seconds(i64::from(china().local_minus_utc()));
                (at + offset).date().and_time(chrono::NaiveTime::MIN) - offset
            }
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, PartialEq, Eq)]
#[diesel(table_name = market_candles)]
pub struct CandleRow {
    pub period: Period,
    pub bucket: NaiveDateTime,
    pub open_price: i64,
    pub high_price: i64,
    pub low_price: i64,
    pub close_price: i64,
    pub volume_points: i64,
    pub volume_fen: i64,
    pub trades: i64,
}

/// Adds `trade` to its hour's and its day's candles. Runs under the market's lock, in the fill's
/// transaction, so no other fill changes the rows between the read and the write.
pub fn record(conn: &mut AnyConnection, trade: &TradeRow) -> QueryResult<()> {
    use market_candles::dsl as c;
    let price = trade.price_fen_per_1000;
    for period in Period::ALL.iter().copied() {
        let bucket = period.bucket(trade.at);
        let key = c::market_candles
            .filter(c::period.eq(period))
            .filter(c::bucket.eq(bucket));
        let stored: Option<CandleRow> = key.select(CandleRow::as_select()).first(conn).optional()?;
        match stored {
            Some(row) => {
                diesel::update(key)
                    .set((
                        c::high_price.eq(row.high_price.max(price)),
                        c::low_price.eq(row.low_price.min(price)),
                        c::close_price.eq(price),
                        c::volume_points.eq(row.volume_points.saturating_add(trade.points)),
                        c::volume_fen.eq(row.volume_fen.saturating_add(trade.cash_fen)),
                        c::trades.eq(row.trades + 1),
                    ))
                    .execute(conn)?;
            }
            None => {
                diesel::insert_into(c::market_candles)
                    .values((
                        c::period.eq(period),
                        c::bucket.eq(bucket),
                        c::open_price.eq(price),
                        c::high_price.eq(price),
                        c::low_price.eq(price),
                        c::close_price.eq(price),
                        c::volume_points.eq(trade.points),
                        c::volume_fen.eq(trade.cash_fen),
                        c::trades.eq(1i64),
                    ))
                    .execute(conn)?;
            }
        }
    }
    Ok(())
}

/// One price level of the book.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Level {
    #[diesel(sql_type = BigInt)]
    pub price_fen_per_1000: i64,
    #[diesel(sql_type = BigInt)]
    pub points: i64,
}

/// The best `levels` price levels of one side of the book, best first (highest bid, lowest ask).
pub fn depth(conn: &mut AnyConnection, side: Side, levels: i64) -> QueryResult<Vec<Level>> {
    let order = match side {
        Side::Buy => "DESC",
        Side::Sell => "ASC",
    };
    diesel::sql_query(format!(
        "SELECT price_fen_per_1000, CAST(SUM(points - filled_points) AS BIGINT) AS points \
         FROM market_orders WHERE side = $1 AND status IN ('{}', '{}') \
         GROUP BY price_fen_per_1000 ORDER BY price_fen_per_1000 {order} LIMIT $2",
        OrderStatus::Open.as_str(),
        OrderStatus::PartiallyFilled.as_str(),
    ))
    .bind::<Text, _>(side.as_str())
    .bind::<BigInt, _>(levels)
    .load(conn)
}

/// The latest `n` trades, newest first.
pub fn trades(conn: &mut AnyConnection, n: i64) -> QueryResult<Vec<TradeRow>> {
    market_trades::table
        .order(market_trades::id.desc())
        .limit(n)
        .select(TradeRow::as_select())
        .load(conn)
}

/// The latest `n` candles of `period`, oldest first.
pub fn candles(conn: &mut AnyConnection, period: Period, n: i64) -> QueryResult<Vec<CandleRow>> {
    let mut rows: Vec<CandleRow> = market_candles::table
        .filter(market_candles::period.eq(period))
        .order(market_candles::bucket.desc())
        .limit(n)
        .select(CandleRow::as_select())
        .load(conn)?;
    rows.reverse();
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn an_hour_bucket_starts_on_the_hour_a_day_bucket_at_local_midnight() {
        assert_eq!(
            Period::Hour.bucket(at("2026-12-07 17:59:59")),
            at("2026-12-07 17:00:00")
        );
        // 15:59 UTC is 23:59 in Shanghai: still that local day, which began at 16:00 UTC the day before.
        assert_eq!(
            Period::Day.bucket(at("2026-12-07 15:59:59")),
            at("2026-12-06 16:00:00")
        );
        assert_eq!(
            Period::Day.bucket(at("2026-12-07 16:00:00")),
            at("2026-12-07 16:00:00")
        );
    }
}
