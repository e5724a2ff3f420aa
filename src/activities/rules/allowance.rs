//! Cap arithmetic: how much of a credit the daily and annual allowances let through. Pure: the counters
//! come from an [`Allowances`] (the store's `caps::Book`, read under the account's lock), and every sum
//! is checked, so a grant never wraps a counter.

use chrono::NaiveDateTime;

use super::{local_day, local_year};
use crate::activities::model::{Reason, Status};
use crate::domain::catalog::{points_for, AmountOverflow, Evidence};
use crate::methodology::quantify::Quantified;

/// No daily cap: the counter still records what was granted, and stays far from an `i64`'s end.
pub const UNCAPPED: i64 = i64::MAX / 4;

/// A counter's total and its last grant, and whether a grant changed it since it was read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    pub total: i64,
    pub last: i64,
    pub changed: bool,
}

impl Counter {
    /// A counter as it was read.
    pub fn stored(total: i64, last: i64) -> Counter {
        Counter {
            total,
            last,
            changed: false,
        }
    }

    /// All of `want` if it fits under `cap`, what is left otherwise (nothing of a negative `want`).
    /// Checked: a grant never wraps a total; an overflow leaves the counter as it was.
    pub fn take(&mut self, want: i64, cap: i64) -> Result<i64, AmountOverflow> {
        let left = cap.saturating_sub(self.total).max(0);
        let granted = want.clamp(0, left);
        self.total = self
            .total
            .checked_add(granted)
            .ok_or_else(|| overflow(self.total, granted))?;
        self.last = granted;
        self.changed = true;
        Ok(granted)
    }

    /// Undoes the last `take` of `granted`.
    pub fn give_back(&mut self, granted: i64) -> Result<(), AmountOverflow> {
        let total = self.total.checked_sub(granted);
        let last = self.last.checked_sub(granted);
        let (Some(total), Some(last)) = (total, last) else {
            return Err(overflow(self.total, -granted));
        };
        (self.total, self.last, self.changed) = (total, last, true);
        Ok(())
    }
}

fn overflow(total: i64, change: i64) -> AmountOverflow {
    AmountOverflow::new(format!("a cap counter of {total} changed by {change}"))
}

/// The counters a credit draws on. `None`: the counter was not read, so it cannot be granted from (it
/// may hold grants already).
pub trait Allowances {
    /// The (account, activity type, Asia/Shanghai day) counter of granted grams.
    fn daily(&mut self, account_id: i64, activity_type: &str, local_day: &str) -> Option<&mut Counter>;
    /// The (account, Asia/Shanghai year) counter of points.
    fn annual(&mut self, account_id: i64, year: i32) -> Option<&mut Counter>;
}

/// Why a credit could not be decided: the transaction that asked must be rolled back.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// Grams or points beyond an `i64`.
    #[error(transparent)]
    Overflow(#[from] AmountOverflow),
    /// A counter the caller did not read (a bug in the caller, never the client's doing).
    #[error("a cap counter that was not read: {0}")]
    Unread(&'static str),
}

/// Whose allowance a credit draws on, and what an earlier record of the same trip already received.
pub struct Grant<'a> {
    pub account_id: i64,
    pub activity_type: &'a str,
    pub occurred_at: NaiveDateTime,
    pub evidence: Evidence,
    /// (grams, points) already granted for this trip.
    pub already: (i64, i64),
}

/// What the caps let a credit have; issuing is the caller's.
#[derive(Debug)]
pub struct Credit {
    /// `Credited`, or `Capped` when the caps left it nothing it wanted.
    pub status: Status,
    pub granted_g: i64,
    pub points: i64,
    pub reasons: Vec<Reason>,
}

