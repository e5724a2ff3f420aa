//! The rules of one event applied to what is stored: replay, the verdict of `rules` against the stored
//! neighbours, cap grants from the counters read under the account's lock, and the row and answer it is
//! stored with. `activities::group` applies them to a group of events inside one transaction; nothing here
//! commits.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::caps::Book;
use super::model::{ActivityResult, BrokenAnswer, Event, Neighbour, Outcome, Reason, Status, StoredAnswer};
use super::rollups::{self, Counts};
use super::rules::allowance::{credit, Credit, Grant, GrantError};
use super::rules::{self, Verdict};
use crate::config::ActivitySettings;
use crate::db::columns::columns;
use crate::db::prepared::{insert_rows, Planning};
use crate::db::schema::activities;
use crate::db::AnyConnection;
use crate::domain::catalog::{AmountOverflow, Catalog, Evidence};
use crate::domain::claim::ClaimId;
use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::ledger::lots::Origin;
use crate::ledger::service::{IssuanceAccounts, LedgerError};
use crate::methodology::quantify::Quantified;
use crate::stats::rollup::Counted;

/// What stays the same for every event of a batch.
pub struct Context<'a> {
    pub settings: &'a ActivitySettings,
    /// Which types are travel and their speed bounds.
    pub catalog: &'a Catalog,
    pub issuance: &'a mut IssuanceAccounts,
    pub now: NaiveDateTime,
    /// `Cached` only on a writer's own connection (see `prepared::Planning`).
    pub planning: Planning,
}

/// Why a stored event cannot answer a retry.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The retry's body differs from the stored event's.
    #[error("this client_event_id was already used for a different event")]
    Conflict,
    #[error(transparent)]
    Broken(#[from] BrokenAnswer),
}

impl From<ReplayError> for ApiError {
    fn from(e: ReplayError) -> ApiError {
        match e {
            ReplayError::Conflict => ApiError::conflict(ErrorCode::IdempotencyConflict, e.to_string()),
            ReplayError::Broken(e) => e.into(),
        }
    }
}

/// What fails a group's write: the whole transaction is then rolled back.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    /// Looking up a region's issuance account, or issuing.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// An event's grams or points beyond an `i64`: that event is refused (written alone, it fails alone).
    #[error(transparent)]
    Overflow(#[from] AmountOverflow),
    /// A cap counter the group did not read: a bug, answered 500.
    #[error(transparent)]
    Unread(GrantError),
}

