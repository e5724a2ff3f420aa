//! Daily and annual caps, enforced by the database row itself.
//!
//! A grant is one upsert: the first grant of a (account, type, day) inserts the counter, later ones update
//! it. The grant is computed inside the SET list, where every expression sees the row as it was, and the
//! row lock serializes concurrent grants on any number of instances: no request can be granted grams
//! another one already took. The upserts are [`Prepared`] statements, so both backends keep them
//! prepared.
//!
//! A group commit takes its grants from a [`Book`] instead: the group's counters read once, the grants
//! decided in memory, and every changed counter written back in one statement. That is sound because
//! every writer of an account's counters holds the account's row lock while it reads and writes them
//! (the group locks all its accounts first; the one-event path and the review queue lock the one).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};

use crate::db::prepared::{matching, write_rows, Prepared, Sql, Value};
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
    values.extend(amounts(want, cap.unwrap_or(UNCAPPED)));
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

/// No daily cap: the counter still records what was granted.
const UNCAPPED: i64 = i64::MAX / 4;

/// Where grants are taken from.
pub trait Allowance {
    /// Takes up to `want` grams from the (account, type, day) allowance of `cap` grams. Returns the grams
    /// granted.
    fn daily(
        &mut self,
        conn: &mut AnyConnection,
        key: (i64, &str, &str),
        want: i64,
        cap: Option<i64>,
    ) -> QueryResult<i64>;

    /// Takes up to `want` points from the account's allowance for `year` (`cap` 0 = no cap).
    fn annual(&mut self, conn: &mut AnyConnection, key: (i64, i32), want: i64, cap: i64) -> QueryResult<i64>;
}

/// The counters in the database, one atomic upsert per grant.
pub struct Counters;

impl Allowance for Counters {
    fn daily(
        &mut self,
        conn: &mut AnyConnection,
        (account_id, activity_type, local_day): (i64, &str, &str),
        want: i64,
        cap: Option<i64>,
    ) -> QueryResult<i64> {
        grant_daily(conn, account_id, activity_type, local_day, want, cap)
    }

    fn annual(
        &mut self,
        conn: &mut AnyConnection,
        (account_id, year): (i64, i32),
        want: i64,
        cap: i64,
    ) -> QueryResult<i64> {
        grant_annual(conn, account_id, year, want, cap)
    }
}

/// A counter's total and its last grant, and whether this group changed it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counter {
    total: i64,
    last: i64,
    changed: bool,
}

impl Counter {
    /// The same rule as the upserts: all of `want` if it fits, what is left otherwise.
    fn take(&mut self, want: i64, cap: i64) -> i64 {
        let left = cap - self.total;
        let granted = if left >= want { want } else { left.max(0) };
        self.total += granted;
        self.last = granted;
        self.changed = true;
        granted
    }
}

/// A group's counters, read once and written back once.
#[derive(Debug, Default)]
pub struct Book {
    daily: HashMap<(i64, String, String), Counter>,
    annual: HashMap<(i64, i32), Counter>,
}

impl Book {
    /// Reads the counters of these keys. The caller holds the accounts' row locks.
    pub fn load(
        conn: &mut AnyConnection,
        daily: &[(i64, &str, &str)],
        annual: &[(i64, i32)],
    ) -> QueryResult<Book> {
        // Every key asked for has a counter: a row not stored yet starts at zero (no one else can store
        // it meanwhile, under the account lock).
        let mut book = Book {
            daily: daily
                .iter()
                .map(|(a, t, d)| ((*a, t.to_string(), d.to_string()), Counter::default()))
                .collect(),
            annual: annual.iter().map(|k| (*k, Counter::default())).collect(),
        };
        let keys: Vec<Vec<Value<'_>>> = daily
            .iter()
            .map(|(a, t, d)| vec![Value::BigInt(*a), Value::Text(t), Value::Text(d)])
            .collect();
        for query in matching::<(BigInt, Text, Text, BigInt, BigInt)>(
            "SELECT account_id, activity_type, local_day, granted_g, last_grant_g FROM daily_grants",
            &["account_id", "activity_type", "local_day"],
            &keys,
        ) {
            for (a, t, d, total, last) in query.load::<(i64, String, String, i64, i64)>(conn)? {
                book.daily.insert(
                    (a, t, d),
                    Counter {
                        total,
                        last,
                        changed: false,
                    },
                );
            }
        }
        let keys: Vec<Vec<Value<'_>>> = annual
            .iter()
            .map(|(a, y)| vec![Value::BigInt(*a), Value::Integer(*y)])
            .collect();
        for query in matching::<(BigInt, Integer, BigInt, BigInt)>(
            "SELECT account_id, year, points, last_grant FROM annual_points",
            &["account_id", "year"],
            &keys,
        ) {
            for (a, y, total, last) in query.load::<(i64, i32, i64, i64)>(conn)? {
                book.annual.insert(
                    (a, y),
                    Counter {
                        total,
                        last,
                        changed: false,
                    },
                );
            }
        }
        Ok(book)
    }

