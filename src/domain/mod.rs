//! Pure logic: no database, no HTTP.

pub mod credit_code;
pub mod phone;
