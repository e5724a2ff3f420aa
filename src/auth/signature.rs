//! Signed requests from partners and data providers (README, "Partner calls"):
//! `X-Signature = hex(HMAC-SHA256(secret, METHOD\nPATH_WITH_QUERY\nTIMESTAMP\nNONCE\nhex(SHA256(body))))`,
//! with `X-Timestamp` within ±300 s and `X-Nonce` unique per key for 10 minutes.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::HttpRequest;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::api_keys::Owner;
use crate::db::schema::{api_keys, request_nonces};
use crate::db::AnyConnection;
use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::state::AppState;

/// How far `X-Timestamp` may be from the server's clock: five minutes of a partner's clock drift and
/// transit, and no more, so a captured request soon stops working.
pub const MAX_SKEW_SECS: u64 = 300;
/// The longest `X-Nonce`: a UUID or a hash fits, and no caller fills the nonce store with large keys.
pub const NONCE_MAX_LEN: usize = 128;
/// A timestamp is checked in whole seconds, so a request is accepted for up to `2 × MAX_SKEW_SECS + 1` s
/// of real time (from `MAX_SKEW_SECS` before its timestamp to just under `MAX_SKEW_SECS + 1` after). Its
/// nonce is remembered from its first use for longer than that, so no copy can be replayed at the edge.
pub const NONCE_TTL: Duration = Duration::from_secs(2 * MAX_SKEW_SECS + 5);
const _: () = assert!(NONCE_TTL.as_secs() > 2 * MAX_SKEW_SECS + 1);

/// The caller a valid signature proves.
#[derive(Debug, Clone)]
pub struct SignedCaller {
    pub key_id: String,
    pub owner_type: Owner,
    pub owner_id: i64,
}

fn refused(code: ErrorCode, detail: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, detail)
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Result<&'a str, ApiError> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            refused(
                ErrorCode::SignatureMissing,
                &format!("the {name} header is required"),
            )
        })
}

/// The string that is signed.
pub fn canonical(method: &str, path_with_query: &str, timestamp: &str, nonce: &str, body: &[u8]) -> String {
    format!(
        "{method}\n{path_with_query}\n{timestamp}\n{nonce}\n{}",
        hex::encode(Sha256::digest(body))
    )
}

pub fn sign(secret: &str, canonical: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(canonical.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The four signing headers of a request.
struct SigningHeaders {
    key_id: String,
    timestamp: String,
    nonce: String,
    signature: String,
}

impl SigningHeaders {
    /// Every header present and non-empty, the nonce not too long.
    fn read(req: &HttpRequest) -> Result<SigningHeaders, ApiError> {
        let headers = SigningHeaders {
            key_id: header(req, "x-key-id")?.to_string(),
            timestamp: header(req, "x-timestamp")?.to_string(),
            nonce: header(req, "x-nonce")?.to_string(),
            signature: header(req, "x-signature")?.to_string(),
        };
        if headers.nonce.len() > NONCE_MAX_LEN {
            return Err(refused(
                ErrorCode::BadNonce,
                &format!("X-Nonce is at most {NONCE_MAX_LEN} characters"),
            ));
        }
        Ok(headers)
    }

    /// The timestamp is unix seconds within `MAX_SKEW_SECS` of `now`.
    fn check_timestamp(&self, now: i64) -> Result<(), ApiError> {
        let at: i64 = self
            .timestamp
            .parse()
            .map_err(|_| refused(ErrorCode::StaleTimestamp, "X-Timestamp must be unix seconds"))?;
        // `abs_diff`: any i64 is a valid header value, and a difference near i64::MIN must not overflow.
        if now.abs_diff(at) > MAX_SKEW_SECS {
            return Err(refused(
                ErrorCode::StaleTimestamp,
                &format!("X-Timestamp is more than {MAX_SKEW_SECS} s from the server's clock"),
            ));
        }
        Ok(())
    }
}

/// A stored key: its owner, and its secret still sealed.
struct StoredKey {
    owner_id: i64,
    sealed: String,
}

/// The key of this id held by this kind of owner and not revoked.
async fn find_key(state: &AppState, key_id: &str, owner: Owner) -> Result<StoredKey, ApiError> {
    let lookup = key_id.to_string();
    let found = state
        .db
        .run(move |conn| {
            let row: Option<(Owner, i64, String, Option<NaiveDateTime>)> = api_keys::table
                .find(&lookup)
                .select((
                    api_keys::owner_type,
                    api_keys::owner_id,
                    api_keys::secret_encrypted,
                    api_keys::revoked_at,
                ))
                .first(conn)
                .optional()?;
            Ok(row)
        })
        .await?;
    let Some((_, owner_id, sealed, revoked)) = found.filter(|r| r.0 == owner) else {
        return Err(refused(ErrorCode::UnknownKey, "no such key"));
    };
    // A key being rotated out works until its end.
    if revoked.is_some_and(|end| end <= state.clock.now_naive()) {
        return Err(refused(ErrorCode::KeyRevoked, "this key has been revoked"));
    }
    Ok(StoredKey { owner_id, sealed })
}

/// Whether X-Signature is this request's signature under `secret`, compared in constant time.
fn signature_matches(req: &HttpRequest, body: &[u8], headers: &SigningHeaders, secret: &str) -> bool {
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_string(), |p| p.as_str().to_string());
    let expected = sign(
        secret,
        &canonical(
            req.method().as_str(),
            &path,
            &headers.timestamp,
            &headers.nonce,
            body,
        ),
    );
    let given = headers.signature.to_ascii_lowercase();
    subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), given.as_bytes()).into()
}

