//! HTTP load benchmark: starts the service (`tanhui serve`, in a process of its own) on a free port
//! against SQLite or PostgreSQL and drives it with many concurrent clients over real HTTP, printing rates,
//! latencies and the service's resident memory beside the load generator's.
//!
//! `cargo bench --bench load -- <scenario> <backend>`; `benches/load.sh` runs every scenario beside the
//! pgbench and SQLite reference ceilings and prints the ratios.
//!
//! Scenarios: `transfers` (uncontended P2P transfers), `issue-spread` / `issue-hot` (activity posts whose
//! issuance is spread over 31 provinces / concentrated on one city), `activities` (single posts, then the
//! p99 at half the peak rate), `batch` (500 events per request), `redeem-hot` / `redeem-spread`
//! (redemptions of one offer with a large stock, one hot stock row / spread over 256 offers),
//! `sqlite-ceiling` (the reference: one credit per durable transaction, no HTTP), `http-floor` (a GET of
//! `/healthz`: what the load generator and the HTTP stack reach with no database work), `wallet` (the HTTP
//! floor (`wallet-floor`), then `GET /wallet` of 256 people, of one new wallet and of one with 100,000
//! transfers, side by side in one run), `deep-pages` (page 1 and page 1,000 of one person's activities and
//! transfers, 50 a page, 60,000 of each), `deep-lots` (one-point transfers from a wallet of ten lots, then
//! from one of 100,000, side by side), `read-mix` (80 % reads: wallet, activity list, offers; 20 %
//! activity posts; the peak, then the p99 at half of it, paced open loop), `market` (market orders of
//! 1,000 points at one price, buys and sells in turn so that about half fill a resting order: the peak,
//! then the p99 at half of it).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tanhui::config::Settings;

#[path = "common/admin.rs"]
mod admin;
#[path = "common/memory.rs"]
mod memory;
#[path = "load/process.rs"]
mod process;
#[path = "load/wire.rs"]
mod wire;
use admin::administrator;
use memory::{resident_memory, resident_memory_of};
use wire::Request;

const CLIENTS: usize = 64;
const USERS: usize = 256;
/// Users of the scenarios that post activities. A person takes a few trips a day: with only 256 users,
/// 100,000 posts in 20 s would give each hundreds of trips within the overlap rule's 24-hour window,
/// which every post then reads.
const POSTING_USERS: usize = 4096;
const RUN: Duration = Duration::from_secs(10);
/// Requests that failed in any scenario of this run: the process then exits non-zero.
static FAILURES: AtomicUsize = AtomicUsize::new(0);
/// The service's process, whose resident memory each result reports.
static SERVICE_PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

const PROVINCES: [&str; 31] = [
    "110000", "120000", "130000", "140000", "150000", "210000", "220000", "230000", "310000", "320000",
    "330000", "340000", "350000", "360000", "370000", "410000", "420000", "430000", "440000", "450000",
    "460000", "500000", "510000", "520000", "530000", "540000", "610000", "620000", "630000", "640000",
    "650000",
];

