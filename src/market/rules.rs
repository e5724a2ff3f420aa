//! The market's arithmetic, pure: lots, prices, what a fill costs, its fee, whether two orders cross.

use super::{OrderStatus, Side};

/// Points trade in lots of this many; prices are per lot.
pub const LOT: i64 = 1_000;

/// The most points one order may trade: a billion lots.
pub const MAX_POINTS: i64 = 1_000_000_000_000;

/// The highest price, in fen per 1,000 points: ten million yuan. With [`MAX_POINTS`], an order's cash
/// (10^9 lots × 10^9 fen) stays below 2^63.
pub const MAX_PRICE: i64 = 1_000_000_000;

/// Why an order's points or price is refused, if it is: (field, message).
pub fn problems(points: i64, price: i64) -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    if points <= 0 || points % LOT != 0 || points > MAX_POINTS {
        found.push((
            "points",
            format!("must be a positive multiple of {LOT}, at most {MAX_POINTS}"),
        ));
    }
    if !(1..=MAX_PRICE).contains(&price) {
        found.push((
            "price_fen_per_1000",
            format!("must be between 1 and {MAX_PRICE} fen"),
        ));
    }
    found
}

/// What `points` cost at `price` fen per lot; `None` beyond the 64-bit range (never, within the bounds).
pub fn cash_for(points: i64, price: i64) -> Option<i64> {
    (points / LOT).checked_mul(price)
}

/// The fee on `cash` at `bps` basis points, rounded down (so a fee never exceeds its rate).
pub fn fee_of(cash: i64, bps: u32) -> i64 {
    let fee = i128::from(cash) * i128::from(bps) / 10_000;
    i64::try_from(fee).unwrap_or(cash).min(cash)
}

/// Whether an incoming order of `side` at `limit` trades with a resting order at `resting`: a buyer
/// pays at most its limit, a seller takes at least its own.
pub fn crosses(side: Side, limit: i64, resting: i64) -> bool {
    match side {
        Side::Buy => resting <= limit,
        Side::Sell => resting >= limit,
    }
}

/// The status of an order of `points` with `filled` of them filled, still on the book or not.
pub fn status_of(points: i64, filled: i64, on_book: bool) -> OrderStatus {
    match (filled, on_book) {
        (f, _) if f == points => OrderStatus::Filled,
        (_, false) => OrderStatus::Cancelled,
        (0, true) => OrderStatus::Open,
        (_, true) => OrderStatus::PartiallyFilled,
    }
}

/// What an order holds for `remaining` points: the points themselves (a sale) or their cash at the
/// order's own limit (a purchase).
pub fn held_for(side: Side, remaining: i64, limit: i64) -> Option<i64> {
    match side {
        Side::Sell => Some(remaining),
        Side::Buy => cash_for(remaining, limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_come_in_whole_lots_within_bounds() {
        assert!(problems(1_000, 1).is_empty());
        assert!(problems(MAX_POINTS, MAX_PRICE).is_empty());
        for (points, price) in [(999, 1), (0, 1), (-1_000, 1), (1_500, 1), (MAX_POINTS + LOT, 1)] {
            assert_eq!(problems(points, price)[0].0, "points", "{points}");
        }
        for price in [0, -1, MAX_PRICE + 1] {
            assert_eq!(problems(1_000, price)[0].0, "price_fen_per_1000");
        }
        assert_eq!(problems(7, 0).len(), 2);
    }

    #[test]
    fn the_largest_order_costs_what_fits_in_64_bits() {
        assert_eq!(cash_for(MAX_POINTS, MAX_PRICE), Some(1_000_000_000_000_000_000));
        assert_eq!(cash_for(3_000, 250), Some(750));
        assert_eq!(cash_for(i64::MAX, i64::MAX), None);
    }

    #[test]
    fn fees_round_down_and_never_exceed_the_cash() {
        assert_eq!(fee_of(10_000, 25), 25);
        assert_eq!(fee_of(399, 25), 0);
        assert_eq!(fee_of(400, 25), 1);
        assert_eq!(fee_of(1_000_000_000_000_000_000, 1_000), 100_000_000_000_000_000);
        assert_eq!(fee_of(5, 0), 0);
    }

    #[test]
    fn a_buyer_crosses_at_or_below_its_limit_a_seller_at_or_above() {
        assert!(crosses(Side::Buy, 100, 100));
        assert!(crosses(Side::Buy, 100, 99));
        assert!(!crosses(Side::Buy, 100, 101));
        assert!(crosses(Side::Sell, 100, 100));
        assert!(crosses(Side::Sell, 100, 101));
        assert!(!crosses(Side::Sell, 100, 99));
    }

    #[test]
    fn status_follows_fills_and_the_book() {
        assert_eq!(status_of(2_000, 0, true), OrderStatus::Open);
        assert_eq!(status_of(2_000, 1_000, true), OrderStatus::PartiallyFilled);
        assert_eq!(status_of(2_000, 2_000, true), OrderStatus::Filled);
        assert_eq!(status_of(2_000, 2_000, false), OrderStatus::Filled);
        assert_eq!(status_of(2_000, 1_000, false), OrderStatus::Cancelled);
        assert_eq!(status_of(2_000, 0, false), OrderStatus::Cancelled);
    }

    #[test]
    fn a_sale_holds_its_points_a_purchase_its_cash_at_its_limit() {
        assert_eq!(held_for(Side::Sell, 3_000, 77), Some(3_000));
        assert_eq!(held_for(Side::Buy, 3_000, 77), Some(231));
    }
}
