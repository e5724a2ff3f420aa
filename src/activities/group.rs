//! The events of one group commit, written together with a fixed number of statements, whatever their
//! count (a statement holds at most 32 rows):
//!
//! 1. one read of the stored activities of their `client_event_id`s (replays, answered from the row);
//! 2. one read of every live activity their intervals can overlap;
//! 3. the trip claims the new events name, registered for Tanhui in one insert-or-nothing, and one read of
//!    who holds those it could not register (`claims`);
//! 4. per event, in account order: the verdict (a trip another platform claimed first is rejected; one
//!    Tanhui holds is refused; else against the stored neighbours and the group's earlier events) and
//!    the daily and annual cap grants, taken in memory from the counters read once (the accounts are
//!    locked first, see `caps`) and written back in one upsert; the claims no event kept, given up;
//! 5. ids for the new activities, then their issue transfers (`ledger::batch`: one insert of transfers,
//!    one of their sealing-queue rows, one update of the wallets) and one insert of the activities, each
//!    with its transfer;
//! 6. the statistics' rollups of what was granted (`stats::rollup`), one statement per table.
//!
//! An event whose `client_event_id` came earlier in the group is written after the rest, alone, so it
//! finds the stored one and replays it. A database failure fails the whole group (the writer then writes
//! each event alone, `db::group_commit`). One event alone is a group of one: there is no second path.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;

use super::caps::Book;
use super::claims::{claim_moved, claimed_here, GroupClaims, Standing};
use super::ingest::{
    self, cap_book, decide, insert_activities, needs_neighbours, Context, Decided, WriteError,
};
use super::model::{Answer, Event, EventKey, Neighbour, Outcome, Reason, Status};
use super::{rules, store};
use crate::db::group_commit::write_alone;
use crate::db::prepared::Planning;
use crate::db::{self, AnyConnection, Ids};
use crate::domain::catalog::Catalog;
use crate::error::ApiError;
use crate::ledger::batch::{self, Order};
use crate::ledger::lots::Origin;
use crate::ledger::service::{Cause, Kind};
use crate::ledger::store::AccountRow;
use crate::stats::rollup;
use diesel::QueryResult;

/// Ingests `events` (sorted by account) inside the caller's transaction; one answer per event, in order.
pub fn ingest_group(
    conn: &mut AnyConnection,
    cx: &mut Context<'_>,
    events: &[&Event],
) -> Result<Vec<Answer>, ApiError> {
    let keys: Vec<EventKey<'_>> = events.iter().map(|e| e.key()).collect();
    // Every account's row lock first (ascending, like every other writer), so that the cap counters
    // read below stay as read until this transaction writes them (see `caps`).
    let owners: Vec<i64> = keys.iter().map(|k| k.0).collect();
    let mut accounts = batch::lock_accounts(conn, &owners)?;
    let stored = store::stored_answers(conn, &keys, cx.planning)?;
    let new_events = events
        .iter()
        .zip(&keys)
        .filter(|(_, key)| !stored.contains_key(&(key.0, key.1, key.2.to_string())))
        .map(|(event, _)| *event);
    let claims = GroupClaims::register(conn, new_events, cx.now, cx.planning)?;
    let mut read = Read {
        stored,
        neighbours: neighbours_of(conn, cx.catalog, events, cx.planning)?,
        book: book_of(conn, cx, events)?,
        claims,
    };
    let (mut answers, decided) = decide_in_order(conn, cx, events, &keys, &mut read)?;
    read.book.write(conn)?;
    read.claims.release_unused(conn)?;
    write_decided(conn, cx, events, &mut accounts, &decided, &mut answers)?;
    // Repeats now find their first event stored, and replay it (or conflict with it).
    Ok(answers
        .into_iter()
        .zip(events)
        .map(|(answer, event)| answer.unwrap_or_else(|| ingest_alone(conn, cx, event)))
        .collect())
}

/// What a group reads once, before deciding its events.
struct Read {
    /// The stored answers of the group's event keys (replays).
    stored: store::StoredAnswers,
    /// The live activities the group's events can overlap; each decided event is added for the next.
    neighbours: Vec<Neighbour>,
    /// The cap counters the group's credits can draw on.
    book: Book,
    /// The trip claims the group's new events name, and who holds each.
    claims: GroupClaims,
}

/// The cap counters of the group's quantified events.
fn book_of(conn: &mut AnyConnection, cx: &Context<'_>, events: &[&Event]) -> QueryResult<Book> {
    let claims: Vec<(i64, &str, NaiveDateTime)> = events
        .iter()
        .filter(|e| e.quantified.is_some())
        .map(|e| (e.poster.account_id, e.activity_type.as_str(), e.occurred_at))
        .collect();
    cap_book(conn, cx.settings, &claims, cx.planning)
}

/// The answers a group knows after deciding (`None`: to be filled in), and its decided events by index.
type Decisions = (Vec<Option<Answer>>, Vec<(usize, Decided)>);

