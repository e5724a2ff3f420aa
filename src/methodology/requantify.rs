//! Re-quantifying a stored activity with the version it recorded, so its figures can be reproduced: by
//! the review queue when it credits a flagged activity, by an administrator asking for it, and by
//! `tanhui verify` for every activity.

use std::sync::Arc;

use chrono::NaiveDateTime;

use super::quantify::{quantify_error, Quantified};
use super::store;
use crate::db::AnyConnection;
use crate::domain::catalog::{points_for, Catalog, Evidence, QuantifyError, Version};
use crate::domain::data_schema::{exact_decimal, DataValues};
use crate::error::ApiError;

/// What re-quantifying needs of a stored activity.
#[derive(Debug, Clone, diesel::Queryable)]
pub struct Recorded {
    pub id: i64,
    pub methodology_id: Option<i64>,
    pub region_code: String,
    pub occurred_at: NaiveDateTime,
    pub evidence: Evidence,
    /// The request's `data`, as stored (JSON).
    pub data: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RequantifyError {
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("activity {0} names a missing version")]
    MissingVersion(i64),
    /// The stored version no longer parses.
    #[error("{0}")]
    BrokenVersion(String),
    /// The catalog refuses the stored data under its own version.
    #[error(transparent)]
    Quantify(#[from] QuantifyError),
}

impl From<RequantifyError> for ApiError {
    fn from(e: RequantifyError) -> ApiError {
        match e {
            RequantifyError::Query(e) => e.into(),
            RequantifyError::Quantify(e) => quantify_error(e),
            e @ (RequantifyError::MissingVersion(_) | RequantifyError::BrokenVersion(_)) => {
                ApiError::internal(anyhow::anyhow!(e.to_string()))
            }
        }
    }
}

/// The numbers of an activity's stored `data` (its request's JSON), read back exactly.
pub fn stored_values(data: &str) -> DataValues {
    let data: serde_json::Map<String, serde_json::Value> = serde_json::from_str(data).unwrap_or_default();
    data.iter()
        .filter_map(|(k, v)| exact_decimal(v).map(|d| (k.clone(), d)))
        .collect()
}

/// The activity's quantification under the version it recorded (`None`: it recorded none, being late).
pub fn requantify(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    activity: &Recorded,
) -> Result<Option<Quantified>, RequantifyError> {
    let Some(version_id) = activity.methodology_id else {
        return Ok(None);
    };
    let version = recorded_version(conn, activity.id, version_id)?;
    requantify_under(catalog, Arc::new(version), activity, true).map(Some)
}

/// Version `version_id`, which activity `activity_id` recorded, parsed.
pub fn recorded_version(
    conn: &mut AnyConnection,
    activity_id: i64,
    version_id: i64,
) -> Result<Version, RequantifyError> {
    store::find_version(conn, version_id)?
        .ok_or(RequantifyError::MissingVersion(activity_id))?
        .to_version()
        .map_err(RequantifyError::BrokenVersion)
}

/// The activity's quantification under `version` (the one it recorded, which a caller checking many
/// activities keeps at hand), with its breakdown when `explain`.
pub fn requantify_under(
    catalog: &Catalog,
    version: Arc<Version>,
    activity: &Recorded,
    explain: bool,
) -> Result<Quantified, RequantifyError> {
    let values = stored_values(&activity.data);
    let quantity = catalog.quantify(
        &version,
        &activity.region_code,
        activity.occurred_at,
        &values,
        explain,
    )?;
    let points = points_for(
        quantity.reduction_g,
        quantity.points_per_gram,
        version.weights.weight(activity.evidence),
    )
    .map_err(QuantifyError::from)?;
    Ok(Quantified {
        version,
        quantity,
        data: values,
        points,
    })
}
