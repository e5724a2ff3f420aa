//! Checking a new methodology version before anything is stored.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use rust_decimal::Decimal;
use serde::Deserialize;
use utoipa::ToSchema;

use super::store::{Parameter, Parameters};
use crate::domain::catalog::{Catalog, EvidenceWeights};
use crate::domain::data_schema::{is_identifier, DataSchema, IDENTIFIER_MAX_LEN};
use crate::domain::formula::{Formula, FormulaError};
use crate::domain::region_parameters::FORMULA_PREFIX;
use crate::domain::FieldError;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftRequest {
    pub activity_type: String,
    pub region_code: String,
    /// RFC 3339 with offset.
    #[serde(deserialize_with = "crate::http::timestamp::required")]
    pub effective_from: DateTime<FixedOffset>,
    #[serde(default, deserialize_with = "crate::http::timestamp::optional")]
    pub effective_to: Option<DateTime<FixedOffset>>,
    #[schema(value_type = Object)]
    pub parameters: BTreeMap<String, Parameter>,
    /// e.g. `distance_m / 1000 * (car_g_per_pkm - region.grid_ef_g_per_kwh * metro_kwh_per_pkm)`
    pub formula: String,
    pub daily_cap_g: Option<i64>,
    pub citation: String,
    /// Points weight per evidence tier (decimal strings); defaults 1.0 / 1.0 / 0.7 / 0.5.
    #[schema(value_type = Option<Object>)]
    pub evidence_weights: Option<EvidenceWeights>,
}

/// A draft that passed every check.
#[derive(Debug)]
pub struct ValidDraft {
    pub activity_type: String,
    pub region_code: String,
    pub effective_from: NaiveDateTime,
    pub effective_to: Option<NaiveDateTime>,
    pub parameters: Parameters,
    pub formula: String,
    pub daily_cap_g: Option<i64>,
    pub citation: String,
    pub weights: EvidenceWeights,
}

/// The longest citation: a few references with their URLs, not a copy of the source. Every version is
/// served publicly with it.
pub const CITATION_MAX_CHARS: usize = 2_000;
/// The most parameters one version may name: a formula's constants, well short of a data set.
pub const MAX_PARAMETERS: usize = 64;
/// The longest parameter value: a decimal has at most 28 digits, a sign and a point.
pub const PARAMETER_VALUE_MAX_CHARS: usize = 64;
/// The longest unit of a parameter, e.g. `g/pkm`: a label, as long as an activity type's unit.
pub const PARAMETER_UNIT_MAX_CHARS: usize = 64;
/// The longest source of one parameter: a reference and its page, shorter than the version's citation.
pub const PARAMETER_SOURCE_MAX_CHARS: usize = 500;