/// Decides each event in order, each seeing the ones before it. Returns the answers known so far (a
/// replay's; `None` for an event decided here, or a repeat of an earlier event of the group) and the
/// decided events with their index.
fn decide_in_order(
    conn: &mut AnyConnection,
    cx: &mut Context<'_>,
    events: &[&Event],
    keys: &[EventKey<'_>],
    read: &mut Read,
) -> Result<Decisions, WriteError> {
    let mut seen = HashSet::new();
    let mut answers: Vec<Option<Answer>> = Vec::with_capacity(events.len());
    let mut decided: Vec<(usize, Decided)> = Vec::new();
    for (i, (event, key)) in events.iter().zip(keys).enumerate() {
        if let Some(stored) = read.stored.get(&(key.0, key.1, key.2.to_string())) {
            answers.push(Some(
                ingest::replay(stored.clone(), &event.request_hash).map_err(ApiError::from),
            ));
            continue;
        }
        answers.push(None);
        if !seen.insert(*key) {
            continue;
        }
        let verdict = match read.claims.standing(event) {
            Standing::Open => {
                let overlapping: Vec<&Neighbour> = read
                    .neighbours
                    .iter()
                    .filter(|n| n.overlaps(event.poster.account_id, event.interval))
                    .collect();
                decide(conn, cx, event, &overlapping, &mut read.book)?
            }
            Standing::Peer => Decided::refused(Status::Rejected, vec![Reason::AlreadyClaimed]),
            Standing::Tanhui => {
                answers[i] = Some(Err(claimed_here()));
                continue;
            }
            Standing::Released => {
                answers[i] = Some(Err(claim_moved()));
                continue;
            }
        };
        if verdict.status != Status::Rejected {
            read.claims.take(event);
        }
        read.neighbours.push(verdict.as_neighbour(event));
        decided.push((i, verdict));
    }
    Ok((answers, decided))
}

/// Gives the decided events ids, issues their points and inserts their rows; fills in their answers.
fn write_decided(
    conn: &mut AnyConnection,
    cx: &mut Context<'_>,
    events: &[&Event],
    accounts: &mut HashMap<i64, AccountRow>,
    decided: &[(usize, Decided)],
    answers: &mut [Option<Answer>],
) -> Result<(), WriteError> {
    let ids = db::reserve_ids(conn, Ids::Activities, decided.len())?;
    let transfers = issue(conn, accounts, cx, events, decided, &ids)?;
    for ((i, verdict), &id) in decided.iter().zip(&ids) {
        answers[*i] = Some(Ok(Outcome::Created(verdict.result(id, events[*i]))));
    }
    let rows: Vec<_> = decided
        .iter()
        .zip(&ids)
        .zip(&transfers)
        .map(|(((i, verdict), &id), &transfer)| verdict.row(events[*i], id, transfer, cx.now))
        .collect();
    insert_activities(conn, &rows)?;
    let counted: Vec<_> = decided
        .iter()
        .filter_map(|(i, verdict)| verdict.counted(events[*i]))
        .collect();
    rollup::record(conn, &counted)?;
    Ok(())
}

/// Ingests one event in a transaction of its own (a savepoint inside a caller's).
pub fn ingest_alone(conn: &mut AnyConnection, cx: &mut Context<'_>, event: &Event) -> Answer {
    write_alone(conn, event, &mut |conn, events| ingest_group(conn, cx, events))
}

/// Every stored live activity the group's travel events can overlap, in one query.
fn neighbours_of(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    events: &[&Event],
    planning: Planning,
) -> QueryResult<Vec<Neighbour>> {
    let travel: Vec<&Event> = events
        .iter()
        .copied()
        .filter(|e| needs_neighbours(catalog, e))
        .collect();
    let (Some(from), Some(to)) = (
        travel.iter().map(|e| e.interval.0).min(),
        travel.iter().map(|e| e.interval.1).max(),
    ) else {
        return Ok(Vec::new());
    };
    let mut accounts: Vec<i64> = travel.iter().map(|e| e.poster.account_id).collect();
    accounts.dedup();
    // No activity lasts longer than `longest`, so none that started earlier can reach `from`.
    store::neighbours_between(conn, &accounts, (from - rules::longest(), to), planning)
}

/// Issues the points of the decided events that earned any; returns each one's transfer id.
fn issue(
    conn: &mut AnyConnection,
    accounts: &mut HashMap<i64, AccountRow>,
    cx: &Context<'_>,
    events: &[&Event],
    decided: &[(usize, Decided)],
    ids: &[i64],
) -> Result<Vec<Option<i64>>, WriteError> {
    let issuance = &*cx.issuance;
    let causes: Vec<Cause> = ids.iter().map(|id| Cause::of("activity", id)).collect();
    let issuing: Vec<usize> = (0..decided.len())
        .filter(|&d| decided[d].1.issuance_account.is_some())
        .collect();
    let origins: Vec<Origin<'_>> = issuing
        .iter()
        .map(|&d| {
            let (i, verdict) = &decided[d];
            verdict.lot_origin(cx.catalog, events[*i], cx.now)
        })
        .collect();
    let orders: Vec<Order<'_>> = issuing
        .iter()
        .zip(&origins)
        .map(|(&d, origin)| {
            let (i, verdict) = &decided[d];
            Order {
                kind: Kind::Issue,
                debit: verdict.issuance_account.unwrap_or_default(),
                credit: events[*i].poster.account_id,
                amount: verdict.points,
                cause: &causes[d],
                lot: Some(origin),
            }
        })
        .collect();
    let mut transfers = vec![None; decided.len()];
    if orders.is_empty() {
        return Ok(transfers);
    }
    // The wallets are locked already. The sources are issuance accounts: derived, never locked, and their
    // rows never change, so the ones the verdicts read when they looked up their ids serve.
    for source in orders.iter().map(|o| o.debit) {
        if let Some(row) = issuance.row(source) {
            accounts.entry(source).or_insert_with(|| row.clone());
        }
    }
    let posted = batch::post(conn, accounts, &orders, cx.now)?;
    for (d, posted) in issuing.into_iter().zip(posted) {
        // Only a wallet that vanished could refuse an issue: nothing of the group may then stand.
        transfers[d] = Some(posted?.transfer.id);
    }
    Ok(transfers)
}
