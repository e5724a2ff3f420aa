//! Retiring an issued batch instead of selling it (docs/registry.md, "Retirement of a batch"): its whole
//! tonnes are cancelled for good on behalf of a beneficiary, for a reason — an offset claimed with them,
//! so that no buyer can claim them again. A second administrator than the one who issued the batch
//! retires it; nothing moves in either ledger (the people's points were theirs from the start).

use super::service::{finish, on_batch, Actor, BatchError, BatchResult};
use super::store::{self, BatchRetirement, BatchRow, BatchStatus, StepChanges};
use crate::audit::AuditAction;
use crate::db::AnyConnection;
use crate::governance::require_second_admin;

/// For whom and why a batch is retired, as checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retirement {
    pub beneficiary: String,
    pub reason: String,
}

/// Retires issued batch `id`: another administrator in scope than its issuer. The same retirement again
/// answers the batch as it is; a batch retired otherwise, sold, or not issued: `InvalidState`.
pub fn retire(
    conn: &mut AnyConnection,
    actor: Actor<'_>,
    id: i64,
    retirement: &Retirement,
) -> BatchResult<BatchRow> {
    on_batch(conn, actor, id, |conn, before| {
        let retired_as_asked = before
            .retirement
            .as_ref()
            .is_some_and(|r| r.beneficiary == retirement.beneficiary && r.reason == retirement.reason);
        if before.status == BatchStatus::Retired && retired_as_asked {
            return Ok(before);
        }
        if before.status != BatchStatus::Issued {
            return Err(BatchError::InvalidState {
                actual: before.status,
                needed: BatchStatus::Issued,
            });
        }
        require_second_admin(before.issued_by, actor.admin)?;
        let advanced = store::advance(
            conn,
            id,
            BatchStatus::Issued,
            BatchStatus::Retired,
            &StepChanges::default(),
        )?;
        if advanced {
            store::insert_retirement(
                conn,
                &BatchRetirement {
                    batch_id: id,
                    beneficiary: retirement.beneficiary.clone(),
                    reason: retirement.reason.clone(),
                    retired_by: actor.admin,
                    retired_at: actor.now,
                },
            )?;
        }
        finish(
            conn,
            actor,
            id,
            advanced,
            AuditAction::ReductionBatchRetire,
            &before,
        )
    })
}
