//! Retirement: points taken out of circulation for good, for a named beneficiary and reason, with the
//! grams behind them (from their lots) and a certificate signed with the platform key, listed in a public
//! registry (docs/registry.md, "Retirement").

pub mod certificate;
pub mod handlers;
pub mod service;
pub mod store;
