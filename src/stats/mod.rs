//! Public statistics of what was granted, by region, activity type, day or month (docs/statistics.md):
//! `rollup` keeps the rollups in the crediting transactions, `window` (pure) splits a window into the
//! parts read from them, `report` reads and assembles an answer, `handlers` serves it as JSON or CSV.

pub mod handlers;
pub mod report;
pub mod rollup;
pub mod window;
