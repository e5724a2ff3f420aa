//! `verify`'s checks of the market: every order on the book holds exactly what it may still trade, and
//! nothing else is held for the market; every order's fills sum to what it says is filled; no trade is
//! at a price beyond either order's limit or between one account's own orders; every trade moved its
//! points and its cash; and the book is not crossed.

use diesel::QueryResult;

use crate::db::disagreements::{self, Check};
use crate::db::AnyConnection;

const CHECKS: [Check; 7] = [
    (
        "order {id} should hold {expected} for what it may still trade, but its hold is of {found}",
        "SELECT o.id AS id, \
                CASE WHEN o.side = 'sell' THEN o.points - o.filled_points \
                     ELSE (o.points - o.filled_points) / 1000 * o.price_fen_per_1000 END AS expected, \
                COALESCE(h.amount, 0) AS found \
         FROM market_orders o LEFT JOIN pending_holds p ON p.hold_id = o.hold_id \
         LEFT JOIN transfers h ON h.id = p.hold_id \
             AND h.debit_account_id = CASE WHEN o.side = 'sell' THEN o.account_id ELSE o.cash_account_id END \
         WHERE o.status IN ('open', 'partially_filled') AND (h.id IS NULL OR h.amount <> \
             CASE WHEN o.side = 'sell' THEN o.points - o.filled_points \
                  ELSE (o.points - o.filled_points) / 1000 * o.price_fen_per_1000 END)",
    ),
    (
        "hold {id} of {found} is held for the market but for no order on the book",
        "SELECT p.hold_id AS id, CAST(0 AS BIGINT) AS expected, t.amount AS found \
         FROM pending_holds p JOIN transfers t ON t.id = p.hold_id \
         JOIN accounts m ON m.id = t.credit_account_id AND m.kind = 'market' \
         LEFT JOIN market_orders o ON o.hold_id = p.hold_id AND o.status IN ('open', 'partially_filled') \
         WHERE o.id IS NULL",
    ),
    (
        "order {id} says {expected} points are filled, but its trades come to {found}",
        "SELECT o.id AS id, o.filled_points AS expected, CAST(COALESCE(SUM(t.points), 0) AS BIGINT) AS found \
         FROM market_orders o LEFT JOIN market_trades t ON t.buy_order_id = o.id OR t.sell_order_id = o.id \
         GROUP BY o.id, o.filled_points HAVING o.filled_points <> COALESCE(SUM(t.points), 0)",
    ),
    (
        "trade {id} at {found} fen is beyond a limit, between one account's orders, or its cash is not \
         points × price ({expected} fen)",
        "SELECT t.id AS id, t.points / 1000 * t.price_fen_per_1000 AS expected, t.price_fen_per_1000 AS found \
         FROM market_trades t JOIN market_orders b ON b.id = t.buy_order_id AND b.side = 'buy' \
         JOIN market_orders s ON s.id = t.sell_order_id AND s.side = 'sell' \
         WHERE t.price_fen_per_1000 > b.price_fen_per_1000 OR t.price_fen_per_1000 < s.price_fen_per_1000 \
            OR b.account_id = s.account_id OR t.cash_fen <> t.points / 1000 * t.price_fen_per_1000",
    ),
    (
        "trade {id} moved {found} points between wallets, not its {expected}",
        "SELECT t.id AS id, t.points AS expected, CAST(COALESCE(SUM(x.amount), 0) AS BIGINT) AS found \
         FROM market_trades t LEFT JOIN (transfers x JOIN accounts a \
             ON a.id = x.debit_account_id AND a.asset = 'points') \
             ON x.ref_type = 'market_trade' AND x.ref_id = CAST(t.id AS TEXT) AND x.kind = 'transfer' \
         GROUP BY t.id, t.points HAVING t.points <> COALESCE(SUM(x.amount), 0)",
    ),
    (
        "trade {id} moved {found} fen (to the seller and the fee), not its {expected}",
        "SELECT t.id AS id, t.cash_fen AS expected, CAST(COALESCE(SUM(x.amount), 0) AS BIGINT) AS found \
         FROM market_trades t LEFT JOIN (transfers x JOIN accounts a \
             ON a.id = x.debit_account_id AND a.asset = 'cny') \
             ON x.ref_type = 'market_trade' AND x.ref_id = CAST(t.id AS TEXT) AND x.kind = 'transfer' \
         GROUP BY t.id, t.cash_fen HAVING t.cash_fen <> COALESCE(SUM(x.amount), 0)",
    ),
    (
        "the book is crossed: the best bid {found} is at or above the best ask {expected}",
        "SELECT CAST(0 AS BIGINT) AS id, \
                (SELECT MIN(price_fen_per_1000) FROM market_orders \
                 WHERE side = 'sell' AND status IN ('open', 'partially_filled')) AS expected, \
                (SELECT MAX(price_fen_per_1000) FROM market_orders \
                 WHERE side = 'buy' AND status IN ('open', 'partially_filled')) AS found \
         WHERE (SELECT MAX(price_fen_per_1000) FROM market_orders \
                WHERE side = 'buy' AND status IN ('open', 'partially_filled')) >= \
               (SELECT MIN(price_fen_per_1000) FROM market_orders \
                WHERE side = 'sell' AND status IN ('open', 'partially_filled'))",
    ),
];

/// Every disagreement between the market's records and the ledger, one line each.
pub fn check(conn: &mut AnyConnection) -> QueryResult<Vec<String>> {
    disagreements::lines(conn, CHECKS.iter())
}
