//! The points ledger: double-entry accounts, immutable transfers, two-phase holds, sealed blocks.
//!
//! See docs/ledger.md for the model, the lock order and how to verify a proof offline.

pub mod batch;
pub mod check;
pub mod error;
pub mod expiry;
pub mod handlers;
pub mod kinds;
pub mod lots;
pub mod merkle;
pub mod seal;
pub mod service;
pub mod signing;
pub mod store;
pub mod transfer_writer;
