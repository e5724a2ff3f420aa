//! Integration tests: the real HTTP application on SQLite and on PostgreSQL + Redis.

mod helpers;

mod activities;
mod auth;
mod basics;
mod cli;
mod crash;
mod governance;
mod ledger;
mod ledger_model;
mod methodology;
mod providers;
mod publication;
mod redemptions;
mod retention;
