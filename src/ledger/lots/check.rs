//! `verify`'s checks of the lots, each one aggregate query over the snapshot that lists what disagrees:
//!
//! - every wallet's holdings sum to its balance, and only wallets hold lots;
//! - every open hold's reserved holdings sum to its amount, in the wallet it debits, and no holding is
//!   reserved by a hold that is no longer open;
//! - every lot's holdings and exits sum to its points, so no point of it is in two places or spent twice;
//!   each holding carries its lot's expiry, and nothing refers to a lot that does not exist;
//! - every lot named by a transfer is that transfer's issue: same wallet, same points;
//! - every transfer's exits sum to its amount.
//!
//! The ledger's own check has proved the balances in the account rows by then, so they are compared here.

use diesel::QueryResult;

use crate::db::disagreements::{self, Check};
use crate::db::AnyConnection;

/// The checks: (what each line names, the query giving (id, expected, found) for each disagreement).
const CHECKS: [Check; 7] = [
    (
        "wallet {id} holds {found} points in lots, but its balance is {expected}",
        "SELECT a.id AS id, a.credits_posted - a.debits_posted AS expected, \
                CAST(COALESCE(SUM(h.points), 0) AS BIGINT) AS found \
         FROM accounts a LEFT JOIN lot_holdings h ON h.account_id = a.id \
         WHERE a.floored AND a.asset = 'points' \
         GROUP BY a.id, a.credits_posted, a.debits_posted \
         HAVING a.credits_posted - a.debits_posted <> COALESCE(SUM(h.points), 0)",
    ),
    (
        "account {id}, which is no wallet, holds {found} points in lots",
        "SELECT h.account_id AS id, CAST(0 AS BIGINT) AS expected, CAST(SUM(h.points) AS BIGINT) AS found \
         FROM lot_holdings h LEFT JOIN accounts a ON a.id = h.account_id \
         WHERE a.id IS NULL OR NOT a.floored OR a.asset <> 'points' GROUP BY h.account_id",
    ),
    (
        "hold {id} reserves {found} points of lots, but holds {expected} (or is no open hold of that wallet)",
        "SELECT h.hold_id AS id, COALESCE(MAX(t.amount), 0) AS expected, \
                CAST(SUM(h.points) AS BIGINT) AS found \
         FROM lot_holdings h \
         LEFT JOIN pending_holds p ON p.hold_id = h.hold_id \
         LEFT JOIN transfers t ON t.id = p.hold_id AND t.debit_account_id = h.account_id \
         WHERE h.hold_id <> 0 GROUP BY h.hold_id \
         HAVING SUM(h.points) <> COALESCE(MAX(t.amount), 0)",
    ),
    (
        "open hold {id} of {expected} points reserves no lots",
        "SELECT p.hold_id AS id, t.amount AS expected, CAST(0 AS BIGINT) AS found \
         FROM pending_holds p JOIN transfers t ON t.id = p.hold_id \
         JOIN accounts a ON a.id = t.debit_account_id \
         WHERE a.floored AND a.asset = 'points' AND NOT EXISTS (SELECT 1 FROM lot_holdings h \
             WHERE h.account_id = t.debit_account_id AND h.hold_id = p.hold_id)",
    ),
    (
        "lot {id} has {expected} points, but its holdings and exits come to {found}",
        "SELECT l.id AS id, l.points AS expected, \
                CAST(COALESCE(hs.s, 0) + COALESCE(es.s, 0) AS BIGINT) AS found \
         FROM lots l \
         LEFT JOIN (SELECT lot_id, SUM(points) AS s FROM lot_holdings GROUP BY lot_id) hs ON hs.lot_id = l.id \
         LEFT JOIN (SELECT lot_id, SUM(points) AS s FROM lot_exits GROUP BY lot_id) es ON es.lot_id = l.id \
         WHERE l.points <> COALESCE(hs.s, 0) + COALESCE(es.s, 0)",
    ),
    (
        "lot {id}: a holding or exit of it names no lot, or a holding's expiry is not the lot's ({found} rows)",
        "SELECT x.lot_id AS id, CAST(0 AS BIGINT) AS expected, CAST(COUNT(*) AS BIGINT) AS found FROM ( \
             SELECT h.lot_id FROM lot_holdings h LEFT JOIN lots l ON l.id = h.lot_id \
             WHERE l.id IS NULL OR h.expires_at <> l.expires_at \
             UNION ALL \
             SELECT e.lot_id FROM lot_exits e LEFT JOIN lots l ON l.id = e.lot_id WHERE l.id IS NULL \
         ) x GROUP BY x.lot_id",
    ),
    (
        "lot {id} of {found} points is not the issue transfer of that id (to its wallet, of {expected} points)",
        "SELECT l.id AS id, COALESCE(t.amount, 0) AS expected, l.points AS found \
         FROM lots l LEFT JOIN transfers t ON t.id = l.id \
         WHERE l.id > 0 AND (t.id IS NULL OR t.kind <> 'issue' \
             OR t.credit_account_id <> l.account_id OR t.amount <> l.points)",
    ),
];

/// The transfers whose exits do not sum to their amount.
const EXITS: Check = (
    "transfer {id} moved {expected} points, but wrote {found} off lots",
    "SELECT e.transfer_id AS id, COALESCE(MAX(t.amount), 0) AS expected, \
            CAST(SUM(e.points) AS BIGINT) AS found \
     FROM lot_exits e LEFT JOIN transfers t ON t.id = e.transfer_id \
     GROUP BY e.transfer_id HAVING SUM(e.points) <> COALESCE(MAX(t.amount), 0)",
);

/// Every disagreement between the lots and the ledger, one line each.
pub fn check(conn: &mut AnyConnection) -> QueryResult<Vec<String>> {
    disagreements::lines(conn, CHECKS.iter().chain([&EXITS]))
}
