//! Idempotency keys for requests that create or move value: stored with a digest of the request and the
//! answer, in the same transaction as the effect, so a replay gets the original answer and a crash
//! leaves neither. A refusal (a 4xx decided against the data: short of points, out of stock) is an
//! answer too and is stored the same way, so a retry is refused again even once the points have come;
//! a failure (5xx) stores nothing and the retry runs afresh.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text, Timestamp};

use crate::clock::Clock;
use crate::db::columns::columns;
use crate::db::prepared::{insert_rows, matching, Planning};
use crate::error::ErrorCode;
use sha2::{Digest, Sha256};

use crate::db::schema::idempotency_keys;
use crate::db::AnyConnection;
use crate::error::ApiError;

pub const HEADER: &str = "idempotency-key";

/// The longest `Idempotency-Key` accepted, in (ASCII) characters: ample for a UUID or a client's own
/// composite key, while every stored key stays a short part of the table's primary key.
pub const MAX_KEY_LEN: usize = 255;

/// The `Idempotency-Key` header: 1 to [`MAX_KEY_LEN`] visible ASCII characters.
pub fn required_key(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req.headers().get(HEADER).ok_or_else(|| {
        ApiError::bad_request(
            ErrorCode::IdempotencyKeyRequired,
            "this request needs an Idempotency-Key header",
        )
    })?;
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidIdempotencyKey,
                format!("Idempotency-Key must be 1-{MAX_KEY_LEN} visible ASCII characters"),
            )
        })?;
    Ok(key.to_string())
}

/// A digest of what the request asks for (its parsed body, so formatting does not matter). Digests are
/// stored, so `what` must be made of the request's own texts (its JSON, fixed names), never of `Debug`
/// output: a variant renamed would change the digest, and every retry of a stored request would conflict.
pub fn request_hash(what: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(what.to_string().as_bytes()))
}

pub enum Claim {
    /// First use of this key: do the work, then `complete`.
    New,
    /// Seen before with the same request: answer this again.
    Replay { status: StatusCode, body: String },
}

/// Claims `key` for `scope` inside the caller's transaction, at `clock`'s time. Concurrent claims of one
/// key queue on the primary key; the later one sees the first one's stored answer once it commits.
pub fn claim(
    conn: &mut AnyConnection,
    clock: &Clock,
    scope: &str,
    key: &str,
    hash: &str,
) -> Result<Claim, ApiError> {
    let inserted = diesel::sql_query(
        "INSERT INTO idempotency_keys (scope, idempotency_key, request_hash, status, response, created_at) \
         VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT (scope, idempotency_key) DO NOTHING",
    )
    .bind::<Text, _>(scope)
    .bind::<Text, _>(key)
    .bind::<Text, _>(hash)
    .bind::<Timestamp, _>(clock.now_naive())
    .execute(conn)?;
    if inserted == 1 {
        return Ok(Claim::New);
    }
    let Some(stored) = idempotency_keys::table
        .find((scope, key))
        .select(Stored::as_select())
        .first::<Stored>(conn)
        .optional()?
    else {
        // The retention sweep deleted it since: the key is past its retention, so this is a new request.
        return claim(conn, clock, scope, key, hash);
    };
    let (status, body) = stored.replay(hash)?;
    Ok(Claim::Replay { status, body })
}

/// A key's stored request digest and answer.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = idempotency_keys)]
pub struct Stored {
    request_hash: String,
    status: i32,
    response: String,
}

impl Stored {
    /// The stored answer for a request with digest `hash`, or the conflict if it is another request.
    pub fn replay(&self, hash: &str) -> Result<(StatusCode, String), ApiError> {
        if self.request_hash != hash {
            return Err(ApiError::conflict(
                ErrorCode::IdempotencyConflict,
                "this Idempotency-Key was used with a different request",
            ));
        }
        let status = u16::try_from(self.status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("stored idempotent answer has no status")))?;
        Ok((status, self.response.clone()))
    }
}

columns! {
    /// A (scope, key) pair, as [`stored`] looks it up.
    idempotency_keys for (&str, &str), |(scope, key)| {
        scope: *scope,
        idempotency_key: *key,
    }
}

/// The stored answers of any of these (scope, key) pairs, in one query.
pub fn stored(
    conn: &mut AnyConnection,
    keys: &[(&str, &str)],
    planning: Planning,
) -> Result<HashMap<(String, String), Stored>, ApiError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let mut rows: Vec<(String, String, String, i32, String)> = Vec::new();
    for query in matching::<(Text, Text, Text, Integer, Text), _, _>(
        conn,
        idempotency_keys::table,
        "SELECT scope, idempotency_key, request_hash, status, response FROM idempotency_keys",
        keys,
        planning,
    ) {
        rows.extend(query.load_rows(conn)?);
    }
    Ok(rows
        .into_iter()
        .map(|(scope, idempotency_key, request_hash, status, response)| {
            let stored = Stored {
                request_hash,
                status,
                response,
            };
            ((scope, idempotency_key), stored)
        })
        .collect())
}

/// A new key with its answer, to store in one go with others (see [`store_all`]).
#[derive(Debug)]
pub struct Answered<'a> {
    pub scope: &'a str,
    pub idempotency_key: &'a str,
    pub request_hash: &'a str,
    pub status: i32,
    pub response: &'a str,
    pub created_at: NaiveDateTime,
}

