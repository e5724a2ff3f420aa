//! Platform keys that the service generates on first start when none are configured. They are kept in
//! the database so that every instance and every CLI command on that database shares them.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamp};
use rand::RngCore;

use crate::db::schema::platform_keys;
use crate::db::AnyConnection;

pub const JWT_SECRET: &str = "jwt_hs256_secret";
pub const SECRETS_KEY: &str = "secrets_box_key";

/// Returns the stored value of `name`, storing `generate()` first if there is none. Two instances starting
/// together both try to insert; the database keeps the first and both read it back.
pub fn get_or_create(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    name: &str,
    generate: impl FnOnce() -> String,
) -> QueryResult<String> {
    let existing: Option<String> = platform_keys::table
        .find(name)
        .select(platform_keys::value)
        .first(conn)
        .optional()?;
    if let Some(value) = existing {
        return Ok(value);
    }
    diesel::sql_query(
        "INSERT INTO platform_keys (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind::<Text, _>(name)
    .bind::<Text, _>(generate())
    .bind::<Timestamp, _>(now)
    .execute(conn)?;
    platform_keys::table
        .find(name)
        .select(platform_keys::value)
        .first(conn)
}

/// 32 random bytes, hex-encoded.
pub fn random_hex_32() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}
