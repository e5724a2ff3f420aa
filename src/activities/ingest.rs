//! The rules of one event: replay, plausibility (speed, overlaps, the provider-vs-app rule), caps, and
//! the row and answer it is stored with. `activities::group` applies them to a group of events inside one
//! transaction; nothing here commits.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::caps::Book;
use super::request::Event;
use super::rules;
use super::store;
use crate::config::ActivitySettings;
use crate::db::columns::columns;
use crate::db::prepared::{insert_rows, Planning};
use crate::db::schema::activities;
use crate::db::AnyConnection;
use crate::domain::catalog::{points_for, Evidence};
use crate::domain::formula::Step;
use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::ledger::service::IssuanceAccounts;
use crate::methodology::quantify::Quantified;
use crate::methodology::views::MethodologyRef;

/// What the client is told (and what a replay returns).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActivityResult {
    pub activity_id: String,
    /// credited, capped, flagged or rejected
    pub status: String,
    /// What the methodology gives, in grams CO2e.
    pub reduction_g: i64,
    /// What the daily cap let through.
    pub granted_g: i64,
    pub points: i64,
    pub methodology: Option<MethodologyRef>,
    /// cap_reached, late, speed, overlap, duplicate, supersedes_app_record, annual_cap_reached
    pub reasons: Vec<String>,
    #[schema(value_type = Vec<Object>)]
    pub breakdown: Vec<Step>,
}

/// The columns an answer is rebuilt from. The answer is not stored as such: every figure of it is in the
/// activity's row already (and a review keeps them current), so storing it again would double the row, and
/// the rows written per second are what bounds ingestion.
#[derive(Debug, Clone)]
pub struct StoredAnswer {
    pub id: i64,
    pub status: String,
    pub reduction_g: i64,
    pub granted_g: i64,
    pub points: i64,
    /// JSON array of strings, as stored.
    pub reasons: String,
    /// JSON array of steps, as stored.
    pub breakdown: Option<String>,
    pub methodology: Option<MethodologyRef>,
}

impl StoredAnswer {
    pub fn into_result(self) -> Result<ActivityResult, ApiError> {
        let parse = |e: serde_json::Error| ApiError::internal(anyhow::anyhow!("activity {}: {e}", self.id));
        Ok(ActivityResult {
            activity_id: self.id.to_string(),
            reasons: serde_json::from_str(&self.reasons).map_err(parse)?,
            breakdown: match &self.breakdown {
                Some(steps) => serde_json::from_str(steps).map_err(parse)?,
                None => Vec::new(),
            },
            status: self.status,
            reduction_g: self.reduction_g,
            granted_g: self.granted_g,
            points: self.points,
            methodology: self.methodology,
        })
    }
}

pub enum Outcome {
    Created(ActivityResult),
    /// The same event posted again: its answer, rebuilt from its row (see [`StoredAnswer`]).
    Replayed(ActivityResult),
}

/// What stays the same for every event of a batch.
pub struct Context<'a> {
    pub settings: &'a ActivitySettings,
    pub issuance: &'a mut IssuanceAccounts,
    pub now: NaiveDateTime,
    /// `Cached` only on a writer's own connection (see `prepared::Planning`).
    pub planning: Planning,
}

/// The answer to a retry whose request has `digest`: the stored one, or a conflict when the body differs.
pub fn replay((request_hash, answer): (String, StoredAnswer), digest: &str) -> Result<Outcome, ApiError> {
    if request_hash == digest {
        Ok(Outcome::Replayed(answer.into_result()?))
    } else {
        Err(ApiError::conflict(
            ErrorCode::IdempotencyConflict,
            "this client_event_id was already used for a different event",
        ))
    }
}

