//! One event, start to finish, inside the caller's transaction: replay check, plausibility, quantification,
//! caps, storage and issuance. Either all of it is written or none of it.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::request::Event;
use super::store::{self, ActivityRow};
use super::{caps, rules};
use crate::config::ActivitySettings;
use crate::db::schema::activities;
use crate::db::{self, AnyConnection, Tx};
use crate::domain::catalog::{points_for, Catalog, Evidence};
use crate::domain::formula::Step;
use crate::error::ApiError;
use crate::ledger::service::{self as ledger, Cause};
use crate::methodology::quantify::{quantify, Quantified};
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

/// A concurrent insert of the same (account, client_event_id) on another connection won the race.
const RACE: &str = "client_event_race";

/// Ingests one event in a savepoint of the caller's transaction. Losing an insert race to another
/// instance is retried once, which then finds the stored event and replays it.
pub fn ingest_event(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    settings: &ActivitySettings,
    event: &Event,
    now: NaiveDateTime,
) -> Result<Outcome, ApiError> {
    match db::transaction(conn, Tx::Write, |conn| {
        ingest(conn, catalog, settings, event, now)
    }) {
        Err(e) if e.code == RACE => db::transaction(conn, Tx::Write, |conn| {
            ingest(conn, catalog, settings, event, now)
        }),
        other => other,
    }
}

fn replay(existing: ActivityRow, event: &Event) -> Result<Outcome, ApiError> {
    if existing.request_hash == event.request_hash {
        Ok(Outcome::Replayed(existing.response))
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
    let mut supersedes = None;
    if rules::is_travel(&event.activity_type) {
        for other in store::overlapping(conn, event.poster.account_id, start, end)? {
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

fn ingest(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    settings: &ActivitySettings,
    event: &Event,
    now: NaiveDateTime,
) -> Result<Outcome, ApiError> {
    if let Some(existing) = store::find_by_client_id(conn, event.poster.account_id, &event.client_event_id)? {
        return replay(existing, event);
    }
    let kind = catalog
        .activity_type(&event.activity_type)
        .ok_or_else(|| ApiError::unprocessable("unknown_activity_type", "unknown activity type"))?;
    let (start, end) = rules::interval(event.occurred_at, event.ended_at, &event.values);
    let late = rules::is_late(event.occurred_at, now, kind.claim_window_days);
    let quantified = if late {
        None
    } else {
        Some(quantify(
            catalog,
            &event.activity_type,
            &event.region_code,
            event.occurred_at,
            &event.data,
            event.evidence,
            true,
        )?)
    };
    let verdict = match &quantified {
        None => Verdict::Rejected("late"),
        Some(_) => judge(conn, settings, event, start, end)?,
    };
    let reduction_g = quantified.as_ref().map_or(0, |q| q.quantity.reduction_g);
    let (status, granted_g, points, reasons) = match (&verdict, &quantified) {
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
                account_id: event.poster.account_id,
                activity_type: &event.activity_type,
                occurred_at: event.occurred_at,
                evidence: event.evidence,
                already: (*already_granted_g, *already_points),
            };
            let (status, granted, points, mut reasons) = credit(conn, settings, &grant, q)?;
            reasons.splice(0..0, base.iter().cloned());
            (status, granted, points, reasons)
        }
        (Verdict::Credit { .. }, None) => ("rejected", 0, 0, vec!["late".to_string()]),
    };
    let breakdown = quantified
        .as_ref()
        .map(|q| q.quantity.breakdown.clone())
        .unwrap_or_default();
    let inserted = diesel::insert_into(activities::table)
        .values((
            activities::account_id.eq(event.poster.account_id),
            activities::user_id.eq(event.poster.user_id),
            activities::client_event_id.eq(&event.client_event_id),
            activities::request_hash.eq(&event.request_hash),
            activities::activity_type.eq(&event.activity_type),
            activities::region_code.eq(&event.region_code),
            activities::occurred_at.eq(start),
            activities::ended_at.eq(Some(end)),
            activities::local_day.eq(rules::local_day(event.occurred_at)),
            activities::evidence.eq(event.evidence.as_str()),
            activities::provider_id.eq(event.poster.provider_id),
            activities::data.eq(serde_json::Value::Object(event.data.clone()).to_string()),
            activities::status.eq(status),
            activities::reasons.eq(serde_json::to_string(&reasons).unwrap_or_default()),
            activities::methodology_id.eq(quantified.as_ref().map(|q| q.version.id)),
            activities::reduction_g.eq(reduction_g),
            activities::granted_g.eq(granted_g),
            activities::points.eq(points),
            activities::breakdown.eq(serde_json::to_string(&breakdown).ok()),
            activities::response.eq(""),
            activities::created_at.eq(now),
        ))
        .returning(activities::id)
        .get_result::<i64>(conn);
    let id = match inserted {
        Ok(id) => id,
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            return Err(ApiError::conflict(
                RACE,
                "the same event is being stored concurrently",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let transfer_id = if points > 0 {
        Some(
            ledger::issue(
                conn,
                &event.region_code,
                event.poster.account_id,
                points,
                &Cause::of("activity", id),
            )?
            .id,
        )
    } else {
        None
    };
    let result = ActivityResult {
        activity_id: id.to_string(),
        status: status.to_string(),
        reduction_g,
        granted_g,
        points,
        methodology: quantified.as_ref().map(Quantified::methodology),
        reasons,
        breakdown,
    };
    diesel::update(activities::table.find(id))
        .set((
            activities::transfer_id.eq(transfer_id),
            activities::response.eq(serde_json::to_string(&result).map_err(ApiError::internal)?),
        ))
        .execute(conn)?;
    Ok(Outcome::Created(result))
}
