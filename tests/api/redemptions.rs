//! Partners, offers and redemptions: onboarding and keys, the offer list, holds and vouchers, capture,
//! void and expiry racing, stock and limits under concurrency, settlements.

use chrono::{Duration, Utc};
use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{second_instance, Key, Resp, TestApp};

both_backends!(
    a_user_redeems_and_the_partner_captures_by_voucher,
    offers_are_listed_by_kind_and_region,
    vouchers_verify_offline_with_the_jwks,
    stock_is_taken_atomically,
    a_restock_racing_a_redemption_does_not_sell_out,
    per_user_limits_count_held_and_captured,
    capture_void_and_expiry_have_one_winner,
    uncaptured_holds_expire_and_give_stock_back,
    a_held_redemption_expires_once_the_clock_passes_its_ttl,
    a_redemption_that_cannot_expire_holds_up_no_other,
    a_refused_redemption_is_refused_again_when_retried,
    partners_touch_only_their_own,
    offers_published_under_a_key_are_published_once,
    bad_offers_and_requests_move_nothing,
    keys_rotate_and_revoke,
    settlement_totals_after_a_mixed_sequence,
    visitors_redeem_unless_an_offer_is_kept_for_residents
);

pub struct Partner {
    pub key: Key,
    pub id: String,
}

pub async fn onboard(app: &TestApp, kind: &str, regions: &[&str]) -> Partner {
    let admin = app.admin_token().await;
    let r = app
        .post(
            "/api/v1/admin/partners",
            &json!({"name": format!("{kind} partner"), "kind": kind, "region_codes": regions}),
            Some(&admin),
        )
        .await;
    let body = r.assert_status(201);
    Partner {
        key: Key::from_credentials(body),
        id: body["partner_id"].as_str().unwrap().to_string(),
    }
}

pub fn offer_terms(points_cost: i64, stock: i64, per_user_limit: i64) -> Value {
    json!({
        "title": "地铁一日票", "description": "Unlimited metro rides for a day",
        "points_cost": points_cost, "stock": stock, "per_user_limit": per_user_limit,
        "valid_from": (Utc::now() - Duration::days(1)).to_rfc3339(),
        "valid_to": (Utc::now() + Duration::days(30)).to_rfc3339(),
        "region_codes": ["440300"],
    })
}

pub async fn publish(app: &TestApp, partner: &Partner, terms: &Value) -> String {
    let r = app
        .signed(&partner.key, "POST", "/api/v1/partner/offers", Some(terms))
        .await;
    r.assert_status(201)["id"].as_str().unwrap().to_string()
}

