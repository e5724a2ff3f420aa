//! A person's rights over what is held about them: `GET /api/v1/me/export` (everything, as one JSON
//! document) and `DELETE /api/v1/me` (erasure). See docs/privacy.md.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::handlers::access_token_lifetime;
use super::money_records::{
    self, ExportedCashMovement, ExportedIncentive, ExportedOrder, ExportedRetirement, MoneyRecords,
};
use super::phones;
use super::profile::{plain_phone, Me};
use super::store::{self, UserRow};
use crate::audit::{self, AuditAction, AuditEntity};
use crate::auth::extract::Member;
use crate::consents::{self, Consent, ConsentAccess};
use crate::db::schema::{
    activities, binding_codes, bindings, providers, redemptions, refresh_tokens, transfers, users,
};
use crate::db::{self, AnyConnection, Tx};
use crate::domain::green::Thresholds;
use crate::error::{ApiError, ApiResult, Problem};
use crate::green::{self, GreenProfile};
use crate::http::json::ApiJson;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/me/export").route(web::get().to(export)));
}

/// Rows of each kind an export holds, newest first: a person of ordinary use has far fewer; past this the
/// kind is named in `truncated` (the wallet's own pages, `GET /api/v1/wallet/transfers` and
/// `GET /api/v1/activities`, reach the rest).
pub const EXPORT_ROWS_MAX: i64 = 10_000;

#[derive(Debug, Serialize, ToSchema)]
pub struct ExportedProfile {
    #[serde(flatten)]
    pub me: Me,
    /// The phone in full: this is the person's own copy.
    pub phone: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema, Queryable)]
pub struct ExportedActivity {
    pub id: i64,
    pub client_event_id: String,
    pub activity_type: String,
    pub region_code: String,
    pub occurred_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
    pub evidence: String,
    pub provider_id: Option<i64>,
    /// The data as posted (as reduced, once older than the retention: docs/privacy.md).
    pub data: String,
    pub status: String,
    pub reasons: String,
    pub reduction_g: i64,
    pub granted_g: i64,
    pub points: i64,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Serialize, ToSchema, Queryable)]
pub struct ExportedTransfer {
    pub id: i64,
    pub kind: String,
    pub debit_account_id: i64,
    pub credit_account_id: i64,
    pub amount: i64,
    pub memo: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Serialize, ToSchema, Queryable)]
pub struct ExportedRedemption {
    pub id: i64,
    pub offer_id: i64,
    pub partner_id: i64,
    pub points: i64,
    pub status: String,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub resolved_at: Option<NaiveDateTime>,
}

#[derive(Debug, Serialize, ToSchema, Queryable)]
pub struct ExportedBinding {
    pub id: i64,
    pub provider_id: i64,
    pub provider_name: String,
    pub external_ref: String,
    pub created_at: NaiveDateTime,
    pub removed_at: Option<NaiveDateTime>,
}

/// A sign-in (a refresh-token family), without any token.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportedSession {
    pub session_id: String,
    pub started_at: NaiveDateTime,
    pub last_refreshed_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExportedConsent {
    #[serde(flatten)]
    pub consent: Consent,
    pub accesses: Vec<ConsentAccess>,
}

/// Everything held about the caller. Times are UTC.
#[derive(Debug, Serialize, ToSchema)]
pub struct Export {
    pub exported_at: DateTime<Utc>,
    pub profile: ExportedProfile,
    pub green_profile: GreenProfile,
    pub activities: Vec<ExportedActivity>,
    pub transfers: Vec<ExportedTransfer>,
    pub redemptions: Vec<ExportedRedemption>,
    pub consents: Vec<ExportedConsent>,
    pub bindings: Vec<ExportedBinding>,
    pub sessions: Vec<ExportedSession>,
    pub retirements: Vec<ExportedRetirement>,
    pub market_orders: Vec<ExportedOrder>,
    pub cash_deposits: Vec<ExportedCashMovement>,
    pub cash_withdrawals: Vec<ExportedCashMovement>,
    /// What sales of pooled reductions paid the person.
    pub incentives: Vec<ExportedIncentive>,
    /// The kinds that held more than 10,000 rows: the newest 10,000 are here.
    pub truncated: Vec<&'static str>,
}

/// Keeps at most [`EXPORT_ROWS_MAX`] of `rows` (loaded with one more), naming `kind` when there were more.
fn bounded<T>(mut rows: Vec<T>, kind: &'static str, truncated: &mut Vec<&'static str>) -> Vec<T> {
    if rows.len() as i64 > EXPORT_ROWS_MAX {
        rows.truncate(EXPORT_ROWS_MAX as usize);
        truncated.push(kind);
    }
    rows
}

