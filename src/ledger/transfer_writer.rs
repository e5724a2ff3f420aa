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

use std::collections::{HashMap, HashSet};

use actix_web::http::StatusCode;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::batch::{self, Order, Posted};
use super::kinds::AccountKind;
use super::service::{Cause, Kind, LedgerError};
use super::store::AccountRow;
use crate::clock::Clock;
use crate::db::group_commit::{write_alone, write_batch, Answer, Batching, Queue, WriterConnection};
use crate::db::prepared::Planning;
use crate::db::schema::users;
use crate::db::{AnyConnection, Db};
use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::idempotency::{self, Answered};
use crate::metrics::BatchMetrics;

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

/// The status and JSON body a transfer is answered (a replay answers what the first request was).
pub type StatusAndBody = (StatusCode, String);

pub type TransferQueue = Queue<TransferJob, Answer<StatusAndBody>>;

pub fn start(db: Db, batching: Batching, clock: Clock, metrics: BatchMetrics) -> TransferQueue {
    Queue::start("transfer-writer", batching, metrics, move || {
        let mut conn = WriterConnection::new(db.clone());
        let clock = clock.clone();
        move |jobs: &[&TransferJob]| {
            write_batch(&mut conn, "transfer", jobs, |conn, jobs| {
                write_together(conn, jobs, &clock)
            })
        }
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
fn transfer_alone(conn: &mut AnyConnection, job: &TransferJob, clock: &Clock) -> Answer<StatusAndBody> {
    write_alone(conn, job, &mut |conn, jobs| write_together(conn, jobs, clock))
}

fn unknown_wallet() -> ApiError {
    ApiError::unprocessable(ErrorCode::UnknownAccount, "no such wallet")
}

/// What became of a job before any points moved.
enum Sorted {
    /// Answered from its key's stored answer (or refused as a different request under a used key).
    Answered(Answer<StatusAndBody>),
    /// Its key came earlier in this batch: it is written after the others, to see that answer.
    Repeat,
    /// To be made, if its recipient is a wallet.
    New { to_wallet: bool },
}

fn write_together(
    conn: &mut AnyConnection,
    jobs: &[&TransferJob],
    clock: &Clock,
) -> Result<Vec<Answer<StatusAndBody>>, ApiError> {
    let scopes: Vec<String> = jobs.iter().map(|j| j.scope()).collect();
    // Accounts first: a key is stored by whoever holds its sender's account lock, so once the locks are
    // held, every key stored by another batch has committed and is read below.
    let touched: Vec<i64> = jobs.iter().flat_map(|j| [j.from, j.to]).collect();
    let mut accounts = batch::lock_accounts(conn, &touched)?;
    let recipients: Vec<i64> = jobs.iter().map(|j| j.to).collect();
    let receivers = people_wallets(conn, &recipients)?;
    let sorted = sort(conn, jobs, &scopes, &accounts, &receivers)?;
    let orders: Vec<Order<'_>> = jobs
        .iter()
        .zip(&sorted)
        .filter(|(_, sort)| matches!(sort, Sorted::New { to_wallet: true }))
        .map(|(job, _)| Order {
            kind: Kind::Transfer,
            debit: job.from,
            credit: job.to,
            amount: job.points,
            cause: &job.cause,
            lot: None,
        })
        .collect();
    let now = clock.now_naive();
    let posted = batch::post(conn, &mut accounts, &orders, now)?;
    let answers = answer(sorted, posted)?;
    store_answers(conn, jobs, &scopes, &answers, now)?;
    // Repeats of a key used earlier in the batch now find its stored answer, each in a savepoint.
    Ok(answers
        .into_iter()
        .zip(jobs)
        .map(|(decided, job)| decided.map_or_else(|| transfer_alone(conn, job, clock), |d| d.answer))
        .collect())
}

/// Of `ids`, the wallets of people and businesses: those a user owns who is not an administrator (one
/// read). An administrator's wallet, and every account no user owns (issuance, settlement), never takes
/// a transfer from a person: points sent there could never be spent.
fn people_wallets(conn: &mut AnyConnection, ids: &[i64]) -> Result<HashSet<i64>, ApiError> {
    let owned: Vec<i64> = users::table
        .filter(users::account_id.eq_any(ids))
        .filter(users::is_admin.eq(false))
        // An erased person's wallet only waits for its lots to expire: nothing new goes in.
        .filter(users::erased_at.is_null())
        .select(users::account_id)
        .load(conn)?;
    Ok(owned.into_iter().collect())
}

/// Sorts the jobs by their keys' stored answers (one read) and their place in the batch. Only the wallets
/// of people and businesses not erased (`receivers`) take transfers from people: a new job to anything else is
/// refused as unknown before deciding.
fn sort(
    conn: &mut AnyConnection,
    jobs: &[&TransferJob],
    scopes: &[String],
    accounts: &HashMap<i64, AccountRow>,
    receivers: &HashSet<i64>,
) -> Result<Vec<Sorted>, ApiError> {
    let keys: Vec<(&str, &str)> = scopes
        .iter()
        .zip(jobs)
        .map(|(scope, job)| (scope.as_str(), job.idempotency_key.as_str()))
        .collect();
    let stored = idempotency::stored(conn, &keys, Planning::Cached)?;
    let mut seen = HashSet::new();
    Ok(keys
        .iter()
        .zip(jobs)
        .map(|(&(scope, key), job)| {
            if let Some(answer) = stored.get(&(scope.to_string(), key.to_string())) {
                Sorted::Answered(answer.replay(&job.request_hash))
            } else if !seen.insert((scope, key)) {
                Sorted::Repeat
            } else {
                let to_wallet = receivers.contains(&job.to)
                    && accounts
                        .get(&job.to)
                        .is_some_and(|a| a.kind == AccountKind::Wallet);
                Sorted::New { to_wallet }
            }
        })
        .collect())
}

/// A job's answer, and whether it is a new key's answer, to be stored.
struct Decided {
    answer: Answer<StatusAndBody>,
    new_key: bool,
}

/// Each job's answer, in order; `None` for a repeat, written after the others. `posted` answers the
/// new jobs to wallets, in order.
fn answer(
    sorted: Vec<Sorted>,
    posted: Vec<Result<Posted, LedgerError>>,
) -> Result<Vec<Option<Decided>>, ApiError> {
    let mut posted = posted.into_iter();
    sorted
        .into_iter()
        .map(|sort| {
            let outcome = match sort {
                Sorted::Answered(answer) => {
                    return Ok(Some(Decided {
                        answer,
                        new_key: false,
                    }))
                }
                Sorted::Repeat => return Ok(None),
                Sorted::New { to_wallet: false } => Err(unknown_wallet()),
                Sorted::New { to_wallet: true } => match posted.next() {
                    // A transfer made but not answerable must not stand unanswered: the group is undone.
                    Some(Ok(p)) => Ok(created(p.transfer.id, p.debit_balance)?),
                    Some(Err(refused)) => Err(refused.into()),
                    None => Err(ApiError::unavailable("no answer for this transfer")),
                },
            };
            Ok(Some(Decided {
                answer: idempotency::answer_of(outcome, StatusCode::CREATED),
                new_key: true,
            }))
        })
        .collect()
}

/// Stores the new keys' answers, made or refused, in one insert.
fn store_answers(
    conn: &mut AnyConnection,
    jobs: &[&TransferJob],
    scopes: &[String],
    answers: &[Option<Decided>],
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    let answered: Vec<Answered<'_>> = answers
        .iter()
        .enumerate()
        .filter_map(|(i, answer)| match answer {
            Some(Decided {
                answer: Ok((status, body)),
                new_key: true,
            }) => Some(Answered {
                scope: &scopes[i],
                idempotency_key: &jobs[i].idempotency_key,
                request_hash: &jobs[i].request_hash,
                status: i32::from(status.as_u16()),
                response: body,
                created_at: now,
            }),
            _ => None,
        })
        .collect();
    idempotency::store_all(conn, &answered)?;
    Ok(())
}
