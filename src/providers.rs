//! Trusted data providers (transit operators, bike-share, waste stations): onboarded by administrators,
//! they post signed activities they observed for a user.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::result::DatabaseErrorKind;
use diesel::result::Error::DatabaseError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::activities::handlers::{
    answer_batch, batch_events, check_raw, event_id, ingest_one, respond, BatchRequest, BatchResponse,
};
use crate::activities::model::ActivityResult;
use crate::activities::request::ActivityRequest;
use crate::activities::retry::{self, Refused, RetryOf};
use crate::audit;
use crate::auth::api_keys::{self, Credentials, KeyInfo, Owner};
use crate::auth::signature;
use crate::bindings::subjects::{posters, take_subject, Subject};
use crate::db::schema::providers;
use crate::db::{self, AnyConnection, Tx};
use crate::domain::catalog::Catalog;
use crate::error::ErrorCode;
use crate::error::{ApiError, ApiResult, Problem};
use crate::governance::Governor;
use crate::http::json::{self, ApiJson};
use crate::http::pagination::{Page, PageQuery, Paginated};
use crate::onboarding::{page_with_keys, OnboardError, Onboarding};
use crate::secrets::SecretBox;
use crate::state::AppState;

/// A provider reports what it observed in the regions it was onboarded for (none named: everywhere);
/// an event of another region is refused (403 `region_not_served`). An unknown region is left to the
/// event's validation, which names the field.
fn check_served(catalog: &Catalog, served: &str, region: &str) -> ApiResult<()> {
    let served: Vec<String> = serde_json::from_str(served).unwrap_or_default();
    if served.is_empty()
        || catalog.region(region).is_none()
        || served.iter().any(|r| catalog.is_within(region, r))
    {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::RegionNotServed,
        format!(
            "this provider reports for {}, not for region {region}",
            served.join(", ")
        ),
    ))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/providers")
            .route(web::post().to(create_provider))
            .route(web::get().to(list_providers)),
    )
    .service(web::resource("/provider/activities").route(web::post().to(provider_activity)))
    .service(web::resource("/provider/activities/batch").route(web::post().to(provider_batch)));
}

/// The partners' kinds (the contract's onboarding body is the same for both) and the kinds of data
/// providers that are not partners: bike-share operators, waste stations, energy meters.
pub const PROVIDER_KINDS: [&str; 7] = [
    "transit",
    "scenic",
    "green_credit",
    "bikeshare",
    "waste",
    "energy",
    "other",
];

/// A provider as onboarded: its first key, and its operator code.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderCreated {
    #[serde(flatten)]
    pub credentials: Credentials,
    /// The code its trips' claims are computed with, if it was given one.
    pub operator_code: Option<String>,
}

/// Onboard a data provider; its key id and secret are in the answer, and only there. The caller must
/// govern every region it serves (none named: everywhere, which only a national administrator governs),
/// else 403 `out_of_scope`. An operator `code` another provider has → 409 `operator_code_taken`.
#[utoipa::path(post, path = "/api/v1/admin/providers", tag = "admin", request_body = Onboarding, security(("bearer" = [])),
    responses((status = 201, body = ProviderCreated), (status = 403, body = Problem, description = "out_of_scope"),
        (status = 409, body = Problem, description = "operator_code_taken"), (status = 422, body = Problem)))]
pub async fn create_provider(
    state: web::Data<AppState>,
    governor: Governor,
    body: ApiJson<Onboarding>,
) -> ApiResult<HttpResponse> {
    let onboarding = body.0;
    onboarding.validate(&PROVIDER_KINDS, false, &state.catalog.get())?;
    onboarding.check_governed(&governor.scope)?;
    let admin_id = governor.user_id;
    let task_state = state.clone();
    let now = state.clock.now_naive();
    let operator_code = onboarding.code.clone();
    let credentials = state
        .db
        .run(move |conn| Ok(register(conn, &task_state.secrets, admin_id, &onboarding, now)?))
        .await?;
    Ok(HttpResponse::Created().json(ProviderCreated {
        credentials,
        operator_code,
    }))
}

