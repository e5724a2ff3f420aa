//! The rollups behind the statistics, written in the transaction that credits: the ingest writer's group
//! commit (one set of statements per group, whatever its size) and a review approval. A rollup therefore
//! never disagrees with the activities it sums, and a crash keeps or loses both.
//!
//! Per (Asia/Shanghai day, region, activity type) and per (month, region, type): the sums of what was
//! granted, and the set of accounts that had a counted activity (distinct counts are not additive, so they
//! are counted from these sets). Rows are written in key order, so two writers (two instances, or the
//! ingest writer and a review) never wait on each other in a cycle.

use std::collections::{BTreeMap, BTreeSet};

use diesel::QueryResult;

use crate::db::columns::columns;
use crate::db::prepared::{add_rows, insert_new_rows};
use crate::db::schema::{stats_day_accounts, stats_days, stats_month_accounts, stats_months};
use crate::db::AnyConnection;

/// One counted activity (stored credited or capped), as the rollups see it.
#[derive(Debug, Clone, Copy)]
pub struct Counted<'a> {
    pub account_id: i64,
    /// `YYYY-MM-DD`, Asia/Shanghai: the activity's `local_day`.
    pub local_day: &'a str,
    pub region_code: &'a str,
    pub activity_type: &'a str,
    pub granted_g: i64,
    pub reduction_g: i64,
    pub points: i64,
}

/// What a rollup row adds up.
#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    granted_g: i64,
    reduction_g: i64,
    points: i64,
    activities: i64,
}

impl Sums {
    fn add(&mut self, c: &Counted<'_>) -> QueryResult<()> {
        let overflow = || diesel::result::Error::QueryBuilderError("a statistics sum overflows".into());
        self.granted_g = self.granted_g.checked_add(c.granted_g).ok_or_else(overflow)?;
        self.reduction_g = self.reduction_g.checked_add(c.reduction_g).ok_or_else(overflow)?;
        self.points = self.points.checked_add(c.points).ok_or_else(overflow)?;
        self.activities = self.activities.checked_add(1).ok_or_else(overflow)?;
        Ok(())
    }
}

/// A rollup row's key: (period, region, activity type); the period is a day or a month.
type Key<'a> = (&'a str, &'a str, &'a str);
type SumRow<'a> = (&'a Key<'a>, &'a Sums);
type AccountRow<'a> = (&'a Key<'a>, i64);

columns! {
    stats_days for Key<'_>, |(local_day, region_code, activity_type)| {
        local_day: *local_day,
        region_code: *region_code,
        activity_type: *activity_type,
    }
}

columns! {
    stats_days for SumRow<'_>, |((local_day, region_code, activity_type), sums)| {
        local_day: *local_day,
        region_code: *region_code,
        activity_type: *activity_type,
        granted_g: sums.granted_g,
        reduction_g: sums.reduction_g,
        points: sums.points,
        activities: sums.activities,
    }
}

columns! {
    stats_months for Key<'_>, |(month, region_code, activity_type)| {
        month: *month,
        region_code: *region_code,
        activity_type: *activity_type,
    }
}

columns! {
    stats_months for SumRow<'_>, |((month, region_code, activity_type), sums)| {
        month: *month,
        region_code: *region_code,
        activity_type: *activity_type,
        granted_g: sums.granted_g,
        reduction_g: sums.reduction_g,
        points: sums.points,
        activities: sums.activities,
    }
}

columns! {
    stats_day_accounts for AccountRow<'_>, |((local_day, region_code, activity_type), account_id)| {
        local_day: *local_day,
        region_code: *region_code,
        activity_type: *activity_type,
        account_id: *account_id,
    }
}

columns! {
    stats_month_accounts for AccountRow<'_>, |((month, region_code, activity_type), account_id)| {
        month: *month,
        region_code: *region_code,
        activity_type: *activity_type,
        account_id: *account_id,
    }
}

/// A set of (key, account) as rows to insert.
fn present<'s>(set: &'s BTreeSet<(Key<'s>, i64)>) -> Vec<AccountRow<'s>> {
    set.iter().map(|(key, account)| (key, *account)).collect()
}

/// The month (`YYYY-MM`) of a local day (`YYYY-MM-DD`).
pub fn month_of(local_day: &str) -> &str {
    local_day.get(..7).unwrap_or(local_day)
}

/// Adds `counted` to the rollups, inside the caller's transaction.
pub fn record(conn: &mut AnyConnection, counted: &[Counted<'_>]) -> QueryResult<()> {
    if counted.is_empty() {
        return Ok(());
    }
    let mut days: BTreeMap<Key<'_>, Sums> = BTreeMap::new();
    let mut months: BTreeMap<Key<'_>, Sums> = BTreeMap::new();
    let mut day_accounts: BTreeSet<(Key<'_>, i64)> = BTreeSet::new();
    let mut month_accounts: BTreeSet<(Key<'_>, i64)> = BTreeSet::new();
    for c in counted {
        let day = (c.local_day, c.region_code, c.activity_type);
        let month = (month_of(c.local_day), c.region_code, c.activity_type);
        days.entry(day).or_default().add(c)?;
        months.entry(month).or_default().add(c)?;
        day_accounts.insert((day, c.account_id));
        month_accounts.insert((month, c.account_id));
    }
    let day_rows: Vec<SumRow<'_>> = days.iter().collect();
    let month_rows: Vec<SumRow<'_>> = months.iter().collect();
    add_rows::<Key<'_>, _, _>(conn, stats_days::table, &day_rows)?;
    add_rows::<Key<'_>, _, _>(conn, stats_months::table, &month_rows)?;
    insert_new_rows(conn, stats_day_accounts::table, &present(&day_accounts))?;
    insert_new_rows(conn, stats_month_accounts::table, &present(&month_accounts))?;
    Ok(())
}
