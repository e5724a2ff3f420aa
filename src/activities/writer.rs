//! Group commit: concurrent single-event posts share durable transactions.
//!
//! Requests hand their validated event to a queue and wait. A writer thread takes what arrived within a
//! short window (up to `batch_max`), sorts it by account (the lock order), and runs each event in its own
//! savepoint inside one transaction, so a failing event rolls back alone. Answers are sent only after
//! COMMIT returns. If the commit itself fails, the batch is retried one event per transaction.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::ingest::{ingest_event, Outcome};
use super::request::Event;
use crate::config::ActivitySettings;
use crate::db::{self, Db, Tx};
use crate::error::ApiError;
use crate::ledger::store::now;
use crate::methodology::cache::CatalogCache;

type Reply = oneshot::Sender<Result<Outcome, ApiError>>;

struct Job {
    event: Event,
    reply: Reply,
}

#[derive(Clone)]
pub struct IngestQueue {
    sender: SyncSender<Job>,
}

impl IngestQueue {
    /// Starts `settings.writers` writer threads; they stop when the last queue handle is dropped.
    pub fn start(db: Db, catalog: Arc<CatalogCache>, settings: ActivitySettings) -> IngestQueue {
        let (sender, receiver) = mpsc::sync_channel::<Job>(settings.batch_max * 8);
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..settings.writers {
            let (db, catalog, settings, receiver) =
                (db.clone(), catalog.clone(), settings.clone(), receiver.clone());
            std::thread::Builder::new()
                .name(format!("ingest-writer-{i}"))
                .spawn(move || writer_loop(&db, &catalog, &settings, &receiver))
                .expect("spawn ingest writer");
        }
        IngestQueue { sender }
    }

    /// Queues an event and waits until the transaction holding it has committed (or failed).
    pub async fn submit(&self, event: Event) -> Result<Outcome, ApiError> {
        let (reply, answer) = oneshot::channel();
        let sender = self.sender.clone();
        actix_web::web::block(move || sender.send(Job { event, reply }).map_err(|_| ()))
            .await
            .map_err(ApiError::internal)?
            .map_err(|_| ApiError::unavailable("the ingest writer has stopped"))?;
        answer
            .await
            .map_err(|_| ApiError::unavailable("the ingest writer stopped before answering"))?
    }
}

/// Takes the next batch: blocks for the first job, then gathers more for at most `window`.
fn next_batch(receiver: &Mutex<Receiver<Job>>, window: Duration, max: usize) -> Option<Vec<Job>> {
    let receiver = receiver.lock().unwrap_or_else(|p| p.into_inner());
    let first = receiver.recv().ok()?;
    let mut batch = vec![first];
    let deadline = Instant::now() + window;
    while batch.len() < max {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(job) => batch.push(job),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    Some(batch)
}

fn writer_loop(
    db: &Db,
    catalog: &CatalogCache,
    settings: &ActivitySettings,
    receiver: &Mutex<Receiver<Job>>,
) {
    let window = Duration::from_millis(settings.batch_window_ms);
    while let Some(mut batch) = next_batch(receiver, window, settings.batch_max) {
        batch.sort_by_key(|job| job.event.poster.account_id);
        let (events, replies): (Vec<Event>, Vec<Reply>) =
            batch.into_iter().map(|j| (j.event, j.reply)).unzip();
        let results = write_batch(db, catalog, settings, &events);
        for (reply, result) in replies.into_iter().zip(results) {
            // The requester may have gone away (client disconnected); the write stands either way.
            let _ = reply.send(result);
        }
    }
}

fn write_batch(
    db: &Db,
    catalog: &CatalogCache,
    settings: &ActivitySettings,
    events: &[Event],
) -> Vec<Result<Outcome, ApiError>> {
    let catalog = catalog.get();
    let mut conn = match db.get() {
        Ok(conn) => conn,
        Err(e) => {
            return events
                .iter()
                .map(|_| Err(ApiError::unavailable(e.detail.clone())))
                .collect()
        }
    };
    let at = now();
    let together = db::transaction(&mut conn, Tx::Write, |conn| {
        Ok::<_, ApiError>(
            events
                .iter()
                .map(|e| ingest_event(conn, &catalog, settings, e, at))
                .collect::<Vec<_>>(),
        )
    });
    match together {
        Ok(results) => results,
        Err(e) => {
            tracing::warn!(error = %e, events = events.len(), "batch commit failed; retrying one event per transaction");
            events
                .iter()
                .map(|event| {
                    db::transaction(&mut conn, Tx::Write, |conn| {
                        ingest_event(conn, &catalog, settings, event, now())
                    })
                })
                .collect()
        }
    }
}
