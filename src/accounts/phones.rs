//! Phone numbers at rest: each user row holds its phone sealed (`phone_sealed`, XChaCha20-Poly1305 under
//! the secrets key) and a keyed hash of it (`phone_hash`, HMAC-SHA256 under a key derived from the secrets
//! key) that finds the row on sign-in and look-up and keeps phones unique. No plain phone is stored.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::db::schema::users;
use crate::db::{self, AnyConnection, Tx};
use crate::secrets::SecretBox;

/// A phone as it is stored.
pub struct StoredPhone {
    pub hash: String,
    pub sealed: String,
}

pub fn seal(secrets: &SecretBox, phone: &str) -> StoredPhone {
    StoredPhone {
        hash: secrets.lookup_hash(phone),
        sealed: secrets.seal(phone),
    }
}

/// What `phone_hash` holds once a person erased their account: unique per row, never a hash, so the phone
/// is free to register again and no look-up finds the row.
pub fn erased_marker(user_id: i64) -> String {
    format!("erased:{user_id}")
}

/// Rows one sealing transaction converts: short transactions, so a large table does not hold the writer.
const SEAL_BATCH: i64 = 500;

/// Seals the phones of rows stored before phones were sealed (migration `000027_sealed_phones` left each
/// one's plain phone in `phone_hash` and no sealed copy) and returns how many it sealed. Idempotent: a
/// sealed row is never read again, and instances starting together on one database each convert a row
/// at most once (the update is conditional). On SQLite the file is then rewritten (`VACUUM`) and the
/// write-ahead log emptied, because the pages a plain phone was in would otherwise keep it in free space.
pub fn seal_plain(conn: &mut AnyConnection, secrets: &SecretBox) -> anyhow::Result<usize> {
    let mut sealed = 0;
    loop {
        let done = db::transaction(conn, Tx::Write, |conn| -> QueryResult<usize> {
            let plain: Vec<(i64, String)> = users::table
                .filter(users::phone_sealed.is_null())
                .filter(users::erased_at.is_null())
                .select((users::id, users::phone_hash))
                .order(users::id)
                .limit(SEAL_BATCH)
                .load(conn)?;
            for (id, phone) in &plain {
                let stored = seal(secrets, phone);
                diesel::update(users::table.find(id).filter(users::phone_sealed.is_null()))
                    .set((
                        users::phone_hash.eq(&stored.hash),
                        users::phone_sealed.eq(&stored.sealed),
                    ))
                    .execute(conn)?;
            }
            Ok(plain.len())
        })?;
        sealed += done;
        if done < SEAL_BATCH as usize {
            break;
        }
    }
    if sealed > 0 {
        if let AnyConnection::Sqlite(lite) = conn {
            lite.batch_execute("VACUUM;")?;
            empty_the_log(lite)?;
        }
    }
    Ok(sealed)
}

/// Copies the whole write-ahead log into the file and truncates it. A reader still on an older snapshot
/// (another connection's read, the checkpointer) makes a checkpoint stop short, leaving the old pages in
/// the file and the log: it is tried again until it completes, for at most [`CHECKPOINT_PATIENCE`].
fn empty_the_log(lite: &mut diesel::SqliteConnection) -> anyhow::Result<()> {
    #[derive(QueryableByName)]
    struct Checkpoint {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        busy: i32,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        log: i32,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        checkpointed: i32,
    }
    let started = std::time::Instant::now();
    loop {
        let c: Checkpoint = diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").get_result(lite)?;
        if c.busy == 0 && c.checkpointed >= c.log {
            return Ok(());
        }
        if started.elapsed() > CHECKPOINT_PATIENCE {
            // The rows are sealed; only free pages may still hold a plain phone, until the next checkpoint.
            tracing::warn!(
                busy = c.busy,
                log_pages = c.log,
                copied = c.checkpointed,
                "the write-ahead log could not be emptied after sealing phones"
            );
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// How long sealing waits for other readers to let the log be emptied.
const CHECKPOINT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_phone_is_sealed_and_hashed_and_opens_again() {
        let secrets = SecretBox::from_hex(&"ab".repeat(32)).unwrap();
        let stored = seal(&secrets, "13800138000");
        assert!(!stored.hash.contains("13800138000"));
        assert!(!stored.sealed.contains("13800138000"));
        assert_eq!(stored.hash, secrets.lookup_hash("13800138000"));
        assert_eq!(secrets.open(&stored.sealed).as_deref(), Some("13800138000"));
        assert_ne!(erased_marker(7), stored.hash);
    }
}
