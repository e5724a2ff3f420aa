//! Integration tests: the real HTTP application on SQLite and on PostgreSQL + Redis.

mod helpers;

mod activities;
mod admin_search;
mod auth;
mod basics;
mod cli;
mod crash;
mod explain;
mod governance;
mod ledger;
mod ledger_model;
mod methodology;
mod providers;
mod redemptions;
mod retention;
