//! Authentication: password hashing, access and refresh tokens, role extractors, login throttling.

pub mod api_keys;
pub mod client_ip;
pub mod extract;
pub mod password;
pub mod refresh;
pub mod signature;
pub mod throttle;
pub mod tokens;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Business,
    Admin,
}

impl Role {
    /// The roles of an account: individuals are users, businesses are businesses, and an administrator
    /// is only an administrator (it holds no wallet role, so one login cannot both tune and earn).
    pub fn for_account(account_type: &str, is_admin: bool) -> Vec<Role> {
        if is_admin {
            vec![Role::Admin]
        } else if account_type == "business" {
            vec![Role::Business]
        } else {
            vec![Role::User]
        }
    }
}