/// A member homed in Beijing holding `points`; returns its token.
async fn beijing_member(app: &TestApp, points: i64) -> String {
    let phone = crate::helpers::random_phone();
    let registered = app
        .post(
            "/api/v1/auth/register",
            &json!({"phone": phone, "password": "correct horse battery", "display_name": "北京用户",
                "account_type": "individual", "region_code": "110000"}),
            None,
        )
        .await;
    let account = registered.assert_status(201)["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    app.grant(&account, points).await;
    app.token_of(&phone, "correct horse battery").await
}

/// A Shenzhen member holding `points`; returns (token, account id).
async fn member_with(app: &TestApp, points: i64) -> (String, String) {
    let (token, account) = app.new_member().await;
    if points > 0 {
        app.grant(&account, points).await;
    }
    (token, account)
}

async fn redeem(app: &TestApp, token: &str, offer_id: &str, key: &str) -> Resp {
    app.send(
        app.client
            .post(app.url("/api/v1/redemptions"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({"offer_id": offer_id})),
    )
    .await
}

async fn redeem_new(app: &TestApp, token: &str, offer_id: &str) -> Resp {
    redeem(app, token, offer_id, &uuid::Uuid::new_v4().to_string()).await
}

async fn wallet(app: &TestApp, token: &str) -> Value {
    app.get("/api/v1/wallet", Some(token))
        .await
        .assert_status(200)
        .clone()
}

/// Waits for the sweeper (it runs every `expiry_sweep_interval_ms`; this waits for it, not for time to
/// pass) to expire redemption `id`, then checks that its 300 points and its unit of stock came back.
async fn expect_expired_and_returned(app: &TestApp, token: &str, id: &str, offer_id: &str) {
    let mut status = String::new();
    for _ in 0..50 {
        let r = app.get(&format!("/api/v1/redemptions/{id}"), Some(token)).await;
        status = r.body["status"].as_str().unwrap().to_string();
        if status == "expired" {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "expired");
    let w = wallet(app, token).await;
    assert_eq!((w["balance"].as_i64(), w["held"].as_i64()), (Some(300), Some(0)));
    assert_eq!(offer(app, offer_id).await["stock"], 1);
}

/// The offer as the public reads it, once the replica (if any) has every earlier write.
async fn offer(app: &TestApp, id: &str) -> Value {
    app.replica_settled().await;
    app.get(&format!("/api/v1/offers/{id}"), None)
        .await
        .assert_status(200)
        .clone()
}

async fn capture(app: &TestApp, partner: &Partner, redemption: &str) -> Resp {
    let path = format!("/api/v1/partner/redemptions/{redemption}/capture");
    app.signed(&partner.key, "POST", &path, None).await
}

/// Moves a redemption's expiry, and its hold's timeout with it, to `from_now`.
async fn expire_at(app: &TestApp, id: i64, from_now: Duration) {
    let at = app.state.clock.now_naive() + from_now;
    app.with_conn(move |conn| {
        use diesel::prelude::*;
        use tanhui::db::schema::{pending_holds, redemptions};
        let hold: i64 = diesel::update(redemptions::table.find(id))
            .set(redemptions::expires_at.eq(at))
            .returning(redemptions::hold_id.assume_not_null())
            .get_result(conn)
            .unwrap();
        diesel::update(pending_holds::table.find(hold))
            .set(pending_holds::timeout_at.eq(at))
            .execute(conn)
            .unwrap();
    })
    .await
}

async fn ledger_verifies(app: &TestApp) {
    let mismatches = app.verify().await.mismatches;
    assert!(mismatches.is_empty(), "{mismatches:?}");
}

async fn a_user_redeems_and_the_partner_captures_by_voucher(app: TestApp) {
    let partner = onboard(&app, "transit", &["440000"]).await;
    let offer_id = publish(&app, &partner, &offer_terms(500, 10, 2)).await;
    let (token, _) = member_with(&app, 1200).await;

    let missing_key = app
        .post(
            "/api/v1/redemptions",
            &json!({"offer_id": offer_id}),
            Some(&token),
        )
        .await;
    missing_key.assert_problem(400, "idempotency_key_required");

    let r = redeem(&app, &token, &offer_id, "buy-1").await;
    let held = r.assert_status(201).clone();
    assert_eq!(held["status"], "held");
    assert_eq!(held["points"], 500);
    assert!(held["voucher"].as_str().unwrap().split('.').count() == 3);
    let expires: chrono::DateTime<Utc> = held["expires_at"].as_str().unwrap().parse().unwrap();
    assert!((expires - Utc::now() - Duration::hours(24)).num_seconds().abs() < 60);
    let w = wallet(&app, &token).await;
    assert_eq!(
        (w["balance"].as_i64(), w["held"].as_i64(), w["available"].as_i64()),
        (Some(1200), Some(500), Some(700))
    );
    assert_eq!(offer(&app, &offer_id).await["stock"], 9);

    // A retry answers the original; another body under the same key is a conflict.
    let replay = redeem(&app, &token, &offer_id, "buy-1").await;
    assert_eq!(replay.assert_status(201), &held);
    redeem(&app, &token, "999999", "buy-1")
        .await
        .assert_problem(409, "idempotency_conflict");
    assert_eq!(offer(&app, &offer_id).await["stock"], 9);

    let listed = app.get("/api/v1/redemptions", Some(&token)).await;
    assert_eq!(listed.assert_status(200)["items"][0]["voucher"], held["voucher"]);

    let captured = app
        .signed(
            &partner.key,
            "POST",
            "/api/v1/partner/vouchers/redeem",
            Some(&json!({"voucher": held["voucher"]})),
        )
        .await;
    assert_eq!(captured.assert_status(200)["status"], "captured");
    assert!(captured.body["voucher"].is_null());
    let w = wallet(&app, &token).await;
    assert_eq!(
        (
            w["balance"].as_i64(),
            w["held"].as_i64(),
            w["spent_total"].as_i64()
        ),
        (Some(700), Some(0), Some(500))
    );
    let id = held["redemption_id"].as_str().unwrap();
    capture(&app, &partner, id)
        .await
        .assert_problem(409, "invalid_state");
    app.post(
        &format!("/api/v1/redemptions/{id}/void"),
        &json!({}),
        Some(&token),
    )
    .await
    .assert_problem(409, "invalid_state");
    let mine = app.get(&format!("/api/v1/redemptions/{id}"), Some(&token)).await;
    assert_eq!(mine.assert_status(200)["status"], "captured");
    ledger_verifies(&app).await;
}

async fn offers_are_listed_by_kind_and_region(app: TestApp) {
    let transit = onboard(&app, "transit", &["440000"]).await;
    let scenic = onboard(&app, "scenic", &["CN"]).await;
    let shenzhen = publish(&app, &transit, &offer_terms(100, 5, 1)).await;
    let mut national = offer_terms(300, 5, 1);
    national["region_codes"] = json!(["CN"]);
    national["title"] = json!("黄山门票");
    let everywhere = publish(&app, &scenic, &national).await;
    let mut future = offer_terms(100, 5, 1);
    future["valid_from"] = json!((Utc::now() + Duration::days(2)).to_rfc3339());
    let later = publish(&app, &transit, &future).await;

    let ids = |r: &Resp| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect()
    };
    let all = app.get("/api/v1/offers", None).await;
    all.assert_status(200);
    assert_eq!(ids(&all), [everywhere.clone(), shenzhen.clone()]);
    // A filter template sent as it stands (parameters with no value) is no filter.
    let template = app
        .get("/api/v1/offers?kind=&region_code=&limit=&cursor=", None)
        .await;
    template.assert_status(200);
    assert_eq!(ids(&template), ids(&all));
    assert!(!ids(&all).contains(&later), "not valid yet");
    let sz = app.get("/api/v1/offers?region_code=440300", None).await;
    assert_eq!(ids(&sz), [everywhere.clone(), shenzhen.clone()]);
    let bj = app.get("/api/v1/offers?region_code=110000", None).await;
    assert_eq!(ids(&bj), vec![everywhere.clone()]);
    let kind = app.get("/api/v1/offers?kind=transit", None).await;
    assert_eq!(ids(&kind), vec![shenzhen.clone()]);
    assert_eq!(kind.body["items"][0]["kind"], "transit");
    assert_eq!(kind.body["items"][0]["region_codes"], json!(["440300"]));
    let page = app.get("/api/v1/offers?limit=1", None).await;
    let cursor = page.body["next_cursor"].as_str().unwrap().to_string();
    let next = app
        .get(&format!("/api/v1/offers?limit=1&cursor={cursor}"), None)
        .await;
    assert_eq!(ids(&next), vec![shenzhen.clone()]);
    app.get("/api/v1/offers?kind=airline", None)
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/v1/offers?region_code=999999", None)
        .await
        .assert_problem(422, "validation_failed");

    // The partner sees its own offers, the future one included; withdrawing one hides it.
    let own = app
        .signed(&transit.key, "GET", "/api/v1/partner/offers", None)
        .await;
    assert_eq!(ids(&own), [later, shenzhen.clone()]);
    let path = format!("/api/v1/partner/offers/{shenzhen}");
    let patched = app
        .signed(
            &transit.key,
            "PATCH",
            &path,
            Some(&json!({"active": false, "stock": 3})),
        )
        .await;
    assert_eq!(patched.assert_status(200)["active"], false);
    assert_eq!(patched.body["stock"], 3);
    let all = app.get("/api/v1/offers", None).await;
    assert_eq!(ids(&all), [everywhere]);
}

async fn vouchers_verify_offline_with_the_jwks(app: TestApp) {
    let bank = onboard(&app, "green_credit", &["CN"]).await;
    let mut terms = offer_terms(2000, 5, 1);
    terms["title"] = json!("碳抵贷利息抵扣");
    terms["region_codes"] = json!(["CN"]);
    // No value stated: green-credit offers must say what they are worth.
    app.signed(&bank.key, "POST", "/api/v1/partner/offers", Some(&terms))
        .await
        .assert_problem(422, "validation_failed");
    terms["value_fen"] = json!(400);
    let offer_id = publish(&app, &bank, &terms).await;
    let (token, _) = member_with(&app, 2000).await;
    let held = redeem_new(&app, &token, &offer_id)
        .await
        .assert_status(201)
        .clone();
    assert_eq!(held["value_fen"], 400);

    // Only the published key is needed: a gate fetches the JWKS once and checks vouchers offline.
    let jwks = app.get("/.well-known/jwks.json", None).await;
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(jwks.assert_status(200)["keys"][0].clone()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&[format!("partner:{}", bank.id)]);
    validation.set_issuer(&["tanhui"]);
    let voucher = held["voucher"].as_str().unwrap();
    let claims = jsonwebtoken::decode::<Value>(voucher, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], held["redemption_id"]);
    assert_eq!(claims["offer_id"], json!(offer_id));
    assert_eq!(claims["partner_id"], json!(bank.id));
    assert_eq!(
        (claims["points"].as_i64(), claims["value_fen"].as_i64()),
        (Some(2000), Some(400))
    );
    assert_eq!(
        jsonwebtoken::decode_header(voucher).unwrap().kid.as_deref(),
        jwk.common.key_id.as_deref()
    );
    // The same key is the ledger's public key.
    let ledger_key = app.get("/api/v1/public/ledger/key", None).await;
    assert_eq!(ledger_key.body["public_key_base64url"], jwks.body["keys"][0]["x"]);
    // A changed claim breaks the signature.
    let parts: Vec<&str> = voucher.split('.').collect();
    let forged_claims = serde_json::to_vec(&json!({"sub": claims["sub"], "points": 1})).unwrap();
    use base64::Engine;
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged_claims),
        parts[2]
    );
    assert!(jsonwebtoken::decode::<Value>(&forged, &key, &validation).is_err());
}

