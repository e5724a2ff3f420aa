//! The trip claims of a group of provider events (docs/registry.md). Every claim the group names is
//! registered for Tanhui in one statement before any event is decided, inside the group's transaction:
//! the claims it was first to register are the group's to hand out, the others are someone else's. So
//! the question "who holds this trip" is settled by the claims table's key, once, whatever instance or
//! peer asks at the same time. An event that is rejected does not keep its claim, and what the group
//! registered but no event kept is given up before it commits.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::QueryResult;

use super::model::Event;
use crate::db::prepared::Planning;
use crate::db::AnyConnection;
use crate::domain::claim::ClaimId;
use crate::error::{ApiError, ErrorCode};
use crate::registry::store::{self, Holder};

/// Where an event's claim stands for this group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The event names no trip, or the group registered its claim and no earlier event took it.
    Open,
    /// A peer platform registered it first: the event is stored rejected, `already_claimed`.
    Peer,
    /// One of Tanhui's own activities holds it (stored before, or earlier in this group): the event is
    /// the same trip reported again, and is refused without being stored.
    Tanhui,
    /// Held by nobody although the group could not register it: its holder gave it up in between.
    Released,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Registered by this group, not yet taken by an event.
    Free,
    /// Taken by an event of this group.
    Taken,
    /// Held before this group, by this holder.
    Held(Holder),
}

/// The claims of one group and who holds each.
pub struct GroupClaims {
    states: HashMap<String, State>,
}

impl GroupClaims {
    /// Registers the claims `events` name for Tanhui at `now` and reads who holds the ones it could not.
    pub fn register<'e>(
        conn: &mut AnyConnection,
        events: impl Iterator<Item = &'e Event>,
        now: NaiveDateTime,
        planning: Planning,
    ) -> QueryResult<GroupClaims> {
        let named: Vec<(&ClaimId, NaiveDateTime)> = events
            .filter_map(|e| e.claim.as_ref())
            .map(|claim| (claim, now))
            .collect();
        if named.is_empty() {
            return Ok(GroupClaims {
                states: HashMap::new(),
            });
        }
        let registered = store::register(conn, Holder::Tanhui, &named, now)?;
        let others: Vec<&ClaimId> = named
            .iter()
            .map(|(claim, _)| *claim)
            .filter(|claim| !registered.contains(claim.as_str()))
            .collect();
        let held = store::holders(conn, &others, planning)?;
        let mut states: HashMap<String, State> = registered.into_iter().map(|c| (c, State::Free)).collect();
        states.extend(held.into_iter().map(|(c, h)| (c, State::Held(h.holder))));
        Ok(GroupClaims { states })
    }

    /// Where `event`'s claim stands now.
    pub fn standing(&self, event: &Event) -> Standing {
        let Some(claim) = &event.claim else {
            return Standing::Open;
        };
        match self.states.get(claim.as_str()) {
            Some(State::Free) => Standing::Open,
            Some(State::Held(Holder::Peer(_))) => Standing::Peer,
            Some(State::Taken | State::Held(Holder::Tanhui)) => Standing::Tanhui,
            None => Standing::Released,
        }
    }

    /// `event`, decided and not rejected, keeps its claim.
    pub fn take(&mut self, event: &Event) {
        if let Some(state) = event.claim.as_ref().and_then(|c| self.states.get_mut(c.as_str())) {
            if *state == State::Free {
                *state = State::Taken;
            }
        }
    }

    /// Gives up what the group registered and no event kept (rejected events, repeats).
    pub fn release_unused(&self, conn: &mut AnyConnection) -> QueryResult<usize> {
        let unused: Vec<&str> = self
            .states
            .iter()
            .filter(|(_, state)| **state == State::Free)
            .map(|(claim, _)| claim.as_str())
            .collect();
        store::release(conn, &unused)
    }
}

/// The answer to an event whose trip Tanhui holds already: this provider reported it before, under
/// another `client_event_id` (a retry under the same id replays the first answer instead).
pub fn claimed_here() -> ApiError {
    ApiError::conflict(
        ErrorCode::AlreadyClaimed,
        "this trip (trip_ref) was already reported under another client_event_id: it is credited once",
    )
}

/// The answer to an event whose claim changed hands while its group was written: asked again, it sees
/// where the claim stands then.
pub fn claim_moved() -> ApiError {
    ApiError::retry("the claim of this trip changed hands meanwhile; retry")
}
