//! The rules and transactions of redemptions.
//!
//! Lock order, the same in every flow so none can deadlock another: the redemption row (resolutions
//! only), then the per-user counter, then the wallet (through the ledger), then the offer's stock bucket.
//! Stock comes last because every redemption of a popular offer takes some: taken just before commit, a
//! bucket is locked for a statement or two and the commit instead of the whole transaction.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::error::RedemptionError;
use super::store::{self, NewRedemption, RedemptionRow, RedemptionStatus};
use super::REF_TYPE;
use crate::db::schema::redemptions;
use crate::db::{self, AnyConnection, Tx};
use crate::domain::catalog::Catalog;
use crate::ledger::service::{self as ledger, Cause, LedgerError};
use crate::offers::stock;
use crate::offers::store as offers;
use crate::partners;

/// Who asks for a redemption.
pub struct Redeemer {
    pub user_id: i64,
    pub account_id: i64,
    pub region_code: String,
}

/// Places a redemption of `offer_id` inside the caller's transaction: takes one of the user's limit,
/// holds the points until `now + hold_ttl`, and takes a unit of stock. Any refusal rolls all of it back.
pub fn redeem(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    who: &Redeemer,
    offer_id: i64,
    hold_ttl: Duration,
    now: NaiveDateTime,
) -> Result<RedemptionRow, RedemptionError> {
    let offer = offers::find(conn, offer_id)?.ok_or(RedemptionError::UnknownOffer)?;
    if !offer.open_at(now) {
        return Err(RedemptionError::OfferInactive);
    }
    let regions = offers::regions_of(conn, &[offer.id])?
        .remove(&offer.id)
        .unwrap_or_default();
    if offer.residents_only && !regions.iter().any(|r| catalog.is_within(&who.region_code, r)) {
        return Err(RedemptionError::RegionNotServed(who.region_code.clone()));
    }
    if !store::take_limit(conn, offer.id, who.account_id, offer.per_user_limit)? {
        return Err(RedemptionError::LimitReached(offer.per_user_limit));
    }
    let partner = partners::find(conn, offer.partner_id)?
        .ok_or_else(|| RedemptionError::Inconsistent(format!("offer {offer_id} has no partner")))?;
    let expires_at = now + hold_ttl;
    let mut row = store::insert(
        conn,
        &NewRedemption {
            offer_id: offer.id,
            partner_id: partner.id,
            account_id: who.account_id,
            user_id: who.user_id,
            points: offer.points_cost,
            value_fen: offer.value_fen,
            expires_at,
            created_at: now,
        },
    )?;
    let hold = ledger::hold(
        conn,
        who.account_id,
        partner.account_id,
        offer.points_cost,
        expires_at,
        &Cause::of(REF_TYPE, row.id),
        now,
    )?;
    let bucket = stock::take(conn, offer.id)?.ok_or(RedemptionError::OutOfStock)?;
    store::set_hold(conn, row.id, hold.id, bucket)?;
    row.hold_id = Some(hold.id);
    row.stock_bucket = Some(bucket);
    Ok(row)
}

/// How a held redemption ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Captured,
    Voided,
    Expired,
}

impl Outcome {
    pub fn status(self) -> RedemptionStatus {
        match self {
            Outcome::Captured => RedemptionStatus::Captured,
            Outcome::Voided => RedemptionStatus::Voided,
            Outcome::Expired => RedemptionStatus::Expired,
        }
    }

    /// How request hashes name the outcome: fixed text (these were the `Debug` names), so that
    /// renaming a variant cannot change a stored hash.
    pub fn hashed_name(self) -> &'static str {
        match self {
            Outcome::Captured => "Captured",
            Outcome::Voided => "Voided",
            Outcome::Expired => "Expired",
        }
    }
}

/// Who ends it. Partners and holders see only their own redemptions, and only before they expire;
/// the sweeper only after.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    Partner(i64),
    Holder(i64),
    Sweeper,
}

impl Actor {
    fn describe(self) -> String {
        match self {
            Actor::Partner(id) => format!("partner:{id}"),
            Actor::Holder(account) => format!("account:{account}"),
            Actor::Sweeper => "expiry".into(),
        }
    }

    fn sees(self, r: &RedemptionRow) -> bool {
        match self {
            Actor::Partner(id) => r.partner_id == id,
            Actor::Holder(account) => r.account_id == account,
            Actor::Sweeper => true,
        }
    }
}

