//! The claims table. A claim's key is the claim itself, so it has exactly one owner: whoever inserts it
//! first, on any instance, decides; everyone else's insert does nothing (`ON CONFLICT DO NOTHING`), and
//! learns who holds it by reading it back. Every statement takes a whole set of claims.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};

use crate::db::columns::columns;
use crate::db::prepared::{insert_new_rows_returning, matching, Planning};
use crate::db::schema::claims;
use crate::db::AnyConnection;
use crate::domain::claim::ClaimId;

/// Who holds a claim: Tanhui itself (one of its activities), or a peer platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    Tanhui,
    Peer(i64),
}

impl Holder {
    /// As stored: a peer's id, or NULL for Tanhui.
    fn peer_id(self) -> Option<i64> {
        match self {
            Holder::Tanhui => None,
            Holder::Peer(id) => Some(id),
        }
    }

    fn stored(peer_id: Option<i64>) -> Holder {
        peer_id.map_or(Holder::Tanhui, Holder::Peer)
    }
}

/// A claim someone holds, and since when its holder says it claimed the trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub holder: Holder,
    pub claimed_at: NaiveDateTime,
}

struct NewClaim<'a> {
    claim_id: &'a str,
    peer_id: Option<i64>,
    claimed_at: NaiveDateTime,
    registered_at: NaiveDateTime,
}

columns! {
    /// A claim as registered.
    claims for NewClaim<'_>, |row| {
        claim_id: row.claim_id,
        peer_id: row.peer_id,
        claimed_at: row.claimed_at,
        registered_at: row.registered_at,
    }
}

/// A claim as looked up: its key alone.
struct ClaimKey<'a>(&'a str);

columns! {
    claims for ClaimKey<'_>, |key| {
        claim_id: key.0,
    }
}

/// Registers each of `claims` (claim, when its holder claimed it) for `holder`, at `now`, where nobody
/// holds it yet, inside the caller's transaction. Returns the claims this call registered: the others
/// were held already (by anyone, `holder` included). A claim named twice is registered once.
pub fn register(
    conn: &mut AnyConnection,
    holder: Holder,
    claims: &[(&ClaimId, NaiveDateTime)],
    now: NaiveDateTime,
) -> QueryResult<HashSet<String>> {
    let mut rows: Vec<NewClaim<'_>> = claims
        .iter()
        .map(|(claim, claimed_at)| NewClaim {
            claim_id: claim.as_str(),
            peer_id: holder.peer_id(),
            claimed_at: *claimed_at,
            registered_at: now,
        })
        .collect();
    // In key order: two transactions registering overlapping sets then wait for each other's rows in
    // the same order, and cannot deadlock (PostgreSQL; SQLite has one writer). A stable sort: of a claim
    // named twice, the first naming's time is kept.
    rows.sort_by(|a, b| a.claim_id.cmp(b.claim_id));
    rows.dedup_by(|a, b| a.claim_id == b.claim_id);
    if rows.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(
        insert_new_rows_returning(conn, claims::table, &rows, claims::claim_id)?
            .into_iter()
            .collect(),
    )
}

/// Who holds each of `claims` that anyone holds, in one statement on PostgreSQL (the keys as one array),
/// in statements of 32 keys on SQLite (each an index lookup).
pub fn holders(
    conn: &mut AnyConnection,
    claims: &[&ClaimId],
    planning: Planning,
) -> QueryResult<HashMap<String, Held>> {
    let keys: Vec<ClaimKey<'_>> = claims.iter().map(|c| ClaimKey(c.as_str())).collect();
    let mut held = HashMap::with_capacity(keys.len());
    for query in matching::<(Text, Nullable<BigInt>, Timestamp), _, _>(
        conn,
        claims::table,
        "SELECT claim_id, peer_id, claimed_at FROM claims",
        &keys,
        planning,
    ) {
        for (claim, peer_id, claimed_at) in query.load_rows::<(String, Option<i64>, NaiveDateTime)>(conn)? {
            let holder = Holder::stored(peer_id);
            held.insert(claim, Held { holder, claimed_at });
        }
    }
    Ok(held)
}

/// Gives up claims Tanhui holds (an activity that registered one was rejected, by its rules or on
/// review): another platform, or a corrected report of the same trip, may claim it then. A claim a peer
/// holds is left alone.
pub fn release(conn: &mut AnyConnection, claims: &[&str]) -> QueryResult<usize> {
    if claims.is_empty() {
        return Ok(0);
    }
    diesel::delete(
        claims::table
            .filter(claims::claim_id.eq_any(claims))
            .filter(claims::peer_id.is_null()),
    )
    .execute(conn)
}
