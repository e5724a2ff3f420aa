//! Data providers: onboarding, signed requests, and trips reported by both the app and the operator.

use chrono::{Duration, Utc};
use serde_json::{json, Value};
use tanhui::auth::signature::{canonical, sign};

use crate::both_backends;
use crate::helpers::{Key, Resp, Signing, TestApp};

both_backends!(
    signed_provider_activities_are_trusted,
    bad_signatures_are_refused_with_distinct_codes,
    a_trip_is_credited_once_and_the_operator_wins
);

async fn onboard(app: &TestApp) -> Key {
    let admin = app.admin_token().await;
    let r = app
        .post(
            "/api/v1/admin/providers",
            &json!({"name": "深圳地铁", "kind": "transit", "region_codes": ["440300"]}),
            Some(&admin),
        )
        .await;
    Key::from_credentials(r.assert_status(201))
}

async fn send_signed(app: &TestApp, s: &Signing<'_>, path: &str, body: &Value) -> Resp {
    app.send_signed(s, "POST", path, Some(body), &[]).await
}

fn fresh(p: &Key) -> Signing<'_> {
    p.fresh()
}

fn metro_trip(user_id: &str, id: &str, minutes_ago: i64) -> Value {
    json!({"user_id": user_id, "client_event_id": id, "activity_type": "transit.metro",
        "occurred_at": (Utc::now() - Duration::minutes(minutes_ago)).to_rfc3339(),
        "ended_at": (Utc::now() - Duration::minutes(minutes_ago - 20)).to_rfc3339(),
        "data": {"distance_m": 10000}})
}

const PATH: &str = "/api/v1/provider/activities";

async fn signed_provider_activities_are_trusted(app: TestApp) {
    let provider = onboard(&app).await;
    let (phone, password, user_id, _) = app.register().await;
    let r = send_signed(&app, &fresh(&provider), PATH, &metro_trip(&user_id, "op-1", 60)).await;
    let body = r.assert_status(201).clone();
    // Shenzhen metro: 10 km × 46.7 = 467 g, operator evidence at full weight.
    assert_eq!(body["status"], "credited");
    assert_eq!(body["points"], 467);
    let token = app.login(&phone, &password).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let list = app.get("/api/v1/activities", Some(&token)).await;
    assert_eq!(list.body["items"][0]["evidence"], "operator");
    // A replay of the same signed event needs a fresh nonce, and then answers 200 with the original.
    let again = send_signed(&app, &fresh(&provider), PATH, &metro_trip(&user_id, "op-1", 60)).await;
    assert!(
        again.status.as_u16() == 200 || again.code() == "idempotency_conflict",
        "{}",
        again.text
    );
    let unknown = send_signed(&app, &fresh(&provider), PATH, &metro_trip("99999999", "op-2", 60)).await;
    unknown.assert_problem(422, "unknown_user");
    let user = app.new_user_token().await;
    app.post(
        "/api/v1/admin/providers",
        &json!({"name": "x", "kind": "transit"}),
        Some(&user),
    )
    .await
    .assert_problem(403, "forbidden");
    let admin = app.admin_token().await;
    app.post(
        "/api/v1/admin/providers",
        &json!({"name": "x", "kind": "rocket", "region_codes": ["999999"]}),
        Some(&admin),
    )
    .await
    .assert_problem(422, "validation_failed");
}

async fn bad_signatures_are_refused_with_distinct_codes(app: TestApp) {
    let provider = onboard(&app).await;
    let (_, _, user_id, _) = app.register().await;
    let trip = metro_trip(&user_id, "sig", 30);

    let unsigned = app.post(PATH, &trip, None).await;
    unsigned.assert_problem(401, "signature_missing");

    let wrong_secret = Signing {
        secret: "not-the-secret",
        ..fresh(&provider)
    };
    send_signed(&app, &wrong_secret, PATH, &trip)
        .await
        .assert_problem(401, "bad_signature");

    let stale = Signing {
        timestamp: Utc::now().timestamp() - 301,
        ..fresh(&provider)
    };
    send_signed(&app, &stale, PATH, &trip)
        .await
        .assert_problem(401, "stale_timestamp");
    let future = Signing {
        timestamp: Utc::now().timestamp() + 301,
        ..fresh(&provider)
    };
    send_signed(&app, &future, PATH, &trip)
        .await
        .assert_problem(401, "stale_timestamp");

    let unknown = Signing {
        key_id: "pv_0000000000000000",
        ..fresh(&provider)
    };
    send_signed(&app, &unknown, PATH, &trip)
        .await
        .assert_problem(401, "unknown_key");

    // The body is covered: a signature for another body fails.
    let signed = fresh(&provider);
    let ts = signed.timestamp.to_string();
    let signature = sign(
        &provider.secret,
        &canonical("POST", PATH, &ts, &signed.nonce, b"{}"),
    );
    let tampered = app
        .send(
            app.client
                .post(app.url(PATH))
                .header("X-Key-Id", &provider.key_id)
                .header("X-Timestamp", &ts)
                .header("X-Nonce", &signed.nonce)
                .header("X-Signature", signature)
                .json(&trip),
        )
        .await;
    tampered.assert_problem(401, "bad_signature");

    let once = fresh(&provider);
    send_signed(&app, &once, PATH, &trip).await.assert_status(201);
    send_signed(&app, &once, PATH, &metro_trip(&user_id, "sig-2", 20))
        .await
        .assert_problem(401, "nonce_replayed");
}

async fn a_trip_is_credited_once_and_the_operator_wins(app: TestApp) {
    let provider = onboard(&app).await;
    let (phone, password, user_id, _) = app.register().await;
    let token = app.login(&phone, &password).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut app_trip = metro_trip(&user_id, "app-1", 120);
    app_trip.as_object_mut().unwrap().remove("user_id");
    let claimed = app.post("/api/v1/activities", &app_trip, Some(&token)).await;
    assert_eq!(
        claimed.assert_status(201)["points"],
        233,
        "self-reported: 467 g at half weight"
    );

    // The operator reports the same trip: it tops the credit up to the operator's figure, never reverses.
    let mut op_trip = metro_trip(&user_id, "op-1", 118);
    op_trip["occurred_at"] = app_trip["occurred_at"].clone();
    op_trip["ended_at"] = app_trip["ended_at"].clone();
    let r = send_signed(&app, &fresh(&provider), PATH, &op_trip).await;
    let body = r.assert_status(201).clone();
    assert_eq!(body["status"], "credited");
    assert_eq!(body["points"], 467 - 233);
    assert_eq!(body["reasons"], json!(["supersedes_app_record"]));
    let wallet = app.get("/api/v1/wallet", Some(&token)).await;
    assert_eq!(wallet.body["balance"], 467);

    // The operator reported first: the app's later claim of the same trip is a duplicate.
    let mut op_first = metro_trip(&user_id, "op-2", 60);
    op_first["user_id"] = json!(user_id);
    send_signed(&app, &fresh(&provider), PATH, &op_first)
        .await
        .assert_status(201);
    let mut app_late = op_first.clone();
    app_late.as_object_mut().unwrap().remove("user_id");
    app_late["client_event_id"] = json!("app-2");
    let dup = app.post("/api/v1/activities", &app_late, Some(&token)).await;
    assert_eq!(dup.assert_status(201)["status"], "rejected");
    assert_eq!(dup.body["reasons"], json!(["duplicate"]));
    assert_eq!(app.get("/api/v1/wallet", Some(&token)).await.body["balance"], 934);
}