fn sessions_of(conn: &mut AnyConnection, user_id: i64) -> QueryResult<Vec<ExportedSession>> {
    let rows: Vec<(
        String,
        NaiveDateTime,
        NaiveDateTime,
        NaiveDateTime,
        Option<NaiveDateTime>,
    )> = refresh_tokens::table
        .filter(refresh_tokens::user_id.eq(user_id))
        .group_by(refresh_tokens::family_id)
        .select((
            refresh_tokens::family_id,
            diesel::dsl::min(refresh_tokens::created_at).assume_not_null(),
            diesel::dsl::max(refresh_tokens::created_at).assume_not_null(),
            diesel::dsl::max(refresh_tokens::expires_at).assume_not_null(),
            diesel::dsl::max(refresh_tokens::revoked_at),
        ))
        .order(diesel::dsl::max(refresh_tokens::created_at).desc())
        .limit(EXPORT_ROWS_MAX + 1)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(session_id, started_at, last_refreshed_at, expires_at, ended_at)| ExportedSession {
                session_id,
                started_at,
                last_refreshed_at,
                expires_at,
                ended_at,
            },
        )
        .collect())
}

/// Reads the whole export in one read transaction (one consistent picture).
fn gather(conn: &mut AnyConnection, user: &UserRow, now: NaiveDateTime) -> ApiResult<Gathered> {
    db::transaction(conn, Tx::Snapshot, |conn| {
        let (user_id, account_id) = (user.id, user.account_id);
        let cash_account = crate::cash::accounts::of(conn, account_id)?.map(|a| a.id);
        let own = [Some(account_id), cash_account];
        let activities = activities::table
            .filter(activities::user_id.eq(user_id))
            .order(activities::id.desc())
            .limit(EXPORT_ROWS_MAX + 1)
            .select((
                activities::id,
                activities::client_event_id,
                activities::activity_type,
                activities::region_code,
                activities::occurred_at,
                activities::ended_at,
                activities::evidence,
                activities::provider_id,
                activities::data,
                activities::status,
                activities::reasons,
                activities::reduction_g,
                activities::granted_g,
                activities::points,
                activities::created_at,
            ))
            .load(conn)?;
        let transfers = transfers::table
            .filter(
                transfers::debit_account_id
                    .nullable()
                    .eq_any(own)
                    .or(transfers::credit_account_id.nullable().eq_any(own)),
            )
            .order(transfers::id.desc())
            .limit(EXPORT_ROWS_MAX + 1)
            .select((
                transfers::id,
                transfers::kind,
                transfers::debit_account_id,
                transfers::credit_account_id,
                transfers::amount,
                transfers::memo,
                transfers::created_at,
            ))
            .load(conn)?;
        let redemptions = redemptions::table
            .filter(redemptions::user_id.eq(user_id))
            .order(redemptions::id.desc())
            .limit(EXPORT_ROWS_MAX + 1)
            .select((
                redemptions::id,
                redemptions::offer_id,
                redemptions::partner_id,
                redemptions::points,
                redemptions::status,
                redemptions::expires_at,
                redemptions::created_at,
                redemptions::resolved_at,
            ))
            .load(conn)?;
        let bindings = bindings::table
            .inner_join(providers::table)
            .filter(bindings::user_id.eq(user_id))
            .order(bindings::id.desc())
            .limit(EXPORT_ROWS_MAX + 1)
            .select((
                bindings::id,
                bindings::provider_id,
                providers::name,
                bindings::external_ref,
                bindings::created_at,
                bindings::removed_at,
            ))
            .load(conn)?;
        let mut consents = Vec::new();
        for (row, name) in consents::store::list_for_user(conn, user_id)? {
            let accesses = consents::store::accesses(conn, &row.id)?
                .into_iter()
                .map(|(partner_id, partner_name, scope, at)| ConsentAccess {
                    partner_id: partner_id.to_string(),
                    partner_name,
                    scope,
                    at: at.and_utc(),
                })
                .collect();
            consents.push(ExportedConsent {
                consent: Consent::of(row, name, now),
                accesses,
            });
        }
        Ok(Gathered {
            green_profile: green::profile(conn, account_id, now, Thresholds::PLATFORM)?,
            activities,
            transfers,
            redemptions,
            bindings,
            consents,
            sessions: sessions_of(conn, user_id)?,
            money: money_records::gather(conn, account_id, cash_account, EXPORT_ROWS_MAX + 1)?,
        })
    })
}

struct Gathered {
    green_profile: GreenProfile,
    activities: Vec<ExportedActivity>,
    transfers: Vec<ExportedTransfer>,
    redemptions: Vec<ExportedRedemption>,
    bindings: Vec<ExportedBinding>,
    consents: Vec<ExportedConsent>,
    sessions: Vec<ExportedSession>,
    money: MoneyRecords,
}

/// Everything held about the caller, as one JSON document: profile (with the phone in full), the current
/// green profile, activities, transfers (points and cash), redemptions, consents and every read under
/// them, bindings, sign-in sessions, retirements, market orders, cash deposits and withdrawals, and what
/// sales of pooled reductions paid them. Each kind holds at most its newest 10,000 rows (`truncated` names any that had more).
#[utoipa::path(get, path = "/api/v1/me/export", tag = "privacy", security(("bearer" = [])),
    responses((status = 200, body = Export), (status = 401, body = Problem)))]
