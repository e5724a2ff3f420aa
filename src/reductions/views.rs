//! The JSON shapes of reduction batches.

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::serials::{serial, whole_tonnes};
use super::store::{BatchRow, BatchStatus};

/// `POST /api/v1/admin/reduction-batches`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftRequest {
    /// The region whose subtree the batch pools (`CN`: the nation); the caller must govern it.
    pub region_code: String,
    /// Only activities of these types (at most 64); every type when left out.
    pub activity_types: Option<Vec<String>>,
    /// Start of the window of `occurred_at` (inclusive), RFC 3339.
    #[serde(deserialize_with = "crate::http::timestamp::required")]
    pub from: DateTime<FixedOffset>,
    /// End of the window (exclusive), at most 366 days after `from`.
    #[serde(deserialize_with = "crate::http::timestamp::required")]
    pub to: DateTime<FixedOffset>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchView {
    pub batch_id: String,
    pub status: BatchStatus,
    pub region_code: String,
    /// `null`: every type.
    pub activity_types: Option<Vec<String>>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// How many activities the batch holds.
    pub activities: i64,
    /// The granted grams of its activities (what their points were issued for).
    pub reduction_g: i64,
    /// Whole tonnes, once issued.
    pub tonnes: Option<i64>,
    /// The grams beyond the whole tonnes, never issued; set once issued.
    pub remainder_g: Option<i64>,
    /// `CN-{region_code}-{year}-{n:06}`: the first and last serial of the issued tonnes.
    pub serial_from: Option<String>,
    pub serial_to: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub submitted_by: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub verified_by: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
    pub issued_by: Option<String>,
    pub issued_at: Option<DateTime<Utc>>,
}

impl From<&BatchRow> for BatchView {
    fn from(row: &BatchRow) -> BatchView {
        let id = |user: Option<i64>| user.map(|u| u.to_string());
        let at = |t: Option<chrono::NaiveDateTime>| t.map(|t| t.and_utc());
        let serials = match (row.tonnes, row.serial_year, row.serial_first) {
            (Some(tonnes), Some(year), Some(first)) if tonnes > 0 => Some((
                serial(&row.region_code, year, first),
                serial(&row.region_code, year, first + tonnes - 1),
            )),
            _ => None,
        };
        let (serial_from, serial_to) = serials.unzip();
        BatchView {
            batch_id: row.id.to_string(),
            status: row.status,
            region_code: row.region_code.clone(),
            activity_types: row
                .activity_types
                .as_deref()
                .and_then(|json| serde_json::from_str(json).ok()),
            from: row.window_from.and_utc(),
            to: row.window_to.and_utc(),
            activities: row.activities,
            reduction_g: row.reduction_g,
            tonnes: row.tonnes,
            remainder_g: row.tonnes.map(|_| whole_tonnes(row.reduction_g).1),
            serial_from,
            serial_to,
            created_by: row.created_by.to_string(),
            created_at: row.created_at.and_utc(),
            submitted_by: id(row.submitted_by),
            submitted_at: at(row.submitted_at),
            verified_by: id(row.verified_by),
            verified_at: at(row.verified_at),
            issued_by: id(row.issued_by),
            issued_at: at(row.issued_at),
        }
    }
}

impl BatchView {
    /// The view as audited: the state before or after a step.
    pub fn audited(row: &BatchRow) -> serde_json::Value {
        serde_json::to_value(BatchView::from(row)).unwrap_or(serde_json::Value::Null)
    }
}
