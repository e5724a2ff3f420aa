//! Peer platforms: other carbon-inclusive schemes that check and register trip claims. Onboarded like
//! data providers (a name and a signing key whose secret is shown once, audited), by a national
//! administrator: a peer is not of any region, and what it registers blocks credit everywhere.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit;
use crate::auth::api_keys::{self, KeyInfo, Owner};
use crate::db::schema::peers;
use crate::db::{self, AnyConnection, Tx};
use crate::error::{ApiError, ApiResult, Problem};
use crate::governance::Governor;
use crate::http::json::ApiJson;
use crate::http::pagination::{Page, PageQuery, Paginated};
use crate::onboarding::{page_with_keys, OnboardError, NAME_MAX_CHARS};
use crate::secrets::SecretBox;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPeer {
    /// The platform's name (1 to 100 characters).
    pub name: String,
}

/// A peer's first key: the secret is in this answer and nowhere else in the clear.
#[derive(Debug, Serialize, ToSchema)]
pub struct PeerCredentials {
    pub peer_id: String,
    pub key_id: String,
    /// Shown once; sign requests with it exactly as given.
    pub secret: String,
}

/// Onboard a peer platform (national administrators only, else 403 `out_of_scope`); its key id and
/// secret are in the answer, and only there. Its keys are listed, added and revoked under
/// `/api/v1/admin/peers/{id}/keys` like a provider's.
#[utoipa::path(post, path = "/api/v1/admin/peers", tag = "registry", request_body = NewPeer, security(("bearer" = [])),
    responses((status = 201, body = PeerCredentials), (status = 403, body = Problem, description = "out_of_scope"),
        (status = 422, body = Problem)))]
pub async fn create_peer(
    state: web::Data<AppState>,
    governor: Governor,
    body: ApiJson<NewPeer>,
) -> ApiResult<HttpResponse> {
    let name = body.0.name.trim().to_string();
    if name.is_empty() || name.chars().count() > NAME_MAX_CHARS {
        return Err(ApiError::field(
            "name",
            format!("must be 1 to {NAME_MAX_CHARS} characters"),
        ));
    }
    governor.scope.check_national()?;
    let admin_id = governor.user_id;
    let task_state = state.clone();
    let now = state.clock.now_naive();
    let credentials = state
        .db
        .run(move |conn| Ok(register(conn, &task_state.secrets, admin_id, &name, now)?))
        .await?;
    Ok(HttpResponse::Created().json(credentials))
}

/// Stores a peer of a checked `name`, issues its first key and audits both, in one transaction.
pub fn register(
    conn: &mut AnyConnection,
    secrets: &SecretBox,
    admin_id: i64,
    name: &str,
    now: NaiveDateTime,
) -> Result<PeerCredentials, OnboardError> {
    db::transaction(conn, Tx::Write, |conn| {
        let peer_id: i64 = diesel::insert_into(peers::table)
            .values((peers::name.eq(name), peers::created_at.eq(now)))
            .returning(peers::id)
            .get_result(conn)?;
        let key = api_keys::issue(conn, now, secrets, Owner::Peer, peer_id)?;
        audit::record(
            conn,
            audit::Entry {
                at: now,
                actor_user_id: Some(admin_id),
                action: audit::AuditAction::PeerCreate,
                entity: audit::AuditEntity::Peer,
                entity_id: &peer_id.to_string(),
                before: None,
                after: Some(serde_json::json!({"name": name, "key_id": key.key_id})),
            },
        )?;
        Ok(PeerCredentials {
            peer_id: peer_id.to_string(),
            key_id: key.key_id,
            secret: key.secret,
        })
    })
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = peers)]
struct PeerRow {
    id: i64,
    name: String,
    created_at: NaiveDateTime,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PeerView {
    pub peer_id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// Its signing keys, newest first: ids and dates, never secrets.
    pub keys: Vec<KeyInfo>,
}

/// The peer platforms with their keys' state (never their secrets), newest first.
#[utoipa::path(get, path = "/api/v1/admin/peers", tag = "registry", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Paginated<PeerView>)))]
pub async fn list_peers(
    state: web::Data<AppState>,
    _governor: Governor,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    page_with_keys(
        &state,
        page.page()?,
        Owner::Peer,
        peer_page,
        |p| p.id,
        |p, keys| PeerView {
            peer_id: p.id.to_string(),
            name: p.name,
            created_at: p.created_at.and_utc(),
            keys,
        },
    )
    .await
}

/// A page of peers, newest first.
fn peer_page(conn: &mut AnyConnection, page: Page) -> QueryResult<Vec<PeerRow>> {
    let mut query = peers::table
        .select(PeerRow::as_select())
        .order(peers::id.desc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(before) = page.before {
        query = query.filter(peers::id.lt(before));
    }
    query.load(conn)
}
