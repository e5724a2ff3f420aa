//! Signing keys of partners and data providers: issued with a random secret that is shown once and
//! stored only encrypted, rotated by their owners (the old key keeps working for an overlap, then ends
//! by itself) or by holding at most two active keys, revoked by administrators.
//!
//! `revoked_at` is when a key stops working: NULL for a live key, a past time for a revoked one, a future
//! time for a key being rotated out.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use rand::RngCore;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::schema::api_keys;
use crate::db::AnyConnection;
use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::secrets::SecretBox;

/// Active keys an owner may hold at once: the current one and its successor during a rotation.
pub const MAX_ACTIVE_KEYS: i64 = 2;

crate::text_enum! {
    /// Who a key belongs to: stored with the key, so a partner's key never signs a provider's call.
    pub enum Owner {
        Provider = "provider",
        Partner = "partner",
        /// Another carbon-inclusive platform, calling the claim registry.
        Peer = "peer",
    }
}

impl Owner {
    fn key_prefix(self) -> &'static str {
        match self {
            Owner::Provider => "pv",
            Owner::Partner => "pt",
            Owner::Peer => "pe",
        }
    }
}

/// How long a rotated-out key keeps working when its owner does not say, and at most: long enough to
/// roll the new key out to every gate.
pub const DEFAULT_ROTATION_OVERLAP_SECS: i64 = 86_400;
pub const MAX_ROTATION_OVERLAP_SECS: i64 = 7 * 86_400;

/// Why a key was not issued.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("at most {MAX_ACTIVE_KEYS} active keys; revoke the old one first")]
    TooManyKeys,
    #[error("this key is already being rotated out; sign with its successor")]
    AlreadyRotating,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> ApiError {
        match e {
            KeyError::TooManyKeys => ApiError::conflict(ErrorCode::TooManyKeys, e.to_string()),
            KeyError::AlreadyRotating => ApiError::conflict(ErrorCode::InvalidState, e.to_string()),
            KeyError::Database(e) => e.into(),
        }
    }
}

/// A key as issued: the secret is in this value and nowhere else in the clear.
#[derive(Debug, Serialize, ToSchema)]
pub struct Credentials {
    pub partner_id: String,
    pub key_id: String,
    /// Shown once; sign requests with it exactly as given.
    pub secret: String,
}

/// A key as listed: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyInfo {
    pub key_id: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

type KeyRow = (String, NaiveDateTime, Option<NaiveDateTime>);

fn key_info((key_id, created_at, revoked_at): KeyRow) -> KeyInfo {
    KeyInfo {
        key_id,
        created_at: created_at.and_utc(),
        revoked_at: revoked_at.map(|t| t.and_utc()),
    }
}

const KEY_COLUMNS: (api_keys::key_id, api_keys::created_at, api_keys::revoked_at) =
    (api_keys::key_id, api_keys::created_at, api_keys::revoked_at);

/// Random bytes in a key id: 64 bits, so ids never collide; the id is public, the secret is what protects.
const KEY_ID_BYTES: usize = 8;
/// Random bytes in a key's secret: 256 bits, beyond guessing.
const SECRET_BYTES: usize = 32;

/// A new key id and secret: random, URL-safe.
fn new_key(owner: Owner) -> (String, String) {
    let mut id = [0u8; KEY_ID_BYTES];
    let mut secret = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut id);
    rand::rngs::OsRng.fill_bytes(&mut secret);
    (
        format!("{}_{}", owner.key_prefix(), hex::encode(id)),
        URL_SAFE_NO_PAD.encode(secret),
    )
}

/// Issues a key to an owner inside the caller's transaction. Refused with 409 `too_many_keys` when the
/// owner already holds the most active keys allowed (revoke the old one first).
pub fn issue(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    secrets: &SecretBox,
    owner: Owner,
    owner_id: i64,
) -> Result<Credentials, KeyError> {
    // Two admins adding a key at once must not both find room. On PostgreSQL the count below is taken
    // under a lock on the owner's keys, held to the end of the transaction; on SQLite the write
    // transaction is the only one.
    crate::db::lock_until_commit(conn, &format!("api_keys:{}", owner.as_str()), owner_id)?;
    let active: i64 = api_keys::table
        .filter(api_keys::owner_type.eq(owner))
        .filter(api_keys::owner_id.eq(owner_id))
        .filter(api_keys::revoked_at.is_null())
        .count()
        .get_result(conn)?;
    if active >= MAX_ACTIVE_KEYS {
        return Err(KeyError::TooManyKeys);
    }
    let (key_id, secret) = new_key(owner);
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::key_id.eq(&key_id),
            api_keys::owner_type.eq(owner),
            api_keys::owner_id.eq(owner_id),
            api_keys::secret_encrypted.eq(secrets.seal(&secret)),
            api_keys::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(Credentials {
        partner_id: owner_id.to_string(),
        key_id,
        secret,
    })
}

