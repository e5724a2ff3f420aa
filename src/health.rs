//! Liveness and readiness.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db;
use crate::error::ErrorCode;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(healthz)))
        .service(web::resource("/readyz").route(web::get().to(readyz)));
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

crate::text_enum! {
    /// What a readiness check found of a dependency.
    pub enum Probe {
        Ok = "ok",
        Down = "down",
        /// Redis only: none is configured, the cache is in-process.
        NotConfigured = "not_configured",
    }
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    pub database: Probe,
    pub redis: Probe,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// How long a dependency may take to answer a readiness check: well under a load balancer's probe
/// interval, and far above a healthy round trip.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

fn verdict(ok: bool) -> Probe {
    if ok {
        Probe::Ok
    } else {
        Probe::Down
    }
}

/// The database (and Redis, when configured) answer. When not, 503 problem+json (code `not_ready`) that
/// also carries `database` and `redis` as above.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Readiness), (status = 503, body = Problem)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = tokio::time::timeout(CHECK_TIMEOUT, state.db.run(|conn| Ok(db::ping(conn)?)))
        .await
        .is_ok_and(|r| r.is_ok());
    let redis = if state.cache.is_shared() {
        let up = tokio::time::timeout(CHECK_TIMEOUT, state.cache.ping())
            .await
            .is_ok_and(|r| r.is_ok());
        verdict(up)
    } else {
        Probe::NotConfigured
    };
    let ready = database && redis != Probe::Down;
    let database = verdict(database);
    if ready {
        return HttpResponse::Ok().json(Readiness {
            status: "ready",
            database,
            redis,
        });
    }
    // An error answer like every other, with what is down beside the problem's own members.
    let problem = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::NotReady,
        format!("not ready: database {database}, redis {redis}"),
    )
    .problem();
    let mut body = serde_json::to_value(problem).unwrap_or_default();
    body["database"] = database.as_str().into();
    body["redis"] = redis.as_str().into();
    HttpResponse::ServiceUnavailable()
        .content_type("application/problem+json")
        .body(body.to_string())
}