pub async fn export(state: web::Data<AppState>, caller: Member) -> ApiResult<HttpResponse> {
    let user_id = caller.0.user_id()?;
    let now = state.clock.now_naive();
    let (user, gathered) = state
        .db
        .run(move |conn| {
            let user = store::find_by_id(conn, user_id)?
                .ok_or_else(|| ApiError::unauthorized("account no longer exists"))?;
            let gathered = gather(conn, &user, now)?;
            Ok((user, gathered))
        })
        .await?;
    let mut truncated = Vec::new();
    let money = gathered.money;
    let profile = ExportedProfile {
        phone: plain_phone(&user, &state.secrets),
        created_at: user.created_at.and_utc(),
        me: Me::of(user, &state.secrets),
    };
    let export = Export {
        exported_at: now.and_utc(),
        profile,
        green_profile: gathered.green_profile,
        activities: bounded(gathered.activities, "activities", &mut truncated),
        transfers: bounded(gathered.transfers, "transfers", &mut truncated),
        redemptions: bounded(gathered.redemptions, "redemptions", &mut truncated),
        consents: gathered.consents,
        bindings: bounded(gathered.bindings, "bindings", &mut truncated),
        sessions: bounded(gathered.sessions, "sessions", &mut truncated),
        retirements: bounded(money.retirements, "retirements", &mut truncated),
        market_orders: bounded(money.market_orders, "market_orders", &mut truncated),
        cash_deposits: bounded(money.cash_deposits, "cash_deposits", &mut truncated),
        cash_withdrawals: bounded(money.cash_withdrawals, "cash_withdrawals", &mut truncated),
        incentives: bounded(money.incentives, "incentives", &mut truncated),
        truncated,
    };
    Ok(HttpResponse::Ok()
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"tanhui-export.json\"",
        ))
        .json(export))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    pub password: String,
}

/// What `erased_at` rows show instead of a name.
pub const ERASED_NAME: &str = "已注销";

/// Erases a person's identifying data in one transaction and returns the sessions to announce as ended.
/// The user row stays, anonymous, as the owner of its wallet, whose ledger history is untouched.
pub fn erase(
    conn: &mut AnyConnection,
    user_id: i64,
    now: NaiveDateTime,
    tokens_live_since: NaiveDateTime,
) -> ApiResult<Vec<String>> {
    db::transaction(conn, Tx::Write, |conn| {
        let erased = diesel::update(users::table.find(user_id).filter(users::erased_at.is_null()))
            .set((
                users::phone_hash.eq(phones::erased_marker(user_id)),
                users::phone_sealed.eq(None::<String>),
                users::display_name.eq(ERASED_NAME),
                // No password hashes to this: nobody signs in again.
                users::password_hash.eq("!erased"),
                users::erased_at.eq(now),
            ))
            .execute(conn)?;
        if erased == 0 {
            return Err(ApiError::unauthorized("account no longer exists"));
        }
        store::revoke_all_for_user(conn, user_id, now)?;
        let sessions = store::families_issued_since(conn, user_id, tokens_live_since)?;
        let consents = consents::store::revoke_all_for_user(conn, user_id, now)?;
        // An operator's reference (a card number) identifies the person: forgotten, and unbound.
        diesel::update(
            bindings::table
                .filter(bindings::user_id.eq(user_id))
                .filter(bindings::removed_at.is_null()),
        )
        .set(bindings::removed_at.eq(now))
        .execute(conn)?;
        diesel::update(bindings::table.filter(bindings::user_id.eq(user_id)))
            .set(bindings::external_ref.eq(""))
            .execute(conn)?;
        diesel::delete(binding_codes::table.filter(binding_codes::user_id.eq(user_id))).execute(conn)?;
        audit::record(
            conn,
            audit::Entry {
                at: now,
                actor_user_id: Some(user_id),
                action: AuditAction::AccountErase,
                entity: AuditEntity::User,
                entity_id: &user_id.to_string(),
                before: None,
                after: Some(
                    serde_json::json!({"consents_revoked": consents.len(), "sessions_ended": sessions.len()}),
                ),
            },
        )?;
        Ok(sessions)
    })
}

/// Erase the caller's account (password confirmed): the phone, name and password are erased and the phone
/// is free to register again, every session ends, every consent is revoked, every binding removed. The
/// wallet's ledger history stays whole under the now anonymous account, and a remaining balance stays in
/// it, spendable by nobody (docs/privacy.md). A wrong password counts as a failed sign-in.
#[utoipa::path(delete, path = "/api/v1/me", tag = "privacy", request_body = EraseRequest, security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn erase_me(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Member,
    body: ApiJson<EraseRequest>,
) -> ApiResult<HttpResponse> {
    let user_id = caller.0.user_id()?;
    super::handlers::confirm_password(&req, &state, user_id, body.0.password).await?;
    let now = state.clock.now_naive();
    let tokens_live_since = now - access_token_lifetime(&state);
    let ended = state
        .db
        .run(move |conn| erase(conn, user_id, now, tokens_live_since))
        .await?;
    state.sessions.ended(&ended);
    Ok(HttpResponse::NoContent().finish())
}
