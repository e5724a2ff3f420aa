//! Daily and annual caps: the counters, read under the account's lock and written back. What a credit may
//! take from them is `rules::allowance`'s arithmetic.
//!
//! A writer reads the counters it can draw on (`Book::load`), grants from them in order, and writes the
//! changed ones back in one upsert (`Book::write`). That is sound because of one rule: whoever reads or
//! writes an account's counters holds the account's row lock from the read to the commit. The ingest
//! writer locks all the accounts of its group first; the review queue locks the account it credits. Two
//! instances granting from one counter therefore queue on the account row, and the second reads what the
//! first committed.

use std::collections::HashMap;

use diesel::prelude::*;

use super::rules::allowance::{Allowances, Counter};
use crate::db::columns::{columns, Columns};
use crate::db::prepared::{matching, upsert_rows, Dynamic, Planning};
use crate::db::schema::{annual_points, daily_grants};
use crate::db::AnyConnection;

/// A daily counter's key: (account, activity type, local day).
type DailyKey = (i64, String, String);
/// An annual counter's key: (account, year).
type AnnualKey = (i64, i32);

columns! {
    /// A daily counter's key, as [`Book::load`] is asked for it.
    daily_grants for (i64, &str, &str), |(account_id, activity_type, local_day)| {
        account_id: *account_id,
        activity_type: *activity_type,
        local_day: *local_day,
    }
}

/// A daily counter as written back: its key, then its total and its last grant.
type DailyRow<'a> = (&'a DailyKey, &'a Counter);
/// An annual counter as written back.
type AnnualRow<'a> = (&'a AnnualKey, &'a Counter);

columns! {
    daily_grants for DailyRow<'_>, |((account_id, activity_type, local_day), counter)| {
        account_id: *account_id,
        activity_type: activity_type,
        local_day: local_day,
        granted_g: counter.total,
        last_grant_g: counter.last,
    }
}

columns! {
    /// An annual counter's key.
    annual_points for AnnualKey, |(account_id, year)| {
        account_id: *account_id,
        year: *year,
    }
}

columns! {
    annual_points for AnnualRow<'_>, |((account_id, year), counter)| {
        account_id: *account_id,
        year: *year,
        points: counter.total,
        last_grant: counter.last,
    }
}

/// The statements reading the counters (rows `R` of table `T`) of `keys`.
fn lookups<'k, T, K, R>(
    conn: &AnyConnection,
    table: T,
    keys: &'k [K],
    planning: Planning,
) -> Vec<Dynamic<'k, R::SqlType>>
where
    K: Columns<T>,
    R: Columns<T>,
{
    let select = format!("SELECT {} FROM {}", R::NAMES.join(", "), R::TABLE);
    matching(conn, table, &select, keys, planning)
}

/// The changed counters, as rows to write back.
fn changed<K>(counters: &HashMap<K, Counter>) -> Vec<(&K, &Counter)> {
    counters.iter().filter(|(_, c)| c.changed).collect()
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
        let mut book = Book::zeroed(daily, annual);
        for query in lookups::<_, _, DailyRow>(conn, daily_grants::table, daily, planning) {
            for (a, t, d, total, last) in query.load_rows(conn)? {
                book.daily.insert((a, t, d), Counter::stored(total, last));
            }
        }
        for query in lookups::<_, _, AnnualRow>(conn, annual_points::table, annual, planning) {
            for (a, y, total, last) in query.load_rows(conn)? {
                book.annual.insert((a, y), Counter::stored(total, last));
            }
        }
        Ok(book)
    }

    /// A counter at zero for every key: a row not stored yet starts there (no one else can store it
    /// meanwhile, under the account lock).
    pub(crate) fn zeroed(daily: &[(i64, &str, &str)], annual: &[(i64, i32)]) -> Book {
        Book {
            daily: daily
                .iter()
                .map(|(a, t, d)| ((*a, t.to_string(), d.to_string()), Counter::default()))
                .collect(),
            annual: annual.iter().map(|k| (*k, Counter::default())).collect(),
        }
    }

    /// Writes every changed counter back, in multi-row upserts.
    pub fn write(&self, conn: &mut AnyConnection) -> QueryResult<()> {
        upsert_rows::<(i64, &str, &str), _, _>(conn, daily_grants::table, &changed(&self.daily))?;
        upsert_rows::<AnnualKey, _, _>(conn, annual_points::table, &changed(&self.annual))?;
        Ok(())
    }
}

impl Allowances for Book {
    fn daily(&mut self, account_id: i64, activity_type: &str, local_day: &str) -> Option<&mut Counter> {
        self.daily
            .get_mut(&(account_id, activity_type.to_string(), local_day.to_string()))
    }

    fn annual(&mut self, account_id: i64, year: i32) -> Option<&mut Counter> {
        self.annual.get_mut(&(account_id, year))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_book_grants_from_the_counters_it_read_and_writes_back_the_changed_ones() {
        let mut book = Book::zeroed(&[(1, "walking", "2026-11-29")], &[(1, 2026)]);
        assert!(book.daily(1, "walking", "2026-11-30").is_none());
        assert!(book.annual(1, 2025).is_none());
        book.daily(1, "walking", "2026-11-29")
            .unwrap()
            .take(10, 100)
            .unwrap();
        assert_eq!(changed(&book.daily).len(), 1);
        assert!(changed(&book.annual).is_empty());
    }
}