fn settings(backend: &str) -> (Settings, Option<tempfile::TempDir>) {
    let mut s = Settings::defaults();
    s.server.port = 0;
    s.log.level = "warn".into();
    s.auth.argon2_memory_kib = 1024;
    s.auth.argon2_iterations = 1;
    s.database.pool_size = 32;
    s.throttle.login_failures_per_address = 1_000_000;
    // The bench measures throughput, not the limits: a few hundred accounts write thousands of times a second.
    s.throttle.account_writes_per_sec = 1_000_000;
    s.throttle.account_write_burst = 1_000_000;
    s.throttle.key_requests_per_sec = 1_000_000;
    s.throttle.key_request_burst = 1_000_000;
    match backend {
        "sqlite" => {
            let dir = tempfile::tempdir().expect("temp dir");
            s.database.url = format!("sqlite://{}", dir.path().join("bench.db").display());
            (s, Some(dir))
        }
        _ => {
            let admin = admin_url();
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b.to_string())
                .unwrap_or(admin.clone());
            let name = format!("tanhui_bench_{}", std::process::id());
            use diesel::{Connection, RunQueryDsl};
            let mut conn = diesel::PgConnection::establish(&admin).expect("PostgreSQL");
            diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .ok();
            diesel::sql_query(format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .expect("create database");
            s.database.url = format!("{base}/{name}");
            s.redis.url =
                Some(std::env::var("TANHUI_BENCH_REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into()));
            s.redis.key_prefix = format!("{name}:");
            s.activities.writers = std::env::var("W").ok().and_then(|w| w.parse().ok()).unwrap_or(2);
            (s, None)
        }
    }
}

fn admin_url() -> String {
    std::env::var("TANHUI_BENCH_DATABASE_URL").unwrap_or("postgres://postgres@127.0.0.1:5432/test".into())
}

/// Drops the run's own PostgreSQL database (each run makes a new one).
fn drop_database(url: &str) {
    use diesel::{Connection, RunQueryDsl};
    let Some((_, name)) = url.rsplit_once('/') else {
        return;
    };
    if let Ok(mut conn) = diesel::PgConnection::establish(&admin_url()) {
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .ok();
    }
}

struct User {
    id: String,
    token: String,
    account: String,
}

/// Registers and signs in `count` users, 16 at a time, spread over `regions`.
async fn users(client: &reqwest::Client, base: &str, regions: &[&str], count: usize) -> Vec<User> {
    use futures_util::StreamExt;
    futures_util::stream::iter(0..count)
        .map(|i| user(client, base, regions[i % regions.len()]))
        .buffer_unordered(16)
        .collect()
        .await
}

async fn user(client: &reqwest::Client, base: &str, region: &str) -> User {
    // Every run starts on an empty database; numbered phones never collide (random ones did, one run
    // in twelve with 4,096 users, and the second registration was refused).
    static NEXT_PHONE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT_PHONE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let phone = format!("139{n:08}");
    let reg: Value = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(
            &json!({"phone": phone, "password": "bench password", "display_name": "bench",
                      "account_type": "individual", "region_code": region}),
        )
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("json");
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"phone": phone, "password": "bench password"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    User {
        id: reg["user_id"].as_str().expect("user").to_string(),
        token: login["access_token"].as_str().expect("token").to_string(),
        account: reg["account_id"].as_str().expect("account").to_string(),
    }
}

struct Stats {
    ok: usize,
    failed: usize,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Stats {
    fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i].as_secs_f64() * 1000.0
    }

    fn print(&self, label: &str, per_request: usize) {
        FAILURES.fetch_add(self.failed, Ordering::Relaxed);
        let rate = (self.ok * per_request) as f64 / self.elapsed.as_secs_f64();
        println!(
            "RESULT {label}: {rate:.0}/s  ok={} failed={}  p50={:.1}ms p99={:.1}ms  service {}  generator {}",
            self.ok,
            self.failed,
            self.percentile(0.5),
            self.percentile(0.99),
            SERVICE_PID
                .get()
                .map_or("?".into(), |pid| resident_memory_of(&pid.to_string())),
            resident_memory()
        );
    }
}

/// Runs `CLIENTS` workers for `RUN`, each on a keep-alive connection of its own; worker `w` makes
/// request number `n` with `make(w, n)`. With `interval`, each worker paces itself (open loop at a
/// fixed rate).
async fn drive<F>(base: &str, make: F, interval: Option<Duration>) -> Stats
where
    F: Fn(usize, usize) -> Request + Send + Sync + 'static,
{
    let host = base.trim_start_matches("http://").to_string();
    let make = Arc::new(make);
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..CLIENTS {
        let (make, failed, mut conn) = (make.clone(), failed.clone(), wire::Connection::new(&host));
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0;
            let mut next =
                Instant::now() + interval.map_or(Duration::ZERO, |i| i.mul_f64(w as f64 / CLIENTS as f64));
            while started.elapsed() < RUN {
                if let Some(i) = interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += i;
                }
                let request = make(w, n);
                let t = Instant::now();
                match conn.send(&request).await {
                    Ok(r) if (200..300).contains(&r.status) => latencies.push(t.elapsed()),
                    Ok(r) => {
                        if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("failed: {} {}", r.status, String::from_utf8_lossy(&r.body));
                        }
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("error: {e}");
                    }
                }
                n += 1;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.await.expect("worker"));
    }
    latencies.sort();
    Stats {
        ok: latencies.len(),
        failed: failed.load(Ordering::Relaxed),
        latencies,
        elapsed: started.elapsed(),
    }
}

/// A GET as a signed-in user.
fn get_as(path: impl Into<String>, token: &str) -> Request {
    let mut request = Request::get(path);
    request.token = Some(token.to_string());
    request
}

