//! Simulating a methodology draft over a month of one activity type among 1,000,000 stored activities,
//! on SQLite and on PostgreSQL: the comparison an administrator asks for before approving a change
//! (`methodology::impact::compare`, what `POST /api/v1/admin/methodologies/{id}/simulate` runs).
//!
//! Run with `cargo bench --bench simulate` (PostgreSQL from `TANHUI_BENCH_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; `BACKENDS=sqlite` runs one). The activities are written by
//! the database itself (one `INSERT … SELECT` over a generated series), not through HTTP: four travel
//! types in turn, eight regions, 20,000 accounts, one every 15 s from 2026-01-01 (about 5.7 months),
//! each arriving up to 10 minutes after it occurred and one in a hundred three days late. The draft is a
//! national `transit.metro` version; it takes the rides of the six regions without a metro version of
//! their own. Each run prints p50 and max of several simulations and the process's resident memory.

use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use diesel::RunQueryDsl;
use tanhui::db::{transaction, AnyConnection, Db, Tx};
use tanhui::domain::catalog::{Catalog, EvidenceWeights, Version, VersionTerms};
use tanhui::domain::formula::Formula;
use tanhui::methodology::impact::{compare, Filter, Simulation};
use tanhui::methodology::store::load_catalog;
use tanhui::startup::open_database;

#[path = "common/database.rs"]
mod database;
#[path = "common/memory.rs"]
mod memory;

use database::{drop_database, fresh_database};
use memory::resident_memory;

const ACTIVITIES: i64 = 1_000_000;
const ACCOUNTS: i64 = 20_000;
/// The first account and user id the bench writes (clear of those the migrations create).
const FIRST_ID: i64 = 1_000_000;
const SECONDS_APART: i64 = 15;
const TYPES: [&str; 4] = ["transit.metro", "transit.bus", "cycling.bikeshare", "walking"];
const REGIONS: [&str; 8] = [
    "440300", "440100", "420100", "110000", "310000", "320000", "510100", "610000",
];
const RUNS: usize = 7;

fn main() {
    let backends = std::env::var("BACKENDS").unwrap_or("sqlite,postgres".into());
    for backend in backends.split(',') {
        run(backend.trim());
    }
}

fn run(backend: &str) {
    let (settings, _dir, pg_name) = fresh_database(backend, "tanhui_simulate");
    let db = open_database(&settings).expect("database");
    let mut conn = db.get().expect("connection");
    let started = Instant::now();
    generate(&mut conn, backend);
    println!(
        "{backend}: wrote {ACTIVITIES} activities in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        resident_memory()
    );
    let catalog = load_catalog(&mut conn).expect("catalog");
    let draft = national_metro_draft();
    let candidate = catalog.with_active(draft.clone());
    for (label, from, to) in [
        (
            "a month (February) of transit.metro",
            "2026-02-01 00:00:00",
            "2026-03-01 00:00:00",
        ),
        (
            "the first month (January) of transit.metro",
            "2026-01-01 00:00:00",
            "2026-02-01 00:00:00",
        ),
    ] {
        let filter = Filter {
            activity_type: Some(draft.activity_type.clone()),
            from: at(from),
            to: at(to),
            region_code: None,
            taken_by: Some(draft.id),
        };
        let (times, sim) = time_runs(&db, &catalog, &candidate, &filter);
        println!(
            "{backend}: {label}: p50 {} ms, max {} ms over {RUNS} runs; {} activities compared, {} skipped, \
             delta {} g / {} points, {} people, {} regions; {}",
            times[times.len() / 2].as_millis(),
            times.last().expect("runs").as_millis(),
            sim.activities,
            sim.skipped,
            sim.delta_g,
            sim.delta_points,
            sim.people,
            sim.by_region.len(),
            resident_memory()
        );
    }
    drop(conn);
    drop(db);
    if let Some(name) = pg_name {
        drop_database(&name);
    }
}

/// The simulation `RUNS` times, durations sorted; the last answer.
fn time_runs(
    db: &Db,
    current: &Catalog,
    candidate: &Catalog,
    filter: &Filter,
) -> (Vec<Duration>, Simulation) {
    let mut times = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let started = Instant::now();
        let mut conn = db.get().expect("connection");
        let sim = transaction(&mut conn, Tx::Snapshot, |conn| {
            compare(conn, current, candidate, filter)
        })
        .expect("simulation");
        times.push(started.elapsed());
        last = Some(sim);
    }
    times.sort();
    (times, last.expect("runs"))
}

fn at(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").expect("time")
}

