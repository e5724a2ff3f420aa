//! A seeded, randomized model test of the ledger: several threads, half on each of two instances, run
//! random operations (activity posts through the ingest writer, issuance, transfers, holds and their
//! resolutions, redemptions and their capture or void) while an auditor per thread keeps the expected
//! state and checks every reply; at the end every wallet must equal its model and `verify` must find the
//! ledger whole (balances equal their transfers, sum to zero, no floor broken, every block verifies).
//!
//! How many operations: `TANHUI_MODEL_OPS` (1,000,000 for the long run), else 100,000 under CI=true, else
//! 2,000. Replay a failure with `TANHUI_MODEL_SEED=<seed printed in the failure> cargo test ledger_model`
//! (with the same `TANHUI_MODEL_OPS`).

use std::collections::HashMap;

use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tanhui::db::schema::unsealed_transfers;
use tanhui::db::Db;
use tanhui::ledger::service::{self, Cause, Kind, LedgerError};
use tanhui::ledger::{seal, store};
use tanhui::redemptions::error::RedemptionError;
use tanhui::redemptions::service::{self as redemptions, Actor, Outcome, Redeemer};
use tanhui::verify;

use crate::both_backends;
use crate::helpers::{second_instance, Key, TestApp};

both_backends!(randomized_operations_keep_every_invariant);

const THREADS: u64 = 4;
const WALLETS_PER_THREAD: usize = 4;
/// What one redemption of each thread's offer costs.
const REDEMPTION_COST: i64 = 7;
const PER_USER_LIMIT: i64 = 10_000;

