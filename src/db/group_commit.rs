//! Group commit: concurrent requests share durable transactions.
//!
//! A request hands its work to a queue as one job (a single post is a job of one item, a batch request
//! a job of many) and waits. A writer thread takes whole jobs, up to `max` items (see [`next_batch`]), and
//! writes them in one transaction on its own connection; the answers are sent only after that
//! transaction's COMMIT returned.
//!
//! A writer writes a batch with [`write_batch`]: one function writes any number of items inside a
//! transaction and answers each. An item it refuses writes nothing, so its neighbours carry on; when the
//! function fails as a whole (a database error), the transaction is rolled back and every item is written
//! again by the same function in a transaction of its own, so the failure reaches only the items it
//! belongs to.

use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::r2d2::R2D2Connection;
use tokio::sync::oneshot;

use super::{AnyConnection, Db, Tx};
use crate::error::ApiError;
use crate::metrics::BatchMetrics;

/// An item's answer.
pub type Answer<X> = Result<X, ApiError>;

/// A writer thread's own connection (see [`Db::dedicated`]), opened on first use and opened again after
/// it broke.
pub struct WriterConnection {
    db: Db,
    conn: Option<AnyConnection>,
}

impl WriterConnection {
    pub fn new(db: Db) -> WriterConnection {
        WriterConnection { db, conn: None }
    }

    fn get(&mut self) -> Result<&mut AnyConnection, ApiError> {
        if self.conn.as_mut().is_none_or(|conn| conn.is_broken()) {
            self.conn = Some(self.db.dedicated()?);
        }
        Ok(self.conn.as_mut().expect("connection opened above"))
    }
}

/// Writes `items` in one transaction with `write`; if that fails as a whole, each item alone (see the
/// module notes). `what` names the items in the log.
pub fn write_batch<T, X>(
    writer: &mut WriterConnection,
    what: &str,
    items: &[&T],
    mut write: impl FnMut(&mut AnyConnection, &[&T]) -> Result<Vec<Answer<X>>, ApiError>,
) -> Vec<Answer<X>> {
    let together = writer
        .get()
        .and_then(|conn| super::transaction(conn, Tx::Write, |conn| write(conn, items)));
    let e = match together {
        Ok(answers) => return answers,
        Err(e) => e,
    };
    tracing::warn!(error = %e, items = items.len(), "{what} batch rolled back; writing them one by one");
    // Asked again: a connection that broke meanwhile (the server closed it) is replaced first.
    match writer.get() {
        Ok(conn) => items
            .iter()
            .map(|&item| write_alone(conn, item, &mut write))
            .collect(),
        Err(e) => items
            .iter()
            .map(|_| Err(ApiError::unavailable(e.detail.clone())))
            .collect(),
    }
}

/// Writes one item with `write` in a transaction of its own (a savepoint inside a caller's).
pub fn write_alone<T, X>(
    conn: &mut AnyConnection,
    item: &T,
    write: &mut impl FnMut(&mut AnyConnection, &[&T]) -> Result<Vec<Answer<X>>, ApiError>,
) -> Answer<X> {
    super::transaction(conn, Tx::Write, |conn| write(conn, &[item]))?
        .pop()
        .unwrap_or_else(|| Err(ApiError::unavailable("the writer gave no answer")))
}

/// How a queue gathers its batches.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// How long the writer waits for more work after the first job arrived.
    pub window: Duration,
    /// The most items one transaction holds (a job larger than this is still written whole).
    pub max: usize,
    /// Writer threads, each committing its own batches.
    pub writers: usize,
}

/// Jobs a queue holds, per item a batch may hold, before a request waits for room (the backpressure):
/// several batches' worth, so a writer finishing one finds the next already queued.
const QUEUED_JOBS_PER_BATCH_ITEM: usize = 8;

struct Job<T, A> {
    items: Vec<T>,
    reply: oneshot::Sender<Vec<A>>,
}

pub struct Queue<T, A> {
    sender: SyncSender<Job<T, A>>,
}

impl<T, A> Clone for Queue<T, A> {
    fn clone(&self) -> Self {
        Queue {
            sender: self.sender.clone(),
        }
    }
}

