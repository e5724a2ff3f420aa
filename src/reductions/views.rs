//! The JSON shapes of reduction batches.

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::payouts::Paid;
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
    /// Once sold: who bought it, at what price, under which bank reference the payment arrives, and
    /// the proceeds (whole tonnes × price).
    pub buyer: Option<String>,
    pub price_fen_per_tonne: Option<i64>,
    pub bank_reference: Option<String>,
    pub proceeds_fen: Option<i64>,
    pub sold_by: Option<String>,
    pub sold_at: Option<DateTime<Utc>>,
    /// Once settled: what the people were paid, and what the platform kept (its share, and the shares
    /// of people erased since).
    pub distributed_fen: Option<i64>,
    pub platform_fen: Option<i64>,
    pub settled_by: Option<String>,
    pub settled_at: Option<DateTime<Utc>>,
    /// Once retired instead of sold: for whom, why, by which administrator, when.
    pub retired_for: Option<String>,
    pub retirement_reason: Option<String>,
    pub retired_by: Option<String>,
    pub retired_at: Option<DateTime<Utc>>,
}

impl From<&BatchRow> for BatchView {
    fn from(row: &BatchRow) -> BatchView {
        let id = |user: Option<i64>| user.map(|u| u.to_string());
        let at = |t: Option<chrono::NaiveDateTime>| t.map(|t| t.and_utc());
        let (serial_from, serial_to) =
            serial_range(&row.region_code, row.tonnes, row.serial_year, row.serial_first);
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
            buyer: row.buyer.clone(),
            price_fen_per_tonne: row.price_fen_per_tonne,
            bank_reference: row.bank_reference.clone(),
            proceeds_fen: row.proceeds_fen,
            sold_by: id(row.sold_by),
            sold_at: at(row.sold_at),
            distributed_fen: row.distributed_fen,
            platform_fen: row.platform_fen,
            settled_by: id(row.settled_by),
            settled_at: at(row.settled_at),
            retired_for: row.retirement.as_ref().map(|r| r.beneficiary.clone()),
            retirement_reason: row.retirement.as_ref().map(|r| r.reason.clone()),
            retired_by: row.retirement.as_ref().map(|r| r.retired_by.to_string()),
            retired_at: row.retirement.as_ref().map(|r| r.retired_at.and_utc()),
        }
    }
}

/// `POST /api/v1/admin/reduction-batches/{id}/sell`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaleRequest {
    /// The buyer's name as it appears on the contract (1 to 64 characters).
    pub buyer: String,
    /// Fen per tonne, 1 to 1,000,000,000.
    pub price_fen_per_tonne: i64,
    /// The bank's reference of the payment to come: accepted once, by one sale or one deposit.
    pub bank_reference: String,
}

/// `POST /api/v1/admin/reduction-batches/{id}/retire`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRetirementRequest {
    /// Who the tonnes are retired for (1 to 64 characters).
    pub beneficiary: String,
    /// Why: the offset they are claimed for (1 to 500 characters).
    pub reason: String,
}

/// What one settled sale paid the caller (`GET /api/v1/me/incentives`).
#[derive(Debug, Serialize, ToSchema)]
pub struct IncentiveView {
    pub batch_id: String,
    pub region_code: String,
    /// The serials of the tonnes sold.
    pub serial_from: Option<String>,
    pub serial_to: Option<String>,
    pub buyer: Option<String>,
    pub price_fen_per_tonne: Option<i64>,
    /// The caller's granted grams in the batch: what their share was measured by.
    pub granted_g: i64,
    /// Paid into the caller's cash account (0 when the share rounded to nothing).
    pub amount_fen: i64,
    /// The cash transfer that paid it.
    pub transfer_id: Option<String>,
    pub settled_at: Option<DateTime<Utc>>,
}

impl From<Paid> for IncentiveView {
    fn from(p: Paid) -> IncentiveView {
        let (serial_from, serial_to) = serial_range(&p.region_code, p.tonnes, p.serial_year, p.serial_first);
        IncentiveView {
            batch_id: p.batch_id.to_string(),
            serial_from,
            serial_to,
            region_code: p.region_code,
            buyer: p.buyer,
            price_fen_per_tonne: p.price_fen_per_tonne,
            granted_g: p.granted_g,
            amount_fen: p.amount_fen,
            transfer_id: p.transfer_id.map(|t| t.to_string()),
            settled_at: p.settled_at.map(|t| t.and_utc()),
        }
    }
}

/// The first and last serial of an issued batch's tonnes; `None` before issue.
fn serial_range(
    region_code: &str,
    tonnes: Option<i64>,
    year: Option<i32>,
    first: Option<i64>,
) -> (Option<String>, Option<String>) {
    match (tonnes, year, first) {
        (Some(tonnes), Some(year), Some(first)) if tonnes > 0 => (
            Some(serial(region_code, year, first)),
            Some(serial(region_code, year, first + tonnes - 1)),
        ),
        _ => (None, None),
    }
}

impl BatchView {
    /// The view as audited: the state before or after a step.
    pub fn audited(row: &BatchRow) -> serde_json::Value {
        serde_json::to_value(BatchView::from(row)).unwrap_or(serde_json::Value::Null)
    }
}
