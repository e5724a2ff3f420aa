//! Integration tests: the real HTTP application on SQLite and on PostgreSQL + Redis.

mod helpers;

mod activities;
mod activity_types;
mod admin_search;
mod auth;
mod basics;
mod bindings;
mod browser;
mod cli;
mod consent;
mod console;
mod crash;
mod dashboard;
mod explain;
mod faults;
mod gate;
mod governance;
mod ledger;
mod ledger_model;
mod limits;
mod list_plans;
mod methodology;
mod methodology_governance;
mod operations;
mod privacy;
mod profile;
mod providers;
mod publication;
mod redemptions;
mod reduction_batches;
mod region_parameters;
mod replica;
mod retention;
mod stats;
