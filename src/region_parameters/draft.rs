//! Checking a region-parameter draft before anything is stored.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime};
use rust_decimal::Decimal;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::catalog::Catalog;
use crate::domain::region_parameters::check_values;
use crate::domain::FieldError;
use crate::methodology::draft::CITATION_MAX_CHARS;

/// How much later than the latest `occurred_at` an activity may carry now (its clock skew allowance) a new
/// version may start at the earliest: the time for every instance to load it (one catalog poll, 250 ms)
/// and for requests quantified before that to be written, with room to spare. No activity is ever
/// quantified under the old values at an instant the new version covers, so no past result changes.
pub const ACTIVATION_MARGIN: Duration = Duration::seconds(60);

/// The earliest `effective_from` a version may be drafted or activated with at `now`, when activities may
/// be dated up to `future_skew_secs` ahead of the clock.
pub fn earliest_start(now: NaiveDateTime, future_skew_secs: i64) -> NaiveDateTime {
    now + Duration::seconds(future_skew_secs) + ACTIVATION_MARGIN
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftRequest {
    pub region_code: String,
    /// RFC 3339 with offset; in the future (see the governance guide for how far).
    #[serde(deserialize_with = "crate::http::timestamp::required")]
    pub effective_from: DateTime<FixedOffset>,
    /// The region's own values, name → decimal string: `points_per_gram`, `grid_ef_g_per_kwh`,
    /// `points_validity_days`, `trading_enabled` ("0"/"1"), or any name a formula reads as `region.NAME`.
    /// Names left out are inherited from the parent region.
    #[schema(value_type = Object)]
    pub values: BTreeMap<String, String>,
    /// Where the values come from.
    pub citation: Option<String>,
}

/// A partial change to a draft; `values`, when given, replaces all of the draft's values.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    #[serde(default, deserialize_with = "crate::http::timestamp::optional")]
    pub effective_from: Option<DateTime<FixedOffset>>,
    #[schema(value_type = Option<Object>)]
    pub values: Option<BTreeMap<String, String>>,
    pub citation: Option<String>,
}

/// A draft that passed every check.
#[derive(Debug, Clone)]
pub struct ValidDraft {
    pub region_code: String,
    pub effective_from: NaiveDateTime,
    pub values: BTreeMap<String, Decimal>,
    pub citation: String,
}

impl ValidDraft {
    /// The values as stored: name → decimal text.
    pub fn values_json(&self) -> String {
        let texts: BTreeMap<&str, String> = self
            .values
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_string()))
            .collect();
        serde_json::to_string(&texts).unwrap_or_default()
    }
}

/// What a draft says, before it is checked: a new one's request, or a stored one with an edit applied.
pub struct Proposal {
    pub region_code: String,
    pub effective_from: NaiveDateTime,
    pub values: BTreeMap<String, String>,
    pub citation: String,
}

impl From<DraftRequest> for Proposal {
    fn from(req: DraftRequest) -> Proposal {
        Proposal {
            region_code: req.region_code,
            effective_from: req.effective_from.naive_utc(),
            values: req.values,
            citation: req.citation.unwrap_or_default(),
        }
    }
}

fn field(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks a proposal: a known region, a start no earlier than `earliest`, values that are decimals within
/// their meaning, a citation of bounded length. Every field at fault is named.
pub fn check(
    proposal: Proposal,
    catalog: &Catalog,
    earliest: NaiveDateTime,
) -> Result<ValidDraft, Vec<FieldError>> {
    let mut errors = Vec::new();
    if catalog.region(&proposal.region_code).is_none() {
        errors.push(field("region_code", "unknown region"));
    }
    if proposal.effective_from < earliest {
        errors.push(field(
            "effective_from",
            format!(
                "must be {} or later: a version only starts in the future, so no past result changes",
                earliest.and_utc().to_rfc3339()
            ),
        ));
    }
    let values = check_values(&proposal.values).unwrap_or_else(|e| {
        errors.extend(e);
        BTreeMap::new()
    });
    let citation = proposal.citation.trim().to_string();
    if citation.chars().count() > CITATION_MAX_CHARS {
        errors.push(field(
            "citation",
            format!("at most {CITATION_MAX_CHARS} characters"),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ValidDraft {
        region_code: proposal.region_code,
        effective_from: proposal.effective_from,
        values,
        citation,
    })
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::domain::catalog::RegionInfo;

    fn catalog() -> Catalog {
        let region = |code: &str, parent: Option<&str>| RegionInfo {
            code: code.into(),
            parent: parent.map(Into::into),
            grid_region: None,
        };
        Catalog::new(
            vec![region("CN", None), region("440000", Some("CN"))],
            vec![],
            vec![],
            vec![],
        )
    }

    fn proposal(region: &str, from: NaiveDateTime, values: &[(&str, &str)]) -> Proposal {
        Proposal {
            region_code: region.into(),
            effective_from: from,
            values: values
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            citation: " a source ".into(),
        }
    }

    #[test]
    fn a_version_starts_after_the_skew_activities_may_have_and_a_margin() {
        let now = NaiveDate::from_ymd_opt(2027, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let earliest = earliest_start(now, 300);
        assert_eq!(earliest, now + Duration::seconds(360));
        let c = catalog();
        let ok = check(
            proposal("440000", earliest, &[("points_per_gram", "2.50")]),
            &c,
            earliest,
        )
        .unwrap();
        assert_eq!(ok.values_json(), r#"{"points_per_gram":"2.5"}"#);
        assert_eq!(ok.citation, "a source");
        let too_soon = earliest - Duration::microseconds(1);
        let errors = check(
            proposal("999999", too_soon, &[("trading_enabled", "2")]),
            &c,
            earliest,
        )
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["region_code", "effective_from", "values.trading_enabled"]
        );
    }
}
