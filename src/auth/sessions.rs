//! Ending a session's access tokens before they expire.
//!
//! Every access token carries its session (`sid`: the refresh-token family it was issued with). Ending a
//! session (logout, or a used refresh token presented again) marks the family's refresh tokens revoked in
//! the database. Every authenticated request then asks "is this session revoked?", and answers it from
//! memory: each instance keeps the sessions revoked within an access token's lifetime (later, every token
//! of the session has expired anyway), and reads the ones revoked since its last read every
//! [`POLL_INTERVAL`] through a partial index of revocation times. The instance that ends a session knows
//! at once; every other instance within one interval, well inside the contract's second.
//!
//! Rejected: one probe per request (a Redis `EXISTS`, or the database without Redis). It cost a fifth of
//! the activity-post throughput on SQLite to answer a question whose answer changes a few times a minute.
//! If the feed stops (the database unreachable for longer than [`STALE_AFTER`]), requests fall back to that
//! probe rather than trust a list that may be missing a revocation.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::tokens::EXPIRY_LEEWAY_SECS;
use crate::clock::Clock;
use crate::db::schema::refresh_tokens;
use crate::db::{AnyConnection, Db};
use crate::error::ApiError;

/// How often an instance reads the sessions revoked since its last read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long the revocations known in memory may go unrefreshed before requests ask the database again.
pub const STALE_AFTER: Duration = Duration::from_secs(1);
/// How far before the latest revocation already read each read starts again: a revocation stamped earlier
/// but committed later (a slow transaction, or an instance whose clock lags) is still found, up to this.
const OVERLAP_SECS: i64 = 60;
/// The most revocations one read takes in: the feed is read in pages of this many, oldest first.
const FEED_PAGE: i64 = 1_000;

/// Sessions revoked recently, each kept until its last access token has expired.
#[derive(Debug, Default)]
struct Revoked {
    /// Session → the time past which no access token of it is accepted anyway.
    until: HashMap<String, NaiveDateTime>,
    /// The latest revocation time read from the database.
    read_up_to: Option<NaiveDateTime>,
    /// When the database was last read successfully (monotonic).
    refreshed: Option<Instant>,
}

impl Revoked {
    fn insert(&mut self, session_id: String, until: NaiveDateTime) {
        let entry = self.until.entry(session_id).or_insert(until);
        *entry = (*entry).max(until);
    }

    fn contains(&self, session_id: &str, now: NaiveDateTime) -> bool {
        self.until.get(session_id).is_some_and(|until| *until > now)
    }

    /// Forgets sessions whose tokens have all expired: the map holds at most an access token's lifetime
    /// of revocations.
    fn prune(&mut self, now: NaiveDateTime) {
        self.until.retain(|_, until| *until > now);
    }

    fn is_fresh(&self) -> bool {
        self.refreshed.is_some_and(|at| at.elapsed() < STALE_AFTER)
    }
}

#[derive(Clone)]
pub struct SessionRevocations {
    db: Db,
    clock: Clock,
    /// How long after its revocation a session can still present an unexpired access token.
    token_life: chrono::Duration,
    revoked: Arc<RwLock<Revoked>>,
}

impl SessionRevocations {
    pub fn new(db: Db, clock: Clock, access_token_ttl_secs: u64) -> SessionRevocations {
        // Bounded by the settings' check (at most a day), so the sum and the conversion cannot overflow.
        let life = access_token_ttl_secs as i64 + EXPIRY_LEEWAY_SECS;
        SessionRevocations {
            db,
            clock,
            token_life: chrono::Duration::seconds(life),
            revoked: Arc::default(),
        }
    }

    /// This instance ended these sessions (already marked revoked in the database): it refuses their tokens
    /// from now on; the other instances read the database.
    pub fn ended(&self, session_ids: &[String]) {
        let until = self.clock.now_naive() + self.token_life;
        let mut revoked = self.revoked.write().unwrap_or_else(|p| p.into_inner());
        for session_id in session_ids {
            revoked.insert(session_id.clone(), until);
        }
    }

    /// Whether the session of an access token has ended: from memory while the feed is fresh, else from
    /// the database.
    pub async fn is_revoked(&self, session_id: &str) -> Result<bool, ApiError> {
        {
            let revoked = self.revoked.read().unwrap_or_else(|p| p.into_inner());
            if revoked.is_fresh() {
                return Ok(revoked.contains(session_id, self.clock.now_naive()));
            }
        }
        let session_id = session_id.to_string();
        self.db
            .run(move |conn| Ok(revoked_in_database(conn, &session_id)?))
            .await
    }

