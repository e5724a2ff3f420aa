//! HTTP plumbing shared by every feature: JSON bodies, problem responses for framework errors, pagination,
//! timestamps.

pub mod fallback;
pub mod json;
pub mod pagination;
pub mod timestamp;
