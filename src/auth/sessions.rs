//! Ending a session's access tokens before they expire.
//!
//! Every access token carries its session (`sid`: the refresh-token family it was issued with). Ending
//! a session (logout, or a used refresh token presented again) marks the family's refresh tokens revoked
//! in the database. Each authenticated request then asks one question, "is this session revoked?":
//! - with Redis, one `EXISTS` of a marker that the revoking instance sets for as long as the session's
//!   last access token can still be accepted (its lifetime plus the expiry leeway);
//! - without Redis (one instance, or instances sharing only the database), one probe of a partial index
//!   that holds only revoked refresh tokens, so it stays small and a live session's lookup finds nothing.

use std::time::Duration;

use diesel::prelude::*;

use super::tokens::EXPIRY_LEEWAY_SECS;
use crate::cache::{Cache, CacheError};
use crate::db::schema::refresh_tokens;
use crate::db::{AnyConnection, Db};
use crate::error::ApiError;

#[derive(Clone)]
pub struct SessionRevocations {
    cache: Cache,
    db: Db,
    /// How long a Redis marker lives: past it, every access token of the session has expired anyway.
    marker_ttl: Duration,
}

impl SessionRevocations {
    pub fn new(cache: Cache, db: Db, access_token_ttl_secs: u64) -> SessionRevocations {
        let marker_ttl = Duration::from_secs(access_token_ttl_secs + EXPIRY_LEEWAY_SECS as u64);
        SessionRevocations {
            cache,
            db,
            marker_ttl,
        }
    }

    fn marker_key(session_id: &str) -> String {
        format!("session-revoked:{session_id}")
    }

    /// Tells every instance that these sessions, already marked revoked in the database, have ended.
    /// Without Redis the database's mark is what every instance reads, and there is nothing to do.
    pub async fn publish(&self, session_ids: &[String]) -> Result<(), CacheError> {
        if !self.cache.is_shared() {
            return Ok(());
        }
        for session_id in session_ids {
            self.cache
                .insert_once(&Self::marker_key(session_id), self.marker_ttl)
                .await?;
        }
        Ok(())
    }

    /// Whether the session of an access token has ended. A Redis that does not answer is not a reason to
    /// refuse every request: the database holds the same fact, and is asked instead.
    pub async fn is_revoked(&self, session_id: &str) -> Result<bool, ApiError> {
        if self.cache.is_shared() {
            match self.cache.contains(&Self::marker_key(session_id)).await {
                Ok(revoked) => return Ok(revoked),
                Err(e) => {
                    tracing::warn!(error = %e, "revoked sessions: Redis unavailable, asking the database")
                }
            }
        }
        let session_id = session_id.to_string();
        self.db
            .run(move |conn| Ok(revoked_in_database(conn, &session_id)?))
            .await
    }
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
