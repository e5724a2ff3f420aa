//! The terms of an offer and their rules, without I/O.

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::catalog::Catalog;
use crate::error::FieldError;
use crate::partners::PartnerKind;

pub const MAX_POINTS_COST: i64 = 1_000_000_000;
pub const MAX_STOCK: i64 = 1_000_000_000;
pub const MAX_PER_USER_LIMIT: i64 = 10_000;
pub const MAX_VALUE_FEN: i64 = 100_000_000_000;

/// A new offer.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOffer {
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Points one redemption costs.
    pub points_cost: i64,
    /// What the benefit is worth in fen (required for green-credit partners; stated on the voucher).
    pub value_fen: Option<i64>,
    /// Units available.
    pub stock: i64,
    /// Held and captured redemptions one account may have of this offer.
    #[serde(default = "one")]
    pub per_user_limit: i64,
    #[serde(deserialize_with = "crate::http::timestamp::required")]
    pub valid_from: DateTime<FixedOffset>,
    #[serde(deserialize_with = "crate::http::timestamp::required")]
    pub valid_to: DateTime<FixedOffset>,
    /// Where it is offered (the partner's gates, branches or counters).
    pub region_codes: Vec<String>,
    /// Only people whose home region lies within `region_codes` may redeem it; by default visitors may too.
    #[serde(default)]
    pub residents_only: bool,
}

fn one() -> i64 {
    1
}

/// Changes to an offer; absent fields stay as they are. `stock` sets the units left.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub points_cost: Option<i64>,
    pub value_fen: Option<i64>,
    pub stock: Option<i64>,
    pub per_user_limit: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::timestamp::optional")]
    pub valid_from: Option<DateTime<FixedOffset>>,
    #[serde(default, deserialize_with = "crate::http::timestamp::optional")]
    pub valid_to: Option<DateTime<FixedOffset>>,
    pub region_codes: Option<Vec<String>>,
    pub residents_only: Option<bool>,
    /// false withdraws the offer (held redemptions can still be captured).
    pub active: Option<bool>,
}

/// The terms as stored (times in UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub title: String,
    pub description: String,
    pub points_cost: i64,
    pub value_fen: Option<i64>,
    pub stock: i64,
    pub per_user_limit: i64,
    pub valid_from: NaiveDateTime,
    pub valid_to: NaiveDateTime,
    pub region_codes: Vec<String>,
    pub residents_only: bool,
}

impl From<NewOffer> for Terms {
    fn from(o: NewOffer) -> Terms {
        Terms {
            title: o.title.trim().to_string(),
            description: o.description.trim().to_string(),
            points_cost: o.points_cost,
            value_fen: o.value_fen,
            stock: o.stock,
            per_user_limit: o.per_user_limit,
            valid_from: o.valid_from.naive_utc(),
            valid_to: o.valid_to.naive_utc(),
            region_codes: o.region_codes,
            residents_only: o.residents_only,
        }
    }
}

impl Terms {
    /// These terms with a patch applied.
    pub fn patched(mut self, p: OfferPatch) -> Terms {
        if let Some(v) = p.title {
            self.title = v.trim().to_string();
        }
        if let Some(v) = p.description {
            self.description = v.trim().to_string();
        }
        if let Some(v) = p.points_cost {
            self.points_cost = v;
        }
        if p.value_fen.is_some() {
            self.value_fen = p.value_fen;
        }
        if let Some(v) = p.stock {
            self.stock = v;
        }
        if let Some(v) = p.per_user_limit {
            self.per_user_limit = v;
        }
        if let Some(v) = p.valid_from {
            self.valid_from = v.naive_utc();
        }
        if let Some(v) = p.valid_to {
            self.valid_to = v.naive_utc();
        }
        if let Some(v) = p.region_codes {
            self.region_codes = v;
        }
        if let Some(v) = p.residents_only {
            self.residents_only = v;
        }
        self
    }

