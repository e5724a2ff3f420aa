//! Group commit: concurrent posts share durable transactions.
//!
//! Requests hand their validated events to a queue as one job (a single post is a job of one event, a
//! batch request a job of up to 500) and wait. A writer thread takes what arrived within a short window
//! (up to `batch_max` events, whole jobs only), sorts the events by account (the lock order), and ingests
//! them one after another in one transaction. Answers are sent only after COMMIT returns. An event that is
//! refused leaves nothing written and its neighbours carry on; an event that fails after writing, or a
//! failed commit, rolls the transaction back, and the batch is retried one event per transaction.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::ingest::{ingest, ingest_alone, Context, Outcome};
use super::request::Event;
use crate::config::ActivitySettings;
use crate::db::{self, Db, Tx};
use crate::error::ApiError;
use crate::ledger::service::IssuanceAccounts;
use crate::ledger::store::now;

type Answers = Vec<Result<Outcome, ApiError>>;

struct Job {
    events: Vec<Event>,
    reply: oneshot::Sender<Answers>,
}

#[derive(Clone)]
pub struct IngestQueue {
    sender: SyncSender<Job>,
}

impl IngestQueue {
    /// Starts `settings.writers` writer threads; they stop when the last queue handle is dropped.
    pub fn start(db: Db, settings: ActivitySettings) -> IngestQueue {
        let (sender, receiver) = mpsc::sync_channel::<Job>(settings.batch_max * 8);
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..settings.writers {
            let (db, settings, receiver) = (db.clone(), settings.clone(), receiver.clone());
            std::thread::Builder::new()
                .name(format!("ingest-writer-{i}"))
                .spawn(move || writer_loop(&db, &settings, &receiver))
                .expect("spawn ingest writer");
        }
        IngestQueue { sender }
    }

    /// Queues one event and waits until the transaction holding it has committed (or failed).
    pub async fn submit(&self, event: Event) -> Result<Outcome, ApiError> {
        self.submit_all(vec![event])
            .await?
            .pop()
            .unwrap_or_else(|| Err(ApiError::unavailable("the ingest writer gave no answer")))
    }

    /// Queues events as one job and waits for their answers, in order.
    pub async fn submit_all(&self, events: Vec<Event>) -> Result<Answers, ApiError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        let stopped = || ApiError::unavailable("the ingest writer has stopped");
        match self.sender.try_send(Job { events, reply }) {
            Ok(()) => {}
            Err(TrySendError::Disconnected(_)) => return Err(stopped()),
            // A full queue is the backpressure: wait for room off the async workers.
            Err(TrySendError::Full(job)) => {
                let sender = self.sender.clone();
                actix_web::web::block(move || sender.send(job).map_err(|_| ()))
                    .await
                    .map_err(ApiError::internal)?
                    .map_err(|_| stopped())?;
            }
        }
        answer
            .await
            .map_err(|_| ApiError::unavailable("the ingest writer stopped before answering"))
    }
}

/// Takes the next batch: blocks for the first job, then gathers more for at most `window`, until the
/// batch holds `max` events.
fn next_batch(receiver: &Mutex<Receiver<Job>>, window: Duration, max: usize) -> Option<Vec<Job>> {
    let receiver = receiver.lock().unwrap_or_else(|p| p.into_inner());
    let first = receiver.recv().ok()?;
    let mut events = first.events.len();
    let mut batch = vec![first];
    let deadline = Instant::now() + window;
    while events < max {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(job) => {
                events += job.events.len();
                batch.push(job);
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    Some(batch)
}

fn writer_loop(db: &Db, settings: &ActivitySettings, receiver: &Mutex<Receiver<Job>>) {
    let window = Duration::from_millis(settings.batch_window_ms);
    let mut issuance = IssuanceAccounts::default();
    while let Some(batch) = next_batch(receiver, window, settings.batch_max) {
        // (job, event) positions in account order: every wallet and cap row is locked in ascending
        // account order, so writers on several instances cannot deadlock each other.
        let mut order: Vec<(usize, usize)> = batch
            .iter()
            .enumerate()
            .flat_map(|(j, job)| (0..job.events.len()).map(move |e| (j, e)))
            .collect();
        order.sort_by_key(|&(j, e)| batch[j].events[e].poster.account_id);
        let events: Vec<&Event> = order.iter().map(|&(j, e)| &batch[j].events[e]).collect();
        let results = write_batch(db, settings, &mut issuance, &events);
        let mut answers: Vec<Vec<Option<Result<Outcome, ApiError>>>> = batch
            .iter()
            .map(|job| (0..job.events.len()).map(|_| None).collect())
            .collect();
        for (&(j, e), result) in order.iter().zip(results) {
            answers[j][e] = Some(result);
        }
        for (job, answers) in batch.into_iter().zip(answers) {
            let answers = answers
                .into_iter()
                .map(|a| a.unwrap_or_else(|| Err(ApiError::unavailable("no answer for this event"))))
                .collect();
            // The requester may have gone away (client disconnected); the writes stand either way.
            let _ = job.reply.send(answers);
        }
    }
}

fn write_batch(
    db: &Db,
    settings: &ActivitySettings,
    issuance: &mut IssuanceAccounts,
    events: &[&Event],
) -> Answers {
    let mut conn = match db.get() {
        Ok(conn) => conn,
        Err(e) => {
            return events
                .iter()
                .map(|_| Err(ApiError::unavailable(e.detail.clone())))
                .collect()
        }
    };
    let mut cx = Context {
        settings,
        issuance,
        now: now(),
    };
    let together = db::transaction(&mut conn, Tx::Write, |conn| {
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            match ingest(conn, &mut cx, event) {
                Ok(outcome) => results.push(Ok(outcome)),
                Err(failure) if !failure.abandon => results.push(Err(failure.error)),
                Err(failure) => return Err(failure),
            }
        }
        Ok(results)
    });
    match together {
        Ok(results) => results,
        Err(failure) => {
            tracing::warn!(error = %failure.error, events = events.len(), "batch rolled back; retrying one event per transaction");
            events
                .iter()
                .map(|event| {
                    cx.now = now();
                    ingest_alone(&mut conn, &mut cx, event)
                })
                .collect()
        }
    }
}