/// How the event is to be settled, before any grant is taken.
enum Verdict {
    Rejected(&'static str),
    Flagged(Vec<String>),
    Credit {
        reasons: Vec<String>,
        already_granted_g: i64,
        already_points: i64,
    },
}

/// Judges an event against the other activities of its account that overlap it.
fn judge(settings: &ActivitySettings, event: &Event, overlapping: &[&store::Neighbour]) -> Verdict {
    let mut flags = Vec::new();
    if let (Some(speed), Some(limit)) = (
        rules::speed_kmh(&event.values, event.occurred_at, event.ended_at),
        settings.max_speed_kmh.get(&event.activity_type),
    ) {
        if speed > Decimal::from(*limit) {
            flags.push("speed".to_string());
        }
    }
    let mut app_records = Vec::new();
    if rules::is_travel(&event.activity_type) {
        let this_is_operator = event.poster.provider_id.is_some();
        for &other in overlapping {
            if !rules::is_travel(&other.activity_type) {
                continue;
            }
            match (
                same_trip(&event.activity_type, this_is_operator, other),
                this_is_operator,
            ) {
                // The app reports a trip the operator already reported: the operator's record wins.
                (true, false) => return Verdict::Rejected("duplicate"),
                // The operator reports a trip the app already claimed (perhaps in several legs): top up,
                // never reverse. An app record held for review was granted nothing, so there is nothing to
                // top up; it cannot be approved any more (`approval_terms`), and the trusted record stands.
                (true, true) => {
                    if other.status != "flagged" {
                        app_records.push(other);
                    }
                }
                _ => {
                    if !flags.iter().any(|f| f == "overlap") {
                        flags.push("overlap".to_string());
                    }
                }
            }
        }
    }
    if !flags.is_empty() {
        return Verdict::Flagged(flags);
    }
    let (already_granted_g, already_points) = granted_to(&app_records);
    Verdict::Credit {
        reasons: superseding(&app_records),
        already_granted_g,
        already_points,
    }
}

/// Whether `other` is the other side's record of the same trip: the operator's and the app's records of
/// one ride have the same type and overlap (the caller has checked the overlap).
fn same_trip(activity_type: &str, this_is_operator: bool, other: &store::Neighbour) -> bool {
    other.activity_type == activity_type && other.provider_id.is_some() != this_is_operator
}

/// What the app's records of a trip were granted, in (grams, points): an operator's record tops them up.
fn granted_to(app_records: &[&store::Neighbour]) -> (i64, i64) {
    app_records
        .iter()
        .fold((0, 0), |(g, p), r| (g + r.granted_g, p + r.points))
}

fn superseding(app_records: &[&store::Neighbour]) -> Vec<String> {
    if !app_records.is_empty() {
        vec!["supersedes_app_record".into()]
    } else {
        Vec::new()
    }
}

/// Approving a flagged travel record honours the other records of its trip as posting it would have:
/// an app record yields to any live operator record of the trip (409 `duplicate_trip`), and an operator
/// record only tops up what the trip's app records were granted. Returns the reasons to add and the
/// (grams, points) already granted. `overlapping`: the account's live activities overlapping it (the
/// record itself may be among them: it is no other side's record of its trip).
pub fn approval_terms(
    activity_type: &str,
    from_operator: bool,
    overlapping: &[store::Neighbour],
) -> Result<(Vec<String>, (i64, i64)), ApiError> {
    if !rules::is_travel(activity_type) {
        return Ok((Vec::new(), (0, 0)));
    }
    let others: Vec<&store::Neighbour> = overlapping
        .iter()
        .filter(|other| same_trip(activity_type, from_operator, other))
        .collect();
    if !from_operator && !others.is_empty() {
        return Err(ApiError::conflict(
            ErrorCode::DuplicateTrip,
            "the operator's record of this trip stands: this app record can only be rejected",
        ));
    }
    Ok((superseding(&others), granted_to(&others)))
}

/// Whose allowance a credit draws on, and what an earlier record of the same trip already received.
pub struct Grant<'a> {
    pub account_id: i64,
    pub activity_type: &'a str,
    pub occurred_at: NaiveDateTime,
    pub evidence: Evidence,
    /// (grams, points) already granted for this trip.
    pub already: (i64, i64),
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

/// Takes what the caps allow from `book`. Returns (status, granted_g, points, reasons); issuing is the
/// caller's.
pub fn credit(
    settings: &ActivitySettings,
    grant: &Grant<'_>,
    q: &Quantified,
    book: &mut Book,
) -> QueryResult<(&'static str, i64, i64, Vec<String>)> {
    let (account_id, activity_type, occurred_at, evidence) = (
        grant.account_id,
        grant.activity_type,
        grant.occurred_at,
        grant.evidence,
    );
    let (already_granted, already_points) = grant.already;
    let want = (q.quantity.reduction_g - already_granted).max(0);
    let day = rules::local_day(occurred_at);
    let daily_key = (account_id, activity_type, day.as_str());
    let mut granted = book.daily(daily_key, want, q.version.daily_cap_g)?;
    let mut reasons = Vec::new();
    if granted < want {
        reasons.push("cap_reached".to_string());
    }
    let weight = q.version.weights.weight(evidence);
    // The trip is worth what this record says: grams an earlier record of it claimed beyond that are never
    // taken back, but they earn nothing more at this record's weight either.
    let trip_g = (already_granted + granted).min(q.quantity.reduction_g);
    let total_points = points_for(trip_g, q.quantity.points_per_gram, weight);
    let want_points = (total_points - already_points).max(0);
    let points = book.annual(
        (account_id, rules::local_year(occurred_at)),
        want_points,
        settings.annual_points_cap,
    )?;
    if points < want_points {
        reasons.push("annual_cap_reached".to_string());
        // Grams that earn no points at all are not credited: they go back to the day's allowance.
        if points == 0 {
            book.give_back_daily(daily_key, granted)?;
            granted = 0;
        }
    }
    // Capped: the caps left this record nothing it wanted. An operator's record may still earn points
    // with no new grams (it re-weighs grams its trip's app records were granted): that is a credit.
    let status = if (want > 0 || want_points > 0) && granted == 0 && points == 0 {
        "capped"
    } else {
        "credited"
    };
    Ok((status, granted, points, reasons))
}

/// What an event becomes, before it has an id.
pub struct Decided {
    pub status: &'static str,
    pub granted_g: i64,
    pub points: i64,
    pub reasons: Vec<String>,
    /// The region's issuance account, when points are to be issued.
    pub issuance_account: Option<i64>,
}

/// Whether the overlap rules apply to the event at all (a late event is rejected before them).
pub fn needs_neighbours(event: &Event) -> bool {
    event.quantified.is_some() && rules::is_travel(&event.activity_type)
}

/// Judges the event against its overlapping neighbours and takes its grant from the book. An error is a
/// database error (or a counter the book lacks), after which the transaction must be rolled back.
pub fn decide(
    conn: &mut AnyConnection,
    cx: &mut Context<'_>,
    event: &Event,
    overlapping: &[&store::Neighbour],
    book: &mut Book,
) -> Result<Decided, ApiError> {
    let Some(q) = &event.quantified else {
        return Ok(Decided::refused("rejected", vec!["late".to_string()]));
    };
    let (base, already_granted_g, already_points) = match judge(cx.settings, event, overlapping) {
        Verdict::Rejected(why) => return Ok(Decided::refused("rejected", vec![why.to_string()])),
        Verdict::Flagged(flags) => return Ok(Decided::refused("flagged", flags)),
        Verdict::Credit {
            reasons,
            already_granted_g,
            already_points,
        } => (reasons, already_granted_g, already_points),
    };
    let issuance_account = cx.issuance.id(conn, &event.region_code)?;
    let grant = Grant {
        account_id: event.poster.account_id,
        activity_type: &event.activity_type,
        occurred_at: event.occurred_at,
        evidence: event.evidence,
        already: (already_granted_g, already_points),
    };
    let (status, granted_g, points, mut reasons) = credit(cx.settings, &grant, q, book)?;
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
    fn refused(status: &'static str, reasons: Vec<String>) -> Decided {
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
            status: self.status.to_string(),
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
            evidence: event.evidence.as_str(),
            provider_id: event.poster.provider_id,
            data: &event.data_json,
            status: self.status,
            reasons: serde_json::to_string(&self.reasons).unwrap_or_default(),
            methodology_id: quantified.map(|q| q.version.id),
            reduction_g: quantified.map_or(0, |q| q.quantity.reduction_g),
            granted_g: self.granted_g,
            points: self.points,
            breakdown: Some(&event.breakdown_json),
            transfer_id,
            created_at,
        }
    }

