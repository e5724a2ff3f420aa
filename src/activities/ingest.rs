//! One event, start to finish, inside the caller's transaction: replay check, plausibility, quantification,
//! caps, storage and issuance.
//!
//! An event first reads (replay, overlaps) and decides, then writes (caps, the activity, the issue). It
//! takes no savepoint of its own: a refusal (a replay conflict, a quantification error) is decided before
//! anything is written, so its neighbours in a group commit carry on. Any database error, and any failure
//! once writing has started, sets [`Failure::abandon`]: the caller must roll the whole transaction back
//! (PostgreSQL refuses every further statement after an error anyway), and the writer then retries one
//! event per transaction.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::request::Event;
use super::store;
use super::{caps, rules};
use crate::config::ActivitySettings;
use crate::db::schema::activities;
use crate::db::{self, AnyConnection, Tx};
use crate::domain::catalog::{points_for, Evidence};
use crate::domain::formula::Step;
use crate::error::ApiError;
use crate::ledger::service::{self as ledger, Cause, IssuanceAccounts};
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

pub enum Outcome {
    Created(ActivityResult),
    /// The same event posted again: its original answer.
    Replayed(String),
}

/// Why an event was not stored, and whether the transaction it ran in is still good for its neighbours.
#[derive(Debug)]
pub struct Failure {
    pub error: ApiError,
    /// The transaction may hold some of this event's writes or be in error: it must be rolled back.
    pub abandon: bool,
}

impl Failure {
    /// Refused before anything was written, without a database error.
    fn refused(error: ApiError) -> Failure {
        Failure {
            error,
            abandon: false,
        }
    }

    fn abandon(error: impl Into<ApiError>) -> Failure {
        Failure {
            error: error.into(),
            abandon: true,
        }
    }

    /// Another connection stored the same (account, client_event_id) first: retrying finds and replays it.
    pub fn is_insert_race(&self) -> bool {
        self.error.code == RACE
    }
}

/// A failed COMMIT or ROLLBACK of the event's own transaction.
impl From<diesel::result::Error> for Failure {
    fn from(e: diesel::result::Error) -> Failure {
        Failure::abandon(e)
    }
}

impl From<Failure> for ApiError {
    fn from(f: Failure) -> ApiError {
        f.error
    }
}

/// What stays the same for every event of a batch.
pub struct Context<'a> {
    pub settings: &'a ActivitySettings,
    pub issuance: &'a mut IssuanceAccounts,
    pub now: NaiveDateTime,
}

/// A concurrent insert of the same (account, client_event_id) on another connection won the race.
const RACE: &str = "client_event_race";

/// Ingests one event in a transaction of its own (nested: a savepoint). Losing an insert race to another
/// instance is retried once, which then finds the stored event and replays it.
pub fn ingest_alone(
    conn: &mut AnyConnection,
    cx: &mut Context<'_>,
    event: &Event,
) -> Result<Outcome, ApiError> {
    let mut attempt = || db::transaction(conn, Tx::Write, |conn| ingest(conn, cx, event));
    match attempt() {
        Err(f) if f.is_insert_race() => attempt().map_err(ApiError::from),
        other => other.map_err(ApiError::from),
    }
}