async fn stock_is_taken_atomically(app: TestApp) {
    let partner = onboard(&app, "scenic", &["440300"]).await;
    let offer_id = publish(&app, &partner, &offer_terms(100, 2, 1)).await;
    let mut buyers = Vec::new();
    for _ in 0..8 {
        buyers.push(member_with(&app, 100).await);
    }
    // Two instances on one database, as behind a load balancer.
    let other = second_instance(&app).await;
    let attempts = buyers.iter().enumerate().map(|(i, (token, _))| {
        let instance = if i % 2 == 1 { &other } else { &app };
        redeem_new(instance, token, &offer_id)
    });
    let results = join_all(attempts).await;
    let won = results.iter().filter(|r| r.status.as_u16() == 201).count();
    let sold_out = results.iter().filter(|r| r.code() == "out_of_stock").count();
    assert_eq!(
        (won, sold_out),
        (2, 6),
        "{:?}",
        results.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert_eq!(offer(&app, &offer_id).await["stock"], 0);
    let mut held = 0;
    for (token, _) in &buyers {
        held += wallet(&app, token).await["held"].as_i64().unwrap();
    }
    assert_eq!(held, 200, "only the two winners hold points");

    // A void gives the unit back.
    let winner = results.iter().find(|r| r.status.as_u16() == 201).unwrap();
    let id = winner.body["redemption_id"].as_str().unwrap();
    let path = format!("/api/v1/partner/redemptions/{id}/void");
    let voided = app.signed(&partner.key, "POST", &path, None).await;
    assert_eq!(voided.assert_status(200)["status"], "voided");
    assert_eq!(offer(&app, &offer_id).await["stock"], 1);
    ledger_verifies(&app).await;
}

/// A restock replaces the offer's buckets. A redemption that read the old ones and waits on a row the
/// restock deletes must find the new stock, not answer (and store under its key) `out_of_stock`.
async fn a_restock_racing_a_redemption_does_not_sell_out(app: TestApp) {
    let partner = onboard(&app, "scenic", &["440300"]).await;
    let offer_id = publish(&app, &partner, &offer_terms(100, 1, 1)).await;
    let (token, _) = member_with(&app, 100).await;
    let offer_row: i64 = offer_id.parse().unwrap();
    let (restocked_tx, restocked_rx) = tokio::sync::oneshot::channel();
    let (commit_tx, commit_rx) = std::sync::mpsc::channel::<()>();
    let db = app.state.db.clone();
    let restock = std::thread::spawn(move || {
        let mut conn = db.get().unwrap();
        tanhui::db::transaction(&mut conn, tanhui::db::Tx::Write, |conn| {
            tanhui::offers::stock::set(conn, offer_row, 100)?;
            restocked_tx.send(()).unwrap();
            commit_rx.recv().unwrap();
            diesel::QueryResult::Ok(())
        })
        .unwrap();
    });
    restocked_rx.await.unwrap();
    // The redemption waits for the restock's lock (a bucket row on PostgreSQL, the database on SQLite);
    // the restock commits while it waits.
    let (redeemed, ()) = tokio::join!(redeem_new(&app, &token, &offer_id), async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        commit_tx.send(()).unwrap();
    });
    restock.join().unwrap();
    assert_eq!(redeemed.assert_status(201)["status"], "held");
    assert_eq!(offer(&app, &offer_id).await["stock"], 99);
    ledger_verifies(&app).await;
}

