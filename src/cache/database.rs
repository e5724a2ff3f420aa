//! The cache's counters in the database (`cache_entries`), for while a configured Redis does
//! not answer. Every instance shares the table, so a login throttle that refuses on one instance refuses on
//! all of them, as with Redis. Slower than Redis (a write transaction per call), which is why it
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

/// Adds one to the live counter `key`, or starts it at one for `ttl` (expired entries are gone first).
fn bump(conn: &mut AnyConnection, key: &str, ttl: Duration, now: NaiveDateTime) -> QueryResult<()> {
    sweep(conn, now)?;
    diesel::sql_query(
        "INSERT INTO cache_entries (key, count, expires_at) VALUES ($1, 1, $2) \
         ON CONFLICT (key) DO UPDATE SET count = cache_entries.count + 1",
    )
    .bind::<Text, _>(key)
    .bind::<Timestamp, _>(after(now, ttl))
    .execute(conn)
    .map(|_| ())
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
                bump(conn, &key, window, now)?;
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
}
