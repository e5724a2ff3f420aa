//! The review queue: flagged activities wait for an administrator to approve (credit under the cap of
//! that day) or reject them. Each decision is audited.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::ingest::{cap_book, overflow_refusal};
use super::model::{self, ActivityResult, BrokenAnswer, Status};
use super::rollups;
use super::rules::allowance::{credit, Credit, Grant, GrantError};
use super::rules::{approval_terms, ApprovalTerms, OperatorRecordStands, Unapprovable};
use super::store::{self, ActivityRow};
use crate::audit;
use crate::config::ActivitySettings;
use crate::db::prepared::Planning;
use crate::db::schema::activities;
use crate::db::{self, AnyConnection, Tx};
use crate::domain::catalog::{AmountOverflow, Catalog};
use crate::error::{ApiError, ErrorCode};
use crate::governance::{OutOfScope, Scope};
use crate::ledger::batch;
use crate::ledger::lots::Origin;
use crate::ledger::service::{self as ledger, Cause, LedgerError};
use crate::methodology::requantify::{requantify, RequantifyError};
use crate::registry;
use crate::stats::rollup::{self, Counted};

crate::text_enum! {
    /// An administrator's decision on a flagged activity.
    pub enum Decision {
        Approve = "approve",
        Reject = "reject",
    }
}

/// One administrator's decision on one activity, at one time.
pub struct Review<'a> {
    pub admin: i64,
    /// What the administrator governs: the activity's region must be in it.
    pub scope: &'a Scope,
    pub activity_id: i64,
    pub decision: Decision,
    pub note: &'a str,
    pub at: NaiveDateTime,
}

