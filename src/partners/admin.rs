//! Administration of partners and of the signing keys of partners, data providers and peer platforms.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Partner, PartnerKind, PARTNER_KINDS};
use crate::audit;
use crate::auth::api_keys::{self, Credentials, KeyInfo, Owner};
use crate::db::schema::{accounts, partners, peers, providers};
use crate::db::{self, AnyConnection, Tx};
use crate::error::{ApiError, ApiResult, Problem};
use crate::governance::{Governor, Scope};
use crate::http::json::ApiJson;
use crate::http::pagination::{Page, PageQuery, Paginated};
use crate::ledger::kinds::AccountKind;
use crate::onboarding::{page_with_keys, OnboardError, Onboarding};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/partners")
            .route(web::post().to(create_partner))
            .route(web::get().to(list_partners)),
    )
    .service(
        web::resource("/admin/{owners}/{id}/keys")
            .route(web::get().to(list_keys))
            .route(web::post().to(add_key)),
    )
    .service(web::resource("/admin/{owners}/{id}/keys/{key_id}/revoke").route(web::post().to(revoke_key)));
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerCreated {
    pub partner_id: String,
    pub key_id: String,
    /// Shown once; sign requests with it exactly as given.
    pub secret: String,
    /// The settlement account captured redemptions are posted to.
    pub settlement_account_id: String,
}

/// Onboard a partner (transit, scenic or green_credit) with the regions it serves, every one of which
/// the caller must govern (else 403 `out_of_scope`). Its key id and secret are in the answer, and only
/// there.
#[utoipa::path(post, path = "/api/v1/admin/partners", tag = "admin", request_body = Onboarding, security(("bearer" = [])),
    responses((status = 201, body = PartnerCreated), (status = 403, body = Problem, description = "out_of_scope"),
        (status = 422, body = Problem)))]
pub async fn create_partner(
    state: web::Data<AppState>,
    governor: Governor,
    body: ApiJson<Onboarding>,
) -> ApiResult<HttpResponse> {
    let onboarding = body.0;
    if onboarding.code.is_some() {
        // An operator code names a data provider's trips; a partner reports none.
        return Err(ApiError::field(
            "code",
            "only data providers have an operator code",
        ));
    }
    onboarding.validate(&PARTNER_KINDS, true, &state.catalog.get())?;
    onboarding.check_governed(&governor.scope)?;
    let admin_id = governor.user_id;
    let task_state = state.clone();
    let created = state
        .db
        .run(move |conn| {
            let created = db::transaction(conn, Tx::Write, |conn| {
                onboard(conn, &task_state, admin_id, &onboarding)
            })?;
            Ok(created)
        })
        .await?;
    Ok(HttpResponse::Created().json(created))
}

