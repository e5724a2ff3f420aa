//! Green profiles: a person's current quarter (Asia/Shanghai) of granted grams, its tier and its score
//! (`domain::green`), read from the per-day rollups the activity writes keep (`activities::rollups`): at
//! most 92 rows, whatever the number of activities. The person reads their own
//! (`GET /api/v1/me/green-profile`); a green-credit partner reads it under a consent (`consents`), graded
//! by its own thresholds when it published some (`PUT /api/v1/partner/green-tiers`).

use std::collections::HashSet;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::{self, AuditAction, AuditEntity};
use crate::auth::extract::Member;
use crate::db::schema::{activity_rollups, partner_green_tiers};
use crate::db::{self, AnyConnection, Tx};
use crate::domain::catalog::china;
use crate::domain::green::{factors, Factor, Quarter, QuarterCounts, Thresholds, Tier};
use crate::error::{ApiError, ApiResult, Problem};
use crate::partners::{PartnerKind, SignedPartner};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/me/green-profile").route(web::get().to(my_green_profile)))
        .service(
            web::resource("/partner/green-tiers")
                .route(web::get().to(partner_tiers))
                .route(web::put().to(publish_tiers)),
        );
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GreenProfile {
    /// `2026-Q4`: the current quarter of the Asia/Shanghai calendar.
    pub quarter: String,
    /// Grams granted to the person's activities of the quarter (by the day they took place).
    pub reduction_g: i64,
    pub tier: Tier,
    /// The thresholds the tier was read against (the platform's, or the reading partner's own).
    pub thresholds: Thresholds,
    /// 0 to 100: the sum of the factors' points.
    pub score: i64,
    pub factors: Vec<Factor>,
}

/// The Asia/Shanghai date of a UTC instant.
pub fn local_date(now: NaiveDateTime) -> NaiveDate {
    now.and_utc().with_timezone(&china()).date_naive()
}

/// The quarter's counts of one account, from its rollup rows.
pub fn quarter_counts(
    conn: &mut AnyConnection,
    account_id: i64,
    quarter: Quarter,
) -> QueryResult<QuarterCounts> {
    let first = quarter.first_day().format("%Y-%m-%d").to_string();
    let last = quarter.last_day().format("%Y-%m-%d").to_string();
    let rows: Vec<(String, i64, i64, i64, i64, i64)> = activity_rollups::table
        .filter(activity_rollups::account_id.eq(account_id))
        .filter(activity_rollups::local_day.between(first, last))
        .select((
            activity_rollups::local_day,
            activity_rollups::granted_g,
            activity_rollups::accepted,
            activity_rollups::verified,
            activity_rollups::flagged,
            activity_rollups::rejected,
        ))
        .load(conn)?;
    let mut counts = QuarterCounts::default();
    let mut weeks = HashSet::new();
    for (day, granted_g, accepted, verified, flagged, rejected) in rows {
        counts.granted_g = counts.granted_g.saturating_add(granted_g);
        counts.accepted = counts.accepted.saturating_add(accepted);
        counts.verified = counts.verified.saturating_add(verified);
        counts.flagged = counts.flagged.saturating_add(flagged);
        counts.rejected = counts.rejected.saturating_add(rejected);
        if accepted > 0 {
            if let Ok(day) = day.parse::<NaiveDate>() {
                weeks.insert(quarter.week_of(day));
            }
        }
    }
    counts.weeks_active = weeks.len() as i64;
    Ok(counts)
}

/// The account's profile for the quarter `now` falls in, graded by `thresholds`.
pub fn profile(
    conn: &mut AnyConnection,
    account_id: i64,
    now: NaiveDateTime,
    thresholds: Thresholds,
) -> QueryResult<GreenProfile> {
    let quarter = Quarter::of(local_date(now));
    let counts = quarter_counts(conn, account_id, quarter)?;
    let factors = factors(&counts);
    Ok(GreenProfile {
        quarter: quarter.label(),
        reduction_g: counts.granted_g,
        tier: thresholds.tier(counts.granted_g),
        thresholds,
        score: factors.iter().map(|f| f.points).sum(),
        factors,
    })
}

/// The thresholds a partner reads profiles by: its own when it published some, else the platform's.
pub fn thresholds_of(conn: &mut AnyConnection, partner_id: i64) -> QueryResult<Thresholds> {
    let own: Option<(i64, i64)> = partner_green_tiers::table
        .find(partner_id)
        .select((
            partner_green_tiers::medium_from_g,
            partner_green_tiers::deep_above_g,
        ))
        .first(conn)
        .optional()?;
    Ok(own
        .and_then(|(medium, deep)| Thresholds::new(medium, deep))
        .unwrap_or(Thresholds::PLATFORM))
}

