//! Administration by region: who may govern which regions, and the rule that every approval is a second
//! administrator's.
//!
//! An administrator's scope is the union of its live role grants (`scope`): a national `admin`, or a
//! `region_admin` of a region and everything under it. Handlers take a [`Governor`] (the caller with the
//! scope read from the database on every request, so a revoked grant stops the next request on every
//! instance), and services check the region of what they change against it.

pub mod extract;
pub mod grants;
pub mod handlers;
pub mod scope;

pub use extract::Governor;
pub use scope::{require_second_admin, OutOfScope, OwnRequest, Scope};