/// Checks the signature of a request whose body has been read. Order: headers, timestamp, key,
/// signature (constant time), then the nonce, so an unsigned request cannot burn someone's nonce.
pub async fn verify(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
    owner: Owner,
) -> Result<SignedCaller, ApiError> {
    let headers = SigningHeaders::read(req)?;
    headers.check_timestamp(state.clock.unix_seconds())?;
    let key = find_key(state, &headers.key_id, owner).await?;
    let secret = state.secrets.open(&key.sealed).ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!(
            "stored secret of key {} does not decrypt",
            headers.key_id
        ))
    })?;
    if !signature_matches(req, body, &headers, &secret) {
        return Err(refused(ErrorCode::BadSignature, "the signature does not match"));
    }
    // Counted once the signature proves the key's holder sent it: nobody else can spend its allowance,
    // and a refused call keeps its nonce for the retry.
    super::rate_limit::key_request(state, &headers.key_id).await?;
    if !remember_nonce(state, &headers.key_id, &headers.nonce).await? {
        return Err(refused(ErrorCode::NonceReplayed, "this nonce was already used"));
    }
    Ok(SignedCaller {
        key_id: headers.key_id,
        owner_type: owner,
        owner_id: key.owner_id,
    })
}

/// True when the nonce is new for this key. Always the database, which every instance shares, also with
/// Redis configured: a nonce must be remembered for as long as a copy of its request could be replayed,
/// and Redis may be restarted empty or stop answering (its fallback would not know the nonces it held).
async fn remember_nonce(state: &AppState, key_id: &str, nonce: &str) -> Result<bool, ApiError> {
    let (key_id, nonce) = (key_id.to_string(), nonce.to_string());
    let now = state.clock.now_naive();
    state
        .db
        .run(move |conn| Ok(insert_nonce(conn, now, &key_id, &nonce)?))
        .await
}

fn insert_nonce(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    key_id: &str,
    nonce: &str,
) -> QueryResult<bool> {
    diesel::delete(request_nonces::table.filter(request_nonces::expires_at.lt(now))).execute(conn)?;
    let inserted = diesel::sql_query(
        "INSERT INTO request_nonces (key_id, nonce, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind::<diesel::sql_types::Text, _>(key_id)
    .bind::<diesel::sql_types::Text, _>(nonce)
    .bind::<diesel::sql_types::Timestamp, _>(now + chrono::Duration::from_std(NONCE_TTL).unwrap_or_default())
    .execute(conn)?;
    Ok(inserted == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_string_and_signature() {
        let c = canonical(
            "POST",
            "/api/v1/provider/activities?x=%20",
            "1700000000",
            "n1",
            b"",
        );
        assert_eq!(
            c,
            "POST\n/api/v1/provider/activities?x=%20\n1700000000\nn1\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(sign("k", "m").len(), 64);
        assert_ne!(sign("k", "m"), sign("k", "n"));
    }

    /// The scheme as the README writes it, computed independently with openssl:
    /// `printf 'POST\n/api/v1/partner/offers?x=1\n1700000000\nnonce-1\n%s' "$(printf '%s' '{"a":1}' |
    /// openssl dgst -sha256 -hex | cut -d' ' -f2)" | openssl dgst -sha256 -hmac secret-key -hex`.
    #[test]
    fn signatures_match_an_independent_computation() {
        let c = canonical(
            "POST",
            "/api/v1/partner/offers?x=1",
            "1700000000",
            "nonce-1",
            br#"{"a":1}"#,
        );
        assert_eq!(
            sign("secret-key", &c),
            "87c207ff0e1f9a63520c2808d87380c33c6b36de8cefd8c75bcb07a6bc7eb1be"
        );
    }
}
