//! Regions, activity types and methodology versions: what administrators tune and what quantification uses.

pub mod activity_types;
pub mod cache;
pub mod check;
pub mod diff;
pub mod draft;
pub mod handlers;
pub mod impact;
pub mod quantify;
pub mod requantify;
pub mod service;
pub mod simulate;
pub mod store;
pub mod type_handlers;
pub mod views;
pub mod window;
