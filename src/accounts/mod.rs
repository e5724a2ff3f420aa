//! People, businesses and administrators: registration, sign-in, token refresh, profile.

pub mod handlers;
pub mod service;
pub mod store;
pub mod validate;
