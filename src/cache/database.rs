//! The cache's counters and markers in the database (`cache_entries`), for while a configured Redis does
//! not answer. Every instance shares the table, so a login throttle or a nonce refused by one instance is
//! refused by all of them, as with Redis. Slower than Redis (a write transaction per call), which is why it
//! is the fallback and not the default.

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamp};

use super::{CacheError, Counter};
use crate::db::schema::cache_entries;
use crate::db::{self, AnyConnection, Db, Tx};

#[derive(Clone)]
pub struct DatabaseCache {
    db: Db,
}

fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

fn after(now: NaiveDateTime, d: Duration) -> NaiveDateTime {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Expired entries mean nothing; whoever writes next deletes them (found through the expiry index).
fn sweep(conn: &mut AnyConnection, now: NaiveDateTime) -> QueryResult<()> {
    diesel::delete(cache_entries::table.filter(cache_entries::expires_at.le(now)))
        .execute(conn)
        .map(|_| ())
}

/// Inserts the entry `key` at 1 for `ttl` (expired ones are gone first); when it is live, `on_conflict`
/// says what becomes of it. The number of rows written.
fn upsert(
    conn: &mut AnyConnection,
    key: &str,
    ttl: Duration,
    now: NaiveDateTime,
    on_conflict: &str,
) -> QueryResult<usize> {
    sweep(conn, now)?;
    diesel::sql_query(format!(
        "INSERT INTO cache_entries (key, count, expires_at) VALUES ($1, 1, $2) ON CONFLICT (key) {on_conflict}"
    ))
    .bind::<Text, _>(key)
    .bind::<Timestamp, _>(after(now, ttl))
    .execute(conn)
}

impl DatabaseCache {
    pub fn new(db: Db) -> DatabaseCache {
        DatabaseCache { db }
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut AnyConnection, NaiveDateTime) -> QueryResult<T> + Send + 'static,
    ) -> Result<T, CacheError> {
        let now = now();
        self.db
            .run(move |conn| Ok(db::transaction(conn, Tx::Write, |conn| f(conn, now))?))
            .await
            .map_err(|e| CacheError(e.log_message()))
    }

    pub async fn increment(&self, key: &str, window: Duration) -> Result<Counter, CacheError> {
        let key = key.to_string();
        let (count, expires) = self
            .write(move |conn, now| {
                upsert(
                    conn,
                    &key,
                    window,
                    now,
                    "DO UPDATE SET count = cache_entries.count + 1",
                )?;
                cache_entries::table
                    .find(&key)
                    .select((cache_entries::count, cache_entries::expires_at))
                    .get_result::<(i64, NaiveDateTime)>(conn)
                    .map(|(count, expires)| (count, (expires - now).to_std().unwrap_or_default()))
            })
            .await?;
        Ok(Counter {
            count: u64::try_from(count).unwrap_or(0),
            resets_in: expires,
        })
    }

    /// Takes one back from a live, positive counter.
    pub async fn refund(&self, key: &str) -> Result<(), CacheError> {
        let key = key.to_string();
        self.write(move |conn, now| {
            diesel::update(
                cache_entries::table
                    .find(&key)
                    .filter(cache_entries::count.gt(0))
                    .filter(cache_entries::expires_at.gt(now)),
            )
            .set(cache_entries::count.eq(cache_entries::count - 1))
            .execute(conn)
            .map(|_| ())
        })
        .await
    }

    pub async fn delete(&self, key: &str) -> Result<(), CacheError> {
        let key = key.to_string();
        self.write(move |conn, _| {
            diesel::delete(cache_entries::table.find(&key))
                .execute(conn)
                .map(|_| ())
        })
        .await
    }

    /// True when this call created `key` (it was absent or expired).
    pub async fn insert_once(&self, key: &str, ttl: Duration) -> Result<bool, CacheError> {
        let key = key.to_string();
        self.write(move |conn, now| Ok(upsert(conn, &key, ttl, now, "DO NOTHING")? == 1))
            .await
    }
}
