//! Data providers: onboarding, signed requests, and trips reported by both the app and the operator.

use chrono::{Duration, Utc};
use diesel::RunQueryDsl;
use serde_json::{json, Value};
use tanhui::auth::signature::{canonical, sign};

use crate::helpers::{anchor, second_instance, Key, Resp, Signing, TestApp};
use crate::{both_backends, both_backends_with};

both_backends!(
    signed_provider_activities_are_trusted,
    bad_signatures_are_refused_with_distinct_codes,
    a_trip_is_credited_once_and_the_operator_wins,
    reviews_honour_the_other_records_of_a_trip,
    an_operator_figure_under_the_apps_claim_adds_nothing,
    keys_added_at_once_stay_within_the_limit,
    a_nonce_used_on_one_instance_is_refused_on_another,
    identical_provider_posts_on_two_instances_credit_once,
    a_retry_is_answered_after_the_providers_regions_were_narrowed,
    an_operator_record_stands_over_a_flagged_app_record,
    an_operator_top_up_after_the_cap_is_a_credit,
    a_provider_batch_for_many_people_and_single_posts_on_another_instance_share_caps
);

both_backends_with!(an_operators_enormous_trip_is_held_for_review_too => |s| {
    s.activities.max_reduction_g_per_event = 400;
});

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
    let trip = metro_trip(&user_id, "op-1", 60);
    let r = send_signed(&app, &fresh(&provider), PATH, &trip).await;
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
    let again = send_signed(&app, &fresh(&provider), PATH, &trip).await;
    assert_eq!(again.assert_status(200), &body);
    // The id is the provider's own: the user's app may use it too, for another event, and so may
    // another provider, each getting its own record.
    let mut own = metro_trip(&user_id, "op-1", 200);
    own.as_object_mut().unwrap().remove("user_id");
    let mine = app.post_activity(&token, &own).await;
    assert_eq!(mine.assert_status(201)["status"], "credited", "{}", mine.text);
    let other = onboard(&app).await;
    let theirs = send_signed(&app, &fresh(&other), PATH, &metro_trip(&user_id, "op-1", 300)).await;
    assert_eq!(theirs.assert_status(201)["status"], "credited", "{}", theirs.text);
    assert_eq!(
        send_signed(&app, &fresh(&provider), PATH, &trip)
            .await
            .assert_status(200),
        &body,
        "each poster's record keeps its own answer"
    );
    let unknown = send_signed(&app, &fresh(&provider), PATH, &metro_trip("99999999", "op-2", 60)).await;
    unknown.assert_problem(422, "unknown_user");
    // Onboarded for Shenzhen, the provider reports nothing in Beijing.
    let mut beijing = metro_trip(&user_id, "op-3", 400);
    beijing["region_code"] = json!("110000");
    send_signed(&app, &fresh(&provider), PATH, &beijing)
        .await
        .assert_problem(403, "region_not_served");
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
    // The contract's onboarding body is the partners': their kinds are providers' kinds too.
    for kind in ["scenic", "green_credit", "waste"] {
        let body = json!({"name": format!("{kind} provider"), "kind": kind, "region_codes": ["440300"]});
        let created = app.post("/api/v1/admin/providers", &body, Some(&admin)).await;
        assert!(created.assert_status(201)["secret"].is_string());
    }
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
        // Clear of the edge: the server's clock may tick between here and its check.
        timestamp: Utc::now().timestamp() - 305,
        ..fresh(&provider)
    };
    send_signed(&app, &stale, PATH, &trip)
        .await
        .assert_problem(401, "stale_timestamp");
    // Far clear of the edge: a server slow to check it would bring a near-future stamp inside the window.
    let future = Signing {
        timestamp: Utc::now().timestamp() + 600,
        ..fresh(&provider)
    };
    send_signed(&app, &future, PATH, &trip)
        .await
        .assert_problem(401, "stale_timestamp");
    // The farthest a header can say: the skew check must not overflow.
    let ancient = Signing {
        timestamp: i64::MIN,
        ..fresh(&provider)
    };
    send_signed(&app, &ancient, PATH, &trip)
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
    let claimed = app.post_activity(&token, &app_trip).await;
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
    let dup = app.post_activity(&token, &app_late).await;
    assert_eq!(dup.assert_status(201)["status"], "rejected");
    assert_eq!(dup.body["reasons"], json!(["duplicate"]));
    assert_eq!(app.get("/api/v1/wallet", Some(&token)).await.body["balance"], 934);
}