/// Onboards a validated provider at `now` in one transaction, audited, and issues its first key.
pub fn register(
    conn: &mut AnyConnection,
    secrets: &SecretBox,
    admin_id: i64,
    onboarding: &Onboarding,
    now: NaiveDateTime,
) -> Result<Credentials, OnboardError> {
    db::transaction(conn, Tx::Write, |conn| {
        let name = onboarding.name.trim();
        let provider_id: i64 = diesel::insert_into(providers::table)
            .values((
                providers::name.eq(name),
                providers::kind.eq(&onboarding.kind),
                providers::region_codes.eq(serde_json::to_string(&onboarding.region_codes)?),
                providers::created_at.eq(now),
                providers::code.eq(onboarding.code.as_deref()),
            ))
            .returning(providers::id)
            .get_result(conn)
            .map_err(|e| match (e, &onboarding.code) {
                // The code's unique index: two admins onboarding one code at once meet here too.
                (DatabaseError(DatabaseErrorKind::UniqueViolation, _), Some(code)) => {
                    OnboardError::CodeTaken(code.clone())
                }
                (e, _) => e.into(),
            })?;
        let credentials = api_keys::issue(conn, now, secrets, Owner::Provider, provider_id)?;
        audit::record(
            conn,
            audit::Entry {
                at: now,
                actor_user_id: Some(admin_id),
                action: audit::AuditAction::ProviderCreate,
                entity: audit::AuditEntity::Provider,
                entity_id: &provider_id.to_string(),
                before: None,
                after: Some(
                    serde_json::json!({"name": name, "kind": onboarding.kind, "region_codes": onboarding.region_codes,
                        "operator_code": onboarding.code, "key_id": credentials.key_id}),
                ),
            },
        )?;
        Ok(credentials)
    })
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = providers)]
struct ProviderRow {
    id: i64,
    name: String,
    kind: String,
    region_codes: String,
    created_at: NaiveDateTime,
    code: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    pub provider_id: String,
    pub name: String,
    pub kind: String,
    /// The regions it reports for (empty: everywhere).
    pub region_codes: Vec<String>,
    /// The code its trips' claims are computed with, if it has one.
    pub operator_code: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Its signing keys, newest first: ids and dates, never secrets.
    pub keys: Vec<KeyInfo>,
}

/// The data providers with their keys' state (never their secrets), newest first. Any administrator
/// reads the whole list.
#[utoipa::path(get, path = "/api/v1/admin/providers", tag = "admin", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Paginated<ProviderView>)))]
pub async fn list_providers(
    state: web::Data<AppState>,
    _governor: Governor,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    page_with_keys(
        &state,
        page.page()?,
        Owner::Provider,
        provider_page,
        |p| p.id,
        |p, keys| ProviderView {
            provider_id: p.id.to_string(),
            keys,
            region_codes: serde_json::from_str(&p.region_codes).unwrap_or_default(),
            name: p.name,
            kind: p.kind,
            operator_code: p.code,
            created_at: p.created_at.and_utc(),
        },
    )
    .await
}

