//! Refresh tokens: 256 random bits, handed out once, stored only as their SHA-256; deleted once
//! nothing can use them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::NaiveDateTime;
use diesel::sql_types::{BigInt, Timestamp};
use diesel::{QueryResult, RunQueryDsl};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::db::AnyConnection;

/// Random bytes in a refresh token: 256 bits, beyond guessing.
const TOKEN_BYTES: usize = 32;

pub fn generate() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Deletes at most `batch` tokens that expired before `now` and, in a second statement, at most `batch`
/// revoked before `revoked_before`; answers how many. A revoked token is kept until every access token of
/// its session has expired (`revoked_before` = now - the access-token lifetime), so a session's end can
/// be told from its rows for as long as one of its access tokens lives.
pub fn delete_spent(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    revoked_before: NaiveDateTime,
    batch: i64,
) -> QueryResult<usize> {
    let expired = delete_batch(conn, "expires_at", now, batch)?;
    let revoked = delete_batch(conn, "revoked_at", revoked_before, batch)?;
    Ok(expired + revoked)
}

/// Deletes at most `batch` tokens whose `column` (a time; NULL never matches) is before `cutoff`.
fn delete_batch(
    conn: &mut AnyConnection,
    column: &str,
    cutoff: NaiveDateTime,
    batch: i64,
) -> QueryResult<usize> {
    diesel::sql_query(format!(
        "DELETE FROM refresh_tokens WHERE id IN \
         (SELECT id FROM refresh_tokens WHERE {column} < $1 LIMIT $2)"
    ))
    .bind::<Timestamp, _>(cutoff)
    .bind::<BigInt, _>(batch)
    .execute(conn)
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_random_and_hash_stably() {
        let a = super::generate();
        assert_ne!(a, super::generate());
        assert_eq!(a.len(), 43);
        assert_eq!(super::hash(&a), super::hash(&a));
        assert_eq!(super::hash(&a).len(), 64);
    }
}
