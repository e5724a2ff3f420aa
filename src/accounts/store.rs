//! Queries on users, their wallet accounts and refresh tokens.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::phones::StoredPhone;
use crate::db::schema::{accounts, refresh_tokens, regions, users};
use crate::db::AnyConnection;
use crate::domain::account::AccountType;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: i64,
    /// The phone's keyed hash (`phones`).
    pub phone_hash: String,
    /// The phone, sealed; `None` only for an erased account.
    pub phone_sealed: Option<String>,
    pub password_hash: String,
    pub display_name: String,
    pub account_type: AccountType,
    pub region_code: String,
    pub credit_code: Option<String>,
    pub is_admin: bool,
    pub account_id: i64,
    pub created_at: NaiveDateTime,
}

pub struct NewUser<'a> {
    pub phone: &'a StoredPhone,
    pub password_hash: &'a str,
    pub display_name: &'a str,
    pub account_type: AccountType,
    pub region_code: &'a str,
    pub credit_code: Option<&'a str>,
    pub is_admin: bool,
}

pub fn region_exists(conn: &mut AnyConnection, code: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(regions::table.find(code))).get_result(conn)
}

/// Inserts the user and its wallet (a floored ledger account). Returns (user id, account id).
/// A duplicate phone surfaces as the database's unique violation.
pub fn insert_user(
    conn: &mut AnyConnection,
    new: &NewUser<'_>,
    now: NaiveDateTime,
) -> QueryResult<(i64, i64)> {
    let account_id: i64 = diesel::insert_into(accounts::table)
        .values((
            accounts::kind.eq("wallet"),
            accounts::code.eq(format!("wallet:{}", uuid::Uuid::new_v4())),
            accounts::region_code.eq(new.region_code),
            accounts::floored.eq(true),
            accounts::created_at.eq(now),
        ))
        .returning(accounts::id)
        .get_result(conn)?;
    let user_id: i64 = diesel::insert_into(users::table)
        .values((
            users::phone_hash.eq(&new.phone.hash),
            users::phone_sealed.eq(&new.phone.sealed),
            users::password_hash.eq(new.password_hash),
            users::display_name.eq(new.display_name),
            users::account_type.eq(new.account_type),
            users::region_code.eq(new.region_code),
            users::credit_code.eq(new.credit_code),
            users::is_admin.eq(new.is_admin),
            users::account_id.eq(account_id),
            users::created_at.eq(now),
        ))
        .returning(users::id)
        .get_result(conn)?;
    Ok((user_id, account_id))
}

/// The user whose phone has this keyed hash (`SecretBox::lookup_hash`).
pub fn find_by_phone_hash(conn: &mut AnyConnection, phone_hash: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::phone_hash.eq(phone_hash))
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

/// A user who has not erased their account.
pub fn find_by_id(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .filter(users::erased_at.is_null())
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshRow {
    pub id: i64,
    pub user_id: i64,
    pub family_id: String,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

pub fn insert_refresh(
    conn: &mut AnyConnection,
    user_id: i64,
    family_id: &str,
    token_hash: &str,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::user_id.eq(user_id),
            refresh_tokens::family_id.eq(family_id),
            refresh_tokens::token_hash.eq(token_hash),
            refresh_tokens::expires_at.eq(expires_at),
            refresh_tokens::created_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn find_refresh(conn: &mut AnyConnection, token_hash: &str) -> QueryResult<Option<RefreshRow>> {
    refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select(RefreshRow::as_select())
        .first(conn)
        .optional()
}

/// Marks a token used if (and only if) it is still fresh; false when another request got there first.
pub fn use_refresh(conn: &mut AnyConnection, id: i64, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::update(
        refresh_tokens::table
            .find(id)
            .filter(refresh_tokens::used_at.is_null())
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(now))
    .execute(conn)
    .map(|n| n == 1)
}

pub fn revoke_family(conn: &mut AnyConnection, family_id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)
}

/// The families of a user that were given a token pair at or after `since`.
pub fn families_issued_since(
    conn: &mut AnyConnection,
    user_id: i64,
    since: NaiveDateTime,
) -> QueryResult<Vec<String>> {
    refresh_tokens::table
        .filter(refresh_tokens::user_id.eq(user_id))
        .filter(refresh_tokens::created_at.ge(since))
        .select(refresh_tokens::family_id)
        .distinct()
        .load(conn)
}

pub fn revoke_all_for_user(conn: &mut AnyConnection, user_id: i64, now: NaiveDateTime) -> QueryResult<usize> {
    revoke_all_but(conn, user_id, None, now)
}

/// Revokes every live refresh token of the user outside the family `keep` (none: all of them).
pub fn revoke_all_but(
    conn: &mut AnyConnection,
    user_id: i64,
    keep: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let mut tokens = refresh_tokens::table
        .filter(refresh_tokens::user_id.eq(user_id))
        .filter(refresh_tokens::revoked_at.is_null())
        .select(refresh_tokens::id)
        .into_boxed();
    if let Some(keep) = keep {
        tokens = tokens.filter(refresh_tokens::family_id.ne(keep));
    }
    let ids: Vec<i64> = tokens.load(conn)?;
    diesel::update(refresh_tokens::table.filter(refresh_tokens::id.eq_any(ids)))
        .set(refresh_tokens::revoked_at.eq(now))
        .execute(conn)
}

/// Sets a user's display name and home region (the region known to exist).
pub fn update_profile(
    conn: &mut AnyConnection,
    user_id: i64,
    display_name: &str,
    region_code: &str,
) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set((
            users::display_name.eq(display_name),
            users::region_code.eq(region_code),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn set_password_hash(conn: &mut AnyConnection, user_id: i64, password_hash: &str) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set(users::password_hash.eq(password_hash))
        .execute(conn)
        .map(|_| ())
}