fn replay((request_hash, response): (String, String), event: &Event) -> Result<Outcome, ApiError> {
    if request_hash == event.request_hash {
        Ok(Outcome::Replayed(response))
    } else {
        Err(ApiError::conflict(
            "idempotency_conflict",
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

fn judge(
    conn: &mut AnyConnection,
    settings: &ActivitySettings,
    event: &Event,
    start: NaiveDateTime,
    end: NaiveDateTime,
) -> QueryResult<Verdict> {
    let mut flags = Vec::new();
    if let (Some(speed), Some(limit)) = (
        rules::speed_kmh(&event.values, event.occurred_at, event.ended_at),
        settings.max_speed_kmh.get(&event.activity_type),
    ) {
        if speed > Decimal::from(*limit) {
            flags.push("speed".to_string());
        }
    }
    let mut supersedes: Option<store::Neighbour> = None;
    if rules::is_travel(&event.activity_type) {
        for other in store::overlapping(conn, event.poster.account_id, (start, end), rules::longest())? {
            if !rules::is_travel(&other.activity_type) {
                continue;
            }
            let other_is_provider = other.provider_id.is_some();
            let this_is_provider = event.poster.provider_id.is_some();
            let same_trip =
                other.activity_type == event.activity_type && other_is_provider != this_is_provider;
            match (same_trip, this_is_provider) {
                // The app reports a trip the operator already reported: the operator's record wins.
                (true, false) => return Ok(Verdict::Rejected("duplicate")),
                // The operator reports a trip the app already claimed: top up, never reverse.
                (true, true) if other.status != "flagged" => supersedes = Some(other),
                _ => {
                    if !flags.iter().any(|f| f == "overlap") {
                        flags.push("overlap".to_string());
                    }
                }
            }
        }
    }
    if !flags.is_empty() {
        return Ok(Verdict::Flagged(flags));
    }
    Ok(match supersedes {
        Some(app) => Verdict::Credit {
            reasons: vec!["supersedes_app_record".into()],
            already_granted_g: app.granted_g,
            already_points: app.points,
        },
        None => Verdict::Credit {
            reasons: Vec::new(),
            already_granted_g: 0,
            already_points: 0,
        },
    })
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

/// Takes what the caps allow. Returns (status, granted_g, points, reasons); issuing is the caller's.
pub fn credit(
    conn: &mut AnyConnection,
    settings: &ActivitySettings,
    grant: &Grant<'_>,
    q: &Quantified,
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
    let granted = caps::grant_daily(conn, account_id, activity_type, &day, want, q.version.daily_cap_g)?;
    let mut reasons = Vec::new();
    if granted < want {
        reasons.push("cap_reached".to_string());
    }
    let weight = q.version.weights.weight(evidence);
    let total_points = points_for(already_granted + granted, q.quantity.points_per_gram, weight);
    let want_points = (total_points - already_points).max(0);
    let points = caps::grant_annual(
        conn,
        account_id,
        rules::local_year(occurred_at),
        want_points,
        settings.annual_points_cap,
    )?;
    if points < want_points {
        reasons.push("annual_cap_reached".to_string());
    }
    let status = if want > 0 && granted == 0 {
        "capped"
    } else {
        "credited"
    };
    Ok((status, granted, points, reasons))
}

/// Decides and writes one event inside the caller's transaction; see the module notes on failures.
pub fn ingest(conn: &mut AnyConnection, cx: &mut Context<'_>, event: &Event) -> Result<Outcome, Failure> {
    let account_id = event.poster.account_id;
    if let Some(stored) =
        store::replay_of(conn, account_id, &event.client_event_id).map_err(Failure::abandon)?
    {
        return replay(stored, event).map_err(Failure::refused);
    }
    let (start, end) = event.interval;
    let quantified = &event.quantified;
    let verdict = match quantified {
        None => Verdict::Rejected("late"),
        Some(_) => judge(conn, cx.settings, event, start, end).map_err(Failure::abandon)?,
    };
    let issuance_account = match (&verdict, quantified) {
        (Verdict::Credit { .. }, Some(_)) => Some(
            cx.issuance
                .id(conn, &event.region_code)
                .map_err(Failure::abandon)?,
        ),
        _ => None,
    };

    // Everything below writes.
    let reduction_g = quantified.as_ref().map_or(0, |q| q.quantity.reduction_g);
    let (status, granted_g, points, reasons) = match (&verdict, quantified) {
        (Verdict::Rejected(why), _) => ("rejected", 0, 0, vec![why.to_string()]),
        (Verdict::Flagged(flags), _) => ("flagged", 0, 0, flags.clone()),
        (
            Verdict::Credit {
                reasons: base,
                already_granted_g,
                already_points,
            },
            Some(q),
        ) => {
            let grant = Grant {
                account_id,
                activity_type: &event.activity_type,
                occurred_at: event.occurred_at,
                evidence: event.evidence,
                already: (*already_granted_g, *already_points),
            };
            let (status, granted, points, mut reasons) =
                credit(conn, cx.settings, &grant, q).map_err(Failure::abandon)?;
            reasons.splice(0..0, base.iter().cloned());
            (status, granted, points, reasons)
        }
        (Verdict::Credit { .. }, None) => ("rejected", 0, 0, vec!["late".to_string()]),
    };
    let inserted = diesel::insert_into(activities::table)
        .values((
            activities::account_id.eq(account_id),
            activities::user_id.eq(event.poster.user_id),
            activities::client_event_id.eq(&event.client_event_id),
            activities::request_hash.eq(&event.request_hash),
            activities::activity_type.eq(&event.activity_type),
            activities::region_code.eq(&event.region_code),
            activities::occurred_at.eq(start),
            activities::ended_at.eq(Some(end)),
            activities::local_day.eq(&event.local_day),
            activities::evidence.eq(event.evidence.as_str()),
            activities::provider_id.eq(event.poster.provider_id),
            activities::data.eq(&event.data_json),
            activities::status.eq(status),
            activities::reasons.eq(serde_json::to_string(&reasons).unwrap_or_default()),
            activities::methodology_id.eq(quantified.as_ref().map(|q| q.version.id)),
            activities::reduction_g.eq(reduction_g),
            activities::granted_g.eq(granted_g),
            activities::points.eq(points),
            activities::breakdown.eq(Some(&event.breakdown_json)),
            activities::response.eq(""),
            activities::created_at.eq(cx.now),
        ))
        .returning(activities::id)
        .get_result::<i64>(conn);
    let id = match inserted {
        Ok(id) => id,
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            return Err(Failure::abandon(ApiError::conflict(
                RACE,
                "the same event is being stored concurrently",
            )))
        }
        Err(e) => return Err(Failure::abandon(e)),
    };
    let transfer_id = match issuance_account {
        Some(source) if points > 0 => Some(
            ledger::issue_from(conn, source, account_id, points, &Cause::of("activity", id))
                .map_err(Failure::abandon)?
                .id,
        ),
        _ => None,
    };
    let result = ActivityResult {
        activity_id: id.to_string(),
        status: status.to_string(),
        reduction_g,
        granted_g,
        points,
        methodology: quantified.as_ref().map(Quantified::methodology),
        reasons,
        breakdown: quantified
            .as_ref()
            .map(|q| q.quantity.breakdown.clone())
            .unwrap_or_default(),
    };
    let response = serde_json::to_string(&result).map_err(|e| Failure::abandon(ApiError::internal(e)))?;
    store::set_answer(conn, id, transfer_id, &response).map_err(Failure::abandon)?;
    Ok(Outcome::Created(result))
}
