//! Administrative changes to the catalog. Each runs in one transaction with its audit record and the
//! catalog epoch bump, so an audited change is exactly a visible change.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::draft::ValidDraft;
use super::store::{self, MethodologyStatus, VersionRow};
use crate::audit::{self, AuditAction, AuditEntity};
use crate::db::schema::methodology_versions;
use crate::db::{self, AnyConnection, Tx};
use crate::governance::scope::{require_second_admin, OutOfScope, OwnRequest, Scope};

/// Why a change to the catalog was not made.
#[derive(Debug, thiserror::Error)]
pub enum MethodologyError {
    #[error("no such methodology version")]
    NoSuchVersion,
    #[error("only a draft can be activated, edited or deleted; this version is {0}")]
    NotADraft(MethodologyStatus),
    #[error("only an active version is retired (a draft is deleted); this version is {0}")]
    NotActive(MethodologyStatus),
    #[error(transparent)]
    OutOfScope(#[from] OutOfScope),
    /// Maker-checker: the drafter activating, or the requester approving a retirement.
    #[error(transparent)]
    OwnRequest(#[from] OwnRequest),
    #[error("only its drafter edits a draft; draft a version of your own instead")]
    NotTheDrafter,
    #[error("retiring this version is already requested; another administrator approves it")]
    RetireAlreadyRequested,
    #[error("nobody asked to retire this version: request it first")]
    NoRetireRequest,
    /// Another request moved the version between reading and updating it.
    #[error("the version changed meanwhile")]
    ChangedMeanwhile,
    #[error("another draft took this version number; retry")]
    VersionNumberTaken,
    /// A row written in this transaction could not be read back.
    #[error("{0} vanished")]
    Vanished(&'static str),
    #[error("storing a version's JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Database(#[from] DieselError),
}

pub type MethodologyResult<T> = Result<T, MethodologyError>;

/// A unique violation as the domain's refusal, any other database error as it is.
pub(super) fn unique_violation_as<E: From<DieselError>>(e: DieselError, conflict: E) -> E {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => conflict,
        other => other.into(),
    }
}

/// Who acts, with what scope, and when.
pub struct Actor<'a> {
    pub at: NaiveDateTime,
    pub admin: i64,
    pub scope: &'a Scope,
}

impl Actor<'_> {
    fn audit(
        &self,
        conn: &mut AnyConnection,
        action: AuditAction,
        id: i64,
        before: Option<&VersionRow>,
        after: Option<&VersionRow>,
    ) -> MethodologyResult<()> {
        audit::record(
            conn,
            audit::Entry {
                at: self.at,
                actor_user_id: Some(self.admin),
                action,
                entity: AuditEntity::MethodologyVersion,
                entity_id: &id.to_string(),
                before: before.map(json),
                after: after.map(json),
            },
        )?;
        Ok(())
    }
}

/// The version, if the actor's scope covers its region.
fn in_scope(conn: &mut AnyConnection, actor: &Actor<'_>, id: i64) -> MethodologyResult<VersionRow> {
    let row = store::find_version(conn, id)?.ok_or(MethodologyError::NoSuchVersion)?;
    actor.scope.check(&row.region_code)?;
    Ok(row)
}

pub fn create_draft(
    conn: &mut AnyConnection,
    actor: &Actor<'_>,
    draft: &ValidDraft,
) -> MethodologyResult<VersionRow> {
    actor.scope.check(&draft.region_code)?;
    db::transaction(conn, Tx::Write, |conn| {
        let version = store::next_version_number(conn, &draft.activity_type, &draft.region_code)?;
        let id = insert_draft(conn, actor.at, actor.admin, draft, version)?;
        let row = store::find_version(conn, id)?.ok_or(MethodologyError::Vanished("draft"))?;
        actor.audit(conn, AuditAction::MethodologyDraft, id, None, Some(&row))?;
        Ok(row)
    })
}