impl From<GrantError> for WriteError {
    fn from(e: GrantError) -> WriteError {
        match e {
            GrantError::Overflow(e) => WriteError::Overflow(e),
            unread @ GrantError::Unread(_) => WriteError::Unread(unread),
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> ApiError {
        match e {
            WriteError::Query(e) => e.into(),
            WriteError::Ledger(e) => e.into(),
            WriteError::Overflow(e) => overflow_refusal(e),
            WriteError::Unread(e) => ApiError::internal(e),
        }
    }
}

/// An amount beyond what the ledger holds, as the 422 the client is answered.
pub fn overflow_refusal(e: AmountOverflow) -> ApiError {
    ApiError::unprocessable(ErrorCode::EvaluationFailed, e.to_string())
}

/// The answer to a retry whose request has `digest`: the stored one, or a conflict when the body differs.
pub fn replay((request_hash, answer): (String, StoredAnswer), digest: &str) -> Result<Outcome, ReplayError> {
    if request_hash == digest {
        Ok(Outcome::Replayed(answer.into_result()?))
    } else {
        Err(ReplayError::Conflict)
    }
}

/// The cap counters that credits for these (account, activity type, occurred at) can draw on, read once.
/// The caller holds the accounts' row locks (see `caps`).
pub fn cap_book(
    conn: &mut AnyConnection,
    settings: &ActivitySettings,
    claims: &[(i64, &str, NaiveDateTime)],
    planning: Planning,
) -> QueryResult<Book> {
    let days: Vec<(i64, &str, String)> = claims
        .iter()
        .map(|&(account, activity_type, at)| (account, activity_type, rules::local_day(at)))
        .collect();
    let mut daily: Vec<(i64, &str, &str)> = days.iter().map(|(a, t, d)| (*a, *t, d.as_str())).collect();
    daily.sort_unstable();
    daily.dedup();
    let mut annual: Vec<(i64, i32)> = if settings.annual_points_cap == 0 {
        Vec::new()
    } else {
        claims
            .iter()
            .map(|&(a, _, at)| (a, rules::local_year(at)))
            .collect()
    };
    annual.sort_unstable();
    annual.dedup();
    Book::load(conn, &daily, &annual, planning)
}

/// What an event becomes, before it has an id.
pub struct Decided {
    pub status: Status,
    pub granted_g: i64,
    pub points: i64,
    pub reasons: Vec<Reason>,
    /// The region's issuance account, when points are to be issued.
    pub issuance_account: Option<i64>,
}

/// Whether the overlap rules apply to the event at all (a late event is rejected before them).
pub fn needs_neighbours(catalog: &Catalog, event: &Event) -> bool {
    event.quantified.is_some() && catalog.is_travel(&event.activity_type)
}

/// Judges the event against its overlapping neighbours and takes its grant from the book. An error is a
/// database error (or a counter the book lacks), after which the transaction must be rolled back.
pub fn decide(
    conn: &mut AnyConnection,
    cx: &mut Context<'_>,
    event: &Event,
    overlapping: &[&Neighbour],
    book: &mut Book,
) -> Result<Decided, WriteError> {
    let Some(q) = &event.quantified else {
        return Ok(Decided::refused(Status::Rejected, vec![Reason::Late]));
    };
    let bounds = rules::Bounds {
        kind: rules::TypeRules::of(cx.catalog, &event.activity_type),
        max_reduction_g: cx.settings.max_reduction_g_per_event,
    };
    let is_travel = |code: &str| cx.catalog.is_travel(code);
    let (base, already) = match rules::judge(event, bounds, overlapping, &is_travel) {
        Verdict::Rejected(why) => return Ok(Decided::refused(Status::Rejected, vec![why])),
        Verdict::Flagged(flags) => return Ok(Decided::refused(Status::Flagged, flags)),
        Verdict::Credit { reasons, already } => (reasons, already),
    };
    let issuance_account = cx.issuance.id(conn, &event.region_code)?;
    let grant = Grant {
        account_id: event.poster.account_id,
        activity_type: &event.activity_type,
        occurred_at: event.occurred_at,
        evidence: event.evidence,
        already,
    };
    let Credit {
        status,
        granted_g,
        points,
        mut reasons,
    } = credit(&grant, q, cx.settings.annual_points_cap, book)?;
    reasons.splice(0..0, base);
    Ok(Decided {
        status,
        granted_g,
        points,
        reasons,
        issuance_account: (points > 0).then_some(issuance_account),
    })
}

impl Decided {
    /// Nothing granted: rejected, or flagged for review.
    pub fn refused(status: Status, reasons: Vec<Reason>) -> Decided {
        Decided {
            status,
            granted_g: 0,
            points: 0,
            reasons,
            issuance_account: None,
        }
    }

    /// The client's answer for the event stored as activity `id`.
    pub fn result(&self, id: i64, event: &Event) -> ActivityResult {
        let quantified = event.quantified.as_ref();
        ActivityResult {
            activity_id: id.to_string(),
            status: self.status,
            reduction_g: quantified.map_or(0, |q| q.quantity.reduction_g),
            granted_g: self.granted_g,
            points: self.points,
            methodology: quantified.map(Quantified::methodology),
            reasons: self.reasons.clone(),
            breakdown: quantified
                .map(|q| q.quantity.breakdown.clone())
                .unwrap_or_default(),
        }
    }

    /// What the statistics add up of the event, if they count it.
    pub fn counted<'a>(&self, event: &'a Event) -> Option<Counted<'a>> {
        self.status.is_counted().then(|| Counted {
            account_id: event.poster.account_id,
            local_day: &event.local_day,
            region_code: &event.region_code,
            activity_type: &event.activity_type,
            granted_g: self.granted_g,
            reduction_g: event.quantified.as_ref().map_or(0, |q| q.quantity.reduction_g),
            points: self.points,
        })
    }

