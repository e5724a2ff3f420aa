//! Transfers between people, written by group commit (`db::group_commit`).
//!
//! A writer takes the transfers that arrived together and writes them in one transaction with a fixed
//! number of statements, whatever their count: their accounts (locked and read in one statement), the
//! stored answers of their idempotency keys (one read), the transfers themselves (`ledger::batch`), and
//! the new keys with their answers (one insert). A refused transfer (short of points, unknown account)
//! moves nothing, so it cannot fail its neighbours; its refusal is its key's answer, stored like any other
//! (`idempotency`). One transfer alone is a batch of one.
//!
//! Keys are stored only by whoever holds the sender's account lock, and the keys are read after the
//! locks are taken, so a key another batch committed meanwhile is read, not inserted twice. Should a key
//! still be stored by a transaction outside that rule, the batch's insert fails, the batch is rolled back,
//! and each transfer is written again alone, where it reads that key's answer.

use std::collections::HashSet;

use actix_web::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::batch::{self, Order};
use super::kinds::AccountKind;
use super::service::{Cause, Kind};
use super::store;
use crate::db::group_commit::{write_alone, write_batch, Batching, Queue, WriterConnection};
use crate::db::prepared::Planning;
use crate::db::{AnyConnection, Db};
use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::idempotency::{self, Answered};

/// A validated transfer request.
#[derive(Debug)]
pub struct TransferJob {
    pub from: i64,
    pub to: i64,
    pub points: i64,
    pub cause: Cause,
    pub idempotency_key: String,
    pub request_hash: String,
}

impl TransferJob {
    fn scope(&self) -> String {
        format!("transfer:{}", self.from)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransferCreated {
    pub transfer_id: String,
    /// The sender's balance after the transfer.
    pub balance: i64,
}

/// The status and JSON body to answer (a replay answers what the first request was answered).
pub type Answer = Result<(StatusCode, String), ApiError>;

pub type TransferQueue = Queue<TransferJob, Answer>;

pub fn start(db: Db, batching: Batching) -> TransferQueue {
    Queue::start("transfer-writer", batching, move || {
        let mut conn = WriterConnection::new(db.clone());
        move |jobs: &[&TransferJob]| write_batch(&mut conn, "transfer", jobs, write_together)
    })
}

fn created(transfer_id: i64, balance: i64) -> Result<String, ApiError> {
    serde_json::to_string(&TransferCreated {
        transfer_id: transfer_id.to_string(),
        balance,
    })
    .map_err(ApiError::internal)
}

/// One transfer in a transaction of its own (a savepoint inside a caller's).
fn transfer_alone(conn: &mut AnyConnection, job: &TransferJob) -> Answer {
    write_alone(conn, job, &mut write_together)
}

fn unknown_wallet() -> ApiError {
    ApiError::unprocessable(ErrorCode::UnknownAccount, "no such wallet")
}

/// What became of a job before any points moved.
enum Sorted {
    /// Answered from its key's stored answer (or refused as a different request under a used key).
    Answered(Answer),
    /// Its key came earlier in this batch: it is written after the others, to see that answer.
    Repeat,
    /// To be made.
    New,
}

fn write_together(conn: &mut AnyConnection, jobs: &[&TransferJob]) -> Result<Vec<Answer>, ApiError> {
    let scopes: Vec<String> = jobs.iter().map(|j| j.scope()).collect();
    let keys: Vec<(&str, &str)> = scopes
        .iter()
        .zip(jobs)
        .map(|(scope, job)| (scope.as_str(), job.idempotency_key.as_str()))
        .collect();
    // Accounts first: a key is stored by whoever holds its sender's account lock, so once the locks are
    // held, every key stored by another batch has committed and is read below.
    let touched: Vec<i64> = jobs.iter().flat_map(|j| [j.from, j.to]).collect();
    let mut accounts = batch::lock_accounts(conn, &touched)?;
    let stored = idempotency::stored(conn, &keys, Planning::Cached)?;
    let mut seen = HashSet::new();
    let sorted: Vec<Sorted> = keys
        .iter()
        .zip(jobs)
        .map(|(&(scope, key), job)| {
            if let Some(answer) = stored.get(&(scope.to_string(), key.to_string())) {
                Sorted::Answered(answer.replay(&job.request_hash))
            } else if !seen.insert((scope, key)) {
                Sorted::Repeat
            } else {
                Sorted::New
            }
        })
        .collect();

    let new: Vec<usize> = (0..jobs.len())
        .filter(|&i| matches!(sorted[i], Sorted::New))
        .collect();
    // Only wallets take transfers from people: anything else is refused as unknown before deciding.
    let to_wallet: Vec<bool> = new
        .iter()
        .map(|&i| {
            accounts
                .get(&jobs[i].to)
                .is_some_and(|a| a.kind == AccountKind::Wallet)
        })
        .collect();
    let orders: Vec<Order<'_>> = new
        .iter()
        .zip(&to_wallet)
        .filter(|(_, &ok)| ok)
        .map(|(&i, _)| Order {
            kind: Kind::Transfer,
            debit: jobs[i].from,
            credit: jobs[i].to,
            amount: jobs[i].points,
            cause: &jobs[i].cause,
        })
        .collect();
    let mut posted = batch::post(conn, &mut accounts, &orders)?.into_iter();

    let mut answers: Vec<Option<Answer>> = Vec::with_capacity(jobs.len());
    // The new keys' answers, made or refused, to store.
    let mut decided: Vec<(usize, StatusCode, String)> = Vec::new();
    let mut wallet_checks = to_wallet.into_iter();
    for (i, sort) in sorted.into_iter().enumerate() {
        let outcome = match sort {
            Sorted::Answered(answer) => {
                answers.push(Some(answer));
                continue;
            }
            Sorted::Repeat => {
                answers.push(None);
                continue;
            }
            Sorted::New if !wallet_checks.next().unwrap_or(false) => Err(unknown_wallet()),
            Sorted::New => match posted.next() {
                // A transfer made but not answerable must not stand unanswered: the group is undone.
                Some(Ok(p)) => Ok(created(p.transfer.id, p.debit_balance)?),
                Some(Err(refused)) => Err(refused.into()),
                None => Err(ApiError::unavailable("no answer for this transfer")),
            },
        };
        let answer = idempotency::answer_of(outcome, StatusCode::CREATED);
        if let Ok((status, body)) = &answer {
            decided.push((i, *status, body.clone()));
        }
        answers.push(Some(answer));
    }
    let now = store::now();
    let answered: Vec<Answered<'_>> = decided
        .iter()
        .map(|(i, status, body)| Answered {
            scope: &scopes[*i],
            idempotency_key: &jobs[*i].idempotency_key,
            request_hash: &jobs[*i].request_hash,
            status: i32::from(status.as_u16()),
            response: body,
            created_at: now,
        })
        .collect();
    idempotency::store_all(conn, &answered)?;
    // Repeats of a key used earlier in the batch now find its stored answer, each in a savepoint.
    Ok(answers
        .into_iter()
        .zip(jobs)
        .map(|(answer, job)| answer.unwrap_or_else(|| transfer_alone(conn, job)))
        .collect())
}
