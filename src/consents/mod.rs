//! Consent: a person grants a green-credit partner the `green_profile` scope until a date, sees every
//! grant and every read made under it, and revokes it at any time. A partner reads only through signed
//! calls, and every read looks the grant up in the database in the transaction that records the read:
//! no instance caches a grant, so a revocation or an expiry stops the next read everywhere at once.

pub mod store;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use self::store::ConsentRow;
use crate::audit::{self, AuditAction, AuditEntity};
use crate::auth::extract::Member;
use crate::db::{self, AnyConnection, Tx};
use crate::error::{ApiError, ApiResult, ErrorCode, Problem};
use crate::green::{self, GreenProfile};
use crate::http::json::ApiJson;
use crate::partners::{self as partner_store, PartnerKind, SignedPartner};
use crate::state::AppState;

/// The only scope there is: the green profile (quarter, tier, score and factors).
pub const GREEN_PROFILE: &str = "green_profile";
/// The longest a grant may run.
pub const MAX_DAYS: i64 = 366;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/consents")
            .route(web::post().to(grant))
            .route(web::get().to(list)),
    )
    .service(web::resource("/consents/{id}").route(web::delete().to(revoke)))
    .service(web::resource("/consents/{id}/accesses").route(web::get().to(accesses)))
    .service(
        web::resource("/partner/consents/{id}/green-profile").route(web::get().to(partner_green_profile)),
    );
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    /// The green-credit partner's id.
    pub partner_id: String,
    /// `["green_profile"]`.
    pub scopes: Vec<String>,
    /// RFC 3339 with offset; in the future, at most 366 days ahead.
    #[serde(deserialize_with = "crate::http::timestamp::required")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: DateTime<FixedOffset>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentCreated {
    pub consent_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Consent {
    pub consent_id: String,
    pub partner_id: String,
    pub partner_name: String,
    pub scopes: Vec<String>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// `live`, `revoked` or `expired`.
    pub status: &'static str,
}

