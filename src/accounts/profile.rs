//! A person's profile as they read it, and the changes they make to it: name and home region, password.

use chrono::NaiveDateTime;
use serde::Serialize;
use utoipa::ToSchema;

use super::service::{AccountError, AccountResult};
use super::store::{self, UserRow};
use crate::auth::Role;
use crate::db::{self, AnyConnection, Tx};
use crate::domain::account::AccountType;
use crate::domain::phone;
use crate::secrets::SecretBox;

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user_id: String,
    pub account_id: String,
    /// `138****5678`
    pub phone_masked: String,
    pub display_name: String,
    pub account_type: AccountType,
    pub region_code: String,
    pub roles: Vec<Role>,
}

impl Me {
    /// The profile of `user`, its phone unsealed only to be masked.
    pub fn of(user: UserRow, secrets: &SecretBox) -> Me {
        Me {
            user_id: user.id.to_string(),
            account_id: user.account_id.to_string(),
            phone_masked: phone::mask_phone(&plain_phone(&user, secrets)),
            display_name: user.display_name,
            roles: Role::for_account(user.account_type, user.is_admin),
            account_type: user.account_type,
            region_code: user.region_code,
        }
    }
}

/// The user's phone, unsealed. A row the secrets key cannot open (it was sealed under another key) gives
/// an empty phone rather than failing the request: it masks to `****`.
pub fn plain_phone(user: &UserRow, secrets: &SecretBox) -> String {
    user.phone_sealed
        .as_deref()
        .and_then(|sealed| secrets.open(sealed))
        .unwrap_or_default()
}

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
