//! The review queue: flagged activities wait for an administrator to approve (credit under the cap of
//! that day) or reject them. Each decision is audited.

use chrono::Utc;
use diesel::prelude::*;

use super::ingest::{approval_terms, cap_book, credit, ActivityResult, Grant};
use super::store::{self, ActivityRow};
use crate::audit;
use crate::config::ActivitySettings;
use crate::db::prepared::Planning;
use crate::db::schema::activities;
use crate::db::{self, AnyConnection, Tx};
use crate::domain::catalog::{points_for, Catalog, Evidence};
use crate::domain::data_schema::DataValues;
use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::ledger::batch;
use crate::ledger::service::{self as ledger, Cause};
use crate::methodology::quantify::Quantified;
use crate::methodology::store as methodology_store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Approve,
    Reject,
}

fn evidence_of(row: &ActivityRow) -> Evidence {
    serde_json::from_value(serde_json::Value::String(row.evidence.clone())).unwrap_or(Evidence::SelfReport)
}

/// Re-quantifies a stored activity with the version it recorded (results are reproducible).
pub fn requantify(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    row: &ActivityRow,
) -> Result<Option<Quantified>, ApiError> {
    let Some(version_id) = row.methodology_id else {
        return Ok(None);
    };
    let version = methodology_store::find_version(conn, version_id)?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("activity {} names a missing version", row.id)))?
        .to_version()
        .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
    let data: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&row.data).unwrap_or_default();
    let values: DataValues = data
        .iter()
        .filter_map(|(k, v)| crate::domain::data_schema::exact_decimal(v).map(|d| (k.clone(), d)))
        .collect();
    let quantity = catalog
        .quantify(&version, &row.region_code, row.occurred_at, &values, true)
        .map_err(crate::methodology::quantify::quantify_error)?;
    let points = points_for(
        quantity.reduction_g,
        quantity.points_per_gram,
        version.weights.weight(evidence_of(row)),
    );
    Ok(Some(Quantified {
        version: std::sync::Arc::new(version),
        quantity,
        data: values,
        points,
    }))
}

pub fn decide(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    settings: &ActivitySettings,
    admin: i64,
    id: i64,
    decision: Decision,
    note: &str,
) -> Result<ActivityResult, ApiError> {
    db::transaction(conn, Tx::Write, |conn| {
        let before = store::find(conn, id)?.ok_or_else(|| ApiError::not_found("no such activity"))?;
        if before.status != "flagged" {
            return Err(ApiError::conflict(
                ErrorCode::InvalidState,
                format!("this activity is {}, not flagged", before.status),
            ));
        }
        // The answer its client was given, as the row holds it now.
        // Exactly this record's: the app and a provider may have used the same client_event_id.
        let key = (
            before.account_id,
            store::poster_of(before.provider_id),
            before.client_event_id.clone(),
        );
        let mut result = store::stored_answers(conn, &[(key.0, key.1, &key.2)], Planning::EachTime)?
            .remove(&key)
            .ok_or_else(|| ApiError::not_found("no such activity"))?
            .1
            .into_result()?;
        let (status, granted_g, points) = match decision {
            Decision::Reject => ("rejected", 0, 0),
            Decision::Approve => {
                let q = requantify(conn, catalog, &before)?.ok_or_else(|| {
                    ApiError::conflict(
                        ErrorCode::InvalidState,
                        "this activity has no methodology to credit under",
                    )
                })?;
                // The account's row lock first: whoever reads or writes its cap counters, or adds to
                // its trips, holds it.
                batch::lock_accounts(conn, &[before.account_id])?;
                let (same_trip, already) = approval_terms(
                    &before.activity_type,
                    before.provider_id.is_some(),
                    &store::overlapping(conn, &before)?,
                )?;
                let grant = Grant {
                    account_id: before.account_id,
                    activity_type: &before.activity_type,
                    occurred_at: before.occurred_at,
                    evidence: evidence_of(&before),
                    already,
                };
                let claim = (
                    before.account_id,
                    before.activity_type.as_str(),
                    before.occurred_at,
                );
                let mut book = cap_book(conn, settings, &[claim], Planning::EachTime)?;
                let (status, granted, points, reasons) = credit(settings, &grant, &q, &mut book)?;
                book.write(conn)?;
                result.reasons.extend(same_trip);
                result.reasons.extend(reasons);
                (status, granted, points)
            }
        };
        // Only a still-flagged row is decided: two admins deciding at once cannot both credit.
        let changed = diesel::update(
            activities::table
                .find(id)
                .filter(activities::status.eq("flagged")),
        )
        .set((
            activities::status.eq(status),
            activities::granted_g.eq(granted_g),
            activities::points.eq(points),
            activities::reasons.eq(serde_json::to_string(&result.reasons).map_err(ApiError::internal)?),
            activities::review_note.eq(note),
            activities::reviewed_by.eq(admin),
            activities::reviewed_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)?;
        if changed != 1 {
            return Err(ApiError::conflict(
                ErrorCode::InvalidState,
                "this activity was decided meanwhile",
            ));
        }
        let transfer_id = if points > 0 {
            Some(
                ledger::issue(
                    conn,
                    &before.region_code,
                    before.account_id,
                    points,
                    &Cause::of("activity", id),
                    crate::ledger::store::now(),
                )?
                .id,
            )
        } else {
            None
        };
        result.status = status.to_string();
        result.granted_g = granted_g;
        result.points = points;
        diesel::update(activities::table.find(id))
            .set(activities::transfer_id.eq(transfer_id))
            .execute(conn)?;
        audit::record(
            conn,
            Some(admin),
            match decision {
                Decision::Approve => "review.approve",
                Decision::Reject => "review.reject",
            },
            "activity",
            &id.to_string(),
            Some(serde_json::json!({"status": before.status, "points": before.points})),
            Some(
                serde_json::json!({"status": status, "points": points, "granted_g": granted_g, "note": note}),
            ),
        )?;
        Ok(result)
    })
}
