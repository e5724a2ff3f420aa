//! Region parameters: named decimal values of a region (points per gram, a grid factor override, how long
//! points stay valid, whether people may trade, and any value a formula reads as `region.NAME`), set by
//! effective-dated versions. Pure: resolution by region and time, and the checks on a version's values.
//!
//! A version of a region holds that region's own values from its `effective_from` until the next active
//! version of the same region begins; a name it does not set is inherited from the parent region's
//! version in force at the same instant (city ▸ province ▸ nation), and failing that from the built-in
//! defaults. Versions are only ever activated to start in the future, so what is in force at an instant is
//! fixed once that instant has passed: (region, time) is enough to recover every value an activity used.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::NaiveDateTime;
use rust_decimal::Decimal;

use super::data_schema::{is_identifier, IDENTIFIER_MAX_LEN};
use super::FieldError;

/// The prefix under which a formula reads a region parameter: `region.points_per_gram`.
pub const FORMULA_PREFIX: &str = "region.";

pub const POINTS_PER_GRAM: &str = "points_per_gram";
pub const GRID_EF_G_PER_KWH: &str = "grid_ef_g_per_kwh";
pub const POINTS_VALIDITY_DAYS: &str = "points_validity_days";
pub const TRADING_ENABLED: &str = "trading_enabled";

/// Values in force where no version sets them (the contract's defaults): 1 point per gram, points valid
/// 3,650 days, trading enabled. The grid factor has none: the published grid factors apply instead.
pub const DEFAULTS: [(&str, Decimal); 3] = [
    (POINTS_PER_GRAM, Decimal::ONE),
    (POINTS_VALIDITY_DAYS, Decimal::from_parts(3650, 0, 0, false, 0)),
    (TRADING_ENABLED, Decimal::ONE),
];

/// The most values one version may set: a region's constants, well short of a data set.
pub const MAX_VALUES: usize = 64;
/// The longest value: a decimal has at most 28 digits, a sign and a point.
pub const VALUE_MAX_CHARS: usize = 64;

/// One active (or, in a what-if, proposed) version of a region's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterVersion {
    pub id: i64,
    pub region_code: String,
    pub effective_from: NaiveDateTime,
    /// When it was put in force; `None` for a draft tried as if activated now (it ranks as the latest).
    pub activated_at: Option<NaiveDateTime>,
    pub values: BTreeMap<String, Decimal>,
}

impl ParameterVersion {
    /// Which of two versions of a region with the same start wins: the one activated later (a draft being
    /// tried beats every active one), then the higher id.
    fn rank(&self) -> (NaiveDateTime, bool, Option<NaiveDateTime>, i64) {
        (
            self.effective_from,
            self.activated_at.is_none(),
            self.activated_at,
            self.id,
        )
    }
}

/// Where a value in force comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source<'a> {
    Version(&'a ParameterVersion),
    /// No version in force up the hierarchy sets it: one of [`DEFAULTS`].
    Default,
}

/// A value in force and its source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolved<'a> {
    pub value: Decimal,
    pub source: Source<'a>,
}

/// Every active version, per region, latest start first.
#[derive(Debug, Clone, Default)]
pub struct ParameterVersions {
    by_region: HashMap<String, Vec<Arc<ParameterVersion>>>,
}

impl ParameterVersions {
    pub fn new(versions: impl IntoIterator<Item = ParameterVersion>) -> ParameterVersions {
        let mut all = ParameterVersions::default();
        for v in versions {
            all.by_region
                .entry(v.region_code.clone())
                .or_default()
                .push(Arc::new(v));
        }
        for list in all.by_region.values_mut() {
            list.sort_by_key(|v| std::cmp::Reverse(v.rank()));
        }
        all
    }

    /// These versions with `version` in force too (in place of itself, if it was already), as if
    /// activated now: what a draft would change.
    pub fn with(&self, version: ParameterVersion) -> ParameterVersions {
        let mut all = self.clone();
        let list = all.by_region.entry(version.region_code.clone()).or_default();
        list.retain(|v| v.id != version.id);
        list.push(Arc::new(version));
        list.sort_by_key(|v| std::cmp::Reverse(v.rank()));
        all
    }

    /// The region's own version in force at `t`, if it has one.
    pub fn own(&self, region: &str, t: NaiveDateTime) -> Option<&ParameterVersion> {
        self.by_region
            .get(region)?
            .iter()
            .find(|v| v.effective_from <= t)
            .map(Arc::as_ref)
    }

