//! Quantifying one activity against the catalog, with every failure as a clear 4xx.

use std::sync::Arc;

use chrono::NaiveDateTime;
use serde_json::{Map, Value};

use crate::domain::catalog::{points_for, Catalog, Evidence, QuantifyError, Quantity, Version};
use crate::domain::data_schema::DataValues;
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

pub fn quantify_error(e: QuantifyError) -> ApiError {
    let code = match &e {
        QuantifyError::UnknownActivityType(_) => ErrorCode::UnknownActivityType,
        QuantifyError::UnknownRegion(_) => ErrorCode::UnknownRegion,
        QuantifyError::NoMethodology { .. } => ErrorCode::NoMethodology,
        QuantifyError::MissingField(_) => ErrorCode::MissingField,
        QuantifyError::NoGridFactor(_) => ErrorCode::NoGridFactor,
        QuantifyError::Evaluation(_) => ErrorCode::EvaluationFailed,
    };
    ApiError::unprocessable(code, e.to_string())
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
) -> Result<Quantified, ApiError> {
    let kind = catalog
        .activity_type(activity_type)
        .ok_or_else(|| quantify_error(QuantifyError::UnknownActivityType(activity_type.to_string())))?;
    if catalog.region(region).is_none() {
        return Err(quantify_error(QuantifyError::UnknownRegion(region.to_string())));
    }
    let values = kind
        .schema
        .validate(data)
        .map_err(crate::domain::data_schema::refusal)?;
    quantify_values(
        catalog,
        activity_type,
        region,
        occurred_at,
        values,
        evidence,
        explain,
    )
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
) -> Result<Quantified, ApiError> {
    let version = catalog
        .version_in_force(activity_type, region, occurred_at)
        .map_err(quantify_error)?
        .clone();
    let quantity = catalog
        .quantify(&version, region, occurred_at, &values, explain)
        .map_err(quantify_error)?;
    let points = points_for(
        quantity.reduction_g,
        quantity.points_per_gram,
        version.weights.weight(evidence),
    );
    Ok(Quantified {
        version,
        quantity,
        data: values,
        points,
    })
}
