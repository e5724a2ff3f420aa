//! Order placement by group commit (`db::group_commit`): the orders that arrive together are placed one
//! after another in one transaction, under one take of the market's lock, and answered after its COMMIT.
//! The lock serializes matching across instances anyway, so sharing its transaction is what lets a busy
//! book place more orders than one durable commit per order would allow. Each order runs in a savepoint
//! with its idempotency key (`idempotency::run`): a refused order (short of funds) undoes only itself and
//! its refusal is its key's answer, so it cannot fail its neighbours.

use actix_web::http::StatusCode;
use chrono::NaiveDateTime;

use super::service;
use super::store::NewOrder;
use super::views::view_of;
use crate::clock::Clock;
use crate::db::group_commit::{write_batch, Answer, Batching, Queue, WriterConnection};
use crate::db::{AnyConnection, Db};
use crate::error::ApiError;
use crate::idempotency;
use crate::metrics::BatchMetrics;

/// An order to place, checked, with its key.
#[derive(Debug)]
pub struct OrderJob {
    pub wallet: i64,
    pub order: NewOrder,
    pub idempotency_key: String,
    pub request_hash: String,
}

/// The status and JSON body an order is answered (a replay answers what the first request was).
pub type StatusAndBody = (StatusCode, String);

pub type OrderQueue = Queue<OrderJob, Answer<StatusAndBody>>;

/// One writer per instance: the market's lock lets one transaction match at a time whatever the
/// number, so a second writer would only wait for the first.
pub fn start(
    db: Db,
    window: std::time::Duration,
    max: usize,
    fee_bps: u32,
    clock: Clock,
    metrics: BatchMetrics,
) -> OrderQueue {
    let batching = Batching {
        window,
        max,
        writers: 1,
    };
    Queue::start("market-writer", batching, metrics, move || {
        let mut conn = WriterConnection::new(db.clone());
        let clock = clock.clone();
        move |jobs: &[&OrderJob]| {
            write_batch(&mut conn, "market", jobs, |conn, jobs| {
                place_all(conn, jobs, &clock, fee_bps, clock.now_naive())
            })
        }
    })
}

fn place_all(
    conn: &mut AnyConnection,
    jobs: &[&OrderJob],
    clock: &Clock,
    fee_bps: u32,
    now: NaiveDateTime,
) -> Result<Vec<Answer<StatusAndBody>>, ApiError> {
    service::lock(conn)?;
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        let scope = format!("market-order:{}", job.wallet);
        let placed = idempotency::run(
            conn,
            clock,
            &scope,
            Some(&job.idempotency_key),
            &job.request_hash,
            StatusCode::CREATED,
            |conn| {
                let placed = service::place(conn, job.wallet, &job.order, fee_bps, now)?;
                idempotency::body_of(&view_of(placed.order, Some(&placed.fills)))
            },
        );
        answers.push(match placed {
            Ok(answer) => Ok(answer),
            // A key reused for another order: refused, nothing of it written.
            Err(e) if e.status.is_client_error() => Err(e),
            // A database failure: the batch is written again, one order at a time.
            Err(e) => return Err(e),
        });
    }
    Ok(answers)
}
