//! Per-account, per-day counts of what became of activities, kept in the transaction that stores or
//! reviews them, so that a green profile reads at most one row per day of a quarter (`green`).
//!
//! The cap counters (`daily_grants`) do not serve: they are per activity type, hold only what draws on a
//! cap, and know nothing of evidence, flags or rejections.

use std::collections::BTreeMap;

use diesel::QueryResult;

use super::model::Status;
use crate::db::columns::columns;
use crate::db::prepared::add_rows;
use crate::db::schema::activity_rollups;
use crate::db::AnyConnection;
use crate::domain::catalog::Evidence;

/// What one day of one account gains.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub granted_g: i64,
    pub accepted: i64,
    pub verified: i64,
    pub flagged: i64,
    pub rejected: i64,
}

impl Counts {
    /// What an activity settled as `status` adds (`flagged`: on arrival; a review adds its outcome later).
    pub fn of(status: Status, evidence: Evidence, granted_g: i64) -> Counts {
        let accepted = matches!(status, Status::Credited | Status::Capped);
        Counts {
            granted_g: if status == Status::Credited { granted_g } else { 0 },
            accepted: i64::from(accepted),
            verified: i64::from(accepted && matches!(evidence, Evidence::Operator | Evidence::Trace)),
            flagged: i64::from(status == Status::Flagged),
            rejected: i64::from(status == Status::Rejected),
        }
    }

    fn add(&mut self, other: &Counts) {
        self.granted_g = self.granted_g.saturating_add(other.granted_g);
        self.accepted += other.accepted;
        self.verified += other.verified;
        self.flagged += other.flagged;
        self.rejected += other.rejected;
    }
}

/// The key of a rollup row: (account, local day).
type Day = (i64, String);

columns! {
    activity_rollups for (i64, &str), |(account_id, local_day)| {
        account_id: *account_id,
        local_day: *local_day,
    }
}

columns! {
    activity_rollups for (&Day, &Counts), |((account_id, local_day), counts)| {
        account_id: *account_id,
        local_day: local_day,
        granted_g: counts.granted_g,
        accepted: counts.accepted,
        verified: counts.verified,
        flagged: counts.flagged,
        rejected: counts.rejected,
    }
}

/// Adds each (account, local day, counts) to its day's row, in multi-row upserts (one row per day).
pub fn record<'a>(
    conn: &mut AnyConnection,
    items: impl IntoIterator<Item = (i64, &'a str, Counts)>,
) -> QueryResult<()> {
    let mut days: BTreeMap<Day, Counts> = BTreeMap::new();
    for (account_id, local_day, counts) in items {
        days.entry((account_id, local_day.to_string()))
            .or_default()
            .add(&counts);
    }
    let rows: Vec<(&Day, &Counts)> = days.iter().collect();
    add_rows::<(i64, &str), _, _>(conn, activity_rollups::table, &rows)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_activity_counts_by_what_became_of_it() {
        let credited = Counts::of(Status::Credited, Evidence::Trace, 120);
        assert_eq!(
            (credited.granted_g, credited.accepted, credited.verified),
            (120, 1, 1)
        );
        let capped = Counts::of(Status::Capped, Evidence::SelfReport, 0);
        assert_eq!((capped.accepted, capped.verified), (1, 0));
        assert_eq!(Counts::of(Status::Flagged, Evidence::Operator, 0).flagged, 1);
        let rejected = Counts::of(Status::Rejected, Evidence::Operator, 0);
        assert_eq!(
            (rejected.rejected, rejected.accepted, rejected.verified),
            (1, 0, 0)
        );
    }
}
