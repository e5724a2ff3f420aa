//! Integration tests: the real HTTP application on SQLite and on PostgreSQL + Redis.

mod helpers;

mod activities;
mod activity_types;
mod admin_search;
mod auth;
mod basics;
mod bindings;
mod cli;
mod crash;
mod explain;
mod gate;
mod governance;
mod ledger;
mod ledger_model;
mod limits;
mod list_plans;
mod methodology;
mod methodology_governance;
mod operations;
mod profile;
mod providers;
mod publication;
mod redemptions;
mod region_parameters;
mod retention;
mod stats;
