//! Wallets, transfers between people, and the public ledger.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::lots;
use super::merkle;
use super::seal::{self, leaf};
use super::service::{Cause, Kind};
use super::store::{self, BlockRow, TransferRow};
use super::transfer_writer::{TransferCreated, TransferJob};
use crate::auth::extract::{Member, OptionalCaller};
use crate::auth::tokens::Claims;
use crate::auth::Role;
use crate::db::{self, Tx};
use crate::error::ErrorCode;
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::json::ApiJson;
use crate::http::pagination::{PageQuery, Paginated};
use crate::http::reader::Reader;
use crate::idempotency;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/wallet").route(web::get().to(wallet)))
        .service(web::resource("/wallet/transfers").route(web::get().to(wallet_transfers)))
        .service(web::resource("/transfers").route(web::post().to(create_transfer)))
        .service(web::resource("/public/ledger/key").route(web::get().to(public_key)))
        .service(web::resource("/public/ledger/blocks/{height}").route(web::get().to(get_block)))
        .service(web::resource("/public/ledger/proof/{transfer_id}").route(web::get().to(get_proof)));
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Wallet {
    pub account_id: String,
    /// Posted credits − posted debits.
    pub balance: i64,
    /// Pending debits (redemptions not yet captured).
    pub held: i64,
    /// balance − held: what can be spent now.
    pub available: i64,
    /// Points ever issued to this wallet for low-carbon actions.
    pub issued_total: i64,
    /// Points that ever left this wallet (transfers out and captured redemptions).
    pub spent_total: i64,
    /// When the free points expire: per date, soonest first, at most 12 dates.
    pub expiring: Vec<Expiring>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Expiring {
    pub points: i64,
    pub expires_at: DateTime<Utc>,
}

/// Dates shown in a wallet's `expiring`.
const EXPIRING_DATES: i64 = 12;

/// The caller's points.
#[utoipa::path(get, path = "/api/v1/wallet", tag = "wallet", security(("bearer" = [])),
    responses((status = 200, body = Wallet), (status = 401, body = Problem)))]
