//! Checking a formula while it is being written: where it fails to parse, which names it does not know,
//! and what it would give for a sample activity. Nothing is stored; the console calls it on every pause
//! in typing, so it answers 200 with the problems rather than refusing the request.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::draft::{check_formula, check_parameters, field};
use super::quantify::{data_refusal, quantify_error};
use super::store::Parameters;
use crate::domain::catalog::{
    points_for, Catalog, Evidence, EvidenceWeights, QuantifyError, Version, VersionTerms,
};
use crate::domain::formula::{FormulaError, Step};
use crate::domain::FieldError;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormulaCheckRequest {
    pub activity_type: String,
    pub region_code: String,
    /// At most 4,096 bytes, like a saved formula.
    pub formula: String,
    /// The draft's parameters (at most 64), as in a draft.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: Parameters,
    #[schema(value_type = Option<Object>)]
    pub evidence_weights: Option<EvidenceWeights>,
    /// An activity to quantify with the formula when it is valid.
    pub sample: Option<Sample>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// When the sample happened (region values are read as of then); now unless given.
    #[serde(default, deserialize_with = "crate::http::timestamp::optional")]
    pub occurred_at: Option<DateTime<FixedOffset>>,
    /// The activity's data, checked against its type's schema.
    #[schema(value_type = Object)]
    pub data: serde_json::Map<String, serde_json::Value>,
    /// `self_report` unless given.
    pub evidence: Option<Evidence>,
}

/// One thing wrong with the draft. For the formula, where: 1-based line and column, and the span
/// `[start, end)` in characters of the formula, for an editor to mark.
#[derive(Debug, PartialEq, Serialize, ToSchema)]
pub struct FormulaProblem {
    /// `formula`, `activity_type`, `region_code`, `parameters.NAME.value`, …
    pub field: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<usize>,
}

impl From<FieldError> for FormulaProblem {
    fn from(e: FieldError) -> FormulaProblem {
        FormulaProblem {
            field: e.field,
            message: e.message,
            line: None,
            column: None,
            start: None,
            end: None,
        }
    }
}

/// What the formula gives for the sample.
#[derive(Debug, Serialize, ToSchema)]
pub struct Preview {
    pub reduction_g: i64,
    /// Points for that reduction with the sample's evidence, before any daily cap.
    pub points: i64,
    pub evidence: Evidence,
    pub points_per_gram: String,
    #[schema(value_type = Vec<Object>)]
    pub breakdown: Vec<Step>,
}

/// Why the sample could not be quantified although the formula is valid (a missing data field, a
/// division by zero, a region value not in force…): the code and message the API would answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewProblem {
    pub code: String,
    pub message: String,
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FormulaCheck {
    /// True when drafting with these fields would pass the formula's and parameters' checks.
    pub valid: bool,
    pub problems: Vec<FormulaProblem>,
    /// The names the formula uses, in order of first appearance (empty when it does not parse).
    pub variables: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<Preview>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview_problem: Option<PreviewProblem>,
}

/// Character offset of a byte offset into `source` (a byte offset inside a character counts that one).
fn char_offset(source: &str, byte: usize) -> usize {
    source.char_indices().take_while(|(i, _)| *i < byte).count()
}

fn formula_problem(source: &str, e: &FormulaError) -> FormulaProblem {
    let (line, column, start, end) = match e {
        FormulaError::Syntax {
            line, column, offset, ..
        } => {
            let start = char_offset(source, *offset);
            (Some(*line), Some(*column), Some(start), Some(start + 1))
        }
        FormulaError::UnknownName {
            name,
            line,
            column,
            offset,
        } => {
            let start = char_offset(source, *offset);
            (
                Some(*line),
                Some(*column),
                Some(start),
                Some(start + name.chars().count()),
            )
        }
        FormulaError::TooComplex => (None, None, None, None),
    };
    FormulaProblem {
        field: "formula".into(),
        message: e.to_string(),
        line,
        column,
        start,
        end,
    }
}

