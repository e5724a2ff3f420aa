//! Reading the quantified activities of a type that occurred in a time window, page by page.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::config::MOST_FUTURE_SKEW_SECS;
use crate::db::schema::activities;
use crate::db::AnyConnection;
use crate::domain::catalog::Evidence;

/// Rows per page: large enough that a page's query costs little beside its rows, small enough that a
/// window of millions is read in constant memory.
pub const PAGE_ROWS: i64 = 5_000;

/// What comparing an activity under two catalogs needs of it, and its place in the index.
#[derive(Debug, Clone, Queryable)]
pub struct Stored {
    pub id: i64,
    pub account_id: i64,
    pub region_code: String,
    pub occurred_at: NaiveDateTime,
    pub evidence: Evidence,
    /// The request's `data`, as stored (JSON).
    pub data: String,
    pub created_at: NaiveDateTime,
}

/// Calls `each` on every quantified activity of `activity_type` that occurred in [`from`, `to`).
///
/// Read through the index of the type's activities by arrival (`activity_type, created_at, id,
/// occurred_at`), which every insert appends to: no activity is stored before it occurred, beyond the
/// clock skew allowed, so those of the window arrived after `from - MOST_FUTURE_SKEW_SECS`; `occurred_at`
/// is tested on the index's entries. (Late posts arrive any time after, so only
/// the lower bound is known: a window far in the past reads every later arrival of the type's index.)
/// Pages follow the index by (`created_at`, `id`), each starting where the last one ended.
pub fn for_each(
    conn: &mut AnyConnection,
    activity_type: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
    each: impl FnMut(&Stored),
) -> QueryResult<()> {
    for_each_in_pages(conn, activity_type, from, to, PAGE_ROWS, each)
}

/// [`for_each`], `page_rows` at a time.
pub fn for_each_in_pages(
    conn: &mut AnyConnection,
    activity_type: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
    page_rows: i64,
    mut each: impl FnMut(&Stored),
) -> QueryResult<()> {
    let mut after: (NaiveDateTime, i64) = (from - chrono::Duration::seconds(MOST_FUTURE_SKEW_SECS), 0);
    loop {
        let (arrived, id) = after;
        let page: Vec<Stored> = activities::table
            .filter(activities::activity_type.eq(activity_type))
            // The bound the index can seek to, then the exact keyset position.
            .filter(activities::created_at.ge(arrived))
            .filter(activities::created_at.gt(arrived).or(activities::id.gt(id)))
            .filter(activities::occurred_at.ge(from))
            .filter(activities::occurred_at.lt(to))
            .filter(activities::methodology_id.is_not_null())
            .select((
                activities::id,
                activities::account_id,
                activities::region_code,
                activities::occurred_at,
                activities::evidence,
                activities::data,
                activities::created_at,
            ))
            .order((activities::created_at, activities::id))
            .limit(page_rows)
            .load(conn)?;
        page.iter().for_each(&mut each);
        match page.last() {
            Some(last) if page.len() as i64 == page_rows => after = (last.created_at, last.id),
            _ => return Ok(()),
        }
    }
}
