//! Daily and annual caps: grants decided in memory against counters read under the account's lock.
//!
//! A writer reads the counters it can draw on (`Book::load`), grants from them in order, and writes the
//! changed ones back in one upsert (`Book::write`). That is sound because of one rule: whoever reads or
//! writes an account's counters holds the account's row lock from the read to the commit. The ingest
//! writer locks all the accounts of its group first; the review queue locks the account it credits. Two
//! instances granting from one counter therefore queue on the account row, and the second reads what the
//! first committed.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};

use crate::db::prepared::{matching, write_rows, Planning, Value};
use crate::db::AnyConnection;

/// No daily cap: the counter still records what was granted.
const UNCAPPED: i64 = i64::MAX / 4;

/// A counter's total and its last grant, and whether this group changed it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counter {
    total: i64,
    last: i64,
    changed: bool,
}

impl Counter {
    fn stored(total: i64, last: i64) -> Counter {
        Counter {
            total,
            last,
            changed: false,
        }
    }

    /// All of `want` if it fits under `cap`, what is left otherwise.
    fn take(&mut self, want: i64, cap: i64) -> i64 {
        let left = cap - self.total;
        let granted = if left >= want { want } else { left.max(0) };
        self.total += granted;
        self.last = granted;
        self.changed = true;
        granted
    }

    /// Undoes the last `take` of `granted`.
    fn give_back(&mut self, granted: i64) {
        self.total -= granted;
        self.last -= granted;
        self.changed = true;
    }
}

/// A counter table: its name, its key columns, and its (total, last grant) columns.
struct Table {
    name: &'static str,
    key: &'static [&'static str],
    counts: [&'static str; 2],
}

const DAILY: Table = Table {
    name: "daily_grants",
    key: &["account_id", "activity_type", "local_day"],
    counts: ["granted_g", "last_grant_g"],
};

const ANNUAL: Table = Table {
    name: "annual_points",
    key: &["account_id", "year"],
    counts: ["points", "last_grant"],
};

impl Table {
    /// Selects the key columns, then total and last grant.
    fn select(&self) -> String {
        let [total, last] = self.counts;
        format!(
            "SELECT {}, {total}, {last} FROM {}",
            self.key.join(", "),
            self.name
        )
    }

    /// Stores counters: each row is its key's values, then total and last grant.
    fn write(&self, conn: &mut AnyConnection, rows: &[Vec<Value<'_>>]) -> QueryResult<usize> {
        let [total, last] = self.counts;
        let columns: Vec<&str> = self.key.iter().chain(&self.counts).copied().collect();
        let upsert = format!(
            " ON CONFLICT ({}) DO UPDATE SET {total} = excluded.{total}, {last} = excluded.{last}",
            self.key.join(", ")
        );
        write_rows(conn, self.name, &columns, rows, &upsert)
    }
}

/// The changed counters as rows for [`Table::write`], each key written by `key`.
fn changed<'a, K>(
    counters: &'a HashMap<K, Counter>,
    key: impl Fn(&'a K) -> Vec<Value<'a>>,
) -> Vec<Vec<Value<'a>>> {
    counters
        .iter()
        .filter(|(_, c)| c.changed)
        .map(|(k, c)| {
            let mut row = key(k);
            row.extend([Value::BigInt(c.total), Value::BigInt(c.last)]);
            row
        })
        .collect()
}

/// Some accounts' counters, read once and written back once.
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
        planning: Planning,
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
        for query in
            matching::<(BigInt, Text, Text, BigInt, BigInt)>(&DAILY.select(), DAILY.key, &keys, planning)
        {
            for (a, t, d, total, last) in query.load(conn)? {
                book.daily.insert((a, t, d), Counter::stored(total, last));
            }
        }
        let keys: Vec<Vec<Value<'_>>> = annual
            .iter()
            .map(|(a, y)| vec![Value::BigInt(*a), Value::Integer(*y)])
            .collect();
        for query in
            matching::<(BigInt, Integer, BigInt, BigInt)>(&ANNUAL.select(), ANNUAL.key, &keys, planning)
        {
            for (a, y, total, last) in query.load(conn)? {
                book.annual.insert((a, y), Counter::stored(total, last));
            }
        }
        Ok(book)
    }

    /// Writes every changed counter back, in multi-row upserts.
    pub fn write(&self, conn: &mut AnyConnection) -> QueryResult<()> {
        let daily = changed(&self.daily, |(a, t, d)| {
            vec![Value::BigInt(*a), Value::Text(t), Value::Text(d)]
        });
        DAILY.write(conn, &daily)?;
        let annual = changed(&self.annual, |(a, y)| vec![Value::BigInt(*a), Value::Integer(*y)]);
        ANNUAL.write(conn, &annual)?;
        Ok(())
    }

    /// Takes up to `want` grams from the (account, type, day) allowance of `cap` grams (`None`: no cap).
    /// Returns the grams granted.
    pub fn daily(&mut self, key: (i64, &str, &str), want: i64, cap: Option<i64>) -> QueryResult<i64> {
        let (account_id, activity_type, local_day) = key;
        let key = (account_id, activity_type.to_string(), local_day.to_string());
        Ok(counter(self.daily.get_mut(&key))?.take(want, cap.unwrap_or(UNCAPPED)))
    }

    /// Returns `grams` just taken from the day's allowance (a credit that came to nothing).
    pub fn give_back_daily(&mut self, key: (i64, &str, &str), grams: i64) -> QueryResult<()> {
        let (account_id, activity_type, local_day) = key;
        let key = (account_id, activity_type.to_string(), local_day.to_string());
        counter(self.daily.get_mut(&key))?.give_back(grams);
        Ok(())
    }

    /// Takes up to `want` points from the account's allowance for `year` (`cap` 0 = no cap).
    pub fn annual(&mut self, key: (i64, i32), want: i64, cap: i64) -> QueryResult<i64> {
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
        let mut c = Counter::default();
        c.take(86, 296);
        c.give_back(86);
        assert_eq!((c.total, c.last, c.take(296, 296)), (0, 0, 296));
    }

    #[test]
    fn a_book_refuses_counters_it_did_not_read() {
        let mut book = Book::default();
        assert!(book.daily((1, "walking", "2026-11-29"), 10, Some(100)).is_err());
        assert!(book.annual((1, 2026), 10, 100).is_err());
        // With the annual cap off nothing is counted, read or not.
        assert_eq!(book.annual((1, 2026), 10, 0).unwrap(), 10);
    }
}
