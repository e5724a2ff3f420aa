//! Activity types as governed data: an administrator creates one at once; a change to one (its name, claim
//! window, whether it is travel, its speed bound, its data schema) waits as a pending change until a second
//! administrator approves it. Each write is audited in its own transaction, and one that changes what
//! quantification and the rules see bumps the catalog epoch with it.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::service::{json, unique_violation_as};
use super::store::{self, ActivityTypeRow};
use crate::audit::{self, AuditAction, AuditEntity};
use crate::db::schema::{activity_type_changes, activity_types};
use crate::db::{self, AnyConnection, Tx};
use crate::domain::data_schema::DataSchema;
use crate::domain::FieldError;
use crate::governance::scope::{require_second_admin, OwnRequest};

crate::text_enum! {
    /// Where a change to an activity type is: waiting for a second administrator, or in force.
    pub enum ChangeStatus {
        Pending = "pending",
        Approved = "approved",
    }
}

/// Why a change to an activity type was not made.
#[derive(Debug, thiserror::Error)]
pub enum TypeError {
    #[error("an activity type with this code exists")]
    Exists,
    #[error("no such activity type")]
    NoSuchType,
    #[error("no such activity type change")]
    NoSuchChange,
    #[error("this change is already {0}")]
    NotPending(ChangeStatus),
    #[error(transparent)]
    OwnRequest(#[from] OwnRequest),
    /// The new data schema would leave stored activities invalid; each field named.
    #[error("the data schema may only add optional fields or widen bounds")]
    Incompatible(Vec<FieldError>),
    /// The stored schema cannot be read (validation on save prevents it).
    #[error("the stored data schema of this type is unusable")]
    UnusableStoredSchema,
    /// A row written in this transaction could not be read back.
    #[error("{0} vanished")]
    Vanished(&'static str),
    #[error("storing a change's JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

pub type TypeResult<T> = Result<T, TypeError>;

pub struct NewActivityType {
    pub code: String,
    pub name: String,
    pub unit: String,
    pub schema: serde_json::Value,
    pub claim_window_days: i32,
    pub travel: bool,
    pub max_speed_kmh: Option<i32>,
}

/// `#[serde(default, deserialize_with = "present")]` on an `Option<Option<T>>`: absent is `None` (leave
/// as it is), `null` is `Some(None)` (clear it).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// What a change sets; every field left out stays as it is. Also what is stored as the pending change.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TypeChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_window_days: Option<i32>,
    /// Whether a person does one activity of this type at a time (overlapping trips are flagged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub travel: Option<bool>,
    /// km/h; `null` removes the bound.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    #[schema(value_type = Option<i32>)]
    pub max_speed_kmh: Option<Option<i32>>,
    /// May only add optional fields or widen bounds (else 409 `incompatible_schema`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub data_schema: Option<serde_json::Value>,
}

impl TypeChange {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.claim_window_days.is_none()
            && self.travel.is_none()
            && self.max_speed_kmh.is_none()
            && self.data_schema.is_none()
    }
}

/// The columns a change sets (`None`: left as it is).
#[derive(AsChangeset)]
#[diesel(table_name = activity_types)]
struct TypeUpdate {
    name: Option<String>,
    claim_window_days: Option<i32>,
    travel: Option<bool>,
    max_speed_kmh: Option<Option<i32>>,
    data_schema: Option<String>,
}

impl From<&TypeChange> for TypeUpdate {
    fn from(change: &TypeChange) -> TypeUpdate {
        TypeUpdate {
            name: change.name.clone(),
            claim_window_days: change.claim_window_days,
            travel: change.travel,
            max_speed_kmh: change.max_speed_kmh,
            data_schema: change.data_schema.as_ref().map(|s| s.to_string()),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = activity_type_changes)]
pub struct ChangeRow {
    pub id: i64,
    pub activity_type: String,
    pub proposed: String,
    pub status: ChangeStatus,
    pub requested_by: i64,
    pub requested_at: NaiveDateTime,
    pub approved_by: Option<i64>,
    pub approved_at: Option<NaiveDateTime>,
}

impl ChangeRow {
    pub fn proposed(&self) -> serde_json::Value {
        serde_json::from_str(&self.proposed).unwrap_or(serde_json::Value::Null)
    }
}

fn find_change(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<ChangeRow>> {
    activity_type_changes::table
        .find(id)
        .select(ChangeRow::as_select())
        .first(conn)
        .optional()
}

/// Changes to activity types, newest first, keyset-paged by id; only those in `status` when given.
pub fn list_changes(
    conn: &mut AnyConnection,
    status: Option<ChangeStatus>,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<ChangeRow>> {
    let mut query = activity_type_changes::table
        .select(ChangeRow::as_select())
        .order(activity_type_changes::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(activity_type_changes::status.eq(status));
    }
    if let Some(before) = before {
        query = query.filter(activity_type_changes::id.lt(before));
    }
    query.load(conn)
}

/// Refuses a data schema change that would leave a stored activity invalid, naming each field.
fn check_schema_change(current: &ActivityTypeRow, change: &TypeChange) -> TypeResult<()> {
    let Some(proposed) = &change.data_schema else {
        return Ok(());
    };
    let old: DataSchema = current
        .data_schema
        .parse()
        .map_err(|_| TypeError::UnusableStoredSchema)?;
    // The caller parsed the proposal already; a refusal here is the same refusal.
    let new = DataSchema::parse(proposed).map_err(TypeError::Incompatible)?;
    old.check_change_to(&new).map_err(TypeError::Incompatible)
}

/// Adds an activity type, in force at once; the caller has checked its fields.
pub fn create(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    admin: i64,
    new: &NewActivityType,
) -> TypeResult<ActivityTypeRow> {
    db::transaction(conn, Tx::Write, |conn| {
        diesel::insert_into(activity_types::table)
            .values((
                activity_types::code.eq(&new.code),
                activity_types::name.eq(&new.name),
                activity_types::unit.eq(&new.unit),
                activity_types::data_schema.eq(new.schema.to_string()),
                activity_types::claim_window_days.eq(new.claim_window_days),
                activity_types::travel.eq(new.travel),
                activity_types::max_speed_kmh.eq(new.max_speed_kmh),
                activity_types::created_at.eq(now),
            ))
            .execute(conn)
            .map_err(|e| unique_violation_as(e, TypeError::Exists))?;
        store::bump_epoch(conn)?;
        let row = store::find_activity_type(conn, &new.code)?.ok_or(TypeError::Vanished("activity type"))?;
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

/// Records a pending change to type `code`; the caller has checked its fields. Nothing is in force yet.
pub fn request_change(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    admin: i64,
    code: &str,
    change: &TypeChange,
) -> TypeResult<ChangeRow> {
    db::transaction(conn, Tx::Write, |conn| {
        let current = store::find_activity_type(conn, code)?.ok_or(TypeError::NoSuchType)?;
        check_schema_change(&current, change)?;
        let id: i64 = diesel::insert_into(activity_type_changes::table)
            .values((
                activity_type_changes::activity_type.eq(code),
                activity_type_changes::proposed.eq(serde_json::to_string(change)?),
                activity_type_changes::status.eq(ChangeStatus::Pending),
                activity_type_changes::requested_by.eq(admin),
                activity_type_changes::requested_at.eq(now),
            ))
            .returning(activity_type_changes::id)
            .get_result(conn)?;
        let row = find_change(conn, id)?.ok_or(TypeError::Vanished("activity type change"))?;
        audit::record(
            conn,
            audit::Entry {
                at: now,
                actor_user_id: Some(admin),
                action: AuditAction::ActivityTypeChangeRequest,
                entity: AuditEntity::ActivityTypeChange,
                entity_id: &id.to_string(),
                before: Some(json(&current)),
                after: Some(row.proposed()),
            },
        )?;
        Ok(row)
    })
}

/// Puts a pending change in force, approved by `approver`, who must not be its requester. The schema is
/// checked again against the type as it is now: another change may have been approved meanwhile.
pub fn approve_change(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    approver: i64,
    id: i64,
) -> TypeResult<(ChangeRow, ActivityTypeRow)> {
    db::transaction(conn, Tx::Write, |conn| {
        let change = find_change(conn, id)?.ok_or(TypeError::NoSuchChange)?;
        if change.status != ChangeStatus::Pending {
            return Err(TypeError::NotPending(change.status));
        }
        require_second_admin(Some(change.requested_by), approver)?;
        let proposed: TypeChange = serde_json::from_str(&change.proposed)?;
        let before = store::find_activity_type(conn, &change.activity_type)?.ok_or(TypeError::NoSuchType)?;
        check_schema_change(&before, &proposed)?;
        let approved = diesel::update(
            activity_type_changes::table
                .find(id)
                .filter(activity_type_changes::status.eq(ChangeStatus::Pending)),
        )
        .set((
            activity_type_changes::status.eq(ChangeStatus::Approved),
            activity_type_changes::approved_by.eq(Some(approver)),
            activity_type_changes::approved_at.eq(Some(now)),
        ))
        .execute(conn)?;
        if approved != 1 {
            return Err(TypeError::NotPending(ChangeStatus::Approved));
        }
        diesel::update(activity_types::table.find(&change.activity_type))
            .set(TypeUpdate::from(&proposed))
            .execute(conn)?;
        store::bump_epoch(conn)?;
        let after = store::find_activity_type(conn, &change.activity_type)?
            .ok_or(TypeError::Vanished("activity type"))?;
        audit::record(
            conn,
            audit::Entry {
                at: now,
                actor_user_id: Some(approver),
                action: AuditAction::ActivityTypeChangeApprove,
                entity: AuditEntity::ActivityType,
                entity_id: &change.activity_type,
                before: Some(json(&before)),
                after: Some(json(&after)),
            },
        )?;
        let change = find_change(conn, id)?.ok_or(TypeError::Vanished("activity type change"))?;
        Ok((change, after))
    })
}
