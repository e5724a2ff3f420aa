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

use crate::db::columns::{columns, Columns};
use crate::db::prepared::{matching, upsert_rows, Dynamic, Planning};
use crate::db::schema::{annual_points, daily_grants};
use crate::db::AnyConnection;
use crate::domain::catalog::AmountOverflow;

/// Why a grant could not be taken: the transaction that asked must be rolled back.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    /// A counter would leave the range of an `i64` (giving back to a stored counter out of range: a take
    /// stays within its cap).
    #[error(transparent)]
    Overflow(#[from] AmountOverflow),
}

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

    /// All of `want` if it fits under `cap`, what is left otherwise (nothing of a negative `want`).
    /// Checked: a grant never wraps a total; an overflow leaves the counter as it was.
    fn take(&mut self, want: i64, cap: i64) -> Result<i64, AmountOverflow> {
        let left = cap.saturating_sub(self.total).max(0);
        let granted = want.clamp(0, left);
        self.total = self
            .total
            .checked_add(granted)
            .ok_or_else(|| overflow(self.total, granted))?;
        self.last = granted;
        self.changed = true;
        Ok(granted)
    }

    /// Undoes the last `take` of `granted`.
    fn give_back(&mut self, granted: i64) -> Result<(), AmountOverflow> {
        let total = self.total.checked_sub(granted);
        let last = self.last.checked_sub(granted);
        let (Some(total), Some(last)) = (total, last) else {
            return Err(overflow(self.total, -granted));
        };
        (self.total, self.last, self.changed) = (total, last, true);
        Ok(())
    }
}

fn overflow(total: i64, change: i64) -> AmountOverflow {
    AmountOverflow::new(format!("a cap counter of {total} changed by {change}"))
}

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
fn lookups<'k, T, K, R>(table: T, keys: &'k [K], planning: Planning) -> Vec<Dynamic<'k, R::SqlType>>
where
    K: Columns<T>,
    R: Columns<T>,
{
    let select = format!("SELECT {} FROM {}", R::NAMES.join(", "), R::TABLE);
    matching(table, &select, keys, planning)
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
        for query in lookups::<_, _, DailyRow>(daily_grants::table, daily, planning) {
            for (a, t, d, total, last) in query.load(conn)? {
                book.daily.insert((a, t, d), Counter::stored(total, last));
            }
        }
        for query in lookups::<_, _, AnnualRow>(annual_points::table, annual, planning) {
            for (a, y, total, last) in query.load(conn)? {
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

    /// Takes up to `want` grams from the (account, type, day) allowance of `cap` grams (`None`: no cap).
    /// Returns the grams granted.
    pub fn daily(&mut self, key: (i64, &str, &str), want: i64, cap: Option<i64>) -> Result<i64, GrantError> {
        let (account_id, activity_type, local_day) = key;
        let key = (account_id, activity_type.to_string(), local_day.to_string());
        Ok(counter(self.daily.get_mut(&key))?.take(want, cap.unwrap_or(UNCAPPED))?)
    }

    /// Returns `grams` just taken from the day's allowance (a credit that came to nothing).
    pub fn give_back_daily(&mut self, key: (i64, &str, &str), grams: i64) -> Result<(), GrantError> {
        let (account_id, activity_type, local_day) = key;
        let key = (account_id, activity_type.to_string(), local_day.to_string());
        Ok(counter(self.daily.get_mut(&key))?.give_back(grams)?)
    }

    /// Takes up to `want` points from the account's allowance for `year` (`cap` 0 = no cap).
    pub fn annual(&mut self, key: (i64, i32), want: i64, cap: i64) -> Result<i64, GrantError> {
        if cap == 0 {
            return Ok(want);
        }
        Ok(counter(self.annual.get_mut(&key))?.take(want, cap)?)
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
        assert_eq!(c.take(86, 296), Ok(86));
        assert_eq!(c.take(200, 296), Ok(200));
        assert_eq!((c.take(86, 296), c.total, c.last), (Ok(10), 296, 10));
        assert_eq!((c.take(86, 296), c.total, c.last), (Ok(0), 296, 0));
        assert!(c.changed);
        let mut c = Counter::default();
        c.take(86, 296).unwrap();
        c.give_back(86).unwrap();
        assert_eq!((c.total, c.last, c.take(296, 296)), (0, 0, Ok(296)));
    }

    #[test]
    fn a_counter_at_the_edges_of_an_i64_never_wraps() {
        // No cap: the counter fills up to the largest total, then grants nothing more.
        let mut c = Counter::stored(i64::MAX - 5, 0);
        assert_eq!(c.take(i64::MAX, i64::MAX), Ok(5));
        assert_eq!((c.total, c.take(1, i64::MAX)), (i64::MAX, Ok(0)));
        // A total far below zero (never written by a grant) cannot widen the allowance past the cap.
        let mut c = Counter::stored(i64::MIN, 0);
        assert_eq!(c.take(i64::MAX, i64::MAX), Ok(i64::MAX));
        assert_eq!(c.total, -1);
        // A negative want grants nothing; a cap below the total grants nothing.
        let mut c = Counter::stored(100, 0);
        assert_eq!((c.take(-5, 1000), c.take(5, 50), c.total), (Ok(0), Ok(0), 100));
        // Giving back beyond the range refuses and leaves the counter as it was.
        let mut c = Counter::stored(i64::MIN, 0);
        assert!(c.give_back(1).is_err());
        assert_eq!(c, Counter::stored(i64::MIN, 0));
        let mut c = Counter::stored(0, i64::MIN);
        assert!(c.give_back(1).is_err());
        assert_eq!(c.total, 0);
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
