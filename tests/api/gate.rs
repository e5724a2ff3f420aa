//! Safe work at a partner's gate: reading one redemption, inspecting a voucher before capturing it,
//! retrying a capture under an Idempotency-Key on another instance, and rotating keys with an overlap.

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{second_instance, Key, TestApp};

both_backends!(
    a_gate_inspects_a_voucher_then_reads_the_capture_it_made,
    a_capture_retried_on_another_instance_answers_the_first_answer,
    keys_rotate_with_an_overlap_in_which_both_work,
);

async fn onboard(app: &TestApp, region: &str) -> Key {
    let admin = app.admin_token().await;
    let r = app
        .post(
            "/api/v1/admin/partners",
            &json!({"name": "黄山风景区", "kind": "scenic", "region_codes": [region]}),
            Some(&admin),
        )
        .await;
    Key::from_credentials(r.assert_status(201))
}

/// A partner with one offer of 300 points in Shenzhen, and a member holding a redemption of it.
async fn held_redemption(app: &TestApp) -> (Key, String, Value) {
    let gate = onboard(app, "440300").await;
    let terms = json!({"title": "门票", "points_cost": 300, "stock": 5,
        "valid_from": (Utc::now() - Duration::days(1)).to_rfc3339(),
        "valid_to": (Utc::now() + Duration::days(30)).to_rfc3339(), "region_codes": ["440300"]});
    let offer = app
        .signed(&gate, "POST", "/api/v1/partner/offers", Some(&terms))
        .await;
    let offer_id = offer.assert_status(201)["id"].as_str().unwrap().to_string();
    let (token, account) = app.new_member().await;
    app.grant(&account, 1000).await;
    let held = app
        .send(
            app.client
                .post(app.url("/api/v1/redemptions"))
                .bearer_auth(&token)
                .header("Idempotency-Key", "r-1")
                .json(&json!({"offer_id": offer_id})),
        )
        .await;
    let held = held.assert_status(201).clone();
    (gate, token, held)
}

async fn a_gate_inspects_a_voucher_then_reads_the_capture_it_made(app: TestApp) {
    let (gate, token, held) = held_redemption(&app).await;
    let id = held["redemption_id"].as_str().unwrap();
    let voucher = json!({"voucher": held["voucher"]});
    let inspected = app
        .signed(&gate, "POST", "/api/v1/partner/vouchers/inspect", Some(&voucher))
        .await;
    let inspected = inspected.assert_status(200).clone();
    assert_eq!(
        (inspected["redemption_id"].as_str(), inspected["status"].as_str()),
        (Some(id), Some("held"))
    );
    assert_eq!(inspected["points"], 300);
    assert!(
        inspected["voucher"].is_null(),
        "a partner never gets the voucher back"
    );
    // Inspecting captured nothing: the points are still held, and inspecting again says so.
    let w = app.get("/api/v1/wallet", Some(&token)).await;
    assert_eq!(
        (w.body["balance"].as_i64(), w.body["held"].as_i64()),
        (Some(1000), Some(300))
    );
    let path = format!("/api/v1/partner/redemptions/{id}");
    assert_eq!(
        app.signed(&gate, "GET", &path, None).await.assert_status(200)["status"],
        "held"
    );

    app.signed(&gate, "POST", "/api/v1/partner/vouchers/redeem", Some(&voucher))
        .await
        .assert_status(200);
    let read = app
        .signed(&gate, "GET", &path, None)
        .await
        .assert_status(200)
        .clone();
    assert_eq!(read["status"], "captured");
    assert!(read["resolution_transfer_id"].is_string());
    // Another partner sees neither the redemption nor what its voucher is for.
    let other = onboard(&app, "440300").await;
    app.signed(&other, "GET", &path, None)
        .await
        .assert_problem(404, "not_found");
    app.signed(&other, "POST", "/api/v1/partner/vouchers/inspect", Some(&voucher))
        .await
        .assert_problem(404, "not_found");
    app.signed(
        &gate,
        "POST",
        "/api/v1/partner/vouchers/inspect",
        Some(&json!({"voucher": "a.b.c"})),
    )
    .await
    .assert_problem(422, "invalid_voucher");
}

async fn a_capture_retried_on_another_instance_answers_the_first_answer(app: TestApp) {
    let (gate, token, held) = held_redemption(&app).await;
    let other = second_instance(&app).await;
    let path = format!(
        "/api/v1/partner/redemptions/{}/capture",
        held["redemption_id"].as_str().unwrap()
    );
    let retry_key = [("Idempotency-Key", "gate-7-capture-1")];
    let first = app
        .send_signed(&gate.fresh(), "POST", &path, None, &retry_key)
        .await;
    let first = first.assert_status(200).clone();
    assert_eq!(first["status"], "captured");
    // The gate lost the answer and retries through another instance: the first answer again.
    let again = other
        .send_signed(&gate.fresh(), "POST", &path, None, &retry_key)
        .await;
    assert_eq!(again.assert_status(200), &first);
    // A retry without the key is a new request, refused: the redemption is no longer held.
    other
        .send_signed(&gate.fresh(), "POST", &path, None, &[])
        .await
        .assert_problem(409, "invalid_state");
    // Voiding under the capture's key is another request under a used key.
    let void = path.replace("/capture", "/void");
    other
        .send_signed(&gate.fresh(), "POST", &void, None, &retry_key)
        .await
        .assert_problem(409, "idempotency_conflict");
    let w = app.get("/api/v1/wallet", Some(&token)).await;
    assert_eq!(
        (w.body["balance"].as_i64(), w.body["held"].as_i64()),
        (Some(700), Some(0))
    );
}

async fn keys_rotate_with_an_overlap_in_which_both_work(app: TestApp) {
    let old = onboard(&app, "440300").await;
    let list = "/api/v1/partner/offers";
    let rotated = app
        .signed(
            &old,
            "POST",
            "/api/v1/partner/keys/rotate",
            Some(&json!({"overlap_secs": 3600})),
        )
        .await;
    let rotated = rotated.assert_status(201).clone();
    assert_eq!(rotated["previous_key_id"].as_str(), Some(old.key_id.as_str()));
    let new = Key::from_credentials(&rotated);
    // Both keys sign during the overlap; the old one cannot be rotated twice.
    app.signed(&old, "GET", list, None).await.assert_status(200);
    app.signed(&new, "GET", list, None).await.assert_status(200);
    app.signed(&old, "POST", "/api/v1/partner/keys/rotate", None)
        .await
        .assert_problem(409, "invalid_state");
    app.signed(
        &new,
        "POST",
        "/api/v1/partner/keys/rotate",
        Some(&json!({"overlap_secs": -1})),
    )
    .await
    .assert_problem(422, "validation_failed");
    // An hour later the old key has ended by itself; the new one carries on.
    app.clock.advance(Duration::seconds(3601));
    let at = app.state.clock.now().timestamp();
    app.send_signed(&old.fresh_at(at), "GET", list, None, &[])
        .await
        .assert_problem(401, "key_revoked");
    app.send_signed(&new.fresh_at(at), "GET", list, None, &[])
        .await
        .assert_status(200);
}
