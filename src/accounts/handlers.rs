//! `/api/v1/auth/*` and `/api/v1/me`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::service::{self, AccountError, RefreshOutcome, TokenPair};
use super::store;
use super::validate::{self, RegisterRequest};
use crate::auth::client_ip::{client_ip, forwarded_for};
use crate::auth::extract::Authenticated;
use crate::auth::password::{self, PasswordError};
use crate::error::ErrorCode;
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::json::{self, ApiJson};
use crate::state::AppState;

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> ApiError {
        match e {
            AccountError::UnknownRegion => ApiError::field("region_code", e.to_string()),
            AccountError::PhoneTaken => ApiError::conflict(ErrorCode::Conflict, e.to_string()),
            AccountError::UnknownUser => ApiError::unauthorized("account no longer exists"),
            AccountError::Token(_) => ApiError::internal(e),
            AccountError::Database(e) => e.into(),
        }
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/auth/register").route(web::post().to(register)))
        .service(web::resource("/auth/login").route(web::post().to(login)))
        .service(web::resource("/auth/refresh").route(web::post().to(refresh)))
        .service(web::resource("/auth/logout").route(web::post().to(logout)));
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    pub user_id: String,
    pub account_id: String,
}

/// A refusal of the password pool: 503 with `Retry-After` when it is saturated, else a 500.
pub(super) fn password_error(e: PasswordError) -> ApiError {
    match e {
        PasswordError::Busy => {
            let mut busy = ApiError::unavailable("too many sign-ins at once; try again shortly");
            busy.retry_after_secs = Some(password::BUSY_RETRY_AFTER_SECS);
            busy
        }
        PasswordError::Failed(_) => ApiError::internal(e),
    }
}

/// Create an individual or business account and its wallet.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = Registered), (status = 409, body = Problem), (status = 422, body = Problem),
        (status = 503, description = "password hashing saturated; see Retry-After", body = Problem)))]
pub async fn register(state: web::Data<AppState>, body: ApiJson<RegisterRequest>) -> ApiResult<HttpResponse> {
    let reg = validate::validate(body.0).map_err(ApiError::validation)?;
    let hash = state
        .passwords
        .hash_queued(reg.password.clone())
        .await
        .map_err(password_error)?;
    let now = state.clock.now();
    let secrets = state.secrets.clone();
    let done = state
        .db
        .run(move |conn| Ok(service::register(conn, &secrets, now, &reg, &hash, None)?))
        .await?;
    Ok(HttpResponse::Created().json(Registered {
        user_id: done.user_id.to_string(),
        account_id: done.account_id.to_string(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub phone: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

impl From<TokenPair> for TokenResponse {
    fn from(p: TokenPair) -> TokenResponse {
        TokenResponse {
            access_token: p.access_token,
            refresh_token: p.refresh_token,
            token_type: "Bearer",
            expires_in: p.expires_in,
        }
    }
}

pub(super) fn invalid_credentials() -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::UNAUTHORIZED,
        ErrorCode::InvalidCredentials,
        "phone or password is wrong",
    )
}

/// Sign in with phone and password. Failed attempts are throttled per (phone, client address) and per client address.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = Problem), (status = 429, body = Problem),
        (status = 503, description = "password hashing saturated; see Retry-After", body = Problem)))]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: ApiJson<LoginRequest>,
) -> ApiResult<HttpResponse> {
    let LoginRequest { phone, password } = body.0;
    let ip = client_ip(
        req.peer_addr().map(|a| a.ip()),
        forwarded_for(req.headers()).as_deref(),
        &state.settings.server.trusted_proxies,
    );
    state.login_throttle.attempt(&phone, ip).await?;

    let lookup = state.secrets.lookup_hash(&phone);
    let user = state
        .db
        .run(move |conn| Ok(store::find_by_phone_hash(conn, &lookup)?))
        .await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matches = match state.passwords.verify_queued(password, stored).await {
        Ok(matches) => matches,
        Err(e) => {
            // No password was checked: the attempt gives back the slots it took.
            state.login_throttle.refund(&phone, ip).await?;
            return Err(password_error(e));
        }
    };
    let ok = user.filter(|_| matches);
    // A failed attempt keeps the slots `attempt` took.
    let Some(user) = ok else {
        return Err(invalid_credentials());
    };
    state.login_throttle.succeeded(&phone, ip).await?;
    let session_state = state.clone();
    let pair = state
        .db
        .run(move |conn| Ok(service::start_session(conn, &session_state, &user)?))
        .await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(pair)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Trade a refresh token for a new pair. The old one stops working; presenting it again revokes the family.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = Problem)))]