/// Stores a partner's thresholds (replacing any before) and audits the change.
fn store_thresholds(
    conn: &mut AnyConnection,
    partner_id: i64,
    thresholds: Thresholds,
    now: NaiveDateTime,
) -> QueryResult<()> {
    db::transaction(conn, Tx::Write, |conn| {
        let before = thresholds_of(conn, partner_id)?;
        diesel::sql_query(
            "INSERT INTO partner_green_tiers (partner_id, medium_from_g, deep_above_g, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (partner_id) DO UPDATE SET \
             medium_from_g = excluded.medium_from_g, deep_above_g = excluded.deep_above_g, \
             updated_at = excluded.updated_at",
        )
        .bind::<BigInt, _>(partner_id)
        .bind::<BigInt, _>(thresholds.medium_from_g)
        .bind::<BigInt, _>(thresholds.deep_above_g)
        .bind::<Timestamp, _>(now)
        .execute(conn)?;
        audit::record(
            conn,
            audit::Entry {
                at: now,
                actor_user_id: None,
                action: AuditAction::GreenTiersPublish,
                entity: AuditEntity::Partner,
                entity_id: &partner_id.to_string(),
                before: serde_json::to_value(before).ok(),
                after: serde_json::to_value(thresholds).ok(),
            },
        )
    })
}

/// The caller's green profile for the current quarter, graded by the platform's thresholds (light below
/// 50 kg, medium from 50 to 100 kg, deep above).
#[utoipa::path(get, path = "/api/v1/me/green-profile", tag = "green credit", security(("bearer" = [])),
    responses((status = 200, body = GreenProfile), (status = 401, body = Problem)))]
pub async fn my_green_profile(state: web::Data<AppState>, caller: Member) -> ApiResult<HttpResponse> {
    let account_id = caller.0.account_id()?;
    let now = state.clock.now_naive();
    let profile = state
        .db
        .run(move |conn| Ok(profile(conn, account_id, now, Thresholds::PLATFORM)?))
        .await?;
    Ok(HttpResponse::Ok().json(profile))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TiersRequest {
    /// Grams a quarter from which a person is `medium` (positive).
    pub medium_from_g: i64,
    /// Grams a quarter above which a person is `deep` (at least `medium_from_g`, at most 10,000,000).
    pub deep_above_g: i64,
}

/// A signed green-credit partner's call; other partners are refused.
async fn green_credit_partner(
    req: &HttpRequest,
    payload: &mut web::Payload,
    state: &AppState,
) -> ApiResult<SignedPartner> {
    let signed = SignedPartner::authenticate(req, payload, state).await?;
    if signed.partner.kind != PartnerKind::GreenCredit {
        return Err(ApiError::forbidden(
            "only green-credit partners grade green profiles",
        ));
    }
    Ok(signed)
}

/// The thresholds the calling green-credit partner's reads of green profiles use (signed).
#[utoipa::path(get, path = "/api/v1/partner/green-tiers", tag = "green credit",
    responses((status = 200, body = Thresholds), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn partner_tiers(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let signed = green_credit_partner(&req, &mut payload, &state).await?;
    let partner_id = signed.partner.id;
    let thresholds = state
        .db
        .run(move |conn| Ok(thresholds_of(conn, partner_id)?))
        .await?;
    Ok(HttpResponse::Ok().json(thresholds))
}

/// Publish the calling green-credit partner's own tier thresholds (signed); its reads of green profiles
/// grade by them from then on.
#[utoipa::path(put, path = "/api/v1/partner/green-tiers", tag = "green credit", request_body = TiersRequest,
    responses((status = 200, body = Thresholds), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)))]
pub async fn publish_tiers(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let signed = green_credit_partner(&req, &mut payload, &state).await?;
    let body: TiersRequest = crate::http::json::parse(&signed.body)?;
    let thresholds = Thresholds::new(body.medium_from_g, body.deep_above_g).ok_or_else(|| {
        ApiError::field(
            "deep_above_g",
            "thresholds must satisfy 0 < medium_from_g <= deep_above_g <= 10000000",
        )
    })?;
    let partner_id = signed.partner.id;
    let now = state.clock.now_naive();
    state
        .db
        .run(move |conn| Ok(store_thresholds(conn, partner_id, thresholds, now)?))
        .await?;
    Ok(HttpResponse::Ok().json(thresholds))
}
