//! Role checks as extractors: a handler that takes `Admin` cannot run without an administrator's token.
//! Every extractor also refuses a token whose session has ended (401 `session_revoked`).

use std::future::Future;
use std::pin::Pin;

use actix_web::http::{header, Method, StatusCode};
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use super::rate_limit;
use super::tokens::{Claims, TokenError};
use super::Role;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

type Extracted<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

fn app_state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("application state missing")))
}

/// The claims of the request's bearer token, checked for signature and expiry (no I/O).
fn bearer_claims(req: &HttpRequest, state: &AppState) -> Result<Claims, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed authorization header"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| ApiError::unauthorized("expected a bearer token"))?;
    state
        .tokens
        .verify(token.trim(), state.clock.now())
        .map_err(|e| match e {
            TokenError::Expired => {
                ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::TokenExpired, e.to_string())
            }
            TokenError::Invalid => ApiError::unauthorized(e.to_string()),
        })
}

/// The bearer token's claims, if its session has not ended, and if the request is a write, within the
/// account's rate limit (429 `rate_limited`).
async fn live_claims(req: HttpRequest) -> Result<Claims, ApiError> {
    let state = app_state(&req)?;
    let claims = bearer_claims(&req, &state)?;
    if state.sessions.is_revoked(&claims.sid).await? {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::SessionRevoked,
            "this session has ended; sign in again",
        ));
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        rate_limit::account_write(&state, &claims.acc).await?;
    }
    Ok(claims)
}

async fn with_role(req: HttpRequest, allowed: &[Role]) -> Result<Claims, ApiError> {
    let claims = live_claims(req).await?;
    if allowed.iter().any(|r| claims.has_role(*r)) {
        Ok(claims)
    } else {
        Err(ApiError::forbidden("this route needs another role"))
    }
}

/// Defines an extractor that admits a token carrying any of the listed roles.
macro_rules! role_extractor {
    ($(#[$doc:meta])* $name:ident, [$($role:expr),+]) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Claims);

        impl FromRequest for $name {
            type Error = ApiError;
            type Future = Extracted<Self>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                let req = req.clone();
                Box::pin(async move { with_role(req, &[$($role),+]).await.map($name) })
            }
        }
    };
}

role_extractor!(
    /// Any signed-in account.
    Authenticated,
    [Role::User, Role::Business, Role::Admin]
);
role_extractor!(
    /// A person or a business: the holders of wallets.
    Member,
    [Role::User, Role::Business]
);
role_extractor!(
    /// An administrator.
    Admin,
    [Role::Admin]
);

/// Whoever signed the request in, if anyone did: for public routes that show a signed-in caller more. A
/// token that is present but invalid is refused, not taken as anonymous, so a client learns it expired.
#[derive(Debug, Clone)]
pub struct OptionalCaller(pub Option<Claims>);

impl FromRequest for OptionalCaller {
    type Error = ApiError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            if req.headers().contains_key(header::AUTHORIZATION) {
                live_claims(req).await.map(|claims| OptionalCaller(Some(claims)))
            } else {
                Ok(OptionalCaller(None))
            }
        })
    }
}
