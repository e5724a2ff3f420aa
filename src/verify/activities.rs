//! The activities' part of `tanhui verify`, kept here so that the activities depend on nothing of
//! `verify`: every point issued for an activity is the one issue transfer its row names,
//! for the points the row says, to its account; and no issue names an activity that does not name it.
//! Balances alone cannot show points created out of nothing: an issuance account is unfloored and its
//! balance is the sum of its transfers, so an extra issue still sums to zero.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};

use crate::db::AnyConnection;

/// A row that does not agree, and the row on the other side it was matched with, if any.
#[derive(QueryableByName)]
struct Mismatch {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    other: Option<i64>,
}

/// Mismatches between activities and their issue transfers. Only the mismatching rows are read.
pub fn check(conn: &mut AnyConnection) -> QueryResult<Vec<String>> {
    let mut mismatches = Vec::new();
    let activities: Vec<Mismatch> = diesel::sql_query(
        "SELECT a.id AS id, a.transfer_id AS other FROM activities a \
         LEFT JOIN transfers t ON t.id = a.transfer_id \
         WHERE (a.points > 0 OR a.transfer_id IS NOT NULL) AND NOT (t.id IS NOT NULL \
         AND t.kind = 'issue' AND t.amount = a.points AND t.credit_account_id = a.account_id \
         AND t.ref_type = 'activity' AND t.ref_id = CAST(a.id AS TEXT)) ORDER BY a.id",
    )
    .load(conn)?;
    for a in activities {
        mismatches.push(format!(
            "activity {} does not agree with its issue transfer {:?} (kind, amount, account or cause)",
            a.id, a.other
        ));
    }
    // Joined by the activity's transfer id, not by the transfer's cause: the cause is text, and the
    // activities have no index on it.
    let issues: Vec<Mismatch> = diesel::sql_query(
        "SELECT t.id AS id, a.id AS other FROM transfers t \
         LEFT JOIN activities a ON a.transfer_id = t.id \
         WHERE t.kind = 'issue' AND t.ref_type = 'activity' \
         AND (a.id IS NULL OR CAST(a.id AS TEXT) <> t.ref_id) ORDER BY t.id",
    )
    .load(conn)?;
    for t in issues {
        mismatches.push(format!(
            "issue transfer {} is not the transfer of the activity it names (named by activity {:?})",
            t.id, t.other
        ));
    }
    Ok(mismatches)
}