/// Takes what the caps allow (`annual_points_cap` 0: no annual cap), in checked arithmetic. After an
/// error the counters may hold part of the grant: the caller's transaction is then rolled back.
pub fn credit(
    grant: &Grant<'_>,
    q: &Quantified,
    annual_points_cap: i64,
    counters: &mut impl Allowances,
) -> Result<Credit, GrantError> {
    let (already_granted, already_points) = grant.already;
    let reduction_g = q.quantity.reduction_g;
    let want = reduction_g
        .checked_sub(already_granted)
        .ok_or_else(|| AmountOverflow::new(format!("{reduction_g} g less {already_granted} g")))?
        .max(0);
    let day = local_day(grant.occurred_at);
    let mut granted = daily(counters, grant, &day)?.take(want, q.version.daily_cap_g.unwrap_or(UNCAPPED))?;
    let mut reasons = Vec::new();
    if granted < want {
        reasons.push(Reason::CapReached);
    }
    let weight = q.version.weights.weight(grant.evidence);
    // The trip is worth what this record says: grams an earlier record of it claimed beyond that are never
    // taken back, but they earn nothing more at this record's weight either.
    let trip_g = already_granted
        .checked_add(granted)
        .ok_or_else(|| AmountOverflow::new(format!("{already_granted} g and {granted} g")))?
        .min(reduction_g);
    let total_points = points_for(trip_g, q.quantity.points_per_gram, weight)?;
    let want_points = total_points
        .checked_sub(already_points)
        .ok_or_else(|| AmountOverflow::new(format!("{total_points} points less {already_points}")))?
        .max(0);
    let points = if annual_points_cap == 0 {
        want_points
    } else {
        counters
            .annual(grant.account_id, local_year(grant.occurred_at))
            .ok_or(GrantError::Unread("annual points"))?
            .take(want_points, annual_points_cap)?
    };
    if points < want_points {
        reasons.push(Reason::AnnualCapReached);
        // Grams that earn no points at all are not credited: they go back to the day's allowance.
        if points == 0 {
            daily(counters, grant, &day)?.give_back(granted)?;
            granted = 0;
        }
    }
    // Capped: the caps left this record nothing it wanted. An operator's record may still earn points
    // with no new grams (it re-weighs grams its trip's app records were granted): that is a credit.
    let status = if (want > 0 || want_points > 0) && granted == 0 && points == 0 {
        Status::Capped
    } else {
        Status::Credited
    };
    Ok(Credit {
        status,
        granted_g: granted,
        points,
        reasons,
    })
}

