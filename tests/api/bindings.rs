//! Bindings: a person links an operator's reference to their wallet with a one-time code, and the
//! operator posts trips by that reference, one at a time or in batches.

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{Key, TestApp};

both_backends!(
    a_person_binds_a_card_and_the_operator_posts_by_it,
    a_code_raced_by_two_submissions_binds_once,
    codes_expire_are_bounded_and_resist_guessing,
    a_provider_batch_lets_each_event_stand_alone,
);

struct Operator {
    key: Key,
    id: String,
}

async fn onboard(app: &TestApp, name: &str) -> Operator {
    let admin = app.admin_token().await;
    let r = app
        .post(
            "/api/v1/admin/providers",
            &json!({"name": name, "kind": "transit", "region_codes": ["440300"]}),
            Some(&admin),
        )
        .await;
    let body = r.assert_status(201);
    Operator {
        key: Key::from_credentials(body),
        id: body["partner_id"].as_str().unwrap().to_string(),
    }
}

async fn code_for(app: &TestApp, token: &str, operator: &Operator) -> String {
    let r = app
        .post(
            "/api/v1/me/binding-codes",
            &json!({"provider_id": operator.id.parse::<i64>().unwrap()}),
            Some(token),
        )
        .await;
    r.assert_status(201)["code"].as_str().unwrap().to_string()
}

async fn bind(app: &TestApp, operator: &Operator, code: &str, external_ref: &str) -> crate::helpers::Resp {
    app.signed(
        &operator.key,
        "POST",
        "/api/v1/provider/bindings",
        Some(&json!({"code": code, "external_ref": external_ref})),
    )
    .await
}

fn trip_by(subject: (&str, &str), id: &str, minutes_ago: i64) -> Value {
    let mut trip = json!({"client_event_id": id, "activity_type": "transit.metro",
        "occurred_at": (Utc::now() - Duration::minutes(minutes_ago)).to_rfc3339(),
        "ended_at": (Utc::now() - Duration::minutes(minutes_ago - 20)).to_rfc3339(),
        "data": {"distance_m": 10000}});
    trip[subject.0] = json!(subject.1);
    trip
}

async fn a_person_binds_a_card_and_the_operator_posts_by_it(app: TestApp) {
    let metro = onboard(&app, "深圳地铁").await;
    let (token, _) = app.new_member().await;
    let code = code_for(&app, &token, &metro).await;
    let bound = bind(&app, &metro, &code.to_lowercase(), "card-0001").await;
    let binding_id = bound.assert_status(201)["binding_id"]
        .as_str()
        .unwrap()
        .to_string();
    let listed = app
        .get("/api/v1/me/bindings", Some(&token))
        .await
        .assert_status(200)
        .clone();
    assert_eq!(listed["items"][0]["binding_id"], binding_id.as_str());
    assert_eq!(listed["items"][0]["provider_name"], "深圳地铁");
    assert_eq!(listed["items"][0]["external_ref"], "card-0001");
    // A used code binds nothing more.
    bind(&app, &metro, &code, "card-0002")
        .await
        .assert_problem(422, "binding_code_invalid");

    let trip = trip_by(("external_ref", "card-0001"), "op-1", 60);
    let posted = app
        .signed(&metro.key, "POST", "/api/v1/provider/activities", Some(&trip))
        .await;
    assert_eq!(posted.assert_status(201)["points"], 467, "{}", posted.text);
    assert_eq!(app.balance(&token).await, 467);
    app.signed(
        &metro.key,
        "POST",
        "/api/v1/provider/activities",
        Some(&trip_by(("external_ref", "card-9999"), "op-2", 120)),
    )
    .await
    .assert_problem(422, "unbound");

    // Another person cannot list or remove it; its owner removes it, and the reference is refused.
    let (stranger, _) = app.new_member().await;
    let path = format!("/api/v1/me/bindings/{binding_id}");
    let remove = |who: String| {
        let request = app.client.delete(app.url(&path)).bearer_auth(who);
        app.send(request)
    };
    remove(stranger.clone()).await.assert_problem(404, "not_found");
    assert_eq!(
        app.get("/api/v1/me/bindings", Some(&stranger)).await.body["items"],
        json!([])
    );
    remove(token.clone()).await.assert_status(204);
    remove(token.clone()).await.assert_problem(404, "not_found");
    app.signed(
        &metro.key,
        "POST",
        "/api/v1/provider/activities",
        Some(&trip_by(("external_ref", "card-0001"), "op-3", 180)),
    )
    .await
    .assert_problem(422, "unbound");
    // The reference is free again: another person binds it.
    let (other, _) = app.new_member().await;
    let code = code_for(&app, &other, &metro).await;
    bind(&app, &metro, &code, "card-0001").await.assert_status(201);
}