/// Rows of one person's history written straight into the database (through the service this would take
/// minutes): `count` copies of their one posted activity, and `count` issues of one point to their wallet.
/// Returns the cursors that open page 1,000 (50 a page) of `/activities` and `/wallet/transfers`.
fn deepen(settings: &Settings, account: &str, count: usize) -> (String, String) {
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let db = tanhui::startup::open_database(settings).expect("database");
    let mut conn = db.get().expect("connection");
    let numbers =
        format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) ");
    diesel::sql_query(format!(
        "{numbers}INSERT INTO activities (account_id, user_id, client_event_id, request_hash, activity_type, \
         region_code, occurred_at, ended_at, local_day, evidence, provider_id, data, status, reasons, \
         methodology_id, reduction_g, granted_g, points, breakdown, transfer_id, created_at, region_parameters_id) \
         SELECT a.account_id, a.user_id, 'deep-' || n.i, a.request_hash, a.activity_type, a.region_code, \
         a.occurred_at, a.ended_at, a.local_day, a.evidence, a.provider_id, a.data, 'flagged', a.reasons, \
         a.methodology_id, a.reduction_g, 0, 0, a.breakdown, NULL, a.created_at, a.region_parameters_id \
         FROM n, activities a WHERE a.account_id = {account}"
    ))
    .execute(&mut conn)
    .expect("activities");
    diesel::sql_query(format!(
        "{numbers}INSERT INTO transfers (kind, debit_account_id, credit_account_id, amount, ref_type, ref_id, created_at) \
         SELECT 'issue', i.id, {account}, 1, 'bench', 'deep', CURRENT_TIMESTAMP \
         FROM n, accounts i WHERE i.code = 'issuance:440300'"
    ))
    .execute(&mut conn)
    .expect("transfers");
    let mut page_1000 = |table: &str, column: &str| {
        let id: Id = diesel::sql_query(format!(
            "SELECT id FROM {table} WHERE {column} = {account} ORDER BY id DESC LIMIT 1 OFFSET {}",
            999 * 50 - 1
        ))
        .get_result(&mut conn)
        .expect("page 1,000");
        tanhui::http::pagination::encode_cursor(id.id)
    };
    (
        page_1000("activities", "account_id"),
        page_1000("transfers", "credit_account_id"),
    )
}

fn metro(id: String, seconds_ago: i64) -> Value {
    json!({"client_event_id": id, "activity_type": "transit.metro", "evidence": "trace",
           "occurred_at": (chrono::Utc::now() - chrono::Duration::seconds(seconds_ago)).to_rfc3339(),
           "data": {"distance_m": 3200, "count": 1}})
}

async fn grant_all(base: &str, settings: &Settings, users: &[User]) {
    // Seed balances straight through the ledger service, as earned activities would.
    let db = tanhui::startup::open_database(settings).expect("database");
    let mut conn = db.get().expect("connection");
    let now = tanhui::clock::Clock::system().now_naive();
    let origin = tanhui::ledger::lots::Origin::plain("440300", now + chrono::Duration::days(3650));
    for u in users {
        tanhui::ledger::service::issue(
            &mut conn,
            &origin,
            u.account.parse().expect("id"),
            1_000_000,
            &tanhui::ledger::service::Cause::of("bench", "seed"),
            now,
        )
        .expect("seed");
    }
    let _ = base;
}

/// Gives every user points the way people earn them, through the API: two metro trips each. Unlike
/// [`grant_all`] this writes nothing behind the service's back, so it seeds a build of any schema the same
/// way (`TANHUI_BENCH_SERVICE_BIN`). Transfers between neighbours keep balances level: hundreds of points
/// each are plenty.
async fn earn_all(client: &reqwest::Client, base: &str, users: &[User]) {
    use futures_util::StreamExt;
    futures_util::stream::iter(users.iter().flat_map(|u| [(u, 1), (u, 2)]))
        .for_each_concurrent(16, |(user, trip)| async move {
            let answer: Value = client
                .post(format!("{base}/api/v1/activities"))
                .bearer_auth(&user.token)
                .json(&metro(format!("seed-{trip}"), trip * 7_200))
                .send()
                .await
                .expect("seed trip")
                .json()
                .await
                .expect("json");
            assert!(
                answer["points"].as_i64().unwrap_or(0) > 0,
                "seed trip not credited: {answer}"
            );
        })
        .await;
}

/// Gives every user cash for the market: a deposit recorded by one administrator, confirmed by another.
async fn fund_all(settings: &Settings, users: &[User]) {
    let state = tanhui::startup::build_state(settings.clone(), tanhui::clock::Clock::system())
        .await
        .expect("state");
    let mut conn = state.db.get().expect("connection");
    let (maker, checker) = (administrator(&state, &mut conn), administrator(&state, &mut conn));
    let now = state.clock.now_naive();
    for (i, u) in users.iter().enumerate() {
        let wallet = u.account.parse().expect("id");
        let reference = format!("bench-{}-{i}", rand::random::<u64>());
        let deposit = tanhui::cash::deposits::record(&mut conn, wallet, 100_000_000, &reference, maker, now)
            .expect("deposit");
        tanhui::cash::deposits::confirm(&mut conn, deposit.id, checker, now).expect("confirm");
    }
}

/// How many trades the market scenario made, beside its orders.
fn market_trades(settings: &Settings) -> String {
    use diesel::prelude::*;
    let db = tanhui::startup::open_database(settings).expect("database");
    let trades: i64 = tanhui::db::schema::market_trades::table
        .count()
        .get_result(&mut db.get().expect("connection"))
        .expect("trades");
    format!("{trades} trades")
}

/// What became of the posted events, as `credited=N flagged=M …`: a rate means little without it (a
/// flagged event is stored and issues nothing).
fn statuses(settings: &Settings) -> String {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Text};
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = Text)]
        status: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let db = tanhui::startup::open_database(settings).expect("database");
    let counts: Vec<Count> = diesel::sql_query(
        "SELECT status, CAST(COUNT(*) AS BIGINT) AS n FROM activities GROUP BY status ORDER BY status",
    )
    .load(&mut db.get().expect("connection"))
    .expect("statuses");
    counts
        .iter()
        .map(|c| format!("{}={}", c.status, c.n))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A signed provider call (README, "Partner calls").