    /// Every rule the terms break, one entry per field. `partner_regions` are the regions the partner
    /// serves: an offer's regions must lie within them.
    pub fn errors(
        &self,
        partner_kind: PartnerKind,
        partner_regions: &[String],
        catalog: &Catalog,
    ) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut error = |field: &str, message: String| {
            errors.push(FieldError {
                field: field.into(),
                message,
            })
        };
        if self.title.is_empty() || self.title.chars().count() > 100 {
            error("title", "must be 1 to 100 characters".into());
        }
        if self.description.chars().count() > 2000 {
            error("description", "at most 2000 characters".into());
        }
        if !(1..=MAX_POINTS_COST).contains(&self.points_cost) {
            error("points_cost", format!("must be between 1 and {MAX_POINTS_COST}"));
        }
        match self.value_fen {
            Some(v) if !(0..=MAX_VALUE_FEN).contains(&v) => {
                error("value_fen", format!("must be between 0 and {MAX_VALUE_FEN}"))
            }
            None if partner_kind == PartnerKind::GreenCredit => error(
                "value_fen",
                "is required for green-credit offers: what the benefit is worth in fen".into(),
            ),
            _ => {}
        }
        if !(0..=MAX_STOCK).contains(&self.stock) {
            error("stock", format!("must be between 0 and {MAX_STOCK}"));
        }
        if !(1..=MAX_PER_USER_LIMIT).contains(&self.per_user_limit) {
            error(
                "per_user_limit",
                format!("must be between 1 and {MAX_PER_USER_LIMIT}"),
            );
        }
        if self.valid_to <= self.valid_from {
            error("valid_to", "must be after valid_from".into());
        }
        if self.region_codes.is_empty() {
            error("region_codes", "name at least one region".into());
        }
        for code in &self.region_codes {
            if catalog.region(code).is_none() {
                error("region_codes", format!("unknown region {code}"));
            } else if !partner_regions
                .iter()
                .any(|served| catalog.is_within(code, served))
            {
                error(
                    "region_codes",
                    format!("{code} is outside the regions this partner serves"),
                );
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::RegionInfo;

    fn sample_catalog() -> Catalog {
        let region = |code: &str, parent: Option<&str>| RegionInfo {
            code: code.into(),
            parent: parent.map(Into::into),
            grid_region: None,
        };
        Catalog::new(
            vec![
                region("CN", None),
                region("110000", Some("CN")),
                region("440000", Some("CN")),
                region("440300", Some("440000")),
            ],
            vec![],
            vec![],
            vec![],
        )
    }

    fn terms() -> Terms {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().naive_utc();
        Terms {
            title: "一日票".into(),
            description: String::new(),
            points_cost: 500,
            value_fen: None,
            stock: 10,
            per_user_limit: 1,
            valid_from: t("2026-01-01T00:00:00+08:00"),
            valid_to: t("2027-01-01T00:00:00+08:00"),
            region_codes: vec!["440300".into()],
            residents_only: false,
        }
    }

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn good_terms_pass_and_each_bad_field_is_named() {
        let catalog = sample_catalog();
        let served = vec!["440000".to_string()];
        assert!(terms().errors(PartnerKind::Transit, &served, &catalog).is_empty());
        let mut bad = terms();
        bad.points_cost = -1;
        bad.stock = -5;
        bad.valid_to = bad.valid_from;
        assert_eq!(
            fields(bad.errors(PartnerKind::Transit, &served, &catalog)),
            ["points_cost", "stock", "valid_to"]
        );
    }

    #[test]
    fn regions_must_exist_and_lie_within_the_partners() {
        let catalog = sample_catalog();
        let mut t = terms();
        t.region_codes = vec!["110000".into(), "999999".into()];
        let errors = t.errors(PartnerKind::Transit, &["440000".to_string()], &catalog);
        assert_eq!(errors.len(), 2);
        assert!(errors[0].message.contains("outside"));
        assert!(errors[1].message.contains("unknown"));
    }

    #[test]
    fn green_credit_offers_state_their_value() {
        let catalog = sample_catalog();
        let served = vec!["CN".to_string()];
        assert_eq!(
            fields(terms().errors(PartnerKind::GreenCredit, &served, &catalog)),
            ["value_fen"]
        );
        let mut t = terms();
        t.value_fen = Some(200);
        assert!(t.errors(PartnerKind::GreenCredit, &served, &catalog).is_empty());
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let patched = terms().patched(OfferPatch {
            stock: Some(3),
            title: Some("  两日票 ".into()),
            ..OfferPatch::default()
        });
        assert_eq!(patched.stock, 3);
        assert_eq!(patched.title, "两日票");
        assert_eq!(patched.points_cost, 500);
    }
}
