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

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;
    use diesel::migration::MigrationSource;
    use diesel::sql_types::Text;
    use diesel::sqlite::{Sqlite, SqliteConnection};
    use diesel::QueryableByName;

    use super::*;
    use crate::db::ConnectOptions;

    /// Rows of every table `000008_one_btree_keys` rebuilds, in a database made before it.
    const ROWS: &str = "
        INSERT INTO transfers (id, kind, debit_account_id, credit_account_id, amount, timeout_at, created_at)
            VALUES (1, 'issue', (SELECT min(id) FROM accounts), (SELECT max(id) FROM accounts), 5, NULL,
                    '2026-11-29 00:00:00'),
                   (2, 'hold', (SELECT max(id) FROM accounts), (SELECT min(id) FROM accounts), 3,
                    '2026-11-30 00:00:00', '2026-11-29 00:00:01');
        INSERT INTO unsealed_transfers VALUES (2);
        INSERT INTO ledger_blocks VALUES (1, 'prev', 'root', 'hash', 1, '2026-11-29 00:00:02', 'sig');
        INSERT INTO block_transfers VALUES (1, 1, 0);
        INSERT INTO pending_holds VALUES (2, '2026-11-30 00:00:00');
        INSERT INTO daily_grants VALUES (5, 'walking', '2026-11-29', 86, 86), (5, 'cycling', '2026-11-29', 9, 9);
        INSERT INTO annual_points VALUES (5, 2026, 95, 9);
        INSERT INTO idempotency_keys VALUES ('transfer:5', 'k1', 'digest', 201, '{\"transfer_id\":\"1\"}',
                                             '2026-11-29 00:00:00');
        INSERT INTO request_nonces VALUES ('key', 'nonce', '2026-11-29 00:10:00');
        INSERT INTO redemption_counts VALUES (1, 5, 1);";

    /// Each table's rows, quoted, in key order.
    const DUMP: &[&str] = &[
        "SELECT quote(transfer_id) AS line FROM unsealed_transfers ORDER BY 1",
        "SELECT quote(transfer_id) || quote(block_height) || quote(leaf_index) AS line \
         FROM block_transfers ORDER BY 1",
        "SELECT quote(hold_id) || quote(timeout_at) AS line FROM pending_holds ORDER BY 1",
        "SELECT quote(account_id) || quote(activity_type) || quote(local_day) || quote(granted_g) \
         || quote(last_grant_g) AS line FROM daily_grants ORDER BY 1",
        "SELECT quote(account_id) || quote(year) || quote(points) || quote(last_grant) AS line \
         FROM annual_points",
        "SELECT quote(scope) || quote(idempotency_key) || quote(request_hash) || quote(status) \
         || quote(response) || quote(created_at) AS line FROM idempotency_keys",
        "SELECT quote(key_id) || quote(nonce) || quote(expires_at) AS line FROM request_nonces",
        "SELECT quote(offer_id) || quote(account_id) || quote(active) AS line FROM redemption_counts",
    ];

    #[derive(QueryableByName)]
    struct Line {
        #[diesel(sql_type = Text)]
        line: String,
    }

    fn dump(conn: &mut SqliteConnection) -> Vec<String> {
        DUMP.iter()
            .flat_map(|select| diesel::sql_query(*select).load::<Line>(conn).expect(select))
            .map(|l| l.line)
            .collect()
    }

    /// Indexes SQLite keeps beside a table (a key that is not the table's own B-tree needs one).
    fn indexes(conn: &mut SqliteConnection, table: &str) -> i64 {
        crate::db::count(
            conn,
            &format!("SELECT count(*) AS n FROM sqlite_master WHERE type = 'index' AND tbl_name = '{table}'"),
        )
    }

    /// Diesel keys migrations by the version their directory starts with and skips a second one with the
    /// same version as applied: a new migration numbered like an existing one would never run.
    #[test]
    fn every_migration_has_a_version_of_its_own() {
        use diesel::pg::Pg;
        let sqlite = MigrationSource::<Sqlite>::migrations(&SQLITE).expect("migrations");
        let postgres = MigrationSource::<Pg>::migrations(&POSTGRES).expect("migrations");
        for names in [
            sqlite.iter().map(|m| m.name().to_string()).collect::<Vec<_>>(),
            postgres.iter().map(|m| m.name().to_string()).collect(),
        ] {
            let mut versions: Vec<String> = names
                .iter()
                .map(|n| n.split('_').next().unwrap_or_default().to_string())
                .collect();
            versions.sort();
            let count = versions.len();
            versions.dedup();
            assert_eq!(versions.len(), count, "{names:?}");
        }
    }

    type Migrations = Vec<Box<dyn diesel::migration::Migration<Sqlite>>>;

    /// A SQLite database with every migration before the one named `*{suffix}` applied; returns the
    /// migrations and that one's position.
    fn migrated_up_to(dir: &tempfile::TempDir, suffix: &str) -> (SqliteConnection, Migrations, usize) {
        let manager = Manager::new(ConnectOptions::sqlite_in(dir)).expect("manager");
        let AnyConnection::Sqlite(mut conn) = manager.connect().expect("connection") else {
            panic!("a SQLite URL opens SQLite");
        };
        let migrations = MigrationSource::<Sqlite>::migrations(&SQLITE).expect("migrations");
        let at = migrations
            .iter()
            .position(|m| m.name().to_string().ends_with(suffix))
            .expect("the migration");
        diesel::migration::MigrationConnection::setup(&mut conn).expect("migrations table");
        for earlier in &migrations[..at] {
            conn.run_migration(earlier).expect("earlier migration");
        }
        (conn, migrations, at)
    }

    #[test]
    fn rebuilding_activities_keeps_every_row_and_scopes_event_ids_per_poster() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut conn, migrations, at) = migrated_up_to(&dir, "event_ids_per_poster");
        // What the rows name: a wallet, its user, an issue transfer (the versions are seeded).
        conn.batch_execute(
            "INSERT INTO accounts (id, kind, code, region_code, floored, created_at)
                 VALUES (5000, 'wallet', 'wallet:test', 'CN', TRUE, '2026-11-29 00:00:00');
             INSERT INTO users (id, phone, password_hash, display_name, account_type, region_code, account_id,
                                created_at)
                 VALUES (6, '13800138000', 'x', 't', 'individual', 'CN', 5000, '2026-11-29 00:00:00');
             INSERT INTO transfers (id, kind, debit_account_id, credit_account_id, amount, created_at)
                 VALUES (9, 'issue', (SELECT min(id) FROM accounts WHERE kind = 'issuance'), 5000, 86,
                         '2026-11-29 00:31:00');",
        )
        .expect("referenced rows");
        let row = |id: i64, event: &str, provider: &str| {
            format!(
                "INSERT INTO activities (id, account_id, user_id, client_event_id, request_hash, activity_type, \
                 region_code, occurred_at, ended_at, local_day, evidence, provider_id, data, status, reasons, \
                 methodology_id, reduction_g, granted_g, points, breakdown, transfer_id, review_note, \
                 reviewed_by, reviewed_at, created_at) VALUES ({id}, 5000, 6, '{event}', 'h', 'walking', 'CN', \
                 '2026-11-29 00:00:00', '2026-11-29 00:30:00', '2026-11-29', 'trace', {provider}, '{{}}', \
                 'credited', '[]', 3, 86, 86, 86, '[]', 9, 'n', 6, '2026-11-29 01:00:00', '2026-11-29 00:31:00')"
            )
        };
        conn.batch_execute(&format!("{}; {}", row(1, "e-1", "NULL"), row(2, "e-2", "7")))
            .expect("rows");
        let rows = |conn: &mut SqliteConnection| -> Vec<String> {
            diesel::sql_query(
                "SELECT quote(id) || quote(account_id) || quote(user_id) || quote(client_event_id) \
                 || quote(request_hash) || quote(activity_type) || quote(region_code) || quote(occurred_at) \
                 || quote(ended_at) || quote(local_day) || quote(evidence) || quote(provider_id) || quote(data) \
                 || quote(status) || quote(reasons) || quote(methodology_id) || quote(reduction_g) \
                 || quote(granted_g) || quote(points) || quote(breakdown) || quote(transfer_id) \
                 || quote(review_note) || quote(reviewed_by) || quote(reviewed_at) || quote(created_at) \
                 AS line FROM activities ORDER BY id",
            )
            .load::<Line>(conn)
            .expect("rows")
            .into_iter()
            .map(|l| l.line)
            .collect()
        };
        let before = rows(&mut conn);
        assert!(
            conn.batch_execute(&row(3, "e-1", "7")).is_err(),
            "one id per account before"
        );

        conn.run_migration(&migrations[at]).expect("rebuild");
        assert_eq!(rows(&mut conn), before);
        conn.batch_execute(&row(3, "e-1", "7"))
            .expect("the provider's own e-1");
        conn.batch_execute(&row(4, "e-1", "8"))
            .expect("another provider's e-1");
        assert!(
            conn.batch_execute(&row(5, "e-1", "NULL")).is_err(),
            "the app's e-1 again"
        );
        assert!(
            conn.batch_execute(&row(5, "e-2", "7")).is_err(),
            "provider 7's e-2 again"
        );
        assert_sound(&mut conn);
    }

    /// Today's rates become versions in force since long ago (so nothing earns differently), and going
    /// back restores them.
    #[test]
    fn region_rates_become_versions_in_force_since_long_ago() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut conn, migrations, at) = migrated_up_to(&dir, "region_parameters");
        conn.batch_execute("UPDATE regions SET points_per_gram = '2' WHERE code = '440300'")
            .expect("a city's own rate");
        conn.run_migration(&migrations[at]).expect("versions");
        let versions: Vec<Line> = diesel::sql_query(
            "SELECT region_code || ' ' || status || ' ' || effective_from || ' ' || parameter_values AS line \
             FROM region_parameter_versions ORDER BY id",
        )
        .load(&mut conn)
        .expect("versions");
        assert_eq!(
            versions.into_iter().map(|l| l.line).collect::<Vec<_>>(),
            [
                r#"CN active 2000-01-01 00:00:00 {"points_per_gram":"1","points_validity_days":"3650","trading_enabled":"1"}"#,
                r#"440300 active 2000-01-01 00:00:00 {"points_per_gram":"2"}"#,
            ]
        );
        assert!(conn.batch_execute("SELECT points_per_gram FROM regions").is_err());
        assert_sound(&mut conn);
        conn.revert_migration(&migrations[at]).expect("revert");
        let mut rate = |code: &str| {
            crate::db::count(
                &mut conn,
                &format!("SELECT count(*) AS n FROM regions WHERE code = '{code}' AND points_per_gram = '2'"),
            )
        };
        assert_eq!(rate("440300"), 1);
        assert_eq!(rate("440000"), 0);
    }

    /// A phone stored before sealing is sealed at start-up: the migration leaves it in `phone_hash`, the
    /// conversion replaces it by its keyed hash beside its sealed copy, and a second run changes nothing.
    #[test]
    fn phones_stored_before_sealing_are_sealed_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut conn, migrations, at) = migrated_up_to(&dir, "sealed_phones");
        conn.batch_execute(
            "INSERT INTO accounts (id, kind, code, region_code, floored, created_at)
                 VALUES (5000, 'wallet', 'wallet:test', 'CN', TRUE, '2026-11-29 00:00:00');
             INSERT INTO users (id, phone, password_hash, display_name, account_type, region_code, account_id,
                                created_at)
                 VALUES (6, '13800138000', 'x', 't', 'individual', 'CN', 5000, '2026-11-29 00:00:00');",
        )
        .expect("a user stored before");
        conn.run_migration(&migrations[at]).expect("sealed phones");
        assert_sound(&mut conn);
        let secrets = crate::secrets::SecretBox::from_hex(&"ab".repeat(32)).expect("key");
        let mut any = AnyConnection::Sqlite(conn);
        let sealed = crate::accounts::phones::seal_plain(&mut any, &secrets).expect("sealing");
        assert_eq!(sealed, 1);
        assert_eq!(
            crate::accounts::phones::seal_plain(&mut any, &secrets).expect("again"),
            0
        );
        let AnyConnection::Sqlite(mut conn) = any else {
            unreachable!()
        };
        let hash = secrets.lookup_hash("13800138000");
        let rows = |conn: &mut SqliteConnection, sql: &str| crate::db::count(conn, sql);
        assert_eq!(
            rows(
                &mut conn,
                &format!("SELECT count(*) AS n FROM users WHERE id = 6 AND phone_hash = '{hash}'")
            ),
            1
        );
        assert_eq!(
            rows(
                &mut conn,
                "SELECT count(*) AS n FROM users WHERE phone_hash LIKE '%13800138000%'"
            ),
            0
        );
        let sealed: Line = diesel::sql_query("SELECT phone_sealed AS line FROM users WHERE id = 6")
            .get_result(&mut conn)
            .expect("sealed copy");
        assert_eq!(secrets.open(&sealed.line).as_deref(), Some("13800138000"));
    }

    /// SQLite reports what these checks find as rows, not errors.
    fn assert_sound(conn: &mut SqliteConnection) {
        let broken = crate::db::count(conn, "SELECT count(*) AS n FROM pragma_foreign_key_check");
        assert_eq!(broken, 0, "rows naming rows that do not exist");
        let integrity: Vec<Line> =
            diesel::sql_query("SELECT integrity_check AS line FROM pragma_integrity_check")
                .load(conn)
                .expect("integrity check");
        assert_eq!(integrity.into_iter().map(|l| l.line).collect::<Vec<_>>(), ["ok"]);
    }

    #[test]
    fn rebuilding_sqlite_tables_around_their_keys_keeps_every_row() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut conn, migrations, at) = migrated_up_to(&dir, "one_btree_keys");
        conn.batch_execute(ROWS).expect("rows");
        let before = dump(&mut conn);
        assert_eq!(before.len(), 9, "{before:?}");
        assert_eq!(indexes(&mut conn, "unsealed_transfers"), 1);
        assert_eq!(indexes(&mut conn, "daily_grants"), 1);

        conn.run_migration(&migrations[at]).expect("rebuild");
        assert_eq!(dump(&mut conn), before);
        for table in [
            "unsealed_transfers",
            "daily_grants",
            "annual_points",
            "idempotency_keys",
        ] {
            assert_eq!(
                indexes(&mut conn, table),
                0,
                "{table} keeps an index beside its key"
            );
        }
        assert_eq!(
            indexes(&mut conn, "block_transfers"),
            1,
            "only (block_height, leaf_index)"
        );
        assert_sound(&mut conn);

        conn.revert_migration(&migrations[at]).expect("revert");
        assert_eq!(dump(&mut conn), before);
        assert_eq!(indexes(&mut conn, "unsealed_transfers"), 1);
    }
}
