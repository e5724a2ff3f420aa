//! Role grants: stored, granted and revoked by national administrators, audited.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::accounts::store as users;
use crate::audit::{self, AuditAction, AuditEntity};
use crate::db::schema::{regions, role_grants};
use crate::db::{self, AnyConnection, Tx};
use crate::domain::catalog::NATION;

crate::text_enum! {
    /// What a grant lets an administrator govern: the nation, or a region and everything under it.
    pub enum GrantRole {
        Admin = "admin",
        RegionAdmin = "region_admin",
    }
}

/// A live grant.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = role_grants)]
pub struct GrantRow {
    pub id: i64,
    pub user_id: i64,
    pub role: GrantRole,
    pub region_code: String,
    pub granted_by: Option<i64>,
    pub created_at: NaiveDateTime,
}

/// The (role, region) of a user's live grants: its scope.
pub fn live(conn: &mut AnyConnection, user_id: i64) -> QueryResult<Vec<(GrantRole, String)>> {
    role_grants::table
        .filter(role_grants::user_id.eq(user_id))
        .filter(role_grants::revoked_at.is_null())
        .select((role_grants::role, role_grants::region_code))
        .load(conn)
}

/// The live grants, of one user or of everyone, oldest first.
pub fn list(conn: &mut AnyConnection, user_id: Option<i64>) -> QueryResult<Vec<GrantRow>> {
    let mut query = role_grants::table
        .filter(role_grants::revoked_at.is_null())
        .select(GrantRow::as_select())
        .order(role_grants::id)
        .into_boxed();
    if let Some(user_id) = user_id {
        query = query.filter(role_grants::user_id.eq(user_id));
    }
    query.load(conn)
}

/// Why a grant or a revocation was refused.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("no such user")]
    UnknownUser,
    #[error("user {0} is not an administrator account (create one with `tanhui admin create`)")]
    NotAnAdministrator(i64),
    #[error("unknown region `{0}`")]
    UnknownRegion(String),
    #[error("a national `admin` grant is on region CN; use `region_admin` for a region")]
    NationalElsewhere,
    #[error("user {0} already holds this grant")]
    AlreadyGranted(i64),
    #[error("no such live grant")]
    NoSuchGrant,
    #[error("this is the last national administrator's grant: grant another first")]
    LastNational,
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

/// Every change to national grants takes this lock first, so two revocations cannot both leave the other
/// grant as the last one and end with none.
const NATIONAL_GRANTS_LOCK: &str = "role_grants:national";

/// Grants `role` on `region_code` to administrator `user_id`, audited as `by`'s act.
pub fn grant(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    by: i64,
    user_id: i64,
    role: GrantRole,
    region_code: &str,
) -> Result<GrantRow, GrantError> {
    db::transaction(conn, Tx::Write, |conn| {
        let user = users::find_by_id(conn, user_id)?.ok_or(GrantError::UnknownUser)?;
        if !user.is_admin {
            return Err(GrantError::NotAnAdministrator(user_id));
        }
        let known: i64 = regions::table
            .filter(regions::code.eq(region_code))
            .count()
            .get_result(conn)?;
        if known == 0 {
            return Err(GrantError::UnknownRegion(region_code.to_string()));
        }
        if role == GrantRole::Admin && region_code != NATION {
            return Err(GrantError::NationalElsewhere);
        }
        let id: i64 = diesel::insert_into(role_grants::table)
            .values((
                role_grants::user_id.eq(user_id),
                role_grants::role.eq(role),
                role_grants::region_code.eq(region_code),
                role_grants::granted_by.eq(Some(by)),
                role_grants::created_at.eq(now),
            ))
            .returning(role_grants::id)
            .get_result(conn)
            .map_err(|e| match e {
                DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                    GrantError::AlreadyGranted(user_id)
                }
                other => other.into(),
            })?;
        let row = GrantRow {
            id,
            user_id,
            role,
            region_code: region_code.to_string(),
            granted_by: Some(by),
            created_at: now,
        };
        audited(conn, now, by, AuditAction::RoleGrant, &row, false)?;
        Ok(row)
    })
}

/// Grants a new administrator its first scope, with no one to name as the grantor (the command line
/// creating it). Part of the caller's transaction.
pub fn first_grant(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    user_id: i64,
    role: GrantRole,
    region_code: &str,
) -> QueryResult<()> {
    diesel::insert_into(role_grants::table)
        .values((
            role_grants::user_id.eq(user_id),
            role_grants::role.eq(role),
            role_grants::region_code.eq(region_code),
            role_grants::created_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Revokes a live grant, audited as `by`'s act. The last national grant stays: without it nobody could
/// grant again.
pub fn revoke(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    by: i64,
    grant_id: i64,
) -> Result<(), GrantError> {
    db::transaction(conn, Tx::Write, |conn| {
        db::lock_until_commit(conn, NATIONAL_GRANTS_LOCK, 0)?;
        let row: GrantRow = role_grants::table
            .filter(role_grants::id.eq(grant_id))
            .filter(role_grants::revoked_at.is_null())
            .select(GrantRow::as_select())
            .first(conn)
            .optional()?
            .ok_or(GrantError::NoSuchGrant)?;
        if row.role == GrantRole::Admin {
            let national: i64 = role_grants::table
                .filter(role_grants::role.eq(GrantRole::Admin))
                .filter(role_grants::revoked_at.is_null())
                .count()
                .get_result(conn)?;
            if national <= 1 {
                return Err(GrantError::LastNational);
            }
        }
        diesel::update(role_grants::table.filter(role_grants::id.eq(grant_id)))
            .set((
                role_grants::revoked_at.eq(Some(now)),
                role_grants::revoked_by.eq(Some(by)),
            ))
            .execute(conn)?;
        audited(conn, now, by, AuditAction::RoleRevoke, &row, true)?;
        Ok(())
    })
}

fn audited(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    by: i64,
    action: AuditAction,
    row: &GrantRow,
    revoked: bool,
) -> QueryResult<()> {
    let view = serde_json::json!({
        "user_id": row.user_id,
        "role": row.role,
        "region_code": row.region_code,
    });
    let (before, after) = if revoked {
        (Some(view), None)
    } else {
        (None, Some(view))
    };
    audit::record(
        conn,
        audit::Entry {
            at: now,
            actor_user_id: Some(by),
            action,
            entity: AuditEntity::RoleGrant,
            entity_id: &row.id.to_string(),
            before,
            after,
        },
    )
}