pub(super) fn field(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Why a draft was refused.
#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    /// Every field that is wrong (the formula is only parsed once the rest is right).
    #[error("the draft has invalid fields")]
    Fields(Vec<FieldError>),
    /// The formula does not parse, or names something it cannot know.
    #[error(transparent)]
    Formula(#[from] FormulaError),
}

/// The parameters' values, noting every name and value that is wrong: a name is an identifier that no
/// data field of the type has, a value a decimal string.
pub(super) fn check_parameters(
    parameters: &Parameters,
    schema: Option<&DataSchema>,
    errors: &mut Vec<FieldError>,
) -> BTreeMap<String, Decimal> {
    let mut values = BTreeMap::new();
    if parameters.len() > MAX_PARAMETERS {
        errors.push(field(
            "parameters",
            format!("at most {MAX_PARAMETERS} parameters"),
        ));
        return values;
    }
    for (name, p) in parameters {
        // A name too long to be one is not echoed back in the field's path.
        let path = if name.chars().count() > IDENTIFIER_MAX_LEN {
            "parameters".to_string()
        } else {
            format!("parameters.{name}")
        };
        if !is_identifier(name) {
            errors.push(field(
                &path,
                format!(
                    "parameter names are lower-case identifiers of at most {IDENTIFIER_MAX_LEN} characters"
                ),
            ));
        } else if schema.is_some_and(|s| s.field(name).is_some()) {
            errors.push(field(&path, "has the name of a data field"));
        }
        check_length(&format!("{path}.unit"), &p.unit, PARAMETER_UNIT_MAX_CHARS, errors);
        check_length(
            &format!("{path}.source"),
            &p.source,
            PARAMETER_SOURCE_MAX_CHARS,
            errors,
        );
        let value_path = format!("{path}.value");
        if p.value.chars().count() > PARAMETER_VALUE_MAX_CHARS {
            check_length(&value_path, &p.value, PARAMETER_VALUE_MAX_CHARS, errors);
            continue;
        }
        match Decimal::from_str_exact(&p.value) {
            Ok(v) => {
                values.insert(name.clone(), v);
            }
            Err(_) => errors.push(field(&value_path, "must be a decimal string such as \"46.7\"")),
        }
    }
    values
}

/// Notes a text longer than `max` characters.
fn check_length(path: &str, text: &str, max: usize, errors: &mut Vec<FieldError>) {
    if text.chars().count() > max {
        errors.push(field(path, format!("at most {max} characters")));
    }
}

/// Notes every evidence weight outside 0..=1.
fn check_weights(weights: &EvidenceWeights, errors: &mut Vec<FieldError>) {
    for (tier, w) in [
        ("operator", weights.operator),
        ("trace", weights.trace),
        ("photo", weights.photo),
        ("self_report", weights.self_report),
    ] {
        if w < Decimal::ZERO || w > Decimal::ONE {
            errors.push(field(
                &format!("evidence_weights.{tier}"),
                "must be between 0 and 1",
            ));
        }
    }
}

pub fn validate(mut req: DraftRequest, catalog: &Catalog) -> Result<ValidDraft, DraftError> {
    // A value is stored as it was validated: kept with its spaces, the loader could not read it back.
    for p in req.parameters.values_mut() {
        p.value = p.value.trim().to_string();
    }
    let mut errors = Vec::new();
    let schema = match catalog.activity_type(&req.activity_type) {
        Some(t) => Some(&t.schema),
        None => {
            errors.push(field("activity_type", "unknown activity type"));
            None
        }
    };
    if catalog.region(&req.region_code).is_none() {
        errors.push(field("region_code", "unknown region"));
    }
    let from = req.effective_from.naive_utc();
    let to = req.effective_to.map(|t| t.naive_utc());
    if to.is_some_and(|to| to <= from) {
        errors.push(field("effective_to", "must be after effective_from"));
    }
    let values = check_parameters(&req.parameters, schema, &mut errors);
    if req.daily_cap_g.is_some_and(|c| c < 0) {
        errors.push(field("daily_cap_g", "must not be negative"));
    }
    if req.citation.trim().is_empty() {
        errors.push(field("citation", "every version cites its source"));
    }
    check_length("citation", &req.citation, CITATION_MAX_CHARS, &mut errors);
    let weights = req.evidence_weights.unwrap_or_default();
    check_weights(&weights, &mut errors);
    if !errors.is_empty() {
        return Err(DraftError::Fields(errors));
    }
    check_formula(&req.formula, &values, schema, catalog)?;
    Ok(ValidDraft {
        activity_type: req.activity_type,
        region_code: req.region_code,
        effective_from: from,
        effective_to: to,
        parameters: req.parameters,
        formula: req.formula,
        daily_cap_g: req.daily_cap_g,
        citation: req.citation,
        weights,
    })
}

/// Parses a draft's formula and checks that every name it uses is one of the draft's parameters, a data
/// field of its type or a region value some region parameter defines.
pub fn check_formula(
    source: &str,
    parameters: &BTreeMap<String, Decimal>,
    schema: Option<&DataSchema>,
    catalog: &Catalog,
) -> Result<Formula, FormulaError> {
    let formula = Formula::parse(source)?;
    let known = |name: &str| {
        parameters.contains_key(name)
            || name
                .strip_prefix(FORMULA_PREFIX)
                .is_some_and(|n| catalog.defines_region_value(n))
            || schema.is_some_and(|s| s.field(name).is_some())
    };
    formula.check_names(known)?;
    Ok(formula)
}
