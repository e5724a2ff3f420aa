//! Everything quantification needs, held in memory: regions and their hierarchy, grid factors, region
//! parameters, activity types and the active methodology versions with their parsed formulas. Pure: built
//! by the caller from the database, queried without I/O.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{Datelike, FixedOffset, NaiveDateTime};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Serialize;

use super::data_schema::{is_identifier, DataSchema, DataValues};
use super::formula::{to_grams, EvalError, Formula, Step};
use super::region_parameters::{
    ParameterVersion, ParameterVersions, Resolved, FORMULA_PREFIX, GRID_EF_G_PER_KWH, POINTS_PER_GRAM,
    POINTS_VALIDITY_DAYS, TRADING_ENABLED,
};

/// China keeps one time zone, without daylight saving: local days and years are UTC+8.
pub fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

pub const REGION_GRID_EF: &str = "region.grid_ef_g_per_kwh";
pub const REGION_POINTS_PER_GRAM: &str = "region.points_per_gram";

/// How long points stay valid where no region parameter says (the contract's default).
const DEFAULT_VALIDITY_DAYS: i64 = 3650;

/// The nation's region code: the root of the region tree.
pub const NATION: &str = "CN";

/// The grid whose factor applies where a region names none (the nation).
const NATIONAL_GRID: &str = "national";

#[derive(Debug, Clone)]
pub struct RegionInfo {
    pub code: String,
    pub parent: Option<String>,
    pub grid_region: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ActivityTypeInfo {
    pub code: String,
    pub schema: DataSchema,
    pub claim_window_days: i64,
    /// Travel: a person does one at a time, so two overlapping trips are one too many.
    pub travel: bool,
    /// Average speeds above this flag an activity for review; an untimed trip takes at least its distance
    /// at this speed.
    pub max_speed_kmh: Option<u32>,
}

crate::text_enum! {
    /// What vouches for an activity: a provider's record, a GPS trace, a photo, or the person's word.
    pub enum Evidence {
        Operator = "operator",
        Trace = "trace",
        Photo = "photo",
        SelfReport = "self_report",
    }
}

/// How much of the reduction a piece of evidence earns as points.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct EvidenceWeights {
    #[serde(with = "rust_decimal::serde::str")]
    pub operator: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub trace: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub photo: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub self_report: Decimal,
}

impl Default for EvidenceWeights {
    fn default() -> EvidenceWeights {
        EvidenceWeights {
            operator: Decimal::ONE,
            trace: Decimal::ONE,
            photo: Decimal::new(7, 1),
            self_report: Decimal::new(5, 1),
        }
    }
}

impl EvidenceWeights {
    pub fn weight(&self, evidence: Evidence) -> Decimal {
        match evidence {
            Evidence::Operator => self.operator,
            Evidence::Trace => self.trace,
            Evidence::Photo => self.photo,
            Evidence::SelfReport => self.self_report,
        }
    }
}

/// Where each formula variable's value comes from, resolved once when the version is loaded.
#[derive(Debug, Clone)]
enum Binding {
    Parameter(Decimal),
    Data(String),
    /// The region's `grid_ef_g_per_kwh` if a version sets one, else the published grid factor.
    GridFactor,
    PointsPerGram,
    /// Any other `region.NAME`: the region parameter `NAME`.
    RegionValue(String),
}

#[derive(Debug, Clone)]
pub struct Version {
    pub id: i64,
    pub activity_type: String,
    pub region_code: String,
    pub version: i32,
    pub effective_from: NaiveDateTime,
    pub effective_to: Option<NaiveDateTime>,
    pub formula: Formula,
    pub daily_cap_g: Option<i64>,
    pub weights: EvidenceWeights,
    bindings: Vec<Binding>,
}

