//! Simulating a (draft) version against stored activities before activating it.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::requantify::{requantify, Recorded, RequantifyError};
use super::store;
use crate::config::MOST_FUTURE_SKEW_SECS;
use crate::db::schema::activities;
use crate::db::{self, AnyConnection, Tx};
use crate::domain::catalog::{Catalog, Version};
use crate::error::ApiError;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulateRequest {
    #[serde(deserialize_with = "crate::http::timestamp::required")]
    pub from: DateTime<FixedOffset>,
    #[serde(deserialize_with = "crate::http::timestamp::required")]
    pub to: DateTime<FixedOffset>,
    /// Only activities in this region (or below it).
    pub region_code: Option<String>,
}

#[derive(Debug, Default, Serialize, ToSchema, Clone)]
pub struct RegionTotals {
    pub region_code: String,
    pub activities: i64,
    pub current_total_g: i64,
    pub draft_total_g: i64,
    pub delta_g: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Simulation {
    /// Activities the draft would quantify once active (no nearer region's version, nor a later one of
    /// its own region, takes them), re-quantified under both.
    pub activities: i64,
    /// Under the versions they were credited under (recomputed; equal to what was stored).
    pub current_total_g: i64,
    pub draft_total_g: i64,
    pub delta_g: i64,
    /// Activities the draft cannot quantify (for example a field its formula needs is missing).
    pub skipped: i64,
    pub by_region: Vec<RegionTotals>,
}

/// Why a simulation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("to must be after from")]
    EmptyWindow,
    #[error("unknown region")]
    UnknownRegion,
    #[error("no such methodology version")]
    NoSuchVersion,
    /// The stored version no longer parses.
    #[error("{0}")]
    BrokenVersion(String),
    #[error(transparent)]
    Requantify(#[from] RequantifyError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

impl From<SimulateError> for ApiError {
    fn from(e: SimulateError) -> ApiError {
        match e {
            SimulateError::EmptyWindow => ApiError::field("to", "must be after from"),
            SimulateError::UnknownRegion => ApiError::field("region_code", "unknown region"),
            SimulateError::NoSuchVersion => ApiError::not_found("no such methodology version"),
            SimulateError::BrokenVersion(why) => ApiError::internal(anyhow::anyhow!(why)),
            SimulateError::Requantify(e) => e.into(),
            SimulateError::Query(e) => e.into(),
        }
    }
}

pub fn simulate(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    version_id: i64,
    req: &SimulateRequest,
) -> Result<Simulation, SimulateError> {
    if req.to <= req.from {
        return Err(SimulateError::EmptyWindow);
    }
    if let Some(region) = &req.region_code {
        if catalog.region(region).is_none() {
            return Err(SimulateError::UnknownRegion);
        }
    }
    db::transaction(conn, Tx::Snapshot, |conn| {
        let draft = store::find_version(conn, version_id)?
            .ok_or(SimulateError::NoSuchVersion)?
            .to_version()
            .map_err(SimulateError::BrokenVersion)?;
        let (by_region, skipped) = totals_by_region(conn, catalog, &draft, req)?;
        let total =
            |grams: fn(&RegionTotals) -> i64| by_region.iter().map(grams).fold(0i64, i64::saturating_add);
        let current_total_g = total(|r| r.current_total_g);
        let draft_total_g = total(|r| r.draft_total_g);
        Ok(Simulation {
            activities: by_region.iter().map(|r| r.activities).sum(),
            current_total_g,
            draft_total_g,
            delta_g: draft_total_g.saturating_sub(current_total_g),
            skipped,
            by_region,
        })
    })
}

/// Re-quantifies, under their own versions and under the draft, the activities the draft would take in
/// the window asked for; totals by region, in region order, and how many the draft could not quantify.
fn totals_by_region(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    draft: &Version,
    req: &SimulateRequest,
) -> Result<(Vec<RegionTotals>, i64), SimulateError> {
    // The window the draft would cover, within what was asked.
    let from = req.from.naive_utc().max(draft.effective_from);
    let to = draft
        .effective_to
        .map_or(req.to.naive_utc(), |end| end.min(req.to.naive_utc()));
    // Only the activities the draft would quantify once active: not those a version of a nearer
    // region, or a later one of its own region, would still take.
    let activated = catalog.with_active(draft.clone());
    let draft_takes = |region: &str, at| {
        activated
            .version_in_force(&draft.activity_type, region, at)
            .is_ok_and(|v| v.id == draft.id)
    };
    let mut totals: BTreeMap<String, RegionTotals> = BTreeMap::new();
    let mut skipped = 0;
    if from >= to {
        return Ok((Vec::new(), skipped));
    }
    for activity in in_window(conn, &draft.activity_type, from, to)? {
        let region = &activity.region_code;
        let in_scope = draft_takes(region, activity.occurred_at)
            && req
                .region_code
                .as_ref()
                .is_none_or(|r| catalog.is_within(region, r));
        if !in_scope {
            continue;
        }
        let Some(current) = requantify(conn, catalog, &activity)? else {
            continue;
        };
        // The stored data, already read back exactly by `requantify`.
        let Ok(proposed) = catalog.quantify(draft, region, activity.occurred_at, &current.data, false) else {
            skipped += 1;
            continue;
        };
        let t = totals.entry(region.clone()).or_insert_with(|| RegionTotals {
            region_code: region.clone(),
            ..RegionTotals::default()
        });
        t.activities += 1;
        // Saturating: an admin-made type without bounds on its data can give any i64 grams.
        t.current_total_g = t.current_total_g.saturating_add(current.quantity.reduction_g);
        t.draft_total_g = t.draft_total_g.saturating_add(proposed.reduction_g);
        t.delta_g = t.draft_total_g.saturating_sub(t.current_total_g);
    }
    Ok((totals.into_values().collect(), skipped))
}

/// Quantified activities of a type that occurred in [from, to).
///
/// Read through the index of the type's activities by arrival (`created_at`), which every insert appends
/// to: no activity is stored before it occurred, beyond the clock skew allowed, so those of the window
/// arrived after `from - MOST_FUTURE_SKEW_SECS`. (Late posts arrive any time after, so only the lower
/// bound is known: a window far in the past reads every later arrival of the type.)
fn in_window(
    conn: &mut AnyConnection,
    activity_type: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<Recorded>> {
    let arrived_from = from - chrono::Duration::seconds(MOST_FUTURE_SKEW_SECS);
    activities::table
        .filter(activities::activity_type.eq(activity_type))
        .filter(activities::created_at.ge(arrived_from))
        .filter(activities::occurred_at.ge(from))
        .filter(activities::occurred_at.lt(to))
        .filter(activities::methodology_id.is_not_null())
        .select((
            activities::id,
            activities::methodology_id,
            activities::region_code,
            activities::occurred_at,
            activities::evidence,
            activities::data,
        ))
        .order(activities::id)
        .load(conn)
}