    /// What a later event of the same group sees of this one.
    pub fn as_neighbour(&self, event: &Event) -> store::Neighbour {
        store::Neighbour {
            account_id: event.poster.account_id,
            occurred_at: event.interval.0,
            ended_at: Some(event.interval.1),
            activity_type: event.activity_type.clone(),
            provider_id: event.poster.provider_id,
            status: self.status.to_string(),
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
    evidence: &'a str,
    provider_id: Option<i64>,
    data: &'a str,
    status: &'a str,
    reasons: String,
    methodology_id: Option<i64>,
    reduction_g: i64,
    granted_g: i64,
    points: i64,
    breakdown: Option<&'a str>,
    transfer_id: Option<i64>,
    created_at: NaiveDateTime,
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
        reduction_g: row.reduction_g,
        granted_g: row.granted_g,
        points: row.points,
        breakdown: row.breakdown,
        transfer_id: row.transfer_id,
        created_at: row.created_at,
    }
}

/// Stores activities in multi-row statements.
pub fn insert_activities(conn: &mut AnyConnection, rows: &[NewActivity<'_>]) -> QueryResult<usize> {
    insert_rows(conn, activities::table, rows)
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, NaiveDateTime};

    use super::*;

    fn at(minute: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 29)
            .unwrap()
            .and_hms_opt(8, minute, 0)
            .unwrap()
    }

