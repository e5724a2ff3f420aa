//! Builds a large, valid ledger quickly, for timing `tanhui verify` at scale.
//!
//! `cargo bench --bench ledger_scale -- build <sqlite|postgres> <transfers> [wallets]`
//!
//! SQLite: the database is `$TANHUI_SCALE_SQLITE` (default `/tmp/tanhui-ledger-scale.db`), made anew.
//! PostgreSQL: the database `tanhui_ledger_scale` next to `$TANHUI_BENCH_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), dropped and made anew. The schema is the service's own
//! (its migrations run first); the last line printed is the `TANHUI__DATABASE__URL` to verify, e.g.
//!
//! ```sh
//! cargo build --release --bin tanhui
//! TANHUI__DATABASE__URL=sqlite:///tmp/tanhui-ledger-scale.db /usr/bin/time -v target/release/tanhui verify
//! ```
//!
//! What it writes, as the service would have: `wallets` wallet accounts (default 100,000); one issue of
//! 1,000,000,000 points from the Shenzhen issuance account to each; then random transfers of 1..100
//! points between wallets up to `transfers` in all; every transfer sealed into signed blocks of 2,000
//! (the sealer's default) chained from block 1, with the platform key the service generates and stores
//! (`platform_keys`), which `verify` then loads; and each wallet's posted totals in its row. Nothing is
//! left in the sealing queue and no hold is open. Rows go in as multi-row `INSERT`s of literals inside
//! large transactions, with durability relaxed for the build only (the verify run is unaffected).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Instant;

use chrono::{Duration, NaiveDateTime};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use sha2::{Digest, Sha256};
use tanhui::clock::Clock;
use tanhui::config::Settings;
use tanhui::db::AnyConnection;
use tanhui::ledger::kinds::TransferKind;
use tanhui::ledger::merkle;
use tanhui::ledger::seal::{leaf, GENESIS_PREV_HASH};
use tanhui::ledger::signing::PlatformKey;
use tanhui::ledger::store::{block_header, TransferRow};

/// The sealer's default block size.
const BLOCK: usize = 2_000;
/// Rows per INSERT statement.
const ROWS_PER_INSERT: usize = 1_000;
/// Blocks per transaction.
const BLOCKS_PER_COMMIT: usize = 50;
const ISSUED: i64 = 1_000_000_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let [command, backend, count, rest @ ..] = args.as_slice() else {
        eprintln!("usage: ledger_scale build <sqlite|postgres> <transfers> [wallets]");
        std::process::exit(2);
    };
    assert_eq!(command, "build", "the only command is `build`");
    let transfers: usize = count.parse().expect("a number of transfers");
    let wallets: usize = rest
        .first()
        .map_or(100_000, |w| w.parse().expect("a number of wallets"));
    assert!(transfers >= wallets, "at least one issue per wallet");
    let url = fresh_database(backend);
    let mut settings = Settings::defaults();
    settings.database.url = url.clone();
    settings.database.pool_size = 1;
    settings.log.level = "warn".into();
    let db = tanhui::startup::open_database(&settings).expect("database");
    let mut conn = db.get().expect("connection");
    let key = PlatformKey::load(&mut conn, &Clock::system(), None).expect("platform key");
    let started = Instant::now();
    build(&mut conn, &key, transfers, wallets);
    eprintln!(
        "built {transfers} transfers over {wallets} wallets in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("TANHUI__DATABASE__URL={url}");
}

