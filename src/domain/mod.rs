//! Pure logic: no database, no HTTP.

pub mod account;
pub mod catalog;
pub mod credit_code;
pub mod data_schema;
pub mod formula;
pub mod phone;
