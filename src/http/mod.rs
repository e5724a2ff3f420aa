//! HTTP plumbing shared by every feature: JSON bodies, problem responses for framework errors, pagination,
//! query-string values, timestamps, the refusal of NUL characters.

pub mod fallback;
pub mod json;
pub mod nul;
pub mod pagination;
pub mod query;
pub mod reader;
pub mod timestamp;
