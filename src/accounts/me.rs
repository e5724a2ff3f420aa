//! `/api/v1/me/*` and the recipient look-up: what a signed-in person reads and changes of their own.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::handlers::{access_token_lifetime, password_error};
use super::profile::{self, Me, ProfileChange};
use super::store;
use super::summary::{self, Summary};
use super::validate::{display_name_problem, password_problem};
use crate::auth::extract::{Authenticated, Member};
use crate::domain::phone;
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::http::json::ApiJson;
use crate::http::timestamp;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/me")
            .route(web::get().to(me))
            .route(web::patch().to(update_me))
            .route(web::delete().to(super::privacy::erase_me)),
    )
    .service(web::resource("/me/password").route(web::post().to(change_password)))
    .service(web::resource("/me/summary").route(web::get().to(my_summary)))
    .service(web::resource("/accounts/lookup").route(web::get().to(lookup)));
}

/// The caller's profile.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = Problem)))]
pub async fn me(state: web::Data<AppState>, caller: Authenticated) -> ApiResult<HttpResponse> {
    let user_id = caller.0.user_id()?;
    let user = state
        .db
        .run(move |conn| Ok(store::find_by_id(conn, user_id)?))
        .await?
        .ok_or_else(|| ApiError::unauthorized("account no longer exists"))?;
    Ok(HttpResponse::Ok().json(Me::of(user, &state.secrets)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    pub display_name: Option<String>,
    /// The new home region. Activities posted without a region default to it in access tokens issued
    /// after the change (refresh to use it at once).
    pub region_code: Option<String>,
}

/// Change the caller's display name or home region.
#[utoipa::path(patch, path = "/api/v1/me", tag = "auth", request_body = ProfilePatch, security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn update_me(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: ApiJson<ProfilePatch>,
) -> ApiResult<HttpResponse> {
    let user_id = caller.0.user_id()?;
    let ProfilePatch {
        display_name,
        region_code,
    } = body.0;
    if let Some(problem) = display_name.as_deref().and_then(display_name_problem) {
        return Err(ApiError::field("display_name", problem));
    }
    let change = ProfileChange {
        display_name: display_name.map(|n| n.trim().to_string()),
        region_code,
    };
    let user = state
        .db
        .run(move |conn| Ok(profile::update(conn, user_id, &change)?))
        .await?;
    Ok(HttpResponse::Ok().json(Me::of(user, &state.secrets)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Change the caller's password; every other session ends (their tokens answer 401 `session_revoked`).
/// A wrong current password counts as a failed sign-in (the same throttle).
#[utoipa::path(post, path = "/api/v1/me/password", tag = "auth", request_body = PasswordChange, security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Authenticated,
    body: ApiJson<PasswordChange>,
) -> ApiResult<HttpResponse> {
    let PasswordChange {
        current_password,
        new_password,
    } = body.0;
    if let Some(problem) = password_problem(&new_password) {
        return Err(ApiError::field("new_password", problem));
    }
    let user_id = caller.0.user_id()?;
    super::handlers::confirm_password(&req, &state, user_id, current_password).await?;
    let new_hash = state
        .passwords
        .hash_queued(new_password)
        .await
        .map_err(password_error)?;
    let now = state.clock.now_naive();
    let tokens_live_since = now - access_token_lifetime(&state);
    let keep = caller.0.sid.clone();
    let ended = state
        .db
        .run(move |conn| {
            Ok(profile::change_password(
                conn,
                now,
                tokens_live_since,
                user_id,
                &new_hash,
                &keep,
            )?)
        })
        .await?;
    state.sessions.ended(&ended);
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SummaryPeriod {
    /// Start (inclusive), RFC 3339 with offset; default: the beginning.
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub from: Option<String>,
    /// End (exclusive), RFC 3339 with offset; default: now.
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub to: Option<String>,
}

/// What the caller's activities saved and earned over a period (by when they took place), by activity
/// type, and the points spent and received (by when they moved).
#[utoipa::path(get, path = "/api/v1/me/summary", tag = "wallet", params(SummaryPeriod), security(("bearer" = [])),
    responses((status = 200, body = Summary), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn my_summary(
    state: web::Data<AppState>,
    caller: Member,
    period: web::Query<SummaryPeriod>,
) -> ApiResult<HttpResponse> {
    let account_id = caller.0.account_id()?;
    let from = match &period.from {
        Some(from) => timestamp::query_bound("from", from)?,
        None => chrono::DateTime::UNIX_EPOCH.naive_utc(),
    };
    let to = match &period.to {
        Some(to) => timestamp::query_bound("to", to)?,
        None => state.clock.now_naive(),
    };
    if to <= from {
        return Err(ApiError::field("to", "must be after from"));
    }
    let summary = state
        .db
        .run(move |conn| Ok(summary::summary(conn, account_id, from, to)?))
        .await?;
    Ok(HttpResponse::Ok().json(summary))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct LookupQuery {
    /// The recipient's mainland mobile number.
    pub phone: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Recipient {
    pub account_id: String,
    /// Every character but the last masked (`**明`), to confirm a recipient without learning a name.
    pub display_name_masked: String,
}

/// How many recipients one account may look up per [`LOOKUP_WINDOW`], found or not: enough to send to
/// friends, too few to map phone numbers to names.
pub const LOOKUPS_PER_WINDOW: u64 = 30;
pub const LOOKUP_WINDOW: Duration = Duration::from_secs(3600);

/// Find the wallet a phone number belongs to before sending points to it. Only people and businesses
/// are found; anything else, and an unknown number, is 404 alike. Rate limited per caller (429).
#[utoipa::path(get, path = "/api/v1/accounts/lookup", tag = "wallet", params(LookupQuery), security(("bearer" = [])),
    responses((status = 200, body = Recipient), (status = 404, body = Problem), (status = 422, body = Problem),
        (status = 429, body = Problem)))]
pub async fn lookup(
    state: web::Data<AppState>,
    caller: Member,
    query: web::Query<LookupQuery>,
) -> ApiResult<HttpResponse> {
    let phone = query.into_inner().phone;
    if !phone::is_mainland_mobile(&phone) {
        return Err(ApiError::validation(vec![FieldError {
            field: "phone".into(),
            message: "must be a mainland mobile number (11 digits starting 13-19)".into(),
        }]));
    }
    let key = format!("lookup:{}", caller.0.account_id()?);
    let counter = state
        .cache
        .increment(&key, LOOKUP_WINDOW)
        .await
        .map_err(|e| ApiError::unavailable_because("the look-up allowance is unavailable", e))?;
    if counter.count > LOOKUPS_PER_WINDOW {
        return Err(ApiError::rate_limited(counter.resets_in.as_secs() + 1));
    }
    let hash = state.secrets.lookup_hash(&phone);
    let user = state
        .db
        .run(move |conn| Ok(store::find_by_phone_hash(conn, &hash)?))
        .await?
        .filter(|u| !u.is_admin)
        .ok_or_else(|| ApiError::not_found("no account has this phone number"))?;
    Ok(HttpResponse::Ok().json(Recipient {
        account_id: user.account_id.to_string(),
        display_name_masked: mask_name(&user.display_name),
    }))
}

/// Every character but the last as `*`, at most three of them (so the length of a long name is not told).
fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    match chars.split_last() {
        None => "*".into(),
        Some((last, rest)) => "*".repeat(rest.len().clamp(1, 3)) + &last.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_name_shows_only_its_last_character() {
        assert_eq!(mask_name("李明"), "*明");
        assert_eq!(mask_name("欧阳小明"), "***明");
        assert_eq!(mask_name("Alexander the Great"), "***t");
        assert_eq!(mask_name("明"), "*明");
        assert_eq!(mask_name(""), "*");
    }
}
