//! Pure logic: no database, no HTTP.

pub mod account;
pub mod catalog;
pub mod credit_code;
pub mod data_schema;
pub mod formula;
pub mod phone;

/// One input field that is wrong, and why: domain checks report these, and the edge answers them.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}
