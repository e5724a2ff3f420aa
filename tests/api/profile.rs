//! What a person reads and changes of their own account: profile, password, history, recipients.

use chrono::Duration;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{anchor, random_phone, TestApp};

both_backends!(
    a_person_changes_name_and_home_region,
    a_new_password_ends_every_other_session,
    the_summary_counts_a_period_by_activity_type,
    a_recipient_is_found_by_phone_with_a_masked_name,
);

async fn patch_me(app: &TestApp, token: &str, body: &Value) -> crate::helpers::Resp {
    app.send(
        app.client
            .patch(app.url("/api/v1/me"))
            .bearer_auth(token)
            .json(body),
    )
    .await
}

async fn a_person_changes_name_and_home_region(app: TestApp) {
    let token = app.new_user_token().await;
    let me = patch_me(
        &app,
        &token,
        &json!({"display_name": "  王小明 ", "region_code": "420100"}),
    )
    .await
    .assert_status(200)
    .clone();
    assert_eq!(
        (me["display_name"].as_str(), me["region_code"].as_str()),
        (Some("王小明"), Some("420100"))
    );
    let read = app
        .get("/api/v1/me", Some(&token))
        .await
        .assert_status(200)
        .clone();
    assert_eq!(read, me);
    // Only what is sent changes; bad values change nothing.
    patch_me(&app, &token, &json!({"display_name": "小明"}))
        .await
        .assert_status(200);
    let bad_region = patch_me(&app, &token, &json!({"region_code": "999999"})).await;
    bad_region.assert_problem(422, "validation_failed");
    assert_eq!(bad_region.error_fields(), ["region_code"]);
    let bad_name = patch_me(&app, &token, &json!({"display_name": "a\u{202E}b"})).await;
    bad_name.assert_problem(422, "validation_failed");
    assert_eq!(bad_name.error_fields(), ["display_name"]);
    patch_me(&app, &token, &json!({"phone": "13800000000"}))
        .await
        .assert_problem(422, "validation_failed");
    let read = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(
        (
            read.body["display_name"].as_str(),
            read.body["region_code"].as_str()
        ),
        (Some("小明"), Some("420100"))
    );
}

async fn a_new_password_ends_every_other_session(app: TestApp) {
    let (phone, password, _, _) = app.register().await;
    let here = app.token_of(&phone, &password).await;
    let elsewhere = app.token_of(&phone, &password).await;
    let change = |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    app.post(
        "/api/v1/me/password",
        &change("wrong password!", "a brand new passphrase"),
        Some(&here),
    )
    .await
    .assert_problem(401, "invalid_credentials");
    let weak = app
        .post("/api/v1/me/password", &change(&password, "short"), Some(&here))
        .await;
    weak.assert_problem(422, "validation_failed");
    assert_eq!(weak.error_fields(), ["new_password"]);
    // Nothing changed yet: both sessions live, the old password signs in.
    app.get("/api/v1/me", Some(&elsewhere)).await.assert_status(200);
    app.post(
        "/api/v1/me/password",
        &change(&password, "a brand new passphrase"),
        Some(&here),
    )
    .await
    .assert_status(204);
    app.get("/api/v1/me", Some(&elsewhere))
        .await
        .assert_problem(401, "session_revoked");
    app.get("/api/v1/me", Some(&here)).await.assert_status(200);
    app.login(&phone, &password)
        .await
        .assert_problem(401, "invalid_credentials");
    app.login(&phone, "a brand new passphrase")
        .await
        .assert_status(200);
}

fn walk(id: &str, occurred_at: chrono::DateTime<chrono::Utc>, distance_m: u64) -> Value {
    json!({"client_event_id": id, "activity_type": "walking", "occurred_at": occurred_at.to_rfc3339(),
           "evidence": "trace", "data": {"distance_m": distance_m}})
}

async fn the_summary_counts_a_period_by_activity_type(app: TestApp) {
    let (token, _) = app.new_member().await;
    let (_, friend) = app.new_member().await;
    let early = anchor() - Duration::hours(3);
    let late = anchor() - Duration::hours(1);
    // 3 km → 86 g and 86 points; 1 km → 29 g and 29 points (trace evidence, full weight).
    for (id, at, m) in [("s-1", early, 3000), ("s-2", late, 1000)] {
        let r = app.post_activity(&token, &walk(id, at, m)).await;
        assert_eq!(r.assert_status(201)["status"], "credited", "{}", r.text);
    }
    let sent = app
        .post_transfer(&token, "gift-1", &json!({"to_account_id": friend, "points": 15}))
        .await;
    sent.assert_status(201);
    let all = app
        .get("/api/v1/me/summary", Some(&token))
        .await
        .assert_status(200)
        .clone();
    assert_eq!(all["reduction_g"], 115);
    assert_eq!(all["points_earned"], 115);
    assert_eq!(all["points_spent"], 15);
    assert_eq!(all["points_received"], 0);
    assert_eq!(
        all["by_activity_type"],
        json!([{"activity_type": "walking", "activities": 2, "reduction_g": 115, "points": 115}])
    );
    // A window holding only the later walk, by when it took place.
    let from = (late - Duration::minutes(5)).to_rfc3339().replace('+', "%2B");
    let window = app
        .get(&format!("/api/v1/me/summary?from={from}"), Some(&token))
        .await
        .assert_status(200)
        .clone();
    assert_eq!(
        (window["reduction_g"].as_i64(), window["points_earned"].as_i64()),
        (Some(29), Some(29))
    );
    let to = early.to_rfc3339().replace('+', "%2B");
    app.get(&format!("/api/v1/me/summary?from={from}&to={to}"), Some(&token))
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/v1/me/summary?from=yesterday", Some(&token))
        .await
        .assert_problem(422, "validation_failed");
}

async fn a_recipient_is_found_by_phone_with_a_masked_name(app: TestApp) {
    let (token, _) = app.new_member().await;
    let phone = random_phone();
    let registered = app
        .post(
            "/api/v1/auth/register",
            &json!({"phone": phone, "password": "correct horse battery", "display_name": "欧阳小明",
                "account_type": "individual", "region_code": "440300"}),
            None,
        )
        .await;
    let account = registered.assert_status(201)["account_id"].clone();
    let found = app
        .get(&format!("/api/v1/accounts/lookup?phone={phone}"), Some(&token))
        .await
        .assert_status(200)
        .clone();
    assert_eq!(
        found,
        json!({"account_id": account, "display_name_masked": "***明"})
    );
    app.get(
        &format!("/api/v1/accounts/lookup?phone={}", random_phone()),
        Some(&token),
    )
    .await
    .assert_problem(404, "not_found");
    app.get("/api/v1/accounts/lookup?phone=12345", Some(&token))
        .await
        .assert_problem(422, "validation_failed");
    // Thirty look-ups an hour, found or not; the next is refused with the time to wait.
    for _ in 0..28 {
        app.get(
            &format!("/api/v1/accounts/lookup?phone={}", random_phone()),
            Some(&token),
        )
        .await
        .assert_problem(404, "not_found");
    }
    let refused = app
        .get(&format!("/api/v1/accounts/lookup?phone={phone}"), Some(&token))
        .await;
    refused.assert_problem(429, "rate_limited");
    assert!(refused.headers.contains_key("retry-after"));
    // Another person's allowance is their own.
    let (other, _) = app.new_member().await;
    app.get(&format!("/api/v1/accounts/lookup?phone={phone}"), Some(&other))
        .await
        .assert_status(200);
}
