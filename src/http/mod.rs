//! HTTP plumbing shared by every feature: JSON bodies, problem responses for framework errors, pagination,
//! query-string values, timestamps, CSV negotiation, the refusal of NUL characters.

pub mod csv;
pub mod fallback;
pub mod json;
pub mod nul;
pub mod pagination;
pub mod query;
pub mod reader;
pub mod timestamp;
