//! Queries on reduction batches, the activities they hold, and the serial counters.

use chrono::NaiveDateTime;
use diesel::dsl::{exists, not};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};

use crate::activities::model::Status;
use crate::config::MOST_FUTURE_SKEW_SECS;
use crate::db::schema::{
    activities, activity_types, block_transfers, methodology_versions, reduction_batch_items as items,
    reduction_batch_retirements as retirements, reduction_batches as batches,
};
use crate::db::AnyConnection;

crate::text_enum! {
    /// Where a batch is in its life: drafted, submitted for verification, verified by a second
    /// administrator, issued as whole tonnes under serial numbers, then either sold to a buyer (its
    /// payment awaited) and settled once a second administrator confirms the payment and it is paid
    /// out, or retired for a beneficiary by a second administrator (cancelled for good, never sold).
    pub enum BatchStatus {
        Draft = "draft",
        Submitted = "submitted",
        Verified = "verified",
        Issued = "issued",
        Sold = "sold",
        Settled = "settled",
        Retired = "retired",
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = batches)]
pub struct BatchRow {
    pub id: i64,
    pub region_code: String,
    /// JSON array of type codes; `None`: every type.
    pub activity_types: Option<String>,
    pub window_from: NaiveDateTime,
    pub window_to: NaiveDateTime,
    pub status: BatchStatus,
    pub activities: i64,
    pub reduction_g: i64,
    pub created_by: i64,
    pub created_at: NaiveDateTime,
    pub submitted_by: Option<i64>,
    pub submitted_at: Option<NaiveDateTime>,
    pub verified_by: Option<i64>,
    pub verified_at: Option<NaiveDateTime>,
    pub issued_by: Option<i64>,
    pub issued_at: Option<NaiveDateTime>,
    pub tonnes: Option<i64>,
    pub serial_year: Option<i32>,
    pub serial_first: Option<i64>,
    pub buyer: Option<String>,
    pub price_fen_per_tonne: Option<i64>,
    pub proceeds_fen: Option<i64>,
    pub bank_reference: Option<String>,
    pub sold_by: Option<i64>,
    pub sold_at: Option<NaiveDateTime>,
    pub platform_fen: Option<i64>,
    pub distributed_fen: Option<i64>,
    pub platform_transfer_id: Option<i64>,
    pub settled_by: Option<i64>,
    pub settled_at: Option<NaiveDateTime>,
    /// Once retired instead of sold (read through a left join: see [`find`]).
    #[diesel(embed)]
    pub retirement: Option<BatchRetirement>,
}

/// For whom, why, by whom and when a batch was retired.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = retirements)]
pub struct BatchRetirement {
    pub batch_id: i64,
    pub beneficiary: String,
    pub reason: String,
    pub retired_by: i64,
    pub retired_at: NaiveDateTime,
}

/// Which activities a draft takes: credited ones of these regions and types that occurred in
/// [`from`, `to`).
pub struct Selection<'a> {
    /// The regions of the subtree; `None`: every region (a national batch).
    pub regions: Option<&'a [String]>,
    /// `None`: every type (read from the database in the drafting transaction, so a type created a
    /// moment ago on another instance counts too). Types are always named, so the read follows the
    /// types' index.
    pub activity_types: Option<&'a [String]>,
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
}

/// What a new batch row holds before its activities are counted.
pub struct NewBatch<'a> {
    pub region_code: &'a str,
    pub activity_types: Option<String>,
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
    pub created_by: i64,
    pub created_at: NaiveDateTime,
}

/// A batch with its retirement, if any (every read of a [`BatchRow`] joins it).
pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<BatchRow>> {
    batches::table
        .left_join(retirements::table)
        .filter(batches::id.eq(id))
        .select(BatchRow::as_select())
        .first(conn)
        .optional()
}

/// Stores an empty draft; returns its id.
pub fn insert_draft(conn: &mut AnyConnection, new: &NewBatch<'_>) -> QueryResult<i64> {
    diesel::insert_into(batches::table)
        .values((
            batches::region_code.eq(new.region_code),
            batches::activity_types.eq(&new.activity_types),
            batches::window_from.eq(new.from),
            batches::window_to.eq(new.to),
            batches::status.eq(BatchStatus::Draft),
            batches::activities.eq(0),
            batches::reduction_g.eq(0),
            batches::created_by.eq(new.created_by),
            batches::created_at.eq(new.created_at),
        ))
        .returning(batches::id)
        .get_result(conn)
}