/// A national metro draft paying 50 g per km, in force since 2025-06-01 (after the seeded national
/// version, so it takes every region that has no metro version of its own).
fn national_metro_draft() -> Version {
    let terms = VersionTerms {
        id: i64::MAX,
        activity_type: "transit.metro".into(),
        region_code: "CN".into(),
        version: 99,
        effective_from: at("2025-06-01 00:00:00"),
        effective_to: None,
        daily_cap_g: None,
        weights: EvidenceWeights::default(),
    };
    let parameters = [("k".to_string(), 50.into())].into();
    Version::new(
        terms,
        &parameters,
        Formula::parse("distance_m / 1000 * k").expect("formula"),
    )
    .expect("version")
}

/// Writes the accounts, their users and the activities with `INSERT … SELECT` over a generated series.
fn generate(conn: &mut AnyConnection, backend: &str) {
    let pg = backend == "postgres";
    let series = |count: i64| {
        format!(
            "WITH RECURSIVE s(n) AS (SELECT CAST(0 AS BIGINT) UNION ALL SELECT n + 1 FROM s WHERE n < {})",
            count - 1
        )
    };
    let plus_seconds = |base: &str, seconds: &str| {
        if pg {
            format!("({base} + ({seconds}) * INTERVAL '1 second')")
        } else {
            format!("datetime({base}, '+' || ({seconds}) || ' seconds')")
        }
    };
    let start = if pg {
        "TIMESTAMP '2026-01-01 00:00:00'"
    } else {
        "'2026-01-01 00:00:00'"
    };
    let exec = |conn: &mut AnyConnection, sql: String| {
        diesel::sql_query(&sql)
            .execute(conn)
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
    };
    exec(
        conn,
        format!(
            "{} INSERT INTO accounts (id, kind, code, floored, created_at) \
             SELECT {FIRST_ID} + n, 'user', 'bench:' || n, TRUE, {start} FROM s",
            series(ACCOUNTS)
        ),
    );
    exec(
        conn,
        format!(
            "{} INSERT INTO users (id, phone_hash, phone_sealed, password_hash, display_name, account_type, region_code, \
             is_admin, account_id, created_at) SELECT {FIRST_ID} + n, 'bench:' || n, 'bench', 'x', 'bench', 'individual', \
             '440300', \
             FALSE, {FIRST_ID} + n, {start} FROM s",
            series(ACCOUNTS)
        ),
    );
    let case = |expr: &str, values: &[String]| {
        let arms: String = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!(" WHEN {i} THEN {v}"))
            .collect();
        format!("CASE {expr}{arms} END")
    };
    let quoted = |values: &[&str]| values.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>();
    let versions: Vec<String> = TYPES
        .iter()
        .map(|t| national_version_id(conn, t).to_string())
        .collect();
    let distance = "(500 + (n * 37) % 20000)";
    let data = [
        format!("'{{\"count\":1,\"distance_m\":' || {distance} || '}}'"),
        format!("'{{\"count\":1,\"distance_m\":' || {distance} || '}}'"),
        format!("'{{\"distance_m\":' || {distance} || '}}'"),
        format!("'{{\"distance_m\":' || {distance} || '}}'"),
    ];
    let occurred = plus_seconds(start, &format!("n * {SECONDS_APART}"));
    let arrived = plus_seconds(
        start,
        &format!("n * {SECONDS_APART} + CASE WHEN n % 100 = 0 THEN 259200 ELSE n % 600 END"),
    );
    exec(
        conn,
        format!(
            "{} INSERT INTO activities (account_id, user_id, client_event_id, request_hash, activity_type, \
             region_code, occurred_at, local_day, evidence, data, status, reasons, methodology_id, reduction_g, \
             granted_g, points, created_at) \
             SELECT {FIRST_ID} + (n * 7919) % {ACCOUNTS}, {FIRST_ID} + (n * 7919) % {ACCOUNTS}, 'e' || n, 'h', \
             {types}, {regions}, {occurred}, '2026-01-01', {evidence}, {data}, 'credited', '[]', {versions}, \
             100, 100, 100, {arrived} FROM s",
            series(ACTIVITIES),
            types = case("n % 4", &quoted(&TYPES)),
            regions = case("(n / 4) % 8", &quoted(&REGIONS)),
            evidence = case("n % 3", &quoted(&["operator", "trace", "self_report"])),
            data = case("n % 4", &data),
            versions = case("n % 4", &versions),
        ),
    );
    if pg {
        // What autovacuum does to a table this size soon after it is written.
        exec(conn, "VACUUM ANALYZE activities".into());
    }
}

fn national_version_id(conn: &mut AnyConnection, activity_type: &str) -> i64 {
    use diesel::prelude::*;
    use tanhui::db::schema::methodology_versions as v;
    v::table
        .filter(v::activity_type.eq(activity_type))
        .filter(v::region_code.eq("CN"))
        .select(v::id)
        .first(conn)
        .expect("a seeded national version")
}
