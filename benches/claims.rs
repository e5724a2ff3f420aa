//! The claim registry's check: `POST /api/v1/registry/claims/check` of 1,000 claims, half of them held,
//! against a registry already holding many claims, on SQLite and on PostgreSQL. The target is an answer
//! in under 50 ms.
//!
//! Run with `cargo bench --bench claims` (PostgreSQL from `TANHUI_BENCH_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; `BACKENDS=sqlite` runs one; `HELD=1000000` claims held
//! beforehand, default 200,000; `RUNS=200` checks timed). Each check is a signed call over HTTP from one
//! client, one after another: the latency of one peer's call, not a throughput. The bench prints p50, p99
//! and the slowest over HTTP, and the same of the lookup alone (`registry::store::holders`, no HTTP, no
//! signature).

use std::time::{Duration, Instant};

use chrono::Utc;
use sha2::{Digest, Sha256};
use tanhui::db::prepared::Planning;
use tanhui::domain::claim::ClaimId;
use tanhui::registry::store::{self, Holder};

#[path = "common/admin.rs"]
mod admin;
#[path = "common/database.rs"]
mod database;
#[path = "common/service.rs"]
mod service;

use admin::administrator;
use database::{drop_database, fresh_database};
use service::start;

/// Claims per check: the most one call may name.
const PER_CHECK: usize = 1000;

fn main() {
    let backends = std::env::var("BACKENDS").unwrap_or("sqlite,postgres".into());
    let held: usize = env_number("HELD", 200_000);
    let runs: usize = env_number("RUNS", 200);
    for backend in backends.split(',') {
        run(backend.trim(), held, runs);
    }
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The `n`th claim of the bench's operator.
fn claim(n: usize) -> ClaimId {
    let hash = Sha256::digest(format!("tanhui-claim-v1\nbench-metro\nT-{n}"));
    ClaimId::parse(&hex::encode(hash)).expect("a claim id")
}

fn run(backend: &str, held: usize, runs: usize) {
    let (mut settings, _dir, pg_name) = fresh_database(backend, "tanhui_claims");
    settings.server.port = 0;
    settings.auth.argon2_memory_kib = 1024;
    settings.auth.argon2_iterations = 1;
    settings.throttle.key_requests_per_sec = 1_000_000;
    settings.throttle.key_request_burst = 1_000_000;
    let (key_id, secret, peer) = onboard(&settings);
    let started = Instant::now();
    hold(&settings, peer, held);
    println!(
        "{backend}: registered {held} claims in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Every other claim asked is held: claims 0, 2, 4, … are among the held ones, the odd ones beyond.
    let asked: Vec<ClaimId> = (0..PER_CHECK)
        .map(|i| if i % 2 == 0 { claim(i) } else { claim(held + i) })
        .collect();
    let base = start(settings.clone());
    let over_http =
        actix_web::rt::System::new().block_on(check_over_http(&base, &key_id, &secret, &asked, runs));
    report(backend, "check over HTTP", over_http);
    report(backend, "lookup alone", lookup_alone(&settings, &asked, runs));
    if let Some(name) = pg_name {
        drop_database(&name);
    }
}

/// A peer onboarded as an administrator would; returns its key id, secret and id.
fn onboard(settings: &tanhui::config::Settings) -> (String, String, i64) {
    let state = actix_web::rt::System::new()
        .block_on(tanhui::startup::build_state(
            settings.clone(),
            tanhui::clock::Clock::system(),
        ))
        .expect("state");
    let mut conn = state.db.get().expect("connection");
    let admin = administrator(&state, &mut conn);
    let peer = tanhui::registry::peers::register(
        &mut conn,
        &state.secrets,
        admin,
        "bench peer",
        state.clock.now_naive(),
    )
    .expect("peer");
    (peer.key_id, peer.secret, peer.peer_id.parse().expect("peer id"))
}

/// Registers claims 0..`count` for the peer, 1,000 a transaction, as its calls would.
fn hold(settings: &tanhui::config::Settings, peer: i64, count: usize) {
    let db = tanhui::startup::open_database(settings).expect("database");
    let mut conn = db.get().expect("connection");
    let now = Utc::now().naive_utc();
    for from in (0..count).step_by(PER_CHECK) {
        let claims: Vec<ClaimId> = (from..count.min(from + PER_CHECK)).map(claim).collect();
        let named: Vec<(&ClaimId, chrono::NaiveDateTime)> = claims.iter().map(|c| (c, now)).collect();
        tanhui::db::transaction(&mut conn, tanhui::db::Tx::Write, |conn| {
            store::register(conn, Holder::Peer(peer), &named, now)
        })
        .expect("registered");
    }
}

async fn check_over_http(
    base: &str,
    key_id: &str,
    secret: &str,
    asked: &[ClaimId],
    runs: usize,
) -> Vec<Duration> {
    use tanhui::auth::signature::{canonical, sign};
    let client = reqwest::Client::new();
    let claims: Vec<&str> = asked.iter().map(ClaimId::as_str).collect();
    let body = serde_json::to_vec(&serde_json::json!({ "claims": claims })).expect("body");
    let path = "/api/v1/registry/claims/check";
    let mut times = Vec::with_capacity(runs);
    for run in 0..runs + 10 {
        let ts = Utc::now().timestamp().to_string();
        let nonce = format!("n-{run}-{}", rand::random::<u64>());
        let signature = sign(secret, &canonical("POST", path, &ts, &nonce, &body));
        let started = Instant::now();
        let response = client
            .post(format!("{base}{path}"))
            .header("x-key-id", key_id)
            .header("x-timestamp", ts)
            .header("x-nonce", nonce)
            .header("x-signature", signature)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("sent");
        assert!(response.status().is_success(), "{}", response.status());
        let answer: serde_json::Value = response.json().await.expect("answer");
        let elapsed = started.elapsed();
        let results = answer["results"].as_array().expect("results");
        assert_eq!(results.len(), PER_CHECK);
        assert_eq!(
            results.iter().filter(|r| r["claimed"] == true).count(),
            PER_CHECK / 2
        );
        // The first ten warm the connection, the statement caches and the pages.
        if run >= 10 {
            times.push(elapsed);
        }
    }
    times
}

fn lookup_alone(settings: &tanhui::config::Settings, asked: &[ClaimId], runs: usize) -> Vec<Duration> {
    let db = tanhui::startup::open_database(settings).expect("database");
    let mut conn = db.get().expect("connection");
    let keys: Vec<&ClaimId> = asked.iter().collect();
    (0..runs)
        .map(|_| {
            let started = Instant::now();
            let held = store::holders(&mut conn, &keys, Planning::EachTime).expect("holders");
            assert_eq!(held.len(), PER_CHECK / 2);
            started.elapsed()
        })
        .collect()
}

fn report(backend: &str, what: &str, mut times: Vec<Duration>) {
    times.sort_unstable();
    let at = |p: f64| {
        let i = ((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1;
        times[i].as_secs_f64() * 1000.0
    };
    println!(
        "{backend}: {what} of {PER_CHECK} claims, {} runs: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        times.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
