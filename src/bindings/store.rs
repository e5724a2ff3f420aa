//! Binding codes and bindings as stored; each change in one transaction.

use std::collections::HashMap;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Timestamp};

use crate::db::schema::{binding_codes, bindings, providers};
use crate::db::{self, AnyConnection, Tx};

/// How long a binding code can be used.
pub const CODE_TTL: Duration = Duration::minutes(10);
/// Unused, unexpired codes one person may hold at once: enough for a card and a retry or two.
pub const MAX_LIVE_CODES: i64 = 5;
/// The longest operator reference kept: a card number or an account id, not a document.
pub const EXTERNAL_REF_MAX_CHARS: usize = 128;

/// Why a binding change was refused.
#[derive(Debug, thiserror::Error)]
pub enum BindingError {
    #[error("no such provider")]
    UnknownProvider,
    #[error("at most {MAX_LIVE_CODES} unused binding codes at once; use one or let them expire")]
    TooManyCodes,
    #[error("this binding code is unknown, used, expired or for another provider")]
    InvalidCode,
    #[error("this reference is bound to another account; it must be removed there first")]
    RefTaken,
    #[error("no such binding")]
    NoSuchBinding,
    #[error(transparent)]
    Query(#[from] DieselError),
}

/// A live binding, as its owner lists it.
#[derive(Debug, Clone, Queryable)]
pub struct BindingRow {
    pub id: i64,
    pub provider_id: i64,
    pub provider_name: String,
    pub external_ref: String,
    pub created_at: NaiveDateTime,
}

/// Stores a new code (by its hash) for `user_id` to bind with `provider_id`; returns its expiry.
pub fn issue_code(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    user_id: i64,
    provider_id: i64,
    code_hash: &str,
) -> Result<NaiveDateTime, BindingError> {
    db::transaction(conn, Tx::Write, |conn| {
        let provider: Option<i64> = providers::table
            .find(provider_id)
            .select(providers::id)
            .first(conn)
            .optional()?;
        provider.ok_or(BindingError::UnknownProvider)?;
        // Two requests at once may both find room for one more: the limit is against hoarding codes,
        // and one over it is harmless.
        let live: i64 = binding_codes::table
            .filter(binding_codes::user_id.eq(user_id))
            .filter(binding_codes::expires_at.gt(now))
            .filter(binding_codes::used_at.is_null())
            .count()
            .get_result(conn)?;
        if live >= MAX_LIVE_CODES {
            return Err(BindingError::TooManyCodes);
        }
        let expires_at = now + CODE_TTL;
        diesel::insert_into(binding_codes::table)
            .values((
                binding_codes::code_hash.eq(code_hash),
                binding_codes::user_id.eq(user_id),
                binding_codes::provider_id.eq(provider_id),
                binding_codes::expires_at.eq(expires_at),
                binding_codes::created_at.eq(now),
            ))
            .execute(conn)?;
        Ok(expires_at)
    })
}

/// Uses the code `code_hash` for `provider_id` and binds `external_ref` to its person. The code is
/// taken by a conditional update, so of two operators submitting it at once exactly one binds. The
/// same reference bound again to the same person is that binding; bound to another, refused (and the
/// code stays unused).
pub fn bind(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    provider_id: i64,
    code_hash: &str,
    external_ref: &str,
) -> Result<i64, BindingError> {
    db::transaction(conn, Tx::Write, |conn| {
        let user_id: i64 = diesel::update(
            binding_codes::table
                .filter(binding_codes::code_hash.eq(code_hash))
                .filter(binding_codes::provider_id.eq(provider_id))
                .filter(binding_codes::used_at.is_null())
                .filter(binding_codes::expires_at.gt(now)),
        )
        .set(binding_codes::used_at.eq(now))
        .returning(binding_codes::user_id)
        .get_result(conn)
        .optional()?
        .ok_or(BindingError::InvalidCode)?;
        if let Some((id, owner)) = live_binding(conn, provider_id, external_ref)? {
            return if owner == user_id {
                Ok(id)
            } else {
                Err(BindingError::RefTaken)
            };
        }
        diesel::insert_into(bindings::table)
            .values((
                bindings::user_id.eq(user_id),
                bindings::provider_id.eq(provider_id),
                bindings::external_ref.eq(external_ref),
                bindings::created_at.eq(now),
            ))
            .returning(bindings::id)
            .get_result(conn)
            .map_err(|e| match e {
                DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => BindingError::RefTaken,
                other => other.into(),
            })
    })
}

fn live_binding(
    conn: &mut AnyConnection,
    provider_id: i64,
    external_ref: &str,
) -> QueryResult<Option<(i64, i64)>> {
    bindings::table
        .filter(bindings::provider_id.eq(provider_id))
        .filter(bindings::external_ref.eq(external_ref))
        .filter(bindings::removed_at.is_null())
        .select((bindings::id, bindings::user_id))
        .first(conn)
        .optional()
}

/// The person's live bindings, oldest first.
pub fn list(conn: &mut AnyConnection, user_id: i64) -> QueryResult<Vec<BindingRow>> {
    bindings::table
        .inner_join(providers::table)
        .filter(bindings::user_id.eq(user_id))
        .filter(bindings::removed_at.is_null())
        .order(bindings::id)
        .select((
            bindings::id,
            bindings::provider_id,
            providers::name,
            bindings::external_ref,
            bindings::created_at,
        ))
        .load(conn)
}

/// Ends the person's binding `id`: from now on the operator's posts by its reference are refused.
pub fn remove(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    user_id: i64,
    id: i64,
) -> Result<(), BindingError> {
    let removed = diesel::update(
        bindings::table
            .filter(bindings::id.eq(id))
            .filter(bindings::user_id.eq(user_id))
            .filter(bindings::removed_at.is_null()),
    )
    .set(bindings::removed_at.eq(now))
    .execute(conn)?;
    if removed == 0 {
        return Err(BindingError::NoSuchBinding);
    }
    Ok(())
}

/// The people `provider_id`'s references are bound to, for those that are.
pub fn resolve(
    conn: &mut AnyConnection,
    provider_id: i64,
    refs: &[&str],
) -> QueryResult<HashMap<String, i64>> {
    if refs.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, i64)> = bindings::table
        .filter(bindings::provider_id.eq(provider_id))
        .filter(bindings::external_ref.eq_any(refs))
        .filter(bindings::removed_at.is_null())
        .select((bindings::external_ref, bindings::user_id))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

/// Deletes at most `batch` codes that expired before `cutoff` (used or not: a used code binds nothing
/// more, and the binding keeps its own record).
pub fn delete_expired_codes(
    conn: &mut AnyConnection,
    cutoff: NaiveDateTime,
    batch: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM binding_codes WHERE code_hash IN \
         (SELECT code_hash FROM binding_codes WHERE expires_at < $1 LIMIT $2)",
    )
    .bind::<Timestamp, _>(cutoff)
    .bind::<BigInt, _>(batch)
    .execute(conn)
}