async fn per_user_limits_count_held_and_captured(app: TestApp) {
    let partner = onboard(&app, "transit", &["440300"]).await;
    let offer_id = publish(&app, &partner, &offer_terms(100, 100, 2)).await;
    let (token, _) = member_with(&app, 1000).await;
    // Ten at once from one account: the limit holds under concurrency too.
    let results = join_all((0..10).map(|_| redeem_new(&app, &token, &offer_id))).await;
    let won: Vec<&Resp> = results.iter().filter(|r| r.status.as_u16() == 201).collect();
    assert_eq!(won.len(), 2);
    assert!(results
        .iter()
        .filter(|r| r.status.as_u16() != 201)
        .all(|r| r.code() == "limit_reached"));
    // Captured still counts; voided does not.
    capture(&app, &partner, won[0].body["redemption_id"].as_str().unwrap())
        .await
        .assert_status(200);
    redeem_new(&app, &token, &offer_id)
        .await
        .assert_problem(409, "limit_reached");
    let id = won[1].body["redemption_id"].as_str().unwrap();
    let voided = app
        .post(
            &format!("/api/v1/redemptions/{id}/void"),
            &json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(voided.assert_status(200)["status"], "voided");
    redeem_new(&app, &token, &offer_id).await.assert_status(201);
    assert_eq!(offer(&app, &offer_id).await["stock"], 98);
}

async fn capture_void_and_expiry_have_one_winner(app: TestApp) {
    let partner = onboard(&app, "transit", &["440300"]).await;
    let offer_id = publish(&app, &partner, &offer_terms(10, 1000, 100)).await;
    let (token, _) = member_with(&app, 1000).await;
    let other = second_instance(&app).await;
    let rounds = 12;
    let mut outcomes: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for round in 0..rounds {
        let held = redeem_new(&app, &token, &offer_id)
            .await
            .assert_status(201)
            .clone();
        let id = held["redemption_id"].as_str().unwrap().to_string();
        let redemption: i64 = id.parse().unwrap();
        // Every third round the hold runs out just as the others try: the sweeper joins the race, and
        // everyone acts within a few milliseconds of the deadline.
        let sweep = round % 3 == 2;
        if sweep {
            expire_at(&app, redemption, Duration::milliseconds(100)).await;
        }
        let near_deadline = || async move {
            if sweep {
                let ms = 90 + rand::random::<u64>() % 20;
                actix_web::rt::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
        };
        let void_path = format!("/api/v1/partner/redemptions/{id}/void");
        let user_void = format!("/api/v1/redemptions/{id}/void");
        let sweeper = async {
            if !sweep {
                return 0;
            }
            near_deadline().await;
            let now = app.state.clock.now_naive();
            app.with_conn(move |conn| tanhui::redemptions::service::expire_due(conn, now, 100).unwrap())
                .await
        };
        let (a, b, c, swept) = futures_util::future::join4(
            async {
                near_deadline().await;
                capture(&app, &partner, &id).await
            },
            async {
                near_deadline().await;
                other.signed(&partner.key, "POST", &void_path, None).await
            },
            async {
                near_deadline().await;
                other.post(&user_void, &json!({}), Some(&token)).await
            },
            sweeper,
        )
        .await;
        let winners = [&a, &b, &c]
            .into_iter()
            .filter(|r| r.status.as_u16() == 200)
            .count();
        assert!(winners + swept <= 1, "{} | {} | {}", a.text, b.text, c.text);
        for loser in [&a, &b, &c].into_iter().filter(|r| r.status.as_u16() != 200) {
            loser.assert_problem(409, "invalid_state");
        }
        if winners + swept == 0 {
            // The racers came after the deadline, or the sweep before it: the hold is still held (or a
            // background sweeper took it). Past the deadline, a sweep must end it as expired.
            app.clock.advance(Duration::milliseconds(120));
            let now = app.state.clock.now_naive();
            app.with_conn(move |conn| tanhui::redemptions::service::expire_due(conn, now, 100).unwrap())
                .await;
        }
        let status = app
            .get(&format!("/api/v1/redemptions/{id}"), Some(&token))
            .await
            .body["status"]
            .as_str()
            .unwrap()
            .to_string();
        if winners + swept == 0 {
            assert_eq!(status, "expired");
        }
        *outcomes.entry(status).or_insert(0) += 1;
    }
    let captured = outcomes.get("captured").copied().unwrap_or(0);
    eprintln!("race outcomes: {outcomes:?}");
    let w = wallet(&app, &token).await;
    assert_eq!(w["balance"], 1000 - 10 * captured);
    assert_eq!(w["held"], 0);
    assert_eq!(offer(&app, &offer_id).await["stock"], 1000 - captured);
    ledger_verifies(&app).await;
}

async fn uncaptured_holds_expire_and_give_stock_back(app: TestApp) {
    let partner = onboard(&app, "scenic", &["440300"]).await;
    let offer_id = publish(&app, &partner, &offer_terms(300, 1, 1)).await;
    let (token, _) = member_with(&app, 300).await;
    let held = redeem_new(&app, &token, &offer_id)
        .await
        .assert_status(201)
        .clone();
    let id: i64 = held["redemption_id"].as_str().unwrap().parse().unwrap();
    // As if a day had passed; the background sweeper does the rest.
    expire_at(&app, id, Duration::seconds(-1)).await;
    // The voucher is refused at once, before the sweeper runs.
    capture(&app, &partner, &id.to_string())
        .await
        .assert_problem(409, "invalid_state");
    expect_expired_and_returned(&app, &token, &id.to_string(), &offer_id).await;
    let transfers = app.get("/api/v1/wallet/transfers", Some(&token)).await;
    assert_eq!(transfers.body["items"][0]["kind"], "expire");
    // The points and the unit are free again.
    redeem_new(&app, &token, &offer_id).await.assert_status(201);
    ledger_verifies(&app).await;
}

/// Nothing but time: once the clock passes the hold's time to live (the setting, a day), the sweeper
/// expires the redemption, its points come back and its voucher no longer captures.
async fn a_held_redemption_expires_once_the_clock_passes_its_ttl(app: TestApp) {
    let partner = onboard(&app, "scenic", &["440300"]).await;
    let offer_id = publish(&app, &partner, &offer_terms(300, 1, 1)).await;
    let (phone, password, _, account) = app.register().await;
    app.grant(&account, 300).await;
    let token = app.token_of(&phone, &password).await;
    let held = redeem_new(&app, &token, &offer_id)
        .await
        .assert_status(201)
        .clone();
    let id = held["redemption_id"].as_str().unwrap().to_string();
    let ttl = Duration::seconds(app.settings.redemptions.hold_ttl_secs as i64);
    app.clock.advance(ttl - Duration::minutes(1));
    // Access tokens expire by the same clock: sign in again after each move.
    let token = app.token_of(&phone, &password).await;
    assert_eq!(wallet(&app, &token).await["held"], 300);
    app.clock.advance(Duration::minutes(1) + Duration::seconds(1));
    let token = app.token_of(&phone, &password).await;
    capture(&app, &partner, &id)
        .await
        .assert_problem(409, "invalid_state");
    expect_expired_and_returned(&app, &token, &id, &offer_id).await;
    ledger_verifies(&app).await;
}

async fn a_redemption_that_cannot_expire_holds_up_no_other(app: TestApp) {
    let partner = onboard(&app, "scenic", &["440300"]).await;
    let offer_id = publish(&app, &partner, &offer_terms(100, 2, 2)).await;
    let (token, _) = member_with(&app, 200).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let held = redeem_new(&app, &token, &offer_id).await;
        ids.push(
            held.assert_status(201)["redemption_id"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .unwrap(),
        );
    }
    let (broken, sound) = (ids[0], ids[1]);
    // The older one's hold is no longer pending in the ledger (as if edited by hand): it cannot expire,
    // and it is first in line.
    expire_at(&app, broken, Duration::seconds(-2)).await;
    app.with_conn(move |conn| {
        use diesel::prelude::*;
        use tanhui::db::schema::{pending_holds, redemptions};
        let hold: i64 = redemptions::table
            .find(broken)
            .select(redemptions::hold_id.assume_not_null())
            .get_result(conn)
            .unwrap();
        diesel::delete(pending_holds::table.find(hold))
            .execute(conn)
            .unwrap();
    })
    .await;
    expire_at(&app, sound, Duration::seconds(-1)).await;
    let status = |id: i64| {
        let (app, token) = (&app, &token);
        async move {
            let r = app.get(&format!("/api/v1/redemptions/{id}"), Some(token)).await;
            r.body["status"].as_str().unwrap().to_string()
        }
    };
    // The background sweeper expires the later one all the same.
    for _ in 0..50 {
        if status(sound).await == "expired" {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status(sound).await, "expired");
    assert_eq!(status(broken).await, "held");
}

/// A refusal is the answer stored under the request's key: retried after the points have come, the same
/// request is refused again and takes nothing; a new key is a new redemption.
async fn a_refused_redemption_is_refused_again_when_retried(app: TestApp) {
    let partner = onboard(&app, "scenic", &["440300"]).await;
    let offer_id = publish(&app, &partner, &offer_terms(100, 5, 5)).await;
    let (token, account) = member_with(&app, 60).await;
    redeem(&app, &token, &offer_id, "first")
        .await
        .assert_problem(409, "insufficient_funds");
    app.grant(&account, 100).await;
    let retry = redeem(&app, &token, &offer_id, "first").await;
    retry.assert_problem(409, "insufficient_funds");
    assert_eq!(retry.content_type(), "application/problem+json");
    let w = wallet(&app, &token).await;
    assert_eq!((w["balance"].as_i64(), w["held"].as_i64()), (Some(160), Some(0)));
    assert_eq!(offer(&app, &offer_id).await["stock"], 5);
    redeem(&app, &token, &offer_id, "second").await.assert_status(201);
    assert_eq!(offer(&app, &offer_id).await["stock"], 4);
    ledger_verifies(&app).await;
}

async fn partners_touch_only_their_own(app: TestApp) {
    let mine = onboard(&app, "transit", &["440300"]).await;
    let theirs = onboard(&app, "transit", &["440300"]).await;
    let offer_id = publish(&app, &mine, &offer_terms(100, 10, 5)).await;
    let (token, _) = member_with(&app, 1000).await;
    let held = redeem_new(&app, &token, &offer_id)
        .await
        .assert_status(201)
        .clone();
    let id = held["redemption_id"].as_str().unwrap();

    let thief = Partner {
        key: theirs.key.clone(),
        id: theirs.id.clone(),
    };
    capture(&app, &thief, id).await.assert_problem(404, "not_found");
    let path = format!("/api/v1/partner/redemptions/{id}/void");
    app.signed(&theirs.key, "POST", &path, None)
        .await
        .assert_problem(404, "not_found");
    app.signed(
        &theirs.key,
        "POST",
        "/api/v1/partner/vouchers/redeem",
        Some(&json!({"voucher": held["voucher"]})),
    )
    .await
    .assert_problem(404, "not_found");
    app.signed(
        &theirs.key,
        "PATCH",
        &format!("/api/v1/partner/offers/{offer_id}"),
        Some(&json!({"stock": 0})),
    )
    .await
    .assert_problem(404, "not_found");
    let theirs_listed = app
        .signed(&theirs.key, "GET", "/api/v1/partner/redemptions", None)
        .await;
    assert_eq!(theirs_listed.assert_status(200)["items"], json!([]));
    // Another user cannot void it either.
    let (stranger, _) = member_with(&app, 0).await;
    app.post(
        &format!("/api/v1/redemptions/{id}/void"),
        &json!({}),
        Some(&stranger),
    )
    .await
    .assert_problem(404, "not_found");
    app.get(&format!("/api/v1/redemptions/{id}"), Some(&stranger))
        .await
        .assert_problem(404, "not_found");
    // Unsigned, replayed and user-token calls are refused.
    app.post("/api/v1/partner/offers", &offer_terms(1, 1, 1), Some(&token))
        .await
        .assert_problem(401, "signature_missing");
    let once = mine.key.fresh();
    let settle = "/api/v1/partner/settlements?from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z";
    app.send_signed(&once, "GET", settle, None, &[])
        .await
        .assert_status(200);
    app.send_signed(&once, "GET", settle, None, &[])
        .await
        .assert_problem(401, "nonce_replayed");
    // A provider's key is not a partner's.
    let admin = app.admin_token().await;
    let provider = app
        .post(
            "/api/v1/admin/providers",
            &json!({"name": "bikes", "kind": "bikeshare"}),
            Some(&admin),
        )
        .await;
    let provider_key = Key::from_credentials(provider.assert_status(201));
    app.signed(&provider_key, "GET", "/api/v1/partner/offers", None)
        .await
        .assert_problem(401, "unknown_key");
    // Still held and intact after all that.
    let w = wallet(&app, &token).await;
    assert_eq!(
        (w["held"].as_i64(), offer(&app, &offer_id).await["stock"].as_i64()),
        (Some(100), Some(9))
    );
}

/// A partner's retry of a publication under its Idempotency-Key is answered the offer it published, not
/// a second offer with a stock of its own.
async fn offers_published_under_a_key_are_published_once(app: TestApp) {
    let partner = onboard(&app, "scenic", &["440300"]).await;
    let terms = offer_terms(100, 5, 1);
    let publish_under = |key: &'static str, terms: Value| {
        let app = &app;
        let signing = partner.key.fresh();
        async move {
            let headers = [("Idempotency-Key", key)];
            app.send_signed(&signing, "POST", "/api/v1/partner/offers", Some(&terms), &headers)
                .await
        }
    };
    let first = publish_under("offer-1", terms.clone()).await;
    let published = first.assert_status(201).clone();
    let again = publish_under("offer-1", terms.clone()).await;
    assert_eq!(again.assert_status(201), &published);
    let mut other = terms.clone();
    other["stock"] = json!(6);
    publish_under("offer-1", other)
        .await
        .assert_problem(409, "idempotency_conflict");
    let mine = app
        .signed(&partner.key, "GET", "/api/v1/partner/offers", None)
        .await;
    assert_eq!(mine.assert_status(200)["items"].as_array().unwrap().len(), 1);
    let second = publish_under("offer-2", terms).await;
    assert_ne!(second.assert_status(201)["id"], published["id"]);
}

async fn bad_offers_and_requests_move_nothing(app: TestApp) {
    let partner = onboard(&app, "scenic", &["440000"]).await;
    let create = |terms: Value| {
        let key = partner.key.clone();
        let app = &app;
        async move {
            app.signed(&key, "POST", "/api/v1/partner/offers", Some(&terms))
                .await
        }
    };
    for (field, value) in [
        ("points_cost", json!(-5)),
        ("points_cost", json!(0)),
        ("stock", json!(-1)),
        ("per_user_limit", json!(0)),
        ("valid_to", json!((Utc::now() - Duration::days(3)).to_rfc3339())),
        ("region_codes", json!(["999999"])),
        ("region_codes", json!(["110000"])),
        ("region_codes", json!([])),
    ] {
        let mut terms = offer_terms(100, 5, 1);
        terms[field] = value;
        let r = create(terms).await;
        r.assert_problem(422, "validation_failed");
        assert_eq!(r.body["errors"][0]["field"], field, "{}", r.text);
    }
    let mut no_offset = offer_terms(100, 5, 1);
    no_offset["valid_from"] = json!("2026-01-01T00:00:00");
    assert!(create(no_offset).await.status.is_client_error());
    let mut wrong_type = offer_terms(100, 5, 1);
    wrong_type["stock"] = json!("many");
    create(wrong_type).await.assert_problem(422, "validation_failed");
    // A year past 9999 in UTC (SQLite would sort its text first), and an end a tenth of a microsecond
    // after the start (PostgreSQL would store the two equal): refused like any other bad time.
    let mut year_10000 = offer_terms(100, 5, 1);
    year_10000["valid_to"] = json!("9999-12-31T23:00:00-01:00");
    let r = create(year_10000).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "valid_to", "{}", r.text);
    let mut instant = offer_terms(100, 5, 1);
    instant["valid_from"] = json!("2027-01-01T00:00:00.0000001Z");
    instant["valid_to"] = json!("2027-01-01T00:00:00.0000002Z");
    let r = create(instant).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "valid_to", "{}", r.text);
    let own = app
        .signed(&partner.key, "GET", "/api/v1/partner/offers", None)
        .await;
    assert_eq!(own.body["items"], json!([]), "nothing was created");

    let offer_id = publish(&app, &partner, &offer_terms(500, 3, 1)).await;
    let path = format!("/api/v1/partner/offers/{offer_id}");
    let bad_patch = app
        .signed(
            &partner.key,
            "PATCH",
            &path,
            Some(&json!({"valid_to": (Utc::now() - Duration::days(5)).to_rfc3339()})),
        )
        .await;
    bad_patch.assert_problem(422, "validation_failed");
    assert_eq!(offer(&app, &offer_id).await["active"], true);

    // Not enough points: nothing held, no stock taken.
    let (poor, _) = member_with(&app, 499).await;
    redeem_new(&app, &poor, &offer_id)
        .await
        .assert_problem(409, "insufficient_funds");
    assert_eq!(offer(&app, &offer_id).await["stock"], 3);
    assert_eq!(wallet(&app, &poor).await["held"], 0);
    // An offer kept for residents: a Beijing user cannot redeem a Shenzhen one.
    let residents_only = app
        .signed(
            &partner.key,
            "PATCH",
            &path,
            Some(&json!({"residents_only": true})),
        )
        .await;
    assert_eq!(residents_only.assert_status(200)["residents_only"], true);
    let beijing = beijing_member(&app, 5000).await;
    redeem_new(&app, &beijing, &offer_id)
        .await
        .assert_problem(409, "region_not_served");
    let (rich, _) = member_with(&app, 5000).await;
    redeem_new(&app, &rich, "424242")
        .await
        .assert_problem(404, "not_found");
    redeem_new(&app, &rich, "abc")
        .await
        .assert_problem(422, "validation_failed");
    // Withdrawn: offer_inactive.
    app.signed(&partner.key, "PATCH", &path, Some(&json!({"active": false})))
        .await
        .assert_status(200);
    redeem_new(&app, &rich, &offer_id)
        .await
        .assert_problem(409, "offer_inactive");
    assert_eq!(offer(&app, &offer_id).await["stock"], 3);
    assert_eq!(wallet(&app, &rich).await["held"], 0);

    // Vouchers: garbage and tampered ones are invalid; a voucher past its expiry is refused.
    for voucher in ["not-a-voucher", "a.b.c"] {
        app.signed(
            &partner.key,
            "POST",
            "/api/v1/partner/vouchers/redeem",
            Some(&json!({"voucher": voucher})),
        )
        .await
        .assert_problem(422, "invalid_voucher");
    }
    app.signed(&partner.key, "PATCH", &path, Some(&json!({"active": true})))
        .await
        .assert_status(200);
    let held = redeem_new(&app, &rich, &offer_id)
        .await
        .assert_status(201)
        .clone();
    let row = app
        .with_conn({
            let id: i64 = held["redemption_id"].as_str().unwrap().parse().unwrap();
            move |conn| tanhui::redemptions::store::find(conn, id).unwrap().unwrap()
        })
        .await;
    let stale = tanhui::redemptions::store::RedemptionRow {
        expires_at: row.created_at - Duration::seconds(10),
        ..row
    };
    let expired_voucher = tanhui::redemptions::voucher::issue(&app.state.platform_key, &stale);
    app.signed(
        &partner.key,
        "POST",
        "/api/v1/partner/vouchers/redeem",
        Some(&json!({"voucher": expired_voucher})),
    )
    .await
    .assert_problem(409, "voucher_expired");
    assert_eq!(wallet(&app, &rich).await["held"], 500);
    ledger_verifies(&app).await;
}

