//! What the ledger refuses, and how each refusal is answered over HTTP.

use crate::error::{ApiError, ErrorCode};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LedgerError {
    #[error("not enough available points")]
    InsufficientFunds,
    #[error("unknown account {0}")]
    UnknownAccount(i64),
    /// The two sides of a transfer hold different assets (points and cash).
    #[error("account {0} does not hold this asset")]
    OtherAsset(i64),
    #[error("an account cannot pay itself")]
    SameAccount,
    #[error("amounts must be positive")]
    NonPositive,
    /// An account's posted or pending total would leave the 64-bit range: refused, never wrapped.
    #[error("that amount would take an account's totals beyond what the ledger can hold")]
    OutOfRange,
    #[error("the hold is no longer pending")]
    NotPending,
    #[error("no such hold")]
    UnknownHold,
    /// The ledger's own rows disagree with what the code relies on (a missing issuance account, a
    /// statement that changed fewer rows than it must): a bug or an edited database.
    #[error("{0}")]
    Inconsistent(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> ApiError {
        match e {
            LedgerError::InsufficientFunds => ApiError::conflict(ErrorCode::InsufficientFunds, e.to_string()),
            LedgerError::UnknownAccount(_) => {
                ApiError::unprocessable(ErrorCode::UnknownAccount, e.to_string())
            }
            LedgerError::OtherAsset(_) => ApiError::unprocessable(ErrorCode::UnknownAccount, e.to_string()),
            LedgerError::SameAccount => ApiError::unprocessable(ErrorCode::SelfTransfer, e.to_string()),
            LedgerError::NonPositive => ApiError::field("points", e.to_string()),
            LedgerError::OutOfRange => ApiError::unprocessable(ErrorCode::AmountOutOfRange, e.to_string()),
            LedgerError::NotPending => ApiError::conflict(ErrorCode::InvalidState, e.to_string()),
            LedgerError::UnknownHold => ApiError::not_found(e.to_string()),
            LedgerError::Inconsistent(message) => ApiError::internal(anyhow::anyhow!(message)),
            LedgerError::Database(e) => e.into(),
        }
    }
}
