//! Retirement rows.

use chrono::{Datelike, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::retirements;
use crate::db::AnyConnection;
use crate::domain::catalog::china;

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = retirements)]
pub struct RetirementRow {
    pub id: i64,
    /// Set in the transaction that creates the row, once its id is known.
    pub serial: Option<String>,
    pub account_id: i64,
    pub transfer_id: Option<i64>,
    pub points: i64,
    pub reduction_g: i64,
    pub beneficiary: String,
    pub reason: String,
    pub period_from: Option<String>,
    pub period_to: Option<String>,
    pub retired_at: NaiveDateTime,
}

/// What a retirement is asked for, checked.
#[derive(Debug, Clone)]
pub struct NewRetirement {
    pub account_id: i64,
    pub points: i64,
    pub beneficiary: String,
    pub reason: String,
    pub period_from: Option<String>,
    pub period_to: Option<String>,
}

/// The serial of retirement `id` made at `at`: `TH-R-{Asia/Shanghai year}-{id, 8 digits}`, unique because
/// the id is.
pub fn serial(id: i64, at: NaiveDateTime) -> String {
    let year = at.and_utc().with_timezone(&china()).year();
    format!("TH-R-{year}-{id:08}")
}

/// Inserts the row, without its transfer and grams yet; returns its id.
pub fn insert(conn: &mut AnyConnection, new: &NewRetirement, at: NaiveDateTime) -> QueryResult<i64> {
    diesel::insert_into(retirements::table)
        .values((
            retirements::account_id.eq(new.account_id),
            retirements::points.eq(new.points),
            retirements::reduction_g.eq(0),
            retirements::beneficiary.eq(&new.beneficiary),
            retirements::reason.eq(&new.reason),
            retirements::period_from.eq(&new.period_from),
            retirements::period_to.eq(&new.period_to),
            retirements::retired_at.eq(at),
        ))
        .returning(retirements::id)
        .get_result(conn)
}

/// Completes row `id` with its serial, transfer and grams.
pub fn complete(
    conn: &mut AnyConnection,
    id: i64,
    serial: &str,
    transfer_id: i64,
    reduction_g: i64,
) -> QueryResult<usize> {
    diesel::update(retirements::table.find(id))
        .set((
            retirements::serial.eq(serial),
            retirements::transfer_id.eq(transfer_id),
            retirements::reduction_g.eq(reduction_g),
        ))
        .execute(conn)
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<RetirementRow>> {
    retirements::table
        .find(id)
        .filter(retirements::transfer_id.is_not_null())
        .select(RetirementRow::as_select())
        .first(conn)
        .optional()
}

/// Up to `limit` retirements with ids below `before`, newest first (the primary key's order).
pub fn page(conn: &mut AnyConnection, before: Option<i64>, limit: i64) -> QueryResult<Vec<RetirementRow>> {
    let mut query = retirements::table
        .filter(retirements::transfer_id.is_not_null())
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(retirements::id.lt(before));
    }
    query
        .order(retirements::id.desc())
        .limit(limit)
        .select(RetirementRow::as_select())
        .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serial_names_the_local_year_of_its_retirement() {
        let new_year_in_china = chrono::NaiveDate::from_ymd_opt(2026, 12, 31)
            .unwrap()
            .and_hms_opt(16, 0, 0)
            .unwrap();
        assert_eq!(serial(42, new_year_in_china), "TH-R-2027-00000042");
        assert_eq!(serial(123_456_789, new_year_in_china), "TH-R-2027-123456789");
    }
}
