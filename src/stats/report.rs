//! The statistics of a window, read from the rollups (`rollup`) as `window::plan` splits it: sums from
//! the daily and monthly sums, exact distinct accounts from the daily and monthly sets of accounts, and
//! the cut days from the activities, found through that day's set of accounts (each account's activities
//! by its `(account_id, occurred_at)` index), so no index is added to the activities for it. Everything is
//! read in one snapshot.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde::Serialize;
use utoipa::ToSchema;

use super::window::{self, Plan};
use crate::db::prepared::{Dynamic, Planning, Value};
use crate::db::schema::{activity_types, regions};
use crate::db::{self, AnyConnection, Tx};

crate::text_enum! {
    /// What the rows of a statistics answer are.
    pub enum GroupBy {
        /// East, central and west (the NBS three-belt split of the study).
        MacroRegion = "macro_region",
        /// The NBS four regions (east, central, west, northeast).
        NbsRegion = "nbs_region",
        Province = "province",
        City = "city",
        ActivityType = "activity_type",
        /// Asia/Shanghai days.
        Day = "day",
        /// Asia/Shanghai months.
        Month = "month",
    }
}

/// What was granted in a group: counted activities are those stored credited or capped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Totals {
    pub granted_g: i64,
    pub reduction_g: i64,
    pub points: i64,
    pub activities: i64,
    /// Distinct accounts with a counted activity in the window (and the group): an exact count.
    pub active_accounts: i64,
}

/// One row of a statistics answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Item {
    /// The group: a macro- or NBS region (`east`, …), a region code, an activity type, a day
    /// (`YYYY-MM-DD`) or a month (`YYYY-MM`).
    pub key: String,
    /// Its Chinese name (the key itself for days and months).
    pub name: String,
    #[serde(flatten)]
    pub totals: Totals,
    /// Residents at the 2020 census (provinces and macro-regions, inside the region filter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub population: Option<i64>,
    /// `granted_g / population` as a decimal string, the exact quotient's digits to 20 places.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "0.00012345678901234567")]
    pub per_capita_g: Option<String>,
}

/// The statistics of a window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Reductions {
    pub group_by: GroupBy,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// When the answer was read: every credit committed before it is in it.
    pub as_of: DateTime<Utc>,
    pub items: Vec<Item>,
    /// The whole window and region filter (distinct accounts counted once across items).
    pub totals: Totals,
}

/// What is asked: validated (`from < to`, a bounded window, a known region).
#[derive(Debug, Clone)]
pub struct Ask {
    pub group_by: GroupBy,
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
    pub region_code: String,
}

/// A region as the statistics group it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = regions)]
pub struct Region {
    pub code: String,
    pub name: String,
    #[diesel(column_name = parent_code)]
    pub parent: Option<String>,
    pub level: String,
    pub macro_region: Option<String>,
    pub nbs_region: Option<String>,
    #[diesel(column_name = population_2020)]
    pub population: Option<i64>,
}

/// Every region by code.
pub struct Regions(HashMap<String, Region>);

impl Regions {
    pub fn load(conn: &mut AnyConnection) -> QueryResult<Regions> {
        let rows: Vec<Region> = regions::table.select(Region::as_select()).load(conn)?;
        Ok(Regions(rows.into_iter().map(|r| (r.code.clone(), r)).collect()))
    }

    pub fn get(&self, code: &str) -> Option<&Region> {
        self.0.get(code)
    }