/// A metro trip of `km` kilometres from `from` to `to` minutes ago; with a `user_id`, the operator's.
fn trip(user_id: Option<&str>, id: &str, (from, to): (i64, i64), km: i64) -> Value {
    let mut body = metro_trip(user_id.unwrap_or_default(), id, from);
    body["ended_at"] = json!((Utc::now() - Duration::minutes(to)).to_rfc3339());
    body["data"] = json!({"distance_m": km * 1000});
    if user_id.is_none() {
        body.as_object_mut().unwrap().remove("user_id");
    }
    body
}

async fn reviews_honour_the_other_records_of_a_trip(app: TestApp) {
    let provider = onboard(&app).await;
    let admin = app.admin_token().await;
    let (phone, password, user_id, _) = app.register().await;
    let token = app.token_of(&phone, &password).await;
    let user = Some(user_id.as_str());
    let balance = || app.balance(&token);

    // The app reported one ride as two legs of 4 km (187 g each, 93 points self-reported); the operator's
    // record of the whole ride (8 km, 374 g) tops up both legs, not just one.
    for (id, minutes) in [("leg-1", (300, 290)), ("leg-2", (290, 280))] {
        let leg = app.post_activity(&token, &trip(None, id, minutes, 4)).await;
        assert_eq!(leg.assert_status(201)["points"], 93);
    }
    let whole = send_signed(&app, &fresh(&provider), PATH, &trip(user, "op-w", (300, 280), 8)).await;
    assert_eq!(whole.assert_status(201)["points"], 374 - 2 * 93);
    assert_eq!(balance().await, 374);

    // The operator's record is flagged (10 km in 4 minutes); approving it still only tops the app's up.
    let claimed = app
        .post_activity(&token, &trip(None, "app-f", (200, 180), 10))
        .await;
    assert_eq!(claimed.assert_status(201)["points"], 233);
    // It carries the app's id (ids are each poster's own): the review answers with the operator's record.
    let fast = send_signed(
        &app,
        &fresh(&provider),
        PATH,
        &trip(user, "app-f", (200, 196), 10),
    )
    .await;
    assert_eq!(fast.assert_status(201)["status"], "flagged");
    let approved = app
        .review(&admin, &fast.body["activity_id"], "approve", "checked")
        .await;
    assert_eq!(approved.assert_status(200)["points"], 467 - 233);
    assert_eq!(approved.body["activity_id"], fast.body["activity_id"]);
    assert_eq!(
        approved.body["reasons"],
        json!(["speed", "supersedes_app_record"])
    );
    assert_eq!(balance().await, 374 + 467);

    // The app's flagged record of a ride the operator also reported does not hold the operator's back (it
    // was granted nothing), and it cannot be approved: the operator's record wins, credited in full.
    let app_fast = app
        .post_activity(&token, &trip(None, "app-d", (100, 96), 10))
        .await;
    assert_eq!(app_fast.assert_status(201)["status"], "flagged");
    let op = send_signed(&app, &fresh(&provider), PATH, &trip(user, "op-d", (100, 80), 10)).await;
    assert_eq!(
        (&op.assert_status(201)["status"], &op.body["points"]),
        (&json!("credited"), &json!(467))
    );
    app.review(&admin, &app_fast.body["activity_id"], "approve", "checked")
        .await
        .assert_problem(409, "duplicate_trip");
    app.review(&admin, &app_fast.body["activity_id"], "reject", "checked")
        .await
        .assert_status(200);
    assert_eq!(balance().await, 374 + 467 + 467);
}

/// The operator's record of a trip stands over the app's record of it that waits for review: that one was
/// granted nothing, so the operator's is credited in full (not flagged `overlap`), and the app's can then
/// only be rejected.
async fn an_operator_record_stands_over_a_flagged_app_record(app: TestApp) {
    let provider = onboard(&app).await;
    let admin = app.admin_token().await;
    let (phone, password, user_id, _) = app.register().await;
    let token = app.token_of(&phone, &password).await;
    // 300 km in ten minutes: held for review.
    let fast = app
        .post_activity(&token, &trip(None, "app-fast", (300, 290), 300))
        .await;
    assert_eq!(fast.assert_status(201)["status"], "flagged");
    let op = send_signed(
        &app,
        &fresh(&provider),
        PATH,
        &trip(Some(&user_id), "op", (300, 290), 8),
    )
    .await;
    let body = op.assert_status(201).clone();
    assert_eq!(
        (&body["status"], &body["points"]),
        (&json!("credited"), &json!(374)),
        "8 km, 374 g at the operator's full weight"
    );
    assert_eq!(app.balance(&token).await, 374);
    app.review(&admin, &fast.body["activity_id"], "approve", "")
        .await
        .assert_problem(409, "duplicate_trip");
}