/// Puts every activity `selection` finds that no batch holds yet into batch `batch_id`, in one
/// `INSERT … SELECT` (no row passes through the service); answers how many.
///
/// The read follows the index of the types' activities by arrival (`activity_type, created_at, id,
/// occurred_at`), as the simulation does: no activity is stored before it occurred beyond the clock skew
/// allowed, so those of the window arrived after `from - MOST_FUTURE_SKEW_SECS`.
pub fn take_activities(
    conn: &mut AnyConnection,
    batch_id: i64,
    selection: &Selection<'_>,
) -> QueryResult<usize> {
    let every_type: Vec<String>;
    let types = match selection.activity_types {
        Some(types) => types,
        None => {
            every_type = activity_types::table.select(activity_types::code).load(conn)?;
            &every_type
        }
    };
    let arrived_since = selection.from - chrono::Duration::seconds(MOST_FUTURE_SKEW_SECS);
    let mut selected = activities::table
        .filter(activities::activity_type.eq_any(types))
        .filter(activities::created_at.ge(arrived_since))
        .filter(activities::occurred_at.ge(selection.from))
        .filter(activities::occurred_at.lt(selection.to))
        .filter(activities::status.eq(Status::Credited))
        .filter(not(exists(
            items::table.filter(items::activity_id.eq(activities::id)),
        )))
        .select((
            activities::id,
            batch_id.into_sql::<BigInt>(),
            activities::granted_g,
        ))
        .into_boxed();
    if let Some(regions) = selection.regions {
        selected = selected.filter(activities::region_code.eq_any(regions));
    }
    diesel::insert_into(items::table)
        .values(selected)
        .into_columns((items::activity_id, items::batch_id, items::granted_g))
        .execute(conn)
}

/// Counts a batch's activities and sums their granted grams into its row. A sum beyond an `i64` fails
/// the statement (see [`is_overflow`]).
pub fn count_into_row(conn: &mut AnyConnection, batch_id: i64) -> QueryResult<(i64, i64)> {
    let (count, grams): (i64, i64) = items::table
        .filter(items::batch_id.eq(batch_id))
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::sql::<BigInt>("CAST(COALESCE(SUM(granted_g), 0) AS BIGINT)"),
        ))
        .first(conn)?;
    diesel::update(batches::table.find(batch_id))
        .set((batches::activities.eq(count), batches::reduction_g.eq(grams)))
        .execute(conn)?;
    Ok((count, grams))
}

/// Whether a statement failed because a sum passed the 64-bit range: PostgreSQL's cast of the numeric
/// sum, SQLite's integer `SUM`.
pub fn is_overflow(e: &diesel::result::Error) -> bool {
    match e {
        diesel::result::Error::DatabaseError(_, info) => {
            let message = info.message();
            message.contains("bigint out of range") || message.contains("integer overflow")
        }
        _ => false,
    }
}

/// Which batches a listing shows; every field left out matches all.
#[derive(Debug, Default, Clone)]
pub struct BatchFilter {
    /// The caller's scope: batches of these regions (`None`: every region).
    pub regions: Option<Vec<String>>,
    pub region_code: Option<String>,
    pub status: Option<BatchStatus>,
}

