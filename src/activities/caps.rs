//! Daily and annual caps, enforced by the database row itself.
//!
//! The grant is computed inside the UPDATE's SET list, where every expression sees the row as it was
//! (PostgreSQL's RETURNING only sees new values), and the row lock serializes concurrent grants on any
//! number of instances: no request can be granted grams another one already took.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};

use crate::db::{AnyConnection, Backend};

#[derive(QueryableByName)]
struct Granted {
    #[diesel(sql_type = BigInt)]
    granted: i64,
}

/// Numbered parameters for the backend. SQLite reads `$4` as a *named* parameter numbered by first
/// appearance, not as the fourth; `?4` is its positional form.
fn numbered(conn: &AnyConnection, sql: &str) -> String {
    match conn.backend() {
        Backend::Postgres => sql.to_string(),
        Backend::Sqlite => sql.replace('$', "?"),
    }
}

/// `LEAST`/`GREATEST` on PostgreSQL, `MIN`/`MAX` on SQLite.
fn min_max(conn: &AnyConnection) -> (&'static str, &'static str) {
    match conn.backend() {
        Backend::Postgres => ("LEAST", "GREATEST"),
        Backend::Sqlite => ("MIN", "MAX"),
    }
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
    let cap = cap.unwrap_or(i64::MAX / 4);
    diesel::sql_query(
        "INSERT INTO daily_grants (account_id, activity_type, local_day, granted_g, last_grant_g) \
         VALUES ($1, $2, $3, 0, 0) ON CONFLICT DO NOTHING",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<Text, _>(activity_type)
    .bind::<Text, _>(local_day)
    .execute(conn)?;
    let (least, greatest) = min_max(conn);
    let grant = format!("{least}($4, {greatest}($5 - granted_g, 0))");
    let sql = format!(
        "UPDATE daily_grants SET last_grant_g = {grant}, granted_g = granted_g + {grant} \
         WHERE account_id = $1 AND activity_type = $2 AND local_day = $3 RETURNING last_grant_g AS granted"
    );
    let row: Granted = diesel::sql_query(numbered(conn, &sql))
        .bind::<BigInt, _>(account_id)
        .bind::<Text, _>(activity_type)
        .bind::<Text, _>(local_day)
        .bind::<BigInt, _>(want)
        .bind::<BigInt, _>(cap)
        .get_result(conn)?;
    Ok(row.granted)
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
    diesel::sql_query(
        "INSERT INTO annual_points (account_id, year, points, last_grant) VALUES ($1, $2, 0, 0) ON CONFLICT DO NOTHING",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<Integer, _>(year)
    .execute(conn)?;
    let (least, greatest) = min_max(conn);
    let grant = format!("{least}($3, {greatest}($4 - points, 0))");
    let sql = format!(
        "UPDATE annual_points SET last_grant = {grant}, points = points + {grant} \
         WHERE account_id = $1 AND year = $2 RETURNING last_grant AS granted"
    );
    let row: Granted = diesel::sql_query(numbered(conn, &sql))
        .bind::<BigInt, _>(account_id)
        .bind::<Integer, _>(year)
        .bind::<BigInt, _>(want)
        .bind::<BigInt, _>(cap)
        .get_result(conn)?;
    Ok(row.granted)
}