/// An operator's record re-weighs the grams its trip's app record was granted even when the day has no
/// grams left: it earns points, so it is `credited` (with `cap_reached`), never `capped` with points.
async fn an_operator_top_up_after_the_cap_is_a_credit(app: TestApp) {
    let provider = onboard(&app).await;
    let (phone, password, user_id, _) = app.register().await;
    let token = app.token_of(&phone, &password).await;
    let walk = |user: Option<&str>, id: &str, minutes_ago: i64, metres: i64| {
        let mut body = json!({"client_event_id": id, "activity_type": "walking",
            "occurred_at": (anchor() - Duration::minutes(minutes_ago)).to_rfc3339(),
            "data": {"distance_m": metres}});
        if let Some(user) = user {
            body["user_id"] = json!(user);
        }
        body
    };
    // 1 km self-reported: 29 g, 14 points. 10 km more takes the rest of the day's 296 g.
    let first = app.post_activity(&token, &walk(None, "w-1", 30, 1000)).await;
    assert_eq!(first.assert_status(201)["points"], 14);
    let long = app.post_activity(&token, &walk(None, "w-2", 200, 10_000)).await;
    assert_eq!(long.assert_status(201)["reasons"], json!(["cap_reached"]));
    let before = app.balance(&token).await;
    // The operator's record of the first walk (2 km): no grams left, but the 29 g already granted earn
    // full weight now.
    let op = send_signed(
        &app,
        &fresh(&provider),
        PATH,
        &walk(Some(&user_id), "op-w-1", 30, 2000),
    )
    .await;
    let body = op.assert_status(201).clone();
    assert_eq!(
        (&body["status"], &body["granted_g"], &body["points"]),
        (&json!("credited"), &json!(0), &json!(29 - 14))
    );
    assert_eq!(body["reasons"], json!(["supersedes_app_record", "cap_reached"]));
    assert_eq!(app.balance(&token).await, before + 15);
}