/// Claims a held redemption for `outcome`: the one conditional UPDATE that finds it still held wins.
fn claim(
    conn: &mut AnyConnection,
    id: i64,
    outcome: Outcome,
    actor: Actor,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    use redemptions::dsl as r;
    let held = r::redemptions
        .find(id)
        .filter(r::status.eq(RedemptionStatus::Held));
    let changes = (
        r::status.eq(outcome.status()),
        r::resolved_at.eq(now),
        r::resolved_by.eq(actor.describe()),
    );
    let n = match actor {
        Actor::Partner(partner) => diesel::update(
            held.filter(r::partner_id.eq(partner))
                .filter(r::expires_at.gt(now)),
        )
        .set(changes)
        .execute(conn)?,
        Actor::Holder(account) => diesel::update(
            held.filter(r::account_id.eq(account))
                .filter(r::expires_at.gt(now)),
        )
        .set(changes)
        .execute(conn)?,
        Actor::Sweeper => diesel::update(held.filter(r::expires_at.le(now)))
            .set(changes)
            .execute(conn)?,
    };
    Ok(n == 1)
}

/// Why a claim failed, as the caller should hear it.
fn refusal(conn: &mut AnyConnection, id: i64, actor: Actor, now: NaiveDateTime) -> RedemptionError {
    let row = match store::find(conn, id) {
        Ok(row) => row.filter(|r| actor.sees(r)),
        Err(e) => return e.into(),
    };
    match row {
        None => RedemptionError::UnknownRedemption,
        Some(row) if row.status != RedemptionStatus::Held => RedemptionError::AlreadyResolved(row.status),
        Some(row) if row.expires_at <= now => RedemptionError::Expired,
        Some(_) => RedemptionError::NotDue,
    }
}

/// A ledger refusal here means the redemption and its hold disagree: a bug, never the caller's fault.
/// A database failure stays one (a lost race is retried by the client).
fn inconsistent(id: i64) -> impl Fn(LedgerError) -> RedemptionError {
    move |e| match e {
        LedgerError::Database(e) => RedemptionError::Database(e),
        refused => {
            RedemptionError::Inconsistent(format!("redemption {id}: its hold cannot be resolved: {refused}"))
        }
    }
}

/// Ends a held redemption, in one transaction (a savepoint inside the caller's).
pub fn resolve(
    conn: &mut AnyConnection,
    id: i64,
    outcome: Outcome,
    actor: Actor,
    now: NaiveDateTime,
) -> Result<RedemptionRow, RedemptionError> {
    db::transaction(conn, Tx::Write, |conn| {
        if !claim(conn, id, outcome, actor, now)? {
            return Err(refusal(conn, id, actor, now));
        }
        let row = store::find(conn, id)?.ok_or(RedemptionError::UnknownRedemption)?;
        let hold_id = row
            .hold_id
            .ok_or_else(|| RedemptionError::Inconsistent(format!("redemption {id} has no hold")))?;
        let released = outcome != Outcome::Captured;
        if released {
            store::return_limit(conn, row.offer_id, row.account_id)?;
        }
        let cause = Cause::of(REF_TYPE, id);
        let transfer = match outcome {
            Outcome::Captured => ledger::post(conn, hold_id, &cause, now),
            Outcome::Voided => ledger::void(conn, hold_id, &cause, now),
            Outcome::Expired => ledger::expire(conn, hold_id, now),
        }
        .map_err(inconsistent(id))?;
        store::set_resolution(conn, id, transfer.id)?;
        if released {
            stock::give_back(conn, row.offer_id, row.stock_bucket.unwrap_or(0))?;
        }
        Ok(RedemptionRow {
            resolution_id: Some(transfer.id),
            ..row
        })
    })
}

/// Expires up to `limit` redemptions whose hold has run out, each in its own transaction; one that a
/// capture, a void or another instance's sweeper ended first is skipped. Returns how many it expired.
///
/// One whose hold cannot be resolved (an inconsistency, which `verify` reports, or a statement the
/// database refuses for it) is logged and skipped: being the oldest, it would otherwise come first in
/// every sweep and stop every later hold from expiring. A redemption gone, or a race lost to another
/// transaction, ends the sweep, to be tried again.
pub fn expire_due(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    limit: i64,
) -> Result<usize, RedemptionError> {
    let mut expired = 0;
    for id in store::due(conn, now, limit)? {
        match resolve(conn, id, Outcome::Expired, Actor::Sweeper, now) {
            Ok(_) => expired += 1,
            Err(e) if e.is_not_held() => {}
            Err(e) if skipped_by_sweep(&e) => {
                tracing::error!(redemption_id = id, error = %e, "redemption not expired; skipped");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(expired)
}

/// Failures that concern one redemption rather than the sweep: its rows disagree, or the database
/// refused a statement for it (any failure but a lost race, which is worth retrying).
fn skipped_by_sweep(e: &RedemptionError) -> bool {
    match e {
        RedemptionError::Inconsistent(_) => true,
        RedemptionError::Database(e) => {
            !matches!(e, diesel::result::Error::NotFound) && !crate::error::lost_a_race(e)
        }
        _ => false,
    }
}