    /// Writes every changed counter back, in multi-row upserts.
    pub fn write(&self, conn: &mut AnyConnection) -> QueryResult<()> {
        let daily: Vec<Vec<Value<'_>>> = self
            .daily
            .iter()
            .filter(|(_, c)| c.changed)
            .map(|((a, t, d), c)| {
                vec![
                    Value::BigInt(*a),
                    Value::Text(t),
                    Value::Text(d),
                    Value::BigInt(c.total),
                    Value::BigInt(c.last),
                ]
            })
            .collect();
        write_rows(
            conn,
            "daily_grants",
            &[
                "account_id",
                "activity_type",
                "local_day",
                "granted_g",
                "last_grant_g",
            ],
            &daily,
            " ON CONFLICT (account_id, activity_type, local_day) DO UPDATE SET \
             granted_g = excluded.granted_g, last_grant_g = excluded.last_grant_g",
        )?;
        let annual: Vec<Vec<Value<'_>>> = self
            .annual
            .iter()
            .filter(|(_, c)| c.changed)
            .map(|((a, y), c)| {
                vec![
                    Value::BigInt(*a),
                    Value::Integer(*y),
                    Value::BigInt(c.total),
                    Value::BigInt(c.last),
                ]
            })
            .collect();
        write_rows(
            conn,
            "annual_points",
            &["account_id", "year", "points", "last_grant"],
            &annual,
            " ON CONFLICT (account_id, year) DO UPDATE SET \
             points = excluded.points, last_grant = excluded.last_grant",
        )?;
        Ok(())
    }
}

impl Allowance for Book {
    fn daily(
        &mut self,
        _: &mut AnyConnection,
        (account_id, activity_type, local_day): (i64, &str, &str),
        want: i64,
        cap: Option<i64>,
    ) -> QueryResult<i64> {
        let key = (account_id, activity_type.to_string(), local_day.to_string());
        Ok(counter(self.daily.get_mut(&key))?.take(want, cap.unwrap_or(UNCAPPED)))
    }

    fn annual(&mut self, _: &mut AnyConnection, key: (i64, i32), want: i64, cap: i64) -> QueryResult<i64> {
        if cap == 0 {
            return Ok(want);
        }
        Ok(counter(self.annual.get_mut(&key))?.take(want, cap))
    }
}

/// A counter the book did not read cannot be granted from: it may hold grants already.
fn counter(loaded: Option<&mut Counter>) -> QueryResult<&mut Counter> {
    loaded.ok_or_else(|| {
        diesel::result::Error::QueryBuilderError("a cap counter the group did not read".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_grants_what_fits_then_what_is_left_then_nothing() {
        let mut c = Counter::default();
        assert_eq!(c.take(86, 296), 86);
        assert_eq!(c.take(200, 296), 200);
        assert_eq!((c.take(86, 296), c.total, c.last), (10, 296, 10));
        assert_eq!((c.take(86, 296), c.total, c.last), (0, 296, 0));
        assert!(c.changed);
    }

    #[test]
    fn a_book_refuses_counters_it_did_not_read() {
        let mut conn = AnyConnection::Sqlite(diesel::SqliteConnection::establish(":memory:").unwrap());
        let mut book = Book::default();
        assert!(book
            .daily(&mut conn, (1, "walking", "2026-11-29"), 10, Some(100))
            .is_err());
        assert!(book.annual(&mut conn, (1, 2026), 10, 100).is_err());
        // With the annual cap off nothing is counted, read or not.
        assert_eq!(book.annual(&mut conn, (1, 2026), 10, 0).unwrap(), 10);
    }
}