impl Consent {
    pub fn of(row: ConsentRow, partner_name: String, now: NaiveDateTime) -> Consent {
        let status = match (row.revoked_at, row.is_live(now)) {
            (Some(_), _) => "revoked",
            (None, true) => "live",
            (None, false) => "expired",
        };
        Consent {
            scopes: row.scopes(),
            consent_id: row.id,
            partner_id: row.partner_id.to_string(),
            partner_name,
            expires_at: row.expires_at.and_utc(),
            created_at: row.created_at.and_utc(),
            revoked_at: row.revoked_at.map(|t| t.and_utc()),
            status,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentList {
    /// Newest first, at most 500.
    pub items: Vec<Consent>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentAccess {
    pub partner_id: String,
    pub partner_name: String,
    pub scope: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessList {
    /// Newest first, at most 500.
    pub items: Vec<ConsentAccess>,
}

/// The scopes asked for, checked: `green_profile`, once.
fn checked_scopes(scopes: &[String]) -> ApiResult<Vec<String>> {
    match scopes {
        [one] if one == GREEN_PROFILE => Ok(vec![GREEN_PROFILE.to_string()]),
        _ => Err(ApiError::field("scopes", "must be [\"green_profile\"]")),
    }
}

/// The expiry asked for, checked against `now`.
fn checked_expiry(expires_at: DateTime<FixedOffset>, now: NaiveDateTime) -> ApiResult<NaiveDateTime> {
    let expires_at = expires_at.naive_utc();
    if expires_at <= now {
        return Err(ApiError::field("expires_at", "must be in the future"));
    }
    if expires_at > now + Duration::days(MAX_DAYS) {
        return Err(ApiError::field("expires_at", "must be at most 366 days ahead"));
    }
    Ok(expires_at)
}

fn audit_entry<'a>(
    at: NaiveDateTime,
    actor: Option<i64>,
    action: AuditAction,
    consent_id: &'a str,
    after: serde_json::Value,
) -> audit::Entry<'a> {
    audit::Entry {
        at,
        actor_user_id: actor,
        action,
        entity: AuditEntity::Consent,
        entity_id: consent_id,
        before: None,
        after: Some(after),
    }
}

/// Grant a green-credit partner the `green_profile` scope until `expires_at`. Several live grants may
/// coexist.
#[utoipa::path(post, path = "/api/v1/consents", tag = "green credit", request_body = ConsentRequest,
    security(("bearer" = [])),
    responses((status = 201, body = ConsentCreated), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn grant(
    state: web::Data<AppState>,
    caller: Member,
    body: ApiJson<ConsentRequest>,
) -> ApiResult<HttpResponse> {
    let user_id = caller.0.user_id()?;
    let now = state.clock.now_naive();
    let scopes = checked_scopes(&body.scopes)?;
    let expires_at = checked_expiry(body.expires_at, now)?;
    let partner_id: i64 = body
        .partner_id
        .parse()
        .map_err(|_| ApiError::field("partner_id", "is not a partner id"))?;
    let row = ConsentRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_id,
        partner_id,
        scopes: serde_json::to_string(&scopes).unwrap_or_default(),
        expires_at,
        created_at: now,
        revoked_at: None,
    };
    let consent_id = row.id.clone();
    state
        .db
        .run(move |conn| {
            db::transaction(conn, Tx::Write, |conn| {
                match partner_store::find(conn, partner_id)? {
                    Some(p) if p.kind == PartnerKind::GreenCredit => {}
                    Some(_) => return Err(ApiError::field("partner_id", "is not a green-credit partner")),
                    None => return Err(ApiError::not_found("no such partner")),
                }
                store::insert(conn, &row)?;
                let after = serde_json::json!({"partner_id": partner_id.to_string(), "scopes": scopes,
                    "expires_at": expires_at.and_utc()});
                audit::record(
                    conn,
                    audit_entry(now, Some(user_id), AuditAction::ConsentGrant, &row.id, after),
                )?;
                Ok(())
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(ConsentCreated { consent_id }))
}

/// The caller's grants, live or not, newest first.
#[utoipa::path(get, path = "/api/v1/consents", tag = "green credit", security(("bearer" = [])),
    responses((status = 200, body = ConsentList), (status = 401, body = Problem)))]
pub async fn list(state: web::Data<AppState>, caller: Member) -> ApiResult<HttpResponse> {
    let user_id = caller.0.user_id()?;
    let now = state.clock.now_naive();
    let rows = state
        .db
        .run(move |conn| Ok(store::list_for_user(conn, user_id)?))
        .await?;
    let items = rows
        .into_iter()
        .map(|(row, name)| Consent::of(row, name, now))
        .collect();
    Ok(HttpResponse::Ok().json(ConsentList { items }))
}

/// The caller's own grant `id`, or 404 (another person's grant is not found alike).
fn own(conn: &mut AnyConnection, id: &str, user_id: i64) -> ApiResult<ConsentRow> {
    store::find(conn, id)?
        .filter(|c| c.user_id == user_id)
        .ok_or_else(|| ApiError::not_found("no such consent"))
}

/// Revoke a grant: the partner's next read is refused (403 `consent_revoked`), on every instance. Revoking
/// a revoked grant changes nothing.
#[utoipa::path(delete, path = "/api/v1/consents/{id}", tag = "green credit", security(("bearer" = [])),
    params(("id" = String, Path, description = "consent id")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke(
    state: web::Data<AppState>,
    caller: Member,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let user_id = caller.0.user_id()?;
    let now = state.clock.now_naive();
    let id = id.into_inner();
    state
        .db
        .run(move |conn| {
            db::transaction(conn, Tx::Write, |conn| {
                let consent = own(conn, &id, user_id)?;
                if store::revoke(conn, &consent.id, now)? {
                    let after = serde_json::json!({"partner_id": consent.partner_id.to_string()});
                    audit::record(
                        conn,
                        audit_entry(now, Some(user_id), AuditAction::ConsentRevoke, &consent.id, after),
                    )?;
                }
                Ok(())
            })
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every read a partner made under one of the caller's grants, newest first.
#[utoipa::path(get, path = "/api/v1/consents/{id}/accesses", tag = "green credit", security(("bearer" = [])),
    params(("id" = String, Path, description = "consent id")),
    responses((status = 200, body = AccessList), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn accesses(
    state: web::Data<AppState>,
    caller: Member,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let user_id = caller.0.user_id()?;
    let id = id.into_inner();
    let rows = state
        .db
        .run(move |conn| {
            let consent = own(conn, &id, user_id)?;
            Ok(store::accesses(conn, &consent.id)?)
        })
        .await?;
    let items = rows
        .into_iter()
        .map(|(partner_id, partner_name, scope, at)| ConsentAccess {
            partner_id: partner_id.to_string(),
            partner_name,
            scope,
            at: at.and_utc(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(AccessList { items }))
}

/// Reads, records and audits one partner read of a green profile, in one transaction.
fn read_under_consent(
    conn: &mut AnyConnection,
    consent_id: &str,
    partner_id: i64,
    now: NaiveDateTime,
) -> ApiResult<GreenProfile> {
    db::transaction(conn, Tx::Write, |conn| {
        let consent = store::find(conn, consent_id)?
            .filter(|c| c.partner_id == partner_id)
            .ok_or_else(|| ApiError::not_found("no such consent"))?;
        if !consent.is_live(now) || !consent.scopes().iter().any(|s| s == GREEN_PROFILE) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::ConsentRevoked,
                "this consent was revoked or has expired",
            ));
        }
        let account_id = store::account_of(conn, consent.user_id)?.ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::ConsentRevoked,
                "the person erased their account",
            )
        })?;
        let thresholds = green::thresholds_of(conn, partner_id)?;
        let profile = green::profile(conn, account_id, now, thresholds)?;
        store::record_access(conn, &consent.id, partner_id, GREEN_PROFILE, now)?;
        let after = serde_json::json!({"partner_id": partner_id.to_string(), "scope": GREEN_PROFILE});
        audit::record(
            conn,
            audit_entry(now, None, AuditAction::ConsentRead, &consent.id, after),
        )?;
        Ok(profile)
    })
}

/// A person's green profile, read by the green-credit partner they granted it to (signed), graded by
/// the partner's own thresholds when it published some. Revoked or expired: 403 `consent_revoked`;
/// another partner's grant: 404. Every read is recorded for the person to see.
#[utoipa::path(get, path = "/api/v1/partner/consents/{id}/green-profile", tag = "green credit",
    params(("id" = String, Path, description = "consent id")),
    responses((status = 200, body = GreenProfile), (status = 401, body = Problem),
        (status = 403, description = "`consent_revoked`", body = Problem), (status = 404, body = Problem)))]
pub async fn partner_green_profile(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let signed = SignedPartner::authenticate(&req, &mut payload, &state).await?;
    let partner_id = signed.partner.id;
    let now = state.clock.now_naive();
    let id = id.into_inner();
    let profile = state
        .db
        .run(move |conn| read_under_consent(conn, &id, partner_id, now))
        .await?;
    Ok(HttpResponse::Ok().json(profile))
}
