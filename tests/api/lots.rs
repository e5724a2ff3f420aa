//! Lots and retirement: spends take the soonest-expiring lots and transfers carry them, holds reserve
//! them, expiry happens exactly once with two instances sweeping, retirements are certified, listed and
//! final, and `verify` notices a lot edited behind its back.

use chrono::{Duration, NaiveDateTime};
use serde_json::{json, Value};
use tanhui::ledger::lots::Origin;

use crate::both_backends;
use crate::helpers::{second_instance, verified_payload, TestApp};
use crate::redemptions::{offer_terms, onboard, publish};

both_backends!(
    spends_take_the_soonest_expiring_lots_and_transfers_carry_them,
    holds_reserve_lots_and_give_them_back_or_pass_them_on,
    expired_points_leave_once_with_two_instances_sweeping,
    a_retirement_is_certified_listed_and_final,
    retirements_refuse_bad_input_and_short_wallets,
    verify_sees_a_lot_edited_behind_its_back
);

/// Issues a lot of `points` to `account` expiring `days` from the app's now; returns that expiry.
async fn grant_lot(app: &TestApp, account: &str, points: i64, days: i64) -> NaiveDateTime {
    let account: i64 = account.parse().unwrap();
    let now = app.state.clock.now_naive();
    let expires_at = now + Duration::days(days);
    app.with_conn(move |conn| {
        let origin = Origin::plain("440300", expires_at);
        let cause = tanhui::ledger::service::Cause::of("test", "lot");
        tanhui::ledger::service::issue(conn, &origin, account, points, &cause, now).unwrap();
    })
    .await;
    expires_at
}

/// A wallet's `expiring`, as (points, expiry) pairs.
async fn expiring(app: &TestApp, token: &str) -> Vec<(i64, NaiveDateTime)> {
    let w = app.get("/api/v1/wallet", Some(token)).await;
    w.assert_status(200)["expiring"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let at = chrono::DateTime::parse_from_rfc3339(e["expires_at"].as_str().unwrap()).unwrap();
            (e["points"].as_i64().unwrap(), at.naive_utc())
        })
        .collect()
}

async fn send(app: &TestApp, token: &str, to: &str, points: i64) {
    let key = uuid::Uuid::new_v4().to_string();
    app.post_transfer(token, &key, &json!({"to_account_id": to, "points": points}))
        .await
        .assert_status(201);
}

async fn spends_take_the_soonest_expiring_lots_and_transfers_carry_them(app: TestApp) {
    let (alice, alice_id) = app.new_member().await;
    let (bob, bob_id) = app.new_member().await;
    let late = grant_lot(&app, &alice_id, 100, 30).await;
    let soon = grant_lot(&app, &alice_id, 100, 10).await;
    let middle = grant_lot(&app, &alice_id, 100, 20).await;
    assert_eq!(
        expiring(&app, &alice).await,
        vec![(100, soon), (100, middle), (100, late)]
    );

    send(&app, &alice, &bob_id, 150).await;
    assert_eq!(expiring(&app, &bob).await, vec![(100, soon), (50, middle)]);
    assert_eq!(expiring(&app, &alice).await, vec![(50, middle), (100, late)]);

    // What comes back keeps its expiry, and goes out first again.
    send(&app, &bob, &alice_id, 120).await;
    assert_eq!(
        expiring(&app, &alice).await,
        vec![(100, soon), (70, middle), (100, late)]
    );
    assert_eq!(expiring(&app, &bob).await, vec![(30, middle)]);
    let report = app.verify().await;
    assert!(report.ok(), "{:?}", report.mismatches);
}

/// Redeems `offer` under `key`; returns the held redemption's id.
async fn redeem(app: &TestApp, token: &str, offer: &str, key: &str) -> String {
    let held = app
        .send(
            app.client
                .post(app.url("/api/v1/redemptions"))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&json!({"offer_id": offer})),
        )
        .await;
    held.assert_status(201)["redemption_id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn holds_reserve_lots_and_give_them_back_or_pass_them_on(app: TestApp) {
    let partner = onboard(&app, "transit", &["440300"]).await;
    let offer = publish(&app, &partner, &offer_terms(150, 5, 5)).await;
    let (token, account) = app.new_member().await;
    let soon = grant_lot(&app, &account, 100, 10).await;
    let later = grant_lot(&app, &account, 200, 20).await;

    // A hold reserves the soonest points: only the rest shows as expiring.
    let id = redeem(&app, &token, &offer, "lots-1").await;
    assert_eq!(expiring(&app, &token).await, vec![(150, later)]);

    // Voided, they come back with their expiry.
    app.post(
        &format!("/api/v1/redemptions/{id}/void"),
        &json!({}),
        Some(&token),
    )
    .await
    .assert_status(200);
    assert_eq!(expiring(&app, &token).await, vec![(100, soon), (200, later)]);

    // Captured, they leave for the partner: the capture wrote them off their lots.
    let id = redeem(&app, &token, &offer, "lots-2").await;
    app.signed(
        &partner.key,
        "POST",
        &format!("/api/v1/partner/redemptions/{id}/capture"),
        Some(&json!({})),
    )
    .await
    .assert_status(200);
    assert_eq!(expiring(&app, &token).await, vec![(150, later)]);
    let report = app.verify().await;
    assert!(report.ok(), "{:?}", report.mismatches);
}

