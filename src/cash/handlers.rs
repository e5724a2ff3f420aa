//! Cash over HTTP: a member's balance and withdrawals; administrators record and confirm deposits and
//! complete or reject withdrawals (national administrators only: money is not a region's to govern).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::deposits::{self, DepositRow};
use super::withdrawals::{self, WithdrawalRow};
use super::{accounts, DepositStatus, WithdrawalStatus};
use crate::audit::{self, AuditAction, AuditEntity};
use crate::auth::extract::Member;
use crate::db::{self, AnyConnection, Tx};
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::governance::Governor;
use crate::http::json::ApiJson;
use crate::http::pagination::{Page, PageQuery, Paginated};
use crate::idempotency;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/cash").route(web::get().to(get_cash)))
        .service(
            web::resource("/cash/withdrawals")
                .route(web::post().to(request_withdrawal))
                .route(web::get().to(my_withdrawals)),
        )
        .service(
            web::resource("/admin/cash/deposits")
                .route(web::post().to(record_deposit))
                .route(web::get().to(list_deposits)),
        )
        .service(web::resource("/admin/cash/deposits/{id}/confirm").route(web::post().to(confirm_deposit)))
        .service(web::resource("/admin/cash/withdrawals").route(web::get().to(list_withdrawals)))
        .service(
            web::resource("/admin/cash/withdrawals/{id}/complete").route(web::post().to(complete_withdrawal)),
        )
        .service(
            web::resource("/admin/cash/withdrawals/{id}/reject").route(web::post().to(reject_withdrawal)),
        );
}

/// The most one deposit or withdrawal may move: 10^12 fen (ten billion yuan).
const MAX_AMOUNT_FEN: i64 = 1_000_000_000_000;

#[derive(Debug, Serialize, ToSchema)]
pub struct CashView {
    pub balance_fen: i64,
    pub held_fen: i64,
    pub available_fen: i64,
}

/// The caller's cash: what it holds, what is held (withdrawals asked for, buy orders open), what is free.
#[utoipa::path(get, path = "/api/v1/cash", tag = "market", security(("bearer" = [])),
    responses((status = 200, body = CashView), (status = 401, body = Problem)))]
pub async fn get_cash(state: web::Data<AppState>, member: Member) -> ApiResult<HttpResponse> {
    let wallet = member.0.account_id()?;
    let cash = state.db.run(move |conn| Ok(accounts::of(conn, wallet)?)).await?;
    let (balance, held) = cash.map_or((0, 0), |a| (a.balance(), a.debits_pending));
    Ok(HttpResponse::Ok().json(CashView {
        balance_fen: balance,
        held_fen: held,
        available_fen: balance - held,
    }))
}

/// Why an amount of fen is refused, if it is.
fn amount_problem(amount: i64) -> Option<String> {
    (!(1..=MAX_AMOUNT_FEN).contains(&amount))
        .then(|| format!("must be a whole number of fen between 1 and {MAX_AMOUNT_FEN}"))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepositRequest {
    /// The wallet (its points account id) whose cash account receives the money.
    pub account_id: String,
    pub amount_fen: i64,
    /// The bank's reference of the incoming payment (1 to 64 characters), accepted once.
    pub bank_reference: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DepositView {
    pub deposit_id: String,
    pub status: DepositStatus,
    /// The cash account credited.
    pub cash_account_id: String,
    pub amount_fen: i64,
    pub bank_reference: String,
    pub recorded_by: String,
    pub confirmed_by: Option<String>,
    pub transfer_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
}

impl From<DepositRow> for DepositView {
    fn from(d: DepositRow) -> DepositView {
        DepositView {
            deposit_id: d.id.to_string(),
            status: d.status,
            cash_account_id: d.account_id.to_string(),
            amount_fen: d.amount_fen,
            bank_reference: d.bank_reference,
            recorded_by: d.recorded_by.to_string(),
            confirmed_by: d.confirmed_by.map(|a| a.to_string()),
            transfer_id: d.transfer_id.map(|t| t.to_string()),
            created_at: d.created_at.and_utc(),
            confirmed_at: d.confirmed_at.map(|t| t.and_utc()),
        }
    }
}

fn checked_deposit(request: &DepositRequest) -> Result<(i64, String), ApiError> {
    let mut problems = Vec::new();
    let wallet = request.account_id.parse::<i64>().ok().filter(|id| *id > 0);
    if wallet.is_none() {
        problems.push(FieldError {
            field: "account_id".into(),
            message: "must be a wallet's account id".into(),
        });
    }
    if let Some(message) = amount_problem(request.amount_fen) {
        problems.push(FieldError {
            field: "amount_fen".into(),
            message,
        });
    }
    let reference = request.bank_reference.trim();
    if let Some(message) = deposits::reference_problem(reference) {
        problems.push(FieldError {
            field: "bank_reference".into(),
            message,
        });
    }
    match wallet {
        Some(wallet) if problems.is_empty() => Ok((wallet, reference.to_string())),
        _ => Err(ApiError::validation(problems)),
    }
}

/// Record money that arrived at the bank for a wallet: pending until a second administrator confirms
/// it. Needs an `Idempotency-Key`; a bank reference recorded before → 409 `conflict`.
#[utoipa::path(post, path = "/api/v1/admin/cash/deposits", tag = "market", request_body = DepositRequest,
    security(("bearer" = [])), params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = DepositView), (status = 403, body = Problem, description = "out_of_scope"),
        (status = 409, body = Problem, description = "conflict"), (status = 422, body = Problem)))]
