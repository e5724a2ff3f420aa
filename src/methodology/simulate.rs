//! Simulating a methodology draft against stored activities before activating it: the catalog in force
//! now against the same catalog with the draft active.

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;
use utoipa::ToSchema;

use super::impact::{self, check_window, Filter, Simulation, WindowError};
use super::store;
use crate::db::{self, AnyConnection, Tx};
use crate::domain::catalog::Catalog;
use crate::error::ApiError;
use crate::governance::scope::{OutOfScope, Scope};

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

/// Why a simulation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error(transparent)]
    Window(#[from] WindowError),
    #[error("unknown region")]
    UnknownRegion,
    #[error("no such methodology version")]
    NoSuchVersion,
    #[error(transparent)]
    OutOfScope(#[from] OutOfScope),
    /// The stored version no longer parses.
    #[error("{0}")]
    BrokenVersion(String),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

impl From<SimulateError> for ApiError {
    fn from(e: SimulateError) -> ApiError {
        match e {
            SimulateError::Window(e) => ApiError::field("to", e.to_string()),
            SimulateError::UnknownRegion => ApiError::field("region_code", "unknown region"),
            SimulateError::NoSuchVersion => ApiError::not_found("no such methodology version"),
            SimulateError::OutOfScope(e) => e.into(),
            SimulateError::BrokenVersion(why) => ApiError::internal(anyhow::anyhow!(why)),
            SimulateError::Query(e) => e.into(),
        }
    }
}

/// Compares, over the window asked for, what the activities the draft would take earn now and what
/// they would earn under it. `scope` must cover the draft's region.
pub fn simulate(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    scope: &Scope,
    version_id: i64,
    req: &SimulateRequest,
) -> Result<Simulation, SimulateError> {
    check_window(req.from.naive_utc(), req.to.naive_utc())?;
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
        scope.check(&draft.region_code)?;
        // The window the draft would cover, within what was asked; only the activities the draft would
        // quantify once active (not those a version of a nearer region, or a later one of its own
        // region, would still take).
        let filter = Filter {
            activity_type: Some(draft.activity_type.clone()),
            from: req.from.naive_utc().max(draft.effective_from),
            to: draft
                .effective_to
                .map_or(req.to.naive_utc(), |end| end.min(req.to.naive_utc())),
            region_code: req.region_code.clone(),
            taken_by: Some(draft.id),
        };
        let candidate = catalog.with_active(draft);
        Ok(impact::compare(conn, catalog, &candidate, &filter)?)
    })
}
