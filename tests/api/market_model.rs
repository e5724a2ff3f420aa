//! A seeded model test of the market: traders place random orders (good till cancelled or immediate or
//! cancel, around one price so that many cross), cancel them and replay placements, through two
//! instances in turn, with a fee configured. After every step it checks that the book is not crossed, no
//! fill was at a price beyond its order's limit, points and cash are conserved (fees included), no
//! balance is negative, and every trader holds exactly what its open orders may still trade; at the end
//! `verify` must pass.
//!
//! Steps: `TANHUI_MARKET_MODEL_OPS`, else 3,000 under CI=true, else 600. Replay a failure with
//! `TANHUI_MARKET_MODEL_SEED=<seed printed in the failure>`.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tanhui::cash::accounts as cash;
use tanhui::market::data;
use tanhui::market::rules::held_for;
use tanhui::market::store::{self as orders, OrderRow};
use tanhui::market::{OrderStatus, Side};

use crate::both_backends_with;
use crate::helpers::{second_instance, TestApp};
use crate::market::{post_with_key, Treasury};

both_backends_with!(random_orders_keep_every_market_invariant => |s| s.market.fee_bps = 25);

const TRADERS: usize = 6;
const POINTS_EACH: i64 = 50_000;
const FEN_EACH: i64 = 50_000;