/// Why a decision was refused, or failed.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no such activity")]
    NotFound,
    #[error(transparent)]
    OutOfScope(#[from] OutOfScope),
    #[error("this activity is {0}, not flagged")]
    NotFlagged(Status),
    #[error("this activity has no methodology to credit under")]
    NoMethodology,
    #[error(transparent)]
    OperatorRecordStands(#[from] OperatorRecordStands),
    /// The grams or points of this approval are beyond what the ledger holds: refused, nothing issued.
    #[error(transparent)]
    Overflow(#[from] AmountOverflow),
    /// Another administrator decided it between our read and our update.
    #[error("this activity was decided meanwhile")]
    DecidedMeanwhile,
    #[error(transparent)]
    BrokenAnswer(#[from] BrokenAnswer),
    #[error(transparent)]
    Requantify(#[from] RequantifyError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    /// A cap counter this decision did not read: a bug, answered 500.
    #[error(transparent)]
    Unread(GrantError),
}

impl From<ReviewError> for ApiError {
    fn from(e: ReviewError) -> ApiError {
        match e {
            ReviewError::NotFound => ApiError::not_found(e.to_string()),
            ReviewError::OutOfScope(e) => e.into(),
            ReviewError::NotFlagged(_) | ReviewError::NoMethodology | ReviewError::DecidedMeanwhile => {
                ApiError::conflict(ErrorCode::InvalidState, e.to_string())
            }
            ReviewError::OperatorRecordStands(_) => {
                ApiError::conflict(ErrorCode::DuplicateTrip, e.to_string())
            }
            ReviewError::Overflow(e) => overflow_refusal(e),
            ReviewError::BrokenAnswer(e) => e.into(),
            ReviewError::Requantify(e) => e.into(),
            ReviewError::Ledger(e) => e.into(),
            ReviewError::Query(e) => e.into(),
            ReviewError::Unread(e) => ApiError::internal(e),
        }
    }
}

impl From<Unapprovable> for ReviewError {
    fn from(e: Unapprovable) -> ReviewError {
        match e {
            Unapprovable::OperatorRecordStands(e) => e.into(),
            Unapprovable::Overflow(e) => e.into(),
        }
    }
}

impl From<GrantError> for ReviewError {
    fn from(e: GrantError) -> ReviewError {
        match e {
            GrantError::Overflow(e) => e.into(),
            unread @ GrantError::Unread(_) => ReviewError::Unread(unread),
        }
    }
}

/// What a decision makes of the activity.
struct Settled {
    status: Status,
    granted_g: i64,
    points: i64,
}

impl Settled {
    /// What the statistics add up of the activity once decided so.
    fn counted<'a>(&self, row: &'a ActivityRow) -> Counted<'a> {
        Counted {
            account_id: row.account_id,
            local_day: &row.local_day,
            region_code: &row.region_code,
            activity_type: &row.activity_type,
            granted_g: self.granted_g,
            reduction_g: row.reduction_g,
            points: self.points,
        }
    }
}

/// Decides a flagged activity in one transaction: its new status and grant, the points issued, the audit
/// entry. Returns its client's answer as it now stands.
pub fn decide(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    settings: &ActivitySettings,
    review: &Review<'_>,
) -> Result<ActivityResult, ReviewError> {
    db::transaction(conn, Tx::Write, |conn| {
        let before = store::find(conn, review.activity_id)?.ok_or(ReviewError::NotFound)?;
        review.scope.check(&before.region_code)?;
        if before.status != Status::Flagged {
            return Err(ReviewError::NotFlagged(before.status));
        }
        let mut result = answer_of(conn, &before)?;
        let settled = match review.decision {
            Decision::Reject => Settled {
                status: Status::Rejected,
                granted_g: 0,
                points: 0,
            },
            Decision::Approve => approve(conn, catalog, settings, &before, &mut result)?,
        };
        store_decision(conn, review, &settled, &result)?;
        if let (Status::Rejected, Some(claim)) = (settled.status, &before.claim_id) {
            // A rejected activity keeps no claim: its trip may be credited elsewhere, or reported again.
            registry::store::release(conn, &[claim.as_str()])?;
        }
        if settled.status.is_counted() {
            rollup::record(conn, &[settled.counted(&before)])?;
        }
        // A flag was counted on arrival; the day now counts the outcome too.
        let counts = rollups::Counts::of(settled.status, before.evidence, settled.granted_g);
        rollups::record(conn, [(before.account_id, before.local_day.as_str(), counts)])?;
        let transfer_id = issue(conn, catalog, &before, &settled, review.at)?;
        diesel::update(activities::table.find(review.activity_id))
            .set(activities::transfer_id.eq(transfer_id))
            .execute(conn)?;
        result.status = settled.status;
        result.granted_g = settled.granted_g;
        result.points = settled.points;
        audit_decision(conn, review, &before, &settled)?;
        Ok(result)
    })
}

/// The answer the activity's client was given, as the row holds it now. Exactly this record's: the app
/// and a provider may have used the same client_event_id.
fn answer_of(conn: &mut AnyConnection, row: &ActivityRow) -> Result<ActivityResult, ReviewError> {
    let key = (
        row.account_id,
        model::poster_of(row.provider_id),
        row.client_event_id.clone(),
    );
    Ok(
        store::stored_answers(conn, &[(key.0, key.1, &key.2)], Planning::EachTime)?
            .remove(&key)
            .ok_or(ReviewError::NotFound)?
            .1
            .into_result()?,
    )
}

/// Credits a flagged activity as posting it would have, under the caps of its day and year, honouring
/// the other records of its trip; adds the reasons to `result`.
fn approve(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    settings: &ActivitySettings,
    before: &ActivityRow,
    result: &mut ActivityResult,
) -> Result<Settled, ReviewError> {
    let q = requantify(conn, catalog, &before.recorded())?.ok_or(ReviewError::NoMethodology)?;
    // The account's row lock first: whoever reads or writes its cap counters, or adds to its trips,
    // holds it.
    batch::lock_accounts(conn, &[before.account_id])?;
    let ApprovalTerms {
        reasons: same_trip,
        already,
    } = approval_terms(
        &before.activity_type,
        catalog.is_travel(&before.activity_type),
        before.provider_id.is_some(),
        &store::overlapping(conn, before)?,
    )?;
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
        granted_g,
        points,
        reasons,
    } = credit(&grant, &q, settings.annual_points_cap, &mut book)?;
    book.write(conn)?;
    result.reasons.extend(same_trip);
    result.reasons.extend(reasons);
    Ok(Settled {
        status,
        granted_g,
        points,
    })
}

/// Stores the decision on the row, if it is still flagged: two admins deciding at once cannot both
/// credit.
fn store_decision(
    conn: &mut AnyConnection,
    review: &Review<'_>,
    settled: &Settled,
    result: &ActivityResult,
) -> Result<(), ReviewError> {
    let changed = diesel::update(
        activities::table
            .find(review.activity_id)
            .filter(activities::status.eq(Status::Flagged)),
    )
    .set((
        activities::status.eq(settled.status),
        activities::granted_g.eq(settled.granted_g),
        activities::points.eq(settled.points),
        activities::reasons.eq(serde_json::to_string(&result.reasons).unwrap_or_default()),
        activities::review_note.eq(review.note),
        activities::reviewed_by.eq(review.admin),
        activities::reviewed_at.eq(review.at),
    ))
    .execute(conn)?;
    if changed != 1 {
        return Err(ReviewError::DecidedMeanwhile);
    }
    Ok(())
}

/// Issues the points an approval earned, as a lot of the activity; returns the transfer, if any.
fn issue(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    row: &ActivityRow,
    settled: &Settled,
    at: NaiveDateTime,
) -> Result<Option<i64>, ReviewError> {
    if settled.points <= 0 {
        return Ok(None);
    }
    let cause = Cause::of("activity", row.id);
    let origin = Origin {
        region_code: &row.region_code,
        activity_type: Some(&row.activity_type),
        methodology_id: row.methodology_id,
        reduction_g: settled.granted_g,
        expires_at: catalog.points_expire_at(&row.region_code, at),
    };
    Ok(Some(
        ledger::issue(conn, &origin, row.account_id, settled.points, &cause, at)?.id,
    ))
}

fn audit_decision(
    conn: &mut AnyConnection,
    review: &Review<'_>,
    before: &ActivityRow,
    settled: &Settled,
) -> Result<(), ReviewError> {
    audit::record(
        conn,
        audit::Entry {
            at: review.at,
            actor_user_id: Some(review.admin),
            action: match review.decision {
                Decision::Approve => audit::AuditAction::ReviewApprove,
                Decision::Reject => audit::AuditAction::ReviewReject,
            },
            entity: audit::AuditEntity::Activity,
            entity_id: &review.activity_id.to_string(),
            before: Some(serde_json::json!({"status": before.status, "points": before.points})),
            after: Some(serde_json::json!({
                "status": settled.status,
                "points": settled.points,
                "granted_g": settled.granted_g,
                "note": review.note,
            })),
        },
    )?;
    Ok(())
}