    /// The region and its ancestors, nearest first (bounded, so a cycle cannot loop).
    fn lineage<'a>(&'a self, code: &str) -> impl Iterator<Item = &'a Region> + 'a {
        let mut next = self.0.get(code);
        std::iter::from_fn(move || {
            let current = next?;
            next = current.parent.as_deref().and_then(|p| self.0.get(p));
            Some(current)
        })
        .take(16)
    }

    /// The regions of the subtree under `root`, root included.
    fn subtree<'a>(&'a self, root: &'a str) -> impl Iterator<Item = &'a Region> + 'a {
        self.0
            .values()
            .filter(move |r| self.lineage(&r.code).any(|a| a.code == root))
    }

    /// The group of region `code` under a grouping by region (`None`: it has none, as the nation has no
    /// province).
    fn group_of(&self, by: GroupBy, code: &str) -> Option<String> {
        let mut lineage = self.lineage(code);
        match by {
            GroupBy::MacroRegion => lineage.find_map(|r| r.macro_region.clone()),
            GroupBy::NbsRegion => lineage.find_map(|r| r.nbs_region.clone()),
            GroupBy::Province => lineage.find(|r| r.level == "province").map(|r| r.code.clone()),
            GroupBy::City => lineage.find(|r| r.level == "city").map(|r| r.code.clone()),
            GroupBy::ActivityType | GroupBy::Day | GroupBy::Month => None,
        }
    }
}

fn region_grouping(by: GroupBy) -> bool {
    matches!(
        by,
        GroupBy::MacroRegion | GroupBy::NbsRegion | GroupBy::Province | GroupBy::City
    )
}

/// The Chinese name of a macro- or NBS region.
fn belt_name(key: &str) -> &str {
    match key {
        "east" => "东部",
        "central" => "中部",
        "west" => "西部",
        "northeast" => "东北",
        other => other,
    }
}

/// How rows are keyed: which regions count (all, or those of a map to their group) and the key.
struct Keying {
    /// Region code → group key; `None`: every region counts.
    regions: Option<Vec<(String, String)>>,
    /// The key's SQL over the union `s` (with `rk`, the region's group); `None`: one row for everything.
    key: Option<&'static str>,
}

impl Keying {
    fn of(regions: &Regions, ask: &Ask, for_totals: bool) -> Keying {
        let by = ask.group_by;
        let whole_nation = ask.region_code == crate::domain::catalog::NATION;
        let map = if !for_totals && region_grouping(by) {
            Some(
                regions
                    .subtree(&ask.region_code)
                    .filter_map(|r| Some((r.code.clone(), regions.group_of(by, &r.code)?)))
                    .collect(),
            )
        } else if whole_nation {
            None
        } else {
            Some(
                regions
                    .subtree(&ask.region_code)
                    .map(|r| (r.code.clone(), String::new()))
                    .collect(),
            )
        };
        let key = match by {
            _ if for_totals => None,
            GroupBy::ActivityType => Some("s.activity_type"),
            GroupBy::Day => Some("s.period"),
            GroupBy::Month => Some("substr(s.period, 1, 7)"),
            _ => Some("s.rk"),
        };
        Keying { regions: map, key }
    }
}

/// The columns each part of a window contributes, for sums or for accounts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Measure {
    Sums,
    Accounts,
}

impl Measure {
    fn columns(self, alias: &str) -> String {
        match self {
            Measure::Sums => format!(
                "{alias}granted_g, {alias}reduction_g, {alias}points, {}",
                if alias.is_empty() {
                    "activities"
                } else {
                    "1 AS activities"
                }
            ),
            Measure::Accounts => format!("{alias}account_id"),
        }
    }

    fn tables(self) -> (&'static str, &'static str) {
        match self {
            Measure::Sums => ("stats_days", "stats_months"),
            Measure::Accounts => ("stats_day_accounts", "stats_month_accounts"),
        }
    }

    fn aggregates(self) -> &'static str {
        match self {
            Measure::Sums => {
                "CAST(COALESCE(SUM(s.granted_g), 0) AS BIGINT), CAST(COALESCE(SUM(s.reduction_g), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(s.points), 0) AS BIGINT), CAST(COALESCE(SUM(s.activities), 0) AS BIGINT)"
            }
            Measure::Accounts => "COUNT(DISTINCT s.account_id), CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT)",
        }
    }
}

