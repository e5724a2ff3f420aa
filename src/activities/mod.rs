//! Activity ingestion: people's apps and trusted data providers post low-carbon actions; plausible ones
//! earn points. See docs/architecture.md for the path of one event.

pub mod caps;
pub mod claims;
pub mod explain;
#[cfg(test)]
mod fixtures;
pub mod gate;
pub mod group;
pub mod handlers;
pub mod ingest;
pub mod model;
pub mod queue;
pub mod request;
pub mod retention;
pub mod retry;
pub mod review;
pub mod rollups;
pub mod rules;
pub mod store;
pub mod writer;
