//! What a change of rules would do to stored activities: each one quantified under the current catalog
//! and under a candidate catalog (one with a draft in force), in grams and in points, tallied by region,
//! by macro-region and by the people whose result changes. Any candidate will do: a methodology draft
//! (`Catalog::with_active`), a region-parameter draft, or both.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDateTime;
use serde::Serialize;
use utoipa::ToSchema;

use super::requantify::stored_values;
use super::store;
use super::window::{self, Stored};
use crate::db::AnyConnection;
use crate::domain::catalog::{points_for, Catalog, Evidence};
use crate::domain::data_schema::DataValues;

/// The longest window a simulation reads: a year of activities of one type is what a decision needs, and
/// a bound on what one administrator's request can make the database read.
pub const WINDOW_MAX_DAYS: i64 = 366;

/// Why a simulation's window was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowError {
    #[error("must be after from")]
    Empty,
    #[error("must be at most {WINDOW_MAX_DAYS} days after from")]
    TooLong,
}

/// `Ok` for a window [`from`, `to`) a simulation may read.
pub fn check_window(from: NaiveDateTime, to: NaiveDateTime) -> Result<(), WindowError> {
    if to <= from {
        Err(WindowError::Empty)
    } else if to - from > chrono::Duration::days(WINDOW_MAX_DAYS) {
        Err(WindowError::TooLong)
    } else {
        Ok(())
    }
}

/// Which stored activities to compare: quantified ones (late posts recorded no version) that occurred in
/// [`from`, `to`).
#[derive(Debug, Clone)]
pub struct Filter {
    /// `None`: every activity type.
    pub activity_type: Option<String>,
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
    /// Only activities in this region or below it.
    pub region_code: Option<String>,
    /// Only the activities the candidate would quantify with this version (a methodology draft takes
    /// only those no nearer region's version, nor a later one, keeps). `None`: all of them.
    pub taken_by: Option<i64>,
}

/// Totals of one region code, as the activities carry it (not rolled up to its parents).
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct RegionImpact {
    pub region_code: String,
    /// `east`, `central` or `west` (none for activities placed only in the nation).
    pub macro_region: Option<String>,
    pub activities: i64,
    pub delta_g: i64,
    pub delta_points: i64,
    /// Distinct accounts with an activity here whose grams or points change.
    pub people: i64,
}

/// Totals of one macro-region (the NBS three-belt split).
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct MacroRegionImpact {
    pub macro_region: Option<String>,
    pub activities: i64,
    pub delta_g: i64,
    pub delta_points: i64,
    pub people: i64,
}

/// A simulation: the activities compared, under the rules in force now (`current_…`) and under the draft
/// (`draft_…`). Points are the whole reduction's at the region's points per gram and the evidence's
/// weight, as crediting computes them, but without daily or annual caps: what a capped account was
/// actually granted is not simulated.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Simulation {
    /// Activities compared (those the draft can quantify).
    pub activities: i64,
    /// Under the rules in force now (an activity they no longer quantify counts 0).
    pub current_total_g: i64,
    pub draft_total_g: i64,
    pub delta_g: i64,
    pub current_points: i64,
    pub draft_points: i64,
    pub delta_points: i64,
    /// Distinct accounts whose grams or points change.
    pub people: i64,
    /// Activities the draft cannot quantify (for example a field its formula needs is missing).
    pub skipped: i64,
    /// One row per region code, in code order.
    pub by_region: Vec<RegionImpact>,
    /// One row per macro-region, in name order.
    pub by_macro_region: Vec<MacroRegionImpact>,
}

/// Sums of one group of activities. Saturating: an admin-made type without bounds on its data can give
/// any `i64` grams, and a report must still answer.
#[derive(Debug, Default)]
struct Tally {
    activities: i64,
    current_g: i64,
    draft_g: i64,
    current_points: i64,
    draft_points: i64,
    people: HashSet<i64>,
}

/// One activity's grams and points under one catalog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Outcome {
    grams: i64,
    points: i64,
}