/// The operations of the whole run (see the module notes).
fn operations() -> usize {
    let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    std::env::var("TANHUI_MODEL_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if ci { 100_000 } else { 2_000 })
}

/// A wallet's owner, for the operations that go through the HTTP API or name a user.
struct Owner {
    user_id: i64,
    phone: String,
    password: String,
    token: String,
    /// Events posted so far: each is timed a minute before the previous one, so none overlaps another.
    posted: i64,
}

/// One thread's offer and what the auditor expects of it.
struct Shop {
    offer_id: i64,
    partner_id: i64,
    stock: i64,
    /// Held or captured redemptions per wallet (the per-user limit counts both).
    taken: HashMap<i64, i64>,
    open: Vec<(i64, i64)>,
}

/// How an auditor reaches its instance over HTTP (activity posts go through the real ingest path).
struct Http {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
    epoch: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Expected {
    balance: i64,
    held: i64,
}

impl Expected {
    fn available(&self) -> i64 {
        self.balance - self.held
    }
}

struct OpenHold {
    id: i64,
    from: i64,
    to: i64,
    amount: i64,
}

/// One thread's auditor: it alone touches its wallets, so its expectations are exact.
struct Auditor {
    seed: u64,
    operations: usize,
    wallets: Vec<i64>,
    owners: HashMap<i64, Owner>,
    expected: HashMap<i64, Expected>,
    open: Vec<OpenHold>,
    resolved: Vec<i64>,
    shop: Shop,
    catalog: std::sync::Arc<tanhui::domain::catalog::Catalog>,
    http: Http,
}

impl Auditor {
    #[track_caller]
    fn check<T: std::fmt::Debug>(
        &self,
        op: &str,
        got: &Result<T, LedgerError>,
        want_ok: bool,
        want_err: Option<LedgerError>,
    ) {
        match (got, want_ok) {
            (Ok(_), true) => {}
            (Err(e), false) if want_err.as_ref().is_none_or(|w| w == e) => {}
            _ => panic!(
                "seed {}: {op}: got {got:?}, expected ok={want_ok} {want_err:?}",
                self.seed
            ),
        }
    }

    /// Posts one metro ride for `wallet` through the HTTP API (the ingest writer's group commit) and
    /// returns the points it was credited.
    fn post_activity(&mut self, wallet: i64) -> i64 {
        let owner = self.owners.get_mut(&wallet).unwrap();
        owner.posted += 1;
        let body = serde_json::json!({"client_event_id": format!("model-{}", owner.posted),
            "activity_type": "transit.metro", "evidence": "trace",
            "occurred_at": (self.http.epoch - chrono::Duration::minutes(owner.posted)).to_rfc3339(),
            "data": {"distance_m": 1000}});
        let url = format!("{}/api/v1/activities", self.http.base);
        for _ in 0..4 {
            let send = self
                .http
                .client
                .post(&url)
                .bearer_auth(&owner.token)
                .json(&body)
                .send();
            // A connection the server closed as this request was sent: the retry is safe, an event is
            // stored once per client_event_id and its replay answers as the first time.
            let Ok(r) = self.http.runtime.block_on(send) else {
                continue;
            };
            let status = r.status().as_u16();
            let answer: serde_json::Value = self.http.runtime.block_on(r.json()).unwrap_or_default();
            match status {
                201 | 200 => return answer["points"].as_i64().expect("points"),
                // A long run outlives an access token: sign in again.
                401 => {
                    let login = self
                        .http
                        .client
                        .post(format!("{}/api/v1/auth/login", self.http.base))
                        .json(&serde_json::json!({"phone": owner.phone, "password": owner.password}))
                        .send();
                    let r = self.http.runtime.block_on(login).expect("sign in");
                    let body: serde_json::Value = self.http.runtime.block_on(r.json()).unwrap();
                    owner.token = body["access_token"].as_str().expect("a token").to_string();
                }
                _ => panic!("seed {}: activity post answered {status}: {answer}", self.seed),
            }
        }
        panic!("seed {}: activity post not answered after four tries", self.seed)
    }

    fn redeem(&mut self, conn: &mut tanhui::db::AnyConnection, wallet: i64) {
        let available = self.expected[&wallet].available();
        let taken = self.shop.taken.get(&wallet).copied().unwrap_or(0);
        let who = Redeemer {
            user_id: self.owners[&wallet].user_id,
            account_id: wallet,
            region_code: "440300".into(),
        };
        let got = tanhui::db::transaction(conn, tanhui::db::Tx::Write, |conn| {
            redemptions::redeem(
                conn,
                &self.catalog,
                &who,
                self.shop.offer_id,
                chrono::Duration::hours(1),
                crate::helpers::now(),
            )
        });
        match got {
            Ok(row) => {
                assert!(
                    taken < PER_USER_LIMIT && self.shop.stock > 0 && available >= REDEMPTION_COST,
                    "seed {}: a redemption beyond the limit, the stock or the wallet",
                    self.seed
                );
                self.shop.stock -= 1;
                *self.shop.taken.entry(wallet).or_default() += 1;
                self.expected.get_mut(&wallet).unwrap().held += REDEMPTION_COST;
                self.shop.open.push((row.id, wallet));
            }
            Err(RedemptionError::LimitReached(_)) if taken >= PER_USER_LIMIT => {}
            Err(RedemptionError::OutOfStock) if self.shop.stock == 0 => {}
            Err(RedemptionError::Hold(LedgerError::InsufficientFunds)) if available < REDEMPTION_COST => {}
            Err(e) => panic!("seed {}: redeem: {e:?} (available {available})", self.seed),
        }
    }

    fn resolve_redemption(&mut self, conn: &mut tanhui::db::AnyConnection, rng: &mut StdRng) {
        let (id, wallet) = self.shop.open.swap_remove(rng.gen_range(0..self.shop.open.len()));
        let capture = rng.gen_bool(0.5);
        let (outcome, actor) = if capture {
            (Outcome::Captured, Actor::Partner(self.shop.partner_id))
        } else {
            (Outcome::Voided, Actor::Holder(wallet))
        };
        if let Err(e) = redemptions::resolve(conn, id, outcome, actor, crate::helpers::now()) {
            panic!("seed {}: resolve redemption {id}: {e:?}", self.seed);
        }
        let expected = self.expected.get_mut(&wallet).unwrap();
        expected.held -= REDEMPTION_COST;
        if capture {
            expected.balance -= REDEMPTION_COST;
        } else {
            self.shop.stock += 1;
            *self.shop.taken.get_mut(&wallet).unwrap() -= 1;
        }
    }

    fn run(&mut self, conn: &mut tanhui::db::AnyConnection, rng: &mut StdRng) {
        let pick = |rng: &mut StdRng, wallets: &[i64]| wallets[rng.gen_range(0..wallets.len())];
        let future = crate::helpers::now() + chrono::Duration::hours(1);
        for step in 0..self.operations {
            let cause = Cause::of("model", format!("{}-{step}", self.seed));
            match rng.gen_range(0..125) {
                0..=19 => {
                    let to = pick(rng, &self.wallets);
                    let amount = rng.gen_range(1..500);
                    let now = crate::helpers::now();
                    let origin =
                        tanhui::ledger::lots::Origin::plain("440300", now + chrono::Duration::days(3650));
                    let got = service::issue(conn, &origin, to, amount, &cause, now);
                    self.check("issue", &got, true, None);
                    self.expected.entry(to).or_default().balance += amount;
                }
                20..=49 => {
                    let (from, to) = (pick(rng, &self.wallets), pick(rng, &self.wallets));
                    let available = self.expected[&from].available();
                    let amount = rng.gen_range(1..=available + 50);
                    let got = service::transfer(
                        conn,
                        Kind::Transfer,
                        from,
                        to,
                        amount,
                        &cause,
                        crate::helpers::now(),
                    );
                    if from == to {
                        self.check("self transfer", &got, false, Some(LedgerError::SameAccount));
                    } else {
                        let fits = amount <= available;
                        self.check("transfer", &got, fits, Some(LedgerError::InsufficientFunds));
                        if fits {
                            self.expected.get_mut(&from).unwrap().balance -= amount;
                            self.expected.get_mut(&to).unwrap().balance += amount;
                        }
                    }
                }
                50..=69 => {
                    let (from, to) = (pick(rng, &self.wallets), pick(rng, &self.wallets));
                    if from == to {
                        continue;
                    }
                    let available = self.expected[&from].available();
                    let amount = rng.gen_range(1..=available + 50);
                    let got = service::hold(conn, from, to, amount, future, &cause, crate::helpers::now());
                    let fits = amount <= available;
                    self.check("hold", &got, fits, Some(LedgerError::InsufficientFunds));
                    if let Ok(hold) = got {
                        self.expected.get_mut(&from).unwrap().held += amount;
                        self.open.push(OpenHold {
                            id: hold.id,
                            from,
                            to,
                            amount,
                        });
                    }
                }
                70..=89 if !self.open.is_empty() => {
                    let hold = self.open.swap_remove(rng.gen_range(0..self.open.len()));
                    let post = rng.gen_bool(0.5);
                    let got = if post {
                        service::post(conn, hold.id, &cause, crate::helpers::now())
                    } else {
                        service::void(conn, hold.id, &cause, crate::helpers::now())
                    };
                    self.check(if post { "post" } else { "void" }, &got, true, None);
                    let from = self.expected.get_mut(&hold.from).unwrap();
                    from.held -= hold.amount;
                    if post {
                        from.balance -= hold.amount;
                        self.expected.get_mut(&hold.to).unwrap().balance += hold.amount;
                    }
                    self.resolved.push(hold.id);
                }
                100..=104 => {
                    let wallet = pick(rng, &self.wallets);
                    let points = self.post_activity(wallet);
                    self.expected.get_mut(&wallet).unwrap().balance += points;
                }
                105..=114 if !self.shop.open.is_empty() && rng.gen_bool(0.5) => {
                    self.resolve_redemption(conn, rng)
                }
                105..=124 => {
                    let wallet = pick(rng, &self.wallets);
                    self.redeem(conn, wallet);
                }
                90..=94 if !self.resolved.is_empty() => {
                    // Resolving a hold a second time is always refused.
                    let id = self.resolved[rng.gen_range(0..self.resolved.len())];
                    let got = if rng.gen_bool(0.5) {
                        service::post(conn, id, &cause, crate::helpers::now())
                    } else {
                        service::void(conn, id, &cause, crate::helpers::now())
                    };
                    self.check("second resolution", &got, false, Some(LedgerError::NotPending));
                }
                _ => {
                    // A hold already past its timeout: expired here, or by the background sweeper first.
                    let (from, to) = (self.wallets[0], self.wallets[1]);
                    let available = self.expected[&from].available();
                    if available == 0 {
                        continue;
                    }
                    let amount = rng.gen_range(1..=available);
                    let past = crate::helpers::now() - chrono::Duration::seconds(1);
                    let hold = service::hold(conn, from, to, amount, past, &cause, crate::helpers::now());
                    self.check("due hold", &hold, true, None);
                    let id = hold.unwrap().id;
                    match service::expire(conn, id, crate::helpers::now()) {
                        Ok(t) => assert_eq!(t.kind.as_str(), "expire", "seed {}", self.seed),
                        Err(LedgerError::NotPending) => {
                            let swept = service::post(conn, id, &cause, crate::helpers::now());
                            self.check("post after expiry", &swept, false, Some(LedgerError::NotPending));
                        }
                        Err(e) => panic!("seed {}: expire: {e:?}", self.seed),
                    }
                    self.resolved.push(id);
                }
            }
            if step % 500 == 0 {
                self.compare(conn, step);
            }
        }
        self.compare(conn, self.operations);
    }

    fn compare(&self, conn: &mut tanhui::db::AnyConnection, step: usize) {
        for (&id, want) in &self.expected {
            let row = store::account(conn, id).unwrap().unwrap();
            let got = Expected {
                balance: row.balance(),
                held: row.debits_pending,
            };
            assert_eq!(got, *want, "seed {}: wallet {id} after step {step}", self.seed);
            assert!(got.available() >= 0, "seed {}: wallet {id} overdrawn", self.seed);
        }
    }
}

async fn randomized_operations_keep_every_invariant(app: TestApp) {
    let seed: u64 = std::env::var("TANHUI_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let operations = operations();
    eprintln!("ledger model seed: {seed} ({operations} operations)");
    let other = second_instance(&app).await;
    let admin = app.admin_token().await;
    let partner = app
        .post(
            "/api/v1/admin/partners",
            &serde_json::json!({"name": "model partner", "kind": "transit", "region_codes": ["440300"]}),
            Some(&admin),
        )
        .await;
    let partner = partner.assert_status(201).clone();
    let key = Key::from_credentials(&partner);
    let partner_id: i64 = partner["partner_id"].as_str().unwrap().parse().unwrap();
    let now = chrono::Utc::now();
    // A small stock, so that selling out (and stock coming back with a void) is exercised too.
    let terms = serde_json::json!({
        "title": "model offer", "description": "for the ledger model",
        "points_cost": REDEMPTION_COST, "stock": 200, "per_user_limit": PER_USER_LIMIT,
        "valid_from": (now - chrono::Duration::days(1)).to_rfc3339(),
        "valid_to": (now + chrono::Duration::days(30)).to_rfc3339(),
        "region_codes": ["440300"],
    });
    let mut setups = Vec::new();
    for thread in 0..THREADS {
        let offer = app
            .signed(&key, "POST", "/api/v1/partner/offers", Some(&terms))
            .await;
        let offer_id: i64 = offer.assert_status(201)["id"].as_str().unwrap().parse().unwrap();
        let (mut wallets, mut owners) = (Vec::new(), HashMap::new());
        for _ in 0..WALLETS_PER_THREAD {
            let (phone, password, user_id, account) = app.register().await;
            let token = app.token_of(&phone, &password).await;
            let wallet = account.parse::<i64>().unwrap();
            wallets.push(wallet);
            let user_id = user_id.parse().unwrap();
            let owner = Owner {
                user_id,
                phone,
                password,
                token,
                posted: 0,
            };
            owners.insert(wallet, owner);
        }
        // Half the threads on each instance: its pool, its writers and its background tasks.
        let instance = if thread % 2 == 0 { &app } else { &other };
        let (db, base) = (instance.state.db.clone(), instance.address.clone());
        setups.push((wallets, owners, offer_id, db, base));
    }
    let catalog = app.state.catalog.get();
    let db: Db = app.state.db.clone();
    let (key, clock) = (app.state.platform_key.clone(), app.state.clock.clone());
    let per_thread = operations.div_ceil(THREADS as usize);
    // Reported, not asserted: what the run costs CI.
    let started = std::time::Instant::now();
    actix_web::web::block(move || {
        std::thread::scope(|scope| {
            let workers: Vec<_> = setups
                .into_iter()
                .enumerate()
                .map(|(i, (wallets, owners, offer_id, db, base))| {
                    let catalog = catalog.clone();
                    scope.spawn(move || {
                        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64));
                        let runtime = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .expect("a runtime for the thread's HTTP calls");
                        let mut auditor = Auditor {
                            seed,
                            operations: per_thread,
                            expected: wallets.iter().map(|w| (*w, Expected::default())).collect(),
                            wallets,
                            owners,
                            open: Vec::new(),
                            resolved: Vec::new(),
                            shop: Shop {
                                offer_id,
                                partner_id,
                                stock: 200,
                                taken: HashMap::new(),
                                open: Vec::new(),
                            },
                            catalog,
                            http: Http {
                                runtime,
                                // Idle connections are dropped before the server's keep-alive (5 s)
                                // closes them under a request.
                                client: reqwest::Client::builder()
                                    .pool_idle_timeout(std::time::Duration::from_secs(1))
                                    .build()
                                    .expect("an HTTP client"),
                                base,
                                epoch: chrono::Utc::now(),
                            },
                        };
                        auditor.run(&mut db.get().unwrap(), &mut rng);
                    })
                })
                .collect();
            for w in workers {
                w.join()
                    .expect("a model thread failed (its seed is printed above)");
            }
        });
        let mut conn = db.get().unwrap();
        // Seal what is left; `None` also means the app's own sealer holds the lock right now, so wait
        // until nothing is left unsealed rather than stop at the first `None`.
        loop {
            if seal::seal_once(&mut conn, &key, 1_000, &clock).unwrap().is_some() {
                continue;
            }
            let unsealed: i64 = unsealed_transfers::table.count().get_result(&mut conn).unwrap();
            if unsealed == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let report = verify::verify(&mut conn, &key.public_key_bytes(), |_, _, _| {}).unwrap();
        assert!(report.ok(), "seed {seed}: {:?}", report.mismatches);
        assert!(
            report.transfers > 1000,
            "seed {seed}: only {} transfers",
            report.transfers
        );
        assert!(report.blocks >= 1, "seed {seed}: nothing was sealed");
        eprintln!(
            "ledger model: {operations} operations and verify in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    })
    .await
    .unwrap();
}
