//! Bindings over HTTP: the person's codes and bindings, and the provider's signed submission of a code.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::codes;
use super::store::{self, BindingError, BindingRow, EXTERNAL_REF_MAX_CHARS};
use crate::auth::api_keys::Owner;
use crate::auth::extract::Member;
use crate::auth::signature;
use crate::error::{ApiError, ApiResult, ErrorCode, Problem};
use crate::http::json::{self, ApiJson};
use crate::state::AppState;

impl From<BindingError> for ApiError {
    fn from(e: BindingError) -> ApiError {
        let detail = e.to_string();
        match e {
            BindingError::UnknownProvider | BindingError::NoSuchBinding => ApiError::not_found(detail),
            BindingError::TooManyCodes => ApiError::conflict(ErrorCode::LimitReached, detail),
            BindingError::InvalidCode => ApiError::unprocessable(ErrorCode::BindingCodeInvalid, detail),
            BindingError::RefTaken => ApiError::conflict(ErrorCode::Conflict, detail),
            BindingError::Query(e) => e.into(),
        }
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/me/binding-codes").route(web::post().to(create_code)))
        .service(web::resource("/me/bindings").route(web::get().to(list_bindings)))
        .service(web::resource("/me/bindings/{id}").route(web::delete().to(remove_binding)))
        .service(web::resource("/provider/bindings").route(web::post().to(provider_bind)));
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The operator the code is for (`GET /api/v1/offers` and the operator's own app name it).
    pub provider_id: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BindingCode {
    /// Shown once: the person gives it to the operator's app or site. Single use.
    pub code: String,
    pub provider_id: String,
    pub expires_at: DateTime<Utc>,
}

/// A one-time code to bind an account the person holds with `provider_id` (a metro card, a bike-share
/// account) to their wallet. Ten minutes, single use, at most five unused at once.
#[utoipa::path(post, path = "/api/v1/me/binding-codes", tag = "bindings", request_body = CodeRequest,
    security(("bearer" = [])),
    responses((status = 201, body = BindingCode), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn create_code(
    state: web::Data<AppState>,
    member: Member,
    body: ApiJson<CodeRequest>,
) -> ApiResult<HttpResponse> {
    let user_id = member.0.user_id()?;
    let provider_id = body.0.provider_id;
    let code = codes::generate();
    let hash = codes::hash(&code)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a generated code did not hash")))?;
    let now = state.clock.now_naive();
    let expires_at = state
        .db
        .run(move |conn| Ok(store::issue_code(conn, now, user_id, provider_id, &hash)?))
        .await?;
    Ok(HttpResponse::Created().json(BindingCode {
        code,
        provider_id: provider_id.to_string(),
        expires_at: expires_at.and_utc(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BindingView {
    pub binding_id: String,
    pub provider_id: String,
    pub provider_name: String,
    pub external_ref: String,
    pub created_at: DateTime<Utc>,
}

impl From<BindingRow> for BindingView {
    fn from(row: BindingRow) -> BindingView {
        BindingView {
            binding_id: row.id.to_string(),
            provider_id: row.provider_id.to_string(),
            provider_name: row.provider_name,
            external_ref: row.external_ref,
            created_at: row.created_at.and_utc(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BindingList {
    pub items: Vec<BindingView>,
}

/// The caller's live bindings.
#[utoipa::path(get, path = "/api/v1/me/bindings", tag = "bindings", security(("bearer" = [])),
    responses((status = 200, body = BindingList), (status = 401, body = Problem)))]
pub async fn list_bindings(state: web::Data<AppState>, member: Member) -> ApiResult<HttpResponse> {
    let user_id = member.0.user_id()?;
    let rows = state.db.run(move |conn| Ok(store::list(conn, user_id)?)).await?;
    Ok(HttpResponse::Ok().json(BindingList {
        items: rows.into_iter().map(Into::into).collect(),
    }))
}

/// Remove a binding: the operator's posts by its reference are refused from now on (422 `unbound`).
#[utoipa::path(delete, path = "/api/v1/me/bindings/{id}", tag = "bindings", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn remove_binding(
    state: web::Data<AppState>,
    member: Member,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let user_id = member.0.user_id()?;
    let id = id.into_inner();
    let now = state.clock.now_naive();
    state
        .db
        .run(move |conn| Ok(store::remove(conn, now, user_id, id)?))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindRequest {
    /// The code the person was given.
    pub code: String,
    /// The operator's own reference for the person (card number, account id), 1 to 128 characters.
    pub external_ref: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Bound {
    pub binding_id: String,
}

/// Failed code submissions one provider may make per [`FAILURE_WINDOW`]: far more than honest typos,
/// far too few to find a live code among 2^50.
pub const FAILURES_PER_WINDOW: u64 = 20;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(600);

/// Bind the person who holds `code` to the calling provider's `external_ref` (signed). Activities may
/// then name `external_ref` instead of `user_id`. Failed submissions are throttled per provider (429).
#[utoipa::path(post, path = "/api/v1/provider/bindings", tag = "bindings", request_body = BindRequest,
    params(("X-Key-Id" = String, Header), ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 201, body = Bound), (status = 401, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn provider_bind(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = json::read_body(&req, &mut payload).await?;
    let caller = signature::verify(&req, &body, &state, Owner::Provider).await?;
    let BindRequest { code, external_ref } = json::parse(&body)?;
    let external_ref = external_ref.trim().to_string();
    let ref_chars = external_ref.chars().count();
    if ref_chars == 0 || ref_chars > EXTERNAL_REF_MAX_CHARS || external_ref.chars().any(char::is_control) {
        return Err(ApiError::field(
            "external_ref",
            format!("must be 1 to {EXTERNAL_REF_MAX_CHARS} characters, without control characters"),
        ));
    }
    let provider_id = caller.owner_id;
    let failures = format!("binding-failures:{provider_id}");
    let attempt = state
        .cache
        .increment(&failures, FAILURE_WINDOW)
        .await
        .map_err(|e| ApiError::unavailable_because("the binding allowance is unavailable", e))?;
    if attempt.count > FAILURES_PER_WINDOW {
        give_back(&state, &failures).await;
        return Err(ApiError::rate_limited(attempt.resets_in.as_secs() + 1));
    }
    let now = state.clock.now_naive();
    let bound = match codes::hash(&code) {
        None => Err(BindingError::InvalidCode.into()),
        Some(hash) => {
            state
                .db
                .run(move |conn| Ok(store::bind(conn, now, provider_id, &hash, &external_ref)?))
                .await
        }
    };
    // Only a wrong code counts against the provider's allowance.
    if !matches!(&bound, Err(e) if e.code == ErrorCode::BindingCodeInvalid) {
        give_back(&state, &failures).await;
    }
    Ok(HttpResponse::Created().json(Bound {
        binding_id: bound?.to_string(),
    }))
}

async fn give_back(state: &AppState, key: &str) {
    if let Err(e) = state.cache.refund(key).await {
        tracing::warn!(error = %e, "a binding attempt could not be given back");
    }
}
