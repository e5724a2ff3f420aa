//! Changes a person makes to their own account: name and home region, password.

use chrono::NaiveDateTime;

use super::service::{AccountError, AccountResult};
use super::store::{self, UserRow};
use crate::db::{self, AnyConnection, Tx};

/// A profile change, already checked field by field; absent fields stay as they are.
pub struct ProfileChange {
    pub display_name: Option<String>,
    pub region_code: Option<String>,
}

/// Applies the change; returns the profile as it now is.
pub fn update(conn: &mut AnyConnection, user_id: i64, change: &ProfileChange) -> AccountResult<UserRow> {
    db::transaction(conn, Tx::Write, |conn| {
        let user = store::find_by_id(conn, user_id)?.ok_or(AccountError::UnknownUser)?;
        if let Some(region) = &change.region_code {
            if !store::region_exists(conn, region)? {
                return Err(AccountError::UnknownRegion);
            }
        }
        let name = change.display_name.as_deref().unwrap_or(&user.display_name);
        let region = change.region_code.as_deref().unwrap_or(&user.region_code);
        store::update_profile(conn, user_id, name, region)?;
        store::find_by_id(conn, user_id)?.ok_or(AccountError::UnknownUser)
    })
}

/// Stores a new password hash and ends every session of the user but `keep` (the one that changed it).
/// Returns the sessions ended.
pub fn change_password(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    tokens_live_since: NaiveDateTime,
    user_id: i64,
    new_hash: &str,
    keep: &str,
) -> AccountResult<Vec<String>> {
    db::transaction(conn, Tx::Write, |conn| {
        store::set_password_hash(conn, user_id, new_hash)?;
        store::revoke_all_but(conn, user_id, Some(keep), now)?;
        let mut ended = store::families_issued_since(conn, user_id, tokens_live_since)?;
        ended.retain(|family| family != keep);
        Ok(ended)
    })
}