    /// The activity's row, with its id and issue transfer.
    pub fn row<'a>(
        &'a self,
        event: &'a Event,
        id: i64,
        transfer_id: Option<i64>,
        created_at: NaiveDateTime,
    ) -> NewActivity<'a> {
        let quantified = event.quantified.as_ref();
        NewActivity {
            id,
            account_id: event.poster.account_id,
            user_id: event.poster.user_id,
            client_event_id: &event.client_event_id,
            request_hash: &event.request_hash,
            activity_type: &event.activity_type,
            region_code: &event.region_code,
            occurred_at: event.interval.0,
            ended_at: Some(event.interval.1),
            local_day: &event.local_day,
            evidence: event.evidence,
            provider_id: event.poster.provider_id,
            data: &event.data_json,
            status: self.status,
            reasons: serde_json::to_string(&self.reasons).unwrap_or_default(),
            methodology_id: quantified.map(|q| q.version.id),
            region_parameters_id: quantified.and_then(|q| q.quantity.region_parameters_id),
            reduction_g: quantified.map_or(0, |q| q.quantity.reduction_g),
            granted_g: self.granted_g,
            points: self.points,
            breakdown: Some(&event.breakdown_json),
            transfer_id,
            created_at,
            claim_id: event.claim.as_ref().map(ClaimId::as_str),
        }
    }

    /// The lot its points make: what it was granted, where and how, expiring as the region says.
    pub fn lot_origin<'a>(&self, catalog: &Catalog, event: &'a Event, now: NaiveDateTime) -> Origin<'a> {
        Origin {
            region_code: &event.region_code,
            activity_type: Some(&event.activity_type),
            methodology_id: event.quantified.as_ref().map(|q| q.version.id),
            reduction_g: self.granted_g,
            expires_at: catalog.points_expire_at(&event.region_code, now),
        }
    }

    /// What a later event of the same group sees of this one.
    pub fn as_neighbour(&self, event: &Event) -> Neighbour {
        Neighbour {
            account_id: event.poster.account_id,
            occurred_at: event.interval.0,
            ended_at: Some(event.interval.1),
            activity_type: event.activity_type.clone(),
            provider_id: event.poster.provider_id,
            status: self.status,
            granted_g: self.granted_g,
            points: self.points,
        }
    }
}

/// A new activity row, with its id, issue transfer and answer.
pub struct NewActivity<'a> {
    id: i64,
    account_id: i64,
    user_id: i64,
    client_event_id: &'a str,
    request_hash: &'a str,
    activity_type: &'a str,
    region_code: &'a str,
    occurred_at: NaiveDateTime,
    ended_at: Option<NaiveDateTime>,
    local_day: &'a str,
    evidence: Evidence,
    provider_id: Option<i64>,
    data: &'a str,
    status: Status,
    reasons: String,
    methodology_id: Option<i64>,
    region_parameters_id: Option<i64>,
    reduction_g: i64,
    granted_g: i64,
    points: i64,
    breakdown: Option<&'a str>,
    transfer_id: Option<i64>,
    created_at: NaiveDateTime,
    claim_id: Option<&'a str>,
}

columns! {
    /// Every column of an activity but its review's.
    activities for NewActivity<'_>, |row| {
        id: row.id,
        account_id: row.account_id,
        user_id: row.user_id,
        client_event_id: row.client_event_id,
        request_hash: row.request_hash,
        activity_type: row.activity_type,
        region_code: row.region_code,
        occurred_at: row.occurred_at,
        ended_at: row.ended_at,
        local_day: row.local_day,
        evidence: row.evidence,
        provider_id: row.provider_id,
        data: row.data,
        status: row.status,
        reasons: &row.reasons,
        methodology_id: row.methodology_id,
        region_parameters_id: row.region_parameters_id,
        reduction_g: row.reduction_g,
        granted_g: row.granted_g,
        points: row.points,
        breakdown: row.breakdown,
        transfer_id: row.transfer_id,
        created_at: row.created_at,
        claim_id: row.claim_id,
    }
}

/// Stores activities in multi-row statements, and adds them to their days' rollups.
pub fn insert_activities(conn: &mut AnyConnection, rows: &[NewActivity<'_>]) -> QueryResult<usize> {
    let stored = insert_rows(conn, activities::table, rows)?;
    rollups::record(
        conn,
        rows.iter().map(|r| {
            let counts = Counts::of(r.status, r.evidence, r.granted_g);
            (r.account_id, r.local_day, counts)
        }),
    )?;
    Ok(stored)
}
