//! The registry's signed calls for peer platforms: which of a set of claims anyone holds, and registering
//! a set for the caller. Only claim ids and times cross: nothing of the people whose trips they are.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::store::{self, Held, Holder};
use crate::auth::api_keys::Owner;
use crate::auth::signature::{self, MAX_SKEW_SECS};
use crate::db::prepared::Planning;
use crate::db::{self, Tx};
use crate::domain::claim::ClaimId;
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::http::json;
use crate::state::AppState;

/// The most claims one call names: a thousand trips checked in one round trip, a few tens of KB.
pub const CLAIMS_MAX: usize = 1000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// 1 to 1,000 claim ids (64 lowercase hex digits each).
    pub claims: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResult {
    pub claim: String,
    pub claimed: bool,
    /// When its holder claimed the trip; absent when nobody holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResponse {
    /// One result per claim asked, in order.
    pub results: Vec<CheckResult>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 1 to 1,000 claims.
    pub claims: Vec<ClaimEntry>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimEntry {
    pub claim: String,
    /// When the caller credited the trip (RFC 3339; not in the future).
    #[serde(deserialize_with = "crate::http::timestamp::required")]
    pub claimed_at: DateTime<FixedOffset>,
}

crate::text_enum! {
    /// What became of one claim a peer registered.
    pub enum RegisterStatus {
        /// The caller holds it: registered now, or by the caller before (a retry).
        Registered = "registered",
        /// Another platform, Tanhui included, held it first.
        AlreadyClaimed = "already_claimed",
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegisterResult {
    pub claim: String,
    pub status: RegisterStatus,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegisterResponse {
    /// One result per claim named, in order.
    pub results: Vec<RegisterResult>,
}

/// Which of these claims any platform holds, and since when. Signed with a peer's key.
#[utoipa::path(post, path = "/api/v1/registry/claims/check", tag = "registry", request_body = CheckRequest,
    params(("X-Key-Id" = String, Header), ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 200, body = CheckResponse), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn check_claims(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = json::read_body(&req, &mut payload).await?;
    signature::verify(&req, &body, &state, Owner::Peer).await?;
    let request: CheckRequest = json::parse(&body)?;
    check_count(request.claims.len())?;
    let mut errors = Vec::new();
    let claims: Vec<ClaimId> = request
        .claims
        .iter()
        .enumerate()
        .filter_map(|(i, text)| claim_id(text, format!("claims[{i}]"), &mut errors))
        .collect();
    refuse_any(errors)?;
    // The primary, not a replica: a peer checks just before it credits, and must see the latest claims.
    let (claims, held) = state
        .db
        .run(move |conn| {
            let keys: Vec<&ClaimId> = claims.iter().collect();
            let held = store::holders(conn, &keys, Planning::EachTime)?;
            Ok((claims, held))
        })
        .await?;
    let results = claims
        .into_iter()
        .map(|claim| {
            let claimed_at = held.get(claim.as_str()).map(|h| h.claimed_at.and_utc());
            CheckResult {
                claim: claim.as_str().to_string(),
                claimed: claimed_at.is_some(),
                claimed_at,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(CheckResponse { results }))
}

/// Register claims for the calling peer: each one it is the first to register is `registered` (and so is
/// one it registered before: a retry), each one another platform holds, Tanhui included, is
/// `already_claimed`. A claim has one holder, whatever instance each call reaches. Signed with a peer's
/// key.
#[utoipa::path(post, path = "/api/v1/registry/claims", tag = "registry", request_body = RegisterRequest,
    params(("X-Key-Id" = String, Header), ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 200, body = RegisterResponse), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn register_claims(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = json::read_body(&req, &mut payload).await?;
    let now = state.clock.now();
    let caller = signature::verify(&req, &body, &state, Owner::Peer).await?;
    let request: RegisterRequest = json::parse(&body)?;
    let entries = registrations(&request, now)?;
    let peer = Holder::Peer(caller.owner_id);
    let now = now.naive_utc();
    let (entries, registered, held) = state
        .db
        .run(move |conn| {
            db::transaction(conn, Tx::Write, |conn| {
                let named: Vec<(&ClaimId, NaiveDateTime)> = entries.iter().map(|(c, at)| (c, *at)).collect();
                let registered = store::register(conn, peer, &named, now)?;
                let others: Vec<&ClaimId> = entries
                    .iter()
                    .map(|(claim, _)| claim)
                    .filter(|claim| !registered.contains(claim.as_str()))
                    .collect();
                let held: HashMap<String, Held> = store::holders(conn, &others, Planning::EachTime)?;
                Ok::<_, ApiError>((entries, registered, held))
            })
        })
        .await?;
    let results = entries
        .into_iter()
        .map(|(claim, _)| {
            let claim = claim.as_str().to_string();
            // Held by nobody after a refused insert: its holder gave it up in between (Tanhui releasing
            // a rejected activity's claim). It was held when this call asked; the peer may ask again.
            let mine = registered.contains(&claim) || held.get(&claim).is_some_and(|h| h.holder == peer);
            let status = if mine {
                RegisterStatus::Registered
            } else {
                RegisterStatus::AlreadyClaimed
            };
            RegisterResult { claim, status }
        })
        .collect();
    Ok(HttpResponse::Ok().json(RegisterResponse { results }))
}

/// The claims of a registration, each with when it was claimed (UTC), checked: 1 to [`CLAIMS_MAX`],
/// well-formed ids, times not in the future (beyond the clock skew signed calls are allowed).
fn registrations(request: &RegisterRequest, now: DateTime<Utc>) -> ApiResult<Vec<(ClaimId, NaiveDateTime)>> {
    check_count(request.claims.len())?;
    let latest = now + Duration::seconds(MAX_SKEW_SECS as i64);
    let mut errors = Vec::new();
    let mut entries = Vec::with_capacity(request.claims.len());
    for (i, entry) in request.claims.iter().enumerate() {
        let claimed_at = entry.claimed_at.with_timezone(&Utc);
        if claimed_at > latest {
            errors.push(FieldError {
                field: format!("claims[{i}].claimed_at"),
                message: "is in the future".into(),
            });
        }
        if let Some(claim) = claim_id(&entry.claim, format!("claims[{i}].claim"), &mut errors) {
            entries.push((claim, claimed_at.naive_utc()));
        }
    }
    refuse_any(errors)?;
    Ok(entries)
}

fn check_count(count: usize) -> ApiResult<()> {
    if (1..=CLAIMS_MAX).contains(&count) {
        Ok(())
    } else {
        Err(ApiError::field(
            "claims",
            format!("must hold 1 to {CLAIMS_MAX} claims"),
        ))
    }
}

/// `text` as a claim id, or an error naming `field`.
fn claim_id(text: &str, field: String, errors: &mut Vec<FieldError>) -> Option<ClaimId> {
    ClaimId::parse(text)
        .map_err(|message| errors.push(FieldError { field, message }))
        .ok()
}

fn refuse_any(errors: Vec<FieldError>) -> ApiResult<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}
