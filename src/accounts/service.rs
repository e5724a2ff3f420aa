//! Account rules: each function owns its transaction.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::phones;
use super::store::{self, NewUser, UserRow};
use super::validate::ValidRegistration;
use crate::audit::{self, AuditAction, AuditEntity};
use crate::auth::{refresh, Role};
use crate::db::{self, AnyConnection, Tx};
use crate::domain::catalog::NATION;
use crate::governance::grants::{self, GrantRole};
use crate::secrets::SecretBox;
use crate::state::AppState;

/// Why an account change was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("unknown region")]
    UnknownRegion,
    #[error("this phone is already registered")]
    PhoneTaken,
    /// The account behind a valid token is gone.
    #[error("account no longer exists")]
    UnknownUser,
    #[error("issuing an access token: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
    #[error(transparent)]
    Database(#[from] DieselError),
}

pub type AccountResult<T> = Result<T, AccountError>;

pub struct Registered {
    pub user_id: i64,
    pub account_id: i64,
}

/// Stores a checked registration whose password is already hashed, its phone sealed (`phones`). An administrator `governs` a region
/// (`CN`: the nation), granted at creation. The phone's uniqueness is the
/// database's to decide, so twenty simultaneous registrations of one phone give exactly one account.
pub fn register(
    conn: &mut AnyConnection,
    secrets: &SecretBox,
    now: DateTime<Utc>,
    reg: &ValidRegistration,
    password_hash: &str,
    governs: Option<&str>,
) -> AccountResult<Registered> {
    let is_admin = governs.is_some();
    db::transaction(conn, Tx::Write, |conn| {
        if !store::region_exists(conn, &reg.region_code)? {
            return Err(AccountError::UnknownRegion);
        }
        if let Some(governed) = governs {
            if !store::region_exists(conn, governed)? {
                return Err(AccountError::UnknownRegion);
            }
        }
        let phone = phones::seal(secrets, &reg.phone);
        let new = NewUser {
            phone: &phone,
            password_hash,
            display_name: &reg.display_name,
            account_type: reg.account_type,
            region_code: &reg.region_code,
            credit_code: reg.credit_code.as_deref(),
            is_admin,
        };
        let now = now.naive_utc();
        let (user_id, account_id) = store::insert_user(conn, &new, now).map_err(|e| match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => AccountError::PhoneTaken,
            other => other.into(),
        })?;
        if let Some(governed) = governs {
            let role = if governed == NATION {
                GrantRole::Admin
            } else {
                GrantRole::RegionAdmin
            };
            grants::first_grant(conn, now, user_id, role, governed)?;
            audit::record(
                conn,
                audit::Entry {
                    at: now,
                    actor_user_id: None,
                    action: AuditAction::AdminCreate,
                    entity: AuditEntity::User,
                    entity_id: &user_id.to_string(),
                    before: None,
                    after: Some(
                        serde_json::json!({"display_name": reg.display_name, "region_code": reg.region_code, "governs": governed}),
                    ),
                },
            )?;
        }
        Ok(Registered { user_id, account_id })
    })
}

pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

fn new_refresh_token(
    conn: &mut AnyConnection,
    state: &AppState,
    now: NaiveDateTime,
    user_id: i64,
    family_id: &str,
) -> AccountResult<String> {
    let token = refresh::generate();
    let expires = now + Duration::seconds(state.settings.auth.refresh_token_ttl_secs as i64);
    store::insert_refresh(conn, user_id, family_id, &refresh::hash(&token), expires, now)?;
    Ok(token)
}

fn pair_for(
    conn: &mut AnyConnection,
    state: &AppState,
    now: DateTime<Utc>,
    user: &UserRow,
    family_id: &str,
) -> AccountResult<TokenPair> {
    let refresh_token = new_refresh_token(conn, state, now.naive_utc(), user.id, family_id)?;
    let roles = Role::for_account(user.account_type, user.is_admin);
    Ok(TokenPair {
        access_token: state.tokens.issue(
            now,
            user.id,
            user.account_id,
            family_id,
            &user.region_code,
            roles,
        )?,
        refresh_token,
        expires_in: state.tokens.ttl_secs(),
    })
}

/// A new token family for a signed-in user.
pub fn start_session(conn: &mut AnyConnection, state: &AppState, user: &UserRow) -> AccountResult<TokenPair> {
    db::transaction(conn, Tx::Write, |conn| {
        pair_for(
            conn,
            state,
            state.clock.now(),
            user,
            &uuid::Uuid::new_v4().to_string(),
        )
    })
}

pub enum RefreshOutcome {
    Rotated(TokenPair),
    /// Unknown, expired or revoked.
    Invalid,
    /// Already used: the family (the session named here) has been revoked.
    Reused {
        session_id: String,
    },
}

/// Rotates a refresh token. A token presented a second time revokes its whole family, since either the
/// client or a thief holds a copy. The revocation is committed even though the caller answers 401.
pub fn rotate(conn: &mut AnyConnection, state: &AppState, token: &str) -> AccountResult<RefreshOutcome> {
    db::transaction(conn, Tx::Write, |conn| {
        let Some(row) = store::find_refresh(conn, &refresh::hash(token))? else {
            return Ok(RefreshOutcome::Invalid);
        };
        let at = state.clock.now();
        let now = at.naive_utc();
        if row.revoked_at.is_some() {
            return Ok(RefreshOutcome::Invalid);
        }
        if row.used_at.is_some() || !store::use_refresh(conn, row.id, now)? {
            store::revoke_family(conn, &row.family_id, now)?;
            return Ok(RefreshOutcome::Reused {
                session_id: row.family_id,
            });
        }
        if row.expires_at <= now {
            return Ok(RefreshOutcome::Invalid);
        }
        let Some(user) = store::find_by_id(conn, row.user_id)? else {
            return Ok(RefreshOutcome::Invalid);
        };
        pair_for(conn, state, at, &user, &row.family_id).map(RefreshOutcome::Rotated)
    })
}

/// Ends sessions: the family of the given refresh token when it is the caller's, else all of the caller's.
/// Returns the sessions whose access tokens may still be unexpired, for the caller to announce: the
/// ended family (again when it had already ended, so that a retried logout announces it again), or every
/// family that was handed an access token since `tokens_live_since`.
pub fn logout(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    tokens_live_since: NaiveDateTime,
    user_id: i64,
    token: Option<&str>,
) -> AccountResult<Vec<String>> {
    db::transaction(conn, Tx::Write, |conn| match token {
        Some(token) => match store::find_refresh(conn, &refresh::hash(token))? {
            Some(row) if row.user_id == user_id => {
                store::revoke_family(conn, &row.family_id, now)?;
                Ok(vec![row.family_id])
            }
            _ => Ok(Vec::new()),
        },
        None => {
            store::revoke_all_for_user(conn, user_id, now)?;
            Ok(store::families_issued_since(conn, user_id, tokens_live_since)?)
        }
    })
}
