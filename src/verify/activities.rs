//! The activities' part of `tanhui verify`, kept here so that the activities depend on nothing of
//! `verify`: every point issued for an activity is the one issue transfer its row names,
//! for the points the row says, to its account; and no issue names an activity that does not name it.
//! Balances alone cannot show points created out of nothing: an issuance account is unfloored and its
//! balance is the sum of its transfers, so an extra issue still sums to zero. And every activity's grams
//! are reproduced from its stored inputs under the version it recorded ([`check_reproducible`]).

use std::collections::HashMap;
use std::sync::Arc;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};

use crate::db::schema::activities;
use crate::db::AnyConnection;
use crate::domain::catalog::{Catalog, Version};
use crate::methodology::requantify::{recorded_version, requantify_under, Recorded, RequantifyError};

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

/// Activities read per page while checking reproducibility: one page is all that is held at a time.
const ACTIVITIES_PER_PAGE: i64 = 1_000;

/// The most irreproducible activities listed one by one; past this only their number is reported, so
/// the check holds as little as it reads whatever it finds.
pub const IRREPRODUCIBLE_LISTED_MAX: usize = 100;

/// Invariant 5: every activity's stored grams are what its stored inputs give under the version it
/// recorded (and 0 for one that recorded none). Reads every activity in keyset pages of
/// [`ACTIVITIES_PER_PAGE`], keeping only the versions met so far; `progress(done, total)` after each page.
pub fn check_reproducible(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    mut progress: impl FnMut(usize, usize),
) -> QueryResult<Reproducibility> {
    let total: i64 = activities::table.count().get_result(conn)?;
    let total = usize::try_from(total).unwrap_or(0);
    let mut versions: HashMap<i64, Result<Arc<Version>, String>> = HashMap::new();
    let mut found = Reproducibility::default();
    let mut after = 0i64;
    loop {
        let page: Vec<(Recorded, i64)> = activities::table
            .filter(activities::id.gt(after))
            .order(activities::id)
            .limit(ACTIVITIES_PER_PAGE)
            .select((
                (
                    activities::id,
                    activities::methodology_id,
                    activities::region_code,
                    activities::occurred_at,
                    activities::evidence,
                    activities::data,
                ),
                activities::reduction_g,
            ))
            .load(conn)?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = last.id;
        for (activity, stored_g) in &page {
            found.checked += 1;
            let again = match activity.methodology_id {
                None => Ok(0),
                Some(version_id) => {
                    let version = match versions.get(&version_id) {
                        Some(known) => known.clone(),
                        None => {
                            let loaded = match recorded_version(conn, activity.id, version_id) {
                                Ok(version) => Ok(Arc::new(version)),
                                Err(RequantifyError::Query(e)) => return Err(e),
                                Err(other) => Err(other.to_string()),
                            };
                            versions.insert(version_id, loaded.clone());
                            loaded
                        }
                    };
                    version.and_then(|version| {
                        requantify_under(catalog, version, activity, false)
                            .map(|q| q.quantity.reduction_g)
                            .map_err(|e| e.to_string())
                    })
                }
            };
            let mismatch = match again {
                Ok(grams) if grams == *stored_g => continue,
                Ok(grams) => format!(
                    "activity {} stores {stored_g} g but its inputs give {grams} g under version {:?}",
                    activity.id, activity.methodology_id
                ),
                Err(why) => format!(
                    "activity {} cannot be quantified again under version {:?}: {why}",
                    activity.id, activity.methodology_id
                ),
            };
            found.irreproducible += 1;
            if found.listed.len() < IRREPRODUCIBLE_LISTED_MAX {
                found.listed.push(mismatch);
            }
        }
        progress(found.checked, total.max(found.checked));
    }
    Ok(found)
}

/// What the reproducibility check found.
#[derive(Debug, Default)]
pub struct Reproducibility {
    pub checked: usize,
    pub irreproducible: usize,
    /// The first [`IRREPRODUCIBLE_LISTED_MAX`] of them, described.
    pub listed: Vec<String>,
}

impl Reproducibility {
    /// The mismatches to report: each one listed, and how many more there were.
    pub fn mismatches(self) -> Vec<String> {
        let mut out = self.listed;
        if self.irreproducible > out.len() {
            out.push(format!(
                "… and {} more activities whose stored grams are not reproduced",
                self.irreproducible - out.len()
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_listed_ones_only_their_number_is_reported() {
        let few = Reproducibility {
            checked: 10,
            irreproducible: 2,
            listed: vec!["a".into(), "b".into()],
        };
        assert_eq!(few.mismatches(), ["a", "b"]);
        let many = Reproducibility {
            checked: 1_000,
            irreproducible: IRREPRODUCIBLE_LISTED_MAX + 5,
            listed: vec!["x".into(); IRREPRODUCIBLE_LISTED_MAX],
        };
        let reported = many.mismatches();
        assert_eq!(reported.len(), IRREPRODUCIBLE_LISTED_MAX + 1);
        assert!(reported[IRREPRODUCIBLE_LISTED_MAX].contains("5 more"));
        assert!(Reproducibility::default().mismatches().is_empty());
    }
}
