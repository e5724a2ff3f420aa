//! Quantifying one activity against the catalog. Failures are the domain's (`QuantifyError`, or the
//! data's field errors); the conversions at the end of this file make them the 4xx every caller answers.

use std::sync::Arc;

use chrono::NaiveDateTime;
use serde_json::{Map, Value};

use crate::domain::catalog::{points_for, Catalog, Evidence, QuantifyError, Quantity, Version};
use crate::domain::data_schema::{only_missing_required, DataValues};
use crate::domain::FieldError;
use crate::error::ApiError;
use crate::error::ErrorCode;

use super::views::MethodologyRef;

#[derive(Debug, Clone)]
pub struct Quantified {
    pub version: Arc<Version>,
    pub quantity: Quantity,
    pub data: DataValues,
    /// Points for the whole reduction (before any cap) under the given evidence.
    pub points: i64,
}

impl Quantified {
    pub fn methodology(&self) -> MethodologyRef {
        MethodologyRef {
            id: self.version.id.to_string(),
            activity_type: self.version.activity_type.clone(),
            region_code: self.version.region_code.clone(),
            version: self.version.version,
        }
    }
}

/// Validates `data` against the type's schema, finds the version in force and evaluates it.
pub fn quantify(
    catalog: &Catalog,
    activity_type: &str,
    region: &str,
    occurred_at: NaiveDateTime,
    data: &Map<String, Value>,
    evidence: Evidence,
    explain: bool,
) -> Result<Quantified, Unquantifiable> {
    let kind = catalog
        .activity_type(activity_type)
        .ok_or_else(|| QuantifyError::UnknownActivityType(activity_type.to_string()))?;
    if catalog.region(region).is_none() {
        return Err(QuantifyError::UnknownRegion(region.to_string()).into());
    }
    let values = kind.schema.validate(data).map_err(Unquantifiable::Data)?;
    let quantified = quantify_values(
        catalog,
        activity_type,
        region,
        occurred_at,
        values,
        evidence,
        explain,
    )?;
    Ok(quantified)
}

/// Finds the version in force and evaluates it on data already checked against the type's schema.
pub fn quantify_values(
    catalog: &Catalog,
    activity_type: &str,
    region: &str,
    occurred_at: NaiveDateTime,
    values: DataValues,
    evidence: Evidence,
    explain: bool,
) -> Result<Quantified, QuantifyError> {
    let version = catalog
        .version_in_force(activity_type, region, occurred_at)?
        .clone();
    let quantity = catalog.quantify(&version, region, occurred_at, &values, explain)?;
    let points = points_for(
        quantity.reduction_g,
        quantity.points_per_gram,
        version.weights.weight(evidence),
    )?;
    Ok(Quantified {
        version,
        quantity,
        data: values,
        points,
    })
}

/// Why an activity's data could not be quantified.
#[derive(Debug, thiserror::Error)]
pub enum Unquantifiable {
    /// The data does not fit its type's schema: every field that is wrong.
    #[error("the data does not fit its type")]
    Data(Vec<FieldError>),
    #[error(transparent)]
    Catalog(#[from] QuantifyError),
}

/// A quantification failure as a 422 with its stable code.
pub fn quantify_error(e: QuantifyError) -> ApiError {
    let code = match &e {
        QuantifyError::UnknownActivityType(_) => ErrorCode::UnknownActivityType,
        QuantifyError::UnknownRegion(_) => ErrorCode::UnknownRegion,
        QuantifyError::NoMethodology { .. } => ErrorCode::NoMethodology,
        QuantifyError::MissingField(_) => ErrorCode::MissingField,
        QuantifyError::NoGridFactor(_) => ErrorCode::NoGridFactor,
        QuantifyError::NoRegionValue { .. } => ErrorCode::NoRegionValue,
        QuantifyError::Evaluation(_) | QuantifyError::Overflow(_) => ErrorCode::EvaluationFailed,
    };
    ApiError::unprocessable(code, e.to_string())
}

impl From<QuantifyError> for ApiError {
    fn from(e: QuantifyError) -> ApiError {
        quantify_error(e)
    }
}

/// The refusal of an event's fields: 422 `missing_field` when all that is wrong is data fields the type
/// requires and the event lacks (the contract's code for data the formula needs), else
/// `validation_failed`; either way every field is named.
pub fn data_refusal(errors: Vec<FieldError>) -> ApiError {
    let only_missing = only_missing_required(&errors);
    let refused = ApiError::validation(errors);
    if only_missing {
        refused.with_code(ErrorCode::MissingField)
    } else {
        refused
    }
}

impl From<Unquantifiable> for ApiError {
    fn from(e: Unquantifiable) -> ApiError {
        match e {
            Unquantifiable::Data(errors) => data_refusal(errors),
            Unquantifiable::Catalog(e) => quantify_error(e),
        }
    }
}
