//! Redemptions: a user spends points on a partner's offer. A redemption holds the points and returns a
//! signed voucher; the partner captures it (the points move to its settlement account) or voids it, or
//! it expires uncaptured. Stock and the per-user limit are taken and given back in the same
//! transactions as the ledger steps.

pub mod error;
pub mod handlers;
pub mod reconcile;
pub mod service;
pub mod settlement;
pub mod store;
pub mod voucher;

pub use handlers::routes;

/// The `ref_type` of ledger holds made for redemptions: the redemption sweeper expires them (it must
/// also restore stock), so the ledger's generic sweeper leaves them alone.
pub const REF_TYPE: &str = "redemption";