pub async fn record_deposit(
    req: HttpRequest,
    state: web::Data<AppState>,
    governor: Governor,
    body: ApiJson<DepositRequest>,
) -> ApiResult<HttpResponse> {
    governor.scope.check_national()?;
    let key = idempotency::required_key(&req)?;
    let hash = idempotency::request_hash(&serde_json::to_value(&body.0).map_err(ApiError::internal)?);
    let (wallet, reference) = checked_deposit(&body.0)?;
    let amount = body.0.amount_fen;
    let admin = governor.user_id;
    let scope = format!("cash-deposit:{admin}");
    idempotency::create(&state.db, &state.clock, scope, key, hash, move |conn, now| {
        let row = deposits::record(conn, wallet, amount, &reference, admin, now)?;
        let id = row.id;
        let view = DepositView::from(row);
        let after = row_json(&view);
        audited(
            conn,
            admin,
            AuditAction::CashDepositRecord,
            AuditEntity::CashDeposit,
            id,
            &after,
            now,
        )?;
        idempotency::body_of(&view)
    })
    .await
}

fn row_json<T: Serialize>(view: &T) -> serde_json::Value {
    serde_json::to_value(view).unwrap_or_default()
}

fn audited(
    conn: &mut AnyConnection,
    admin: i64,
    action: AuditAction,
    entity: AuditEntity,
    id: i64,
    after: &serde_json::Value,
    now: chrono::NaiveDateTime,
) -> Result<(), ApiError> {
    audit::record(
        conn,
        audit::Entry {
            at: now,
            actor_user_id: Some(admin),
            action,
            entity,
            entity_id: &id.to_string(),
            before: None,
            after: Some(after.clone()),
        },
    )?;
    Ok(())
}

fn parse_id(id: &str, what: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::not_found(format!("no such {what}")))
}

/// Confirm a pending deposit: the money is posted to the wallet's cash account. Only an administrator
/// other than the one who recorded it (403); a deposit posted already → 409 `invalid_state`.
#[utoipa::path(post, path = "/api/v1/admin/cash/deposits/{id}/confirm", tag = "market", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = DepositView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "invalid_state")))]
pub async fn confirm_deposit(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    governor.scope.check_national()?;
    let id = parse_id(&id, "deposit")?;
    let admin = governor.user_id;
    let clock = state.clock.clone();
    let row = state
        .db
        .run(move |conn| {
            db::transaction(conn, Tx::Write, |conn| {
                let now = clock.now_naive();
                let row = deposits::confirm(conn, id, admin, now)?;
                audited(
                    conn,
                    admin,
                    AuditAction::CashDepositConfirm,
                    AuditEntity::CashDeposit,
                    id,
                    &row_json(&DepositView::from(row.clone())),
                    now,
                )?;
                Ok(row)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(DepositView::from(row)))
}

/// A list's query: one status or all, and the page.
#[derive(Debug, Deserialize)]
#[serde(bound = "S: std::str::FromStr, S::Err: std::fmt::Display")]
pub struct StatusQuery<S> {
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub status: Option<S>,
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub limit: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::query::blank_is_absent")]
    pub cursor: Option<String>,
}

impl<S: Copy> StatusQuery<S> {
    fn split(&self) -> Result<(Option<S>, Page), ApiError> {
        let page = PageQuery {
            limit: self.limit,
            cursor: self.cursor.clone(),
        };
        Ok((self.status, page.page()?))
    }
}

/// Deposits, newest first, of one status or all.
#[utoipa::path(get, path = "/api/v1/admin/cash/deposits", tag = "market", security(("bearer" = [])),
    params(("status" = Option<DepositStatus>, Query), ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Paginated<DepositView>), (status = 403, body = Problem)))]
