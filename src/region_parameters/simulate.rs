//! What a region-parameter draft would change: the stored activities of its region (and below) over a
//! window, quantified and priced under the values in force and under the draft's, as if the draft had been
//! in force from the window's start. Nothing changes.

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;
use utoipa::ToSchema;

use super::store;
use crate::db::{self, AnyConnection, Tx};
use crate::domain::catalog::Catalog;
use crate::governance::{OutOfScope, Scope};
use crate::methodology::impact::{self, check_window, Filter, Simulation, WindowError};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParameterSimulationRequest {
    #[serde(deserialize_with = "crate::http::timestamp::required")]
    pub from: DateTime<FixedOffset>,
    #[serde(deserialize_with = "crate::http::timestamp::required")]
    pub to: DateTime<FixedOffset>,
    /// Only activities in this region (or below it), which must lie within the draft's region.
    pub region_code: Option<String>,
    /// Only activities of this type (default: every type).
    pub activity_type: Option<String>,
}

/// Why a simulation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ParameterSimulationError {
    #[error(transparent)]
    Window(#[from] WindowError),
    #[error("region_code must be the draft's region or lie below it")]
    OutsideDraft,
    #[error("unknown activity type")]
    UnknownActivityType,
    #[error("no such region-parameter version")]
    NotFound,
    #[error(transparent)]
    OutOfScope(#[from] OutOfScope),
    #[error("{0}")]
    BrokenVersion(String),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

/// Compares the window's activities of the draft's region under the catalog in force and under the catalog
/// with the draft in force from the window's start (as the latest version of its region). `scope` must
/// cover the draft's region.
pub fn simulate(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    scope: &Scope,
    id: i64,
    req: &ParameterSimulationRequest,
) -> Result<Simulation, ParameterSimulationError> {
    check_window(req.from.naive_utc(), req.to.naive_utc())?;
    if let Some(code) = &req.activity_type {
        catalog
            .activity_type(code)
            .ok_or(ParameterSimulationError::UnknownActivityType)?;
    }
    db::transaction(conn, Tx::Snapshot, |conn| {
        let row = store::find(conn, id)?.ok_or(ParameterSimulationError::NotFound)?;
        scope.check(&row.region_code)?;
        let region = match &req.region_code {
            Some(code) if catalog.is_within(code, &row.region_code) => code.clone(),
            Some(_) => return Err(ParameterSimulationError::OutsideDraft),
            None => row.region_code.clone(),
        };
        let mut draft = row
            .to_version()
            .map_err(ParameterSimulationError::BrokenVersion)?;
        draft.effective_from = req.from.naive_utc();
        draft.activated_at = None;
        let candidate = catalog.with_region_parameters(draft);
        let filter = Filter {
            activity_type: req.activity_type.clone(),
            from: req.from.naive_utc(),
            to: req.to.naive_utc(),
            region_code: Some(region),
            taken_by: None,
        };
        Ok(impact::compare(conn, catalog, &candidate, &filter)?)
    })
}
