//! Daily and annual caps, enforced by the database row itself.
//!
//! A grant is one upsert: the first grant of a (account, type, day) inserts the counter, later ones update
//! it. The grant is computed inside the SET list, where every expression sees the row as it was, and the
//! row lock serializes concurrent grants on any number of instances: no request can be granted grams
//! another one already took. The upserts are [`Prepared`] statements, so both backends keep them
//! prepared.

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::db::prepared::{Prepared, Sql, Value};
use crate::db::AnyConnection;

// Both grants: `CASE WHEN cap − total ≥ want THEN want WHEN cap − total > 0 THEN cap − total ELSE 0 END`
// over the row as it was, in SQL both backends share (CASE rather than LEAST/MIN). A new counter starts
// from the same grant over a total of zero, computed here.

struct DailyGrant;
impl Sql for DailyGrant {
    const SQL: &'static str =
        "INSERT INTO daily_grants (account_id, activity_type, local_day, granted_g, last_grant_g) \
        VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, activity_type, local_day) DO UPDATE SET \
        last_grant_g = CASE WHEN ? - daily_grants.granted_g >= ? THEN ? \
            WHEN ? - daily_grants.granted_g > 0 THEN ? - daily_grants.granted_g ELSE 0 END, \
        granted_g = daily_grants.granted_g + CASE WHEN ? - daily_grants.granted_g >= ? THEN ? \
            WHEN ? - daily_grants.granted_g > 0 THEN ? - daily_grants.granted_g ELSE 0 END \
        RETURNING last_grant_g";
    type Returns = BigInt;
}

struct AnnualGrant;
impl Sql for AnnualGrant {
    const SQL: &'static str = "INSERT INTO annual_points (account_id, year, points, last_grant) \
        VALUES (?, ?, ?, ?) ON CONFLICT (account_id, year) DO UPDATE SET \
        last_grant = CASE WHEN ? - annual_points.points >= ? THEN ? \
            WHEN ? - annual_points.points > 0 THEN ? - annual_points.points ELSE 0 END, \
        points = annual_points.points + CASE WHEN ? - annual_points.points >= ? THEN ? \
            WHEN ? - annual_points.points > 0 THEN ? - annual_points.points ELSE 0 END \
        RETURNING last_grant";
    type Returns = BigInt;
}

/// The parameters after a counter's key: its first grant twice, then the two CASEs' cap and want.
fn amounts<'a>(want: i64, cap: i64) -> [Value<'a>; 12] {
    let first = Value::BigInt(want.min(cap).max(0));
    let (want, cap) = (Value::BigInt(want), Value::BigInt(cap));
    [first, first, cap, want, want, cap, cap, cap, want, want, cap, cap]
}

/// Takes up to `want` grams from the (account, type, day) allowance of `cap` grams (`None`: no cap, the
/// counter still records what was granted). Returns the grams granted.
pub fn grant_daily(
    conn: &mut AnyConnection,
    account_id: i64,
    activity_type: &str,
    local_day: &str,
    want: i64,
    cap: Option<i64>,
) -> QueryResult<i64> {
    let mut values = vec![
        Value::BigInt(account_id),
        Value::Text(activity_type),
        Value::Text(local_day),
    ];
    values.extend(amounts(want, cap.unwrap_or(i64::MAX / 4)));
    Prepared::<DailyGrant>::new(values).get_result(conn)
}

/// Takes up to `want` points from the account's allowance for `year` (`cap` 0 = no cap).
pub fn grant_annual(
    conn: &mut AnyConnection,
    account_id: i64,
    year: i32,
    want: i64,
    cap: i64,
) -> QueryResult<i64> {
    if cap == 0 {
        return Ok(want);
    }
    let mut values = vec![Value::BigInt(account_id), Value::Integer(year)];
    values.extend(amounts(want, cap));
    Prepared::<AnnualGrant>::new(values).get_result(conn)
}
