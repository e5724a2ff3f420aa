//! The life of a reduction batch: drafting (the one statement that takes its activities), submission,
//! verification by a second administrator, issuance under serial numbers, and deleting a draft. Each
//! runs in one transaction with its audit record.

use chrono::NaiveDateTime;
use diesel::result::Error as DieselError;

use super::serials::{serial_year, whole_tonnes};
use super::store::{self, BatchRow, BatchStatus, NewBatch, Selection, StepChanges};
use super::views::BatchView;
use crate::audit::{self, AuditAction, AuditEntity};
use crate::db::{self, AnyConnection, Tx};
use crate::governance::{require_second_admin, OutOfScope, OwnRequest, Scope};

/// Why a batch was not drafted or moved.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("no such reduction batch")]
    NotFound,
    #[error(transparent)]
    OutOfScope(#[from] OutOfScope),
    #[error(transparent)]
    OwnRequest(#[from] OwnRequest),
    #[error("the batch is {actual}; this step needs it {needed}")]
    InvalidState {
        actual: BatchStatus,
        needed: BatchStatus,
    },
    #[error("no credited activity of that region, window and types is free: every one is already in a batch, or none was credited")]
    Empty,
    #[error("the batch holds {reduction_g} g, less than one tonne: only whole tonnes are issued (delete the draft, or draft a wider window)")]
    BelowOneTonne { reduction_g: i64 },
    #[error("the batch's grams, its serial numbers or its proceeds would pass the 64-bit range")]
    OutOfRange,
    #[error("bank reference {0:?} was recorded already")]
    ReferenceTaken(String),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::service::LedgerError),
    #[error(transparent)]
    Database(DieselError),
}

impl From<DieselError> for BatchError {
    fn from(e: DieselError) -> BatchError {
        if store::is_overflow(&e) {
            BatchError::OutOfRange
        } else {
            BatchError::Database(e)
        }
    }
}

pub type BatchResult<T> = Result<T, BatchError>;

/// Who acts, when.
#[derive(Clone, Copy)]
pub struct Actor<'a> {
    pub admin: i64,
    pub scope: &'a Scope,
    pub now: NaiveDateTime,
}

/// Drafting takes this lock first (PostgreSQL; SQLite writes one at a time), so drafts run one after
/// the other and each sees what the earlier ones took. The primary key of `reduction_batch_items` is what
/// keeps an activity in one batch; the lock spares two overlapping drafts from colliding on it.
const DRAFTING_LOCK: &str = "reduction_batches:draft";

/// Stores a draft holding every credited activity of `selection` that no batch holds yet, for
/// `region_code` (which `actor` must govern). Nothing is stored when none is free.
pub fn draft(
    conn: &mut AnyConnection,
    actor: Actor<'_>,
    region_code: &str,
    requested_types: Option<&[String]>,
    selection: &Selection<'_>,
) -> BatchResult<BatchRow> {
    actor.scope.check(region_code)?;
    db::transaction(conn, Tx::Write, |conn| {
        db::lock_until_commit(conn, DRAFTING_LOCK, 0)?;
        let new = NewBatch {
            region_code,
            activity_types: requested_types.map(|t| serde_json::Value::from(t.to_vec()).to_string()),
            from: selection.from,
            to: selection.to,
            created_by: actor.admin,
            created_at: actor.now,
        };
        let id = store::insert_draft(conn, &new)?;
        if store::take_activities(conn, id, selection)? == 0 {
            return Err(BatchError::Empty);
        }
        store::count_into_row(conn, id)?;
        let row = store::find(conn, id)?.ok_or(BatchError::NotFound)?;
        audit(
            conn,
            actor,
            AuditAction::ReductionBatchDraft,
            id,
            None,
            Some(&row),
        )?;
        Ok(row)
    })
}

/// A transaction on one batch, serialized with every other on it (PostgreSQL; SQLite writes one at a
/// time): reads it and checks the scope first.
pub(super) fn on_batch<T>(
    conn: &mut AnyConnection,
    actor: Actor<'_>,
    id: i64,
    f: impl FnOnce(&mut AnyConnection, BatchRow) -> BatchResult<T>,
) -> BatchResult<T> {
    db::transaction(conn, Tx::Write, |conn| {
        db::lock_until_commit(conn, "reduction_batch", id)?;
        let row = store::find(conn, id)?.ok_or(BatchError::NotFound)?;
        actor.scope.check(&row.region_code)?;
        f(conn, row)
    })
}

/// One step of the lifecycle: from which state to which, and what it records.
#[derive(Clone, Copy)]
pub enum Step {
    Submit,
    Verify,
    Issue,
}

impl Step {
    fn states(self) -> (BatchStatus, BatchStatus) {
        match self {
            Step::Submit => (BatchStatus::Draft, BatchStatus::Submitted),
            Step::Verify => (BatchStatus::Submitted, BatchStatus::Verified),
            Step::Issue => (BatchStatus::Verified, BatchStatus::Issued),
        }
    }

