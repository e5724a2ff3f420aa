//! The ingest writer: validated events are written by group commit (`db::group_commit`). A single post is
//! a job of one event, a batch request a job of up to 500. A writer sorts its batch by account (the lock
//! order) and ingests the events one after another in one transaction. An event that is refused leaves
//! nothing written and its neighbours carry on; an event that fails after writing, or a failed commit,
//! rolls the transaction back, and the batch is retried one event per transaction.

use std::sync::Arc;
use std::time::Duration;

use super::group::ingest_group;
use super::ingest::Context;
use super::model::{Answer, Event, Outcome};
use crate::clock::Clock;
use crate::config::ActivitySettings;
use crate::db::group_commit::{self, Batching, Queue, WriterConnection};
use crate::db::prepared::Planning;
use crate::db::Db;
use crate::domain::catalog::Catalog;
use crate::error::ApiError;
use crate::ledger::service::IssuanceAccounts;
use crate::methodology::cache::CatalogCache;
use crate::metrics::Metrics;

type Answers = Vec<Answer>;

/// The queue of events waiting for the next group commit.
pub type IngestQueue = Queue<Event, Answer>;

/// Starts `settings.writers` ingest writers; they stop when the last queue handle is dropped. The rows
/// they write are stamped with `clock`'s time, and judged by the activity types of `catalog` as it is then.
/// What each commit recorded goes to `metrics` once it is durable.
pub fn start(
    db: Db,
    settings: ActivitySettings,
    clock: Clock,
    catalog: Arc<CatalogCache>,
    metrics: Arc<Metrics>,
) -> IngestQueue {
    let batching = Batching {
        window: Duration::from_millis(settings.batch_window_ms),
        max: settings.batch_max,
        writers: settings.writers,
    };
    Queue::start("ingest-writer", batching, metrics.ingest.clone(), move || {
        let (mut conn, settings, clock, catalog, metrics) = (
            WriterConnection::new(db.clone()),
            settings.clone(),
            clock.clone(),
            catalog.clone(),
            metrics.clone(),
        );
        let mut issuance = IssuanceAccounts::default();
        move |events: &[&Event]| {
            let catalog = catalog.get();
            let mut writing = Writing {
                settings: &settings,
                catalog: &catalog,
                issuance: &mut issuance,
                clock: &clock,
            };
            let answers = write_in_account_order(&mut conn, &mut writing, events);
            for answer in &answers {
                // A replay was counted when it was first written.
                if let Ok(Outcome::Created(result)) = answer {
                    metrics.activity_recorded(result.status.as_str(), result.points);
                }
            }
            answers
        }
    })
}

/// What a writer keeps between its batches.
struct Writing<'a> {
    settings: &'a ActivitySettings,
    catalog: &'a Catalog,
    /// The issuance accounts looked up so far (their rows never change).
    issuance: &'a mut IssuanceAccounts,
    clock: &'a Clock,
}

/// Every wallet and cap row is locked in ascending account order, so writers on several instances
/// cannot deadlock each other: the events are written sorted by account and answered in their order.
fn write_in_account_order(
    conn: &mut WriterConnection,
    writing: &mut Writing<'_>,
    events: &[&Event],
) -> Answers {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| events[i].poster.account_id);
    let sorted: Vec<&Event> = order.iter().map(|&i| events[i]).collect();
    let mut answers: Vec<Option<Answer>> = (0..events.len()).map(|_| None).collect();
    for (i, result) in order.into_iter().zip(write_batch(conn, writing, &sorted)) {
        answers[i] = Some(result);
    }
    answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(ApiError::unavailable("no answer for this event"))))
        .collect()
}

fn write_batch(conn: &mut WriterConnection, writing: &mut Writing<'_>, events: &[&Event]) -> Answers {
    group_commit::write_batch(conn, "ingest", events, |conn, events| {
        let mut cx = Context {
            settings: writing.settings,
            catalog: writing.catalog,
            issuance: &mut *writing.issuance,
            now: writing.clock.now_naive(),
            planning: Planning::Cached,
        };
        ingest_group(conn, &mut cx, events)
    })
}
