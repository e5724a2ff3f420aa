//! Tanhui (碳惠): quantify low-carbon actions per region, issue carbon points into a double-entry ledger,
//! and let partners accept them.

pub mod accounts;
pub mod activities;
#[cfg(test)]
mod architecture;
pub mod audit;
pub mod auth;
pub mod background;
pub mod bindings;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod consents;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod governance;
pub mod green;
pub mod health;
pub mod http;
pub mod idempotency;
pub mod keys;
pub mod ledger;
pub mod methodology;
pub mod metrics;
pub mod offers;
pub mod onboarding;
pub mod openapi;
pub mod partners;
pub mod providers;
pub mod publication;
pub mod redemptions;
pub mod reductions;
pub mod region_parameters;
pub mod registry;
pub mod retirements;
pub mod secrets;
pub mod startup;
pub mod state;
pub mod stats;
pub mod telemetry;
pub mod text_enum;
pub mod verify;
pub mod web;
