//! Administrative changes to the catalog. Each runs in one transaction with its audit record and the
//! catalog epoch bump, so an audited change is exactly a visible change.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::draft::ValidDraft;
use super::store::{self, ActivityTypeRow, MethodologyStatus, VersionRow};
use crate::audit::{self, AuditAction, AuditEntity};
use crate::db::schema::{activity_types, methodology_versions};
use crate::db::{self, AnyConnection, Tx};

/// Why a change to the catalog was not made.
#[derive(Debug, thiserror::Error)]
pub enum MethodologyError {
    #[error("no such methodology version")]
    NoSuchVersion,
    #[error("only a draft can be activated; this version is {0}")]
    NotADraft(MethodologyStatus),
    #[error("a version must be activated by an administrator other than its drafter")]
    OwnDraft,
    /// Another request moved the version between reading and updating it.
    #[error("the version changed meanwhile")]
    ChangedMeanwhile,
    #[error("this version is already {0}")]
    AlreadyFinal(MethodologyStatus),
    #[error("another draft took this version number; retry")]
    VersionNumberTaken,
    #[error("an activity type with this code exists")]
    ActivityTypeExists,
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
fn unique_violation_as(e: DieselError, conflict: MethodologyError) -> MethodologyError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => conflict,
        other => other.into(),
    }
}

pub fn create_draft(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    admin: i64,
    draft: &ValidDraft,
) -> MethodologyResult<VersionRow> {
    db::transaction(conn, Tx::Write, |conn| {
        let version = store::next_version_number(conn, &draft.activity_type, &draft.region_code)?;
        let id = insert_draft(conn, now, admin, draft, version)?;
        let row = store::find_version(conn, id)?.ok_or(MethodologyError::Vanished("draft"))?;
        audit::record(
            conn,
            audit::Entry {
                at: now,
                actor_user_id: Some(admin),
                action: AuditAction::MethodologyDraft,
                entity: AuditEntity::MethodologyVersion,
                entity_id: &id.to_string(),
                before: None,
                after: Some(json(&row)),
            },
        )?;
        Ok(row)
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

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Activation needs a second administrator: the drafter cannot approve their own version.
pub fn activate(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    admin: i64,
    id: i64,
) -> MethodologyResult<VersionRow> {
    db::transaction(conn, Tx::Write, |conn| {
        let before = store::find_version(conn, id)?.ok_or(MethodologyError::NoSuchVersion)?;
        if before.status != MethodologyStatus::Draft {
            return Err(MethodologyError::NotADraft(before.status));
        }
        if before.drafted_by == Some(admin) {
            return Err(MethodologyError::OwnDraft);
        }
        let moved = store::transition(
            conn,
            id,
            &[MethodologyStatus::Draft],
            MethodologyStatus::Active,
            Some(admin),
            now,
        )?;
        let change = Transition {
            at: now,
            admin,
            action: AuditAction::MethodologyActivate,
            refusal: MethodologyError::ChangedMeanwhile,
        };
        record_transition(conn, change, before, moved)
    })
}

/// Retires a draft or an active version. Stored results keep their version id and stay explainable.
pub fn retire(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    admin: i64,
    id: i64,
) -> MethodologyResult<VersionRow> {
    db::transaction(conn, Tx::Write, |conn| {
        let before = store::find_version(conn, id)?.ok_or(MethodologyError::NoSuchVersion)?;
        let moved = store::transition(
            conn,
            id,
            &[MethodologyStatus::Draft, MethodologyStatus::Active],
            MethodologyStatus::Retired,
            None,
            now,
        )?;
        let change = Transition {
            at: now,
            admin,
            action: AuditAction::MethodologyRetire,
            refusal: MethodologyError::AlreadyFinal(before.status),
        };
        record_transition(conn, change, before, moved)
    })
}

/// A status change as audited, and what to answer if it did not happen.
struct Transition {
    at: NaiveDateTime,
    admin: i64,
    action: AuditAction,
    refusal: MethodologyError,
}

/// After a status change: refuse if it did not happen, else bump the catalog epoch and audit before/after.
fn record_transition(
    conn: &mut AnyConnection,
    change: Transition,
    before: VersionRow,
    moved: bool,
) -> MethodologyResult<VersionRow> {
    if !moved {
        return Err(change.refusal);
    }
    store::bump_epoch(conn)?;
    let after = store::find_version(conn, before.id)?.ok_or(MethodologyError::NoSuchVersion)?;
    audit::record(
        conn,
        audit::Entry {
            at: change.at,
            actor_user_id: Some(change.admin),
            action: change.action,
            entity: AuditEntity::MethodologyVersion,
            entity_id: &before.id.to_string(),
            before: Some(json(&before)),
            after: Some(json(&after)),
        },
    )?;
    Ok(after)
}

pub struct NewActivityType {
    pub code: String,
    pub name: String,
    pub unit: String,
    pub schema: serde_json::Value,
    pub claim_window_days: i32,
}

/// Adds an activity type; the caller has checked its schema.
pub fn create_activity_type(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    admin: i64,
    new: &NewActivityType,
) -> MethodologyResult<ActivityTypeRow> {
    db::transaction(conn, Tx::Write, |conn| {
        diesel::insert_into(activity_types::table)
            .values((
                activity_types::code.eq(&new.code),
                activity_types::name.eq(&new.name),
                activity_types::unit.eq(&new.unit),
                activity_types::data_schema.eq(new.schema.to_string()),
                activity_types::claim_window_days.eq(new.claim_window_days),
                activity_types::created_at.eq(now),
            ))
            .execute(conn)
            .map_err(|e| unique_violation_as(e, MethodologyError::ActivityTypeExists))?;
        store::bump_epoch(conn)?;
        let row =
            store::find_activity_type(conn, &new.code)?.ok_or(MethodologyError::Vanished("activity type"))?;
        audit::record(
            conn,
            audit::Entry {
                at: now,
                actor_user_id: Some(admin),
                action: AuditAction::ActivityTypeCreate,
                entity: AuditEntity::ActivityType,
                entity_id: &new.code,
                before: None,
                after: Some(json(&row)),
            },
        )?;
        Ok(row)
    })
}
