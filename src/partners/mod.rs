//! Partner operators (transit, scenic sites, green-credit banks) that accept points: onboarding, their
//! signing keys, and the authentication of their signed calls.

pub mod admin;
pub mod rotation;

use actix_web::{web, HttpRequest};
use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::auth::api_keys::Owner;
use crate::auth::signature;
use crate::db::schema::partners;
use crate::db::AnyConnection;
use crate::error::{ApiError, ApiResult};
use crate::http::json;
use crate::state::AppState;

crate::text_enum! {
    /// What a partner operates; green-credit banks take only offers with a stated value.
    pub enum PartnerKind {
        Transit = "transit",
        Scenic = "scenic",
        GreenCredit = "green_credit",
    }
}

/// The partner kinds' texts, as onboarding checks them.
pub const PARTNER_KINDS: [&str; 3] = [
    PartnerKind::Transit.as_str(),
    PartnerKind::Scenic.as_str(),
    PartnerKind::GreenCredit.as_str(),
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    admin::routes(cfg);
    rotation::routes(cfg);
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = partners)]
pub struct Partner {
    pub id: i64,
    pub name: String,
    pub kind: PartnerKind,
    pub region_codes: String,
    /// Its settlement account: captured redemptions are posted here.
    pub account_id: i64,
    pub created_at: NaiveDateTime,
}

impl Partner {
    pub fn regions(&self) -> Vec<String> {
        serde_json::from_str(&self.region_codes).unwrap_or_default()
    }
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Partner>> {
    partners::table
        .find(id)
        .select(Partner::as_select())
        .first(conn)
        .optional()
}

/// A verified partner call: who signed it, and the body it signed.
pub struct SignedPartner {
    pub partner: Partner,
    pub body: web::Bytes,
}

impl SignedPartner {
    /// Reads the body, checks the signature (README, "Partner calls") and loads the partner behind the key.
    pub async fn authenticate(
        req: &HttpRequest,
        payload: &mut web::Payload,
        state: &AppState,
    ) -> ApiResult<SignedPartner> {
        let body = json::read_body(req, payload).await?;
        let caller = signature::verify(req, &body, state, Owner::Partner).await?;
        let partner = state
            .db
            .run(move |conn| Ok(find(conn, caller.owner_id)?))
            .await?
            .ok_or_else(|| ApiError::unauthorized("the partner of this key no longer exists"))?;
        Ok(SignedPartner {
            partner,
            body: body.freeze(),
        })
    }
}