impl<T: Send + 'static, A: Send + 'static> Queue<T, A> {
    /// Starts `batching.writers` threads named `name-N`. Each calls `writer()` once for its own state, then
    /// hands it every batch: the items of whole jobs in arrival order, to be answered in the same order.
    /// The threads stop when the last queue handle is dropped. Each batch's size and the time its write
    /// and commit took go to `metrics`.
    pub fn start<M, W>(name: &str, batching: Batching, metrics: BatchMetrics, writer: M) -> Queue<T, A>
    where
        M: Fn() -> W + Send + Sync + 'static,
        W: FnMut(&[&T]) -> Vec<A>,
    {
        let (sender, receiver) =
            mpsc::sync_channel::<Job<T, A>>(batching.max.max(1) * QUEUED_JOBS_PER_BATCH_ITEM);
        let receiver = Arc::new(Mutex::new(receiver));
        let writer = Arc::new(writer);
        for i in 0..batching.writers.max(1) {
            let (receiver, writer, metrics) = (receiver.clone(), writer.clone(), metrics.clone());
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    let mut write = writer();
                    while let Some(batch) = next_batch(&receiver, batching.window, batching.max) {
                        answer(batch, &mut write, &metrics);
                    }
                })
                .expect("spawn a group-commit writer");
        }
        Queue { sender }
    }

    /// Queues items as one job and waits for their answers, in order.
    pub async fn submit_all(&self, items: Vec<T>) -> Result<Vec<A>, ApiError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        let stopped = || ApiError::unavailable("the writer has stopped");
        match self.sender.try_send(Job { items, reply }) {
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
            .map_err(|_| ApiError::unavailable("the writer stopped before answering"))
    }

    /// Queues one item and waits for its answer.
    pub async fn submit(&self, item: T) -> Result<A, ApiError> {
        self.submit_all(vec![item])
            .await?
            .pop()
            .ok_or_else(|| ApiError::unavailable("the writer gave no answer"))
    }
}

/// Takes the next batch. Work already queued (it arrived while the writer was busy with the previous
/// batch) is taken at once, up to `max` items: waiting would leave the one writer idle while requests
/// queue. Only a writer that was idle (it had to wait for the first job) gathers more for at most
/// `window`, so that requests arriving close together share a commit.
fn next_batch<T, A>(
    receiver: &Mutex<Receiver<Job<T, A>>>,
    window: Duration,
    max: usize,
) -> Option<Vec<Job<T, A>>> {
    let receiver = receiver.lock().unwrap_or_else(|p| p.into_inner());
    let (first, was_idle) = match receiver.try_recv() {
        Ok(job) => (job, false),
        Err(TryRecvError::Empty) => (receiver.recv().ok()?, true),
        Err(TryRecvError::Disconnected) => return None,
    };
    let mut items = first.items.len();
    let mut batch = vec![first];
    let deadline = Instant::now() + window;
    while items < max {
        let next = match receiver.try_recv() {
            Ok(job) => Some(job),
            Err(TryRecvError::Empty) if was_idle => {
                let left = deadline.saturating_duration_since(Instant::now());
                receiver.recv_timeout(left).ok()
            }
            Err(_) => None,
        };
        let Some(job) = next else { break };
        items += job.items.len();
        batch.push(job);
    }
    Some(batch)
}

