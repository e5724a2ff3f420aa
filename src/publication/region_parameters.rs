//! The published content of a region-parameter version: the values a region set, from when, and where
//! the values it leaves unset come from.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::schema::region_parameter_versions as versions;
use crate::db::AnyConnection;
use crate::methodology::store::find_region;
use crate::region_parameters::store::{self, ParameterRow, ParameterStatus};

/// The JWS `typ` of a published region-parameter version.
pub const TYP: &str = "tanhui-region-parameters+json";

/// A region-parameter version as published. It is in force for its region (and, where they set nothing
/// of their own, the regions under it) from `effective_from` until the next active version of its region
/// starts; a value it leaves unset is its parent region's at the same instant (`inherits_from`).
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedRegionParameters {
    pub issuer: &'static str,
    pub id: String,
    pub region_code: String,
    /// The region whose values apply where this version sets none (`null`: the nation, which falls back
    /// to the built-in defaults).
    pub inherits_from: Option<String>,
    pub status: ParameterStatus,
    pub effective_from: DateTime<Utc>,
    /// Each name's value (a decimal string) and unit.
    pub values: BTreeMap<String, PublishedValue>,
    pub citation: String,
    /// The version of the same region this one follows, if any.
    pub replaces: Option<String>,
    pub activated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedValue {
    pub value: String,
    /// The unit of a built-in name; a name an administrator defined for formulas has none stated.
    pub unit: Option<&'static str>,
}

/// The units of the names the platform itself reads.
fn unit_of(name: &str) -> Option<&'static str> {
    match name {
        "points_per_gram" => Some("points/g"),
        "grid_ef_g_per_kwh" => Some("g CO2/kWh"),
        "points_validity_days" => Some("days"),
        "trading_enabled" => Some("0 or 1"),
        _ => None,
    }
}

/// The published document of version `id`: `None` unless it is active (drafts are not rules).
pub fn published(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<PublishedRegionParameters>> {
    let Some(row) = store::find(conn, id)?.filter(|r| r.status == ParameterStatus::Active) else {
        return Ok(None);
    };
    let inherits_from = find_region(conn, &row.region_code)?.and_then(|r| r.parent_code);
    let replaces: Option<i64> = versions::table
        .filter(versions::region_code.eq(&row.region_code))
        .filter(versions::status.eq(ParameterStatus::Active))
        .filter(versions::effective_from.lt(row.effective_from))
        .order((versions::effective_from.desc(), versions::activated_at.desc()))
        .select(versions::id)
        .first(conn)
        .optional()?;
    Ok(Some(document(row, inherits_from, replaces)))
}

fn document(
    row: ParameterRow,
    inherits_from: Option<String>,
    replaces: Option<i64>,
) -> PublishedRegionParameters {
    let values = row
        .values()
        .into_iter()
        .map(|(name, value)| {
            let unit = unit_of(&name);
            (name, PublishedValue { value, unit })
        })
        .collect();
    PublishedRegionParameters {
        issuer: crate::redemptions::voucher::ISSUER,
        id: row.id.to_string(),
        region_code: row.region_code,
        inherits_from,
        status: row.status,
        effective_from: row.effective_from.and_utc(),
        values,
        citation: row.citation,
        replaces: replaces.map(|id| id.to_string()),
        activated_at: row.activated_at.map(|t| t.and_utc()),
    }
}
