//! The published content of a methodology version: everything needed to apply it elsewhere.

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::AnyConnection;
use crate::domain::catalog::EvidenceWeights;
use crate::methodology::store::{self, MethodologyStatus, Parameters, VersionRow};
use crate::methodology::views::utc;

/// The JWS `typ` of a published methodology version.
pub const TYP: &str = "tanhui-methodology+json";

/// A methodology version as published. The formula's names are its parameters (by name), the activity's
/// `data` fields (by name, as the data schema defines them) and region values (`region.NAME`); it yields
/// grams of CO₂e avoided, rounded half away from zero to a whole gram.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedMethodology {
    pub issuer: &'static str,
    pub id: String,
    pub activity_type: PublishedActivityType,
    pub region_code: String,
    pub version: i32,
    pub status: MethodologyStatus,
    pub effective_from: DateTime<Utc>,
    pub effective_to: Option<DateTime<Utc>>,
    pub formula: String,
    /// Each with its value (a decimal string), unit and source.
    #[schema(value_type = Object)]
    pub parameters: Parameters,
    pub daily_cap_g: Option<i64>,
    /// The share of the reduction earned as points for each kind of evidence.
    #[schema(value_type = Object)]
    pub evidence_weights: EvidenceWeights,
    pub citation: String,
    /// The earlier version of the same activity type and region that this one follows, if any.
    pub replaces: Option<VersionRef>,
    pub activated_at: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionRef {
    pub id: String,
    pub version: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedActivityType {
    pub code: String,
    pub name: String,
    pub unit: String,
    /// The JSON schema the activity's `data` follows.
    #[schema(value_type = Object)]
    pub data_schema: serde_json::Value,
    pub claim_window_days: i32,
}

/// The published document of version `id`: `None` unless it is active or retired (drafts are not rules).
pub fn published(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<PublishedMethodology>> {
    let Some(row) = store::find_version(conn, id)? else {
        return Ok(None);
    };
    if row.status == MethodologyStatus::Draft {
        return Ok(None);
    }
    let Some(kind) = store::find_activity_type(conn, &row.activity_type)? else {
        return Ok(None);
    };
    let replaces = store::previous_published(conn, &row)?.map(|p| VersionRef {
        id: p.id.to_string(),
        version: p.version,
    });
    Ok(Some(document(row, kind, replaces)))
}

fn document(
    row: VersionRow,
    kind: store::ActivityTypeRow,
    replaces: Option<VersionRef>,
) -> PublishedMethodology {
    PublishedMethodology {
        issuer: crate::redemptions::voucher::ISSUER,
        id: row.id.to_string(),
        parameters: row.parameters(),
        evidence_weights: row.weights(),
        activity_type: PublishedActivityType {
            data_schema: serde_json::from_str(&kind.data_schema).unwrap_or_default(),
            code: kind.code,
            name: kind.name,
            unit: kind.unit,
            claim_window_days: kind.claim_window_days,
        },
        region_code: row.region_code,
        version: row.version,
        status: row.status,
        effective_from: utc(row.effective_from),
        effective_to: row.effective_to.map(utc),
        formula: row.formula,
        daily_cap_g: row.daily_cap_g,
        citation: row.citation,
        replaces,
        activated_at: row.activated_at.map(utc),
        retired_at: row.retired_at.map(utc),
    }
}
