//! Why a redemption step did not happen, as the redemption service decides it; handlers answer it.

use super::store::RedemptionStatus;
use crate::error::{ApiError, ErrorCode};
use crate::ledger::service::LedgerError;

#[derive(Debug, thiserror::Error)]
pub enum RedemptionError {
    #[error("no such offer")]
    UnknownOffer,
    #[error("this offer is withdrawn or outside its validity window")]
    OfferInactive,
    #[error("this offer is for residents of its regions; your home region is {0}")]
    RegionNotServed(String),
    #[error("at most {0} held or captured redemptions of this offer per account")]
    LimitReached(i64),
    #[error("this offer is out of stock")]
    OutOfStock,
    /// The ledger refused the hold (short of points, an unknown wallet…) or failed.
    #[error(transparent)]
    Hold(#[from] LedgerError),
    #[error("no such redemption")]
    UnknownRedemption,
    #[error("this redemption is already {0}")]
    AlreadyResolved(RedemptionStatus),
    #[error("this redemption has expired")]
    Expired,
    #[error("this redemption is not due to expire yet")]
    NotDue,
    /// Redemptions, offers and the ledger disagree: a bug or an edited database, never the caller's
    /// fault. `verify` reports it.
    #[error("{0}")]
    Inconsistent(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

impl RedemptionError {
    /// The redemption was not held (any more) for this step: someone else ended it first, or it is
    /// not yet the step's time.
    pub fn is_not_held(&self) -> bool {
        matches!(
            self,
            RedemptionError::AlreadyResolved(_) | RedemptionError::Expired | RedemptionError::NotDue
        )
    }
}

impl From<RedemptionError> for ApiError {
    fn from(e: RedemptionError) -> ApiError {
        let detail = e.to_string();
        match e {
            RedemptionError::UnknownOffer | RedemptionError::UnknownRedemption => ApiError::not_found(detail),
            RedemptionError::OfferInactive => ApiError::conflict(ErrorCode::OfferInactive, detail),
            // 409 with the contract's other refusals of an offer (`offer_inactive`, `out_of_stock`…):
            // the caller may redeem, this offer just does not serve its region.
            RedemptionError::RegionNotServed(_) => ApiError::conflict(ErrorCode::RegionNotServed, detail),
            RedemptionError::LimitReached(_) => ApiError::conflict(ErrorCode::LimitReached, detail),
            RedemptionError::OutOfStock => ApiError::conflict(ErrorCode::OutOfStock, detail),
            RedemptionError::Hold(e) => e.into(),
            RedemptionError::AlreadyResolved(_) | RedemptionError::Expired | RedemptionError::NotDue => {
                ApiError::conflict(ErrorCode::InvalidState, detail)
            }
            RedemptionError::Inconsistent(message) => ApiError::internal(anyhow::anyhow!(message)),
            RedemptionError::Database(e) => e.into(),
        }
    }
}
