//! `verify`'s checks of cash: money leaves the bank account only by a confirmed deposit, of the amount
//! recorded, into the account recorded, or as a recorded payout of a settled sale of pooled reductions
//! (`reductions::check` checks those sum to the sale); every withdrawal's state is its hold's.

use diesel::QueryResult;

use crate::db::disagreements::{self, Check};
use crate::db::AnyConnection;

const CHECKS: [Check; 3] = [
    (
        "transfer {id} takes {found} fen out of the bank account, but is no confirmed deposit of that amount \
         into that account, nor a payout of a settled sale (recorded: {expected})",
        "SELECT t.id AS id, COALESCE(d.amount_fen, i.amount_fen, s.platform_fen, 0) AS expected, \
                t.amount AS found \
         FROM transfers t JOIN accounts b ON b.id = t.debit_account_id AND b.code = 'cash:bank' \
         LEFT JOIN cash_deposits d ON d.transfer_id = t.id \
         LEFT JOIN reduction_incentives i ON i.transfer_id = t.id \
         LEFT JOIN reduction_batches p ON p.id = i.batch_id \
         LEFT JOIN reduction_batches s ON s.platform_transfer_id = t.id \
         LEFT JOIN accounts f ON f.id = t.credit_account_id \
         WHERE t.kind NOT IN ('post', 'void', 'expire') \
           AND NOT (d.id IS NOT NULL AND d.status = 'posted' AND d.account_id = t.credit_account_id \
                    AND d.amount_fen = t.amount) \
           AND NOT (i.batch_id IS NOT NULL AND p.status = 'settled' \
                    AND i.cash_account_id = t.credit_account_id AND i.amount_fen = t.amount) \
           AND NOT (s.id IS NOT NULL AND s.status = 'settled' AND f.code = 'cash:fees' \
                    AND s.platform_fen = t.amount)",
    ),
    (
        "deposit {id} is posted by transfer {found}, which is not from the bank account",
        "SELECT d.id AS id, CAST(0 AS BIGINT) AS expected, COALESCE(d.transfer_id, 0) AS found \
         FROM cash_deposits d LEFT JOIN transfers t ON t.id = d.transfer_id \
         LEFT JOIN accounts b ON b.id = t.debit_account_id \
         WHERE d.status = 'posted' AND (b.code IS NULL OR b.code <> 'cash:bank')",
    ),
    (
        "withdrawal {id} of {expected} fen disagrees with its hold {found} (amount, account, or how it ended)",
        "SELECT w.id AS id, w.amount_fen AS expected, COALESCE(w.hold_id, 0) AS found \
         FROM cash_withdrawals w LEFT JOIN transfers h ON h.id = w.hold_id AND h.kind = 'hold' \
         LEFT JOIN pending_holds p ON p.hold_id = w.hold_id \
         LEFT JOIN transfers r ON r.pending_id = w.hold_id \
         WHERE h.id IS NULL OR h.amount <> w.amount_fen OR h.debit_account_id <> w.account_id \
            OR (w.status = 'held' AND (p.hold_id IS NULL OR r.id IS NOT NULL)) \
            OR (w.status = 'completed' AND (r.kind IS NULL OR r.kind <> 'post')) \
            OR (w.status = 'rejected' AND (r.kind IS NULL OR r.kind <> 'void'))",
    ),
];

/// Every disagreement between the cash records and the ledger, one line each.
pub fn check(conn: &mut AnyConnection) -> QueryResult<Vec<String>> {
    disagreements::lines(conn, CHECKS.iter())
}