columns! {
    idempotency_keys for Answered<'_>, |row| {
        scope: row.scope,
        idempotency_key: row.idempotency_key,
        request_hash: row.request_hash,
        status: row.status,
        response: row.response,
        created_at: row.created_at,
    }
}

/// Stores new keys with their answers in multi-row statements. A key stored meanwhile by another
/// transaction makes it fail (a unique violation), and the caller must roll back and take the one-by-one
/// path.
pub fn store_all(conn: &mut AnyConnection, answered: &[Answered<'_>]) -> Result<(), ApiError> {
    insert_rows(conn, idempotency_keys::table, answered)?;
    Ok(())
}

/// Stores the answer of a claimed key.
pub fn complete(
    conn: &mut AnyConnection,
    scope: &str,
    key: &str,
    status: StatusCode,
    body: &str,
) -> Result<(), ApiError> {
    diesel::update(idempotency_keys::table.find((scope, key)))
        .set((
            idempotency_keys::status.eq(i32::from(status.as_u16())),
            idempotency_keys::response.eq(body),
        ))
        .execute(conn)?;
    Ok(())
}

/// The answer to store under a key: the step's body with `status`, or its refusal (a 4xx) as a problem
/// document. A failure (5xx) is no answer: it stays the error, and nothing is stored.
pub fn answer_of(
    outcome: Result<String, ApiError>,
    status: StatusCode,
) -> Result<(StatusCode, String), ApiError> {
    match outcome {
        Ok(body) => Ok((status, body)),
        Err(refused) if refused.status.is_client_error() => Ok((refused.status, refused.problem_json())),
        Err(failure) => Err(failure),
    }
}

/// The HTTP response of an answer, stored or new: refusals are problem documents.
pub fn respond((status, body): (StatusCode, String)) -> HttpResponse {
    let content_type = if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    };
    HttpResponse::build(status).content_type(content_type).body(body)
}

/// Runs a value-moving step in one write transaction, under an optional `Idempotency-Key`: with a key,
/// a replay answers what the first call answered (its refusal included) and a different request under
/// the key is a 409; without one, the step simply runs. `step` returns the body of a `status` answer.
pub fn run<F>(
    conn: &mut AnyConnection,
    clock: &Clock,
    scope: &str,
    key: Option<&str>,
    hash: &str,
    status: StatusCode,
    step: F,
) -> Result<(StatusCode, String), ApiError>
where
    F: FnOnce(&mut AnyConnection) -> Result<String, ApiError>,
{
    crate::db::transaction(conn, crate::db::Tx::Write, |conn| {
        let Some(key) = key else {
            return step(conn).map(|body| (status, body));
        };
        if let Claim::Replay { status, body } = claim(conn, clock, scope, key, hash)? {
            return Ok((status, body));
        }
        // The step in a savepoint: a refusal undoes the step alone, and the claim keeps it as the answer.
        let answer = answer_of(crate::db::transaction(conn, crate::db::Tx::Write, step), status)?;
        complete(conn, scope, key, answer.0, &answer.1)?;
        Ok(answer)
    })
}

/// A create under a required key (the handlers of `★` routes): [`run`] on a pooled connection, answered
/// 201 with the step's body the first time and the stored answer after. The step gets the clock's now.
pub async fn create<F>(
    db: &crate::db::Db,
    clock: &Clock,
    scope: String,
    key: String,
    hash: String,
    step: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce(&mut AnyConnection, NaiveDateTime) -> Result<String, ApiError> + Send + 'static,
{
    let clock = clock.clone();
    let answered = db
        .run(move |conn| {
            run(
                conn,
                &clock,
                &scope,
                Some(&key),
                &hash,
                StatusCode::CREATED,
                |conn| step(conn, clock.now_naive()),
            )
        })
        .await?;
    Ok(respond(answered))
}

/// The body of an answer, as [`run`]'s step returns it.
pub fn body_of<T: serde::Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(ApiError::internal)
}

/// Deletes at most `batch` records stored before `cutoff`, in one statement, and answers how many. A
/// key past its retention is forgotten: a retry under it is a new request.
pub fn delete_stored_before(
    conn: &mut AnyConnection,
    cutoff: NaiveDateTime,
    batch: i64,
) -> QueryResult<usize> {
    // By primary key: SQLite keeps this table without a rowid.
    diesel::sql_query(
        "DELETE FROM idempotency_keys WHERE (scope, idempotency_key) IN \
         (SELECT scope, idempotency_key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
    )
    .bind::<Timestamp, _>(cutoff)
    .bind::<BigInt, _>(batch)
    .execute(conn)
}

/// The `Idempotency-Key` header where it is optional: absent is fine, malformed is not.
pub fn optional_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    if req.headers().contains_key(HEADER) {
        required_key(req).map(Some)
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Stored digests must stay what they were: a retry of a request stored before a change must not be
    /// taken for a different request.
    #[test]
    fn a_request_digest_is_fixed_and_ignores_key_order() {
        let transfer = json!({"to_account_id": "2", "points": 5, "memo": null});
        assert_eq!(
            request_hash(&transfer),
            "a9b646db7c9bc42a1983f8e908c25227fdefef817e4a350f0dc86dabeaf5d60d"
        );
        assert_eq!(
            request_hash(&json!({"memo": null, "points": 5, "to_account_id": "2"})),
            request_hash(&transfer)
        );
    }
}
