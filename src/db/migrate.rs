//! Embedded migrations, one set per backend, applied at start-up before the port opens.

use diesel::RunQueryDsl;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::{AnyConnection, Manager};

const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// An arbitrary constant that names "Tanhui migrations" among PostgreSQL advisory locks.
const MIGRATION_LOCK_KEY: i64 = 0x7461_6e68_7569_0001;

/// Applies pending migrations and returns the versions applied.
///
/// Several instances starting together must not migrate concurrently. On PostgreSQL a session advisory
/// lock on a dedicated, unpooled connection serializes them (the connection is closed afterwards, so the
/// lock cannot leak into a pool); SQLite serves a single instance.
pub fn run(manager: &Manager) -> anyhow::Result<Vec<String>> {
    let mut conn = manager.connect()?;
    let applied = match &mut conn {
        AnyConnection::Postgresql(pg) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")).execute(pg)?;
            let result = pg.run_pending_migrations(POSTGRES).map(versions);
            diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")).execute(pg)?;
            result
        }
        AnyConnection::Sqlite(lite) => lite.run_pending_migrations(SQLITE).map(versions),
    };
    applied.map_err(|e| anyhow::anyhow!("migration failed: {e}"))
}

fn versions(list: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    list.into_iter().map(|v| v.to_string()).collect()
}
