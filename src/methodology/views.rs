//! The JSON shapes of regions, activity types and methodology versions.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::store::{ActivityTypeRow, MethodologyStatus, Parameters, RegionRow, VersionRow};
use crate::domain::catalog::EvidenceWeights;

pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegionView {
    pub code: String,
    pub name: String,
    pub name_en: String,
    pub parent_code: Option<String>,
    /// nation, province or city
    pub level: String,
    /// east, central or west (NBS three belts)
    pub macro_region: Option<String>,
    /// east, central, west or northeast (NBS since 2011)
    pub nbs_region: Option<String>,
    pub grid_region: Option<String>,
    /// The rate in force here now: the region parameter `points_per_gram`, inherited down the hierarchy
    /// (decimal string).
    pub points_per_gram: String,
}

impl RegionView {
    pub fn new(row: RegionRow, points_per_gram: String) -> RegionView {
        RegionView {
            code: row.code,
            name: row.name,
            name_en: row.name_en,
            parent_code: row.parent_code,
            level: row.level,
            macro_region: row.macro_region,
            nbs_region: row.nbs_region,
            grid_region: row.grid_region,
            points_per_gram,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityTypeView {
    pub code: String,
    pub name: String,
    pub unit: String,
    #[schema(value_type = Object)]
    pub data_schema: serde_json::Value,
    pub claim_window_days: i32,
    /// A person does one travel activity at a time: overlapping trips are flagged.
    pub travel: bool,
    /// Average speeds above this flag an activity for review.
    pub max_speed_kmh: Option<i32>,
}

impl From<ActivityTypeRow> for ActivityTypeView {
    fn from(row: ActivityTypeRow) -> ActivityTypeView {
        ActivityTypeView {
            data_schema: serde_json::from_str(&row.data_schema).unwrap_or(serde_json::Value::Null),
            code: row.code,
            name: row.name,
            unit: row.unit,
            claim_window_days: row.claim_window_days,
            travel: row.travel,
            max_speed_kmh: row.max_speed_kmh,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    pub id: String,
    pub activity_type: String,
    pub region_code: String,
    pub version: i32,
    pub status: MethodologyStatus,
    pub effective_from: DateTime<Utc>,
    pub effective_to: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub parameters: Parameters,
    pub formula: String,
    pub daily_cap_g: Option<i64>,
    #[schema(value_type = Object)]
    pub evidence_weights: EvidenceWeights,
    pub citation: String,
    pub drafted_by: Option<String>,
    pub approved_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
    /// Who asked to retire this active version, awaiting a second administrator's approval.
    pub retire_requested_by: Option<String>,
    pub retire_requested_at: Option<DateTime<Utc>>,
}

impl From<VersionRow> for VersionView {
    fn from(row: VersionRow) -> VersionView {
        VersionView {
            id: row.id.to_string(),
            parameters: row.parameters(),
            evidence_weights: row.weights(),
            activity_type: row.activity_type,
            region_code: row.region_code,
            version: row.version,
            status: row.status,
            effective_from: utc(row.effective_from),
            effective_to: row.effective_to.map(utc),
            formula: row.formula,
            daily_cap_g: row.daily_cap_g,
            citation: row.citation,
            drafted_by: row.drafted_by.map(|u| u.to_string()),
            approved_by: row.approved_by.map(|u| u.to_string()),
            created_at: utc(row.created_at),
            activated_at: row.activated_at.map(utc),
            retired_at: row.retired_at.map(utc),
            retire_requested_by: row.retire_requested_by.map(|u| u.to_string()),
            retire_requested_at: row.retire_requested_at.map(utc),
        }
    }
}

/// Which version produced a figure.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema, PartialEq)]
pub struct MethodologyRef {
    pub id: String,
    pub activity_type: String,
    pub region_code: String,
    pub version: i32,
}
