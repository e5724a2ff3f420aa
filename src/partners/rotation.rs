//! Partners and providers rotate their own signing keys: a signed call with the current key gets a new
//! one, and the current key keeps working for an overlap, so every gate can move to the new key before
//! the old one ends.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::{self, AuditAction, AuditEntity};
use crate::auth::api_keys::{self, Owner, DEFAULT_ROTATION_OVERLAP_SECS, MAX_ROTATION_OVERLAP_SECS};
use crate::auth::signature;
use crate::db::{self, Tx};
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::json;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/partner/keys/rotate").route(web::post().to(partner_rotate)))
        .service(web::resource("/provider/keys/rotate").route(web::post().to(provider_rotate)));
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// How long the key that signed this call keeps working, in seconds (default a day, at most seven).
    pub overlap_secs: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Rotated {
    /// The new key: sign with it from now on. The secret is shown only here.
    pub key_id: String,
    pub secret: String,
    /// The key that signed the rotation, and when it stops working.
    pub previous_key_id: String,
    pub previous_key_ends_at: DateTime<Utc>,
}

/// Rotate the calling partner's key (signed with the key to rotate).
#[utoipa::path(post, path = "/api/v1/partner/keys/rotate", tag = "partners", request_body(content = Option<RotateRequest>),
    params(("X-Key-Id" = String, Header), ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 201, body = Rotated), (status = 401, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn partner_rotate(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    rotate(req, payload, state, Owner::Partner).await
}

/// Rotate the calling provider's key (signed with the key to rotate).
#[utoipa::path(post, path = "/api/v1/provider/keys/rotate", tag = "activities", request_body(content = Option<RotateRequest>),
    params(("X-Key-Id" = String, Header), ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 201, body = Rotated), (status = 401, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn provider_rotate(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    rotate(req, payload, state, Owner::Provider).await
}

async fn rotate(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
    owner: Owner,
) -> ApiResult<HttpResponse> {
    let body = json::read_body(&req, &mut payload).await?;
    let caller = signature::verify(&req, &body, &state, owner).await?;
    let request: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateRequest::default()
    } else {
        json::parse(&body)?
    };
    let overlap_secs = request.overlap_secs.unwrap_or(DEFAULT_ROTATION_OVERLAP_SECS);
    if !(0..=MAX_ROTATION_OVERLAP_SECS).contains(&overlap_secs) {
        return Err(ApiError::field(
            "overlap_secs",
            format!("must be 0 to {MAX_ROTATION_OVERLAP_SECS} seconds"),
        ));
    }
    let now = state.clock.now_naive();
    let task_state = state.clone();
    let old = caller.key_id.clone();
    let (credentials, ends_at) = state
        .db
        .run(move |conn| {
            Ok(db::transaction(conn, Tx::Write, |conn| {
                let rotated = api_keys::rotate(
                    conn,
                    now,
                    &task_state.secrets,
                    owner,
                    caller.owner_id,
                    &old,
                    Duration::seconds(overlap_secs),
                )?;
                audit::record(
                    conn,
                    audit::Entry {
                        at: now,
                        actor_user_id: None,
                        action: AuditAction::KeyRotate,
                        entity: AuditEntity::from(owner),
                        entity_id: &caller.owner_id.to_string(),
                        before: Some(serde_json::json!({"key_id": old})),
                        after: Some(serde_json::json!({"key_id": rotated.0.key_id, "previous_key_ends_at": rotated.1})),
                    },
                )?;
                Ok::<_, api_keys::KeyError>(rotated)
            })?)
        })
        .await?;
    Ok(HttpResponse::Created().json(Rotated {
        key_id: credentials.key_id,
        secret: credentials.secret,
        previous_key_id: caller.key_id,
        previous_key_ends_at: ends_at.and_utc(),
    }))
}
