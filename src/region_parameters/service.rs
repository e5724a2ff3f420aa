//! Administrative changes to region parameters. Each runs in one transaction with its audit record; an
//! activation also bumps the catalog epoch, so every instance reloads the values in force.

use chrono::NaiveDateTime;
use diesel::result::Error as DieselError;

use super::draft::{check, EditRequest, Proposal, ValidDraft};
use super::store::{self, DraftValues, ParameterRow, ParameterStatus};
use super::views::ParameterVersionView;
use crate::audit::{self, AuditAction, AuditEntity};
use crate::db::{self, AnyConnection, Tx};
use crate::domain::catalog::Catalog;
use crate::domain::FieldError;
use crate::governance::{require_second_admin, OutOfScope, OwnRequest, Scope};
use crate::methodology::store::bump_epoch;

/// Why a change to region parameters was not made.
#[derive(Debug, thiserror::Error)]
pub enum ParameterError {
    #[error("no such region-parameter version")]
    NotFound,
    #[error("only a draft can be changed, deleted or activated; this version is {0}")]
    NotADraft(ParameterStatus),
    #[error(transparent)]
    OwnRequest(#[from] OwnRequest),
    #[error(transparent)]
    OutOfScope(#[from] OutOfScope),
    /// Activating would put values in force at an instant that has passed (or is about to).
    #[error("the draft starts at {effective_from}, before the earliest allowed start {earliest}: edit its effective_from, then activate it")]
    StartPassed {
        effective_from: String,
        earliest: String,
    },
    #[error("the draft has invalid fields")]
    Fields(Vec<FieldError>),
    /// Another request changed the version between reading and updating it.
    #[error("the version changed meanwhile")]
    ChangedMeanwhile,
    #[error(transparent)]
    Database(#[from] DieselError),
}

pub type ParameterResult<T> = Result<T, ParameterError>;

/// Who changes what, when.
#[derive(Clone, Copy)]
pub struct Actor<'a> {
    pub admin: i64,
    pub scope: &'a Scope,
    pub now: NaiveDateTime,
}

/// A transaction on one version: serialized with every other on it (PostgreSQL; SQLite writes one at a
/// time), reading it first.
fn on_version<T>(
    conn: &mut AnyConnection,
    id: i64,
    f: impl FnOnce(&mut AnyConnection, ParameterRow) -> ParameterResult<T>,
) -> ParameterResult<T> {
    db::transaction(conn, Tx::Write, |conn| {
        db::lock_until_commit(conn, "region_parameter_version", id)?;
        let row = store::find(conn, id)?.ok_or(ParameterError::NotFound)?;
        f(conn, row)
    })
}

/// The draft in `row`, in `actor`'s scope: what every change but creation needs first.
fn draft_in_scope(row: &ParameterRow, actor: Actor<'_>) -> ParameterResult<()> {
    actor.scope.check(&row.region_code)?;
    if row.status != ParameterStatus::Draft {
        return Err(ParameterError::NotADraft(row.status));
    }
    Ok(())
}

fn audit(
    conn: &mut AnyConnection,
    actor: Actor<'_>,
    action: AuditAction,
    id: i64,
    before: Option<&ParameterRow>,
    after: Option<&ParameterRow>,
) -> ParameterResult<()> {
    audit::record(
        conn,
        audit::Entry {
            at: actor.now,
            actor_user_id: Some(actor.admin),
            action,
            entity: AuditEntity::RegionParameterVersion,
            entity_id: &id.to_string(),
            before: before.map(ParameterVersionView::audited),
            after: after.map(ParameterVersionView::audited),
        },
    )?;
    Ok(())
}

fn stored(draft: &ValidDraft) -> DraftValues<'_> {
    DraftValues {
        region_code: &draft.region_code,
        effective_from: draft.effective_from,
        values_json: draft.values_json(),
        citation: &draft.citation,
    }
}

/// Stores a draft for a region the drafter governs.
pub fn create_draft(
    conn: &mut AnyConnection,
    actor: Actor<'_>,
    draft: &ValidDraft,
) -> ParameterResult<ParameterRow> {
    actor.scope.check(&draft.region_code)?;
    db::transaction(conn, Tx::Write, |conn| {
        let id = store::insert_draft(conn, &stored(draft), actor.admin, actor.now)?;
        let row = store::find(conn, id)?.ok_or(ParameterError::ChangedMeanwhile)?;
        audit(
            conn,
            actor,
            AuditAction::RegionParametersDraft,
            id,
            None,
            Some(&row),
        )?;
        Ok(row)
    })
}

/// Changes a draft (its region stays). The editor becomes its drafter, so a second administrator must
/// approve what the edit made.
pub fn edit_draft(
    conn: &mut AnyConnection,
    actor: Actor<'_>,
    id: i64,
    edit: EditRequest,
    catalog: &Catalog,
    earliest: NaiveDateTime,
) -> ParameterResult<ParameterRow> {
    on_version(conn, id, |conn, before| {
        draft_in_scope(&before, actor)?;
        let proposal = Proposal {
            region_code: before.region_code.clone(),
            effective_from: edit
                .effective_from
                .map_or(before.effective_from, |t| t.naive_utc()),
            values: edit.values.unwrap_or_else(|| before.values()),
            citation: edit.citation.unwrap_or_else(|| before.citation.clone()),
        };
        let draft = check(proposal, catalog, earliest).map_err(ParameterError::Fields)?;
        if !store::update_draft(conn, id, &stored(&draft), actor.admin)? {
            return Err(ParameterError::ChangedMeanwhile);
        }
        let after = store::find(conn, id)?.ok_or(ParameterError::ChangedMeanwhile)?;
        audit(
            conn,
            actor,
            AuditAction::RegionParametersEdit,
            id,
            Some(&before),
            Some(&after),
        )?;
        Ok(after)
    })
}

/// Deletes a draft: it is gone (404), with its content kept in the audit log.
pub fn delete_draft(conn: &mut AnyConnection, actor: Actor<'_>, id: i64) -> ParameterResult<()> {
    on_version(conn, id, |conn, before| {
        draft_in_scope(&before, actor)?;
        if !store::delete_draft(conn, id)? {
            return Err(ParameterError::ChangedMeanwhile);
        }
        audit(
            conn,
            actor,
            AuditAction::RegionParametersDelete,
            id,
            Some(&before),
            None,
        )
    })
}

/// Puts a draft in force: by an administrator other than its drafter whose scope covers its region, and
/// only while its start is no earlier than `earliest` (so no instant that has passed changes its values).
pub fn activate(
    conn: &mut AnyConnection,
    actor: Actor<'_>,
    id: i64,
    earliest: NaiveDateTime,
) -> ParameterResult<ParameterRow> {
    on_version(conn, id, |conn, before| {
        draft_in_scope(&before, actor)?;
        require_second_admin(before.drafted_by, actor.admin)?;
        if before.effective_from < earliest {
            return Err(ParameterError::StartPassed {
                effective_from: before.effective_from.and_utc().to_rfc3339(),
                earliest: earliest.and_utc().to_rfc3339(),
            });
        }
        if !store::activate(conn, id, actor.admin, actor.now)? {
            return Err(ParameterError::ChangedMeanwhile);
        }
        bump_epoch(conn)?;
        let after = store::find(conn, id)?.ok_or(ParameterError::ChangedMeanwhile)?;
        audit(
            conn,
            actor,
            AuditAction::RegionParametersActivate,
            id,
            Some(&before),
            Some(&after),
        )?;
        Ok(after)
    })
}