fn signed_post(path: &str, key_id: &str, secret: &str, nonce: &str, body: String) -> Request {
    use tanhui::auth::signature::{canonical, sign};
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .to_string();
    let signature = sign(secret, &canonical("POST", path, &ts, nonce, body.as_bytes()));
    Request {
        method: "POST",
        path: path.to_string(),
        token: None,
        headers: vec![
            ("x-key-id", key_id.to_string()),
            ("x-timestamp", ts),
            ("x-nonce", nonce.to_string()),
            ("x-signature", signature),
            ("content-type", "application/json".to_string()),
        ],
        body: Some(body),
    }
}

/// A transit operator onboarded for the whole country; returns its key id and secret.
async fn provider(settings: &Settings) -> (String, String) {
    let state = tanhui::startup::build_state(settings.clone(), tanhui::clock::Clock::system())
        .await
        .expect("state");
    let mut conn = state.db.get().expect("connection");
    let onboarding = tanhui::onboarding::Onboarding {
        name: "bench metro operator".into(),
        kind: "transit".into(),
        region_codes: vec!["CN".into()],
        code: None,
    };
    let admin = administrator(&state, &mut conn);
    let credentials = tanhui::providers::register(
        &mut conn,
        &state.secrets,
        admin,
        &onboarding,
        state.clock.now_naive(),
    )
    .expect("provider");
    (credentials.key_id, credentials.secret)
}

const OFFERS_SPREAD: usize = 256;

/// A transit partner with `count` offers of one point each and stock enough for the whole run;
/// returns the offer ids.
async fn offers(settings: &Settings, count: usize) -> Vec<String> {
    use tanhui::offers::terms::Terms;
    let state = tanhui::startup::build_state(settings.clone(), tanhui::clock::Clock::system())
        .await
        .expect("state");
    let mut conn = state.db.get().expect("connection");
    let admin = administrator(&state, &mut conn);
    let onboarding = tanhui::onboarding::Onboarding {
        name: "bench metro".into(),
        kind: "transit".into(),
        region_codes: vec!["CN".into()],
        code: None,
    };
    let partner = tanhui::partners::admin::onboard(&mut conn, &state, admin, &onboarding).expect("partner");
    let now = state.clock.now_naive();
    (0..count)
        .map(|i| {
            let terms = Terms {
                title: format!("ride {i}"),
                description: String::new(),
                points_cost: 1,
                value_fen: None,
                stock: 1_000_000_000,
                per_user_limit: 10_000,
                valid_from: now - chrono::Duration::days(1),
                valid_to: now + chrono::Duration::days(1),
                region_codes: vec!["CN".into()],
                residents_only: false,
            };
            tanhui::offers::store::insert(&mut conn, partner.partner_id.parse().expect("id"), &terms, now)
                .expect("offer")
                .to_string()
        })
        .collect()
}

async fn posts(
    base: &str,
    users: Arc<Vec<User>>,
    tag: &'static str,
    interval: Option<Duration>,
    offset_s: i64,
) -> Stats {
    drive(
        base,
        move |w, n| {
            let user = &users[(w + n * CLIENTS) % users.len()];
            let trip = metro(
                format!("{tag}-{w}-{n}"),
                (n * 7 + w) as i64 % 500_000 + 1 + offset_s,
            );
            Request::post("/api/v1/activities", &user.token, trip.to_string())
        },
        interval,
    )
    .await
}

/// Transfers in the deep wallet of the `wallet` scenario.
const DEEP_WALLET_TRANSFERS: i64 = 100_000;

/// The wallet's read against the HTTP floor, and a wallet with a long history against a new one, all in
/// one run: `http-floor`, `wallet` (every client reading one of the users' wallets), `wallet-new` and
/// `wallet-deep` (every client reading one wallet, with no transfers or with `DEEP_WALLET_TRANSFERS`).
async fn wallet_reads(base: &str, settings: &Settings, users: &Arc<Vec<User>>, backend: &str) {
    let floor = drive(base, move |_, _| Request::get("/healthz"), None).await;
    floor.print(&format!("wallet-floor/{backend}"), 1);
    let u = users.clone();
    let spread = drive(base, move |w, n| wallet_of(&u[(w + n * CLIENTS) % u.len()]), None).await;
    spread.print(&format!("wallet/{backend}"), 1);
    // The last two users: one keeps a new wallet, the other is given a long history first.
    let (new, deep) = (&users[users.len() - 2], &users[users.len() - 1]);
    deepen_wallet(settings, deep.account.parse().expect("id"));
    // The sealer hashes what was queued: timed alongside it, the reads would measure it.
    sealed(settings).await;
    let reads = |user: &User| {
        let token = user.token.clone();
        drive(
            base,
            move |_, _| Request {
                token: Some(token.clone()),
                ..Request::get("/api/v1/wallet")
            },
            None,
        )
    };
    let fresh = reads(new).await;
    fresh.print(&format!("wallet-new/{backend}"), 1);
    let deep = reads(deep).await;
    deep.print(&format!("wallet-deep/{backend}"), 1);
    let rate = |s: &Stats| s.ok as f64 / s.elapsed.as_secs_f64();
    println!(
        "RESULT wallet-ratios/{backend}: wallet/floor={:.3} deep/new={:.3}",
        rate(&spread) / rate(&floor),
        rate(&deep) / rate(&fresh)
    );
}