    fn action(self) -> AuditAction {
        match self {
            Step::Submit => AuditAction::ReductionBatchSubmit,
            Step::Verify => AuditAction::ReductionBatchVerify,
            Step::Issue => AuditAction::ReductionBatchIssue,
        }
    }
}

/// Takes `step` on batch `id`. Submitting and issuing are any administrator's in scope; verifying is
/// another administrator's than the maker (403). The same step on a batch already past it answers the
/// batch as it is, so a retry is answered what the first call was; any other state is refused.
pub fn take(conn: &mut AnyConnection, actor: Actor<'_>, id: i64, step: Step) -> BatchResult<BatchRow> {
    on_batch(conn, actor, id, |conn, before| {
        if let Step::Verify = step {
            require_second_admin(Some(before.created_by), actor.admin)?;
        }
        let (needed, reached) = step.states();
        if before.status == reached {
            return Ok(before);
        }
        if before.status != needed {
            return Err(BatchError::InvalidState {
                actual: before.status,
                needed,
            });
        }
        let changes = changes(conn, actor, step, &before)?;
        if !store::advance(conn, id, needed, reached, &changes)? {
            return Err(BatchError::NotFound);
        }
        let after = store::find(conn, id)?.ok_or(BatchError::NotFound)?;
        audit(conn, actor, step.action(), id, Some(&before), Some(&after))?;
        Ok(after)
    })
}

/// What `step` records; issuing also takes the serial numbers of the batch's whole tonnes.
fn changes(
    conn: &mut AnyConnection,
    actor: Actor<'_>,
    step: Step,
    batch: &BatchRow,
) -> BatchResult<StepChanges> {
    let (by, at) = (Some(actor.admin), Some(actor.now));
    let (tonnes, _) = whole_tonnes(batch.reduction_g);
    match step {
        // Refused here rather than at issuance, while the draft can still be deleted to free its
        // activities: a batch under one tonne could never be issued.
        Step::Submit | Step::Issue if tonnes == 0 => Err(BatchError::BelowOneTonne {
            reduction_g: batch.reduction_g,
        }),
        Step::Submit => Ok(StepChanges {
            submitted_by: by,
            submitted_at: at,
            ..StepChanges::default()
        }),
        Step::Verify => Ok(StepChanges {
            verified_by: by,
            verified_at: at,
            ..StepChanges::default()
        }),
        Step::Issue => {
            let year = serial_year(actor.now);
            let first =
                store::take_serials(conn, &batch.region_code, year, tonnes)?.ok_or(BatchError::OutOfRange)?;
            Ok(StepChanges {
                issued_by: by,
                issued_at: at,
                tonnes: Some(tonnes),
                serial_year: Some(year),
                serial_first: Some(first),
                ..StepChanges::default()
            })
        }
    }
}

/// Deletes a draft (any administrator in scope): its activities are free for another batch, and it is
/// gone (404), with its content kept in the audit log.
pub fn delete_draft(conn: &mut AnyConnection, actor: Actor<'_>, id: i64) -> BatchResult<()> {
    on_batch(conn, actor, id, |conn, before| {
        if before.status != BatchStatus::Draft {
            return Err(BatchError::InvalidState {
                actual: before.status,
                needed: BatchStatus::Draft,
            });
        }
        if !store::delete_draft(conn, id)? {
            return Err(BatchError::NotFound);
        }
        audit(
            conn,
            actor,
            AuditAction::ReductionBatchDelete,
            id,
            Some(&before),
            None,
        )
    })
}

/// The batch after a step, audited; `NotFound` when it had moved on (the transaction then rolls back).
pub(super) fn finish(
    conn: &mut AnyConnection,
    actor: Actor<'_>,
    id: i64,
    advanced: bool,
    action: AuditAction,
    before: &BatchRow,
) -> BatchResult<BatchRow> {
    if !advanced {
        return Err(BatchError::NotFound);
    }
    let after = store::find(conn, id)?.ok_or(BatchError::NotFound)?;
    audit(conn, actor, action, id, Some(before), Some(&after))?;
    Ok(after)
}

pub(super) fn audit(
    conn: &mut AnyConnection,
    actor: Actor<'_>,
    action: AuditAction,
    id: i64,
    before: Option<&BatchRow>,
    after: Option<&BatchRow>,
) -> BatchResult<()> {
    audit::record(
        conn,
        audit::Entry {
            at: actor.now,
            actor_user_id: Some(actor.admin),
            action,
            entity: AuditEntity::ReductionBatch,
            entity_id: &id.to_string(),
            before: before.map(BatchView::audited),
            after: after.map(BatchView::audited),
        },
    )?;
    Ok(())
}
