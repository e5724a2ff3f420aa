//! Queries on regions, grid factors, activity types and methodology versions; the catalog they make with
//! the active region-parameter versions.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use rust_decimal::Decimal;

use crate::db::schema::{activity_types, catalog_epoch, grid_factors, methodology_versions, regions};
use crate::db::AnyConnection;
use crate::domain::catalog::{ActivityTypeInfo, Catalog, EvidenceWeights, RegionInfo, Version, VersionTerms};
use crate::domain::formula::Formula;

crate::text_enum! {
    /// Where a methodology version is in its life: drafted, in force, or retired.
    pub enum MethodologyStatus {
        Draft = "draft",
        Active = "active",
        Retired = "retired",
    }
}

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = regions)]
pub struct RegionRow {
    pub code: String,
    pub name: String,
    pub name_en: String,
    pub parent_code: Option<String>,
    pub level: String,
    pub macro_region: Option<String>,
    pub nbs_region: Option<String>,
    pub grid_region: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = activity_types)]
pub struct ActivityTypeRow {
    pub code: String,
    pub name: String,
    pub unit: String,
    pub data_schema: String,
    pub claim_window_days: i32,
    pub created_at: NaiveDateTime,
    pub travel: bool,
    pub max_speed_kmh: Option<i32>,
}

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = methodology_versions)]
pub struct VersionRow {
    pub id: i64,
    pub activity_type: String,
    pub region_code: String,
    pub version: i32,
    pub status: MethodologyStatus,
    pub effective_from: NaiveDateTime,
    pub effective_to: Option<NaiveDateTime>,
    pub parameters: String,
    pub formula: String,
    pub daily_cap_g: Option<i64>,
    pub evidence_weights: String,
    pub citation: String,
    pub drafted_by: Option<i64>,
    pub approved_by: Option<i64>,
    pub created_at: NaiveDateTime,
    pub activated_at: Option<NaiveDateTime>,
    pub retired_at: Option<NaiveDateTime>,
    /// Who asked to retire this active version, awaiting a second administrator.
    pub retire_requested_by: Option<i64>,
    pub retire_requested_at: Option<NaiveDateTime>,
}

/// A stored parameter: `{"value": "46.7", "unit": "g/pkm", "source": "…"}`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Parameter {
    /// A decimal, as a string.
    pub value: String,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub source: String,
}

pub type Parameters = BTreeMap<String, Parameter>;

impl VersionRow {
    pub fn parameters(&self) -> Parameters {
        serde_json::from_str(&self.parameters).unwrap_or_default()
    }

    pub fn parameter_values(&self) -> BTreeMap<String, Decimal> {
        self.parameters()
            .into_iter()
            .filter_map(|(k, p)| p.value.parse().ok().map(|v| (k, v)))
            .collect()
    }

    pub fn weights(&self) -> EvidenceWeights {
        serde_json::from_str(&self.evidence_weights).unwrap_or_default()
    }

    /// The version ready to evaluate, or why it cannot be.
    pub fn to_version(&self) -> Result<Version, String> {
        let formula = Formula::parse(&self.formula).map_err(|e| e.to_string())?;
        let terms = VersionTerms {
            id: self.id,
            activity_type: self.activity_type.clone(),
            region_code: self.region_code.clone(),
            version: self.version,
            effective_from: self.effective_from,
            effective_to: self.effective_to,
            daily_cap_g: self.daily_cap_g,
            weights: self.weights(),
        };
        Version::new(terms, &self.parameter_values(), formula)
    }
}

pub fn all_regions(conn: &mut AnyConnection) -> QueryResult<Vec<RegionRow>> {
    regions::table
        .order(regions::code)
        .select(RegionRow::as_select())
        .load(conn)
}

pub fn find_region(conn: &mut AnyConnection, code: &str) -> QueryResult<Option<RegionRow>> {
    regions::table
        .find(code)
        .select(RegionRow::as_select())
        .first(conn)
        .optional()
}

pub fn all_activity_types(conn: &mut AnyConnection) -> QueryResult<Vec<ActivityTypeRow>> {
    activity_types::table
        .order(activity_types::code)
        .select(ActivityTypeRow::as_select())
        .load(conn)
}

