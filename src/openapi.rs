//! The OpenAPI document, generated from the handlers' annotations.

use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{
    accounts, activities, audit, bindings, cash, consents, error, governance, green, health, ledger, market,
    methodology, metrics, offers, partners, providers, publication, redemptions, reductions,
    region_parameters, registry, retirements, stats,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Tanhui API", version = "1", description = "Carbon-inclusive personal credit: quantify low-carbon actions, issue and move points, redeem them with partners."),
    paths(
        health::healthz, health::readyz, metrics::metrics,
        accounts::handlers::register, accounts::handlers::login, accounts::handlers::refresh,
        accounts::handlers::logout, accounts::me::me, accounts::me::update_me, accounts::me::change_password,
        accounts::me::my_summary, accounts::me::lookup,
        accounts::privacy::export, accounts::privacy::erase_me,
        green::my_green_profile, green::partner_tiers, green::publish_tiers,
        consents::grant, consents::list, consents::revoke, consents::accesses, consents::partner_green_profile,
        methodology::handlers::list_regions, methodology::handlers::get_region,
        methodology::handlers::list_activity_types, methodology::type_handlers::create_activity_type,
        methodology::type_handlers::change_activity_type, methodology::type_handlers::list_changes,
        methodology::type_handlers::approve_change,
        methodology::handlers::list_methodologies, methodology::handlers::get_methodology,
        methodology::handlers::create_draft, methodology::handlers::check_formula,
        methodology::handlers::edit_draft, methodology::handlers::delete_draft,
        methodology::handlers::version_diff, methodology::handlers::activate,
        methodology::handlers::retire, methodology::handlers::approve_retire, methodology::handlers::simulate,
        methodology::handlers::quantify_dry_run, audit::handlers::list_audit,
        region_parameters::handlers::parameters_in_force, region_parameters::handlers::create_draft,
        region_parameters::handlers::list_versions, region_parameters::handlers::get_version,
        region_parameters::handlers::edit_draft, region_parameters::handlers::delete_draft,
        region_parameters::handlers::activate, region_parameters::handlers::simulate,
        publication::handlers::signed_methodology, publication::handlers::signed_region_parameters,
        governance::handlers::create_grant, governance::handlers::list_grants, governance::handlers::revoke_grant,
        ledger::handlers::wallet, ledger::handlers::wallet_transfers, ledger::handlers::create_transfer,
        activities::handlers::post_activity, activities::handlers::post_batch, activities::handlers::list_activities,
        activities::explain::get_activity, activities::explain::requantify_activity,
        activities::queue::list_reviews, activities::queue::review_activity, activities::queue::decide_many,
        providers::create_provider, providers::list_providers, providers::provider_activity, providers::provider_batch,
        bindings::handlers::create_code, bindings::handlers::list_bindings, bindings::handlers::remove_binding,
        bindings::handlers::provider_bind,
        ledger::handlers::public_key, ledger::handlers::get_block, ledger::handlers::get_proof,
        partners::admin::create_partner, partners::admin::list_partners, partners::admin::list_keys, partners::admin::add_key, partners::admin::revoke_key,
        offers::handlers::list_offers, offers::handlers::get_offer,
        offers::handlers::create_offer, offers::handlers::update_offer, offers::handlers::partner_offers,
        redemptions::handlers::create_redemption, redemptions::handlers::list_redemptions,
        redemptions::handlers::get_redemption, redemptions::handlers::void_own,
        redemptions::handlers::partner_redemptions, redemptions::handlers::partner_capture, redemptions::handlers::partner_void,
        redemptions::handlers::redeem_voucher, redemptions::handlers::partner_redemption,
        redemptions::handlers::inspect_voucher, partners::rotation::partner_rotate, partners::rotation::provider_rotate, redemptions::handlers::settlements, redemptions::handlers::jwks,
        stats::handlers::reductions,
        retirements::handlers::create_retirement, retirements::handlers::list_retirements,
        retirements::handlers::get_retirement,
        registry::peers::create_peer, registry::peers::list_peers,
        registry::handlers::check_claims, registry::handlers::register_claims,
        reductions::handlers::create_draft, reductions::handlers::list_batches, reductions::handlers::get_batch,
        reductions::handlers::delete_draft, reductions::handlers::submit, reductions::handlers::verify,
        reductions::handlers::issue, reductions::handlers::sell, reductions::handlers::settle,
        reductions::handlers::retire,
        reductions::handlers::my_incentives, reductions::handlers::evidence,
        cash::handlers::get_cash, cash::handlers::request_withdrawal, cash::handlers::my_withdrawals,
        cash::handlers::record_deposit, cash::handlers::list_deposits, cash::handlers::confirm_deposit,
        cash::handlers::list_withdrawals, cash::handlers::complete_withdrawal, cash::handlers::reject_withdrawal,
        market::handlers::place_order, market::handlers::my_orders, market::handlers::get_order,
        market::handlers::cancel_order, market::handlers::book, market::handlers::trades, market::handlers::candles,
    ),
    components(schemas(error::Problem, error::FieldError, publication::methodology::PublishedMethodology)),
    modifiers(&BearerAuth),
    tags((name = "auth", description = "Accounts and tokens"), (name = "health", description = "Probes"),
        (name = "regions", description = "Regions and their hierarchy"),
        (name = "methodologies", description = "Activity types, methodology versions, quantification"),
        (name = "admin", description = "Administration (admin role)"),
        (name = "activities", description = "Low-carbon actions and the points they earn"),
        (name = "wallet", description = "Points, transfers between people"),
        (name = "ledger", description = "Public, signed ledger blocks and inclusion proofs"),
        (name = "partners", description = "Partners' offers, captures and settlements (signed calls), and the public offer list"),
        (name = "redemptions", description = "Spending points on offers: holds, vouchers, voids"),
        (name = "bindings", description = "Linking an operator's own reference for a person (a card, an account) to their wallet"),
        (name = "statistics", description = "Public statistics of what was granted, by region, type and time"),
        (name = "green credit", description = "Green profiles, and the consents under which green-credit partners read them"),
        (name = "privacy", description = "A person's own data: export and erasure"),
        (name = "registry", description = "Retirements and their public registry; pooled reductions issued as whole tonnes (admin); the claim registry: peer platforms check and register trip claims (signed calls), so one trip is credited once"),
        (name = "market", description = "Cash (CNY fen) beside points: deposits confirmed by a second administrator, withdrawals; limit orders in lots of 1,000 points, each fill settling points and cash at once; public depth, trades and candles"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/openapi.json").route(web::get().to(openapi_json)));
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
