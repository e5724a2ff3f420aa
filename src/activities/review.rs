//! The review queue: flagged activities wait for an administrator to approve (credit under the cap of
//! that day) or reject them. Each decision is audited.

use chrono::Utc;
use diesel::prelude::*;

use super::ingest::{cap_book, credit, Credit, Grant};
use super::model::{self, ActivityResult, Status};
use super::rules::{approval_terms, ApprovalTerms};
use super::store;
use crate::audit;
use crate::config::ActivitySettings;
use crate::db::prepared::Planning;
use crate::db::schema::activities;
use crate::db::{self, AnyConnection, Tx};
use crate::domain::catalog::Catalog;
use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::ledger::batch;
use crate::ledger::service::{self as ledger, Cause};
use crate::methodology::requantify::requantify;

crate::text_enum! {
    /// An administrator's decision on a flagged activity.
    pub enum Decision {
        Approve = "approve",
        Reject = "reject",
    }
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
        if before.status != Status::Flagged {
            return Err(ApiError::conflict(
                ErrorCode::InvalidState,
                format!("this activity is {}, not flagged", before.status),
            ));
        }
        // The answer its client was given, as the row holds it now.
        // Exactly this record's: the app and a provider may have used the same client_event_id.
        let key = (
            before.account_id,
            model::poster_of(before.provider_id),
            before.client_event_id.clone(),
        );
        let mut result = store::stored_answers(conn, &[(key.0, key.1, &key.2)], Planning::EachTime)?
            .remove(&key)
            .ok_or_else(|| ApiError::not_found("no such activity"))?
            .1
            .into_result()?;
        let (status, granted_g, points) = match decision {
            Decision::Reject => (Status::Rejected, 0, 0),
            Decision::Approve => {
                let q = requantify(conn, catalog, &before.recorded())?.ok_or_else(|| {
                    ApiError::conflict(
                        ErrorCode::InvalidState,
                        "this activity has no methodology to credit under",
                    )
                })?;
                // The account's row lock first: whoever reads or writes its cap counters, or adds to
                // its trips, holds it.
                batch::lock_accounts(conn, &[before.account_id])?;
                let ApprovalTerms {
                    reasons: same_trip,
                    already,
                } = approval_terms(
                    &before.activity_type,
                    before.provider_id.is_some(),
                    &store::overlapping(conn, &before)?,
                )
                .map_err(|refusal| ApiError::conflict(ErrorCode::DuplicateTrip, refusal.to_string()))?;
                let grant = Grant {
                    account_id: before.account_id,
                    activity_type: &before.activity_type,
                    occurred_at: before.occurred_at,
                    evidence: before.evidence,
                    already,
                };
                let claim = (
                    before.account_id,
                    before.activity_type.as_str(),
                    before.occurred_at,
                );
                let mut book = cap_book(conn, settings, &[claim], Planning::EachTime)?;
                let Credit {
                    status,
                    granted_g: granted,
                    points,
                    reasons,
                } = credit(settings, &grant, &q, &mut book)?;
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
                .filter(activities::status.eq(Status::Flagged)),
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
                )?
                .id,
            )
        } else {
            None
        };
        result.status = status;
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