pub async fn wallet(state: web::Data<AppState>, member: Member) -> ApiResult<HttpResponse> {
    let account_id = member.0.account_id()?;
    // One row holds every total the answer needs (the issued total is kept with each issue, see
    // `docs/ledger.md`): one keyed read, whatever the wallet's history; the expiring points are the
    // first rows of the wallet's holdings.
    let (account, expiring) = state
        .db
        .run(move |conn| {
            let account =
                store::account(conn, account_id)?.ok_or_else(|| ApiError::not_found("no wallet"))?;
            Ok((account, lots::expiring(conn, account_id, EXPIRING_DATES)?))
        })
        .await?;
    let held = account.debits_pending;
    Ok(HttpResponse::Ok().json(Wallet {
        account_id: account.id.to_string(),
        balance: account.balance(),
        held,
        available: account.balance() - held,
        issued_total: account.issued_posted,
        spent_total: account.debits_posted,
        expiring: expiring
            .into_iter()
            .map(|(at, points)| Expiring {
                points,
                expires_at: at.and_utc(),
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WalletTransfer {
    pub transfer_id: String,
    pub kind: Kind,
    pub amount: i64,
    /// `in` or `out`
    pub direction: &'static str,
    /// The other account's id.
    pub counterparty: String,
    pub created_at: DateTime<Utc>,
    pub memo: Option<String>,
    pub ref_type: Option<String>,
    pub ref_id: Option<String>,
}

fn wallet_transfer(account_id: i64, t: TransferRow) -> WalletTransfer {
    let out = t.debit_account_id == account_id;
    WalletTransfer {
        transfer_id: t.id.to_string(),
        kind: t.kind,
        amount: t.amount,
        direction: if out { "out" } else { "in" },
        counterparty: if out {
            t.credit_account_id
        } else {
            t.debit_account_id
        }
        .to_string(),
        created_at: t.created_at.and_utc(),
        memo: t.memo,
        ref_type: t.ref_type,
        ref_id: t.ref_id,
    }
}

/// The caller's transfers, newest first.
#[utoipa::path(get, path = "/api/v1/wallet/transfers", tag = "wallet", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Paginated<WalletTransfer>)))]
pub async fn wallet_transfers(
    state: web::Data<AppState>,
    member: Member,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let account_id = member.0.account_id()?;
    let page = page.page()?;
    let rows = state
        .db
        .run(move |conn| {
            Ok(store::account_transfers(
                conn,
                account_id,
                page.before,
                page.limit + 1,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(
        rows,
        page,
        |t| t.id,
        |t| wallet_transfer(account_id, t),
    )))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    pub to_account_id: String,
    pub points: i64,
    pub memo: Option<String>,
}

const MEMO_MAX_CHARS: usize = 140;

/// Give points to another person or business. Requires an `Idempotency-Key` header.
#[utoipa::path(post, path = "/api/v1/transfers", tag = "wallet", request_body = TransferRequest,
    params(("Idempotency-Key" = String, Header, description = "Unique per intended transfer")),
    security(("bearer" = [])),
    responses((status = 201, body = TransferCreated), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_transfer(
    req: HttpRequest,
    state: web::Data<AppState>,
    member: Member,
    body: ApiJson<TransferRequest>,
) -> ApiResult<HttpResponse> {
    let key = idempotency::required_key(&req)?;
    let from = member.0.account_id()?;
    let request = body.0;
    let hash = idempotency::request_hash(&serde_json::to_value(&request).map_err(ApiError::internal)?);
    if request.points <= 0 {
        return Err(ApiError::field("points", "must be a positive number of points"));
    }
    let to: i64 = request
        .to_account_id
        .parse()
        .map_err(|_| ApiError::field("to_account_id", "is not an account id"))?;
    if to == from {
        return Err(ApiError::unprocessable(
            ErrorCode::SelfTransfer,
            "an account cannot pay itself",
        ));
    }
    if request
        .memo
        .as_ref()
        .is_some_and(|m| m.chars().count() > MEMO_MAX_CHARS)
    {
        return Err(ApiError::field(
            "memo",
            format!("at most {MEMO_MAX_CHARS} characters"),
        ));
    }
    let job = TransferJob {
        from,
        to,
        points: request.points,
        cause: Cause::memo(request.memo),
        idempotency_key: key,
        request_hash: hash,
    };
    Ok(idempotency::respond(state.transfers.submit(job).await??))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKey {
    /// Always `Ed25519`.
    pub algorithm: &'static str,
    pub key_id: String,
    /// The 32-byte public key, hex.
    pub public_key_hex: String,
    /// The same, base64url without padding (as in the JWKS `x`).
    pub public_key_base64url: String,
}

/// The platform's Ed25519 public key: it signs every ledger block.
#[utoipa::path(get, path = "/api/v1/public/ledger/key", tag = "ledger", responses((status = 200, body = PublicKey)))]
pub async fn public_key(state: web::Data<AppState>) -> HttpResponse {
    let key = &state.platform_key;
    HttpResponse::Ok().json(PublicKey {
        algorithm: "Ed25519",
        key_id: key.key_id(),
        public_key_hex: hex::encode(key.public_key_bytes()),
        public_key_base64url: key.public_key_base64url(),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BlockView {
    pub height: i64,
    pub merkle_root: String,
    pub prev_hash: String,
    pub hash: String,
    pub transfer_count: i64,
    pub sealed_at: DateTime<Utc>,
    /// Ed25519 signature of the 32 bytes of `hash`, hex.
    pub signature: String,
    /// Unix microseconds of `sealed_at`, as hashed in the header.
    pub sealed_at_micros: i64,
}

impl From<BlockRow> for BlockView {
    fn from(b: BlockRow) -> BlockView {
        BlockView {
            height: b.height,
            merkle_root: b.merkle_root,
            prev_hash: b.prev_hash,
            hash: b.hash,
            transfer_count: b.transfer_count,
            sealed_at: b.sealed_at.and_utc(),
            sealed_at_micros: b.sealed_at.and_utc().timestamp_micros(),
            signature: b.signature,
        }
    }
}

/// A sealed block (heights start at 1).
#[utoipa::path(get, path = "/api/v1/public/ledger/blocks/{height}", tag = "ledger",
    responses((status = 200, body = BlockView), (status = 404, body = Problem)))]
pub async fn get_block(
    state: web::Data<AppState>,
    reader: Reader,
    height: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let height = height.into_inner();
    let block = reader
        .run(&state.db, move |conn| Ok(store::block(conn, height)?))
        .await?
        .ok_or_else(|| ApiError::not_found("no block at that height"))?;
    Ok(HttpResponse::Ok().json(BlockView::from(block)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionProof {
    pub transfer_id: String,
    pub block_height: i64,
    pub leaf_index: i64,
    pub tree_size: i64,
    /// The canonical bytes of the transfer (a JSON array) that the leaf hashes. Only a party to the
    /// transfer (the owner of its debit or credit account) or an administrator, signed in, is shown them:
    /// they hold the accounts, the amount and the memo. Anyone else gets `null` and can check the leaf's
    /// inclusion, not what it says.
    pub leaf_data: Option<String>,
    /// SHA-256(0x00 ‖ leaf_data), hex.
    pub leaf_hash: String,
    /// Sibling hashes from the leaf up (RFC 6962 audit path), hex.
    pub audit_path: Vec<String>,
    pub merkle_root: String,
    pub block: BlockView,
}

/// Proof that a transfer is in a sealed block; verifiable offline with the public key. The transfer's own
/// data comes with it only for a signed-in party to it or an administrator.
#[utoipa::path(get, path = "/api/v1/public/ledger/proof/{transfer_id}", tag = "ledger",
    responses((status = 200, body = InclusionProof), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn get_proof(
    state: web::Data<AppState>,
    reader: Reader,
    caller: OptionalCaller,
    transfer_id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let transfer_id = transfer_id.into_inner();
    let proof = reader
        .run(&state.db, move |conn| {
            db::transaction(conn, Tx::Snapshot, |conn| {
                let height = seal::block_of(conn, transfer_id)?.ok_or_else(|| {
                    ApiError::not_found("that transfer does not exist or is not sealed yet (blocks are sealed every few seconds)")
                })?;
                let block = store::block(conn, height)?.ok_or_else(|| ApiError::not_found("block missing"))?;
                let members = seal::block_members(conn, height)?;
                // The leaf's position among the members in index order: what the root was computed over.
                let index = members.iter().position(|m| m.transfer_id == transfer_id).unwrap_or_default();
                let rows: Vec<TransferRow> = members
                    .into_iter()
                    .map(|m| m.row.ok_or_else(|| ApiError::internal(anyhow::anyhow!("block {height} lost transfer {}; run tanhui verify", m.transfer_id))))
                    .collect::<Result<_, _>>()?;
                let leaves: Vec<merkle::Hash> = rows.iter().map(leaf).collect();
                let path = merkle::inclusion_proof(&leaves, index as usize)
                    .ok_or_else(|| ApiError::internal(anyhow::anyhow!("leaf {index} outside block {height}")))?;
                let row = rows
                    .get(index as usize)
                    .ok_or_else(|| ApiError::internal(anyhow::anyhow!("leaf {index} outside block {height}")))?;
                Ok(InclusionProof {
                    transfer_id: transfer_id.to_string(),
                    block_height: height,
                    leaf_index: index as i64,
                    tree_size: leaves.len() as i64,
                    leaf_data: may_read(caller.0.as_ref(), row)
                        .then(|| String::from_utf8_lossy(&row.canonical()).into_owned()),
                    leaf_hash: hex::encode(leaf(row)),
                    audit_path: path.iter().map(hex::encode).collect(),
                    merkle_root: block.merkle_root.clone(),
                    block: BlockView::from(block),
                })
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(proof))
}

/// Whether `caller` may read a transfer's data: an administrator, or the owner of either of its accounts.
fn may_read(caller: Option<&Claims>, transfer: &TransferRow) -> bool {
    caller.is_some_and(|claims| {
        claims.has_role(Role::Admin)
            || claims
                .account_id()
                .is_ok_and(|own| own == transfer.debit_account_id || own == transfer.credit_account_id)
    })
}
