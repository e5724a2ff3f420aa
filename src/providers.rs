//! Trusted data providers (transit operators, bike-share, waste stations): onboarded by administrators,
//! they post signed activities they observed for a user.

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use diesel::prelude::*;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::accounts::store as users;
use crate::activities::handlers::{ingest_one, respond};
use crate::activities::ingest::ActivityResult;
use crate::activities::request::{ActivityRequest, Poster};
use crate::audit;
use crate::auth::extract::Admin;
use crate::auth::signature;
use crate::db::schema::{api_keys, providers};
use crate::db::{self, AnyConnection, Tx};
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::http::json::{self, ApiJson};
use crate::secrets::SecretBox;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/providers", web::post().to(create_provider))
        .route("/provider/activities", web::post().to(provider_activity));
}

pub const PROVIDER_KINDS: [&str; 5] = ["transit", "bikeshare", "waste", "energy", "other"];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProvider {
    pub name: String,
    /// transit, bikeshare, waste, energy or other
    pub kind: String,
    #[serde(default)]
    pub region_codes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Credentials {
    pub partner_id: String,
    pub key_id: String,
    /// Shown once; sign requests with it exactly as given.
    pub secret: String,
}

/// A new key id and secret: random, URL-safe.
pub fn new_key(prefix: &str) -> (String, String) {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut id);
    rand::rngs::OsRng.fill_bytes(&mut secret);
    (
        format!("{prefix}_{}", hex::encode(id)),
        URL_SAFE_NO_PAD.encode(secret),
    )
}

/// Stores a key for an owner; only the sealed secret is kept.
pub fn store_key(
    conn: &mut AnyConnection,
    secrets: &SecretBox,
    owner_type: &str,
    owner_id: i64,
    key_id: &str,
    secret: &str,
) -> QueryResult<()> {
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::key_id.eq(key_id),
            api_keys::owner_type.eq(owner_type),
            api_keys::owner_id.eq(owner_id),
            api_keys::secret_encrypted.eq(secrets.seal(secret)),
            api_keys::created_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Onboard a data provider; its key id and secret are in the answer, and only there.
#[utoipa::path(post, path = "/api/v1/admin/providers", tag = "admin", request_body = NewProvider, security(("bearer" = [])),
    responses((status = 201, body = Credentials), (status = 422, body = Problem)))]
pub async fn create_provider(
    state: web::Data<AppState>,
    admin: Admin,
    body: ApiJson<NewProvider>,
) -> ApiResult<HttpResponse> {
    let NewProvider {
        name,
        kind,
        region_codes,
    } = body.0;
    let mut errors = Vec::new();
    if name.trim().is_empty() || name.chars().count() > 100 {
        errors.push(FieldError {
            field: "name".into(),
            message: "must be 1 to 100 characters".into(),
        });
    }
    if !PROVIDER_KINDS.contains(&kind.as_str()) {
        errors.push(FieldError {
            field: "kind".into(),
            message: format!("must be one of {}", PROVIDER_KINDS.join(", ")),
        });
    }
    let catalog = state.catalog.get();
    for code in &region_codes {
        if catalog.region(code).is_none() {
            errors.push(FieldError {
                field: "region_codes".into(),
                message: format!("unknown region {code}"),
            });
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let admin_id = admin.0.user_id()?;
    let (key_id, secret) = new_key("pv");
    let task_state = state.clone();
    let (id, key) = (key_id.clone(), secret.clone());
    let provider_id = state
        .db
        .run(move |conn| {
            db::transaction(conn, Tx::Write, |conn| {
                let provider_id: i64 = diesel::insert_into(providers::table)
                    .values((
                        providers::name.eq(name.trim()),
                        providers::kind.eq(&kind),
                        providers::region_codes.eq(serde_json::to_string(&region_codes).unwrap_or_default()),
                        providers::created_at.eq(Utc::now().naive_utc()),
                    ))
                    .returning(providers::id)
                    .get_result(conn)?;
                store_key(conn, &task_state.secrets, "provider", provider_id, &id, &key)?;
                audit::record(
                    conn,
                    Some(admin_id),
                    "provider.create",
                    "provider",
                    &provider_id.to_string(),
                    None,
                    Some(serde_json::json!({"name": name.trim(), "kind": kind, "region_codes": region_codes, "key_id": id})),
                )?;
                Ok(provider_id)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(Credentials {
        partner_id: provider_id.to_string(),
        key_id,
        secret,
    }))
}

/// Post an activity a provider observed for one of our users. Signed; evidence is `operator`.
/// The body is an activity (as for `POST /api/v1/activities`) plus `user_id`.
#[utoipa::path(post, path = "/api/v1/provider/activities", tag = "activities", request_body = ActivityRequest,
    params(("X-Key-Id" = String, Header), ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 201, body = ActivityResult), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn provider_activity(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = json::read_body(&req, &mut payload).await?;
    let caller = signature::verify(&req, &body, &state, "provider").await?;
    let mut value: serde_json::Value = json::parse(&body)?;
    let user_id = value
        .as_object_mut()
        .and_then(|o| o.remove("user_id"))
        .and_then(|v| {
            v.as_str()
                .and_then(|s| s.parse::<i64>().ok())
                .or_else(|| v.as_i64())
        })
        .ok_or_else(|| ApiError::field("user_id", "is required: the id of the user who made the trip"))?;
    let request: ActivityRequest = json::parse(value.to_string().as_bytes())?;
    let user = state
        .db
        .run(move |conn| Ok(users::find_by_id(conn, user_id)?))
        .await?
        .filter(|u| !u.is_admin)
        .ok_or_else(|| ApiError::unprocessable("unknown_user", "no such user"))?;
    let poster = Poster {
        user_id: user.id,
        account_id: user.account_id,
        home_region: user.region_code,
        provider_id: Some(caller.owner_id),
    };
    Ok(respond(ingest_one(&state, request, poster).await?))
}