impl Tally {
    fn add(&mut self, account_id: i64, current: Outcome, draft: Outcome) {
        self.activities += 1;
        self.current_g = self.current_g.saturating_add(current.grams);
        self.draft_g = self.draft_g.saturating_add(draft.grams);
        self.current_points = self.current_points.saturating_add(current.points);
        self.draft_points = self.draft_points.saturating_add(draft.points);
        if current != draft {
            self.people.insert(account_id);
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.activities += other.activities;
        self.current_g = self.current_g.saturating_add(other.current_g);
        self.draft_g = self.draft_g.saturating_add(other.draft_g);
        self.current_points = self.current_points.saturating_add(other.current_points);
        self.draft_points = self.draft_points.saturating_add(other.draft_points);
        self.people.extend(&other.people);
    }

    fn delta_g(&self) -> i64 {
        self.draft_g.saturating_sub(self.current_g)
    }

    fn delta_points(&self) -> i64 {
        self.draft_points.saturating_sub(self.current_points)
    }

    fn people(&self) -> i64 {
        i64::try_from(self.people.len()).unwrap_or(i64::MAX)
    }
}

/// The activity's grams and points under `catalog`: the version it has in force then and there, the
/// region's points per gram and the evidence's weight; `None` when it quantifies nothing.
fn outcome(
    catalog: &Catalog,
    activity_type: &str,
    row: &Stored,
    values: &DataValues,
    evidence: Evidence,
) -> Option<Outcome> {
    let version = catalog
        .version_in_force(activity_type, &row.region_code, row.occurred_at)
        .ok()?;
    let quantity = catalog
        .quantify(version, &row.region_code, row.occurred_at, values, false)
        .ok()?;
    let points = points_for(
        quantity.reduction_g,
        quantity.points_per_gram,
        version.weights.weight(evidence),
    )
    .ok()?;
    Some(Outcome {
        grams: quantity.reduction_g,
        points,
    })
}

/// The running comparison: totals per region code and who changed, and what the candidate could not
/// quantify.
struct Comparison<'c> {
    current: &'c Catalog,
    candidate: &'c Catalog,
    filter: &'c Filter,
    by_region: BTreeMap<String, Tally>,
    skipped: i64,
}

impl Comparison<'_> {
    fn consider(&mut self, activity_type: &str, row: &Stored) {
        let (region, at) = (row.region_code.as_str(), row.occurred_at);
        if let Some(within) = &self.filter.region_code {
            if !self.current.is_within(region, within) {
                return;
            }
        }
        if let Some(id) = self.filter.taken_by {
            let taken = self
                .candidate
                .version_in_force(activity_type, region, at)
                .is_ok_and(|v| v.id == id);
            if !taken {
                return;
            }
        }
        let values = stored_values(&row.data);
        let Some(draft) = outcome(self.candidate, activity_type, row, &values, row.evidence) else {
            self.skipped += 1;
            return;
        };
        let current = outcome(self.current, activity_type, row, &values, row.evidence).unwrap_or_default();
        let tally = match self.by_region.get_mut(region) {
            Some(tally) => tally,
            None => self.by_region.entry(region.to_string()).or_default(),
        };
        tally.add(row.account_id, current, draft);
    }
}

/// Compares stored activities under `current` and `candidate`, reading them in keyset pages (constant
/// memory but for the sets of people). Run it in a snapshot so every page sees the same activities.
pub fn compare(
    conn: &mut AnyConnection,
    current: &Catalog,
    candidate: &Catalog,
    filter: &Filter,
) -> diesel::QueryResult<Simulation> {
    let mut comparison = Comparison {
        current,
        candidate,
        filter,
        by_region: BTreeMap::new(),
        skipped: 0,
    };
    if filter.from < filter.to {
        let types = match &filter.activity_type {
            Some(code) => vec![code.clone()],
            None => store::all_activity_types(conn)?
                .into_iter()
                .map(|t| t.code)
                .collect(),
        };
        for activity_type in &types {
            window::for_each(conn, activity_type, filter.from, filter.to, |row| {
                comparison.consider(activity_type, row)
            })?;
        }
    }
    let macro_regions: HashMap<String, Option<String>> = store::all_regions(conn)?
        .into_iter()
        .map(|r| (r.code, r.macro_region))
        .collect();
    Ok(summarize(comparison.by_region, comparison.skipped, |code| {
        current
            .lineage(code)
            .find_map(|r| macro_regions.get(&r.code).cloned().flatten())
    }))
}