async fn an_operator_figure_under_the_apps_claim_adds_nothing(app: TestApp) {
    let provider = onboard(&app).await;
    let admin = app.admin_token().await;
    let (phone, password, user_id, _) = app.register().await;
    let token = app.token_of(&phone, &password).await;
    let user = Some(user_id.as_str());

    // The app claims 8 km (374 g, 187 points self-reported); the operator's record of the ride says 4 km
    // (187 g, 187 points at full weight): the ride was worth no more than the app was already given, and
    // what it was given stays.
    let claimed = app
        .post_activity(&token, &trip(None, "app-long", (300, 280), 8))
        .await;
    assert_eq!(claimed.assert_status(201)["points"], 187);
    let op = send_signed(
        &app,
        &fresh(&provider),
        PATH,
        &trip(user, "op-short", (300, 280), 4),
    )
    .await;
    let body = op.assert_status(201).clone();
    assert_eq!(body["status"], "credited");
    assert_eq!(
        (body["granted_g"].clone(), body["points"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(body["reasons"], json!(["supersedes_app_record"]));
    assert_eq!(app.balance(&token).await, 187);

    // The same through a review: the operator's record is flagged (4 km in one minute), and approving it
    // adds nothing either.
    let claimed = app
        .post_activity(&token, &trip(None, "app-long-2", (200, 180), 8))
        .await;
    assert_eq!(claimed.assert_status(201)["points"], 187);
    let fast = send_signed(
        &app,
        &fresh(&provider),
        PATH,
        &trip(user, "op-fast", (200, 199), 4),
    )
    .await;
    assert_eq!(fast.assert_status(201)["status"], "flagged");
    let approved = app
        .review(&admin, &fast.body["activity_id"], "approve", "checked")
        .await;
    assert_eq!(approved.assert_status(200)["points"], 0);
    assert_eq!(app.balance(&token).await, 374);
}

/// Admins adding keys to one provider at the same moment, on two instances: no more than two are ever
/// active (the provider holds one from its onboarding).
async fn keys_added_at_once_stay_within_the_limit(app: TestApp) {
    let other = second_instance(&app).await;
    let admin = app.admin_token().await;
    let created = app
        .post(
            "/api/v1/admin/providers",
            &json!({"name": "哈啰单车", "kind": "bikeshare", "region_codes": ["440300"]}),
            Some(&admin),
        )
        .await;
    let id = created.assert_status(201)["partner_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/admin/providers/{id}/keys");
    let empty = json!({});
    let adds = (0..8).map(|i| {
        let instance = if i % 2 == 0 { &app } else { &other };
        instance.post(&path, &empty, Some(&admin))
    });
    let answers = futures_util::future::join_all(adds).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|&&s| s == 201).count(), 1, "{statuses:?}");
    assert!(answers
        .iter()
        .filter(|r| r.status.as_u16() != 201)
        .all(|r| r.code() == "too_many_keys"));
    let keys = app.get(&path, Some(&admin)).await;
    let listed = keys.assert_status(200)["items"].as_array().unwrap();
    let active = listed.iter().filter(|k| k["revoked_at"].is_null()).count();
    assert_eq!(active, 2);
    // A secret is shown once, when its key is made: never in the listing.
    assert!(listed.iter().all(|k| k.get("secret").is_none()), "{listed:?}");
}

/// Nonces are shared by every instance (Redis when configured, else the database): a signed request
/// replayed to another instance behind the same load balancer is refused there.
async fn a_nonce_used_on_one_instance_is_refused_on_another(app: TestApp) {
    let other = second_instance(&app).await;
    let provider = onboard(&app).await;
    let (_, _, user_id, _) = app.register().await;
    let signing = fresh(&provider);
    send_signed(&app, &signing, PATH, &metro_trip(&user_id, "once", 30))
        .await
        .assert_status(201);
    send_signed(&other, &signing, PATH, &metro_trip(&user_id, "once", 30))
        .await
        .assert_problem(401, "nonce_replayed");
}

/// The same signed event sent twenty times at once, half to each of two instances: one record, one credit,
/// the others replays of it.
async fn identical_provider_posts_on_two_instances_credit_once(app: TestApp) {
    let other = second_instance(&app).await;
    let provider = onboard(&app).await;
    let (phone, password, user_id, _) = app.register().await;
    let ride = metro_trip(&user_id, "op-twice", 60);
    let signings: Vec<Signing<'_>> = (0..20).map(|_| fresh(&provider)).collect();
    let posts = signings.iter().enumerate().map(|(i, signing)| {
        let instance = if i % 2 == 0 { &app } else { &other };
        send_signed(instance, signing, PATH, &ride)
    });
    let results = futures_util::future::join_all(posts).await;
    let statuses: Vec<u16> = results.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|&&s| s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 19, "{statuses:?}");
    assert!(results
        .iter()
        .all(|r| r.body["activity_id"] == results[0].body["activity_id"]));
    let token = app.token_of(&phone, &password).await;
    let wallet = app.get("/api/v1/wallet", Some(&token)).await;
    assert_eq!(wallet.body["balance"], 467);
}

/// The provider lost its answer; meanwhile its regions were narrowed to another city. Its retry is
/// answered as stored (200), as every replay is; only a new event there is refused.
async fn a_retry_is_answered_after_the_providers_regions_were_narrowed(app: TestApp) {
    let provider = onboard(&app).await;
    let (_, _, user_id, _) = app.register().await;
    let trip = metro_trip(&user_id, "op-n", 60);
    let created = send_signed(&app, &fresh(&provider), PATH, &trip).await;
    created.assert_status(201);
    let key_id = provider.key_id.clone();
    app.with_conn(move |conn| {
        diesel::sql_query(format!(
            "UPDATE providers SET region_codes = '[\"110000\"]' \
             WHERE id = (SELECT owner_id FROM api_keys WHERE key_id = '{key_id}')"
        ))
        .execute(conn)
    })
    .await
    .expect("narrowed");

    let retried = send_signed(&app, &fresh(&provider), PATH, &trip).await;
    assert_eq!(retried.assert_status(200), &created.body);
    let mut changed = trip.clone();
    changed["data"]["distance_m"] = json!(9000);
    send_signed(&app, &fresh(&provider), PATH, &changed)
        .await
        .assert_problem(409, "idempotency_conflict");
    send_signed(&app, &fresh(&provider), PATH, &metro_trip(&user_id, "op-n2", 30))
        .await
        .assert_problem(403, "region_not_served");
}