    /// Reads the revocations since the last read, for the life of the server.
    pub fn spawn_feed(self) {
        actix_web::rt::spawn(async move {
            let mut ticker = actix_web::rt::time::interval(POLL_INTERVAL);
            loop {
                ticker.tick().await;
                if let Err(e) = self.refresh().await {
                    tracing::warn!(error = %e, "reading revoked sessions failed; requests ask the database");
                }
            }
        });
    }

    async fn refresh(&self) -> Result<(), ApiError> {
        let now = self.clock.now_naive();
        let from = {
            let revoked = self.revoked.read().unwrap_or_else(|p| p.into_inner());
            match revoked.read_up_to {
                Some(latest) => latest - chrono::Duration::seconds(OVERLAP_SECS),
                // First read: every session whose tokens may still be presented.
                None => now - self.token_life,
            }
        };
        let started = Instant::now();
        let rows = self.db.run(move |conn| Ok(revoked_since(conn, from)?)).await?;
        let mut revoked = self.revoked.write().unwrap_or_else(|p| p.into_inner());
        for (session_id, at) in rows {
            revoked.read_up_to = revoked.read_up_to.max(Some(at));
            revoked.insert(session_id, at + self.token_life);
        }
        revoked.prune(now);
        revoked.refreshed = Some(started);
        Ok(())
    }
}

/// The sessions revoked at or after `from`, with their latest revocation time, oldest first, in pages of
/// [`FEED_PAGE`] (one read may span a burst of revocations; the next read starts where this one stopped).
fn revoked_since(conn: &mut AnyConnection, from: NaiveDateTime) -> QueryResult<Vec<(String, NaiveDateTime)>> {
    let mut out: Vec<(String, NaiveDateTime)> = Vec::new();
    let mut after = from;
    loop {
        let page: Vec<(String, Option<NaiveDateTime>)> = refresh_tokens::table
            .filter(refresh_tokens::revoked_at.ge(after))
            .order(refresh_tokens::revoked_at)
            .select((refresh_tokens::family_id, refresh_tokens::revoked_at))
            .limit(FEED_PAGE)
            .load(conn)?;
        let full = page.len() as i64 == FEED_PAGE;
        let last = page.iter().filter_map(|(_, at)| *at).max();
        out.extend(page.into_iter().filter_map(|(s, at)| Some((s, at?))));
        match last {
            // A page of one instant cannot move on by time: take that instant whole.
            Some(last) if full && last == after => {
                out.extend(instant(conn, last)?);
                after = last + chrono::Duration::microseconds(1);
            }
            Some(last) if full => after = last,
            _ => return Ok(out),
        }
    }
}

/// Every session revoked at exactly `at`.
fn instant(conn: &mut AnyConnection, at: NaiveDateTime) -> QueryResult<Vec<(String, NaiveDateTime)>> {
    let sessions: Vec<String> = refresh_tokens::table
        .filter(refresh_tokens::revoked_at.eq(at))
        .select(refresh_tokens::family_id)
        .load(conn)?;
    Ok(sessions.into_iter().map(|s| (s, at)).collect())
}

/// One probe of `refresh_tokens_revoked_family`, the partial index of revoked tokens by family.
fn revoked_in_database(conn: &mut AnyConnection, family_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::revoked_at.is_not_null()),
    ))
    .get_result(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0)
            .unwrap()
            .naive_utc()
    }

    #[test]
    fn a_revoked_session_is_refused_until_its_tokens_have_expired_then_forgotten() {
        let mut revoked = Revoked::default();
        revoked.insert("s".into(), at(900));
        // A later revocation of the same session never shortens its entry.
        revoked.insert("s".into(), at(100));
        assert!(revoked.contains("s", at(899)));
        assert!(!revoked.contains("s", at(900)));
        assert!(!revoked.contains("other", at(0)));
        revoked.prune(at(899));
        assert_eq!(revoked.until.len(), 1);
        revoked.prune(at(900));
        assert!(revoked.until.is_empty());
    }

    #[test]
    fn memory_is_trusted_only_while_the_feed_is_fresh() {
        let mut revoked = Revoked::default();
        assert!(!revoked.is_fresh());
        revoked.refreshed = Some(Instant::now());
        assert!(revoked.is_fresh());
        revoked.refreshed = Instant::now().checked_sub(STALE_AFTER);
        assert!(!revoked.is_fresh());
    }
}
