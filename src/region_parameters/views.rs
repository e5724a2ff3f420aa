//! The JSON shapes of region-parameter versions and of the values in force.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::store::{ParameterRow, ParameterStatus};

#[derive(Debug, Serialize, ToSchema)]
pub struct ParameterVersionView {
    pub id: String,
    pub region_code: String,
    pub status: ParameterStatus,
    pub effective_from: DateTime<Utc>,
    /// The region's own values, name → decimal string; names left out are inherited.
    #[schema(value_type = Object)]
    pub values: BTreeMap<String, String>,
    pub citation: String,
    pub drafted_by: Option<String>,
    pub approved_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
}

impl From<&ParameterRow> for ParameterVersionView {
    fn from(row: &ParameterRow) -> ParameterVersionView {
        ParameterVersionView {
            id: row.id.to_string(),
            region_code: row.region_code.clone(),
            status: row.status,
            effective_from: row.effective_from.and_utc(),
            values: row.values(),
            citation: row.citation.clone(),
            drafted_by: row.drafted_by.map(|u| u.to_string()),
            approved_by: row.approved_by.map(|u| u.to_string()),
            created_at: row.created_at.and_utc(),
            activated_at: row.activated_at.map(|t| t.and_utc()),
        }
    }
}

impl ParameterVersionView {
    /// The view as audited: the state before or after a change.
    pub fn audited(row: &ParameterRow) -> serde_json::Value {
        serde_json::to_value(ParameterVersionView::from(row)).unwrap_or(serde_json::Value::Null)
    }
}

/// One value in force and where it comes from.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValueInForce {
    /// A decimal string.
    pub value: String,
    /// The version that sets it; null for a built-in default (no version up the hierarchy sets it).
    pub version_id: Option<String>,
    /// The region of that version: the asked region's own, or the ancestor it is inherited from.
    pub region_code: Option<String>,
}

/// The values in force for a region at an instant.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParametersInForce {
    pub region_code: String,
    pub at: DateTime<Utc>,
    /// The most specific version in force (what an activity here at `at` records).
    pub region_parameters_id: Option<String>,
    #[schema(value_type = Object)]
    pub values: BTreeMap<String, ValueInForce>,
}
