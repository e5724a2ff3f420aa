//! A person's green profile for one quarter: the grams granted, the tier they fall in, and a score from
//! 0 to 100 made of named factors, each shown with its value, its weight (the most it can add) and what it
//! added, so a person sees why. Integer arithmetic throughout; shares are shown as decimals.
//!
//! score = weeks_active + verified_evidence_share + clean_record, where
//! - weeks_active adds 40 × (weeks of the quarter with an accepted activity) / 13,
//! - verified_evidence_share adds 40 × (accepted activities with operator or trace evidence) / accepted,
//! - clean_record adds 20 × accepted / (accepted + flagged + rejected), and shows flags + rejections,
//!
//! each rounded down; a quarter with no activity scores 0. A quarter's weeks are the 7-day blocks from its
//! first day, the last block taking the one or two days past the 13th week.

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

/// 7-day blocks counted in a quarter (90 to 92 days).
pub const WEEKS_PER_QUARTER: i64 = 13;
const WEEKS_WEIGHT: i64 = 40;
const EVIDENCE_WEIGHT: i64 = 40;
const CLEAN_WEIGHT: i64 = 20;

/// A calendar quarter of the Asia/Shanghai calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quarter {
    pub year: i32,
    /// 1 to 4.
    pub number: u32,
}

impl Quarter {
    pub fn of(day: NaiveDate) -> Quarter {
        Quarter {
            year: day.year(),
            number: (day.month() - 1) / 3 + 1,
        }
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, (self.number - 1) * 3 + 1, 1).unwrap_or(NaiveDate::MIN)
    }

    pub fn last_day(self) -> NaiveDate {
        let next = if self.number == 4 {
            NaiveDate::from_ymd_opt(self.year + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(self.year, self.number * 3 + 1, 1)
        };
        next.and_then(|d| d.pred_opt()).unwrap_or(NaiveDate::MAX)
    }

    /// `2026-Q4`.
    pub fn label(self) -> String {
        format!("{}-Q{}", self.year, self.number)
    }

    /// The week (0 to 12) of the quarter `day` falls in.
    pub fn week_of(self, day: NaiveDate) -> i64 {
        ((day - self.first_day()).num_days() / 7).clamp(0, WEEKS_PER_QUARTER - 1)
    }
}

crate::text_enum! {
    /// The tier of a quarter's granted grams.
    pub enum Tier {
        Light = "light",
        Medium = "medium",
        Deep = "deep",
    }
}

/// Where the tiers start, in grams granted in a quarter: light below `medium_from_g`, deep above
/// `deep_above_g`, medium from one to the other (both included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Thresholds {
    pub medium_from_g: i64,
    pub deep_above_g: i64,
}

impl Thresholds {
    /// The platform's: 50 kg and 100 kg a quarter, as rural banks grade their customers.
    pub const PLATFORM: Thresholds = Thresholds {
        medium_from_g: 50_000,
        deep_above_g: 100_000,
    };

    /// Thresholds a partner may publish: positive, in order, and below 10 t a quarter.
    pub fn new(medium_from_g: i64, deep_above_g: i64) -> Option<Thresholds> {
        const MOST_G: i64 = 10_000_000;
        (0 < medium_from_g && medium_from_g <= deep_above_g && deep_above_g <= MOST_G).then_some(Thresholds {
            medium_from_g,
            deep_above_g,
        })
    }

    pub fn tier(self, granted_g: i64) -> Tier {
        if granted_g < self.medium_from_g {
            Tier::Light
        } else if granted_g <= self.deep_above_g {
            Tier::Medium
        } else {
            Tier::Deep
        }
    }
}

/// A quarter's counts, as the rollups hold them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuarterCounts {
    pub granted_g: i64,
    pub weeks_active: i64,
    pub accepted: i64,
    pub verified: i64,
    pub flagged: i64,
    pub rejected: i64,
}

/// One part of the score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Factor {
    /// `weeks_active`, `verified_evidence_share` or `clean_record`.
    pub name: &'static str,
    /// The measure, as a decimal: weeks, a share from 0 to 1 (two places), or a count of flags and
    /// rejections.
    pub value: String,
    /// The most this factor adds to the score.
    pub weight: i64,
    /// What it added.
    pub points: i64,
}

/// `numerator × weight / denominator`, rounded down; 0 when the denominator is 0.
fn part(numerator: i64, denominator: i64, weight: i64) -> i64 {
    if denominator <= 0 {
        return 0;
    }
    (i128::from(numerator.clamp(0, denominator)) * i128::from(weight) / i128::from(denominator)) as i64
}

/// `n / d` to two places (0 when `d` is 0).
fn share(n: i64, d: i64) -> String {
    if d <= 0 {
        return "0.00".into();
    }
    (Decimal::from(n) / Decimal::from(d)).round_dp(2).to_string()
}

/// The score's factors; the score is the sum of their points.
pub fn factors(c: &QuarterCounts) -> Vec<Factor> {
    let judged = c.accepted.saturating_add(c.flagged).saturating_add(c.rejected);
    vec![
        Factor {
            name: "weeks_active",
            value: c.weeks_active.to_string(),
            weight: WEEKS_WEIGHT,
            points: part(c.weeks_active, WEEKS_PER_QUARTER, WEEKS_WEIGHT),
        },
        Factor {
            name: "verified_evidence_share",
            value: share(c.verified, c.accepted),
            weight: EVIDENCE_WEIGHT,
            points: part(c.verified, c.accepted, EVIDENCE_WEIGHT),
        },
        Factor {
            name: "clean_record",
            value: c.flagged.saturating_add(c.rejected).to_string(),
            weight: CLEAN_WEIGHT,
            points: part(c.accepted, judged, CLEAN_WEIGHT),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn quarters_run_from_their_first_to_their_last_day() {
        let q = Quarter::of(day("2026-12-07"));
        assert_eq!(
            (q.label(), q.first_day(), q.last_day()),
            ("2026-Q4".into(), day("2026-10-01"), day("2026-12-31"))
        );
        let q = Quarter::of(day("2026-02-28"));
        assert_eq!(
            (q.first_day(), q.last_day()),
            (day("2026-01-01"), day("2026-03-31"))
        );
        assert_eq!(q.week_of(day("2026-01-07")), 0);
        assert_eq!(q.week_of(day("2026-01-08")), 1);
        assert_eq!(
            q.week_of(day("2026-03-31")),
            12,
            "the last days join the 13th week"
        );
    }

    #[test]
    fn tiers_follow_the_thresholds_both_included_in_medium() {
        let t = Thresholds::PLATFORM;
        assert_eq!(t.tier(49_999), Tier::Light);
        assert_eq!(t.tier(50_000), Tier::Medium);
        assert_eq!(t.tier(100_000), Tier::Medium);
        assert_eq!(t.tier(100_001), Tier::Deep);
        assert!(Thresholds::new(0, 10).is_none());
        assert!(Thresholds::new(20, 10).is_none());
        assert_eq!(Thresholds::new(10, 20).unwrap().tier(15), Tier::Medium);
    }

    #[test]
    fn the_score_is_the_sum_of_its_factors_points() {
        let c = QuarterCounts {
            granted_g: 1,
            weeks_active: 13,
            accepted: 4,
            verified: 3,
            flagged: 1,
            rejected: 0,
        };
        let f = factors(&c);
        let points: Vec<i64> = f.iter().map(|f| f.points).collect();
        assert_eq!(points, vec![40, 30, 16]);
        assert_eq!(f[1].value, "0.75");
        assert_eq!(f[2].value, "1");
        assert!(factors(&QuarterCounts::default()).iter().all(|f| f.points == 0));
    }
}
