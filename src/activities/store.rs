//! Queries on activities.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamp};

use super::model::{EventKey, Neighbour, Reason, Status, StoredAnswer};
use crate::db::columns::columns;
use crate::db::plan::ListQuery;
use crate::db::prepared::{in_list, matching_aliased, Dynamic, Planning, Value};
use crate::db::schema::activities;
use crate::db::AnyConnection;
use crate::domain::catalog::Evidence;
use crate::methodology::requantify::Recorded;
use crate::methodology::views::MethodologyRef;

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
    pub evidence: Evidence,
    pub provider_id: Option<i64>,
    pub data: String,
    pub status: Status,
    pub reasons: String,
    pub methodology_id: Option<i64>,
    pub reduction_g: i64,
    pub granted_g: i64,
    pub points: i64,
    pub breakdown: Option<String>,
    pub transfer_id: Option<i64>,
    pub review_note: Option<String>,
    pub reviewed_by: Option<i64>,
    pub reviewed_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    /// The most specific region-parameter version in force for its region and time, when quantified.
    pub region_parameters_id: Option<i64>,
    /// The claim of its trip, when its provider named the trip (held by it unless it is rejected).
    pub claim_id: Option<String>,
}

impl ActivityRow {
    /// What re-quantifying the activity needs of it.
    pub fn recorded(&self) -> Recorded {
        Recorded {
            id: self.id,
            methodology_id: self.methodology_id,
            region_code: self.region_code.clone(),
            occurred_at: self.occurred_at,
            evidence: self.evidence,
            data: self.data.clone(),
        }
    }
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<ActivityRow>> {
    activities::table
        .find(id)
        .select(ActivityRow::as_select())
        .first(conn)
        .optional()
}

/// The live activities of any of `accounts` that started in [from, to): every neighbour a group of
/// events can overlap, in one query (each event then picks its own with [`Neighbour::overlaps`]).
pub fn neighbours_between(
    conn: &mut AnyConnection,
    accounts: &[i64],
    (from, to): (NaiveDateTime, NaiveDateTime),
    planning: Planning,
) -> QueryResult<Vec<Neighbour>> {
    let mut found = Vec::new();
    let head = Dynamic::new(
        "SELECT account_id, occurred_at, ended_at, activity_type, provider_id, status, granted_g, points \
         FROM activities WHERE occurred_at > ",
    )
    .bind(Value::Timestamp(from))
    .sql(" AND occurred_at < ")
    .bind(Value::Timestamp(to))
    .sql(" AND status <> 'rejected' AND account_id IN ");
    for query in in_list::<NeighbourColumns>(conn, head, accounts, planning) {
        found.extend(query.load_rows::<Neighbour>(conn)?);
    }
    Ok(found)
}

/// The live activities of `row`'s account that overlap it, `row` among them (what approving it must
/// honour: only the other side's records of a trip count, so its own is never one).
pub fn overlapping(conn: &mut AnyConnection, row: &ActivityRow) -> QueryResult<Vec<Neighbour>> {
    let interval = (
        row.occurred_at,
        row.ended_at.unwrap_or(row.occurred_at + super::rules::shortest()),
    );
    let started = neighbours_between(
        conn,
        &[row.account_id],
        (interval.0 - super::rules::longest(), interval.1),
        Planning::EachTime,
    )?;
    Ok(started
        .into_iter()
        .filter(|n| n.overlaps(row.account_id, interval))
        .collect())
}

type NeighbourColumns = (
    BigInt,
    Timestamp,
    Nullable<Timestamp>,
    Text,
    Nullable<BigInt>,
    Text,
    BigInt,
    BigInt,
);

type StoredColumns = (
    BigInt,
    BigInt,
    Text,
    Text,
    BigInt,
    Text,
    BigInt,
    BigInt,
    BigInt,
    Text,
    Nullable<Text>,
    Nullable<BigInt>,
    Nullable<Text>,
    Nullable<Text>,
    Nullable<Integer>,
);

/// An activity with what its answer is rebuilt from, the methodology version joined in.
#[derive(Queryable)]
struct StoredRow {
    account_id: i64,
    poster: i64,
    client_event_id: String,
    request_hash: String,
    id: i64,
    status: Status,
    reduction_g: i64,
    granted_g: i64,
    points: i64,
    reasons: String,
    breakdown: Option<String>,
    methodology_id: Option<i64>,
    methodology_type: Option<String>,
    methodology_region: Option<String>,
    methodology_version: Option<i32>,
}

columns! {
    /// An event's key as [`stored_answers`] looks it up: without its poster (see there).
    activities for EventKey<'_>, |(account_id, _poster, client_event_id)| {
        account_id: *account_id,
        client_event_id: *client_event_id,
    }
}

