//! What the unit tests of `activities` build events from.

use std::sync::Arc;

use rust_decimal::Decimal;

use crate::domain::catalog::{EvidenceWeights, Quantity, Version, VersionTerms};
use crate::domain::data_schema::DataValues;
use crate::domain::formula::Formula;
use crate::methodology::quantify::Quantified;

/// A quantification of `reduction_g` grams under a version of `activity_type` with the formula `units`,
/// no daily cap and the default evidence weights, at `points_per_gram`.
pub fn quantified(activity_type: &str, reduction_g: i64, points_per_gram: Decimal) -> Quantified {
    let terms = VersionTerms {
        id: 1,
        activity_type: activity_type.into(),
        region_code: "CN".into(),
        version: 1,
        effective_from: chrono::NaiveDateTime::default(),
        effective_to: None,
        daily_cap_g: None,
        weights: EvidenceWeights::default(),
    };
    let formula = Formula::parse("units").expect("a formula");
    Quantified {
        version: Arc::new(Version::new(terms, &Default::default(), formula).expect("a version")),
        quantity: Quantity {
            reduction_g,
            points_per_gram,
            region_parameters_id: None,
            breakdown: Vec::new(),
        },
        data: DataValues::new(),
        points: reduction_g,
    }
}
