//! A fresh database for one bench run: a temporary SQLite file, or a new PostgreSQL database.

use diesel::{Connection, RunQueryDsl};
use tanhui::config::Settings;

/// Settings for a fresh database: a temporary SQLite file, or a new PostgreSQL database named after
/// `prefix` and this process (returned, to drop), on the server of `TANHUI_BENCH_DATABASE_URL`.
pub fn fresh_database(backend: &str, prefix: &str) -> (Settings, Option<tempfile::TempDir>, Option<String>) {
    let mut s = Settings::defaults();
    s.log.level = "warn".into();
    if backend == "sqlite" {
        let dir = tempfile::tempdir().expect("temp dir");
        s.database.url = format!("sqlite://{}", dir.path().join("bench.db").display());
        return (s, Some(dir), None);
    }
    let admin = admin_url();
    let base = admin
        .rsplit_once('/')
        .map_or(admin.clone(), |(b, _)| b.to_string());
    let name = format!("{prefix}_{}", std::process::id());
    let mut conn = diesel::PgConnection::establish(&admin).expect("PostgreSQL");
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .ok();
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create database");
    s.database.url = format!("{base}/{name}");
    (s, None, Some(name))
}

fn admin_url() -> String {
    std::env::var("TANHUI_BENCH_DATABASE_URL").unwrap_or("postgres://postgres@127.0.0.1:5432/test".into())
}

/// Drops a database [`fresh_database`] made.
pub fn drop_database(name: &str) {
    if let Ok(mut conn) = diesel::PgConnection::establish(&admin_url()) {
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .ok();
    }
}