pub async fn list_deposits(
    state: web::Data<AppState>,
    governor: Governor,
    query: web::Query<StatusQuery<DepositStatus>>,
) -> ApiResult<HttpResponse> {
    governor.scope.check_national()?;
    let (status, page) = query.split()?;
    let rows = state
        .db
        .run(move |conn| Ok(deposits::page(conn, status, page.before, page.limit + 1)?))
        .await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page, |r| r.id, DepositView::from)))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRequest {
    pub amount_fen: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WithdrawalView {
    pub withdrawal_id: String,
    pub status: WithdrawalStatus,
    pub cash_account_id: String,
    pub amount_fen: i64,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl From<WithdrawalRow> for WithdrawalView {
    fn from(w: WithdrawalRow) -> WithdrawalView {
        WithdrawalView {
            withdrawal_id: w.id.to_string(),
            status: w.status,
            cash_account_id: w.account_id.to_string(),
            amount_fen: w.amount_fen,
            created_at: w.created_at.and_utc(),
            resolved_at: w.resolved_at.map(|t| t.and_utc()),
        }
    }
}

/// Ask for money to be paid out: it is held until an administrator completes or rejects the withdrawal.
/// Needs an `Idempotency-Key`; more than is available → 409 `insufficient_funds`.
#[utoipa::path(post, path = "/api/v1/cash/withdrawals", tag = "market", request_body = WithdrawalRequest,
    security(("bearer" = [])), params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = WithdrawalView), (status = 409, body = Problem, description = "insufficient_funds"),
        (status = 422, body = Problem)))]
pub async fn request_withdrawal(
    req: HttpRequest,
    state: web::Data<AppState>,
    member: Member,
    body: ApiJson<WithdrawalRequest>,
) -> ApiResult<HttpResponse> {
    let key = idempotency::required_key(&req)?;
    let wallet = member.0.account_id()?;
    if let Some(message) = amount_problem(body.0.amount_fen) {
        return Err(ApiError::field("amount_fen", message));
    }
    let hash = idempotency::request_hash(&serde_json::to_value(&body.0).map_err(ApiError::internal)?);
    let amount = body.0.amount_fen;
    let scope = format!("cash-withdrawal:{wallet}");
    idempotency::create(&state.db, &state.clock, scope, key, hash, move |conn, now| {
        let row = withdrawals::request(conn, wallet, amount, now)?;
        idempotency::body_of(&WithdrawalView::from(row))
    })
    .await
}

/// The caller's withdrawals, newest first.
#[utoipa::path(get, path = "/api/v1/cash/withdrawals", tag = "market", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Paginated<WithdrawalView>)))]
pub async fn my_withdrawals(
    state: web::Data<AppState>,
    member: Member,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let wallet = member.0.account_id()?;
    let page = query.page()?;
    let rows = state
        .db
        .run(move |conn| {
            let Some(cash) = accounts::of(conn, wallet)? else {
                return Ok(Vec::new());
            };
            Ok(withdrawals::page(
                conn,
                None,
                Some(cash.id),
                page.before,
                page.limit + 1,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page, |r| r.id, WithdrawalView::from)))
}

/// Withdrawals, newest first, of one status or all.
#[utoipa::path(get, path = "/api/v1/admin/cash/withdrawals", tag = "market", security(("bearer" = [])),
    params(("status" = Option<WithdrawalStatus>, Query), ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Paginated<WithdrawalView>), (status = 403, body = Problem)))]
pub async fn list_withdrawals(
    state: web::Data<AppState>,
    governor: Governor,
    query: web::Query<StatusQuery<WithdrawalStatus>>,
) -> ApiResult<HttpResponse> {
    governor.scope.check_national()?;
    let (status, page) = query.split()?;
    let rows = state
        .db
        .run(move |conn| {
            Ok(withdrawals::page(
                conn,
                status,
                None,
                page.before,
                page.limit + 1,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page, |r| r.id, WithdrawalView::from)))
}

async fn resolve_withdrawal(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<String>,
    pay_out: bool,
) -> ApiResult<HttpResponse> {
    governor.scope.check_national()?;
    let id = parse_id(&id, "withdrawal")?;
    let admin = governor.user_id;
    let clock = state.clock.clone();
    let action = if pay_out {
        AuditAction::CashWithdrawalComplete
    } else {
        AuditAction::CashWithdrawalReject
    };
    let row = state
        .db
        .run(move |conn| {
            db::transaction(conn, Tx::Write, |conn| {
                let now = clock.now_naive();
                let row = withdrawals::resolve(conn, id, pay_out, admin, now)?;
                let view = row_json(&WithdrawalView::from(row.clone()));
                audited(conn, admin, action, AuditEntity::CashWithdrawal, id, &view, now)?;
                Ok(row)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(WithdrawalView::from(row)))
}

/// The money of a held withdrawal was paid out: its hold is posted to the bank account.
#[utoipa::path(post, path = "/api/v1/admin/cash/withdrawals/{id}/complete", tag = "market", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = WithdrawalView), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "invalid_state")))]
pub async fn complete_withdrawal(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    resolve_withdrawal(state, governor, id, true).await
}

/// A held withdrawal is refused: its money is released to the wallet.
#[utoipa::path(post, path = "/api/v1/admin/cash/withdrawals/{id}/reject", tag = "market", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = WithdrawalView), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "invalid_state")))]
pub async fn reject_withdrawal(
    state: web::Data<AppState>,
    governor: Governor,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    resolve_withdrawal(state, governor, id, false).await
}
