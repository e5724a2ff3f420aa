//! Simulating a (draft) version against stored activities before activating it.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::store;
use crate::activities::review::requantify;
use crate::activities::store as activities;
use crate::db::{self, AnyConnection, Tx};
use crate::domain::catalog::Catalog;
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

pub fn simulate(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    version_id: i64,
    req: &SimulateRequest,
) -> Result<Simulation, ApiError> {
    if req.to <= req.from {
        return Err(ApiError::field("to", "must be after from"));
    }
    if let Some(region) = &req.region_code {
        if catalog.region(region).is_none() {
            return Err(ApiError::field("region_code", "unknown region"));
        }
    }
    db::transaction(conn, Tx::Snapshot, |conn| {
        let row = store::find_version(conn, version_id)?
            .ok_or_else(|| ApiError::not_found("no such methodology version"))?;
        let draft = row
            .to_version()
            .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
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
        if from < to {
            for activity in activities::in_window(conn, &draft.activity_type, from, to)? {
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
                let Ok(proposed) =
                    catalog.quantify(&draft, region, activity.occurred_at, &current.data, false)
                else {
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
        }
        let by_region: Vec<RegionTotals> = totals.into_values().collect();
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