/// Onboards a validated partner inside the caller's transaction: settlement account, first key, audit.
pub fn onboard(
    conn: &mut AnyConnection,
    state: &AppState,
    admin_id: i64,
    onboarding: &Onboarding,
) -> Result<PartnerCreated, OnboardError> {
    let kind: PartnerKind = onboarding.kind.parse().map_err(|_| OnboardError::Invalid {
        field: "kind",
        message: format!("must be one of {}", PARTNER_KINDS.join(", ")),
    })?;
    let now = state.clock.now_naive();
    // Derived like an issuance account: its balance is its transfers, so no redemption locks its row.
    let account_id: i64 = diesel::insert_into(accounts::table)
        .values((
            accounts::kind.eq(AccountKind::Settlement),
            accounts::code.eq(format!("settlement:{}", uuid::Uuid::new_v4())),
            accounts::floored.eq(false),
            accounts::derived.eq(true),
            accounts::created_at.eq(now),
        ))
        .returning(accounts::id)
        .get_result(conn)?;
    let name = onboarding.name.trim();
    let partner_id: i64 = diesel::insert_into(partners::table)
        .values((
            partners::name.eq(name),
            partners::kind.eq(kind),
            partners::region_codes.eq(serde_json::to_string(&onboarding.region_codes)?),
            partners::account_id.eq(account_id),
            partners::created_at.eq(now),
        ))
        .returning(partners::id)
        .get_result(conn)?;
    let credentials = api_keys::issue(conn, now, &state.secrets, Owner::Partner, partner_id)?;
    audit::record(
        conn,
        audit::Entry {
            at: now,
            actor_user_id: Some(admin_id),
            action: audit::AuditAction::PartnerCreate,
            entity: audit::AuditEntity::Partner,
            entity_id: &partner_id.to_string(),
            before: None,
            after: Some(serde_json::json!({
                "name": name, "kind": onboarding.kind, "region_codes": onboarding.region_codes,
                "key_id": credentials.key_id, "settlement_account_id": account_id,
            })),
        },
    )?;
    Ok(PartnerCreated {
        partner_id: partner_id.to_string(),
        key_id: credentials.key_id,
        secret: credentials.secret,
        settlement_account_id: account_id.to_string(),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerView {
    pub partner_id: String,
    pub name: String,
    pub kind: PartnerKind,
    pub region_codes: Vec<String>,
    pub settlement_account_id: String,
    pub created_at: chrono::DateTime<Utc>,
    /// Its signing keys, newest first: ids and dates, never secrets.
    pub keys: Vec<KeyInfo>,
}

/// The partners with their keys' state (never their secrets), newest first. Any administrator reads
/// the whole list.
#[utoipa::path(get, path = "/api/v1/admin/partners", tag = "admin", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Paginated<PartnerView>)))]
pub async fn list_partners(
    state: web::Data<AppState>,
    _governor: Governor,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    page_with_keys(
        &state,
        page.page()?,
        Owner::Partner,
        partner_page,
        |p| p.id,
        |p, keys| PartnerView {
            partner_id: p.id.to_string(),
            keys,
            region_codes: p.regions(),
            name: p.name,
            kind: p.kind,
            settlement_account_id: p.account_id.to_string(),
            created_at: p.created_at.and_utc(),
        },
    )
    .await
}

/// A page of partners, newest first.
fn partner_page(conn: &mut AnyConnection, page: Page) -> QueryResult<Vec<Partner>> {
    let mut query = partners::table
        .select(Partner::as_select())
        .order(partners::id.desc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(before) = page.before {
        query = query.filter(partners::id.lt(before));
    }
    query.load(conn)
}

/// `partners`, `providers` or `peers` in a path, and the owner it names, checked to exist and to serve
/// only regions `scope` governs (its keys are the caller's to see and change only then: 403
/// `out_of_scope`). A peer platform serves no region in particular: only a national administrator
/// governs its keys.
fn owner_of(conn: &mut AnyConnection, scope: &Scope, owners: &str, id: i64) -> Result<Owner, ApiError> {
    let (owner, served): (Owner, Option<String>) = match owners {
        "partners" => (
            Owner::Partner,
            partners::table
                .find(id)
                .select(partners::region_codes)
                .first(conn)
                .optional()?,
        ),
        "providers" => (
            Owner::Provider,
            providers::table
                .find(id)
                .select(providers::region_codes)
                .first(conn)
                .optional()?,
        ),
        "peers" => (
            Owner::Peer,
            // No regions named: everywhere.
            diesel::select(diesel::dsl::exists(peers::table.find(id)))
                .get_result::<bool>(conn)?
                .then(|| "[]".to_string()),
        ),
        _ => return Err(ApiError::not_found("no such route")),
    };
    let served = served.ok_or_else(|| ApiError::not_found(format!("no such {}", owner.as_str())))?;
    let served: Vec<String> = serde_json::from_str(&served).unwrap_or_default();
    scope.check_all(served.iter().map(String::as_str))?;
    Ok(owner)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub items: Vec<KeyInfo>,
}

/// The keys of a partner or provider (never their secrets), newest first, for an administrator governing
/// every region it serves.
#[utoipa::path(get, path = "/api/v1/admin/{owners}/{id}/keys", tag = "admin", security(("bearer" = [])),
    params(("owners" = String, Path, description = "partners, providers or peers"), ("id" = String, Path)),
    responses((status = 200, body = KeyList), (status = 404, body = Problem)))]
pub async fn list_keys(
    state: web::Data<AppState>,
    governor: Governor,
    path: web::Path<(String, i64)>,
) -> ApiResult<HttpResponse> {
    let (owners, id) = path.into_inner();
    let items = state
        .db
        .run(move |conn| {
            let owner = owner_of(conn, &governor.scope, &owners, id)?;
            Ok(api_keys::list(conn, owner, id)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(KeyList { items }))
}

/// Issue a second key so the partner or provider can rotate without downtime (at most two active).
#[utoipa::path(post, path = "/api/v1/admin/{owners}/{id}/keys", tag = "admin", security(("bearer" = [])),
    params(("owners" = String, Path, description = "partners, providers or peers"), ("id" = String, Path)),
    responses((status = 201, body = Credentials), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn add_key(
    state: web::Data<AppState>,
    governor: Governor,
    path: web::Path<(String, i64)>,
) -> ApiResult<HttpResponse> {
    let (owners, id) = path.into_inner();
    let admin_id = governor.user_id;
    let task_state = state.clone();
    let credentials = state
        .db
        .run(move |conn| {
            db::transaction(conn, Tx::Write, |conn| {
                let owner = owner_of(conn, &governor.scope, &owners, id)?;
                let now = task_state.clock.now_naive();
                let credentials = api_keys::issue(conn, now, &task_state.secrets, owner, id)?;
                audit::record(
                    conn,
                    audit::Entry {
                        at: now,
                        actor_user_id: Some(admin_id),
                        action: audit::AuditAction::KeyCreate,
                        entity: owner.into(),
                        entity_id: &id.to_string(),
                        before: None,
                        after: Some(serde_json::json!({"key_id": credentials.key_id})),
                    },
                )?;
                Ok(credentials)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(credentials))
}

/// Revoke a key: requests signed with it are refused from now on (`key_revoked`). Revoking a revoked key
/// answers it as it is.
#[utoipa::path(post, path = "/api/v1/admin/{owners}/{id}/keys/{key_id}/revoke", tag = "admin", security(("bearer" = [])),
    params(("owners" = String, Path, description = "partners, providers or peers"), ("id" = String, Path), ("key_id" = String, Path)),
    responses((status = 200, body = KeyInfo), (status = 404, body = Problem)))]
pub async fn revoke_key(
    state: web::Data<AppState>,
    governor: Governor,
    path: web::Path<(String, i64, String)>,
) -> ApiResult<HttpResponse> {
    let (owners, id, key_id) = path.into_inner();
    let admin_id = governor.user_id;
    let clock = state.clock.clone();
    let key = state
        .db
        .run(move |conn| {
            db::transaction(conn, Tx::Write, |conn| {
                let owner = owner_of(conn, &governor.scope, &owners, id)?;
                let now = clock.now_naive();
                let (key, revoked) = api_keys::revoke(conn, now, owner, id, &key_id)?
                    .ok_or_else(|| ApiError::not_found("no such key"))?;
                // Revoking it again changes nothing, so it is not a change to audit: the record of who
                // revoked the key, and when, stays the first one.
                if revoked {
                    audit::record(
                        conn,
                        audit::Entry {
                            at: now,
                            actor_user_id: Some(admin_id),
                            action: audit::AuditAction::KeyRevoke,
                            entity: owner.into(),
                            entity_id: &id.to_string(),
                            before: Some(serde_json::json!({"key_id": key.key_id, "revoked_at": null})),
                            after: Some(
                                serde_json::json!({"key_id": key.key_id, "revoked_at": key.revoked_at}),
                            ),
                        },
                    )?;
                }
                Ok(key)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(key))
}