/// Checks the draft's formula against its type, region and parameters and, when it is valid and a sample
/// is given, quantifies the sample with it in `region_code` as of the sample's time (`now` unless given).
pub fn check(req: FormulaCheckRequest, catalog: &Catalog, now: NaiveDateTime) -> FormulaCheck {
    let mut fields = Vec::new();
    let schema = match catalog.activity_type(&req.activity_type) {
        Some(t) => Some(&t.schema),
        None => {
            fields.push(field("activity_type", "unknown activity type"));
            None
        }
    };
    if catalog.region(&req.region_code).is_none() {
        fields.push(field("region_code", "unknown region"));
    }
    let values: BTreeMap<_, _> = check_parameters(&req.parameters, schema, &mut fields);
    let mut problems: Vec<FormulaProblem> = fields.into_iter().map(Into::into).collect();
    let formula = match check_formula(&req.formula, &values, schema, catalog) {
        Ok(f) => Some(f),
        Err(e) => {
            problems.push(formula_problem(&req.formula, &e));
            // The names are still worth listing when only one is unknown.
            crate::domain::formula::Formula::parse(&req.formula).ok()
        }
    };
    let variables = formula
        .as_ref()
        .map(|f| f.variables().to_vec())
        .unwrap_or_default();
    let valid = problems.is_empty();
    let mut result = FormulaCheck {
        valid,
        problems,
        variables,
        preview: None,
        preview_problem: None,
    };
    let (Some(formula), Some(sample), true) = (formula, req.sample, valid) else {
        return result;
    };
    let Some(schema) = schema else { return result };
    let data = match schema.validate(&sample.data) {
        Ok(d) => d,
        Err(errors) => {
            result.preview_problem = Some(problem_of(data_refusal(errors)));
            return result;
        }
    };
    let at = sample.occurred_at.map(|t| t.naive_utc()).unwrap_or(now);
    let evidence = sample.evidence.unwrap_or(Evidence::SelfReport);
    let weights = req.evidence_weights.unwrap_or_default();
    let terms = VersionTerms {
        id: 0,
        activity_type: req.activity_type,
        region_code: req.region_code.clone(),
        version: 0,
        effective_from: at,
        effective_to: None,
        daily_cap_g: None,
        weights,
    };
    let quantified = Version::new(terms, &values, formula)
        .map_err(|message| ("invalid_formula".to_string(), message))
        .and_then(|version| {
            let quantity = catalog
                .quantify(&version, &req.region_code, at, &data, true)
                .map_err(quantify_problem)?;
            let points = points_for(
                quantity.reduction_g,
                quantity.points_per_gram,
                version.weights.weight(evidence),
            )
            .map_err(|e| quantify_problem(QuantifyError::from(e)))?;
            Ok((quantity, points))
        });
    match quantified {
        Ok((quantity, points)) => {
            result.preview = Some(Preview {
                reduction_g: quantity.reduction_g,
                points,
                evidence,
                points_per_gram: quantity.points_per_gram.to_string(),
                breakdown: quantity.breakdown,
            })
        }
        Err((code, message)) => {
            result.preview_problem = Some(PreviewProblem {
                code,
                message,
                errors: Vec::new(),
            })
        }
    }
    result
}

fn quantify_problem(e: QuantifyError) -> (String, String) {
    let error = quantify_error(e);
    (error.code.to_string(), error.detail)
}

fn problem_of(error: crate::error::ApiError) -> PreviewProblem {
    PreviewProblem {
        code: error.code.to_string(),
        message: error.detail,
        errors: error.errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_characters_not_bytes() {
        assert_eq!(char_offset("ab", 1), 1);
        assert_eq!(char_offset("碳a", 3), 1);
        assert_eq!(char_offset("碳a", 99), 2);
    }

    #[test]
    fn a_syntax_error_is_placed_where_it_is() {
        let source = "distance_m * (";
        let e = crate::domain::formula::Formula::parse(source).unwrap_err();
        let p = formula_problem(source, &e);
        assert_eq!(p.field, "formula");
        assert_eq!((p.line, p.column), (Some(1), Some(15)));
        assert_eq!((p.start, p.end), (Some(14), Some(15)));
    }

    #[test]
    fn an_unknown_name_spans_the_name() {
        let source = "碳 + bogus";
        let e = FormulaError::UnknownName {
            name: "bogus".into(),
            line: 1,
            column: 5,
            offset: "碳 + ".len(),
        };
        let p = formula_problem(source, &e);
        assert_eq!((p.start, p.end), (Some(4), Some(9)));
    }
}
