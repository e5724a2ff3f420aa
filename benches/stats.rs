//! The public statistics (`GET /api/v1/public/stats/reductions`, `stats::report::reductions`) over 10M
//! stored activities, on SQLite and on PostgreSQL.
//!
//! Run with `cargo bench --bench stats` (PostgreSQL from `TANHUI_BENCH_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; `BACKENDS=sqlite` runs one; `ACTIVITIES=1000000` writes
//! fewer; `RUNS=21` times each query that many times). The activities are written by the database itself
//! (one `INSERT … SELECT` over a generated series), not through HTTP: 50,000 accounts, each homed in one
//! of 16 regions across east, central and west, four travel types in turn, spread evenly from 2025-12-01
//! (Asia/Shanghai) over about 347 days (one every 3 s at 10M). The rollups are then built from the activities with the
//! statements the migration back-fills them with: what the crediting path would have left. Each query is
//! every grouping over a day, a month and a year (day- and month-aligned windows), for the nation and for
//! Guangdong's subtree; the bench prints p50 and p99 of each, the slowest p99 per window, and the
//! process's resident memory.

use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use diesel::RunQueryDsl;
use tanhui::db::{AnyConnection, Db};
use tanhui::startup::open_database;
use tanhui::stats::report::{reductions, Ask, GroupBy};

#[path = "common/database.rs"]
mod database;
#[path = "common/memory.rs"]
mod memory;

use database::{drop_database, fresh_database};
use memory::resident_memory;

const ACCOUNTS: i64 = 50_000;
/// The first account and user id the bench writes (clear of those the migrations create).
const FIRST_ID: i64 = 1_000_000;
/// The seconds the activities span: about 347 days, however many there are.
const SPAN_SECONDS: i64 = 30_000_000;
const TYPES: [&str; 4] = ["transit.metro", "transit.bus", "cycling.bikeshare", "walking"];
const REGIONS: [&str; 16] = [
    "440300", "440100", "330100", "370200", "110000", "310000", "420100", "410100", "430000", "340000",
    "510100", "510500", "500000", "610000", "530000", "450000",
];
/// 2025-12-01 00:00 in Asia/Shanghai, in UTC.
const START: &str = "2025-11-30 16:00:00";

fn main() {
    let backends = std::env::var("BACKENDS").unwrap_or("sqlite,postgres".into());
    let activities: i64 = env_number("ACTIVITIES", 10_000_000);
    let runs: usize = env_number("RUNS", 21);
    for backend in backends.split(',') {
        run(backend.trim(), activities, runs);
    }
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn run(backend: &str, activities: i64, runs: usize) {
    let (settings, _dir, pg_name) = fresh_database(backend, "tanhui_stats");
    let db = open_database(&settings).expect("database");
    let mut conn = db.get().expect("connection");
    let started = Instant::now();
    generate(&mut conn, backend, activities);
    println!(
        "{backend}: wrote {activities} activities in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        resident_memory()
    );
    let started = Instant::now();
    rollups(&mut conn, backend);
    println!(
        "{backend}: built the rollups in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        [
            "stats_days",
            "stats_months",
            "stats_day_accounts",
            "stats_month_accounts"
        ]
        .iter()
        .map(|t| format!("{t} {}", rows(&mut conn, t)))
        .collect::<Vec<_>>()
        .join(", ")
    );
    drop(conn);
    let windows = [
        ("a day", "2026-06-14 16:00:00", "2026-06-15 16:00:00"),
        ("a month", "2026-05-31 16:00:00", "2026-06-30 16:00:00"),
        ("a year", "2025-11-30 16:00:00", "2026-11-30 16:00:00"),
    ];
    for (label, from, to) in windows {
        let mut worst = Duration::ZERO;
        for region in ["CN", "440000"] {
            for &group_by in GroupBy::ALL {
                let ask = Ask {
                    group_by,
                    from: at(from),
                    to: at(to),
                    region_code: region.into(),
                };
                let (times, accounts) = time_runs(&db, &ask, runs);
                let p50 = times[times.len() / 2];
                let p99 = times[(times.len() * 99).div_ceil(100) - 1];
                worst = worst.max(p99);
                println!(
                    "{backend}: {label}, {region}, by {}: p50 {:.1} ms, p99 {:.1} ms ({runs} runs; {accounts} active accounts)",
                    group_by.as_str(),
                    p50.as_secs_f64() * 1000.0,
                    p99.as_secs_f64() * 1000.0,
                );
            }
        }
        println!(
            "{backend}: {label}: slowest p99 {:.1} ms; {}",
            worst.as_secs_f64() * 1000.0,
            resident_memory()
        );
    }
    drop(db);
    if let Some(name) = pg_name {
        drop_database(&name);
    }
}