fn steps() -> usize {
    let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    std::env::var("TANHUI_MARKET_MODEL_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if ci { 3_000 } else { 600 })
}

struct Trader {
    token: String,
    wallet: i64,
}

/// What the checks read of the database after a step.
struct Snapshot {
    /// Per trader: (points balance, points held, cash balance, cash held).
    balances: Vec<(i64, i64, i64, i64)>,
    fees: i64,
    open: Vec<OrderRow>,
    best_bid: Option<i64>,
    best_ask: Option<i64>,
}

async fn snapshot(app: &TestApp, wallets: Vec<i64>) -> Snapshot {
    app.on_primary(move |conn| {
        let mut balances = Vec::new();
        let mut open = Vec::new();
        for wallet in &wallets {
            let points = tanhui::ledger::store::account(conn, *wallet).unwrap().unwrap();
            let money = cash::of(conn, *wallet).unwrap().unwrap();
            balances.push((
                points.balance(),
                points.debits_pending,
                money.balance(),
                money.debits_pending,
            ));
            for status in [OrderStatus::Open, OrderStatus::PartiallyFilled] {
                open.extend(orders::of_account(conn, *wallet, Some(status), None, 10_000).unwrap());
            }
        }
        let fees = cash::named(conn, cash::FEES).unwrap().balance();
        let mut best = |side| {
            data::depth(conn, side, 1)
                .unwrap()
                .first()
                .map(|l| l.price_fen_per_1000)
        };
        let (best_bid, best_ask) = (best(Side::Buy), best(Side::Sell));
        Snapshot {
            balances,
            fees,
            open,
            best_bid,
            best_ask,
        }
    })
    .await
}

fn check(seed: u64, step: usize, s: &Snapshot, traders: &[Trader]) {
    let say = |what: &str| format!("seed {seed}, step {step}: {what}");
    if let (Some(bid), Some(ask)) = (s.best_bid, s.best_ask) {
        assert!(
            bid < ask,
            "{}",
            say(&format!("the book is crossed: bid {bid} ≥ ask {ask}"))
        );
    }
    let points: i64 = s.balances.iter().map(|b| b.0).sum();
    let fen: i64 = s.balances.iter().map(|b| b.2).sum::<i64>() + s.fees;
    assert_eq!(
        points,
        POINTS_EACH * TRADERS as i64,
        "{}",
        say("points not conserved")
    );
    assert_eq!(fen, FEN_EACH * TRADERS as i64, "{}", say("cash not conserved"));
    for (trader, b) in traders.iter().zip(&s.balances) {
        assert!(
            b.0 >= b.1 && b.2 >= b.3,
            "{}",
            say(&format!("wallet {} below zero: {b:?}", trader.wallet))
        );
        let mine = s.open.iter().filter(|o| o.account_id == trader.wallet);
        let (mut points_held, mut cash_held) = (0, 0);
        for o in mine {
            let held = held_for(o.side, o.remaining(), o.price_fen_per_1000).unwrap();
            match o.side {
                Side::Sell => points_held += held,
                Side::Buy => cash_held += held,
            }
        }
        assert_eq!(
            (b.1, b.3),
            (points_held, cash_held),
            "{}",
            say(&format!("wallet {}'s holds", trader.wallet))
        );
    }
}

async fn random_orders_keep_every_market_invariant(app: TestApp) {
    let seed: u64 = std::env::var("TANHUI_MARKET_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let steps = steps();
    eprintln!("market model seed: {seed} ({steps} steps)");
    let mut rng = StdRng::seed_from_u64(seed);
    let other = second_instance(&app).await;
    let treasury = Treasury::new(&app).await;
    let mut traders = Vec::new();
    for _ in 0..TRADERS {
        let (token, id) = app.new_member().await;
        app.grant(&id, POINTS_EACH).await;
        treasury.fund(&app, &id, FEN_EACH).await;
        traders.push(Trader {
            token,
            wallet: id.parse().unwrap(),
        });
    }
    let wallets: Vec<i64> = traders.iter().map(|t| t.wallet).collect();
    // Placed orders per trader, and (trader, key, body, answer) of placements to replay.
    let mut placed: HashMap<usize, Vec<String>> = HashMap::new();
    let mut replays: Vec<(usize, String, Value, Value)> = Vec::new();
    let started = std::time::Instant::now();
    for step in 0..steps {
        let instance = if step % 2 == 0 { &app } else { &other };
        let who = rng.gen_range(0..TRADERS);
        let token = traders[who].token.clone();
        match rng.gen_range(0..10) {
            0..=5 => {
                let side = if rng.gen_bool(0.5) { "buy" } else { "sell" };
                let limit = rng.gen_range(90..=110);
                let tif = if rng.gen_bool(0.2) { "ioc" } else { "gtc" };
                let body = json!({"side": side, "points": 1_000 * rng.gen_range(1..=5),
                    "price_fen_per_1000": limit, "time_in_force": tif});
                let key = format!("model-{seed}-{step}");
                let r = post_with_key(instance, "/api/v1/market/orders", &body, &token, &key).await;
                match r.status.as_u16() {
                    201 => {
                        for fill in r.body["fills"].as_array().unwrap() {
                            let price = fill["price_fen_per_1000"].as_i64().unwrap();
                            let within = if side == "buy" {
                                price <= limit
                            } else {
                                price >= limit
                            };
                            assert!(
                                within,
                                "seed {seed}, step {step}: a fill at {price} beyond {side} limit {limit}"
                            );
                        }
                        let id = r.body["order_id"].as_str().unwrap().to_string();
                        placed.entry(who).or_default().push(id);
                        replays.push((who, key, body, r.body.clone()));
                    }
                    409 => assert_eq!(r.code(), "insufficient_funds", "seed {seed}, step {step}"),
                    s => panic!("seed {seed}, step {step}: placement answered {s}: {}", r.text),
                }
            }
            6..=8 => {
                let Some(ids) = placed.get(&who).filter(|ids| !ids.is_empty()) else {
                    continue;
                };
                let id = ids[rng.gen_range(0..ids.len())].clone();
                let path = format!("/api/v1/market/orders/{id}");
                let r = instance
                    .send(instance.client.delete(instance.url(&path)).bearer_auth(&token))
                    .await;
                match r.status.as_u16() {
                    200 => assert_eq!(r.body["status"], "cancelled", "seed {seed}, step {step}"),
                    409 => assert_eq!(r.code(), "invalid_state", "seed {seed}, step {step}"),
                    s => panic!("seed {seed}, step {step}: cancel answered {s}: {}", r.text),
                }
            }
            _ => {
                if replays.is_empty() {
                    continue;
                }
                let (who, key, body, answer) = replays[rng.gen_range(0..replays.len())].clone();
                let token = &traders[who].token;
                let r = post_with_key(instance, "/api/v1/market/orders", &body, token, &key).await;
                assert_eq!(
                    r.assert_status(201),
                    &answer,
                    "seed {seed}, step {step}: a replay is the first answer"
                );
            }
        }
        check(seed, step, &snapshot(&app, wallets.clone()).await, &traders);
    }
    let report = app.verify().await;
    assert!(report.ok(), "seed {seed}: {:?}", report.mismatches);
    let trades = app.get("/api/v1/market/trades?limit=1", None).await;
    assert!(
        !trades.assert_status(200)["items"].as_array().unwrap().is_empty(),
        "seed {seed}: nothing traded"
    );
    eprintln!(
        "market model: {steps} steps in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