/// A page of providers, newest first.
fn provider_page(conn: &mut AnyConnection, page: Page) -> QueryResult<Vec<ProviderRow>> {
    let mut query = providers::table
        .select(ProviderRow::as_select())
        .order(providers::id.desc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(before) = page.before {
        query = query.filter(providers::id.lt(before));
    }
    query.load(conn)
}

/// Post an activity a provider observed for one of our users. Signed; evidence is `operator`.
/// The body is an activity (as for `POST /api/v1/activities`) plus `user_id`. The `client_event_id` is
/// the provider's own: a replay is answered from the provider's record, whatever ids the user's app or
/// other providers used. A provider onboarded for some regions reports events in those only (403
/// `region_not_served`). A provider with an operator code may name the trip (`trip_ref`): its claim is
/// registered as the activity is stored (docs/registry.md).
#[utoipa::path(post, path = "/api/v1/provider/activities", tag = "activities", request_body = ActivityRequest,
    params(("X-Key-Id" = String, Header), ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 201, body = ActivityResult), (status = 200, body = ActivityResult, description = "replay"),
        (status = 401, body = Problem), (status = 403, body = Problem, description = "region_not_served"),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn provider_activity(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = json::read_body(&req, &mut payload).await?;
    let now = state.clock.now();
    let caller = signature::verify(&req, &body, &state, Owner::Provider).await?;
    let mut value: serde_json::Value = json::parse(&body)?;
    let subject = take_subject(&mut value)?;
    let request: ActivityRequest = json::parse(value.to_string().as_bytes())?;
    let provider_id = caller.owner_id;
    let (mut posters, served) = state
        .db
        .run(move |conn| {
            let (served, code) = terms(conn, provider_id)?;
            Ok((posters(conn, provider_id, code.as_deref(), &[subject])?, served))
        })
        .await?;
    let poster = posters
        .pop()
        .unwrap_or_else(|| Err(ApiError::unavailable("no poster for this event")))?;
    let region = request.region_code.as_deref().unwrap_or(&poster.home_region);
    if let Err(refusal) = check_served(&state.catalog.get(), &served, region) {
        // An event stored before the provider's regions were narrowed is still answered on retry.
        let refused = Refused::new(refusal, RetryOf::of(&request, &poster)?);
        return Ok(respond(retry::answer_one(&state, refused).await?));
    }
    Ok(respond(ingest_one(&state, request, poster, now).await?))
}

/// What a provider was onboarded with that its events depend on: the regions it reports for, as stored
/// (a JSON list), and its operator code.
fn terms(conn: &mut AnyConnection, provider_id: i64) -> QueryResult<(String, Option<String>)> {
    providers::table
        .find(provider_id)
        .select((providers::region_codes, providers::code))
        .first(conn)
}

/// Post up to 500 events a provider observed, each for its own person (`user_id` or `external_ref`) and
/// each standing alone: one result per event, in order, as for an app's batch. Signed.
#[utoipa::path(post, path = "/api/v1/provider/activities/batch", tag = "activities", request_body = BatchRequest,
    params(("X-Key-Id" = String, Header), ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 200, body = BatchResponse), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn provider_batch(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let _turn = state.batch_gate.enter().await?;
    let body = json::read_body(&req, &mut payload).await?;
    let now = state.clock.now();
    let caller = signature::verify(&req, &body, &state, Owner::Provider).await?;
    let mut events = batch_events(&body)?;
    let subjects: Vec<Result<Subject, ApiError>> = events.iter_mut().map(take_subject).collect();
    let named: Vec<Subject> = subjects.iter().filter_map(|s| s.as_ref().ok().cloned()).collect();
    let provider_id = caller.owner_id;
    let (resolved, served) = state
        .db
        .run(move |conn| {
            let (served, code) = terms(conn, provider_id)?;
            Ok((posters(conn, provider_id, code.as_deref(), &named)?, served))
        })
        .await?;
    let catalog = state.catalog.get();
    let mut resolved = resolved.into_iter();
    let checked = events
        .into_iter()
        .zip(subjects)
        .map(|(raw, subject)| {
            let id = event_id(&raw);
            let poster = subject.and_then(|_| {
                resolved
                    .next()
                    .unwrap_or_else(|| Err(ApiError::unavailable("no poster for this event")))
            });
            let checked = poster.map_err(Refused::from).and_then(|poster| {
                let region = raw
                    .get("region_code")
                    .and_then(|r| r.as_str())
                    .unwrap_or(&poster.home_region)
                    .to_string();
                match check_served(&catalog, &served, &region) {
                    Ok(()) => check_raw(&state, &raw, poster, now),
                    Err(refusal) => {
                        let request = json::parse::<ActivityRequest>(raw.to_string().as_bytes())?;
                        Err(Refused::new(refusal, RetryOf::of(&request, &poster)?))
                    }
                }
            });
            (id, checked)
        })
        .collect();
    Ok(HttpResponse::Ok().json(answer_batch(&state, checked).await?))
}
