//! Cash and the market: money enters only by a deposit a second administrator confirms and leaves by a
//! withdrawal; orders match by price then time at the resting order's price, settle both ledgers in one
//! step, never trade with their own account, release what they no longer need, and are placed once per
//! key; a region can switch trading off for the people homed there; `verify` proves it all.

use chrono::Duration;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{random_phone, second_instance, Resp, TestApp};

both_backends!(
    money_enters_by_a_confirmed_deposit_and_leaves_by_a_withdrawal,
    orders_fill_by_price_then_time_at_the_resting_price,
    a_purchase_holds_its_limit_and_releases_what_a_better_price_saves,
    an_order_never_trades_with_its_own_account,
    orders_are_placed_once_per_key_and_bad_ones_are_refused,
    a_region_can_switch_trading_off_for_people_but_not_businesses,
    cancels_race_fills_on_two_instances_and_nothing_is_lost,
    verify_sees_money_from_nowhere_and_orders_edited_behind_its_back
);

/// `POST` with a fresh `Idempotency-Key`.
pub async fn post_keyed(app: &TestApp, path: &str, body: &Value, token: &str) -> Resp {
    post_with_key(app, path, body, token, &uuid::Uuid::new_v4().to_string()).await
}

pub async fn post_with_key(app: &TestApp, path: &str, body: &Value, token: &str, key: &str) -> Resp {
    let request = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body);
    app.send(request).await
}

/// Two national administrators: one records deposits, the other confirms them.
pub struct Treasury {
    maker: String,
    checker: String,
}

impl Treasury {
    pub async fn new(app: &TestApp) -> Treasury {
        Treasury {
            maker: app.admin_token().await,
            checker: app.admin_token().await,
        }
    }

    /// Deposits `fen` into `account`'s cash, recorded and confirmed.
    pub async fn fund(&self, app: &TestApp, account: &str, fen: i64) {
        let body = json!({"account_id": account, "amount_fen": fen, "bank_reference": random_phone()});
        let r = post_keyed(app, "/api/v1/admin/cash/deposits", &body, &self.maker).await;
        let id = r.assert_status(201)["deposit_id"].as_str().unwrap().to_string();
        let path = format!("/api/v1/admin/cash/deposits/{id}/confirm");
        app.post(&path, &json!({}), Some(&self.checker))
            .await
            .assert_status(200);
    }
}

/// (balance, held, available) of the caller's cash.
async fn cash(app: &TestApp, token: &str) -> (i64, i64, i64) {
    let r = app.get("/api/v1/cash", Some(token)).await;
    let b = r.assert_status(200);
    let f = |k: &str| b[k].as_i64().unwrap();
    (f("balance_fen"), f("held_fen"), f("available_fen"))
}

async fn order(app: &TestApp, token: &str, side: &str, points: i64, price: i64) -> Value {
    let body = json!({"side": side, "points": points, "price_fen_per_1000": price});
    post_keyed(app, "/api/v1/market/orders", &body, token)
        .await
        .assert_status(201)
        .clone()
}

async fn assert_verified(app: &TestApp) {
    let report = app.verify().await;
    assert!(report.ok(), "{:?}", report.mismatches);
}

