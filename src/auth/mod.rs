//! Authentication: password hashing, access and refresh tokens, role extractors, revoked sessions,
//! login throttling.

pub mod api_keys;
pub mod client_ip;
pub mod extract;
pub mod password;
pub mod rate_limit;
pub mod refresh;
pub mod sessions;
pub mod signature;
pub mod throttle;
pub mod tokens;

use crate::domain::account::AccountType;

crate::text_enum! {
    /// What a token lets its holder do; carried in access tokens and shown in profiles.
    pub enum Role {
        User = "user",
        Business = "business",
        Admin = "admin",
    }
}

impl Role {
    /// The roles of an account: individuals are users, businesses are businesses, and an administrator
    /// is only an administrator (it holds no wallet role, so one login cannot both tune and earn).
    pub fn for_account(account_type: AccountType, is_admin: bool) -> Vec<Role> {
        if is_admin {
            vec![Role::Admin]
        } else {
            match account_type {
                AccountType::Business => vec![Role::Business],
                AccountType::Individual => vec![Role::User],
            }
        }
    }
}
