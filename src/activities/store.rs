//! Queries on activities.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::activities;
use crate::db::AnyConnection;

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = activities)]
pub struct ActivityRow {
    pub id: i64,
    pub account_id: i64,
    pub user_id: i64,
    pub client_event_id: String,
    pub request_hash: String,
    pub activity_type: String,
    pub region_code: String,
    pub occurred_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
    pub local_day: String,
    pub evidence: String,
    pub provider_id: Option<i64>,
    pub data: String,
    pub status: String,
    pub reasons: String,
    pub methodology_id: Option<i64>,
    pub reduction_g: i64,
    pub granted_g: i64,
    pub points: i64,
    pub breakdown: Option<String>,
    pub transfer_id: Option<i64>,
    pub response: String,
    pub review_note: Option<String>,
    pub reviewed_by: Option<i64>,
    pub reviewed_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

pub fn find_by_client_id(
    conn: &mut AnyConnection,
    account_id: i64,
    client_event_id: &str,
) -> QueryResult<Option<ActivityRow>> {
    activities::table
        .filter(activities::account_id.eq(account_id))
        .filter(activities::client_event_id.eq(client_event_id))
        .select(ActivityRow::as_select())
        .first(conn)
        .optional()
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<ActivityRow>> {
    activities::table
        .find(id)
        .select(ActivityRow::as_select())
        .first(conn)
        .optional()
}

/// The account's live (not rejected) activities whose interval overlaps [start, end).
pub fn overlapping(
    conn: &mut AnyConnection,
    account_id: i64,
    start: NaiveDateTime,
    end: NaiveDateTime,
) -> QueryResult<Vec<ActivityRow>> {
    activities::table
        .filter(activities::account_id.eq(account_id))
        .filter(activities::status.ne("rejected"))
        .filter(activities::occurred_at.lt(end))
        .filter(activities::ended_at.gt(start))
        .select(ActivityRow::as_select())
        .load(conn)
}

pub fn list_for_account(
    conn: &mut AnyConnection,
    account_id: i64,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<ActivityRow>> {
    let mut query = activities::table
        .filter(activities::account_id.eq(account_id))
        .select(ActivityRow::as_select())
        .order(activities::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(activities::id.lt(before));
    }
    query.load(conn)
}

pub fn list_flagged(
    conn: &mut AnyConnection,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<ActivityRow>> {
    let mut query = activities::table
        .filter(activities::status.eq("flagged"))
        .select(ActivityRow::as_select())
        .order(activities::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(activities::id.lt(before));
    }
    query.load(conn)
}

/// Activities of a type in [from, to), optionally limited to some regions.
pub fn in_window(
    conn: &mut AnyConnection,
    activity_type: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<ActivityRow>> {
    activities::table
        .filter(activities::activity_type.eq(activity_type))
        .filter(activities::occurred_at.ge(from))
        .filter(activities::occurred_at.lt(to))
        .filter(activities::methodology_id.is_not_null())
        .select(ActivityRow::as_select())
        .order(activities::id)
        .load(conn)
}