async fn money_enters_by_a_confirmed_deposit_and_leaves_by_a_withdrawal(app: TestApp) {
    let treasury = Treasury::new(&app).await;
    let (alice, alice_id) = app.new_member().await;
    assert_eq!(cash(&app, &alice).await, (0, 0, 0));

    let body = json!({"account_id": alice_id, "amount_fen": 10_000, "bank_reference": "ICBC-2026-0001"});
    let recorded = post_keyed(&app, "/api/v1/admin/cash/deposits", &body, &treasury.maker).await;
    let recorded = recorded.assert_status(201).clone();
    assert_eq!(recorded["status"], "pending");
    assert_eq!(
        cash(&app, &alice).await,
        (0, 0, 0),
        "a recorded deposit moves nothing"
    );
    let confirm = format!(
        "/api/v1/admin/cash/deposits/{}/confirm",
        recorded["deposit_id"].as_str().unwrap()
    );
    app.post(&confirm, &json!({}), Some(&treasury.maker))
        .await
        .assert_problem(403, "forbidden");
    let posted = app.post(&confirm, &json!({}), Some(&treasury.checker)).await;
    assert_eq!(posted.assert_status(200)["status"], "posted");
    app.post(&confirm, &json!({}), Some(&treasury.checker))
        .await
        .assert_problem(409, "invalid_state");
    assert_eq!(cash(&app, &alice).await, (10_000, 0, 10_000));

    // A bank reference is accepted once, whoever records it; a regional administrator handles no money;
    // a member cannot record deposits.
    post_keyed(&app, "/api/v1/admin/cash/deposits", &body, &treasury.checker)
        .await
        .assert_problem(409, "conflict");
    let (_, regional) = app.administrator("440300").await;
    let other = json!({"account_id": alice_id, "amount_fen": 5, "bank_reference": "ICBC-2026-0002"});
    post_keyed(&app, "/api/v1/admin/cash/deposits", &other, &regional)
        .await
        .assert_problem(403, "out_of_scope");
    post_keyed(&app, "/api/v1/admin/cash/deposits", &other, &alice)
        .await
        .assert_problem(403, "forbidden");
    let bad = json!({"account_id": "nobody", "amount_fen": 0, "bank_reference": ""});
    let r = post_keyed(&app, "/api/v1/admin/cash/deposits", &bad, &treasury.maker).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), ["account_id", "amount_fen", "bank_reference"]);

    // Withdrawals: held, then rejected (released) or completed (gone).
    let too_much = post_keyed(
        &app,
        "/api/v1/cash/withdrawals",
        &json!({"amount_fen": 10_001}),
        &alice,
    )
    .await;
    too_much.assert_problem(409, "insufficient_funds");
    let held = post_keyed(
        &app,
        "/api/v1/cash/withdrawals",
        &json!({"amount_fen": 4_000}),
        &alice,
    )
    .await;
    let first = held.assert_status(201)["withdrawal_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(cash(&app, &alice).await, (10_000, 4_000, 6_000));
    let reject = format!("/api/v1/admin/cash/withdrawals/{first}/reject");
    let rejected = app.post(&reject, &json!({}), Some(&treasury.checker)).await;
    assert_eq!(rejected.assert_status(200)["status"], "rejected");
    assert_eq!(cash(&app, &alice).await, (10_000, 0, 10_000));
    let held = post_keyed(
        &app,
        "/api/v1/cash/withdrawals",
        &json!({"amount_fen": 3_000}),
        &alice,
    )
    .await;
    let second = held.assert_status(201)["withdrawal_id"]
        .as_str()
        .unwrap()
        .to_string();
    let complete = format!("/api/v1/admin/cash/withdrawals/{second}/complete");
    let completed = app.post(&complete, &json!({}), Some(&treasury.maker)).await;
    assert_eq!(completed.assert_status(200)["status"], "completed");
    app.post(&complete, &json!({}), Some(&treasury.maker))
        .await
        .assert_problem(409, "invalid_state");
    app.post(&reject, &json!({}), Some(&treasury.maker))
        .await
        .assert_problem(409, "invalid_state");
    assert_eq!(cash(&app, &alice).await, (7_000, 0, 7_000));
    let mine = app.get("/api/v1/cash/withdrawals", Some(&alice)).await;
    let statuses: Vec<&str> = mine.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["completed", "rejected"]);
    let pending = app
        .get(
            "/api/v1/admin/cash/deposits?status=pending",
            Some(&treasury.maker),
        )
        .await;
    assert_eq!(pending.assert_status(200)["items"], json!([]));
    assert_verified(&app).await;
}

