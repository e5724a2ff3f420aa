//! Offers partners publish: what a number of points buys, how many, for whom and where.

pub mod handlers;
pub mod stock;
pub mod store;
pub mod terms;

pub use handlers::routes;