async fn expired_points_leave_once_with_two_instances_sweeping(app: TestApp) {
    let other = second_instance(&app).await;
    let (phone, password, _, account) = app.register().await;
    grant_lot(&app, &account, 100, 1).await;
    let kept = grant_lot(&app, &account, 50, 40).await;
    app.clock.advance(Duration::days(2));
    let token = app.token_of(&phone, &password).await;
    let now = app.state.clock.now_naive();

    // Both instances sweep at once (their background sweepers may join in): one transfer, once.
    let (a, b) = (app.state.db.clone(), other.state.db.clone());
    let made = std::thread::scope(|scope| {
        let sweeps = [a, b].map(|db| {
            scope.spawn(move || {
                let mut conn = db.get().unwrap();
                tanhui::ledger::expiry::expire_due(&mut conn, now, 100)
                    .unwrap()
                    .len()
            })
        });
        sweeps.map(|s| s.join().unwrap())
    });
    assert!(made.iter().sum::<usize>() <= 1, "{made:?}");
    let wallet_id: i64 = account.parse().unwrap();
    let expired: Vec<(i64, i64)> = app
        .with_conn(move |conn| {
            use diesel::prelude::*;
            use tanhui::db::schema::transfers::dsl as t;
            t::transfers
                .filter(t::kind.eq("expire"))
                .filter(t::debit_account_id.eq(wallet_id))
                .select((t::amount, t::credit_account_id))
                .load(conn)
                .unwrap()
        })
        .await;
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!(expired[0].0, 100);
    let w = app.get("/api/v1/wallet", Some(&token)).await;
    assert_eq!(w.assert_status(200)["balance"], 50);
    assert_eq!(expiring(&app, &token).await, vec![(50, kept)]);
    let report = app.verify().await;
    assert!(report.ok(), "{:?}", report.mismatches);
}

/// Posts a metro ride for `token` and returns (points, granted grams).
async fn earn(app: &TestApp, token: &str, event: &str) -> (i64, i64) {
    let ride = json!({"client_event_id": event, "activity_type": "transit.metro", "region_code": "440300",
        "evidence": "trace", "occurred_at": chrono::Utc::now().to_rfc3339(),
        "data": {"count": 1, "distance_m": 12345}});
    let stored = app.post_activity(token, &ride).await;
    let stored = stored.assert_status(201);
    assert_eq!(stored["status"], "credited", "{stored}");
    (
        stored["points"].as_i64().unwrap(),
        stored["granted_g"].as_i64().unwrap(),
    )
}

async fn retire(app: &TestApp, token: &str, key: &str, body: &Value) -> crate::helpers::Resp {
    app.send(
        app.client
            .post(app.url("/api/v1/retirements"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body),
    )
    .await
}

async fn a_retirement_is_certified_listed_and_final(app: TestApp) {
    let (token, _) = app.new_member().await;
    let (points, grams) = earn(&app, &token, "retire-1").await;
    assert!(points >= 2 && grams > 0);
    let half = points / 2;
    let body = json!({"points": half, "beneficiary": "绿色工厂有限公司", "reason": "2026 年度碳中和",
        "period_from": "2026-01-01", "period_to": "2026-12-31"});
    let first = retire(&app, &token, "ret-1", &body).await;
    let retired = first.assert_status(201).clone();
    // The grams behind half the points of one lot: its grams pro rata, rounded down.
    let expected_g = (i128::from(grams) * i128::from(half) / i128::from(points)) as i64;
    assert_eq!(retired["reduction_g"], expected_g);
    assert_eq!(retired["points"], half);
    let serial = retired["serial"].as_str().unwrap();
    assert!(serial.starts_with("TH-R-") && serial.len() >= 15, "{serial}");

    // The certificate verifies with nothing but the JWKS, and says what was retired.
    let claims = verified_payload(&app, retired["certificate"].as_str().unwrap())
        .await
        .expect("the certificate verifies");
    assert_eq!(claims["retirement_id"], retired["retirement_id"]);
    assert_eq!(claims["reduction_g"], expected_g);
    assert_eq!(claims["points"], half);
    assert_eq!(claims["beneficiary"], "绿色工厂有限公司");
    assert_eq!(claims["serial"], serial);

    // A retry is answered the same retirement; the points left once.
    let again = retire(&app, &token, "ret-1", &body).await;
    assert_eq!(
        again.assert_status(201)["retirement_id"],
        retired["retirement_id"]
    );
    let w = app.get("/api/v1/wallet", Some(&token)).await;
    assert_eq!(w.assert_status(200)["balance"], points - half);

    // Listed publicly, as JSON and CSV, with no account or person in it.
    app.replica_settled().await;
    let id = retired["retirement_id"].as_str().unwrap();
    let list = app.get("/api/v1/public/retirements?limit=200", None).await;
    let listed = list.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["retirement_id"] == id)
        .cloned()
        .expect("listed");
    assert_eq!(listed["serial"], serial);
    assert!(listed.get("account_id").is_none() && listed.get("certificate").is_none());
    let csv = app
        .send(
            app.client
                .get(app.url("/api/v1/public/retirements"))
                .header("Accept", "text/csv"),
        )
        .await;
    csv.assert_status(200);
    assert!(csv
        .text
        .starts_with("retirement_id,serial,beneficiary,reason,points,reduction_g"));
    assert!(csv.text.contains(serial));
    let one = app.get(&format!("/api/v1/public/retirements/{id}"), None).await;
    assert_eq!(one.assert_status(200)["certificate"], retired["certificate"]);
    app.get("/api/v1/public/retirements/999999999", None)
        .await
        .assert_problem(404, "not_found");

    // Retired points never move again: the sink is no wallet, and `verify` holds the ledger to that.
    let report = app.verify().await;
    assert!(report.ok(), "{:?}", report.mismatches);
}