/// The fills of a placed order as (points, price).
fn fills(placed: &Value) -> Vec<(i64, i64)> {
    placed["fills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["points"].as_i64().unwrap(),
                f["price_fen_per_1000"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn book(app: &TestApp) -> (Vec<(i64, i64)>, Vec<(i64, i64)>) {
    let r = app.get("/api/v1/market/book", None).await;
    let b = r.assert_status(200);
    let side = |k: &str| -> Vec<(i64, i64)> {
        b[k].as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["price_fen_per_1000"].as_i64().unwrap(),
                    l["points"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    (side("bids"), side("asks"))
}

async fn orders_fill_by_price_then_time_at_the_resting_price(app: TestApp) {
    let treasury = Treasury::new(&app).await;
    let sellers = [
        app.new_member().await,
        app.new_member().await,
        app.new_member().await,
    ];
    for (_, id) in &sellers {
        app.grant(id, 5_000).await;
    }
    let (buyer, buyer_id) = app.new_member().await;
    treasury.fund(&app, &buyer_id, 1_000).await;

    let dear = order(&app, &sellers[0].0, "sell", 2_000, 120).await;
    let first_cheap = order(&app, &sellers[1].0, "sell", 1_000, 110).await;
    let second_cheap = order(&app, &sellers[2].0, "sell", 1_000, 110).await;
    assert_eq!(dear["status"], "open");
    assert_eq!(
        app.balance(&sellers[0].0).await,
        5_000,
        "points on sale are held, not gone"
    );
    assert_eq!(book(&app).await, (vec![], vec![(110, 2_000), (120, 2_000)]));

    let placed = order(&app, &buyer, "buy", 3_000, 125).await;
    assert_eq!(placed["status"], "filled");
    assert_eq!(placed["filled_points"], 3_000);
    assert_eq!(fills(&placed), [(1_000, 110), (1_000, 110), (1_000, 120)]);
    assert_eq!(app.balance(&buyer).await, 3_000);
    assert_eq!(
        cash(&app, &buyer).await,
        (660, 0, 660),
        "paid 110 + 110 + 120 fen"
    );
    assert_eq!(cash(&app, &sellers[1].0).await, (110, 0, 110));
    assert_eq!(cash(&app, &sellers[0].0).await, (120, 0, 120));
    assert_eq!(app.balance(&sellers[0].0).await, 4_000);

    // Time priority among equal prices: the earlier order filled first (both filled here, in order).
    let trades = app.get("/api/v1/market/trades", None).await;
    let items = trades.assert_status(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 3);
    let get = |o: &Value, token: &str| {
        let path = format!("/api/v1/market/orders/{}", o["order_id"].as_str().unwrap());
        let app = &app;
        let token = token.to_string();
        async move { app.get(&path, Some(&token)).await.assert_status(200).clone() }
    };
    let first = get(&first_cheap, &sellers[1].0).await;
    let second = get(&second_cheap, &sellers[2].0).await;
    assert!(
        first["fills"][0]["trade_id"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            < second["fills"][0]["trade_id"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .unwrap()
    );
    let dear = get(&dear, &sellers[0].0).await;
    assert_eq!(dear["status"], "partially_filled");
    assert_eq!(dear["filled_points"], 1_000);
    assert_eq!(book(&app).await, (vec![], vec![(120, 1_000)]));
    // Someone else's order is not found.
    let path = format!("/api/v1/market/orders/{}", dear["order_id"].as_str().unwrap());
    app.get(&path, Some(&buyer))
        .await
        .assert_problem(404, "not_found");

    let candles = app.get("/api/v1/market/candles?interval=1h", None).await;
    let c = candles.assert_status(200)["items"][0].clone();
    assert_eq!(
        (
            c["open"].clone(),
            c["high"].clone(),
            c["low"].clone(),
            c["close"].clone()
        ),
        (json!(110), json!(120), json!(110), json!(120))
    );
    assert_eq!(
        (
            c["volume_points"].clone(),
            c["volume_fen"].clone(),
            c["trades"].clone()
        ),
        (json!(3_000), json!(340), json!(3))
    );
    let daily = app.get("/api/v1/market/candles?interval=1d", None).await;
    assert_eq!(daily.assert_status(200)["items"].as_array().unwrap().len(), 1);
    app.get("/api/v1/market/candles?interval=1w", None)
        .await
        .assert_problem(400, "invalid_query");
    assert_verified(&app).await;
}

async fn a_purchase_holds_its_limit_and_releases_what_a_better_price_saves(app: TestApp) {
    let treasury = Treasury::new(&app).await;
    let (seller, seller_id) = app.new_member().await;
    app.grant(&seller_id, 1_000).await;
    let (buyer, buyer_id) = app.new_member().await;
    treasury.fund(&app, &buyer_id, 1_000).await;
    order(&app, &seller, "sell", 1_000, 100).await;

    let placed = order(&app, &buyer, "buy", 2_000, 150).await;
    assert_eq!(placed["status"], "partially_filled");
    assert_eq!(fills(&placed), [(1_000, 100)]);
    // Paid 100; the rest (1,000 points) stays held at the limit: 150.
    assert_eq!(cash(&app, &buyer).await, (900, 150, 750));
    assert_eq!(book(&app).await, (vec![(150, 1_000)], vec![]));

    let path = format!("/api/v1/market/orders/{}", placed["order_id"].as_str().unwrap());
    let cancel = app
        .send(app.client.delete(app.url(&path)).bearer_auth(&buyer))
        .await;
    assert_eq!(cancel.assert_status(200)["status"], "cancelled");
    assert_eq!(cash(&app, &buyer).await, (900, 0, 900));
    let again = app
        .send(app.client.delete(app.url(&path)).bearer_auth(&buyer))
        .await;
    again.assert_problem(409, "invalid_state");
    let theirs = app
        .send(app.client.delete(app.url(&path)).bearer_auth(&seller))
        .await;
    theirs.assert_problem(404, "not_found");
    let open = app.get("/api/v1/market/orders?status=open", Some(&buyer)).await;
    assert_eq!(open.assert_status(200)["items"], json!([]));
    let all = app.get("/api/v1/market/orders", Some(&buyer)).await;
    assert_eq!(all.assert_status(200)["items"][0]["status"], "cancelled");
    assert_verified(&app).await;
}

async fn an_order_never_trades_with_its_own_account(app: TestApp) {
    let treasury = Treasury::new(&app).await;
    let (trader, trader_id) = app.new_member().await;
    app.grant(&trader_id, 1_000).await;
    treasury.fund(&app, &trader_id, 1_000).await;
    let sale = order(&app, &trader, "sell", 1_000, 100).await;
    let purchase = order(&app, &trader, "buy", 1_000, 100).await;
    assert_eq!(fills(&purchase), []);
    assert_eq!(purchase["status"], "open");
    let path = format!("/api/v1/market/orders/{}", sale["order_id"].as_str().unwrap());
    let sale = app.get(&path, Some(&trader)).await;
    assert_eq!(
        sale.assert_status(200)["status"],
        "cancelled",
        "the resting order goes"
    );
    assert_eq!(app.balance(&trader).await, 1_000);
    assert_eq!(cash(&app, &trader).await, (1_000, 100, 900));
    assert_eq!(book(&app).await, (vec![(100, 1_000)], vec![]));
    assert_verified(&app).await;
}

async fn orders_are_placed_once_per_key_and_bad_ones_are_refused(app: TestApp) {
    let (seller, seller_id) = app.new_member().await;
    app.grant(&seller_id, 3_000).await;
    let body = json!({"side": "sell", "points": 2_000, "price_fen_per_1000": 90});
    let first = post_with_key(&app, "/api/v1/market/orders", &body, &seller, "sell-once").await;
    let again = post_with_key(&app, "/api/v1/market/orders", &body, &seller, "sell-once").await;
    assert_eq!(first.assert_status(201), again.assert_status(201));
    assert_eq!(book(&app).await, (vec![], vec![(90, 2_000)]));
    let other = json!({"side": "sell", "points": 1_000, "price_fen_per_1000": 90});
    post_with_key(&app, "/api/v1/market/orders", &other, &seller, "sell-once")
        .await
        .assert_problem(409, "idempotency_conflict");
    app.post("/api/v1/market/orders", &other, Some(&seller))
        .await
        .assert_problem(400, "idempotency_key_required");
    let short = json!({"side": "sell", "points": 2_000, "price_fen_per_1000": 90});
    post_keyed(&app, "/api/v1/market/orders", &short, &seller)
        .await
        .assert_problem(409, "insufficient_funds");
    let (buyer, _) = app.new_member().await;
    let broke = json!({"side": "buy", "points": 1_000, "price_fen_per_1000": 1});
    post_keyed(&app, "/api/v1/market/orders", &broke, &buyer)
        .await
        .assert_problem(409, "insufficient_funds");
    let bad = json!({"side": "sell", "points": 1_500, "price_fen_per_1000": 0});
    let r = post_keyed(&app, "/api/v1/market/orders", &bad, &seller).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), ["points", "price_fen_per_1000"]);
    let huge =
        json!({"side": "buy", "points": 9_000_000_000_000_000_000i64, "price_fen_per_1000": 1_000_000_000});
    post_keyed(&app, "/api/v1/market/orders", &huge, &buyer)
        .await
        .assert_problem(422, "validation_failed");
    let sideways = json!({"side": "hold", "points": 1_000, "price_fen_per_1000": 1});
    post_keyed(&app, "/api/v1/market/orders", &sideways, &seller)
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/v1/market/orders", None)
        .await
        .assert_problem(401, "unauthorized");

    // Immediate or cancel: what does not fill at once is cancelled and its hold released.
    let ioc = json!({"side": "sell", "points": 1_000, "price_fen_per_1000": 500, "time_in_force": "ioc"});
    let r = post_keyed(&app, "/api/v1/market/orders", &ioc, &seller).await;
    assert_eq!(r.assert_status(201)["status"], "cancelled");
    let wallet = app.get("/api/v1/wallet", Some(&seller)).await;
    assert_eq!(wallet.assert_status(200)["available"], 1_000);
    assert_verified(&app).await;
}

async fn a_region_can_switch_trading_off_for_people_but_not_businesses(app: TestApp) {
    let (maker, checker) = (app.admin_token().await, app.admin_token().await);
    let from = app.clock.clock().now() + Duration::hours(1);
    let body = json!({"region_code": "440300", "effective_from": from.to_rfc3339(),
        "values": {"trading_enabled": "0"}, "citation": "Shenzhen: personal points are not traded"});
    let drafted = app
        .post("/api/v1/admin/region-parameters", &body, Some(&maker))
        .await;
    let id = drafted.assert_status(201)["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/admin/region-parameters/{id}/activate");
    app.post(&path, &json!({}), Some(&checker))
        .await
        .assert_status(200);
    let (person, person_id) = app.new_member().await;
    app.grant(&person_id, 1_000).await;
    let sale = json!({"side": "sell", "points": 1_000, "price_fen_per_1000": 10});
    post_keyed(&app, "/api/v1/market/orders", &sale, &person)
        .await
        .assert_status(201);

    app.clock.advance(Duration::hours(2));
    let person = app.new_user_token().await;
    post_keyed(&app, "/api/v1/market/orders", &sale, &person)
        .await
        .assert_problem(403, "trading_disabled");
    let phone = random_phone();
    let registration = json!({"phone": phone, "password": "correct horse battery", "display_name": "绿色公司",
        "account_type": "business", "region_code": "440300", "credit_code": "91350100M000100Y43"});
    let r = app.post("/api/v1/auth/register", &registration, None).await;
    let business_id = r.assert_status(201)["account_id"].as_str().unwrap().to_string();
    let business = app.token_of(&phone, "correct horse battery").await;
    app.grant(&business_id, 1_000).await;
    post_keyed(&app, "/api/v1/market/orders", &sale, &business)
        .await
        .assert_status(201);
}

/// Two instances take orders and cancels at once: every answer is a fill, a rest or a refusal, and
/// afterwards the points and cash are where the answers say, nothing is held for an order that is done,
/// and `verify` passes.
async fn cancels_race_fills_on_two_instances_and_nothing_is_lost(app: TestApp) {
    let other = second_instance(&app).await;
    let treasury = Treasury::new(&app).await;
    let mut sellers = Vec::new();
    for _ in 0..4 {
        let (token, id) = app.new_member().await;
        app.grant(&id, 10_000).await;
        sellers.push(token);
    }
    let mut buyers = Vec::new();
    for _ in 0..4 {
        let (token, id) = app.new_member().await;
        treasury.fund(&app, &id, 10_000).await;
        buyers.push(token);
    }
    // Resting sales, then purchases that cross them raced by their cancellation, half on each instance.
    let mut resting = Vec::new();
    for (i, seller) in sellers.iter().enumerate() {
        resting.push(order(&app, seller, "sell", 2_000, 100 + i as i64).await);
    }
    let body = json!({"side": "buy", "points": 2_000, "price_fen_per_1000": 200});
    let mut tasks = Vec::new();
    for (i, (seller, sale)) in sellers.iter().zip(&resting).enumerate() {
        let instance = if i % 2 == 0 { &app } else { &other };
        let path = format!("/api/v1/market/orders/{}", sale["order_id"].as_str().unwrap());
        let cancel = instance.send(instance.client.delete(instance.url(&path)).bearer_auth(seller));
        let buy = post_keyed(
            if i % 2 == 0 { &other } else { &app },
            "/api/v1/market/orders",
            &body,
            &buyers[i],
        );
        tasks.push(async move { tokio::join!(cancel, buy) });
    }
    let answers = futures_util::future::join_all(tasks).await;
    let mut bought = 0;
    for (cancel, buy) in &answers {
        let placed = buy.assert_status(201);
        bought += placed["filled_points"].as_i64().unwrap();
        match cancel.status.as_u16() {
            200 => assert_eq!(cancel.body["status"], "cancelled"),
            409 => assert_eq!(cancel.code(), "invalid_state"),
            s => panic!("cancel answered {s}: {}", cancel.text),
        }
    }
    let mut points = 0;
    let mut fen = 0;
    for token in sellers.iter().chain(&buyers) {
        points += app.balance(token).await;
        fen += cash(&app, token).await.0;
    }
    assert_eq!(points, 40_000, "points are conserved");
    assert_eq!(fen, 40_000, "cash is conserved (no fee configured)");
    let mut held = 0;
    for token in &buyers {
        held += cash(&app, token).await.1;
    }
    let (bids, _) = book(&app).await;
    let resting_bids: i64 = bids.iter().map(|(price, points)| price * points / 1_000).sum();
    assert_eq!(
        held, resting_bids,
        "buyers hold exactly what their resting orders may still pay"
    );
    assert!(bought <= 8_000);
    assert_verified(&app).await;
}

/// `verify` names the disagreement it finds: money out of the bank account that no confirmed deposit
/// explains, an order whose fills do not sum to what it says, a trade missing its fee, a crossed book.
async fn verify_sees_money_from_nowhere_and_orders_edited_behind_its_back(app: TestApp) {
    let treasury = Treasury::new(&app).await;
    let (seller, seller_id) = app.new_member().await;
    app.grant(&seller_id, 3_000).await;
    let (buyer, buyer_id) = app.new_member().await;
    treasury.fund(&app, &buyer_id, 1_000).await;
    order(&app, &seller, "sell", 1_000, 100).await;
    let bought = order(&app, &buyer, "buy", 1_000, 100).await;
    assert_eq!(bought["status"], "filled");
    order(&app, &seller, "sell", 1_000, 300).await;
    order(&app, &buyer, "buy", 1_000, 200).await;
    assert_verified(&app).await;

    let reported = |fragment: &'static str| {
        let app = &app;
        async move {
            let report = app.verify().await;
            assert!(
                report.mismatches.iter().any(|m| m.contains(fragment)),
                "expected {fragment:?} in {:?}",
                report.mismatches
            );
        }
    };
    let exec = |sql: String| {
        app.with_conn(move |conn| {
            use diesel::RunQueryDsl;
            diesel::sql_query(sql).execute(conn).unwrap();
        })
    };
    // Money created by a transfer from the bank with no deposit behind it: the ledger balances, the cash
    // check does not.
    let buyer_wallet: i64 = buyer_id.parse().unwrap();
    let now = app.state.clock.now_naive();
    app.with_conn(move |conn| {
        let bank = tanhui::cash::accounts::named(conn, tanhui::cash::accounts::BANK).unwrap();
        let cash = tanhui::cash::accounts::of(conn, buyer_wallet).unwrap().unwrap();
        let cause = tanhui::ledger::service::Cause::of("test", "from nowhere");
        tanhui::ledger::service::transfer(
            conn,
            tanhui::ledger::service::Kind::Transfer,
            bank.id,
            cash.id,
            500,
            &cause,
            now,
        )
        .unwrap();
    })
    .await;
    reported("is no confirmed deposit").await;

    let order_id = bought["order_id"].as_str().unwrap().to_string();
    exec(format!(
        "UPDATE market_orders SET filled_points = 0 WHERE id = {order_id}"
    ))
    .await;
    reported("but its trades come to 1000").await;
    exec(format!(
        "UPDATE market_orders SET filled_points = 1000 WHERE id = {order_id}"
    ))
    .await;

    // A trade whose cash shrank: its transfers no longer add up to it.
    exec("UPDATE market_trades SET cash_fen = cash_fen - 1".into()).await;
    reported("fen (to the seller and the fee), not its 99").await;
    exec("UPDATE market_trades SET cash_fen = cash_fen + 1".into()).await;

    // A resting bid moved above the best ask.
    exec("UPDATE market_orders SET price_fen_per_1000 = 400 WHERE side = 'buy' AND status = 'open'".into())
        .await;
    reported("the book is crossed").await;
}