/// Writes one batch and sends each job its share of the answers.
fn answer<T, A>(batch: Vec<Job<T, A>>, write: &mut impl FnMut(&[&T]) -> Vec<A>, metrics: &BatchMetrics) {
    let items: Vec<&T> = batch.iter().flat_map(|job| job.items.iter()).collect();
    let expected = items.len();
    let started = Instant::now();
    let mut answers = write(&items).into_iter();
    metrics.observe(expected, started.elapsed());
    debug_assert_eq!(answers.len(), expected, "one answer per item");
    for job in batch {
        let mine: Vec<A> = answers.by_ref().take(job.items.len()).collect();
        // The requester may have gone away (client disconnected); the writes stand either way. A short
        // answer list makes `submit` report that the writer gave no answer.
        let _ = job.reply.send(mine);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn jobs_get_their_own_answers_in_order() {
        let batching = Batching {
            window: Duration::from_millis(20),
            max: 100,
            writers: 1,
        };
        let queue: Queue<u32, u32> = Queue::start("test-writer", batching, BatchMetrics::detached(), || {
            |items: &[&u32]| items.iter().map(|&&n| n * 10).collect()
        });
        let (a, b, c) = tokio::join!(
            queue.submit_all(vec![1, 2, 3]),
            queue.submit(4),
            queue.submit_all(vec![5, 6])
        );
        assert_eq!(a.unwrap(), vec![10, 20, 30]);
        assert_eq!(b.unwrap(), 40);
        assert_eq!(c.unwrap(), vec![50, 60]);
        assert!(queue.submit_all(Vec::new()).await.unwrap().is_empty());
    }

    /// A group that fails as a whole is written again one item at a time: the item that failed it gets
    /// its error, its neighbours their answers, and nothing of the failed attempt stays.
    #[test]
    fn one_failing_item_fails_only_itself() {
        use diesel::connection::SimpleConnection;
        use diesel::prelude::*;
        use diesel::sql_types::BigInt;

        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::connect(
            super::super::ConnectOptions::sqlite_in(&dir),
            1,
            Duration::from_secs(5),
        )
        .expect("db");
        db.get()
            .unwrap()
            .batch_execute("CREATE TABLE written (n BIGINT NOT NULL)")
            .unwrap();
        let mut writer = WriterConnection::new(db.clone());
        let items = [1_i64, 2, 13, 4];
        let item_refs: Vec<&i64> = items.iter().collect();
        let mut calls = Vec::new();
        let answers = write_batch(&mut writer, "test", &item_refs, |conn, items| {
            calls.push(items.len());
            let mut answers = Vec::new();
            for &&n in items {
                diesel::sql_query("INSERT INTO written (n) VALUES ($1)")
                    .bind::<BigInt, _>(n)
                    .execute(conn)?;
                if n == 13 {
                    // As a database error would: the whole call fails, whatever it wrote before.
                    return Err(ApiError::unavailable("thirteen"));
                }
                answers.push(Ok(n * 10));
            }
            Ok(answers)
        });
        assert_eq!(calls, vec![4, 1, 1, 1, 1], "the group, then each item alone");
        let answers: Vec<Result<i64, String>> = answers
            .into_iter()
            .map(|a| a.map_err(|e| e.detail.clone()))
            .collect();
        assert_eq!(answers, vec![Ok(10), Ok(20), Err("thirteen".to_string()), Ok(40)]);
        #[derive(QueryableByName)]
        struct Written {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let stored: Vec<i64> = diesel::sql_query("SELECT n FROM written ORDER BY n")
            .load::<Written>(&mut db.get().unwrap())
            .unwrap()
            .into_iter()
            .map(|w| w.n)
            .collect();
        assert_eq!(
            stored,
            vec![1, 2, 4],
            "each once; nothing of 13 or of the failed group"
        );
    }

    fn job(items: Vec<u32>) -> Job<u32, u32> {
        Job {
            items,
            reply: oneshot::channel().0,
        }
    }

    #[test]
    fn queued_work_is_taken_at_once_up_to_max() {
        let (sender, receiver) = mpsc::sync_channel(8);
        for items in [vec![1, 2], vec![3], vec![4, 5, 6], vec![7]] {
            sender.send(job(items)).unwrap();
        }
        let receiver = Mutex::new(receiver);
        // A writer coming back from a commit must not sit out the window while work is queued: with a
        // window this long, waiting would show.
        let window = Duration::from_secs(30);
        let started = Instant::now();
        let first = next_batch(&receiver, window, 4).unwrap();
        let sizes: Vec<usize> = first.iter().map(|j| j.items.len()).collect();
        assert_eq!(sizes, vec![2, 1, 3], "whole jobs until max is reached");
        let second = next_batch(&receiver, window, 4).unwrap();
        assert_eq!(second.len(), 1);
        assert!(
            started.elapsed() < window / 2,
            "waited for the window with work queued"
        );
        drop(sender);
        assert!(
            next_batch(&receiver, window, 4).is_none(),
            "stops when every sender is gone"
        );
    }
}
