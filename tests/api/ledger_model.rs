//! A seeded, randomized model test of the ledger: several threads run thousands of random operations
//! while an auditor per thread keeps the expected state and checks every reply; at the end every wallet
//! must equal its model and `verify` must find the ledger whole (balances equal their transfers, sum to
//! zero, no floor broken, every block verifies).
//!
//! Replay a failure with `TANHUI_MODEL_SEED=<seed printed in the failure> cargo test ledger_model`.

use std::collections::HashMap;

use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tanhui::db::schema::unsealed_transfers;
use tanhui::db::Db;
use tanhui::ledger::service::{self, Cause, Kind, LedgerError};
use tanhui::ledger::{seal, store};
use tanhui::verify;

use crate::both_backends;
use crate::helpers::TestApp;

both_backends!(randomized_operations_keep_every_invariant);

const THREADS: u64 = 4;
const WALLETS_PER_THREAD: usize = 4;
const OPERATIONS_PER_THREAD: usize = 500;

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
    wallets: Vec<i64>,
    expected: HashMap<i64, Expected>,
    open: Vec<OpenHold>,
    resolved: Vec<i64>,
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

    fn run(&mut self, conn: &mut tanhui::db::AnyConnection, rng: &mut StdRng) {
        let pick = |rng: &mut StdRng, wallets: &[i64]| wallets[rng.gen_range(0..wallets.len())];
        let future = crate::helpers::now() + chrono::Duration::hours(1);
        for step in 0..OPERATIONS_PER_THREAD {
            let cause = Cause::of("model", format!("{}-{step}", self.seed));
            match rng.gen_range(0..100) {
                0..=19 => {
                    let to = pick(rng, &self.wallets);
                    let amount = rng.gen_range(1..500);
                    let got = service::issue(conn, "440300", to, amount, &cause, crate::helpers::now());
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
            if step % 50 == 0 {
                self.compare(conn, step);
            }
        }
        self.compare(conn, OPERATIONS_PER_THREAD);
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
    eprintln!("ledger model seed: {seed}");
    let mut wallets = Vec::new();
    for _ in 0..THREADS as usize * WALLETS_PER_THREAD {
        let (_, _, _, account) = app.register().await;
        wallets.push(account.parse::<i64>().unwrap());
    }
    let db: Db = app.state.db.clone();
    let (key, clock) = (app.state.platform_key.clone(), app.state.clock.clone());
    actix_web::web::block(move || {
        std::thread::scope(|scope| {
            let workers: Vec<_> = wallets
                .chunks(WALLETS_PER_THREAD)
                .enumerate()
                .map(|(i, own)| {
                    let db = db.clone();
                    let own = own.to_vec();
                    scope.spawn(move || {
                        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64));
                        let mut auditor = Auditor {
                            seed,
                            expected: own.iter().map(|w| (*w, Expected::default())).collect(),
                            wallets: own,
                            open: Vec::new(),
                            resolved: Vec::new(),
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
    })
    .await
    .unwrap();
}
