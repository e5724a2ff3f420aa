//! Region parameters as effective-dated versions: drafted by an administrator whose scope covers the
//! region, activated by a second one, resolved by region and time for quantification and for anyone who
//! asks (`GET /api/v1/regions/{code}/parameters?at=`). The resolution itself is pure and lives in
//! `domain::region_parameters`; the catalog holds the active versions.

pub mod draft;
pub mod handlers;
pub mod service;
pub mod simulate;
pub mod store;
pub mod views;