async fn retirements_refuse_bad_input_and_short_wallets(app: TestApp) {
    let (token, account) = app.new_member().await;
    grant_lot(&app, &account, 100, 30).await;
    let ok = json!({"points": 10, "beneficiary": "某公司", "reason": "offset"});
    let mut refusals = Vec::new();
    for (field, value) in [
        ("points", json!(0)),
        ("points", json!(-5)),
        ("beneficiary", json!("  ")),
        ("beneficiary", json!("x".repeat(65))),
        ("beneficiary", json!("a\u{202E}b")),
        ("reason", json!("")),
        ("reason", json!("r".repeat(501))),
        ("period_from", json!("2026-13-01")),
    ] {
        let mut body = ok.clone();
        body[field] = value;
        if field == "period_from" {
            body["period_to"] = json!("2026-12-31");
        }
        refusals.push((
            field,
            retire(&app, &token, &uuid::Uuid::new_v4().to_string(), &body).await,
        ));
    }
    for (field, r) in refusals {
        r.assert_problem(422, "validation_failed");
        assert!(r.text.contains(field), "{field}: {}", r.text);
    }
    let backwards = json!({"points": 10, "beneficiary": "某公司", "reason": "offset",
        "period_from": "2026-12-31", "period_to": "2026-01-01"});
    retire(&app, &token, "backwards", &backwards)
        .await
        .assert_problem(422, "validation_failed");
    let more = json!({"points": 101, "beneficiary": "某公司", "reason": "offset"});
    retire(&app, &token, "too-much", &more)
        .await
        .assert_problem(409, "insufficient_funds");
    // Without a key, nothing is retired.
    let r = app.post("/api/v1/retirements", &ok, Some(&token)).await;
    assert_eq!(r.status, 400);
    let admin = app.admin_token().await;
    retire(&app, &admin, "admin", &ok).await.assert_status(403);
    let w = app.get("/api/v1/wallet", Some(&token)).await;
    assert_eq!(w.assert_status(200)["balance"], 100);
}

async fn verify_sees_a_lot_edited_behind_its_back(app: TestApp) {
    let (token, account) = app.new_member().await;
    let (bob, bob_id) = app.new_member().await;
    grant_lot(&app, &account, 100, 30).await;
    grant_lot(&app, &account, 40, 10).await;
    send(&app, &token, &bob_id, 60).await;
    send(&app, &bob, &account, 10).await;
    let report = app.verify().await;
    assert!(report.ok(), "{:?}", report.mismatches);
    let bob_wallet: i64 = bob_id.parse().unwrap();

    // One more point in a holding: the wallet's lots no longer sum to its balance, nor the lot to its points.
    app.with_conn(move |conn| {
        use diesel::RunQueryDsl;
        diesel::sql_query(format!(
            "UPDATE lot_holdings SET points = points + 1 WHERE account_id = {bob_wallet}"
        ))
        .execute(conn)
        .unwrap();
    })
    .await;
    let report = app.verify().await;
    let said = report.mismatches.join("\n");
    assert!(said.contains(&format!("wallet {bob_wallet} holds")), "{said}");
    assert!(said.contains("its holdings and exits come to"), "{said}");
}
