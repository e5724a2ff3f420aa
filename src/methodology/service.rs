//! Administrative changes to the catalog. Each runs in one transaction with its audit record and the
//! catalog epoch bump, so an audited change is exactly a visible change.

use chrono::Utc;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::draft::ValidDraft;
use super::store::{self, MethodologyStatus, VersionRow};
use crate::audit;
use crate::db::schema::{activity_types, methodology_versions};
use crate::db::{self, AnyConnection, Tx};
use crate::error::ErrorCode;
use crate::error::{ApiError, ApiResult};

fn unique_violation_as(e: DieselError, conflict: ApiError) -> ApiError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => conflict,
        other => other.into(),
    }
}

pub fn create_draft(conn: &mut AnyConnection, admin: i64, draft: &ValidDraft) -> ApiResult<VersionRow> {
    db::transaction(conn, Tx::Write, |conn| {
        let version = store::next_version_number(conn, &draft.activity_type, &draft.region_code)?;
        let now = Utc::now().naive_utc();
        let id: i64 = diesel::insert_into(methodology_versions::table)
            .values((
                methodology_versions::activity_type.eq(&draft.activity_type),
                methodology_versions::region_code.eq(&draft.region_code),
                methodology_versions::version.eq(version),
                methodology_versions::status.eq(MethodologyStatus::Draft),
                methodology_versions::effective_from.eq(draft.effective_from),
                methodology_versions::effective_to.eq(draft.effective_to),
                methodology_versions::parameters
                    .eq(serde_json::to_string(&draft.parameters).map_err(ApiError::internal)?),
                methodology_versions::formula.eq(&draft.formula),
                methodology_versions::daily_cap_g.eq(draft.daily_cap_g),
                methodology_versions::evidence_weights
                    .eq(serde_json::to_string(&draft.weights).map_err(ApiError::internal)?),
                methodology_versions::citation.eq(&draft.citation),
                methodology_versions::drafted_by.eq(Some(admin)),
                methodology_versions::created_at.eq(now),
            ))
            .returning(methodology_versions::id)
            .get_result(conn)
            .map_err(|e| {
                unique_violation_as(
                    e,
                    ApiError::conflict(
                        ErrorCode::Conflict,
                        "another draft took this version number; retry",
                    ),
                )
            })?;
        let row = store::find_version(conn, id)?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("draft vanished")))?;
        audit::record(
            conn,
            Some(admin),
            "methodology.draft",
            "methodology_version",
            &id.to_string(),
            None,
            Some(json(&row)),
        )?;
        Ok(row)
    })
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Activation needs a second administrator: the drafter cannot approve their own version.
pub fn activate(conn: &mut AnyConnection, admin: i64, id: i64) -> ApiResult<VersionRow> {
    db::transaction(conn, Tx::Write, |conn| {
        let before = store::find_version(conn, id)?
            .ok_or_else(|| ApiError::not_found("no such methodology version"))?;
        if before.status != MethodologyStatus::Draft {
            return Err(ApiError::conflict(
                ErrorCode::InvalidState,
                format!("only a draft can be activated; this version is {}", before.status),
            ));
        }
        if before.drafted_by == Some(admin) {
            return Err(ApiError::forbidden(
                "a version must be activated by an administrator other than its drafter",
            ));
        }
        let moved = store::transition(
            conn,
            id,
            &[MethodologyStatus::Draft],
            MethodologyStatus::Active,
            Some(admin),
            Utc::now().naive_utc(),
        )?;
        record_transition(
            conn,
            admin,
            "methodology.activate",
            before,
            moved,
            "the version changed meanwhile",
        )
    })
}

/// Retires a draft or an active version. Stored results keep their version id and stay explainable.
pub fn retire(conn: &mut AnyConnection, admin: i64, id: i64) -> ApiResult<VersionRow> {
    db::transaction(conn, Tx::Write, |conn| {
        let before = store::find_version(conn, id)?
            .ok_or_else(|| ApiError::not_found("no such methodology version"))?;
        let moved = store::transition(
            conn,
            id,
            &[MethodologyStatus::Draft, MethodologyStatus::Active],
            MethodologyStatus::Retired,
            None,
            Utc::now().naive_utc(),
        )?;
        let already = format!("this version is already {}", before.status);
        record_transition(conn, admin, "methodology.retire", before, moved, &already)
    })
}

/// After a status change: refuse if it did not happen, else bump the catalog epoch and audit before/after.
fn record_transition(
    conn: &mut AnyConnection,
    admin: i64,
    action: &str,
    before: VersionRow,
    moved: bool,
    refusal: &str,
) -> ApiResult<VersionRow> {
    if !moved {
        return Err(ApiError::conflict(ErrorCode::InvalidState, refusal.to_string()));
    }
    store::bump_epoch(conn)?;
    let after = store::find_version(conn, before.id)?
        .ok_or_else(|| ApiError::not_found("no such methodology version"))?;
    audit::record(
        conn,
        Some(admin),
        action,
        "methodology_version",
        &before.id.to_string(),
        Some(json(&before)),
        Some(json(&after)),
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
    admin: i64,
    new: &NewActivityType,
) -> ApiResult<store::ActivityTypeRow> {
    db::transaction(conn, Tx::Write, |conn| {
        diesel::insert_into(activity_types::table)
            .values((
                activity_types::code.eq(&new.code),
                activity_types::name.eq(&new.name),
                activity_types::unit.eq(&new.unit),
                activity_types::data_schema.eq(new.schema.to_string()),
                activity_types::claim_window_days.eq(new.claim_window_days),
                activity_types::created_at.eq(Utc::now().naive_utc()),
            ))
            .execute(conn)
            .map_err(|e| {
                unique_violation_as(
                    e,
                    ApiError::conflict(ErrorCode::Conflict, "an activity type with this code exists"),
                )
            })?;
        store::bump_epoch(conn)?;
        let row = store::find_activity_type(conn, &new.code)?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("type vanished")))?;
        audit::record(
            conn,
            Some(admin),
            "activity_type.create",
            "activity_type",
            &new.code,
            None,
            Some(json(&row)),
        )?;
        Ok(row)
    })
}