async fn keys_rotate_and_revoke(app: TestApp) {
    let partner = onboard(&app, "transit", &["440300"]).await;
    let admin = app.admin_token().await;
    let keys_path = format!("/api/v1/admin/partners/{}/keys", partner.id);
    let second = app.post(&keys_path, &json!({}), Some(&admin)).await;
    let second = Key::from_credentials(second.assert_status(201));
    // Both keys work during the rotation; a third is refused.
    for key in [&partner.key, &second] {
        app.signed(key, "GET", "/api/v1/partner/offers", None)
            .await
            .assert_status(200);
    }
    app.post(&keys_path, &json!({}), Some(&admin))
        .await
        .assert_problem(409, "too_many_keys");
    let revoke = format!("{keys_path}/{}/revoke", partner.key.key_id);
    let revoked = app.post(&revoke, &json!({}), Some(&admin)).await;
    let revoked_at = revoked.assert_status(200)["revoked_at"].clone();
    assert!(revoked_at.is_string());
    // Again, by another administrator: the key is answered as it is, and the audit keeps the first revocation.
    let other_admin = app.admin_token().await;
    let again = app.post(&revoke, &json!({}), Some(&other_admin)).await;
    assert_eq!(again.assert_status(200)["revoked_at"], revoked_at);
    app.signed(&partner.key, "GET", "/api/v1/partner/offers", None)
        .await
        .assert_problem(401, "key_revoked");
    app.signed(&second, "GET", "/api/v1/partner/offers", None)
        .await
        .assert_status(200);
    let partners = app.get("/api/v1/admin/partners", Some(&admin)).await;
    assert_eq!(
        partners.assert_status(200)["items"][0]["partner_id"],
        json!(partner.id)
    );
    assert_eq!(partners.body["items"][0]["kind"], "transit");
    assert_eq!(partners.body["items"][0]["region_codes"], json!(["440300"]));
    assert!(partners.body["items"][0].get("secret").is_none());
    let listed = app.get(&keys_path, Some(&admin)).await;
    let items = listed.assert_status(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|k| k.get("secret").is_none()));
    // Someone else's key, an unknown partner, and a non-admin are refused.
    app.post(&format!("{keys_path}/pt_0000/revoke"), &json!({}), Some(&admin))
        .await
        .assert_problem(404, "not_found");
    app.post("/api/v1/admin/partners/999999/keys", &json!({}), Some(&admin))
        .await
        .assert_problem(404, "not_found");
    let user = app.new_user_token().await;
    app.post(&keys_path, &json!({}), Some(&user))
        .await
        .assert_problem(403, "forbidden");
    let audit = app.get("/api/v1/admin/audit", Some(&admin)).await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"key.revoke")
            && actions.contains(&"key.create")
            && actions.contains(&"partner.create")
    );
    let revocations: Vec<&serde_json::Value> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "key.revoke")
        .collect();
    assert_eq!(revocations.len(), 1, "{revocations:?}");
    assert_eq!(revocations[0]["after"]["revoked_at"], revoked_at);
    assert_eq!(revocations[0]["before"]["revoked_at"], json!(null));
}