fn fresh_database(backend: &str) -> String {
    match backend {
        "sqlite" => {
            let path = std::env::var("TANHUI_SCALE_SQLITE").unwrap_or("/tmp/tanhui-ledger-scale.db".into());
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
            format!("sqlite://{path}")
        }
        "postgres" => {
            let admin = std::env::var("TANHUI_BENCH_DATABASE_URL")
                .unwrap_or("postgres://postgres@127.0.0.1:5432/test".into());
            let base = admin
                .rsplit_once('/')
                .map_or(admin.clone(), |(b, _)| b.to_string());
            let mut pg = diesel::PgConnection::establish(&admin).expect("PostgreSQL");
            // Two statements: one string would run them in one transaction, which DROP DATABASE refuses.
            pg.batch_execute("DROP DATABASE IF EXISTS tanhui_ledger_scale WITH (FORCE)")
                .expect("the old database dropped");
            pg.batch_execute("CREATE DATABASE tanhui_ledger_scale")
                .expect("a fresh database");
            format!("{base}/tanhui_ledger_scale")
        }
        other => panic!("unknown backend {other}"),
    }
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

fn build(conn: &mut AnyConnection, key: &PlatformKey, transfers: usize, wallets: usize) {
    let postgres = matches!(conn, AnyConnection::Postgresql(_));
    conn.batch_execute(if postgres {
        "SET synchronous_commit = off"
    } else {
        "PRAGMA synchronous = OFF"
    })
    .unwrap();
    let issuance: Id = diesel::sql_query("SELECT id FROM accounts WHERE code = 'issuance:440300'")
        .get_result(conn)
        .expect("the Shenzhen issuance account");
    let first_wallet: Id = diesel::sql_query("SELECT COALESCE(MAX(id), 0) + 1 AS id FROM accounts")
        .get_result(conn)
        .unwrap();
    let first_wallet = first_wallet.id;
    let epoch = NaiveDateTime::parse_from_str("2026-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
    let created = format_time(epoch);

    conn.batch_execute("BEGIN").unwrap();
    for chunk in (0..wallets).collect::<Vec<_>>().chunks(ROWS_PER_INSERT) {
        let mut sql = String::from(
            "INSERT INTO accounts (id, kind, code, region_code, floored, derived, created_at) VALUES ",
        );
        for (i, w) in chunk.iter().enumerate() {
            let id = first_wallet + *w as i64;
            let sep = if i == 0 { "" } else { ", " };
            write!(
                sql,
                "{sep}({id}, 'wallet', 'bench:{id}', '440300', TRUE, FALSE, '{created}')"
            )
            .unwrap();
        }
        conn.batch_execute(&sql).unwrap();
    }
    conn.batch_execute("COMMIT").unwrap();

    // Random but repeatable: a small xorshift, so the same arguments build the same ledger.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut totals: HashMap<i64, (i64, i64)> = HashMap::with_capacity(wallets);
    let mut prev_hash = GENESIS_PREV_HASH.to_string();
    let mut height = 0i64;
    let mut next_id = 1i64;
    let mut blocks_in_commit = 0;
    conn.batch_execute("BEGIN").unwrap();
    while (next_id as usize) <= transfers {
        let size = BLOCK.min(transfers + 1 - next_id as usize);
        let rows: Vec<TransferRow> = (0..size)
            .map(|_| {
                let id = next_id;
                next_id += 1;
                let n = (id - 1) as usize;
                let (kind, debit, credit, amount) = if n < wallets {
                    (TransferKind::Issue, issuance.id, first_wallet + n as i64, ISSUED)
                } else {
                    let from = first_wallet + (random() % wallets as u64) as i64;
                    let mut to = first_wallet + (random() % wallets as u64) as i64;
                    if to == from {
                        to = first_wallet + (to - first_wallet + 1) % wallets as i64;
                    }
                    (TransferKind::Transfer, from, to, 1 + (random() % 100) as i64)
                };
                TransferRow {
                    id,
                    kind,
                    debit_account_id: debit,
                    credit_account_id: credit,
                    amount,
                    pending_id: None,
                    timeout_at: None,
                    ref_type: None,
                    ref_id: None,
                    memo: None,
                    created_at: epoch + Duration::milliseconds(id),
                }
            })
            .collect();
        for t in &rows {
            if t.kind != TransferKind::Issue {
                totals.entry(t.debit_account_id).or_default().1 += t.amount;
            }
            totals.entry(t.credit_account_id).or_default().0 += t.amount;
        }
        height += 1;
        let leaves: Vec<merkle::Hash> = rows.iter().map(leaf).collect();
        let root = hex::encode(merkle::root(&leaves));
        let sealed_at = rows.last().unwrap().created_at;
        let hash = Sha256::digest(block_header(height, &prev_hash, &root, size as i64, sealed_at));
        let hash_hex = hex::encode(hash);
        let signature = hex::encode(key.sign(&hash));
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut sql = String::from(
                "INSERT INTO transfers (id, kind, debit_account_id, credit_account_id, amount, created_at) VALUES ",
            );
            for (i, t) in chunk.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                write!(
                    sql,
                    "{sep}({}, '{}', {}, {}, {}, '{}')",
                    t.id,
                    t.kind,
                    t.debit_account_id,
                    t.credit_account_id,
                    t.amount,
                    format_time(t.created_at)
                )
                .unwrap();
            }
            conn.batch_execute(&sql).unwrap();
        }
        conn.batch_execute(&format!(
            "INSERT INTO ledger_blocks (height, prev_hash, merkle_root, hash, transfer_count, sealed_at, signature) \
             VALUES ({height}, '{prev_hash}', '{root}', '{hash_hex}', {size}, '{}', '{signature}')",
            format_time(sealed_at)
        ))
        .unwrap();
        for (c, chunk) in rows.chunks(ROWS_PER_INSERT).enumerate() {
            let mut sql =
                String::from("INSERT INTO block_transfers (transfer_id, block_height, leaf_index) VALUES ");
            for (i, t) in chunk.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                write!(sql, "{sep}({}, {height}, {})", t.id, c * ROWS_PER_INSERT + i).unwrap();
            }
            conn.batch_execute(&sql).unwrap();
        }
        prev_hash = hash_hex;
        blocks_in_commit += 1;
        if blocks_in_commit == BLOCKS_PER_COMMIT {
            conn.batch_execute("COMMIT; BEGIN").unwrap();
            blocks_in_commit = 0;
            eprint!("\r{} transfers", next_id - 1);
        }
    }
    conn.batch_execute("COMMIT").unwrap();
    eprintln!();

    conn.batch_execute("BEGIN").unwrap();
    let totals: Vec<(i64, (i64, i64))> = totals.into_iter().filter(|(id, _)| *id != issuance.id).collect();
    for chunk in totals.chunks(ROWS_PER_INSERT) {
        let values: Vec<String> = chunk
            .iter()
            .map(|(id, (credits, debits))| format!("({id}, {credits}, {debits})"))
            .collect();
        conn.batch_execute(&format!(
            "UPDATE accounts SET credits_posted = v.c, debits_posted = v.d \
             FROM (SELECT column1 AS id, column2 AS c, column3 AS d FROM (VALUES {}) AS rows) AS v \
             WHERE accounts.id = v.id",
            values.join(", ")
        ))
        .unwrap();
    }
    // Wallets keep their issued total in their row (as each issue raises it): one issue per wallet here.
    conn.batch_execute(&format!(
        "UPDATE accounts SET issued_posted = COALESCE((SELECT SUM(t.amount) FROM transfers t \
         WHERE t.credit_account_id = accounts.id AND t.kind = 'issue'), 0) WHERE accounts.id <> {}",
        issuance.id
    ))
    .unwrap();
    if postgres {
        conn.batch_execute(
            "SELECT setval(pg_get_serial_sequence('accounts', 'id'), (SELECT MAX(id) FROM accounts)); \
             SELECT setval(pg_get_serial_sequence('transfers', 'id'), (SELECT MAX(id) FROM transfers))",
        )
        .unwrap();
    }
    conn.batch_execute("COMMIT").unwrap();
    conn.batch_execute(if postgres {
        "ANALYZE"
    } else {
        "PRAGMA wal_checkpoint(TRUNCATE)"
    })
    .unwrap();
}

/// A timestamp as both backends read it back to the microsecond.
fn format_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}