/// The keys of an owner, newest first.
pub fn list(conn: &mut AnyConnection, owner: Owner, owner_id: i64) -> QueryResult<Vec<KeyInfo>> {
    api_keys::table
        .filter(api_keys::owner_type.eq(owner))
        .filter(api_keys::owner_id.eq(owner_id))
        .order(api_keys::created_at.desc())
        .select(KEY_COLUMNS)
        .load::<KeyRow>(conn)
        .map(|rows| rows.into_iter().map(key_info).collect())
}

/// The keys of each of these owners (of one kind), newest first, in one query: a page of a list.
pub fn list_of_owners(
    conn: &mut AnyConnection,
    owner: Owner,
    owner_ids: &[i64],
) -> QueryResult<HashMap<i64, Vec<KeyInfo>>> {
    let rows: Vec<(i64, KeyRow)> = api_keys::table
        .filter(api_keys::owner_type.eq(owner))
        .filter(api_keys::owner_id.eq_any(owner_ids))
        .order(api_keys::created_at.desc())
        .select((api_keys::owner_id, KEY_COLUMNS))
        .load(conn)?;
    let mut keys: HashMap<i64, Vec<KeyInfo>> = HashMap::new();
    for (owner_id, row) in rows {
        keys.entry(owner_id).or_default().push(key_info(row));
    }
    Ok(keys)
}

/// Revokes one of an owner's keys, with whether this call revoked it (revoking a revoked key changes
/// nothing). `None` when the owner has no such key.
pub fn revoke(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    owner: Owner,
    owner_id: i64,
    key_id: &str,
) -> QueryResult<Option<(KeyInfo, bool)>> {
    let mine = api_keys::table
        .filter(api_keys::key_id.eq(key_id))
        .filter(api_keys::owner_type.eq(owner))
        .filter(api_keys::owner_id.eq(owner_id));
    // A key being rotated out is revoked now too.
    let revoked =
        diesel::update(mine.filter(api_keys::revoked_at.is_null().or(api_keys::revoked_at.gt(now))))
            .set(api_keys::revoked_at.eq(now))
            .execute(conn)?;
    mine.select(KEY_COLUMNS)
        .first::<KeyRow>(conn)
        .optional()
        .map(|row| row.map(|row| (key_info(row), revoked == 1)))
}

/// Rotates `old_key_id`, the key a signed call was made with, inside the caller's transaction: a new key
/// is issued, and the old one keeps working until `now + overlap`, then ends by itself. A key already
/// being rotated out cannot be rotated again (its successor can), and at most [`MAX_ACTIVE_KEYS`] keys
/// may be on their way out at once, so rotations cannot pile up keys. Returns the new key and when the
/// old one ends.
pub fn rotate(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    secrets: &SecretBox,
    owner: Owner,
    owner_id: i64,
    old_key_id: &str,
    overlap: chrono::Duration,
) -> Result<(Credentials, NaiveDateTime), KeyError> {
    crate::db::lock_until_commit(conn, &format!("api_keys:{}", owner.as_str()), owner_id)?;
    let mine = api_keys::table
        .filter(api_keys::owner_type.eq(owner))
        .filter(api_keys::owner_id.eq(owner_id));
    let ending: i64 = mine
        .filter(api_keys::revoked_at.gt(now))
        .count()
        .get_result(conn)?;
    if ending >= MAX_ACTIVE_KEYS {
        return Err(KeyError::TooManyKeys);
    }
    let ends_at = now + overlap;
    let scheduled = diesel::update(
        mine.filter(api_keys::key_id.eq(old_key_id))
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(ends_at))
    .execute(conn)?;
    if scheduled == 0 {
        return Err(KeyError::AlreadyRotating);
    }
    Ok((issue(conn, now, secrets, owner, owner_id)?, ends_at))
}