async fn a_code_raced_by_two_submissions_binds_once(app: TestApp) {
    let metro = onboard(&app, "深圳地铁").await;
    let bikes = onboard(&app, "单车").await;
    let (token, _) = app.new_member().await;
    let code = code_for(&app, &token, &metro).await;
    // Another operator cannot use a code given for this one.
    bind(&app, &bikes, &code, "rider-1")
        .await
        .assert_problem(422, "binding_code_invalid");
    let submissions = (0..8).map(|i| {
        let app = &app;
        let metro = &metro;
        let code = code.clone();
        async move { bind(app, metro, &code, &format!("card-{i}")).await }
    });
    let answers = futures_util::future::join_all(submissions).await;
    let won: Vec<&crate::helpers::Resp> = answers.iter().filter(|r| r.status.as_u16() == 201).collect();
    assert_eq!(
        won.len(),
        1,
        "{:?}",
        answers.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    for lost in answers.iter().filter(|r| r.status.as_u16() != 201) {
        lost.assert_problem(422, "binding_code_invalid");
    }
    let listed = app.get("/api/v1/me/bindings", Some(&token)).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    // A reference bound to one person is refused for another.
    let (other, _) = app.new_member().await;
    let taken = listed.body["items"][0]["external_ref"]
        .as_str()
        .unwrap()
        .to_string();
    let code = code_for(&app, &other, &metro).await;
    bind(&app, &metro, &code, &taken)
        .await
        .assert_problem(409, "conflict");
    // The refused code was not spent.
    bind(&app, &metro, &code, "card-new").await.assert_status(201);
}

async fn codes_expire_are_bounded_and_resist_guessing(app: TestApp) {
    let metro = onboard(&app, "深圳地铁").await;
    let (token, _) = app.new_member().await;
    let stale = code_for(&app, &token, &metro).await;
    for _ in 0..4 {
        code_for(&app, &token, &metro).await;
    }
    app.post(
        "/api/v1/me/binding-codes",
        &json!({"provider_id": metro.id.parse::<i64>().unwrap()}),
        Some(&token),
    )
    .await
    .assert_problem(409, "limit_reached");
    app.post(
        "/api/v1/me/binding-codes",
        &json!({"provider_id": 424242}),
        Some(&token),
    )
    .await
    .assert_problem(404, "not_found");
    // Ten minutes later the codes are dead, and a new one can be had.
    app.clock.advance(Duration::minutes(10));
    let at = app.state.clock.now().timestamp();
    let expired = app
        .send_signed(
            &metro.key.fresh_at(at),
            "POST",
            "/api/v1/provider/bindings",
            Some(&json!({"code": stale, "external_ref": "card-1"})),
            &[],
        )
        .await;
    expired.assert_problem(422, "binding_code_invalid");
    let live = code_for(&app, &token, &metro).await;
    // Twenty wrong codes in ten minutes; the next submission is refused, even with a right code.
    for i in 1..20 {
        app.send_signed(
            &metro.key.fresh_at(at),
            "POST",
            "/api/v1/provider/bindings",
            Some(&json!({"code": format!("AAAAA-{i:05}"), "external_ref": "card-1"})),
            &[],
        )
        .await
        .assert_problem(422, "binding_code_invalid");
    }
    let refused = app
        .send_signed(
            &metro.key.fresh_at(at),
            "POST",
            "/api/v1/provider/bindings",
            Some(&json!({"code": live, "external_ref": "card-1"})),
            &[],
        )
        .await;
    refused.assert_problem(429, "rate_limited");
    bind(&app, &metro, "not a code", "")
        .await
        .assert_problem(422, "validation_failed");
}

async fn a_provider_batch_lets_each_event_stand_alone(app: TestApp) {
    let metro = onboard(&app, "深圳地铁").await;
    let (token, _) = app.new_member().await;
    let (_, _, user_id, _) = app.register().await;
    let code = code_for(&app, &token, &metro).await;
    bind(&app, &metro, &code, "card-7").await.assert_status(201);
    let mut broken = trip_by(("external_ref", "card-7"), "b-5", 400);
    broken["data"]["distance_m"] = json!(-1);
    let events = json!({"events": [
        trip_by(("external_ref", "card-7"), "b-1", 60),
        trip_by(("user_id", user_id.as_str()), "b-2", 60),
        trip_by(("external_ref", "card-unknown"), "b-3", 60),
        trip_by(("user_id", "999999999"), "b-4", 60),
        broken,
        {"client_event_id": "b-6", "activity_type": "transit.metro"},
        trip_by(("external_ref", "card-7"), "b-7", 200),
    ]});
    let r = app
        .signed(
            &metro.key,
            "POST",
            "/api/v1/provider/activities/batch",
            Some(&events),
        )
        .await;
    let results = r.assert_status(200)["results"].as_array().unwrap().clone();
    let summary: Vec<(String, String, String)> = results
        .iter()
        .map(|i| {
            (
                i["client_event_id"].as_str().unwrap_or("").to_string(),
                i["status"].as_str().unwrap().to_string(),
                i["error"]["code"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let expected = [
        ("b-1", "credited", ""),
        ("b-2", "credited", ""),
        ("b-3", "error", "unbound"),
        ("b-4", "error", "unknown_user"),
        ("b-5", "error", "validation_failed"),
        ("b-6", "error", "validation_failed"),
        ("b-7", "credited", ""),
    ];
    assert_eq!(summary.len(), expected.len());
    for (got, want) in summary.iter().zip(expected) {
        assert_eq!((got.0.as_str(), got.1.as_str(), got.2.as_str()), want, "{got:?}");
    }
    assert_eq!(app.balance(&token).await, 2 * 467);
    // A retry of the batch is answered as stored, nothing credited twice.
    let again = app
        .signed(
            &metro.key,
            "POST",
            "/api/v1/provider/activities/batch",
            Some(&events),
        )
        .await;
    assert_eq!(again.assert_status(200)["results"][0]["replayed"], true);
    assert_eq!(app.balance(&token).await, 2 * 467);
    let empty = app
        .signed(
            &metro.key,
            "POST",
            "/api/v1/provider/activities/batch",
            Some(&json!({"events": []})),
        )
        .await;
    empty.assert_problem(422, "validation_failed");
}