/// The statement reading `measure` for the window `plan`, keyed by `keying`.
fn statement<'a>(
    plan: &'a Plan,
    keying: &'a Keying,
    measure: Measure,
) -> Dynamic<'a, (Text, BigInt, BigInt, BigInt, BigInt)> {
    let mut q = Dynamic::new(format!(
        "SELECT {} AS k, {} FROM (SELECT ",
        keying.key.unwrap_or("CAST('' AS TEXT)"),
        measure.aggregates()
    ));
    // The region's group as a CASE over the few region codes (a join with a VALUES list was planned as
    // a scan of the union per region on SQLite); NULL outside the filter.
    if keying.regions.as_ref().is_some_and(Vec::is_empty) {
        q.push_sql("CAST(NULL AS TEXT) AS rk, s.* FROM (");
    } else if let Some(map) = &keying.regions {
        q.push_sql("CASE s.region_code");
        for (code, key) in map {
            q.push_sql(" WHEN ");
            q.push_bind(Value::Text(code));
            q.push_sql(" THEN ");
            q.push_bind(Value::Text(key));
        }
        q.push_sql(" ELSE NULL END AS rk, s.* FROM (");
    } else {
        q.push_sql("'' AS rk, s.* FROM (");
    }
    let (days, months) = measure.tables();
    let mut first = true;
    let mut union = |q: &mut Dynamic<'a, _>| {
        if !std::mem::take(&mut first) {
            q.push_sql(" UNION ALL ");
        }
    };
    for (a, b) in &plan.days {
        union(&mut q);
        q.push_sql(&format!(
            "SELECT region_code, activity_type, local_day AS period, {} FROM {days} \
             WHERE local_day >= ",
            measure.columns("")
        ));
        q.push_bind(Value::Text(a));
        q.push_sql(" AND local_day < ");
        q.push_bind(Value::Text(b));
    }
    if let Some((a, b)) = &plan.months {
        union(&mut q);
        q.push_sql(&format!(
            "SELECT region_code, activity_type, month AS period, {} FROM {months} WHERE month >= ",
            measure.columns("")
        ));
        q.push_bind(Value::Text(a));
        q.push_sql(" AND month < ");
        q.push_bind(Value::Text(b));
    }
    for edge in &plan.edges {
        union(&mut q);
        q.push_sql(&format!(
            "SELECT a.region_code, a.activity_type, a.local_day AS period, {} \
             FROM stats_day_accounts p JOIN activities a ON a.account_id = p.account_id \
             AND a.region_code = p.region_code AND a.activity_type = p.activity_type \
             AND a.occurred_at >= ",
            measure.columns("a.")
        ));
        q.push_bind(Value::Timestamp(edge.from));
        q.push_sql(" AND a.occurred_at < ");
        q.push_bind(Value::Timestamp(edge.to));
        q.push_sql(" WHERE p.local_day = ");
        q.push_bind(Value::Text(&edge.day));
        q.push_sql(" AND a.status IN ('credited', 'capped')");
    }
    q.push_sql(") s) s WHERE s.rk IS NOT NULL");
    if keying.key.is_some() {
        q.push_sql(" GROUP BY 1");
    }
    q.planned(Planning::EachTime)
}

/// Sums and distinct accounts per key.
fn read(conn: &mut AnyConnection, plan: &Plan, keying: &Keying) -> QueryResult<BTreeMap<String, Totals>> {
    let mut out: BTreeMap<String, Totals> = BTreeMap::new();
    for (k, granted_g, reduction_g, points, activities) in
        statement(plan, keying, Measure::Sums).load::<(String, i64, i64, i64, i64)>(conn)?
    {
        let t = out.entry(k).or_default();
        (t.granted_g, t.reduction_g, t.points, t.activities) = (granted_g, reduction_g, points, activities);
    }
    for (k, accounts, ..) in
        statement(plan, keying, Measure::Accounts).load::<(String, i64, i64, i64, i64)>(conn)?
    {
        out.entry(k).or_default().active_accounts = accounts;
    }
    Ok(out)
}

