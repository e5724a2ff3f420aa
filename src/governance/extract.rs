//! The `Governor` extractor: an administrator's token, and its scope read from the live grants.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use super::grants;
use super::scope::Scope;
use crate::auth::extract::Admin;
use crate::error::ApiError;
use crate::state::AppState;

/// An administrator and what it governs. The scope is read on every request (administrators' requests
/// are few), so a grant revoked on one instance binds the next request on every instance.
#[derive(Clone)]
pub struct Governor {
    pub user_id: i64,
    pub scope: Scope,
}

impl FromRequest for Governor {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Governor, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let admin = Admin::from_request(req, payload);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let user_id = admin.await?.0.user_id()?;
            let state =
                state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("application state missing")))?;
            Governor::load(&state, user_id).await
        })
    }
}

impl Governor {
    /// Administrator `user_id` with its live scope, for a route that also serves other roles and has
    /// already checked the token.
    pub async fn load(state: &AppState, user_id: i64) -> Result<Governor, ApiError> {
        let live = state.db.run(move |conn| Ok(grants::live(conn, user_id)?)).await?;
        Ok(Governor {
            user_id,
            scope: Scope::new(&live, state.catalog.get()),
        })
    }
}