/// Newest first, below the cursor id.
pub fn list(
    conn: &mut AnyConnection,
    filter: &BatchFilter,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<BatchRow>> {
    let mut query = batches::table
        .left_join(retirements::table)
        .select(BatchRow::as_select())
        .order(batches::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(regions) = &filter.regions {
        query = query.filter(batches::region_code.eq_any(regions.clone()));
    }
    if let Some(region) = &filter.region_code {
        query = query.filter(batches::region_code.eq(region.clone()));
    }
    if let Some(status) = filter.status {
        query = query.filter(batches::status.eq(status));
    }
    if let Some(before) = before {
        query = query.filter(batches::id.lt(before));
    }
    query.load(conn)
}

/// What a step changes in a batch's row besides its status; fields left `None` stay as they are.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = batches)]
pub struct StepChanges {
    pub submitted_by: Option<i64>,
    pub submitted_at: Option<NaiveDateTime>,
    pub verified_by: Option<i64>,
    pub verified_at: Option<NaiveDateTime>,
    pub issued_by: Option<i64>,
    pub issued_at: Option<NaiveDateTime>,
    pub tonnes: Option<i64>,
    pub serial_year: Option<i32>,
    pub serial_first: Option<i64>,
    pub buyer: Option<String>,
    pub price_fen_per_tonne: Option<i64>,
    pub proceeds_fen: Option<i64>,
    pub bank_reference: Option<String>,
    pub sold_by: Option<i64>,
    pub sold_at: Option<NaiveDateTime>,
    pub platform_fen: Option<i64>,
    pub distributed_fen: Option<i64>,
    pub platform_transfer_id: Option<i64>,
    pub settled_by: Option<i64>,
    pub settled_at: Option<NaiveDateTime>,
}

/// Moves a batch from `from` to `to` with `changes`; false when it is no longer in `from`.
pub fn advance(
    conn: &mut AnyConnection,
    id: i64,
    from: BatchStatus,
    to: BatchStatus,
    changes: &StepChanges,
) -> QueryResult<bool> {
    let n = diesel::update(batches::table.find(id).filter(batches::status.eq(from)))
        .set((batches::status.eq(to), changes))
        .execute(conn)?;
    Ok(n == 1)
}

/// Records `retirement` of its batch (beside the batch's move to `retired`, in one transaction).
pub fn insert_retirement(conn: &mut AnyConnection, retirement: &BatchRetirement) -> QueryResult<()> {
    diesel::insert_into(retirements::table)
        .values(retirement)
        .execute(conn)
        .map(|_| ())
}

/// Deletes a draft and frees its activities; false when it is no longer a draft (then the caller's
/// transaction must roll back, which restores the activities).
pub fn delete_draft(conn: &mut AnyConnection, id: i64) -> QueryResult<bool> {
    diesel::delete(items::table.filter(items::batch_id.eq(id))).execute(conn)?;
    let n = diesel::delete(
        batches::table
            .find(id)
            .filter(batches::status.eq(BatchStatus::Draft)),
    )
    .execute(conn)?;
    Ok(n == 1)
}

#[derive(QueryableByName)]
struct LastSerial {
    #[diesel(sql_type = BigInt)]
    last_n: i64,
}

/// Takes the next `count` serial numbers of (region, year) and answers the first. The counter row is
/// raised in the caller's transaction: a concurrent issue in the same region and year waits for its
/// commit and continues after it, so numbers run without gaps or duplicates. `None` when the counter
/// would pass the 64-bit range.
pub fn take_serials(
    conn: &mut AnyConnection,
    region_code: &str,
    year: i32,
    count: i64,
) -> QueryResult<Option<i64>> {
    let last = diesel::sql_query(
        "INSERT INTO reduction_serials (region_code, year, last_n) VALUES ($1, $2, $3) \
         ON CONFLICT (region_code, year) DO UPDATE SET last_n = reduction_serials.last_n + excluded.last_n \
         WHERE reduction_serials.last_n <= 9223372036854775807 - excluded.last_n \
         RETURNING last_n",
    )
    .bind::<Text, _>(region_code)
    .bind::<Integer, _>(year)
    .bind::<BigInt, _>(count)
    .get_result::<LastSerial>(conn)
    .optional()?;
    Ok(last.map(|l| l.last_n - count + 1))
}

/// One line of a batch's evidence.
#[derive(Debug, Queryable)]
pub struct EvidenceRow {
    pub activity_id: i64,
    pub account_id: i64,
    pub activity_type: String,
    pub occurred_at: NaiveDateTime,
    pub methodology_id: Option<i64>,
    pub methodology_version: Option<i32>,
    pub reduction_g: i64,
    pub granted_g: i64,
    /// The sealed block holding the activity's issue transfer; `None` until it is sealed.
    pub block_height: Option<i64>,
}

/// Up to `limit` of a batch's activities after activity id `after`, in id order, with what the
/// evidence shows of each: a walk of the batch's index and a lookup by key per line.
pub fn evidence_page(
    conn: &mut AnyConnection,
    batch_id: i64,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<EvidenceRow>> {
    items::table
        .inner_join(activities::table.on(activities::id.eq(items::activity_id)))
        .left_join(
            methodology_versions::table
                .on(activities::methodology_id.eq(methodology_versions::id.nullable())),
        )
        .left_join(
            block_transfers::table.on(activities::transfer_id.eq(block_transfers::transfer_id.nullable())),
        )
        .filter(items::batch_id.eq(batch_id))
        .filter(items::activity_id.gt(after))
        .order(items::activity_id)
        .limit(limit)
        .select((
            items::activity_id,
            activities::account_id,
            activities::activity_type,
            activities::occurred_at,
            activities::methodology_id,
            methodology_versions::version.nullable(),
            activities::reduction_g,
            items::granted_g,
            block_transfers::block_height.nullable(),
        ))
        .load(conn)
}