/// A trusted operator's record is bounded like the app's: over `activities.max_reduction_g_per_event` (here
/// 400 g) it is held for review with `implausible_amount`, and issues nothing until approved.
async fn an_operators_enormous_trip_is_held_for_review_too(app: TestApp) {
    let provider = onboard(&app).await;
    let (phone, password, user_id, _) = app.register().await;
    let r = send_signed(&app, &fresh(&provider), PATH, &metro_trip(&user_id, "big", 60)).await;
    let body = r.assert_status(201).clone();
    assert_eq!(
        (&body["status"], &body["reduction_g"], &body["points"]),
        (&json!("flagged"), &json!(467), &json!(0))
    );
    assert_eq!(body["reasons"], json!(["implausible_amount"]));
    let token = app.token_of(&phone, &password).await;
    assert_eq!(app.balance(&token).await, 0);
    let admin = app.admin_token().await;
    let approved = app
        .review(&admin, &body["activity_id"], "approve", "metro log checked")
        .await;
    assert_eq!(approved.assert_status(200)["points"], 467, "{}", approved.text);
    assert_eq!(app.balance(&token).await, 467);
}

/// A provider's batch for several people is decided in memory and written in sets (their accounts, cap
/// counters and issues together), each event standing alone: an unknown person, an invalid event and a
/// repeat in the batch fail or replay alone, while the same provider's single posts for one of the people
/// arrive on a second instance. Each person's daily cap holds across both, and verify passes.
async fn a_provider_batch_for_many_people_and_single_posts_on_another_instance_share_caps(app: TestApp) {
    let other = second_instance(&app).await;
    let provider = onboard(&app).await;
    let mut people = Vec::new();
    for _ in 0..3 {
        let (phone, password, user_id, _) = app.register().await;
        people.push((app.token_of(&phone, &password).await, user_id));
    }
    // Walking is capped at 296 g a day (86 g a walk of 3 km, at least 22.5 minutes each).
    let walk = |user_id: &str, id: &str, n: i64| {
        json!({"user_id": user_id, "client_event_id": id, "activity_type": "walking", "region_code": "440300",
            "occurred_at": (anchor() - Duration::minutes(5 + 23 * n)).to_rfc3339(),
            "data": {"distance_m": 3000}})
    };
    let mut events: Vec<Value> = (0..5)
        .map(|n| walk(&people[0].1, &format!("pb-0-{n}"), n))
        .collect();
    events.push(walk(&people[1].1, "pb-1-0", 0));
    events.push(walk("999999999", "pb-nobody", 0));
    events.push(json!({"user_id": people[2].1, "client_event_id": "pb-bad", "activity_type": "walking"}));
    events.push(walk(&people[2].1, "pb-2-0", 0));
    events.push(walk(&people[0].1, "pb-0-0", 0));
    let singles: Vec<Value> = (5..9)
        .map(|n| walk(&people[0].1, &format!("ps-0-{n}"), n))
        .collect();
    let signings: Vec<Signing<'_>> = singles.iter().map(|_| fresh(&provider)).collect();
    let body = json!({"events": events});
    let (batch, posts) = tokio::join!(
        app.signed(
            &provider,
            "POST",
            "/api/v1/provider/activities/batch",
            Some(&body)
        ),
        futures_util::future::join_all(
            signings
                .iter()
                .zip(&singles)
                .map(|(signing, e)| send_signed(&other, signing, PATH, e))
        )
    );
    let results = batch.assert_status(200)["results"].as_array().unwrap().clone();
    let statuses: Vec<&str> = results.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(results.len(), 10);
    assert_eq!(results[6]["error"]["code"], "unknown_user", "{statuses:?}");
    assert_eq!(results[7]["error"]["code"], "validation_failed", "{statuses:?}");
    assert_eq!(
        results[0]["activity_id"], results[9]["activity_id"],
        "the repeat is the first event"
    );
    // An operator's walk earns a point a gram: the points are the grams granted.
    let granted = |r: &Value| r["points"].as_i64().unwrap_or(0);
    let first: i64 = results[..5].iter().map(granted).sum::<i64>()
        + posts.iter().map(|r| granted(r.assert_status(201))).sum::<i64>();
    assert_eq!(first, 296, "{statuses:?}");
    assert_eq!((granted(&results[5]), granted(&results[8])), (86, 86));
    let balances = [296, 86, 86];
    for ((token, _), want) in people.iter().zip(balances) {
        assert_eq!(app.balance(token).await, want);
    }
    let report = app.verify().await;
    assert!(report.ok(), "{:?}", report.mismatches);
}