/// Replaces a draft's content with `draft` (checked whole by the caller). Only its drafter edits it, so
/// the drafter stays the one administrator who cannot activate it; moved to another type or region, it
/// takes the next version number there.
pub fn edit_draft(
    conn: &mut AnyConnection,
    actor: &Actor<'_>,
    id: i64,
    draft: &ValidDraft,
) -> MethodologyResult<VersionRow> {
    actor.scope.check(&draft.region_code)?;
    db::transaction(conn, Tx::Write, |conn| {
        let before = in_scope(conn, actor, id)?;
        if before.status != MethodologyStatus::Draft {
            return Err(MethodologyError::NotADraft(before.status));
        }
        if before.drafted_by != Some(actor.admin) {
            return Err(MethodologyError::NotTheDrafter);
        }
        let version = if (before.activity_type.as_str(), before.region_code.as_str())
            == (draft.activity_type.as_str(), draft.region_code.as_str())
        {
            before.version
        } else {
            store::next_version_number(conn, &draft.activity_type, &draft.region_code)?
        };
        let moved = diesel::update(
            methodology_versions::table
                .find(id)
                .filter(methodology_versions::status.eq(MethodologyStatus::Draft)),
        )
        .set((
            methodology_versions::activity_type.eq(&draft.activity_type),
            methodology_versions::region_code.eq(&draft.region_code),
            methodology_versions::version.eq(version),
            methodology_versions::effective_from.eq(draft.effective_from),
            methodology_versions::effective_to.eq(draft.effective_to),
            methodology_versions::parameters.eq(serde_json::to_string(&draft.parameters)?),
            methodology_versions::formula.eq(&draft.formula),
            methodology_versions::daily_cap_g.eq(draft.daily_cap_g),
            methodology_versions::evidence_weights.eq(serde_json::to_string(&draft.weights)?),
            methodology_versions::citation.eq(&draft.citation),
        ))
        .execute(conn)
        .map_err(|e| unique_violation_as(e, MethodologyError::VersionNumberTaken))?;
        if moved != 1 {
            return Err(MethodologyError::ChangedMeanwhile);
        }
        let after = store::find_version(conn, id)?.ok_or(MethodologyError::Vanished("draft"))?;
        actor.audit(
            conn,
            AuditAction::MethodologyDraftEdit,
            id,
            Some(&before),
            Some(&after),
        )?;
        Ok(after)
    })
}

/// Deletes a draft: never in force, so nothing refers to it. Any administrator whose scope covers it may.
pub fn delete_draft(conn: &mut AnyConnection, actor: &Actor<'_>, id: i64) -> MethodologyResult<()> {
    db::transaction(conn, Tx::Write, |conn| {
        let before = in_scope(conn, actor, id)?;
        if before.status != MethodologyStatus::Draft {
            return Err(MethodologyError::NotADraft(before.status));
        }
        let deleted = diesel::delete(
            methodology_versions::table
                .find(id)
                .filter(methodology_versions::status.eq(MethodologyStatus::Draft)),
        )
        .execute(conn)?;
        if deleted != 1 {
            return Err(MethodologyError::ChangedMeanwhile);
        }
        actor.audit(conn, AuditAction::MethodologyDraftDelete, id, Some(&before), None)
    })
}

/// Stores the draft as version number `version`; returns its id.
fn insert_draft(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    admin: i64,
    draft: &ValidDraft,
    version: i32,
) -> MethodologyResult<i64> {
    diesel::insert_into(methodology_versions::table)
        .values((
            methodology_versions::activity_type.eq(&draft.activity_type),
            methodology_versions::region_code.eq(&draft.region_code),
            methodology_versions::version.eq(version),
            methodology_versions::status.eq(MethodologyStatus::Draft),
            methodology_versions::effective_from.eq(draft.effective_from),
            methodology_versions::effective_to.eq(draft.effective_to),
            methodology_versions::parameters.eq(serde_json::to_string(&draft.parameters)?),
            methodology_versions::formula.eq(&draft.formula),
            methodology_versions::daily_cap_g.eq(draft.daily_cap_g),
            methodology_versions::evidence_weights.eq(serde_json::to_string(&draft.weights)?),
            methodology_versions::citation.eq(&draft.citation),
            methodology_versions::drafted_by.eq(Some(admin)),
            methodology_versions::created_at.eq(now),
        ))
        .returning(methodology_versions::id)
        .get_result(conn)
        .map_err(|e| unique_violation_as(e, MethodologyError::VersionNumberTaken))
}