    /// The most specific version in force at `t` along `lineage` (the region, then its ancestors): the one
    /// an activity records.
    pub fn most_specific<'a, 'r>(
        &'a self,
        lineage: impl IntoIterator<Item = &'r str>,
        t: NaiveDateTime,
    ) -> Option<&'a ParameterVersion> {
        lineage.into_iter().find_map(|code| self.own(code, t))
    }

    /// The value of `name` in force at `t` along `lineage`: the nearest region whose version in force sets
    /// it, else the default, else nothing.
    pub fn value<'a, 'r>(
        &'a self,
        lineage: impl IntoIterator<Item = &'r str>,
        name: &str,
        t: NaiveDateTime,
    ) -> Option<Resolved<'a>> {
        lineage
            .into_iter()
            .filter_map(|code| self.own(code, t))
            .find_map(|v| {
                v.values.get(name).map(|value| Resolved {
                    value: *value,
                    source: Source::Version(v),
                })
            })
            .or_else(|| default(name))
    }

    /// Every value in force at `t` along `lineage`, by name, defaults included.
    pub fn resolve<'a, 'r>(
        &'a self,
        lineage: impl IntoIterator<Item = &'r str>,
        t: NaiveDateTime,
    ) -> BTreeMap<String, Resolved<'a>> {
        let mut values = BTreeMap::new();
        for v in lineage.into_iter().filter_map(|code| self.own(code, t)) {
            for (name, value) in &v.values {
                values.entry(name.clone()).or_insert(Resolved {
                    value: *value,
                    source: Source::Version(v),
                });
            }
        }
        for (name, _) in DEFAULTS {
            if let Some(d) = default(name) {
                values.entry(name.to_string()).or_insert(d);
            }
        }
        values
    }

    /// Whether any version (of any region, at any time) or default sets `name`: what a formula may read.
    pub fn defines(&self, name: &str) -> bool {
        name == GRID_EF_G_PER_KWH
            || default(name).is_some()
            || self
                .by_region
                .values()
                .flatten()
                .any(|v| v.values.contains_key(name))
    }
}

fn default(name: &str) -> Option<Resolved<'static>> {
    DEFAULTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, value)| Resolved {
            value: *value,
            source: Source::Default,
        })
}