/// Transfers of one point from a wallet holding 100,000 lots against one holding ten: a spend reads and
/// deletes the first holdings of the wallet's key range, whatever else it holds.
async fn lot_spends(base: &str, settings: &Settings, users: &Arc<Vec<User>>, backend: &str) {
    let (ten, deep) = (&users[users.len() - 2], &users[users.len() - 1]);
    deepen_wallet(settings, deep.account.parse().expect("id"));
    grant_lots(settings, ten.account.parse().expect("id"), 10);
    sealed(settings).await;
    let spend = |from: &User, tag: &'static str| {
        let (token, u) = (from.token.clone(), users.clone());
        drive(
            base,
            move |w, n| {
                let to = &u[(w + n * CLIENTS) % (u.len() - 2)];
                let body = json!({"to_account_id": to.account, "points": 1}).to_string();
                Request::post("/api/v1/transfers", &token, body)
                    .header("idempotency-key", format!("{tag}-{w}-{n}"))
            },
            None,
        )
    };
    let shallow = spend(ten, "ten").await;
    shallow.print(&format!("spend-ten-lots/{backend}"), 1);
    let deep = spend(deep, "deep").await;
    deep.print(&format!("spend-100k-lots/{backend}"), 1);
    let rate = |s: &Stats| s.ok as f64 / s.elapsed.as_secs_f64();
    println!(
        "RESULT lots-ratios/{backend}: deep/ten={:.3}",
        rate(&deep) / rate(&shallow)
    );
}

/// The points of each lot the `deep-lots` wallets hold, deep or not: a run's one-point spends all come out
/// of a wallet's first lot and arrive as that lot's, so the two wallets differ only in how many lots they
/// hold, not in what their spends write to the receivers' holdings.
const LOT_POINTS: i64 = 100_000;

/// Gives `account` `lots` lots of [`LOT_POINTS`], expiring on successive days.
fn grant_lots(settings: &Settings, account: i64, lots: i64) {
    let db = tanhui::startup::open_database(settings).expect("database");
    let mut conn = db.get().expect("connection");
    let now = tanhui::clock::Clock::system().now_naive();
    for day in 1..=lots {
        let origin = tanhui::ledger::lots::Origin::plain("440300", now + chrono::Duration::days(day));
        let cause = tanhui::ledger::service::Cause::of("bench", "lots");
        tanhui::ledger::service::issue(&mut conn, &origin, account, LOT_POINTS, &cause, now).expect("lot");
    }
}