pub async fn refresh(state: web::Data<AppState>, body: ApiJson<RefreshRequest>) -> ApiResult<HttpResponse> {
    let token = body.0.refresh_token;
    let rotate_state = state.clone();
    let outcome = state
        .db
        .run(move |conn| Ok(service::rotate(conn, &rotate_state, &token)?))
        .await?;
    match outcome {
        RefreshOutcome::Rotated(pair) => Ok(HttpResponse::Ok().json(TokenResponse::from(pair))),
        RefreshOutcome::Invalid => Err(ApiError::unauthorized("refresh token is invalid or expired")),
        RefreshOutcome::Reused { session_id } => {
            state.sessions.ended(&[session_id]);
            Err(reused_refresh_token())
        }
    }
}

fn reused_refresh_token() -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::UNAUTHORIZED,
        ErrorCode::RefreshTokenReused,
        "refresh token was already used; all sessions of this sign-in are revoked",
    )
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LogoutRequest {
    /// The session to end; without it every session of the caller ends.
    pub refresh_token: Option<String>,
}

/// End the session of the given refresh token (or every session), and its access tokens with it: within a
/// second, on every instance, they answer 401 `session_revoked`.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body(content = Option<LogoutRequest>),
    security(("bearer" = [])), responses((status = 204), (status = 401, body = Problem)))]
pub async fn logout(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
    caller: Authenticated,
) -> ApiResult<HttpResponse> {
    let body = json::read_body(&req, &mut payload).await?;
    let token = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        json::parse::<LogoutRequest>(&body)?.refresh_token
    };
    let user_id = caller.0.user_id()?;
    let now = state.clock.now_naive();
    let tokens_live_since = now - access_token_lifetime(&state);
    let ended = state
        .db
        .run(move |conn| {
            Ok(service::logout(
                conn,
                now,
                tokens_live_since,
                user_id,
                token.as_deref(),
            )?)
        })
        .await?;
    // Committed: this instance refuses the session's tokens now, the others once they read the database.
    state.sessions.ended(&ended);
    Ok(HttpResponse::NoContent().finish())
}

/// How far back an access token may have been issued and still be accepted now.
pub(super) fn access_token_lifetime(state: &AppState) -> chrono::Duration {
    chrono::Duration::seconds(state.tokens.ttl_secs() as i64 + crate::auth::tokens::EXPIRY_LEEWAY_SECS)
}

/// Checks the caller's own password before a change only its holder may make (a new password, erasure),
/// under the same allowance as signing in with their phone: a wrong one counts as a failed sign-in.
pub(super) async fn confirm_password(
    req: &HttpRequest,
    state: &AppState,
    user_id: i64,
    password: String,
) -> ApiResult<()> {
    let user = state
        .db
        .run(move |conn| Ok(store::find_by_id(conn, user_id)?))
        .await?
        .ok_or_else(|| ApiError::unauthorized("account no longer exists"))?;
    let ip = crate::auth::client_ip::client_ip(
        req.peer_addr().map(|a| a.ip()),
        crate::auth::client_ip::forwarded_for(req.headers()).as_deref(),
        &state.settings.server.trusted_proxies,
    );
    let phone = super::profile::plain_phone(&user, &state.secrets);
    state.login_throttle.attempt(&phone, ip).await?;
    let stored = Some(user.password_hash.clone());
    let matches = match state.passwords.verify_queued(password, stored).await {
        Ok(matches) => matches,
        Err(e) => {
            state.login_throttle.refund(&phone, ip).await?;
            return Err(password_error(e));
        }
    };
    if !matches {
        return Err(invalid_credentials());
    }
    state.login_throttle.succeeded(&phone, ip).await?;
    Ok(())
}
