//! People, businesses and administrators: registration, sign-in, token refresh, profile.

pub mod handlers;
pub mod me;
pub mod money_records;
pub mod phones;
pub mod privacy;
pub mod profile;
pub mod service;
pub mod store;
pub mod summary;
pub mod validate;