/// The rows of `table`.
fn rows(conn: &mut AnyConnection, table: &str) -> i64 {
    use diesel::sql_types::BigInt;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query(format!("SELECT CAST(count(*) AS BIGINT) AS n FROM {table}"))
        .get_result::<N>(conn)
        .expect("count")
        .n
}

/// The query `runs` times, durations sorted; the active accounts of the last answer.
fn time_runs(db: &Db, ask: &Ask, runs: usize) -> (Vec<Duration>, i64) {
    let mut times = Vec::with_capacity(runs);
    let mut accounts = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let mut conn = db.get().expect("connection");
        let answer = reductions(&mut conn, ask, at("2026-12-01 00:00:00")).expect("statistics");
        times.push(started.elapsed());
        accounts = answer.totals.active_accounts;
    }
    times.sort();
    (times, accounts)
}

fn at(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").expect("time")
}

fn exec(conn: &mut AnyConnection, sql: String) {
    diesel::sql_query(&sql)
        .execute(conn)
        .unwrap_or_else(|e| panic!("{e}: {sql}"));
}

/// Writes the accounts, their users and the activities with `INSERT … SELECT` over a generated series.
fn generate(conn: &mut AnyConnection, backend: &str, activities: i64) {
    let pg = backend == "postgres";
    let series = |count: i64| {
        if pg {
            format!("WITH s(n) AS (SELECT generate_series(0, {}) AS n)", count - 1)
        } else {
            format!(
                "WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < {})",
                count - 1
            )
        }
    };
    let plus_seconds = |seconds: &str| {
        if pg {
            format!("(TIMESTAMP '{START}' + ({seconds}) * INTERVAL '1 second')")
        } else {
            format!("datetime('{START}', '+' || ({seconds}) || ' seconds')")
        }
    };
    exec(
        conn,
        format!(
            "{} INSERT INTO accounts (id, kind, code, floored, created_at) \
             SELECT {FIRST_ID} + n, 'user', 'bench:' || n, TRUE, '{START}' FROM s",
            series(ACCOUNTS)
        ),
    );
    exec(
        conn,
        format!(
            "{} INSERT INTO users (id, phone_hash, phone_sealed, password_hash, display_name, account_type, region_code, \
             is_admin, account_id, created_at) SELECT {FIRST_ID} + n, 'bench:' || n, 'bench', 'x', 'bench', 'individual', \
             '440300', \
             FALSE, {FIRST_ID} + n, '{START}' FROM s",
            series(ACCOUNTS)
        ),
    );
    let case = |expr: &str, values: &[&str]| {
        let arms: String = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!(" WHEN {i} THEN '{v}'"))
            .collect();
        format!("CASE {expr}{arms} END")
    };
    let account = format!("((n * 7919) % {ACCOUNTS})");
    let occurred = plus_seconds(&format!("n * {SPAN_SECONDS} / {activities}"));
    // The Asia/Shanghai day of `occurred`.
    let local_day = if pg {
        format!("to_char({} + INTERVAL '8 hours', 'YYYY-MM-DD')", occurred)
    } else {
        format!("date({occurred}, '+8 hours')")
    };
    exec(
        conn,
        format!(
            "{} INSERT INTO activities (account_id, user_id, client_event_id, request_hash, activity_type, \
             region_code, occurred_at, local_day, evidence, data, status, reasons, reduction_g, \
             granted_g, points, created_at) \
             SELECT {FIRST_ID} + {account}, {FIRST_ID} + {account}, 'e' || n, 'h', {types}, {regions}, \
             {occurred}, {local_day}, 'trace', '{{}}', 'credited', '[]', 100 + n % 300, 100 + n % 250, \
             100 + n % 250, {occurred} FROM s",
            series(activities),
            types = case("n % 4", &TYPES),
            regions = case(&format!("{account} % 16"), &REGIONS),
        ),
    );
    if pg {
        exec(conn, "VACUUM ANALYZE activities".into());
    }
}

/// The rollups as the crediting path leaves them, built as the migration back-fills them.
fn rollups(conn: &mut AnyConnection, backend: &str) {
    let migration = include_str!("../migrations/sqlite/2026-12-07-000022_statistics/up.sql");
    let backfill = migration
        .split_once("-- What was granted before these tables existed.")
        .expect("the back-fill")
        .1;
    for statement in backfill.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        exec(conn, statement.to_string());
    }
    if backend == "postgres" {
        for table in [
            "stats_days",
            "stats_months",
            "stats_day_accounts",
            "stats_month_accounts",
        ] {
            exec(conn, format!("VACUUM ANALYZE {table}"));
        }
    } else {
        exec(conn, "ANALYZE".into());
    }
}