/// The day's counter of the grant's account and activity type.
fn daily<'c>(
    counters: &'c mut impl Allowances,
    grant: &Grant<'_>,
    day: &str,
) -> Result<&'c mut Counter, GrantError> {
    counters
        .daily(grant.account_id, grant.activity_type, day)
        .ok_or(GrantError::Unread("daily grams"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rust_decimal::Decimal;

    use super::*;
    use crate::activities::fixtures::quantified;

    #[test]
    fn a_counter_grants_what_fits_then_what_is_left_then_nothing() {
        let mut c = Counter::default();
        assert_eq!(c.take(86, 296), Ok(86));
        assert_eq!(c.take(200, 296), Ok(200));
        assert_eq!((c.take(86, 296), c.total, c.last), (Ok(10), 296, 10));
        assert_eq!((c.take(86, 296), c.total, c.last), (Ok(0), 296, 0));
        assert!(c.changed);
        let mut c = Counter::default();
        c.take(86, 296).unwrap();
        c.give_back(86).unwrap();
        assert_eq!((c.total, c.last, c.take(296, 296)), (0, 0, Ok(296)));
    }

    #[test]
    fn a_counter_at_the_edges_of_an_i64_never_wraps() {
        // No cap: the counter fills up to the largest total, then grants nothing more.
        let mut c = Counter::stored(i64::MAX - 5, 0);
        assert_eq!(c.take(i64::MAX, i64::MAX), Ok(5));
        assert_eq!((c.total, c.take(1, i64::MAX)), (i64::MAX, Ok(0)));
        // A total far below zero (never written by a grant) cannot widen the allowance past the cap.
        let mut c = Counter::stored(i64::MIN, 0);
        assert_eq!(c.take(i64::MAX, i64::MAX), Ok(i64::MAX));
        assert_eq!(c.total, -1);
        // A negative want grants nothing; a cap below the total grants nothing.
        let mut c = Counter::stored(100, 0);
        assert_eq!((c.take(-5, 1000), c.take(5, 50), c.total), (Ok(0), Ok(0), 100));
        // Giving back beyond the range refuses and leaves the counter as it was.
        let mut c = Counter::stored(i64::MIN, 0);
        assert!(c.give_back(1).is_err());
        assert_eq!(c, Counter::stored(i64::MIN, 0));
        let mut c = Counter::stored(0, i64::MIN);
        assert!(c.give_back(1).is_err());
        assert_eq!(c.total, 0);
    }

    /// Counters in memory, as a test sets them; a key not set was not read.
    #[derive(Default)]
    struct Counters {
        daily: HashMap<String, Counter>,
        annual: HashMap<i32, Counter>,
    }

    impl Allowances for Counters {
        fn daily(&mut self, _: i64, _: &str, local_day: &str) -> Option<&mut Counter> {
            self.daily.get_mut(local_day)
        }
        fn annual(&mut self, _: i64, year: i32) -> Option<&mut Counter> {
            self.annual.get_mut(&year)
        }
    }

    /// 04:00 UTC on 1 March 2026: noon of that day in Asia/Shanghai.
    fn at_noon() -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 3, 1)
            .unwrap()
            .and_hms_opt(4, 0, 0)
            .unwrap()
    }

    fn grant(already: (i64, i64)) -> Grant<'static> {
        Grant {
            account_id: 1,
            activity_type: "household.units",
            occurred_at: at_noon(),
            evidence: Evidence::Trace,
            already,
        }
    }

    /// Credits `reduction_g` at `points_per_gram` (trace evidence, full weight, no caps) over what the
    /// trip's earlier records were granted (`already`), from counters at zero.
    fn credit_of(
        reduction_g: i64,
        points_per_gram: Decimal,
        already: (i64, i64),
    ) -> Result<Credit, GrantError> {
        let q = quantified("household.units", reduction_g, points_per_gram);
        let mut counters = Counters::default();
        counters.daily.insert("2026-03-01".into(), Counter::default());
        credit(&grant(already), &q, 0, &mut counters)
    }

    #[test]
    fn credits_at_the_edges_of_an_i64_are_checked() {
        let most = credit_of(i64::MAX, Decimal::ONE, (0, 0)).unwrap();
        assert_eq!((most.granted_g, most.points), (UNCAPPED, UNCAPPED));
        // Points beyond an i64: refused, not 0 and not wrapped.
        assert!(matches!(
            credit_of(i64::MAX, Decimal::from(5), (0, 0)),
            Err(GrantError::Overflow(_))
        ));
        // What earlier records of the trip had is subtracted and added in checked arithmetic.
        assert!(matches!(
            credit_of(1, Decimal::ONE, (i64::MIN, 0)),
            Err(GrantError::Overflow(_))
        ));
        assert!(matches!(
            credit_of(1, Decimal::ONE, (0, i64::MIN)),
            Err(GrantError::Overflow(_))
        ));
        let topped = credit_of(i64::MAX, Decimal::ONE, (i64::MAX, i64::MAX)).unwrap();
        assert_eq!((topped.granted_g, topped.points), (0, 0));
    }

    #[test]
    fn the_annual_cap_trims_points_and_a_grant_of_no_points_gives_its_grams_back() {
        let q = quantified("household.units", 500, Decimal::ONE);
        let mut counters = Counters::default();
        counters.daily.insert("2026-03-01".into(), Counter::default());
        counters.annual.insert(2026, Counter::stored(900, 0));
        // 100 points are left of a cap of 1,000: the grams stay granted, the points are trimmed.
        let trimmed = credit(&grant((0, 0)), &q, 1_000, &mut counters).unwrap();
        assert_eq!(
            (trimmed.status, trimmed.granted_g, trimmed.points),
            (Status::Credited, 500, 100)
        );
        assert_eq!(trimmed.reasons, vec![Reason::AnnualCapReached]);
        // Nothing is left: no points, and the day's grams go back for a later record to use.
        let capped = credit(&grant((0, 0)), &q, 1_000, &mut counters).unwrap();
        assert_eq!(
            (capped.status, capped.granted_g, capped.points),
            (Status::Capped, 0, 0)
        );
        assert_eq!(counters.daily["2026-03-01"].total, 500);
    }

    #[test]
    fn counters_that_were_not_read_are_refused_not_assumed_empty() {
        let q = quantified("household.units", 500, Decimal::ONE);
        let mut counters = Counters::default();
        assert!(matches!(
            credit(&grant((0, 0)), &q, 0, &mut counters),
            Err(GrantError::Unread(_))
        ));
        counters.daily.insert("2026-03-01".into(), Counter::default());
        assert!(matches!(
            credit(&grant((0, 0)), &q, 1_000, &mut counters),
            Err(GrantError::Unread(_))
        ));
        // With the annual cap off nothing is counted, read or not.
        assert_eq!(credit(&grant((0, 0)), &q, 0, &mut counters).unwrap().points, 500);
    }
}