async fn settlement_totals_after_a_mixed_sequence(app: TestApp) {
    let bank = onboard(&app, "green_credit", &["440000"]).await;
    let mut loan = offer_terms(200, 100, 10);
    loan["value_fen"] = json!(50);
    let loan_id = publish(&app, &bank, &loan).await;
    let fee_id = publish(&app, &bank, &{
        let mut t = offer_terms(300, 100, 10);
        t["value_fen"] = json!(0);
        t["title"] = json!("账户管理费减免");
        t
    })
    .await;
    let from = Utc::now() - Duration::seconds(5);
    let (token, _) = member_with(&app, 10_000).await;
    let mut ids = Vec::new();
    for offer_id in [&loan_id, &loan_id, &loan_id, &fee_id, &fee_id, &fee_id] {
        let r = redeem_new(&app, &token, offer_id).await;
        ids.push(
            r.assert_status(201)["redemption_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let partner = Partner {
        key: bank.key.clone(),
        id: bank.id.clone(),
    };
    // Loan: two captured, one voided. Fee: one captured, one still held, one expired.
    for id in [&ids[0], &ids[1], &ids[3]] {
        capture(&app, &partner, id).await.assert_status(200);
    }
    let path = format!("/api/v1/partner/redemptions/{}/void", ids[2]);
    app.signed(&bank.key, "POST", &path, None)
        .await
        .assert_status(200);
    // Its hold wound back, then swept (here, or by the background task if it came first).
    let expiring: i64 = ids[5].parse().unwrap();
    expire_at(&app, expiring, Duration::seconds(-1)).await;
    let status = app
        .with_conn(move |conn| {
            use diesel::prelude::*;
            use tanhui::db::schema::redemptions;
            tanhui::redemptions::service::expire_due(conn, tanhui::clock::Clock::system().now_naive(), 10)
                .unwrap();
            redemptions::table
                .find(expiring)
                .select(redemptions::status)
                .get_result::<String>(conn)
                .unwrap()
        })
        .await;
    assert_eq!(status, "expired");
    let to = Utc::now() + Duration::seconds(5);
    let query = format!(
        "/api/v1/partner/settlements?from={}&to={}",
        urlencoding(&from.to_rfc3339()),
        urlencoding(&to.to_rfc3339())
    );
    let statement = app.signed(&bank.key, "GET", &query, None).await;
    let s = statement.assert_status(200);
    assert_eq!(
        s["totals"],
        json!({"captured": 3, "voided": 1, "expired": 1, "points_captured": 700, "value_fen": 100})
    );
    assert_eq!(s["offers"][0]["offer_id"], json!(loan_id));
    assert_eq!(s["offers"][0]["captured"], 2);
    assert_eq!(s["offers"][0]["voided"], 1);
    assert_eq!(s["offers"][1]["points_captured"], 300);
    assert_eq!(s["offers"][1]["expired"], 1);
    assert_eq!(s["settlement_balance"], 700);

    let csv = app
        .send_signed(&bank.key.fresh(), "GET", &query, None, &[("Accept", "text/csv")])
        .await;
    assert!(
        csv.content_type().starts_with("text/csv"),
        "{}",
        csv.content_type()
    );
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines.len(), 6, "{}", csv.text);
    assert!(lines[0].starts_with("redemption_id,offer_id,offer_title,status,points,value_fen"));
    assert_eq!(lines.iter().filter(|l| l.contains(",captured,")).count(), 3);
    // An empty period, and a period that ends before it starts.
    let empty = app
        .signed(
            &bank.key,
            "GET",
            "/api/v1/partner/settlements?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(empty.assert_status(200)["totals"]["captured"], 0);
    app.signed(
        &bank.key,
        "GET",
        "/api/v1/partner/settlements?from=2020-02-01T00:00:00Z&to=2020-01-01T00:00:00Z",
        None,
    )
    .await
    .assert_problem(422, "validation_failed");
    let w = wallet(&app, &token).await;
    assert_eq!(
        (w["balance"].as_i64(), w["held"].as_i64()),
        (Some(10_000 - 700), Some(300))
    );
    // The partner's own list, filtered by state; vouchers stay with the users.
    let held = app
        .signed(&bank.key, "GET", "/api/v1/partner/redemptions?status=held", None)
        .await;
    let items = held.assert_status(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["redemption_id"], json!(ids[4]));
    assert!(items[0]["voucher"].is_null());
    let all = app
        .signed(&bank.key, "GET", "/api/v1/partner/redemptions", None)
        .await;
    assert_eq!(all.assert_status(200)["items"].as_array().unwrap().len(), 6);
    app.signed(&bank.key, "GET", "/api/v1/partner/redemptions?status=lost", None)
        .await
        .assert_problem(422, "validation_failed");
    ledger_verifies(&app).await;

    // `verify` proves the settlement balance: a redemption edited behind the ledger's back shows up.
    let edited: i64 = ids[0].parse().unwrap();
    app.with_conn(move |conn| {
        use diesel::prelude::*;
        use tanhui::db::schema::redemptions;
        diesel::update(redemptions::table.find(edited))
            .set(redemptions::points.eq(redemptions::points + 1))
            .execute(conn)
            .unwrap();
    })
    .await;
    let mismatches = app.verify().await.mismatches;
    assert!(
        mismatches
            .iter()
            .any(|m| m.contains(&format!("redemption {edited} is captured"))),
        "{mismatches:?}"
    );
    assert!(
        mismatches.iter().any(|m| m.contains("settlement account")),
        "{mismatches:?}"
    );
}

fn urlencoding(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// A write that loses a race in PostgreSQL (a deadlock, SQLSTATE 40P01, or a serialization failure,
/// 40001) answers 503 `retry` with `Retry-After` on every write path: a redemption (a ledger hold), a
/// capture (a ledger post) and a transfer. A trigger on this test's own database raises the SQLSTATE on
/// every insert of a transfer; once it is dropped, the same requests succeed and nothing of the failed
/// attempts was written.
#[actix_web::test]
async fn lost_races_answer_retry_on_postgres() {
    let Some(app) = crate::helpers::spawn(crate::helpers::Backend::Postgres).await else {
        return;
    };
    let partner = onboard(&app, "transit", &["440000"]).await;
    let offer_id = publish(&app, &partner, &offer_terms(100, 10, 5)).await;
    let (token, _) = member_with(&app, 1000).await;
    let (_, bob_account) = app.new_member().await;
    let held = redeem_new(&app, &token, &offer_id)
        .await
        .assert_status(201)
        .clone();
    let held_id = held["redemption_id"].as_str().unwrap().to_string();
    let transfer = json!({"to_account_id": bob_account, "points": 50});
    let send_transfer = |key: &'static str| {
        app.send(
            app.client
                .post(app.url("/api/v1/transfers"))
                .bearer_auth(&token)
                .header("Idempotency-Key", key)
                .json(&transfer),
        )
    };

    for (sqlstate, message) in [
        ("40P01", "deadlock detected"),
        ("40001", "could not serialize access due to concurrent update"),
    ] {
        exec(
            &app,
            format!(
                "CREATE FUNCTION lose_race() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 RAISE EXCEPTION '{message}' USING ERRCODE = '{sqlstate}'; END $$; \
                 CREATE TRIGGER lose_race BEFORE INSERT ON transfers \
                 FOR EACH ROW EXECUTE FUNCTION lose_race();"
            ),
        )
        .await;
        let answers = [
            redeem(&app, &token, &offer_id, "raced-redemption").await,
            capture(&app, &partner, &held_id).await,
            send_transfer("raced-transfer").await,
        ];
        for r in &answers {
            r.assert_problem(503, "retry");
            let retry_after = r.headers.get("retry-after").and_then(|v| v.to_str().ok());
            assert_eq!(retry_after, Some("1"), "{sqlstate}: {}", r.text);
        }
        exec(
            &app,
            "DROP TRIGGER lose_race ON transfers; DROP FUNCTION lose_race();".into(),
        )
        .await;
        // Nothing of the refused attempts stands: the hold, the stock, the wallet are as they were.
        let w = wallet(&app, &token).await;
        assert_eq!(
            (w["balance"].as_i64(), w["held"].as_i64()),
            (Some(1000), Some(100))
        );
        assert_eq!(offer(&app, &offer_id).await["stock"], 9);
        ledger_verifies(&app).await;
    }

    let redeemed = redeem(&app, &token, &offer_id, "raced-redemption").await;
    assert_eq!(redeemed.assert_status(201)["status"], "held");
    let captured = capture(&app, &partner, &held_id).await;
    assert_eq!(captured.assert_status(200)["status"], "captured");
    send_transfer("raced-transfer").await.assert_status(201);
    let w = wallet(&app, &token).await;
    assert_eq!(
        (w["balance"].as_i64(), w["held"].as_i64()),
        (Some(1000 - 100 - 50), Some(100))
    );
    assert_eq!(offer(&app, &offer_id).await["stock"], 8);
    let redemptions = app.get("/api/v1/redemptions", Some(&token)).await;
    assert_eq!(
        redemptions.assert_status(200)["items"].as_array().unwrap().len(),
        2
    );
    ledger_verifies(&app).await;
}

async fn exec(app: &TestApp, sql: String) {
    app.with_conn(move |conn| {
        use diesel::connection::SimpleConnection;
        conn.batch_execute(&sql).unwrap()
    })
    .await
}

/// A tourist from Beijing spends points at a Huangshan (Anhui) gate; an offer the partner keeps for
/// residents is refused to the same tourist and taken by a resident.
async fn visitors_redeem_unless_an_offer_is_kept_for_residents(app: TestApp) {
    let gate = onboard(&app, "scenic", &["340000"]).await;
    let mut terms = offer_terms(300, 5, 1);
    terms["region_codes"] = json!(["340000"]);
    let open = publish(&app, &gate, &terms).await;
    terms["residents_only"] = json!(true);
    let kept = publish(&app, &gate, &terms).await;
    assert_eq!(offer(&app, &open).await["residents_only"], false);
    assert_eq!(offer(&app, &kept).await["residents_only"], true);

    let tourist = beijing_member(&app, 1000).await;
    let held = redeem_new(&app, &tourist, &open).await;
    let redemption = held.assert_status(201)["redemption_id"]
        .as_str()
        .unwrap()
        .to_string();
    capture(&app, &gate, &redemption).await.assert_status(200);
    assert_eq!(wallet(&app, &tourist).await["balance"], 700);
    redeem_new(&app, &tourist, &kept)
        .await
        .assert_problem(409, "region_not_served");
    assert_eq!(wallet(&app, &tourist).await["held"], 0);
    assert_eq!(offer(&app, &kept).await["stock"], 5);
    ledger_verifies(&app).await;
}
