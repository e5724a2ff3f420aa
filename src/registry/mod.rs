//! The claim registry (`docs/registry.md`): one owner per trip across the carbon-inclusive platforms that
//! use it. Tanhui registers the claims of its providers' trips as it stores their activities
//! (`activities::group`); peer platforms check and register theirs with signed calls (`handlers`), once
//! onboarded (`peers`); `store` holds the one table every path goes through.

pub mod handlers;
pub mod peers;
pub mod store;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/peers")
            .route(web::post().to(peers::create_peer))
            .route(web::get().to(peers::list_peers)),
    )
    .service(web::resource("/registry/claims/check").route(web::post().to(handlers::check_claims)))
    .service(web::resource("/registry/claims").route(web::post().to(handlers::register_claims)));
}