pub fn find_activity_type(conn: &mut AnyConnection, code: &str) -> QueryResult<Option<ActivityTypeRow>> {
    activity_types::table
        .find(code)
        .select(ActivityTypeRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_version(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<VersionRow>> {
    methodology_versions::table
        .find(id)
        .select(VersionRow::as_select())
        .first(conn)
        .optional()
}

/// Which versions a listing shows; every field left out matches all.
#[derive(Debug, Default, Clone)]
pub struct VersionFilter {
    pub activity_type: Option<String>,
    pub region_code: Option<String>,
    pub status: Option<MethodologyStatus>,
}

pub fn list_versions(
    conn: &mut AnyConnection,
    filter: &VersionFilter,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<VersionRow>> {
    let mut query = methodology_versions::table
        .select(VersionRow::as_select())
        .order(methodology_versions::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(t) = &filter.activity_type {
        query = query.filter(methodology_versions::activity_type.eq(t.clone()));
    }
    if let Some(r) = &filter.region_code {
        query = query.filter(methodology_versions::region_code.eq(r.clone()));
    }
    if let Some(s) = filter.status {
        query = query.filter(methodology_versions::status.eq(s));
    }
    if let Some(before) = before {
        query = query.filter(methodology_versions::id.lt(before));
    }
    query.load(conn)
}

pub fn next_version_number(conn: &mut AnyConnection, activity_type: &str, region: &str) -> QueryResult<i32> {
    let max: Option<i32> = methodology_versions::table
        .filter(methodology_versions::activity_type.eq(activity_type))
        .filter(methodology_versions::region_code.eq(region))
        .select(diesel::dsl::max(methodology_versions::version))
        .first(conn)?;
    Ok(max.unwrap_or(0) + 1)
}

/// Moves a version from one status to another if it is still in `from`; false when it was not.
pub fn transition(
    conn: &mut AnyConnection,
    id: i64,
    from: &[MethodologyStatus],
    to: MethodologyStatus,
    approver: Option<i64>,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let target = methodology_versions::table
        .find(id)
        .filter(methodology_versions::status.eq_any(from.to_vec()));
    let n = if to == MethodologyStatus::Active {
        diesel::update(target)
            .set((
                methodology_versions::status.eq(to),
                methodology_versions::approved_by.eq(approver),
                methodology_versions::activated_at.eq(at),
            ))
            .execute(conn)?
    } else {
        diesel::update(target)
            .set((
                methodology_versions::status.eq(to),
                methodology_versions::retired_at.eq(at),
            ))
            .execute(conn)?
    };
    Ok(n == 1)
}

/// Records who asked to retire an active version, unless someone already has; false when not recorded.
pub fn request_retire(conn: &mut AnyConnection, id: i64, admin: i64, at: NaiveDateTime) -> QueryResult<bool> {
    let n = diesel::update(
        methodology_versions::table
            .find(id)
            .filter(methodology_versions::status.eq(MethodologyStatus::Active))
            .filter(methodology_versions::retire_requested_by.is_null()),
    )
    .set((
        methodology_versions::retire_requested_by.eq(Some(admin)),
        methodology_versions::retire_requested_at.eq(Some(at)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// The version `row` replaces: the other active version of its type and region in force when it takes
/// effect (the latest `effective_from`, then the highest number, as the catalog chooses).
pub fn replaced_version(conn: &mut AnyConnection, row: &VersionRow) -> QueryResult<Option<VersionRow>> {
    methodology_versions::table
        .filter(methodology_versions::activity_type.eq(&row.activity_type))
        .filter(methodology_versions::region_code.eq(&row.region_code))
        .filter(methodology_versions::status.eq(MethodologyStatus::Active))
        .filter(methodology_versions::id.ne(row.id))
        .filter(methodology_versions::effective_from.le(row.effective_from))
        .filter(
            methodology_versions::effective_to
                .is_null()
                .or(methodology_versions::effective_to.gt(row.effective_from)),
        )
        .order((
            methodology_versions::effective_from.desc(),
            methodology_versions::version.desc(),
        ))
        .select(VersionRow::as_select())
        .first(conn)
        .optional()
}

/// Marks the catalog changed; committed with the change itself, so no instance can see one without the other.
pub fn bump_epoch(conn: &mut AnyConnection) -> QueryResult<()> {
    diesel::update(catalog_epoch::table.find(1))
        .set(catalog_epoch::epoch.eq(catalog_epoch::epoch + 1))
        .execute(conn)
        .map(|_| ())
}

pub fn epoch(conn: &mut AnyConnection) -> QueryResult<i64> {
    catalog_epoch::table
        .find(1)
        .select(catalog_epoch::epoch)
        .first(conn)
}

/// Reads everything quantification needs. Rows that cannot be used (which validation on save prevents)
/// are logged and left out rather than taking the whole catalog down.
pub fn load_catalog(conn: &mut AnyConnection) -> QueryResult<Catalog> {
    let regions = all_regions(conn)?
        .into_iter()
        .map(|r| RegionInfo {
            code: r.code,
            parent: r.parent_code,
            grid_region: r.grid_region,
        })
        .collect();
    let grid: Vec<(String, i32, String)> = grid_factors::table
        .select((
            grid_factors::grid_region,
            grid_factors::year,
            grid_factors::g_per_kwh,
        ))
        .load(conn)?;
    let grid = grid
        .into_iter()
        .filter_map(|(g, y, f)| f.parse().ok().map(|f| (g, y, f)))
        .collect();
    let types = all_activity_types(conn)?
        .into_iter()
        .filter_map(|t| match t.data_schema.parse() {
            Ok(schema) => Some(ActivityTypeInfo {
                code: t.code,
                schema,
                claim_window_days: i64::from(t.claim_window_days),
                travel: t.travel,
                max_speed_kmh: t.max_speed_kmh.and_then(|s| u32::try_from(s).ok()),
            }),
            Err(e) => {
                tracing::error!(code = %t.code, error = ?e, "activity type has an unusable schema");
                None
            }
        })
        .collect();
    let versions = methodology_versions::table
        .filter(methodology_versions::status.eq(MethodologyStatus::Active))
        .select(VersionRow::as_select())
        .load(conn)?
        .into_iter()
        .filter_map(|row| match row.to_version() {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(id = row.id, error = %e, "methodology version cannot be evaluated");
                None
            }
        })
        .collect();
    let parameters = crate::region_parameters::store::active_versions(conn)?;
    Ok(Catalog::new(regions, grid, types, versions).with_parameter_versions(parameters))
}

/// The latest earlier version of the same activity type and region that was ever in force (active or
/// retired): the one `row` follows.
pub fn previous_published(conn: &mut AnyConnection, row: &VersionRow) -> QueryResult<Option<VersionRow>> {
    methodology_versions::table
        .filter(methodology_versions::activity_type.eq(&row.activity_type))
        .filter(methodology_versions::region_code.eq(&row.region_code))
        .filter(methodology_versions::version.lt(row.version))
        .filter(methodology_versions::status.ne(MethodologyStatus::Draft))
        .order(methodology_versions::version.desc())
        .select(VersionRow::as_select())
        .first(conn)
        .optional()
}