/// The answer from the totals per region code; `macro_region_of` places a region code in its
/// macro-region.
fn summarize(
    by_region: BTreeMap<String, Tally>,
    skipped: i64,
    macro_region_of: impl Fn(&str) -> Option<String>,
) -> Simulation {
    let mut all = Tally::default();
    let mut by_macro: BTreeMap<Option<String>, Tally> = BTreeMap::new();
    let mut regions = Vec::with_capacity(by_region.len());
    for (code, tally) in by_region {
        let macro_region = macro_region_of(&code);
        all.merge(&tally);
        by_macro.entry(macro_region.clone()).or_default().merge(&tally);
        regions.push(RegionImpact {
            region_code: code,
            macro_region,
            activities: tally.activities,
            delta_g: tally.delta_g(),
            delta_points: tally.delta_points(),
            people: tally.people(),
        });
    }
    Simulation {
        activities: all.activities,
        current_total_g: all.current_g,
        draft_total_g: all.draft_g,
        delta_g: all.delta_g(),
        current_points: all.current_points,
        draft_points: all.draft_points,
        delta_points: all.delta_points(),
        people: all.people(),
        skipped,
        by_region: regions,
        by_macro_region: by_macro
            .into_iter()
            .map(|(macro_region, tally)| MacroRegionImpact {
                macro_region,
                activities: tally.activities,
                delta_g: tally.delta_g(),
                delta_points: tally.delta_points(),
                people: tally.people(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_forward_and_at_most_a_year_long() {
        let at = |days: i64| chrono::DateTime::UNIX_EPOCH.naive_utc() + chrono::Duration::days(days);
        assert_eq!(check_window(at(0), at(366)), Ok(()));
        assert_eq!(check_window(at(0), at(367)), Err(WindowError::TooLong));
        assert_eq!(check_window(at(5), at(5)), Err(WindowError::Empty));
        assert_eq!(check_window(at(5), at(4)), Err(WindowError::Empty));
    }

    fn o(grams: i64, points: i64) -> Outcome {
        Outcome { grams, points }
    }

    #[test]
    fn people_count_once_and_only_when_their_result_changes() {
        let mut shenzhen = Tally::default();
        shenzhen.add(1, o(100, 100), o(120, 120));
        shenzhen.add(1, o(100, 100), o(120, 120));
        shenzhen.add(2, o(50, 50), o(50, 50));
        let mut guangzhou = Tally::default();
        guangzhou.add(1, o(10, 5), o(10, 6));
        guangzhou.add(3, o(10, 5), o(12, 6));
        let mut wuhan = Tally::default();
        wuhan.add(4, o(0, 0), o(70, 35));
        let by_region = BTreeMap::from([
            ("440300".to_string(), shenzhen),
            ("440100".to_string(), guangzhou),
            ("420100".to_string(), wuhan),
        ]);
        let sim = summarize(by_region, 2, |code| {
            Some(if code.starts_with("44") { "east" } else { "central" }.to_string())
        });
        assert_eq!(
            (
                sim.activities,
                sim.current_total_g,
                sim.draft_total_g,
                sim.delta_g
            ),
            (6, 270, 382, 112)
        );
        assert_eq!(
            (sim.current_points, sim.draft_points, sim.delta_points),
            (260, 337, 77)
        );
        // Account 1 changed in two cities, account 2 not at all.
        assert_eq!((sim.people, sim.skipped), (3, 2));
        let rows: Vec<_> = sim
            .by_region
            .iter()
            .map(|r| {
                (
                    r.region_code.as_str(),
                    r.activities,
                    r.delta_g,
                    r.delta_points,
                    r.people,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("420100", 1, 70, 35, 1),
                ("440100", 2, 2, 2, 2),
                ("440300", 3, 40, 40, 1)
            ]
        );
        assert_eq!(
            sim.by_macro_region,
            [
                MacroRegionImpact {
                    macro_region: Some("central".into()),
                    activities: 1,
                    delta_g: 70,
                    delta_points: 35,
                    people: 1
                },
                MacroRegionImpact {
                    macro_region: Some("east".into()),
                    activities: 5,
                    delta_g: 42,
                    delta_points: 42,
                    people: 2
                },
            ]
        );
    }

    #[test]
    fn sums_saturate_rather_than_wrap() {
        let mut t = Tally::default();
        t.add(1, o(i64::MAX, 0), o(i64::MAX, 0));
        t.add(1, o(i64::MAX, 0), o(-5, 0));
        assert_eq!((t.current_g, t.draft_g), (i64::MAX, i64::MAX - 5));
        assert_eq!(t.delta_g(), -5);
    }
}
