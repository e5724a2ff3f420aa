//! Integration tests: the real HTTP application on SQLite and on PostgreSQL + Redis.

mod helpers;

mod activities;
mod activity_types;
mod auth;
mod basics;
mod cli;
mod crash;
mod governance;
mod ledger;
mod ledger_model;
mod methodology;
mod methodology_governance;
mod providers;
mod redemptions;
mod retention;