pub(super) fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Activation needs a second administrator in scope: the drafter cannot approve their own version.
pub fn activate(conn: &mut AnyConnection, actor: &Actor<'_>, id: i64) -> MethodologyResult<VersionRow> {
    db::transaction(conn, Tx::Write, |conn| {
        let before = in_scope(conn, actor, id)?;
        if before.status != MethodologyStatus::Draft {
            return Err(MethodologyError::NotADraft(before.status));
        }
        require_second_admin(before.drafted_by, actor.admin)?;
        let moved = store::transition(
            conn,
            id,
            &[MethodologyStatus::Draft],
            MethodologyStatus::Active,
            Some(actor.admin),
            actor.at,
        )?;
        let change = Transition {
            action: AuditAction::MethodologyActivate,
            refusal: MethodologyError::ChangedMeanwhile,
        };
        record_transition(conn, actor, change, before, moved)
    })
}

/// Asks to retire an active version; it stays in force until a second administrator approves.
pub fn request_retire(conn: &mut AnyConnection, actor: &Actor<'_>, id: i64) -> MethodologyResult<VersionRow> {
    db::transaction(conn, Tx::Write, |conn| {
        let before = in_scope(conn, actor, id)?;
        if before.status != MethodologyStatus::Active {
            return Err(MethodologyError::NotActive(before.status));
        }
        if before.retire_requested_by.is_some() {
            return Err(MethodologyError::RetireAlreadyRequested);
        }
        if !store::request_retire(conn, id, actor.admin, actor.at)? {
            return Err(MethodologyError::RetireAlreadyRequested);
        }
        let after = store::find_version(conn, id)?.ok_or(MethodologyError::NoSuchVersion)?;
        actor.audit(
            conn,
            AuditAction::MethodologyRetireRequest,
            id,
            Some(&before),
            Some(&after),
        )?;
        Ok(after)
    })
}

/// Retires an active version whose retirement another administrator requested. Stored results keep their
/// version id and stay explainable.
pub fn approve_retire(conn: &mut AnyConnection, actor: &Actor<'_>, id: i64) -> MethodologyResult<VersionRow> {
    db::transaction(conn, Tx::Write, |conn| {
        let before = in_scope(conn, actor, id)?;
        if before.status != MethodologyStatus::Active {
            return Err(MethodologyError::NotActive(before.status));
        }
        let Some(requester) = before.retire_requested_by else {
            return Err(MethodologyError::NoRetireRequest);
        };
        require_second_admin(Some(requester), actor.admin)?;
        let moved = store::transition(
            conn,
            id,
            &[MethodologyStatus::Active],
            MethodologyStatus::Retired,
            None,
            actor.at,
        )?;
        let change = Transition {
            action: AuditAction::MethodologyRetire,
            refusal: MethodologyError::ChangedMeanwhile,
        };
        record_transition(conn, actor, change, before, moved)
    })
}

/// A status change as audited, and what to answer if it did not happen.
struct Transition {
    action: AuditAction,
    refusal: MethodologyError,
}

/// After a status change: refuse if it did not happen, else bump the catalog epoch and audit before/after.
fn record_transition(
    conn: &mut AnyConnection,
    actor: &Actor<'_>,
    change: Transition,
    before: VersionRow,
    moved: bool,
) -> MethodologyResult<VersionRow> {
    if !moved {
        return Err(change.refusal);
    }
    store::bump_epoch(conn)?;
    let after = store::find_version(conn, before.id)?.ok_or(MethodologyError::NoSuchVersion)?;
    actor.audit(conn, change.action, before.id, Some(&before), Some(&after))?;
    Ok(after)
}