/// The statistics asked for, read in one snapshot at `now`.
pub fn reductions(conn: &mut AnyConnection, ask: &Ask, now: NaiveDateTime) -> QueryResult<Reductions> {
    db::transaction(conn, Tx::Snapshot, |conn| {
        let regions = Regions::load(conn)?;
        let plan = window::plan(ask.from, ask.to, ask.group_by != GroupBy::Day);
        let mut by_key = read(conn, &plan, &Keying::of(&regions, ask, false))?;
        let totals = read(conn, &plan, &Keying::of(&regions, ask, true))?
            .into_values()
            .next()
            .unwrap_or_default();
        let groups = groups(conn, &regions, ask)?;
        let items = groups
            .into_iter()
            .map(|(key, name)| {
                let totals = by_key.remove(&key).unwrap_or_default();
                let population = population(&regions, ask, &key);
                Item {
                    per_capita_g: population.and_then(|p| window::quotient(totals.granted_g, p)),
                    key,
                    name,
                    totals,
                    population,
                }
            })
            .collect();
        Ok(Reductions {
            group_by: ask.group_by,
            from: ask.from.and_utc(),
            to: ask.to.and_utc(),
            as_of: now.and_utc(),
            items,
            totals,
        })
    })
}

/// Every group of the window and region filter, with its name, in key order: all are listed, those
/// without activity with zeros.
fn groups(conn: &mut AnyConnection, regions: &Regions, ask: &Ask) -> QueryResult<Vec<(String, String)>> {
    let by = ask.group_by;
    let mut groups: BTreeMap<String, String> = BTreeMap::new();
    match by {
        GroupBy::ActivityType => {
            let types: Vec<(String, String)> = activity_types::table
                .select((activity_types::code, activity_types::name))
                .load(conn)?;
            groups.extend(types);
        }
        GroupBy::Day => groups.extend(
            window::local_days(ask.from, ask.to)
                .into_iter()
                .map(|d| (d.clone(), d)),
        ),
        GroupBy::Month => groups.extend(
            window::local_months(ask.from, ask.to)
                .into_iter()
                .map(|m| (m.clone(), m)),
        ),
        GroupBy::MacroRegion | GroupBy::NbsRegion => {
            for r in regions.subtree(&ask.region_code) {
                if let Some(key) = regions.group_of(by, &r.code) {
                    let name = belt_name(&key).to_string();
                    groups.insert(key, name);
                }
            }
        }
        GroupBy::Province | GroupBy::City => {
            for r in regions.subtree(&ask.region_code) {
                if let Some(key) = regions.group_of(by, &r.code) {
                    let name = regions.get(&key).map_or_else(|| key.clone(), |g| g.name.clone());
                    groups.insert(key, name);
                }
            }
        }
    }
    Ok(groups.into_iter().collect())
}

/// The 2020 census population of a province or macro-region group, within the region filter: the sum
/// over the filter's provinces in the group. `None` for other groupings, and under a filter below the
/// provinces (a city's residents are not in the census data), or where a province has no figure.
fn population(regions: &Regions, ask: &Ask, key: &str) -> Option<i64> {
    if !matches!(ask.group_by, GroupBy::Province | GroupBy::MacroRegion) {
        return None;
    }
    let filter = regions.get(&ask.region_code)?;
    if !matches!(filter.level.as_str(), "nation" | "province") {
        return None;
    }
    let mut total: i64 = 0;
    let mut any = false;
    for p in regions
        .subtree(&ask.region_code)
        .filter(|r| r.level == "province")
    {
        if regions.group_of(ask.group_by, &p.code).as_deref() == Some(key) {
            total = total.checked_add(p.population?)?;
            any = true;
        }
    }
    any.then_some(total)
}