/// A version's identity and terms, apart from its formula.
#[derive(Debug, Clone)]
pub struct VersionTerms {
    pub id: i64,
    pub activity_type: String,
    pub region_code: String,
    pub version: i32,
    pub effective_from: NaiveDateTime,
    pub effective_to: Option<NaiveDateTime>,
    pub daily_cap_g: Option<i64>,
    pub weights: EvidenceWeights,
}

impl Version {
    /// The data fields the formula reads: all of an activity's data that its figure depends on.
    pub fn data_fields(&self) -> Vec<String> {
        self.bindings
            .iter()
            .filter_map(|b| match b {
                Binding::Data(name) => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    /// Binds the formula's variables to parameters, data fields and region parameters; a `region.` name
    /// that no region parameter can have is an error here too, though drafts are checked when saved.
    pub fn new(
        terms: VersionTerms,
        parameters: &BTreeMap<String, Decimal>,
        formula: Formula,
    ) -> Result<Version, String> {
        let bindings = formula
            .variables()
            .iter()
            .map(|name| match name.as_str() {
                REGION_GRID_EF => Ok(Binding::GridFactor),
                REGION_POINTS_PER_GRAM => Ok(Binding::PointsPerGram),
                n => match n.strip_prefix(FORMULA_PREFIX) {
                    Some(name) if is_identifier(name) => Ok(Binding::RegionValue(name.to_string())),
                    Some(_) => Err(format!("`{n}` names no region parameter")),
                    None => Ok(parameters
                        .get(n)
                        .map(|v| Binding::Parameter(*v))
                        .unwrap_or_else(|| Binding::Data(n.to_string()))),
                },
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Version {
            id: terms.id,
            activity_type: terms.activity_type,
            region_code: terms.region_code,
            version: terms.version,
            effective_from: terms.effective_from,
            effective_to: terms.effective_to,
            formula,
            daily_cap_g: terms.daily_cap_g,
            weights: terms.weights,
            bindings,
        })
    }

    pub fn covers(&self, t: NaiveDateTime) -> bool {
        self.effective_from <= t && self.effective_to.is_none_or(|end| t < end)
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QuantifyError {
    #[error("unknown activity type `{0}`")]
    UnknownActivityType(String),
    #[error("unknown region `{0}`")]
    UnknownRegion(String),
    #[error("no methodology for `{activity_type}` in force in region {region} or above at that time")]
    NoMethodology { activity_type: String, region: String },
    #[error("the formula needs `data.{0}`, which the activity lacks")]
    MissingField(String),
    #[error("no grid emission factor for region {0} in that year or before")]
    NoGridFactor(String),
    #[error("no region parameter `{name}` in force for region {region} or above at that time")]
    NoRegionValue { name: String, region: String },
    #[error("{0}")]
    Evaluation(#[from] EvalError),
    #[error(transparent)]
    Overflow(#[from] AmountOverflow),
}

/// The result of quantifying one activity under one version.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantity {
    pub reduction_g: i64,
    pub points_per_gram: Decimal,
    /// The most specific region-parameter version in force for the region at the activity's time (`None`
    /// only where no version is in force at all and the defaults applied).
    pub region_parameters_id: Option<i64>,
    pub breakdown: Vec<Step>,
}

#[derive(Debug, Default, Clone)]
pub struct Catalog {
    regions: HashMap<String, RegionInfo>,
    grid_factors: HashMap<String, BTreeMap<i32, Decimal>>,
    types: HashMap<String, ActivityTypeInfo>,
    parameters: ParameterVersions,
    /// Active versions per (activity type, region), latest `effective_from` first.
    versions: HashMap<(String, String), Vec<Arc<Version>>>,
}

/// The order in which a region's versions are tried: the latest `effective_from` first, then the highest
/// version number.
fn latest_first(list: &mut [Arc<Version>]) {
    list.sort_by(|a, b| {
        b.effective_from
            .cmp(&a.effective_from)
            .then(b.version.cmp(&a.version))
    });
}

impl Catalog {
    pub fn new(
        regions: Vec<RegionInfo>,
        grid_factors: Vec<(String, i32, Decimal)>,
        types: Vec<ActivityTypeInfo>,
        versions: Vec<Version>,
    ) -> Catalog {
        let mut catalog = Catalog {
            regions: regions.into_iter().map(|r| (r.code.clone(), r)).collect(),
            types: types.into_iter().map(|t| (t.code.clone(), t)).collect(),
            ..Catalog::default()
        };
        for (grid, year, factor) in grid_factors {
            catalog.grid_factors.entry(grid).or_default().insert(year, factor);
        }
        for v in versions {
            catalog
                .versions
                .entry((v.activity_type.clone(), v.region_code.clone()))
                .or_default()
                .push(Arc::new(v));
        }
        for list in catalog.versions.values_mut() {
            latest_first(list);
        }
        catalog
    }

    /// This catalog with these active region-parameter versions.
    pub fn with_parameter_versions(mut self, versions: Vec<ParameterVersion>) -> Catalog {
        self.parameters = ParameterVersions::new(versions);
        self
    }

    /// This catalog with the region-parameter `draft` in force too, as if activated now (in place of
    /// itself, if it was already): what quantification would see once it is activated.
    pub fn with_region_parameters(&self, draft: ParameterVersion) -> Catalog {
        let mut catalog = self.clone();
        catalog.parameters = self.parameters.with(draft);
        catalog
    }

    /// This catalog with `version` active too (in place of itself, if it was already): what the catalog
    /// would be once it is activated.
    pub fn with_active(&self, version: Version) -> Catalog {
        let mut catalog = self.clone();
        let list = catalog
            .versions
            .entry((version.activity_type.clone(), version.region_code.clone()))
            .or_default();
        list.retain(|v| v.id != version.id);
        list.push(Arc::new(version));
        latest_first(list);
        catalog
    }

    pub fn region(&self, code: &str) -> Option<&RegionInfo> {
        self.regions.get(code)
    }

    /// Every region's code, in no particular order.
    pub fn region_codes(&self) -> impl Iterator<Item = &str> {
        self.regions.keys().map(String::as_str)
    }

    pub fn activity_type(&self, code: &str) -> Option<&ActivityTypeInfo> {
        self.types.get(code)
    }

    /// Whether `code` is a travel type (an unknown type is not).
    pub fn is_travel(&self, code: &str) -> bool {
        self.types.get(code).is_some_and(|t| t.travel)
    }

    /// The region and its ancestors, nearest first, up to the nation. Bounded so a cycle cannot loop.
    pub fn lineage<'a>(&'a self, code: &'a str) -> impl Iterator<Item = &'a RegionInfo> + 'a {
        let mut next = self.regions.get(code);
        std::iter::from_fn(move || {
            let current = next?;
            next = current.parent.as_deref().and_then(|p| self.regions.get(p));
            Some(current)
        })
        .take(16)
    }

    /// Whether `code` is `ancestor` or lies below it.
    pub fn is_within(&self, code: &str, ancestor: &str) -> bool {
        self.lineage(code).any(|r| r.code == ancestor)
    }

    /// The version in force for (type, region, t): the active version of the nearest region up the
    /// hierarchy that has one covering `t`, the one with the latest `effective_from`.
    pub fn version_in_force(
        &self,
        activity_type: &str,
        region: &str,
        t: NaiveDateTime,
    ) -> Result<&Arc<Version>, QuantifyError> {
        if !self.types.contains_key(activity_type) {
            return Err(QuantifyError::UnknownActivityType(activity_type.to_string()));
        }
        if !self.regions.contains_key(region) {
            return Err(QuantifyError::UnknownRegion(region.to_string()));
        }
        self.lineage(region)
            .find_map(|r| {
                self.versions
                    .get(&(activity_type.to_string(), r.code.clone()))
                    .and_then(|list| list.iter().find(|v| v.covers(t)))
            })
            .ok_or_else(|| QuantifyError::NoMethodology {
                activity_type: activity_type.to_string(),
                region: region.to_string(),
            })
    }

    /// The codes of the region and its ancestors, nearest first.
    fn lineage_codes<'a>(&'a self, region: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.lineage(region).map(|r| r.code.as_str())
    }

    /// The region parameter `name` in force for `region` at `t` and where it comes from: the nearest
    /// region's version in force that sets it, else its default.
    pub fn region_value(&self, region: &str, name: &str, t: NaiveDateTime) -> Option<Resolved<'_>> {
        self.parameters.value(self.lineage_codes(region), name, t)
    }

    /// Every region parameter in force for `region` at `t`, by name.
    pub fn region_values(&self, region: &str, t: NaiveDateTime) -> BTreeMap<String, Resolved<'_>> {
        self.parameters.resolve(self.lineage_codes(region), t)
    }

    /// The id of the most specific region-parameter version in force for `region` at `t`: what an
    /// activity records. With the region and time it recovers every value (see the module
    /// `region_parameters`).
    pub fn region_parameters_id(&self, region: &str, t: NaiveDateTime) -> Option<i64> {
        self.parameters
            .most_specific(self.lineage_codes(region), t)
            .map(|v| v.id)
    }

    /// Whether a formula may read `region.NAME`: some version or default sets `name`.
    pub fn defines_region_value(&self, name: &str) -> bool {
        self.parameters.defines(name)
    }

    /// Points per gram of a region at `t`: the region parameter, inherited down the hierarchy (default 1).
    pub fn points_per_gram(&self, region: &str, t: NaiveDateTime) -> Decimal {
        self.region_value(region, POINTS_PER_GRAM, t)
            .map_or(Decimal::ONE, |r| r.value)
    }

    /// When points issued in `region` at `t` expire: at the end of the (Asia/Shanghai) day
    /// `points_validity_days` later (the region parameter, inherited, default 3,650; whole days between 1
    /// and 36,500 whatever a version says). A day's points expire together: one date per day to show in a
    /// wallet, and one sweep takes them.
    pub fn points_expire_at(&self, region: &str, t: NaiveDateTime) -> NaiveDateTime {
        let days = self
            .region_value(region, POINTS_VALIDITY_DAYS, t)
            .and_then(|r| r.value.trunc().to_i64())
            .unwrap_or(DEFAULT_VALIDITY_DAYS)
            .clamp(1, 36_500);
        let offset = chrono::Duration::seconds(i64::from(china().local_minus_utc()));
        let last_day = (t + offset + chrono::Duration::days(days)).date();
        last_day
            .succ_opt()
            .unwrap_or(last_day)
            .and_time(chrono::NaiveTime::MIN)
            - offset
    }

    /// Whether people homed in `region` may trade points at `t`: the region parameter `trading_enabled`,
    /// inherited (default "1"); "0" switches trading off (businesses trade wherever they are homed).
    pub fn trading_enabled(&self, region: &str, t: NaiveDateTime) -> bool {
        self.region_value(region, TRADING_ENABLED, t)
            .is_none_or(|r| !r.value.is_zero())
    }

    /// The grid factor of a region at `t`: the `grid_ef_g_per_kwh` a version in force sets, else the
    /// published factor of the region's grid for that (Asia/Shanghai) year.
    pub fn grid_factor_at(&self, region: &str, t: NaiveDateTime) -> Option<Decimal> {
        self.region_value(region, GRID_EF_G_PER_KWH, t)
            .map(|r| r.value)
            .or_else(|| self.grid_factor(region, t.and_utc().with_timezone(&china()).year()))
    }

    /// The published grid factor for the region's grid in `year`, or the latest earlier year's.
    pub fn grid_factor(&self, region: &str, year: i32) -> Option<Decimal> {
        let grid = self
            .lineage(region)
            .find_map(|r| r.grid_region.clone())
            .unwrap_or_else(|| NATIONAL_GRID.to_string());
        self.grid_factors
            .get(&grid)
            .and_then(|years| years.range(..=year).next_back())
            .map(|(_, f)| *f)
    }

    /// Quantifies data under `version` for an activity in `region` at `t` (UTC).
    pub fn quantify(
        &self,
        version: &Version,
        region: &str,
        t: NaiveDateTime,
        data: &DataValues,
        explain: bool,
    ) -> Result<Quantity, QuantifyError> {
        let points_per_gram = self.points_per_gram(region, t);
        let mut values = Vec::with_capacity(version.bindings.len());
        for binding in &version.bindings {
            values.push(match binding {
                Binding::Parameter(v) => *v,
                Binding::Data(name) => *data
                    .get(name)
                    .ok_or_else(|| QuantifyError::MissingField(name.clone()))?,
                Binding::GridFactor => self
                    .grid_factor_at(region, t)
                    .ok_or_else(|| QuantifyError::NoGridFactor(region.to_string()))?,
                Binding::PointsPerGram => points_per_gram,
                Binding::RegionValue(name) => {
                    self.region_value(region, name, t)
                        .ok_or_else(|| QuantifyError::NoRegionValue {
                            name: name.clone(),
                            region: region.to_string(),
                        })?
                        .value
                }
            });
        }
        let (value, breakdown) = if explain {
            version.formula.evaluate_explained(&values)?
        } else {
            (version.formula.evaluate(&values)?, Vec::new())
        };
        Ok(Quantity {
            reduction_g: to_grams(value)?,
            points_per_gram,
            region_parameters_id: self.region_parameters_id(region, t),
            breakdown,
        })
    }
}

/// An amount of grams or points beyond what the ledger holds (`i64`): refused, never wrapped, never
/// clamped to something else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} is more than the ledger can hold")]
pub struct AmountOverflow {
    /// What overflowed, said for the client: "the points for 9000000000000000000 g", …
    pub what: String,
}

impl AmountOverflow {
    pub fn new(what: impl Into<String>) -> AmountOverflow {
        AmountOverflow { what: what.into() }
    }
}

/// `floor(granted_g × points per gram × evidence weight)`, in exact decimals; never negative. Points beyond
/// an `i64` are an overflow, not zero points.
pub fn points_for(granted_g: i64, points_per_gram: Decimal, weight: Decimal) -> Result<i64, AmountOverflow> {
    let points = Decimal::from(granted_g)
        .checked_mul(points_per_gram)
        .and_then(|v| v.checked_mul(weight))
        .map(|v| v.floor())
        .and_then(|v| i64::try_from(v).ok())
        .ok_or_else(|| AmountOverflow::new(format!("the points for {granted_g} g")))?;
    Ok(points.max(0))
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::*;

    fn region(code: &str, parent: Option<&str>, grid: Option<&str>) -> RegionInfo {
        RegionInfo {
            code: code.into(),
            parent: parent.map(Into::into),
            grid_region: grid.map(Into::into),
        }
    }

    fn local(y: i32, m: u32, d: u32) -> NaiveDateTime {
        china()
            .from_local_datetime(
                &NaiveDate::from_ymd_opt(y, m, d)
                    .unwrap()
                    .and_hms_opt(0, 0, 0)
                    .unwrap(),
            )
            .unwrap()
            .naive_utc()
    }

    fn version(
        id: i64,
        region: &str,
        from: NaiveDateTime,
        to: Option<NaiveDateTime>,
        formula: &str,
        k: &str,
    ) -> Version {
        let params = BTreeMap::from([("k".to_string(), k.parse().unwrap())]);
        let terms = VersionTerms {
            id,
            activity_type: "transit.metro".into(),
            region_code: region.into(),
            version: id as i32,
            effective_from: from,
            effective_to: to,
            daily_cap_g: None,
            weights: EvidenceWeights::default(),
        };
        Version::new(terms, &params, Formula::parse(formula).unwrap()).unwrap()
    }

    fn catalog(versions: Vec<Version>) -> Catalog {
        let schema: DataSchema = r#"{"type":"object","properties":{"distance_m":{"type":"integer"},"count":{"type":"integer"},"kwh":{"type":"number"}}}"#
            .parse()
            .unwrap();
        Catalog::new(
            vec![
                region("CN", None, None),
                region("420000", Some("CN"), Some("central")),
                region("420100", Some("420000"), Some("central")),
                region("440000", Some("CN"), Some("south")),
                region("440300", Some("440000"), Some("south")),
            ],
            vec![
                ("national".into(), 2022, "536.6".parse().unwrap()),
                ("central".into(), 2022, "539.5".parse().unwrap()),
                ("central".into(), 2023, "527.1".parse().unwrap()),
            ],
            vec![ActivityTypeInfo {
                code: "transit.metro".into(),
                schema,
                claim_window_days: 7,
                travel: true,
                max_speed_kmh: Some(120),
            }],
            versions,
        )
    }

    #[test]
    fn falls_back_city_province_nation() {
        let c = catalog(vec![
            version(1, "CN", local(2023, 1, 1), None, "distance_m * k", "1"),
            version(2, "440000", local(2023, 1, 1), None, "distance_m * k", "2"),
            version(3, "420100", local(2023, 1, 1), None, "distance_m * k", "3"),
        ]);
        let t = local(2024, 1, 1);
        assert_eq!(c.version_in_force("transit.metro", "420100", t).unwrap().id, 3);
        assert_eq!(c.version_in_force("transit.metro", "440300", t).unwrap().id, 2);
        assert_eq!(c.version_in_force("transit.metro", "420000", t).unwrap().id, 1);
        assert_eq!(c.version_in_force("transit.metro", "CN", t).unwrap().id, 1);
        assert!(matches!(
            c.version_in_force("walking", "CN", t),
            Err(QuantifyError::UnknownActivityType(_))
        ));
        assert!(matches!(
            c.version_in_force("transit.metro", "999999", t),
            Err(QuantifyError::UnknownRegion(_))
        ));
    }

    #[test]
    fn effective_dating_at_the_boundary_instant() {
        let boundary = local(2024, 8, 1);
        let c = catalog(vec![
            version(1, "CN", local(2023, 1, 1), None, "distance_m * k", "1"),
            version(
                2,
                "420100",
                local(2023, 6, 1),
                Some(boundary),
                "distance_m * k",
                "2",
            ),
            version(3, "420100", boundary, None, "count * k", "3"),
        ]);
        let just_before = boundary - chrono::Duration::microseconds(1);
        assert_eq!(
            c.version_in_force("transit.metro", "420100", just_before)
                .unwrap()
                .id,
            2
        );
        assert_eq!(
            c.version_in_force("transit.metro", "420100", boundary)
                .unwrap()
                .id,
            3
        );
        // Before the city's first version, the nation's applies.
        assert_eq!(
            c.version_in_force("transit.metro", "420100", local(2023, 5, 31))
                .unwrap()
                .id,
            1
        );
        assert!(c
            .version_in_force("transit.metro", "420100", local(2022, 1, 1))
            .is_err());
    }

    #[test]
    fn a_version_made_active_takes_what_it_would_take() {
        let c = catalog(vec![
            version(1, "CN", local(2023, 1, 1), None, "distance_m * k", "1"),
            version(2, "420100", local(2024, 1, 1), None, "distance_m * k", "2"),
        ]);
        let t = local(2024, 6, 1);
        // A later national version takes what no city's own version takes.
        let national = c.with_active(version(3, "CN", local(2024, 3, 1), None, "distance_m * k", "3"));
        assert_eq!(
            national
                .version_in_force("transit.metro", "440300", t)
                .unwrap()
                .id,
            3
        );
        assert_eq!(
            national
                .version_in_force("transit.metro", "420100", t)
                .unwrap()
                .id,
            2
        );
        // A city version that starts before the one in force takes only the time before it.
        let older = c.with_active(version(4, "420100", local(2023, 6, 1), None, "count * k", "4"));
        assert_eq!(
            older.version_in_force("transit.metro", "420100", t).unwrap().id,
            2
        );
        assert_eq!(
            older
                .version_in_force("transit.metro", "420100", local(2023, 7, 1))
                .unwrap()
                .id,
            4
        );
        // An active version given again replaces itself; the catalog it came from is unchanged.
        let again = c.with_active(version(2, "420100", local(2024, 1, 1), None, "count * k", "5"));
        assert_eq!(
            again.versions[&("transit.metro".into(), "420100".into())].len(),
            1
        );
        assert_eq!(c.version_in_force("transit.metro", "440300", t).unwrap().id, 1);
    }

    #[test]
    fn grid_factor_falls_back_to_the_latest_earlier_year() {
        let c = catalog(vec![]);
        assert_eq!(c.grid_factor("420100", 2023), Some("527.1".parse().unwrap()));
        assert_eq!(c.grid_factor("420100", 2026), Some("527.1".parse().unwrap()));
        assert_eq!(c.grid_factor("420100", 2022), Some("539.5".parse().unwrap()));
        assert_eq!(c.grid_factor("420100", 2021), None);
        assert_eq!(c.grid_factor("CN", 2024), Some("536.6".parse().unwrap()));
    }

    #[test]
    fn quantifies_with_region_values_and_explains() {
        let mut v = version(
            1,
            "CN",
            local(2023, 1, 1),
            None,
            "kwh * region.grid_ef_g_per_kwh",
            "1",
        );
        v.activity_type = "transit.metro".into();
        let c = catalog(vec![]);
        let data = DataValues::from([("kwh".to_string(), Decimal::new(25, 1))]);
        let q = c.quantify(&v, "420100", local(2023, 3, 1), &data, true).unwrap();
        // 2.5 × 527.1 = 1317.75 → 1318
        assert_eq!(q.reduction_g, 1318);
        assert!(q.breakdown.iter().any(|s| s.expr == "region.grid_ef_g_per_kwh"));
        let missing = c.quantify(&v, "420100", local(2023, 3, 1), &DataValues::new(), false);
        assert_eq!(missing, Err(QuantifyError::MissingField("kwh".into())));
    }

    fn parameters(id: i64, region: &str, from: NaiveDateTime, values: &[(&str, &str)]) -> ParameterVersion {
        ParameterVersion {
            id,
            region_code: region.into(),
            effective_from: from,
            activated_at: Some(local(2023, 1, 1)),
            values: values
                .iter()
                .map(|(n, v)| (n.to_string(), v.parse().unwrap()))
                .collect(),
        }
    }

    #[test]
    fn region_parameters_in_force_at_the_activitys_time_feed_the_formula() {
        let c = catalog(vec![]).with_parameter_versions(vec![
            parameters(10, "CN", local(2023, 1, 1), &[("points_per_gram", "1")]),
            parameters(
                11,
                "420000",
                local(2024, 1, 1),
                &[("grid_ef_g_per_kwh", "500"), ("bonus_g", "7")],
            ),
            parameters(12, "420100", local(2024, 6, 1), &[("points_per_gram", "2")]),
        ]);
        let v = version(
            1,
            "CN",
            local(2023, 1, 1),
            None,
            "kwh * region.grid_ef_g_per_kwh + region.bonus_g",
            "1",
        );
        let data = DataValues::from([("kwh".to_string(), Decimal::TWO)]);
        let at = |c: &Catalog, t| c.quantify(&v, "420100", t, &data, false);
        // Before any version sets `bonus_g`, the formula cannot be evaluated, and says which value lacks.
        assert_eq!(
            at(&c, local(2023, 3, 1)),
            Err(QuantifyError::NoRegionValue {
                name: "bonus_g".into(),
                region: "420100".into()
            })
        );
        // The province's grid factor overrides the published one (central 2023: 527.1); the city inherits.
        let q = at(&c, local(2024, 3, 1)).unwrap();
        assert_eq!(
            (q.reduction_g, q.points_per_gram, q.region_parameters_id),
            (1007, Decimal::ONE, Some(11))
        );
        let q = at(&c, local(2024, 7, 1)).unwrap();
        assert_eq!(
            (q.reduction_g, q.points_per_gram, q.region_parameters_id),
            (1007, Decimal::TWO, Some(12))
        );
        assert_eq!(
            c.grid_factor_at("440300", local(2024, 7, 1)),
            c.grid_factor("440300", 2024)
        );
        // A draft tried as if active changes what it covers, and only in the catalog it makes.
        let draft = ParameterVersion {
            activated_at: None,
            ..parameters(
                13,
                "420100",
                local(2024, 6, 1),
                &[("points_per_gram", "3"), ("grid_ef_g_per_kwh", "100")],
            )
        };
        let what_if = c.with_region_parameters(draft);
        let q = at(&what_if, local(2024, 7, 1)).unwrap();
        assert_eq!(
            (q.reduction_g, q.points_per_gram, q.region_parameters_id),
            (207, Decimal::from(3), Some(13))
        );
        assert_eq!(at(&c, local(2024, 7, 1)).unwrap().region_parameters_id, Some(12));
        // A `region.` name no parameter can have is refused when the version is bound.
        let terms = VersionTerms {
            id: 2,
            activity_type: "transit.metro".into(),
            region_code: "CN".into(),
            version: 2,
            effective_from: local(2023, 1, 1),
            effective_to: None,
            daily_cap_g: None,
            weights: EvidenceWeights::default(),
        };
        let dotted = Formula::parse("kwh * region.a.b").unwrap();
        assert!(Version::new(terms, &BTreeMap::new(), dotted).is_err());
    }

    #[test]
    fn points_round_down_after_weighting() {
        assert_eq!(points_for(149, Decimal::ONE, Decimal::new(5, 1)), Ok(74));
        assert_eq!(points_for(149, Decimal::ONE, Decimal::ONE), Ok(149));
        assert_eq!(points_for(10, Decimal::new(15, 1), Decimal::new(7, 1)), Ok(10));
        assert_eq!(points_for(0, Decimal::ONE, Decimal::ONE), Ok(0));
    }

    #[test]
    fn points_beyond_an_i64_are_an_overflow_not_zero() {
        let half = Decimal::new(5, 1);
        assert_eq!(points_for(i64::MAX, Decimal::ONE, Decimal::ONE), Ok(i64::MAX));
        assert_eq!(points_for(i64::MAX, Decimal::ONE, half), Ok(i64::MAX / 2));
        assert!(points_for(i64::MAX, Decimal::TWO, half).is_ok());
        assert!(points_for(i64::MAX, Decimal::TWO, Decimal::ONE).is_err());
        assert!(points_for(i64::MAX / 2 + 1, Decimal::TWO, Decimal::ONE).is_err());
        assert_eq!(
            points_for(i64::MAX / 2, Decimal::TWO, Decimal::ONE),
            Ok(i64::MAX - 1)
        );
        // The decimals themselves overflow before the conversion does.
        assert!(points_for(i64::MAX, Decimal::MAX, Decimal::MAX).is_err());
        let overflow = points_for(i64::MAX, Decimal::TEN, Decimal::ONE).unwrap_err();
        assert!(
            overflow.to_string().contains("9223372036854775807 g"),
            "{overflow}"
        );
    }
}
