//! What a version changes against the one it replaces: shown to the approver before activation. Pure.

use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::store::VersionRow;
use super::views::{utc, MethodologyRef};

/// One term that differs; `before` is absent for what the replaced version lacks (or when nothing is
/// replaced), `after` for what this version drops.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Change {
    /// `effective_from`, `effective_to`, `formula`, `daily_cap_g`, `parameters.NAME` or
    /// `evidence_weights.TIER`.
    pub field: String,
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

/// A version beside the one it replaces.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionDiff {
    pub id: String,
    /// The active version of the same type and region in force when this one takes effect, if any.
    pub replaces: Option<MethodologyRef>,
    /// Every term that differs, in a fixed order; empty when nothing does.
    pub changes: Vec<Change>,
}

/// The terms compared, each as JSON: dates, formula, cap, then one entry per parameter and weight.
fn terms(row: &VersionRow) -> Vec<(String, Value)> {
    let mut terms = vec![
        ("effective_from".to_string(), json!(utc(row.effective_from))),
        ("effective_to".to_string(), json!(row.effective_to.map(utc))),
        ("formula".to_string(), json!(row.formula)),
        ("daily_cap_g".to_string(), json!(row.daily_cap_g)),
    ];
    for (name, parameter) in row.parameters() {
        terms.push((format!("parameters.{name}"), json!(parameter)));
    }
    let w = row.weights();
    for (tier, weight) in [
        ("operator", w.operator),
        ("trace", w.trace),
        ("photo", w.photo),
        ("self_report", w.self_report),
    ] {
        // Compared as numbers: "1.0" and "1" are the same weight.
        terms.push((
            format!("evidence_weights.{tier}"),
            json!(weight.normalize().to_string()),
        ));
    }
    terms
}

/// The terms of `after` that differ from `before`'s (all of them when nothing is replaced); a JSON null is
/// an absent value (an open end, no cap).
pub fn diff(before: Option<&VersionRow>, after: &VersionRow) -> VersionDiff {
    let old = before.map(terms).unwrap_or_default();
    let new = terms(after);
    let present = |v: Option<&Value>| v.filter(|v| !v.is_null()).cloned();
    let find =
        |list: &[(String, Value)], field: &str| list.iter().find(|(f, _)| f == field).map(|(_, v)| v.clone());
    let mut fields: Vec<&String> = new.iter().map(|(f, _)| f).collect();
    fields.extend(
        old.iter()
            .map(|(f, _)| f)
            .filter(|f| !new.iter().any(|(n, _)| n == *f)),
    );
    let changes = fields
        .into_iter()
        .filter_map(|field| {
            let (b, a) = (
                present(find(&old, field).as_ref()),
                present(find(&new, field).as_ref()),
            );
            (b != a).then(|| Change {
                field: field.clone(),
                before: b,
                after: a,
            })
        })
        .collect();
    VersionDiff {
        id: after.id.to_string(),
        replaces: before.map(|b| MethodologyRef {
            id: b.id.to_string(),
            activity_type: b.activity_type.clone(),
            region_code: b.region_code.clone(),
            version: b.version,
        }),
        changes,
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::methodology::store::MethodologyStatus;

    fn version(id: i64, formula: &str, parameters: &str, cap: Option<i64>) -> VersionRow {
        let t = NaiveDate::from_ymd_opt(2025, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        VersionRow {
            id,
            activity_type: "transit.bus".into(),
            region_code: "440300".into(),
            version: id as i32,
            status: MethodologyStatus::Draft,
            effective_from: t,
            effective_to: None,
            parameters: parameters.into(),
            formula: formula.into(),
            daily_cap_g: cap,
            evidence_weights: r#"{"operator":"1","trace":"1","photo":"0.7","self_report":"0.5"}"#.into(),
            citation: "test".into(),
            drafted_by: None,
            approved_by: None,
            created_at: t,
            activated_at: None,
            retired_at: None,
            retire_requested_by: None,
            retire_requested_at: None,
        }
    }

    #[test]
    fn only_what_differs_is_listed_with_both_sides() {
        let k = |v: &str| {
            format!(
                r#"{{"k":{{"value":"{v}","unit":"g","source":"s"}},"old":{{"value":"1","unit":"","source":""}}}}"#
            )
        };
        let old = version(1, "count * k", &k("80"), Some(1000));
        let mut new = version(
            2,
            "count * k * 2",
            r#"{"k":{"value":"90","unit":"g","source":"s"},"new":{"value":"2","unit":"","source":""}}"#,
            None,
        );
        new.evidence_weights =
            r#"{"operator":"1.0","trace":"0.9","photo":"0.70","self_report":"0.5"}"#.into();
        let d = diff(Some(&old), &new);
        assert_eq!(d.replaces.as_ref().map(|r| r.id.as_str()), Some("1"));
        let fields: Vec<&str> = d.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "formula",
                "daily_cap_g",
                "parameters.k",
                "parameters.new",
                "evidence_weights.trace",
                "parameters.old"
            ]
        );
        assert_eq!(d.changes[1].before, Some(json!(1000)));
        assert_eq!(d.changes[1].after, None, "no cap any more");
        assert_eq!(d.changes[2].before.as_ref().unwrap()["value"], "80");
        assert_eq!(d.changes[2].after.as_ref().unwrap()["value"], "90");
        assert_eq!(d.changes[3].before, None);
        assert_eq!(d.changes[5].after, None);
        assert!(diff(Some(&old), &old).changes.is_empty());
    }

    #[test]
    fn a_version_replacing_nothing_lists_every_term_it_sets() {
        let new = version(
            2,
            "count * k",
            r#"{"k":{"value":"90","unit":"g","source":"s"}}"#,
            Some(5),
        );
        let d = diff(None, &new);
        assert!(d.replaces.is_none());
        assert!(d.changes.iter().all(|c| c.before.is_none()));
        let fields: Vec<&str> = d.changes.iter().map(|c| c.field.as_str()).collect();
        assert!(fields.contains(&"formula") && fields.contains(&"parameters.k"));
        assert!(!fields.contains(&"effective_to"), "an open end is no term");
    }
}