/// Stored answers by the owned [`EventKey`]: (request digest, answer).
pub type StoredAnswers = HashMap<(i64, i64, String), (String, StoredAnswer)>;

/// The stored (request digest, answer) of any of these events, in one query. It reads every poster's
/// record of each (account, `client_event_id`), the prefix of `activities_event`, and keys them by the
/// whole key: with the poster in the condition too, PostgreSQL factors the one value every term shares
/// (0, the app) out of the `OR` and scans all of the app's records for it.
pub fn stored_answers(
    conn: &mut AnyConnection,
    events: &[EventKey<'_>],
    planning: Planning,
) -> QueryResult<StoredAnswers> {
    let mut rows: Vec<StoredRow> = Vec::new();
    for query in matching_aliased::<StoredColumns, _, _>(
        conn,
        "a",
        activities::table,
        "SELECT a.account_id, COALESCE(a.provider_id, 0), a.client_event_id, a.request_hash, a.id, a.status, \
         a.reduction_g, a.granted_g, a.points, a.reasons, a.breakdown, \
         m.id, m.activity_type, m.region_code, m.version \
         FROM activities a LEFT JOIN methodology_versions m ON m.id = a.methodology_id",
        events,
        planning,
    ) {
        rows.extend(query.load_rows(conn)?);
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let methodology = match (
                row.methodology_id,
                row.methodology_type,
                row.methodology_region,
                row.methodology_version,
            ) {
                (Some(id), Some(activity_type), Some(region_code), Some(version)) => Some(MethodologyRef {
                    id: id.to_string(),
                    activity_type,
                    region_code,
                    version,
                }),
                _ => None,
            };
            let answer = StoredAnswer {
                id: row.id,
                status: row.status,
                reduction_g: row.reduction_g,
                granted_g: row.granted_g,
                points: row.points,
                reasons: row.reasons,
                breakdown: row.breakdown,
                methodology,
            };
            (
                (row.account_id, row.poster, row.client_event_id),
                (row.request_hash, answer),
            )
        })
        .collect())
}

/// An account's activities, newest first, below the cursor: a walk of `activities_account
/// (account_id, id)` that stops after `limit` rows, however deep the page.
pub fn list_for_account(
    conn: &mut AnyConnection,
    account_id: i64,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<ActivityRow>> {
    list_for_account_query(account_id, before, limit).load(conn)
}

/// The query [`list_for_account`] runs (its plan is tested).
pub fn list_for_account_query(
    account_id: i64,
    before: Option<i64>,
    limit: i64,
) -> impl ListQuery<ActivityRow> {
    let mut query = activities::table
        .filter(activities::account_id.eq(account_id))
        .select(ActivityRow::as_select())
        .order(activities::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(activities::id.lt(before));
    }
    query
}

/// Which flagged activities a review queue shows.
#[derive(Debug, Default)]
pub struct QueueFilter {
    /// Only these regions (`None`: every region).
    pub regions: Option<Vec<String>>,
    pub activity_type: Option<String>,
    pub reason: Option<Reason>,
}

pub fn list_flagged(
    conn: &mut AnyConnection,
    filter: &QueueFilter,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<ActivityRow>> {
    list_flagged_query(filter, before, limit).load(conn)
}

/// The query [`list_flagged`] runs (its plan is tested).
pub fn list_flagged_query(
    filter: &QueueFilter,
    before: Option<i64>,
    limit: i64,
) -> impl ListQuery<ActivityRow> {
    // Written as a literal, not a bound parameter: only a literal lets a prepared (generic) plan use the
    // partial index of flagged rows on PostgreSQL and SQLite alike. The other conditions filter what
    // that index finds (the flagged rows are few).
    let mut query = activities::table
        .filter(sql::<Bool>("activities.status = 'flagged'"))
        .select(ActivityRow::as_select())
        .order(activities::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(activities::id.lt(before));
    }
    if let Some(regions) = &filter.regions {
        query = query.filter(activities::region_code.eq_any(regions.clone()));
    }
    if let Some(activity_type) = &filter.activity_type {
        query = query.filter(activities::activity_type.eq(activity_type.clone()));
    }
    if let Some(reason) = filter.reason {
        // Reasons are stored as a JSON array of their texts: the quoted text matches that reason only.
        query = query.filter(activities::reasons.like(format!("%\"{}\"%", reason.as_str())));
    }
    query
}
