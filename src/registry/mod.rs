//! The claim registry (`docs/registry.md`): one owner per trip across the carbon-inclusive platforms that
//! use it. `store` holds the one table every path goes through.

pub mod store;
