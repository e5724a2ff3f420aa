//! `verify`'s checks of the ends of pooled batches. Settled sales: the proceeds are the whole tonnes at
//! the price, the people's payouts and the platform's part add up to them to the fen, each payout's grams
//! are that wallet's grams in the batch, and nothing was paid for a batch that is not settled.
//! Retirements: a retired batch has one retirement record and no sale, and no other batch has one.

use diesel::QueryResult;

use crate::db::disagreements::{self, Check};
use crate::db::AnyConnection;

const CHECKS: [Check; 6] = [
    (
        "reduction batch {id} was sold for {found} fen, which is not its {expected} tonnes at its price",
        // Divided rather than multiplied: edited columns must not overflow the check itself.
        "SELECT id, COALESCE(tonnes, 0) AS expected, COALESCE(proceeds_fen, 0) AS found \
         FROM reduction_batches WHERE status IN ('sold', 'settled') \
           AND (proceeds_fen IS NULL OR tonnes IS NULL OR price_fen_per_tonne IS NULL \
                OR price_fen_per_tonne <= 0 OR proceeds_fen % price_fen_per_tonne <> 0 \
                OR proceeds_fen / price_fen_per_tonne <> tonnes)",
    ),
    (
        "reduction batch {id} paid out {found} fen (people and platform) of proceeds of {expected}",
        "SELECT b.id AS id, COALESCE(b.proceeds_fen, 0) AS expected, \
                CAST(COALESCE(b.platform_fen, 0) + COALESCE(SUM(i.amount_fen), 0) AS BIGINT) AS found \
         FROM reduction_batches b LEFT JOIN reduction_incentives i ON i.batch_id = b.id \
         WHERE b.status = 'settled' \
         GROUP BY b.id, b.proceeds_fen, b.platform_fen, b.distributed_fen \
         HAVING COALESCE(b.platform_fen, 0) + COALESCE(SUM(i.amount_fen), 0) <> COALESCE(b.proceeds_fen, 0) \
             OR COALESCE(SUM(i.amount_fen), 0) <> COALESCE(b.distributed_fen, 0)",
    ),
    (
        "reduction batch {id} is not settled, yet paid {found} fen to people",
        "SELECT b.id AS id, CAST(0 AS BIGINT) AS expected, CAST(SUM(i.amount_fen) AS BIGINT) AS found \
         FROM reduction_batches b JOIN reduction_incentives i ON i.batch_id = b.id \
         WHERE b.status <> 'settled' GROUP BY b.id",
    ),
    (
        "a payout of reduction batch {id} counts {found} g for a wallet that has {expected} g in the batch",
        "SELECT i.batch_id AS id, COALESCE(h.granted_g, 0) AS expected, i.granted_g AS found \
         FROM reduction_incentives i LEFT JOIN \
              (SELECT it.batch_id AS batch_id, a.account_id AS account_id, \
                      CAST(SUM(it.granted_g) AS BIGINT) AS granted_g \
               FROM reduction_batch_items it JOIN activities a ON a.id = it.activity_id \
               WHERE it.batch_id IN (SELECT batch_id FROM reduction_incentives) \
               GROUP BY it.batch_id, a.account_id) h \
           ON h.batch_id = i.batch_id AND h.account_id = i.account_id \
         WHERE h.granted_g IS NULL OR h.granted_g <> i.granted_g",
    ),
    (
        "reduction batch {id} has {found} retirement records where its status calls for {expected}",
        "SELECT b.id AS id, CAST(CASE WHEN b.status = 'retired' THEN 1 ELSE 0 END AS BIGINT) AS expected, \
                CAST(COUNT(r.batch_id) AS BIGINT) AS found \
         FROM reduction_batches b LEFT JOIN reduction_batch_retirements r ON r.batch_id = b.id \
         GROUP BY b.id, b.status \
         HAVING COUNT(r.batch_id) <> CASE WHEN b.status = 'retired' THEN 1 ELSE 0 END",
    ),
    (
        "reduction batch {id} is retired, yet records a sale (proceeds {found} fen)",
        "SELECT id, CAST(0 AS BIGINT) AS expected, COALESCE(proceeds_fen, 0) AS found \
         FROM reduction_batches \
         WHERE status = 'retired' AND (buyer IS NOT NULL OR proceeds_fen IS NOT NULL OR sold_by IS NOT NULL)",
    ),
];

/// Every disagreement between the sales and retirements of pooled reductions and what they recorded or
/// paid, one line each.
pub fn check(conn: &mut AnyConnection) -> QueryResult<Vec<String>> {
    disagreements::lines(conn, CHECKS.iter())
}