    fn record(
        activity_type: &str,
        provider_id: Option<i64>,
        status: &str,
        granted: (i64, i64),
    ) -> store::Neighbour {
        store::Neighbour {
            account_id: 1,
            occurred_at: at(0),
            ended_at: Some(at(20)),
            activity_type: activity_type.into(),
            provider_id,
            status: status.into(),
            granted_g: granted.0,
            points: granted.1,
        }
    }

    #[test]
    fn an_approved_operator_record_tops_up_every_app_leg() {
        let legs = [
            record("transit.metro", None, "credited", (187, 93)),
            record("transit.metro", None, "credited", (187, 93)),
            record("transit.bus", None, "credited", (80, 40)),
            record("transit.metro", Some(7), "credited", (467, 467)),
        ];
        let (reasons, already) = approval_terms("transit.metro", true, &legs).unwrap();
        assert_eq!(
            already,
            (374, 186),
            "both metro legs of the app, not the bus, not the operator"
        );
        assert_eq!(reasons, ["supersedes_app_record"]);
        let (reasons, already) = approval_terms("transit.metro", true, &legs[2..3]).unwrap();
        assert_eq!((reasons.len(), already), (0, (0, 0)));
    }

    #[test]
    fn an_app_record_yields_to_any_operator_record_of_its_trip() {
        let flagged_operator = [record("transit.metro", Some(7), "flagged", (0, 0))];
        let refused = approval_terms("transit.metro", false, &flagged_operator).unwrap_err();
        assert_eq!(refused.code, ErrorCode::DuplicateTrip);
        let other_type = [record("transit.bus", Some(7), "credited", (80, 80))];
        assert!(approval_terms("transit.metro", false, &other_type).is_ok());
        assert!(
            approval_terms("waste.sorting", false, &flagged_operator).is_ok(),
            "not travel"
        );
    }
}