/// Waits until every transfer is sealed (at most two minutes).
async fn sealed(settings: &Settings) {
    use diesel::prelude::*;
    use tanhui::db::schema::unsealed_transfers;
    let db = tanhui::startup::open_database(settings).expect("database");
    let started = Instant::now();
    loop {
        let queued: i64 = unsealed_transfers::table
            .count()
            .get_result(&mut db.get().expect("connection"))
            .expect("queue");
        if queued == 0 || started.elapsed() > Duration::from_secs(120) {
            eprintln!(
                "{queued} transfers left unsealed after {:.1} s",
                started.elapsed().as_secs_f64()
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn wallet_of(user: &User) -> Request {
    Request {
        token: Some(user.token.clone()),
        ..Request::get("/api/v1/wallet")
    }
}

/// Gives `account` `DEEP_WALLET_TRANSFERS` issue transfers, a thousand per transaction, through the
/// ledger's batch (as the activity writers issue).
fn deepen_wallet(settings: &Settings, account: i64) {
    use tanhui::ledger::{batch, service};
    let db = tanhui::startup::open_database(settings).expect("database");
    let mut conn = db.get().expect("connection");
    let now = tanhui::clock::Clock::system().now_naive();
    let source = service::issuance_account(&mut conn, "440300")
        .expect("issuance")
        .id;
    let cause = service::Cause::of("bench", "deep");
    // As ten years of history would: each lot expires on one of 3,650 days, about 27 a day.
    let origins: Vec<tanhui::ledger::lots::Origin<'_>> = (0..3650)
        .map(|day| tanhui::ledger::lots::Origin::plain("440300", now + chrono::Duration::days(day + 1)))
        .collect();
    let started = Instant::now();
    for round in 0..DEEP_WALLET_TRANSFERS as usize / 1000 {
        tanhui::db::transaction(&mut conn, tanhui::db::Tx::Write, |conn| {
            let mut accounts = batch::lock_accounts(conn, &[source, account])?;
            let orders: Vec<batch::Order<'_>> = (round * 1000..(round + 1) * 1000)
                .map(|i| batch::Order {
                    kind: service::Kind::Issue,
                    debit: source,
                    credit: account,
                    amount: LOT_POINTS,
                    cause: &cause,
                    lot: Some(&origins[i % origins.len()]),
                })
                .collect();
            batch::post(conn, &mut accounts, &orders, now).map(|_| ())
        })
        .expect("deepen");
    }
    // A wallet's history builds up over years, and autovacuum analyzes the tables as it grows; written in
    // seconds, it is what PostgreSQL's planner has not seen yet: it took the wallet for three rows and
    // sorted all 100,000 of its holdings on every read (0.7 s). An operator runs ANALYZE after a bulk
    // load (`docs/operations.md`); so does the bench, to time the wallet the service will meet.
    if let tanhui::db::AnyConnection::Postgresql(_) = &mut *conn {
        use diesel::connection::SimpleConnection;
        conn.batch_execute("ANALYZE").expect("analyze");
    }
    eprintln!(
        "gave account {account} {DEEP_WALLET_TRANSFERS} transfers in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// One activity posted for `user` (the template of a deep history); whether it was stored.
async fn posts_once(client: &reqwest::Client, base: &str, user: &User) -> bool {
    client
        .post(format!("{base}/api/v1/activities"))
        .bearer_auth(&user.token)
        .json(&metro("deep-template".into(), 60))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

fn sqlite_ceiling() {
    // The SQLite equivalent of credit.sql: an activity row, the daily counter, a transfer and the wallet,
    // one durable (synchronous=FULL, WAL) transaction per credit.
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, SqliteConnection};
    let dir = tempfile::tempdir().expect("dir");
    let mut conn =
        SqliteConnection::establish(&dir.path().join("ref.db").display().to_string()).expect("sqlite");
    conn.batch_execute(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE accounts(id INTEGER PRIMARY KEY, credits INTEGER NOT NULL DEFAULT 0, debits INTEGER NOT NULL DEFAULT 0);
         CREATE TABLE activities(id INTEGER PRIMARY KEY, account_id INTEGER, client_event_id TEXT, kind TEXT, occurred_at TEXT,
             data TEXT, reduction_g INTEGER, points INTEGER, UNIQUE(account_id, client_event_id));
         CREATE TABLE transfers(id INTEGER PRIMARY KEY, debit INTEGER, credit INTEGER, amount INTEGER, kind TEXT, created_at TEXT DEFAULT CURRENT_TIMESTAMP);
         CREATE TABLE daily(account_id INTEGER, day TEXT, kind TEXT, g INTEGER, PRIMARY KEY(account_id, day, kind));
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) INSERT INTO accounts(id, credits) SELECT i, 1000000 FROM n;",
    )
    .expect("schema");
    for per_tx in [1usize, 100] {
        let started = Instant::now();
        let mut done = 0usize;
        while started.elapsed() < Duration::from_secs(5) {
            let mut sql = String::from("BEGIN IMMEDIATE;");
            for _ in 0..per_tx {
                let acc = 2 + rand::random::<u32>() % 9999;
                let id = uuid::Uuid::new_v4();
                sql.push_str(&format!(
                    "INSERT INTO activities(account_id, client_event_id, kind, occurred_at, data, reduction_g, points) VALUES ({acc}, '{id}', 'walking', CURRENT_TIMESTAMP, '{{\"distance_m\":3000}}', 86, 86);
                     INSERT INTO daily VALUES ({acc}, date('now'), 'walking', 86) ON CONFLICT (account_id, day, kind) DO UPDATE SET g = g + 86 WHERE g + 86 <= 100000000;
                     INSERT INTO transfers(debit, credit, amount, kind) VALUES (1, {acc}, 86, 'issue');
                     UPDATE accounts SET credits = credits + 86 WHERE id = {acc};"
                ));
            }
            sql.push_str("COMMIT;");
            conn.batch_execute(&sql).expect("credit");
            done += per_tx;
        }
        println!(
            "RESULT sqlite-ceiling/{per_tx}-per-tx: {:.0}/s",
            done as f64 / started.elapsed().as_secs_f64()
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let scenario = args.first().cloned().unwrap_or_else(|| "activities".into());
    let backend = args.get(1).cloned().unwrap_or_else(|| "sqlite".into());
    if scenario == "sqlite-ceiling" {
        sqlite_ceiling();
        return;
    }
    let (mut settings, sqlite_dir) = settings(&backend);
    if scenario == "wallet" {
        // The deep wallet's 100,000 transfers are sealed in a few blocks before its reads are timed.
        settings.ledger.seal_max_transfers = 25_000;
    }
    let own_database = (backend != "sqlite").then(|| settings.database.url.clone());
    let service = process::Service::start(&settings);
    SERVICE_PID.set(service.pid()).expect("one service");
    let base = service.base.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        // Idle connections are dropped before the server's 5 s keep-alive closes them: a request sent on a
        // connection the server is closing fails, and the set-up leaves many idle for seconds.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(CLIENTS)
            .pool_idle_timeout(Duration::from_secs(4))
            .build()
            .expect("client");
        let spread: Vec<&str> = PROVINCES.to_vec();
        let regions: &[&str] = if scenario == "issue-spread" {
            &spread
        } else {
            &["440300"]
        };
        let count = match scenario.as_str() {
            "issue-spread" | "issue-hot" | "activities" | "batch" | "provider-batch" | "read-mix" => {
                POSTING_USERS
            }
            _ => USERS,
        };
        let users = Arc::new(users(&client, &base, regions, count).await);
        match scenario.as_str() {
            "transfers" => {
                earn_all(&client, &base, &users).await;
                let u = users.clone();
                // Uncontended: each worker pays from its own wallets to its partner's.
                let stats = drive(
                    &base,
                    move |w, n| {
                        let from = &u[(w + n * CLIENTS) % u.len()];
                        let to = &u[(w + n * CLIENTS + 1) % u.len()];
                        let body = json!({"to_account_id": to.account, "points": 1}).to_string();
                        Request::post("/api/v1/transfers", &from.token, body)
                            .header("idempotency-key", format!("t-{w}-{n}"))
                    },
                    None,
                )
                .await;
                stats.print(&format!("transfers/{backend}"), 1);
            }
            "wallet" => wallet_reads(&base, &settings, &users, &backend).await,
            "http-floor" => {
                // What the load generator and the HTTP stack alone reach on this machine: no database.
                drive(&base, move |_, _| Request::get("/healthz"), None)
                    .await
                    .print(&format!("http-floor/{backend}"), 1);
            }
            "issue-spread" | "issue-hot" => {
                posts(&base, users, "i", None, 0)
                    .await
                    .print(&format!("{scenario}/{backend}"), 1);
            }
            "activities" => {
                let peak = posts(&base, users.clone(), "a", None, 0).await;
                peak.print(&format!("activities/{backend}"), 1);
                let rate = peak.ok as f64 / peak.elapsed.as_secs_f64() / 2.0;
                let interval = Duration::from_secs_f64(CLIENTS as f64 / rate.max(1.0));
                // Offset so that no trip lands on one of the peak's (they would overlap and be flagged).
                posts(&base, users, "h", Some(interval), 200)
                    .await
                    .print(&format!("activities-at-half-peak/{backend}"), 1);
                println!("RESULT activities-statuses/{backend}: {}", statuses(&settings));
            }
            "batch" => {
                let u = users.clone();
                let stats = drive(
                    &base,
                    move |w, n| {
                        let user = &u[(w + n * CLIENTS) % u.len()];
                        // Each request is a new user's (a worker's user comes round again only after
                        // 64 requests), and its rides are 150 s apart: longer than a 3.2 km ride takes
                        // (96 s at the metro's 120 km/h, two minutes for its one counted ride), so each is
                        // credited and issues its points. Closer together, every ride after the first
                        // overlapped the one before and was only stored, flagged.
                        let events: Vec<Value> = (0..500)
                            .map(|i| metro(format!("b-{w}-{n}-{i}"), i as i64 * 150 + 1))
                            .collect();
                        let body = json!({"events": events}).to_string();
                        Request::post("/api/v1/activities/batch", &user.token, body)
                    },
                    None,
                )
                .await;
                stats.print(&format!("batch-events/{backend}"), 500);
                println!("RESULT batch-statuses/{backend}: {}", statuses(&settings));
            }
            "provider-batch" => {
                let (key_id, secret) = provider(&settings).await;
                let u = users.clone();
                let stats = drive(
                    &base,
                    move |w, n| {
                        // Each request carries 500 people's trips, one each; a person comes round again
                        // eight requests later, with a trip 150 s before their last one.
                        let k = w + n * CLIENTS;
                        let events: Vec<Value> = (0..500)
                            .map(|i| {
                                let seq = k * 500 + i;
                                let mut trip = metro(format!("p-{k}-{i}"), (seq / u.len()) as i64 * 150 + 1);
                                trip["user_id"] = json!(u[seq % u.len()].id);
                                trip
                            })
                            .collect();
                        signed_post(
                            "/api/v1/provider/activities/batch",
                            &key_id,
                            &secret,
                            &format!("{w}-{n}"),
                            json!({"events": events}).to_string(),
                        )
                    },
                    None,
                )
                .await;
                stats.print(&format!("provider-batch-events/{backend}"), 500);
                println!(
                    "RESULT provider-batch-statuses/{backend}: {}",
                    statuses(&settings)
                );
            }
            "deep-lots" => lot_spends(&base, &settings, &users, &backend).await,
            "market" => {
                grant_all(&base, &settings, &users).await;
                fund_all(&settings, &users).await;
                let orders = |users: Arc<Vec<User>>, tag: &'static str| {
                    move |w: usize, n: usize| {
                        let k = w + n * CLIENTS;
                        let user = &users[k % users.len()];
                        // Buys and sells in turn, all at one price: a sell fills the oldest resting buy
                        // (or rests when none is left), so the book stays shallow and most orders match.
                        let side = if (k / users.len() + k) % 2 == 0 {
                            "buy"
                        } else {
                            "sell"
                        };
                        let body =
                            json!({"side": side, "points": 1_000, "price_fen_per_1000": 100}).to_string();
                        Request::post("/api/v1/market/orders", &user.token, body)
                            .header("idempotency-key", format!("{tag}-{w}-{n}"))
                    }
                };
                let peak = drive(&base, orders(users.clone(), "m"), None).await;
                peak.print(&format!("market/{backend}"), 1);
                let rate = peak.ok as f64 / peak.elapsed.as_secs_f64() / 2.0;
                let interval = Duration::from_secs_f64(CLIENTS as f64 / rate.max(1.0));
                drive(&base, orders(users, "h"), Some(interval))
                    .await
                    .print(&format!("market-at-half-peak/{backend}"), 1);
                println!("RESULT market-trades/{backend}: {}", market_trades(&settings));
            }
            "deep-pages" => {
                let deep = &users[0];
                let posted = posts_once(&client, &base, deep).await;
                assert!(posted, "the first activity of the deep history");
                let (activities, transfers) = deepen(&settings, &deep.account, 60_000);
                for (list, cursor) in [("activities", activities), ("wallet/transfers", transfers)] {
                    for (page, cursor) in [("page-1", None), ("page-1000", Some(cursor))] {
                        let token = deep.token.clone();
                        let path = match &cursor {
                            None => format!("/api/v1/{list}?limit=50"),
                            Some(c) => format!("/api/v1/{list}?limit=50&cursor={c}"),
                        };
                        drive(&base, move |_, _| get_as(path.clone(), &token), None)
                            .await
                            .print(&format!("deep-pages/{list}/{page}/{backend}"), 1);
                    }
                }
            }
            "read-mix" => {
                // Sixteen offers open in the whole country: what the offer listing reads.
                offers(&settings, 16).await;
                let mix = |users: Arc<Vec<User>>, tag: &'static str, offset_s: i64| {
                    move |w: usize, n: usize| {
                        let k = w + n * CLIENTS;
                        let user = &users[k % users.len()];
                        // Of every ten requests: two posts, four wallet reads, two activity lists, two
                        // offer listings.
                        match k % 10 {
                            0 | 5 => {
                                let trip = metro(
                                    format!("{tag}-{w}-{n}"),
                                    (n * 7 + w) as i64 % 500_000 + 1 + offset_s,
                                );
                                Request::post("/api/v1/activities", &user.token, trip.to_string())
                            }
                            1 | 3 | 6 | 8 => get_as("/api/v1/wallet", &user.token),
                            2 | 7 => get_as("/api/v1/activities?limit=20", &user.token),
                            _ => Request::get("/api/v1/offers?region_code=440300"),
                        }
                    }
                };
                let peak = drive(&base, mix(users.clone(), "m", 0), None).await;
                peak.print(&format!("read-mix/{backend}"), 1);
                let rate = peak.ok as f64 / peak.elapsed.as_secs_f64() / 2.0;
                let interval = Duration::from_secs_f64(CLIENTS as f64 / rate.max(1.0));
                // Offset so that no trip lands on one of the peak's (they would overlap and be flagged).
                drive(&base, mix(users, "n", 200), Some(interval))
                    .await
                    .print(&format!("read-mix-at-half-peak/{backend}"), 1);
            }
            "redeem-hot" | "redeem-spread" => {
                grant_all(&base, &settings, &users).await;
                let count = if scenario == "redeem-hot" {
                    1
                } else {
                    OFFERS_SPREAD
                };
                let offer_ids = Arc::new(offers(&settings, count).await);
                let u = users.clone();
                let stats = drive(
                    &base,
                    move |w, n| {
                        let user = &u[(w + n * CLIENTS) % u.len()];
                        let offer = &offer_ids[(w + n * CLIENTS) % offer_ids.len()];
                        let body = json!({"offer_id": offer}).to_string();
                        Request::post("/api/v1/redemptions", &user.token, body)
                            .header("idempotency-key", format!("r-{w}-{n}"))
                    },
                    None,
                )
                .await;
                stats.print(&format!("{scenario}/{backend}"), 1);
            }
            other => {
                eprintln!("unknown scenario {other}");
                FAILURES.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let failures = FAILURES.load(Ordering::Relaxed);
    if failures > 0 {
        eprintln!("{failures} requests failed (see the first of them above)");
    }
    let code = i32::from(failures > 0);
    drop(service);
    drop(sqlite_dir);
    if let Some(url) = own_database {
        drop_database(&url);
    }
    if code != 0 {
        std::process::exit(code);
    }
}
