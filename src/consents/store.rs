//! Queries on consents and the reads made under them.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{consent_accesses, consents, partners, users};
use crate::db::AnyConnection;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = consents)]
pub struct ConsentRow {
    pub id: String,
    pub user_id: i64,
    pub partner_id: i64,
    pub scopes: String,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

impl ConsentRow {
    pub fn scopes(&self) -> Vec<String> {
        serde_json::from_str(&self.scopes).unwrap_or_default()
    }

    /// Neither revoked nor expired at `now`.
    pub fn is_live(&self, now: NaiveDateTime) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// Most grants listed, and most reads of one grant listed (newest first).
pub const LIST_MAX: i64 = 500;

pub fn insert(conn: &mut AnyConnection, row: &ConsentRow) -> QueryResult<()> {
    diesel::insert_into(consents::table)
        .values((
            consents::id.eq(&row.id),
            consents::user_id.eq(row.user_id),
            consents::partner_id.eq(row.partner_id),
            consents::scopes.eq(&row.scopes),
            consents::expires_at.eq(row.expires_at),
            consents::created_at.eq(row.created_at),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<ConsentRow>> {
    consents::table
        .find(id)
        .select(ConsentRow::as_select())
        .first(conn)
        .optional()
}

/// A person's grants with their partners' names, newest first.
pub fn list_for_user(conn: &mut AnyConnection, user_id: i64) -> QueryResult<Vec<(ConsentRow, String)>> {
    consents::table
        .inner_join(partners::table)
        .filter(consents::user_id.eq(user_id))
        .order((consents::created_at.desc(), consents::id.desc()))
        .limit(LIST_MAX)
        .select((ConsentRow::as_select(), partners::name))
        .load(conn)
}

/// Revokes a live grant; false when it was revoked already.
pub fn revoke(conn: &mut AnyConnection, id: &str, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::update(consents::table.find(id).filter(consents::revoked_at.is_null()))
        .set(consents::revoked_at.eq(now))
        .execute(conn)
        .map(|n| n == 1)
}

/// Revokes every live grant of a person; returns their ids.
pub fn revoke_all_for_user(
    conn: &mut AnyConnection,
    user_id: i64,
    now: NaiveDateTime,
) -> QueryResult<Vec<String>> {
    let ids: Vec<String> = consents::table
        .filter(consents::user_id.eq(user_id))
        .filter(consents::revoked_at.is_null())
        .select(consents::id)
        .load(conn)?;
    diesel::update(consents::table.filter(consents::id.eq_any(&ids)))
        .set(consents::revoked_at.eq(now))
        .execute(conn)?;
    Ok(ids)
}

/// The wallet account of a grant's person, if they still have one.
pub fn account_of(conn: &mut AnyConnection, user_id: i64) -> QueryResult<Option<i64>> {
    users::table
        .find(user_id)
        .filter(users::erased_at.is_null())
        .select(users::account_id)
        .first(conn)
        .optional()
}

pub fn record_access(
    conn: &mut AnyConnection,
    consent_id: &str,
    partner_id: i64,
    scope: &str,
    at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(consent_accesses::table)
        .values((
            consent_accesses::consent_id.eq(consent_id),
            consent_accesses::partner_id.eq(partner_id),
            consent_accesses::scope.eq(scope),
            consent_accesses::at.eq(at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// One read under a grant: (partner id, partner name, scope, when).
pub type Access = (i64, String, String, NaiveDateTime);

/// The reads under a grant, newest first.
pub fn accesses(conn: &mut AnyConnection, consent_id: &str) -> QueryResult<Vec<Access>> {
    consent_accesses::table
        .inner_join(partners::table)
        .filter(consent_accesses::consent_id.eq(consent_id))
        .order(consent_accesses::id.desc())
        .limit(LIST_MAX)
        .select((
            consent_accesses::partner_id,
            partners::name,
            consent_accesses::scope,
            consent_accesses::at,
        ))
        .load(conn)
}