fn field(field: String, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// Checks a version's values (name → decimal text, as given): every name an identifier, every value an
/// exact decimal, and the known names within their meaning. Returns the values or every field at fault
/// (named `values.NAME`).
pub fn check_values(values: &BTreeMap<String, String>) -> Result<BTreeMap<String, Decimal>, Vec<FieldError>> {
    if values.len() > MAX_VALUES {
        return Err(vec![field(
            "values".into(),
            format!("at most {MAX_VALUES} values"),
        )]);
    }
    let mut errors = Vec::new();
    let mut checked = BTreeMap::new();
    for (name, text) in values {
        // A name too long to be one is not echoed back in the field's path.
        let path = if name.chars().count() > IDENTIFIER_MAX_LEN {
            "values".to_string()
        } else {
            format!("values.{name}")
        };
        if !is_identifier(name) {
            errors.push(field(
                path,
                format!("names are lower-case identifiers of at most {IDENTIFIER_MAX_LEN} characters"),
            ));
            continue;
        }
        let text = text.trim();
        let Some(value) = (text.chars().count() <= VALUE_MAX_CHARS)
            .then(|| Decimal::from_str_exact(text).ok())
            .flatten()
        else {
            errors.push(field(path, "must be a decimal string such as \"1.5\""));
            continue;
        };
        match meaning_check(name, value) {
            Ok(()) => {
                checked.insert(name.clone(), value.normalize());
            }
            Err(why) => errors.push(field(path, why)),
        }
    }
    if errors.is_empty() {
        Ok(checked)
    } else {
        Err(errors)
    }
}

/// What the known names may hold; any other name holds any decimal.
fn meaning_check(name: &str, value: Decimal) -> Result<(), &'static str> {
    let whole = value.fract().is_zero();
    match name {
        POINTS_PER_GRAM | GRID_EF_G_PER_KWH if value.is_sign_negative() => Err("must not be negative"),
        POINTS_VALIDITY_DAYS if !whole || value < Decimal::ONE => {
            Err("must be a whole number of days, at least 1")
        }
        TRADING_ENABLED if value != Decimal::ZERO && value != Decimal::ONE => Err("must be \"0\" or \"1\""),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn day(d: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2027, 1, d)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
    }

    fn version(id: i64, region: &str, from: u32, values: &[(&str, &str)]) -> ParameterVersion {
        ParameterVersion {
            id,
            region_code: region.into(),
            effective_from: day(from),
            activated_at: Some(day(1)),
            values: values
                .iter()
                .map(|(n, v)| (n.to_string(), v.parse().unwrap()))
                .collect(),
        }
    }

    const SHENZHEN: [&str; 3] = ["440300", "440000", "CN"];
    const WUHAN: [&str; 3] = ["420100", "420000", "CN"];

    fn source_id(r: Option<Resolved<'_>>) -> Option<i64> {
        match r?.source {
            Source::Version(v) => Some(v.id),
            Source::Default => None,
        }
    }

    #[test]
    fn a_city_without_its_own_value_reads_its_provinces_then_the_nations() {
        let all = ParameterVersions::new([
            version(1, "CN", 1, &[("points_per_gram", "1"), ("bus_bonus", "3")]),
            version(2, "440000", 1, &[("points_per_gram", "2")]),
            version(3, "440300", 1, &[("grid_ef_g_per_kwh", "400")]),
        ]);
        let t = day(5);
        let ppg = all.value(SHENZHEN, POINTS_PER_GRAM, t).unwrap();
        assert_eq!((ppg.value, source_id(Some(ppg))), (Decimal::TWO, Some(2)));
        assert_eq!(source_id(all.value(SHENZHEN, "bus_bonus", t)), Some(1));
        assert_eq!(source_id(all.value(SHENZHEN, GRID_EF_G_PER_KWH, t)), Some(3));
        assert_eq!(source_id(all.value(WUHAN, POINTS_PER_GRAM, t)), Some(1));
        assert_eq!(all.value(WUHAN, GRID_EF_G_PER_KWH, t), None);
        assert_eq!(all.value(WUHAN, "unheard_of", t), None);
        assert_eq!(all.most_specific(SHENZHEN, t).unwrap().id, 3);
        assert_eq!(all.most_specific(WUHAN, t).unwrap().id, 1);
        let resolved = all.resolve(SHENZHEN, t);
        let names: Vec<_> = resolved.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "bus_bonus",
                "grid_ef_g_per_kwh",
                "points_per_gram",
                "points_validity_days",
                "trading_enabled"
            ]
        );
        assert_eq!(resolved["points_validity_days"].source, Source::Default);
        assert_eq!(resolved["points_validity_days"].value, Decimal::from(3650));
    }

    #[test]
    fn a_version_holds_from_its_start_until_the_next_one_of_its_region() {
        let all = ParameterVersions::new([
            version(1, "CN", 1, &[("points_per_gram", "1")]),
            version(2, "440300", 10, &[("points_per_gram", "2"), ("x", "7")]),
            version(3, "440300", 20, &[("points_per_gram", "3")]),
        ]);
        let at = |t| all.value(SHENZHEN, POINTS_PER_GRAM, t).unwrap().value;
        assert_eq!(at(day(9)), Decimal::ONE);
        assert_eq!(at(day(10)), Decimal::TWO);
        assert_eq!(at(day(20) - chrono::Duration::microseconds(1)), Decimal::TWO);
        assert_eq!(at(day(20)), Decimal::from(3));
        // A name the later version leaves out is no longer the city's own: nothing sets it.
        assert_eq!(source_id(all.value(SHENZHEN, "x", day(15))), Some(2));
        assert_eq!(all.value(SHENZHEN, "x", day(25)), None);
        // Before any version, only the defaults hold.
        let empty = ParameterVersions::default();
        assert_eq!(
            empty.value(SHENZHEN, POINTS_PER_GRAM, day(1)).unwrap().source,
            Source::Default
        );
        assert!(empty.most_specific(SHENZHEN, day(1)).is_none());
    }

    #[test]
    fn of_two_versions_with_one_start_the_later_activated_wins_and_a_draft_beats_both() {
        let mut later = version(2, "440300", 10, &[("points_per_gram", "2")]);
        later.activated_at = Some(day(3));
        let all = ParameterVersions::new([later, version(5, "440300", 10, &[("points_per_gram", "5")])]);
        assert_eq!(all.own("440300", day(10)).unwrap().id, 2);
        let mut draft = version(9, "440300", 10, &[("points_per_gram", "9")]);
        draft.activated_at = None;
        let what_if = all.with(draft);
        assert_eq!(what_if.own("440300", day(10)).unwrap().id, 9);
        // The versions it came from are unchanged; a version given again replaces itself.
        assert_eq!(all.own("440300", day(10)).unwrap().id, 2);
        let again = all.with(version(2, "440300", 12, &[]));
        assert_eq!(again.by_region["440300"].len(), 2);
        assert_eq!(again.own("440300", day(11)).unwrap().id, 5);
    }

    #[test]
    fn a_formula_may_read_any_name_some_version_or_default_sets() {
        let all = ParameterVersions::new([version(1, "420100", 1, &[("ferry_g", "12")])]);
        assert!(all.defines("ferry_g"));
        assert!(all.defines(POINTS_PER_GRAM) && all.defines(TRADING_ENABLED));
        assert!(
            all.defines(GRID_EF_G_PER_KWH),
            "the published grid factors back it"
        );
        assert!(!all.defines("nothing_sets_this"));
    }

    #[test]
    fn values_are_checked_for_their_names_and_meaning() {
        let given = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let ok = check_values(&given(&[
            ("points_per_gram", " 1.50 "),
            ("trading_enabled", "0"),
            ("points_validity_days", "365"),
            ("ferry_g", "-3"),
        ]))
        .unwrap();
        assert_eq!(ok["points_per_gram"].to_string(), "1.5");
        assert_eq!(ok["ferry_g"], Decimal::from(-3));
        let errors = check_values(&given(&[
            ("points_per_gram", "-1"),
            ("trading_enabled", "2"),
            ("points_validity_days", "1.5"),
            ("grid_ef_g_per_kwh", "lots"),
            ("Bad Name", "1"),
        ]))
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "values.Bad Name",
                "values.grid_ef_g_per_kwh",
                "values.points_per_gram",
                "values.points_validity_days",
                "values.trading_enabled"
            ]
        );
        let too_many: BTreeMap<_, _> = (0..=MAX_VALUES)
            .map(|i| (format!("v{i}"), "1".to_string()))
            .collect();
        assert_eq!(check_values(&too_many).unwrap_err()[0].field, "values");
    }
}
