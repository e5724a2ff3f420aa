//! Activity ingestion: crediting, replays, caps, plausibility, review, batches.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::helpers::{anchor, second_instance, TestApp};
use crate::{both_backends, both_backends_with};

both_backends!(
    a_walk_is_credited_and_replays_are_idempotent,
    verify_reconciles_activities_with_their_issues,
    instant_and_counted_trips_cannot_repeat_every_second,
    a_types_claim_window_and_a_versions_weights_apply,
    fifty_identical_parallel_posts_credit_once,
    the_daily_cap_holds_under_concurrency_on_two_instances,
    bad_events_are_refused_and_late_ones_stored_as_rejected,
    untimed_trips_occupy_the_least_time_they_can_have_taken,
    a_retry_is_answered_as_stored_after_its_version_is_retired,
    implausible_events_are_flagged_and_reviewed,
    batches_let_each_event_stand_alone,
    a_batch_and_single_posts_on_two_instances_share_the_daily_cap,
    events_of_one_batch_are_judged_against_each_other,
    approvals_and_posts_on_two_instances_share_the_daily_cap,
    identical_batches_on_two_instances_store_each_event_once,
    one_group_issues_each_event_from_its_own_regions_account,
    event_ids_of_any_characters_are_found_again,
    the_daily_cap_starts_again_at_midnight_in_shanghai,
    an_event_is_late_once_the_clock_passes_its_claim_window,
    a_count_is_rides_only_for_travel,
    an_enormous_amount_is_held_for_review_and_issues_nothing,
);

/// `minutes_ago` before [`anchor`], as RFC 3339.
fn at(minutes_ago: i64) -> String {
    (anchor() - Duration::minutes(minutes_ago)).to_rfc3339()
}

fn walk(id: &str, minutes_ago: i64, distance_m: u64, evidence: &str) -> Value {
    json!({"client_event_id": id, "activity_type": "walking", "occurred_at": at(minutes_ago),
           "evidence": evidence, "data": {"distance_m": distance_m}})
}

async fn a_walk_is_credited_and_replays_are_idempotent(app: TestApp) {
    let token = app.new_user_token().await;
    let event = walk("w-1", 30, 3000, "self_report");
    let r = app.post_activity(&token, &event).await;
    let body = r.assert_status(201).clone();
    // 3 km × 28.6 g/km = 85.8 → 86 g; self-reported evidence earns half: 43 points.
    assert_eq!(body["status"], "credited");
    assert_eq!(body["reduction_g"], 86);
    assert_eq!(body["points"], 43);
    assert_eq!(body["methodology"]["activity_type"], "walking");
    assert_eq!(body["methodology"]["region_code"], "CN");
    assert_eq!(body["reasons"], json!([]));
    assert!(body["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["expr"] == "walk_g_per_km"));
    assert_eq!(app.balance(&token).await, 43);

    let again = app.post_activity(&token, &event).await;
    assert_eq!(again.assert_status(200), &body);
    assert_eq!(app.balance(&token).await, 43);
    let mut changed = event.clone();
    changed["data"]["distance_m"] = json!(3001);
    app.post_activity(&token, &changed)
        .await
        .assert_problem(409, "idempotency_conflict");

    // Untimed, the 3 km walk took at least 22.5 minutes (at 8 km/h): this one is before it.
    let traced = app.post_activity(&token, &walk("w-2", 40, 1000, "trace")).await;
    assert_eq!(
        traced.assert_status(201)["points"],
        29,
        "1 km → 28.6 → 29 g at full weight"
    );

    let list = app.get("/api/v1/activities", Some(&token)).await;
    let items = list.assert_status(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["client_event_id"], "w-2");
    assert_eq!(items[1]["points"], 43);
    let transfers = app.get("/api/v1/wallet/transfers", Some(&token)).await;
    assert_eq!(transfers.body["items"][1]["ref_type"], "activity");
    assert_eq!(transfers.body["items"][1]["ref_id"], body["activity_id"]);

    // One at a time, newest first, through the cursor; a cursor not of this API is refused.
    let first = app.get("/api/v1/activities?limit=1", Some(&token)).await;
    assert_eq!(first.assert_status(200)["items"][0]["client_event_id"], "w-2");
    let cursor = first.body["next_cursor"].as_str().unwrap().to_string();
    let second = app
        .get(
            &format!("/api/v1/activities?limit=1&cursor={cursor}"),
            Some(&token),
        )
        .await;
    assert_eq!(second.assert_status(200)["items"][0]["client_event_id"], "w-1");
    assert!(second.body["next_cursor"].is_null(), "{}", second.text);
    let bad = app
        .get("/api/v1/activities?cursor=not-a-cursor", Some(&token))
        .await;
    bad.assert_problem(422, "validation_failed");
    assert_eq!(bad.body["errors"][0]["field"], "cursor");
}

/// Points are created only by an activity's own issue transfer: `verify` reconciles the two, and checks
/// which accounts each kind of transfer may move points between (balances alone cannot show an extra
/// issue: the issuance account is unfloored and its balance is the sum of its transfers).
async fn verify_reconciles_activities_with_their_issues(app: TestApp) {
    let (token, account) = app.new_member().await;
    let account: i64 = account.parse().unwrap();
    let body = app
        .post_activity(&token, &walk("v-1", 30, 3000, "trace"))
        .await
        .assert_status(201)
        .clone();
    let id: i64 = body["activity_id"].as_str().unwrap().parse().unwrap();
    let ok = app.verify().await;
    assert!(ok.ok(), "{:?}", ok.mismatches);
    let reported = |fragment: &'static str| {
        let app = &app;
        async move {
            let report = app.verify().await;
            assert!(
                report.mismatches.iter().any(|m| m.contains(fragment)),
                "{fragment}: {:?}",
                report.mismatches
            );
        }
    };
    let exec = |sql: String| {
        app.with_conn(move |conn| {
            use diesel::connection::SimpleConnection;
            conn.batch_execute(&sql).unwrap()
        })
    };

    // The row claims more points than were issued.
    exec(format!(
        "UPDATE activities SET points = points * 10 WHERE id = {id}"
    ))
    .await;
    reported("does not agree with its issue transfer").await;
    exec(format!(
        "UPDATE activities SET points = points / 10 WHERE id = {id}"
    ))
    .await;
    assert!(app.verify().await.ok());

    // The issue relabelled as a plain transfer out of the issuance account.
    let relabel = |kind: &str| {
        format!("UPDATE transfers SET kind = '{kind}' WHERE ref_type = 'activity' AND ref_id = '{id}'")
    };
    exec(relabel("transfer")).await;
    reported("from a points issuance account to a points wallet account").await;
    exec(relabel("issue")).await;
    assert!(app.verify().await.ok());

    // A second issue for the same activity: the balances still add up, the reconciliation does not.
    let now = app.state.clock.now_naive();
    app.with_conn(move |conn| {
        let cause = tanhui::ledger::service::Cause::of("activity", id);
        let origin = tanhui::ledger::lots::Origin::plain("440300", now + chrono::Duration::days(3650));
        tanhui::ledger::service::issue(conn, &origin, account, 43, &cause, now).unwrap()
    })
    .await;
    reported("is not the transfer of the activity it names").await;
}

/// An activity type's own claim window, and a version's own evidence weights, are the ones applied.
async fn a_types_claim_window_and_a_versions_weights_apply(app: TestApp) {
    let (maker, checker) = (app.admin_token().await, app.admin_token().await);
    let ferry = json!({"code": "transit.ferry", "name": "轮渡", "unit": "ride", "claim_window_days": 2,
        "data_schema": {"type": "object", "properties": {"count": {"type": "integer", "minimum": 1, "maximum": 20}},
                        "required": ["count"]}});
    app.post("/api/v1/admin/activity-types", &ferry, Some(&maker))
        .await
        .assert_status(201);
    let version = json!({"activity_type": "transit.ferry", "region_code": "CN",
        "effective_from": "2020-01-01T00:00:00+08:00",
        "parameters": {"k": {"value": "100", "unit": "g/ride", "source": "test"}},
        "formula": "count * k", "daily_cap_g": 1000, "citation": "test fixture",
        "evidence_weights": {"operator": "1.0", "trace": "0.9", "photo": "0.6", "self_report": "0.25"}});
    app.in_force(&maker, &checker, &version).await;

    let token = app.new_user_token().await;
    let ride = |id: &str, minutes_ago: i64, evidence: &str| {
        json!({"client_event_id": id, "activity_type": "transit.ferry", "occurred_at": at(minutes_ago),
               "evidence": evidence, "data": {"count": 1}})
    };
    // 100 g a ride, at this version's weights: a quarter self-reported, 0.6 with a photo, 0.9 traced.
    for (id, minutes_ago, evidence, points) in [
        ("f-1", 60, "self_report", 25),
        ("f-2", 50, "photo", 60),
        ("f-3", 40, "trace", 90),
    ] {
        let r = app.post_activity(&token, &ride(id, minutes_ago, evidence)).await;
        let body = r.assert_status(201);
        assert_eq!(
            (&body["reduction_g"], &body["points"]),
            (&json!(100), &json!(points)),
            "{id}"
        );
    }
    // Three days ago is past this type's two-day window (the default is seven).
    let late = app
        .post_activity(&token, &ride("f-late", 3 * 24 * 60, "trace"))
        .await;
    assert_eq!(late.assert_status(201)["status"], "rejected");
    assert_eq!(late.body["reasons"], json!(["late"]));
    assert_eq!(app.balance(&token).await, 25 + 60 + 90);
}

/// A trip's speed is its distance over its time to the microsecond: half a second is not "no time".
/// Counted rides occupy their least time, so one account cannot claim a ride every second.
async fn instant_and_counted_trips_cannot_repeat_every_second(app: TestApp) {
    let token = app.new_user_token().await;
    let start = anchor() - Duration::minutes(100);
    let bike = |id: &str, from: DateTime<Utc>| {
        json!({"client_event_id": id, "activity_type": "cycling.bikeshare",
               "occurred_at": from.to_rfc3339(),
               "ended_at": (from + Duration::milliseconds(500)).to_rfc3339(),
               "evidence": "trace", "data": {"distance_m": 200_000}})
    };
    for i in 0..3 {
        let r = app
            .post_activity(&token, &bike(&format!("b-{i}"), start + Duration::seconds(i)))
            .await;
        assert_eq!(r.assert_status(201)["status"], "flagged", "{}", r.text);
        assert!(r.body["reasons"].as_array().unwrap().contains(&json!("speed")));
    }
    let bus = |id: &str, from: DateTime<Utc>| {
        // Beijing has no bus methodology of its own: the nation's counts rides.
        json!({"client_event_id": id, "activity_type": "transit.bus", "region_code": "110000",
               "occurred_at": from.to_rfc3339(), "evidence": "trace", "data": {"count": 2}})
    };
    let later = start + Duration::minutes(30);
    let first = app.post_activity(&token, &bus("r-1", later)).await;
    assert_eq!(first.assert_status(201)["status"], "credited");
    let again = app
        .post_activity(&token, &bus("r-2", later + Duration::seconds(1)))
        .await;
    assert_eq!(again.assert_status(201)["status"], "flagged");
    assert_eq!(again.body["reasons"], json!(["overlap"]));
    // Two rides take at least four minutes; after those of r-2 (held for review, still live) the next
    // ride is plausible again.
    let after = app
        .post_activity(&token, &bus("r-3", later + Duration::seconds(241)))
        .await;
    assert_eq!(after.assert_status(201)["status"], "credited");
    assert_eq!(
        app.balance(&token).await,
        first.body["points"].as_i64().unwrap() + after.body["points"].as_i64().unwrap()
    );
}

async fn fifty_identical_parallel_posts_credit_once(app: TestApp) {
    let token = app.new_user_token().await;
    let event = walk("same", 10, 3000, "trace");
    let results = futures_util::future::join_all((0..50).map(|_| app.post_activity(&token, &event))).await;
    let created = results.iter().filter(|r| r.status.as_u16() == 201).count();
    let replayed = results.iter().filter(|r| r.status.as_u16() == 200).count();
    assert_eq!(
        (created, replayed),
        (1, 49),
        "{:?}",
        results.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert!(results
        .iter()
        .all(|r| r.body["activity_id"] == results[0].body["activity_id"]));
    assert_eq!(app.balance(&token).await, 86);
}

async fn the_daily_cap_holds_under_concurrency_on_two_instances(app: TestApp) {
    let other = second_instance(&app).await;
    let token = app.new_user_token().await;
    // Walking is capped at 296 g a day; each walk is 86 g, and takes at least 22.5 minutes.
    let events: Vec<Value> = (0..12)
        .map(|i| walk(&format!("cap-{i}"), 5 + 23 * i, 3000, "trace"))
        .collect();
    let posts = events.iter().enumerate().map(|(i, e)| {
        let instance = if i % 2 == 0 { &app } else { &other };
        instance.post_activity(&token, e)
    });
    let results = futures_util::future::join_all(posts).await;
    let granted: i64 = results
        .iter()
        .map(|r| r.assert_status(201)["granted_g"].as_i64().unwrap())
        .sum();
    assert_eq!(granted, 296);
    let capped = results.iter().filter(|r| r.body["status"] == "capped").count();
    assert_eq!(capped, 12 - 4, "three full walks and one partial");
    let partial: Vec<_> = results.iter().filter(|r| r.body["granted_g"] == 38).collect();
    assert_eq!(partial.len(), 1);
    assert_eq!(partial[0].body["reasons"], json!(["cap_reached"]));
    assert_eq!(
        partial[0].body["reduction_g"], 86,
        "the reduction stays what the methodology gives"
    );
    assert_eq!(app.balance(&token).await, 296);
    // Another day has its own allowance.
    let yesterday = app
        .post_activity(&token, &walk("cap-y", 60 * 24 + 30, 3000, "trace"))
        .await;
    assert_eq!(yesterday.assert_status(201)["granted_g"], 86);
}

/// A trip posted without its times occupies the least time its distance can have taken at its type's
/// speed bound, so the overlap rule still applies: one account cannot claim an untimed ride every minute.
async fn untimed_trips_occupy_the_least_time_they_can_have_taken(app: TestApp) {
    let token = app.new_user_token().await;
    let ride = |id: &str, minutes_ago: i64| {
        json!({"client_event_id": id, "activity_type": "cycling.bikeshare", "occurred_at": at(minutes_ago),
               "evidence": "trace", "data": {"distance_m": 20_000}})
    };
    // 20 km at no more than 30 km/h: at least 40 minutes.
    let first = app.post_activity(&token, &ride("u-1", 120)).await;
    assert_eq!(first.assert_status(201)["status"], "credited");
    let again = app.post_activity(&token, &ride("u-2", 119)).await;
    assert_eq!(again.assert_status(201)["status"], "flagged");
    assert_eq!(again.body["reasons"], json!(["overlap"]));
    let later = app.post_activity(&token, &ride("u-3", 70)).await;
    assert_eq!(later.assert_status(201)["status"], "credited", "{}", later.text);
}

/// The client lost its answer; meanwhile the only version its event could be quantified with was
/// retired. Its retry is answered as stored (200), as every replay is, not refused as a new event would be.
async fn a_retry_is_answered_as_stored_after_its_version_is_retired(app: TestApp) {
    let (maker, checker) = (app.admin_token().await, app.admin_token().await);
    let kind = json!({"code": "transit.ferry", "name": "轮渡", "unit": "ride",
        "data_schema": {"type": "object", "properties": {"count": {"type": "integer", "minimum": 1, "maximum": 20}}}});
    app.post("/api/v1/admin/activity-types", &kind, Some(&maker))
        .await
        .assert_status(201);
    let version = json!({"activity_type": "transit.ferry", "region_code": "CN",
        "effective_from": "2020-01-01T00:00:00+08:00", "formula": "count * k", "daily_cap_g": 1000,
        "parameters": {"k": {"value": "120", "unit": "g/ride", "source": "test"}}, "citation": "test fixture"});
    let r = app
        .post("/api/v1/admin/methodologies", &version, Some(&maker))
        .await;
    let id = r.assert_status(201)["id"].as_str().unwrap().to_string();
    let lifecycle = |step: &str| format!("/api/v1/admin/methodologies/{id}/{step}");
    app.post(&lifecycle("activate"), &json!({}), Some(&checker))
        .await
        .assert_status(200);

    let token = app.new_user_token().await;
    let ride = |id: &str, count: u32| {
        json!({"client_event_id": id, "activity_type": "transit.ferry", "occurred_at": at(30),
               "ended_at": at(10), "evidence": "trace", "data": {"count": count}})
    };
    let first = ride("ferry-1", 2);
    let created = app.post_activity(&token, &first).await;
    assert_eq!(created.assert_status(201)["reduction_g"], 240);
    app.post(&lifecycle("retire"), &json!({}), Some(&checker))
        .await
        .assert_status(202);
    app.post(&lifecycle("retire/approve"), &json!({}), Some(&maker))
        .await
        .assert_status(200);

    let retried = app.post_activity(&token, &first).await;
    assert_eq!(retried.assert_status(200), &created.body);
    let batch = json!({"events": [first, ride("ferry-2", 1)]});
    let r = app.post("/api/v1/activities/batch", &batch, Some(&token)).await;
    let results = r.assert_status(200)["results"].as_array().unwrap().clone();
    assert_eq!(
        results[0]["activity_id"], created.body["activity_id"],
        "{}",
        r.text
    );
    assert_eq!(results[0]["replayed"], true);
    assert_eq!(results[1]["error"]["code"], "no_methodology", "{}", r.text);
    // The same id with another body is still a conflict, not a refusal of the new body.
    app.post_activity(&token, &ride("ferry-1", 3))
        .await
        .assert_problem(409, "idempotency_conflict");
}

async fn bad_events_are_refused_and_late_ones_stored_as_rejected(app: TestApp) {
    let token = app.new_user_token().await;
    let with = |id: &str, change: &dyn Fn(&mut Value)| {
        let mut event = walk(id, 30, 1000, "trace");
        change(&mut event);
        event
    };
    let in_ten_minutes = (Utc::now() + Duration::minutes(10)).to_rfc3339();
    // Each refused with 422 naming the field at fault.
    let refused: Vec<(Value, &str)> = vec![
        (
            with("f", &|e| e["occurred_at"] = json!(in_ten_minutes)),
            "occurred_at",
        ),
        (with("b", &|e| e["ended_at"] = json!(at(40))), "ended_at"),
        (
            with("i", &|e| e["ended_at"] = e["occurred_at"].clone()),
            "ended_at",
        ),
        (
            with("e", &|e| {
                e["occurred_at"] = json!(at(60 * 30));
                e["ended_at"] = json!(at(60 * 5));
            }),
            "ended_at",
        ),
        // Moving for longer than the trip lasted: the event contradicts itself.
        (
            with("d", &|e| {
                e["ended_at"] = json!(at(20));
                e["data"]["duration_s"] = json!(900);
            }),
            "data.duration_s",
        ),
        (walk("o", 30, 1000, "operator"), "evidence"),
        (walk("x", 30, 1_000_000_000, "trace"), "data.distance_m"),
        (
            with("neg", &|e| e["data"]["distance_m"] = json!(-5)),
            "data.distance_m",
        ),
        (
            with("str", &|e| e["data"]["distance_m"] = json!("3000")),
            "data.distance_m",
        ),
        (
            with("extra", &|e| e["data"]["altitude_m"] = json!(5)),
            "data.altitude_m",
        ),
        (
            with("u", &|e| e["activity_type"] = json!("teleport")),
            "activity_type",
        ),
        (
            with("n", &|e| e["occurred_at"] = json!("2025-01-01T08:00:00")),
            "occurred_at",
        ),
        (
            with("num", &|e| e["occurred_at"] = json!(1_700_000_000)),
            "occurred_at",
        ),
        (with("r", &|e| e["region_code"] = json!("000000")), "region_code"),
        (walk(&"z".repeat(129), 30, 1000, "trace"), "client_event_id"),
    ];
    for (event, field) in &refused {
        let r = app.post_activity(&token, event).await;
        r.assert_problem(422, "validation_failed");
        let fields = r.error_fields();
        assert!(fields.contains(field), "{field}: {}", r.text);
    }
    // Only required data absent: `missing_field`, the field named; with anything else wrong as well,
    // `validation_failed` names them all.
    let bare = with("m", &|e| e["data"] = json!({}));
    let r = app.post_activity(&token, &bare).await;
    r.assert_problem(422, "missing_field");
    assert_eq!(r.body["errors"][0]["field"], "data.distance_m");
    let mut bare_and_backwards = bare.clone();
    bare_and_backwards["ended_at"] = json!(at(40));
    let r = app.post_activity(&token, &bare_and_backwards).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"].as_array().map(Vec::len), Some(2), "{}", r.text);
    let naive = app.post_activity(&token, &refused[11].0).await;
    let message = naive.body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("has no UTC offset"), "{}", naive.text);
    let limit = app.settings.server.body_limit_bytes;
    let huge = format!(
        r#"{{"client_event_id": "h", "data": {{"note": "{}"}}}}"#,
        "x".repeat(limit)
    );
    app.post_raw("/api/v1/activities", huge.into_bytes(), Some(&token))
        .await
        .assert_problem(413, "payload_too_large");
    // Nothing of the above was stored.
    let list = app.get("/api/v1/activities", Some(&token)).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 0);

    let late_event = walk("late", 60 * 24 * 8, 1000, "trace");
    let late = app.post_activity(&token, &late_event).await;
    let body = late.assert_status(201);
    assert_eq!(body["status"], "rejected");
    assert_eq!(body["reasons"], json!(["late"]));
    assert_eq!(body["points"], 0);
    let body = body.clone();
    let replayed = app.post_activity(&token, &late_event).await;
    assert_eq!(replayed.assert_status(200), &body);
    assert_eq!(app.balance(&token).await, 0);
    let admin = app.admin_token().await;
    app.post_activity(&admin, &walk("a", 30, 1000, "trace"))
        .await
        .assert_problem(403, "forbidden");
    // Within the five minutes of clock skew a client may have, an event just ahead of the server stands.
    let mut ahead = walk("ahead", 0, 1000, "trace");
    ahead["occurred_at"] = json!((Utc::now() + Duration::minutes(2)).to_rfc3339());
    app.post_activity(&token, &ahead).await.assert_status(201);
}

async fn implausible_events_are_flagged_and_reviewed(app: TestApp) {
    let token = app.new_user_token().await;
    let admin = app.admin_token().await;
    // 10 km walked in 10 minutes is 60 km/h.
    let mut fast = walk("fast", 60, 10_000, "trace");
    fast["data"]["duration_s"] = json!(600);
    let r = app.post_activity(&token, &fast).await;
    let flagged = r.assert_status(201).clone();
    assert_eq!(flagged["status"], "flagged");
    assert_eq!(flagged["reasons"], json!(["speed"]));
    assert_eq!(flagged["points"], 0);

    let metro = json!({"client_event_id": "m", "activity_type": "transit.metro", "occurred_at": at(300),
        "ended_at": at(270), "evidence": "trace", "data": {"distance_m": 8000}});
    let credited = app.post_activity(&token, &metro).await;
    assert_eq!(credited.assert_status(201)["status"], "credited");
    let bus = json!({"client_event_id": "b", "activity_type": "transit.bus", "occurred_at": at(290),
        "ended_at": at(280), "evidence": "trace", "data": {"count": 1, "distance_m": 3000}});
    let overlap = app.post_activity(&token, &bus).await;
    assert_eq!(overlap.assert_status(201)["status"], "flagged");
    assert_eq!(overlap.body["reasons"], json!(["overlap"]));
    let before = app.balance(&token).await;

    // The queue lists the flagged ones with their reasons, and only those.
    let queue = app.get("/api/v1/admin/reviews", Some(&admin)).await;
    let listed: std::collections::HashMap<&str, &Value> = queue.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["activity_id"].as_str().unwrap(), &i["reasons"]))
        .collect();
    let reasons_of = |r: &Value| listed.get(r["activity_id"].as_str().unwrap()).copied();
    assert_eq!(reasons_of(&flagged), Some(&json!(["speed"])));
    assert_eq!(reasons_of(&overlap.body), Some(&json!(["overlap"])));
    assert_eq!(reasons_of(&credited.body), None);
    app.get("/api/v1/admin/reviews", Some(&token))
        .await
        .assert_problem(403, "forbidden");

    let flagged_id = &flagged["activity_id"];
    let review_under_key = |note: &str| {
        let path = format!("/api/v1/admin/reviews/{}", flagged_id.as_str().unwrap());
        let request = app
            .client
            .post(app.url(&path))
            .bearer_auth(&admin)
            .header("Idempotency-Key", "review-1")
            .json(&json!({"decision": "approve", "note": note}));
        app.send(request)
    };
    let approved = review_under_key("GPS trace checked: a cycle lane").await;
    let body = approved.assert_status(200).clone();
    assert_eq!(body["status"], "credited");
    // 10 km × 28.6 = 286 g, under the 296 g cap, at full weight.
    assert_eq!(body["points"], 286);
    assert_eq!(app.balance(&token).await, before + 286);
    // The administrator's retry under its key is answered the approval, not `invalid_state`.
    let again = review_under_key("GPS trace checked: a cycle lane").await;
    assert_eq!(again.assert_status(200), &body);
    review_under_key("another note")
        .await
        .assert_problem(409, "idempotency_conflict");
    assert_eq!(app.balance(&token).await, before + 286);
    // The client retrying its post is answered with the activity as it now stands, breakdown and all.
    let retried = app.post_activity(&token, &fast).await;
    assert_eq!(retried.assert_status(200), &body);
    assert_eq!(body["breakdown"], flagged["breakdown"]);
    assert_eq!(body["methodology"], flagged["methodology"]);
    assert_eq!(body["reasons"], json!(["speed"]));
    app.review(&admin, flagged_id, "reject", "again")
        .await
        .assert_problem(409, "invalid_state");
    let bus_id = &overlap.body["activity_id"];
    let rejected = app
        .review(&admin, bus_id, "reject", "overlaps a metro ride")
        .await;
    assert_eq!(rejected.assert_status(200)["status"], "rejected");
    app.review(&admin, bus_id, "maybe", "")
        .await
        .assert_problem(422, "validation_failed");
    app.review(&admin, &json!("99999999"), "reject", "")
        .await
        .assert_problem(404, "not_found");
    let audit = app.get("/api/v1/admin/audit?limit=2", Some(&admin)).await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["review.reject", "review.approve"]);
    assert_eq!(app.balance(&token).await, before + 286);
}

async fn batches_let_each_event_stand_alone(app: TestApp) {
    let token = app.new_user_token().await;
    let first = walk("b-1", 50, 1000, "trace");
    let events = json!({"events": [
        first.clone(),
        {"client_event_id": "b-2", "activity_type": "walking", "occurred_at": "yesterday", "data": {}},
        walk("b-3", 40, 2000, "trace"),
        first,
        {"nonsense": true}
    ]});
    let r = app.post("/api/v1/activities/batch", &events, Some(&token)).await;
    let results = r.assert_status(200)["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 5);
    // b-1 twice: whichever the writer reached first is stored, the other replays it.
    assert_eq!(results[0]["activity_id"], results[3]["activity_id"]);
    assert_ne!(results[0]["replayed"], results[3]["replayed"]);
    assert_eq!(results[0]["status"], "credited");
    assert_eq!(results[0]["points"], 29);
    assert_eq!(results[1]["status"], "error");
    assert_eq!(results[1]["error"]["code"], "validation_failed");
    assert_eq!(results[1]["client_event_id"], "b-2");
    assert_eq!(results[2]["status"], "credited");
    assert_eq!(results[4]["status"], "error");
    assert_eq!(app.balance(&token).await, 29 + 57);

    let too_many: Vec<Value> = (0..501)
        .map(|i| walk(&format!("m-{i}"), 10, 100, "trace"))
        .collect();
    app.post(
        "/api/v1/activities/batch",
        &json!({"events": too_many}),
        Some(&token),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.post("/api/v1/activities/batch", &json!({"events": []}), Some(&token))
        .await
        .assert_problem(422, "validation_failed");
    app.post(
        "/api/v1/activities/batch",
        &json!({"events": "all"}),
        Some(&token),
    )
    .await
    .assert_problem(422, "validation_failed");
}

/// A batch's events are decided in memory and written in sets, each still standing alone: a valid, an
/// invalid and a repeated event in one batch, while single posts for the same account arrive on a second
/// instance. The daily cap holds across both, every credited event issued its points, and verify passes.
async fn a_batch_and_single_posts_on_two_instances_share_the_daily_cap(app: TestApp) {
    let other = second_instance(&app).await;
    let token = app.new_user_token().await;
    // Walking is capped at 296 g a day; each walk is 86 g, and takes at least 22.5 minutes.
    let mut events: Vec<Value> = (0..6)
        .map(|i| walk(&format!("mix-{i}"), 5 + 23 * i, 3000, "trace"))
        .collect();
    events.insert(
        2,
        json!({"client_event_id": "mix-bad", "activity_type": "walking", "occurred_at": "yesterday", "data": {}}),
    );
    events.push(walk("mix-0", 5, 3000, "trace"));
    let singles: Vec<Value> = (6..10)
        .map(|i| walk(&format!("one-{i}"), 5 + 23 * i, 3000, "trace"))
        .collect();
    let body = json!({"events": events});
    let (batch, posts) = tokio::join!(
        app.post("/api/v1/activities/batch", &body, Some(&token)),
        futures_util::future::join_all(singles.iter().map(|e| other.post_activity(&token, e)))
    );
    let results = batch.assert_status(200)["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 8);
    assert_eq!(results[2]["status"], "error");
    assert_eq!(results[2]["error"]["code"], "validation_failed");
    assert_eq!(
        results[0]["activity_id"], results[7]["activity_id"],
        "the repeat is the first event"
    );
    let mut granted: i64 = results
        .iter()
        .enumerate()
        .filter(|(i, item)| *i != 2 && *i != 7 && item["status"] != "error")
        .map(|(_, item)| item["points"].as_i64().unwrap())
        .sum();
    assert_eq!(
        results.iter().filter(|item| item["status"] == "error").count(),
        1,
        "{results:?}"
    );
    granted += posts
        .iter()
        .map(|r| r.assert_status(201)["points"].as_i64().unwrap())
        .sum::<i64>();
    // A walk traced earns a point a gram: the points are the grams granted.
    assert_eq!(granted, 296);
    assert_eq!(app.balance(&token).await, 296);
    let report = app.verify().await;
    assert!(report.ok(), "{:?}", report.mismatches);
}

/// `minutes` after noon in Asia/Shanghai `days` ago, RFC 3339: times on one local day whatever the hour.
fn shanghai_noon_days_ago(days: i64, minutes: i64) -> String {
    let shanghai = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let noon = (Utc::now().with_timezone(&shanghai) - Duration::days(days))
        .date_naive()
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_local_timezone(shanghai)
        .unwrap();
    (noon + Duration::minutes(minutes)).to_rfc3339()
}

/// Invariant: no account exceeds a daily cap. Approvals from the review queue on one instance race posts
/// on another for the same account and day; both draw on the same counter.
async fn approvals_and_posts_on_two_instances_share_the_daily_cap(app: TestApp) {
    let other = second_instance(&app).await;
    let token = app.new_user_token().await;
    let admin = other.admin_token().await;
    let at = |minutes: i64| shanghai_noon_days_ago(1, minutes);
    // Three 10 km walks of 10 minutes (60 km/h) are flagged; each is worth 286 g once approved.
    let mut flagged = Vec::new();
    let mut fast_walks = Vec::new();
    for i in 0..3 {
        let fast = json!({"client_event_id": format!("fast-{i}"), "activity_type": "walking",
            "evidence": "trace", "occurred_at": at(20 * i), "ended_at": at(20 * i + 10),
            "data": {"distance_m": 10_000}});
        let r = app.post_activity(&token, &fast).await;
        assert_eq!(r.assert_status(201)["status"], "flagged");
        flagged.push(r.body["activity_id"].as_str().unwrap().to_string());
        fast_walks.push(fast);
    }
    // Then, at once: the three approvals on the other instance and six 3 km walks (86 g each) here.
    let paths: Vec<String> = flagged
        .iter()
        .map(|id| format!("/api/v1/admin/reviews/{id}"))
        .collect();
    let approve = json!({"decision": "approve", "note": "trace checked"});
    let approvals = paths.iter().map(|path| other.post(path, &approve, Some(&admin)));
    let walks: Vec<Value> = (0..6)
        .map(|i| {
            json!({"client_event_id": format!("slow-{i}"), "activity_type": "walking",
                "evidence": "trace", "occurred_at": at(100 + 40 * i), "ended_at": at(130 + 40 * i),
                "data": {"distance_m": 3000}})
        })
        .collect();
    let posts = walks.iter().map(|w| app.post_activity(&token, w));
    let (approved, posted) = futures_util::future::join(
        futures_util::future::join_all(approvals),
        futures_util::future::join_all(posts),
    )
    .await;
    let granted: i64 = approved
        .iter()
        .map(|r| r.assert_status(200)["granted_g"].as_i64().unwrap())
        .chain(
            posted
                .iter()
                .map(|r| r.assert_status(201)["granted_g"].as_i64().unwrap()),
        )
        .sum();
    assert_eq!(granted, 296, "walking is capped at 296 g a day");
    // One point per gram at trace weight: the wallet holds exactly the cap.
    assert_eq!(app.balance(&token).await, 296);
    // A retried post answers what its approval answered, the reasons the cap added included.
    for (walk, approval) in fast_walks.iter().zip(&approved) {
        assert_eq!(
            app.post_activity(&token, walk).await.assert_status(200),
            &approval.body
        );
    }
}

/// The events of one batch are written together, yet each sees the ones before it: the daily cap they
/// share and the trips they overlap.
async fn events_of_one_batch_are_judged_against_each_other(app: TestApp) {
    let token = app.new_user_token().await;
    // Every walk falls on the same local day.
    let at = |minutes: i64| shanghai_noon_days_ago(2, minutes);
    // Five 3 km walks of 25 minutes (86 g each) against the 296 g daily cap, then a metro ride and a
    // bus ride during it.
    let mut events: Vec<Value> = (0..5)
        .map(|i| {
            json!({"client_event_id": format!("w-{i}"), "activity_type": "walking", "evidence": "trace",
                   "occurred_at": at(30 * i), "ended_at": at(30 * i + 25), "data": {"distance_m": 3000}})
        })
        .collect();
    events.push(
        json!({"client_event_id": "metro", "activity_type": "transit.metro", "evidence": "trace",
        "occurred_at": at(200), "ended_at": at(230), "data": {"distance_m": 8000}}),
    );
    events.push(
        json!({"client_event_id": "bus", "activity_type": "transit.bus", "evidence": "trace",
        "occurred_at": at(210), "ended_at": at(220), "data": {"count": 1, "distance_m": 3000}}),
    );
    let r = app
        .post(
            "/api/v1/activities/batch",
            &json!({ "events": events }),
            Some(&token),
        )
        .await;
    let results = r.assert_status(200)["results"].as_array().unwrap().clone();
    let summary: Vec<(&str, i64)> = results
        .iter()
        .map(|r| (r["status"].as_str().unwrap(), r["points"].as_i64().unwrap()))
        .collect();
    // One point per gram at trace weight: the fourth walk gets what the cap had left.
    assert_eq!(
        summary[..5],
        [
            ("credited", 86),
            ("credited", 86),
            ("credited", 86),
            ("credited", 38),
            ("capped", 0)
        ]
    );
    assert_eq!(summary[5].0, "credited");
    assert_eq!(summary[6], ("flagged", 0));
    let points: i64 = results.iter().map(|r| r["points"].as_i64().unwrap()).sum();
    assert_eq!(app.balance(&token).await, points);
}

both_backends_with!(annual_cap_and_photo_weight => |s| s.activities.annual_points_cap = 100);

async fn annual_cap_and_photo_weight(app: TestApp) {
    let (token, account) = app.new_member().await;
    // A photo earns 0.7 of the reduction: 1 km walked = 29 g → 20 points.
    let r = app.post_activity(&token, &walk("p-1", 90, 1000, "photo")).await;
    assert_eq!(r.assert_status(201)["points"], 20);
    let metro = |id: &str, minutes: i64| {
        json!({"client_event_id": id, "activity_type": "transit.metro",
        "occurred_at": at(minutes), "evidence": "trace", "data": {"distance_m": 3000}})
    };
    // 3 km of metro in Shenzhen = 140 g → 140 points, but only 80 are left this year.
    let r = app.post_activity(&token, &metro("m-1", 60)).await;
    let body = r.assert_status(201).clone();
    assert_eq!(body["points"], 80);
    assert_eq!(body["reasons"], json!(["annual_cap_reached"]));
    // Nothing left this year: capped like a spent day, and its grams are not counted against the day.
    let r = app.post_activity(&token, &metro("m-2", 30)).await;
    let body = r.assert_status(201).clone();
    assert_eq!(
        (&body["status"], &body["points"], &body["reasons"]),
        (&json!("capped"), &json!(0), &json!(["annual_cap_reached"]))
    );
    assert_eq!(app.balance(&token).await, 100);
    let account: i64 = account.parse().unwrap();
    let counted: i64 = app
        .with_conn(move |conn| {
            use diesel::prelude::*;
            use diesel::sql_types::BigInt;
            #[derive(QueryableByName)]
            struct Counted {
                #[diesel(sql_type = BigInt)]
                granted_g: i64,
            }
            diesel::sql_query(format!(
                "SELECT granted_g FROM daily_grants WHERE account_id = {account} AND activity_type = 'transit.metro'"
            ))
            .get_result::<Counted>(conn)
            .unwrap()
            .granted_g
        })
        .await;
    assert_eq!(counted, 140, "only m-1's grams count against the day");
}

both_backends_with!(annual_cap_under_concurrency => |s| s.activities.annual_points_cap = 500);

/// The annual points cap taken by posts spread over two instances at once: never more than the cap.
async fn annual_cap_under_concurrency(app: TestApp) {
    let other = second_instance(&app).await;
    let token = app.new_user_token().await;
    // 3 km of metro in Shenzhen = 140 points each, ten minutes apart (no overlaps): three whole, one
    // partial (80), then nothing.
    let trips: Vec<Value> = (0..12)
        .map(|i| {
            json!({"client_event_id": format!("y-{i}"), "activity_type": "transit.metro",
                   "occurred_at": at(5 + 10 * i), "evidence": "trace", "data": {"distance_m": 3000}})
        })
        .collect();
    let posts = trips.iter().enumerate().map(|(i, t)| {
        let instance = if i % 2 == 0 { &app } else { &other };
        instance.post_activity(&token, t)
    });
    let results = futures_util::future::join_all(posts).await;
    let points: Vec<i64> = results
        .iter()
        .map(|r| r.assert_status(201)["points"].as_i64().unwrap())
        .collect();
    assert_eq!(points.iter().sum::<i64>(), 500, "{points:?}");
    assert_eq!(points.iter().filter(|&&p| p == 80).count(), 1, "{points:?}");
    assert_eq!(app.balance(&token).await, 500);
}

/// Both instances' writers store the same events at once: on PostgreSQL one of them loses the insert
/// race, rolls its group back and retries event by event, replaying what the other stored.
async fn identical_batches_on_two_instances_store_each_event_once(app: TestApp) {
    let other = second_instance(&app).await;
    let token = app.new_user_token().await;
    let events: Vec<Value> = (0..20)
        .map(|i| walk(&format!("twin-{i}"), 10 + i, 100, "trace"))
        .collect();
    let body = json!({ "events": events });
    let posts = (0..6).map(|i| {
        let instance = if i % 2 == 0 { &app } else { &other };
        instance.post("/api/v1/activities/batch", &body, Some(&token))
    });
    let responses = futures_util::future::join_all(posts).await;
    let mut points = 0;
    for i in 0..20 {
        let items: Vec<Value> = responses.iter().map(|r| r.body["results"][i].clone()).collect();
        assert!(
            items
                .iter()
                .all(|item| item["activity_id"] == items[0]["activity_id"] && item["status"] == "credited"),
            "{items:?}"
        );
        let stored = items.iter().filter(|item| item["replayed"] == false).count();
        assert_eq!(stored, 1, "{items:?}");
        points += items[0]["points"].as_i64().unwrap();
    }
    assert!(points > 0);
    assert_eq!(app.balance(&token).await, points);
}

/// The server closes every connection (a restart, an idle timeout): the writers' own connections are
/// replaced, and the post and transfer that found theirs closed are written, not failed.
#[actix_web::test]
async fn writers_survive_the_server_closing_their_connections() {
    let Some(app) = crate::helpers::spawn(crate::helpers::Backend::Postgres).await else {
        return;
    };
    let (token, _) = app.new_member().await;
    let (_, friend) = app.new_member().await;
    let transfer = |key: &'static str| {
        app.send(
            app.client
                .post(app.url("/api/v1/transfers"))
                .bearer_auth(&token)
                .header("Idempotency-Key", key)
                .json(&json!({"to_account_id": friend, "points": 1})),
        )
    };
    let walk_and_points = |id: &'static str, minutes_ago: i64| {
        let body = walk(id, minutes_ago, 3000, "trace");
        let (app, token) = (&app, &token);
        async move {
            let r = app.post_activity(token, &body).await;
            r.assert_status(201)["points"].as_i64().unwrap()
        }
    };
    // Both writers have opened their connections.
    let mut earned = walk_and_points("before", 120).await;
    transfer("before").await.assert_status(201);

    let closed = app
        .with_conn(|conn| {
            use diesel::RunQueryDsl;
            diesel::sql_query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .execute(conn)
            .expect("terminate")
        })
        .await;
    assert!(closed >= 2, "the writers' connections were open: {closed}");

    earned += walk_and_points("after", 60).await;
    transfer("after").await.assert_status(201);
    assert!(earned > 2);
    assert_eq!(app.balance(&token).await, earned - 2);
}

/// Each credited event's points come from the issuance account of the region it was quantified for, even
/// when one group commit issues for several regions (a writer keeps the issuance accounts it has read).
async fn one_group_issues_each_event_from_its_own_regions_account(app: TestApp) {
    let (token, account) = app.new_member().await;
    let mut beijing = walk("g-bj", 90, 2000, "trace");
    beijing["region_code"] = json!("110000");
    let events =
        json!({"events": [walk("g-sz", 40, 1000, "trace"), beijing, walk("g-sz2", 30, 1000, "trace")]});
    let r = app.post("/api/v1/activities/batch", &events, Some(&token)).await;
    let results = r.assert_status(200)["results"].as_array().unwrap().clone();
    assert!(results.iter().all(|e| e["status"] == "credited"), "{}", r.text);

    let account: i64 = account.parse().unwrap();
    #[derive(diesel::QueryableByName, Debug, PartialEq, Eq, PartialOrd, Ord)]
    struct Source {
        #[diesel(sql_type = diesel::sql_types::Text)]
        client_event_id: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        code: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        amount: i64,
    }
    let mut sources: Vec<Source> = app
        .with_conn(move |conn| {
            use diesel::RunQueryDsl;
            diesel::sql_query(format!(
                "SELECT a.client_event_id, s.code, t.amount FROM activities a \
                 JOIN transfers t ON t.id = a.transfer_id JOIN accounts s ON s.id = t.debit_account_id \
                 WHERE a.account_id = {account}"
            ))
            .load(conn)
            .unwrap()
        })
        .await;
    sources.sort();
    let points = |id: &str| {
        results.iter().find(|e| e["client_event_id"] == id).unwrap()["points"]
            .as_i64()
            .unwrap()
    };
    let expected: Vec<Source> = [("g-bj", "110000"), ("g-sz", "440300"), ("g-sz2", "440300")]
        .into_iter()
        .map(|(id, region)| Source {
            client_event_id: id.to_string(),
            code: format!("issuance:{region}"),
            amount: points(id),
        })
        .collect();
    assert_eq!(sources, expected);
}

/// A group's stored events are looked up by their ids in one statement: ids with quotes, backslashes,
/// commas, braces, spaces, the word NULL or other scripts each find exactly their own event again, from a
/// batch's retry and from a single post.
async fn event_ids_of_any_characters_are_found_again(app: TestApp) {
    let token = app.new_user_token().await;
    let ids = ["a\"b", "c\\d", "e,f", "{g}", "NULL", " h ", "\"", "", "日本"];
    let events: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| walk(id, 5 + 5 * i as i64, 100, "trace"))
        .collect();
    let batch = json!({"events": events});
    let first = app.post("/api/v1/activities/batch", &batch, Some(&token)).await;
    let first = first.assert_status(200)["results"].as_array().unwrap().clone();
    // The empty id is refused; every other is stored once.
    assert_eq!(first[7]["error"]["code"], "validation_failed");
    let stored = first.iter().filter(|r| r["status"] == "credited").count();
    assert_eq!(stored, ids.len() - 1, "{first:?}");
    let again = app.post("/api/v1/activities/batch", &batch, Some(&token)).await;
    let again = again.assert_status(200)["results"].as_array().unwrap().clone();
    for (i, (one, other)) in first.iter().zip(&again).enumerate() {
        assert_eq!(one["activity_id"], other["activity_id"], "id {:?}", ids[i]);
        assert_eq!(other["replayed"], i != 7, "id {:?}", ids[i]);
    }
    let single = app.post_activity(&token, &events[4]).await;
    assert_eq!(single.assert_status(200)["activity_id"], first[4]["activity_id"]);
    assert_eq!(app.balance(&token).await, 8 * 3);
}

/// A 3 km traced walk (86 g, 86 points; at least 22.5 minutes long) that occurred at `occurred_at`.
fn walk_at(id: &str, occurred_at: DateTime<Utc>) -> Value {
    json!({"client_event_id": id, "activity_type": "walking", "occurred_at": occurred_at.to_rfc3339(),
           "evidence": "trace", "data": {"distance_m": 3000}})
}

/// The daily cap counts per Asia/Shanghai day: it starts again at 16:00 UTC. The clock is moved to just
/// before that midnight, then just after it.
async fn the_daily_cap_starts_again_at_midnight_in_shanghai(app: TestApp) {
    let now = app.clock.clock().now();
    let mut midnight = now.date_naive().and_hms_opt(16, 0, 0).unwrap().and_utc();
    if midnight < now + Duration::hours(3) {
        midnight += Duration::days(1);
    }
    let (phone, password, _, _) = app.register().await;
    app.clock.advance_to(midnight - Duration::minutes(10));
    let token = app.token_of(&phone, &password).await;
    // Walking is capped at 296 g a day: three walks of 86 g, then the 38 g left.
    for (id, minutes_before, granted, reasons) in [
        ("m-1", 160, 86, json!([])),
        ("m-2", 130, 86, json!([])),
        ("m-3", 100, 86, json!([])),
        ("m-4", 70, 38, json!(["cap_reached"])),
    ] {
        let r = app
            .post_activity(&token, &walk_at(id, midnight - Duration::minutes(minutes_before)))
            .await;
        let body = r.assert_status(201);
        assert_eq!(body["status"], "credited", "{id}");
        assert_eq!(
            (&body["granted_g"], &body["reasons"]),
            (&json!(granted), &reasons),
            "{id}"
        );
    }
    app.clock.advance_to(midnight + Duration::minutes(5));
    let token = app.token_of(&phone, &password).await;
    // After midnight a walk of the day before still draws on that day's spent cap...
    let before = app
        .post_activity(&token, &walk_at("m-5", midnight - Duration::minutes(40)))
        .await;
    assert_eq!(before.assert_status(201)["status"], "capped");
    assert_eq!(before.body["reasons"], json!(["cap_reached"]));
    // ...and one of the new day has its whole cap.
    let after = app
        .post_activity(&token, &walk_at("m-6", midnight + Duration::minutes(1)))
        .await;
    let body = after.assert_status(201);
    assert_eq!(
        (&body["status"], &body["granted_g"], &body["reasons"]),
        (&json!("credited"), &json!(86), &json!([]))
    );
    assert_eq!(app.balance(&token).await, 3 * 86 + 38 + 86);
}

/// An event within its type's claim window (seven days for walking) is credited; the same kind of event
/// posted once the clock has moved past its window is stored as rejected, `late`.
async fn an_event_is_late_once_the_clock_passes_its_claim_window(app: TestApp) {
    let start = app.clock.clock().now();
    let (phone, password, _, _) = app.register().await;
    let token = app.token_of(&phone, &password).await;
    let in_time = walk_at("cw-1", start - Duration::days(6) - Duration::hours(22));
    let later = walk_at("cw-2", start - Duration::days(6) - Duration::hours(20));
    let r = app.post_activity(&token, &in_time).await;
    assert_eq!(r.assert_status(201)["status"], "credited", "{}", r.text);

    // Five hours on, the second walk occurred seven days and an hour ago.
    app.clock.advance(Duration::hours(5));
    let token = app.token_of(&phone, &password).await;
    let late = app.post_activity(&token, &later).await;
    let body = late.assert_status(201);
    assert_eq!(
        (&body["status"], &body["points"], &body["reasons"]),
        (&json!("rejected"), &json!(0), &json!(["late"]))
    );
    assert_eq!(app.balance(&token).await, 86);
}

/// The `count` of a type that is not travel is a quantity (bags, phones), not rides that take two
/// minutes each: a thousand is credited. A travel type's thousand rides still take longer than a day,
/// and the refusal names the field that made them so long.
async fn a_count_is_rides_only_for_travel(app: TestApp) {
    app.counted_type("waste.bags", "count * k", false).await;
    app.counted_type("transit.ferry", "count * k", true).await;
    let token = app.new_user_token().await;
    let thousand = |id: &str, activity_type: &str| {
        json!({"client_event_id": id, "activity_type": activity_type, "occurred_at": at(30),
               "evidence": "trace", "data": {"count": 1000}})
    };
    let bags = app.post_activity(&token, &thousand("bags", "waste.bags")).await;
    let body = bags.assert_status(201);
    assert_eq!(
        (&body["status"], &body["points"]),
        (&json!("credited"), &json!(1000)),
        "{}",
        bags.text
    );
    let rides = app
        .post_activity(&token, &thousand("rides", "transit.ferry"))
        .await;
    rides.assert_problem(422, "validation_failed");
    assert_eq!(rides.body["errors"][0]["field"], "data.count", "{}", rides.text);
    assert_eq!(app.balance(&token).await, 1000);
}

/// The attack of an administrator's type with an unbounded integer and the formula `units`: each post of
/// 9×10¹⁸ units used to issue 2.3×10¹⁸ points, and five days of them overflowed the wallet. An event above
/// `activities.max_reduction_g_per_event` is held for review instead, and issues nothing; one at the bound
/// is credited; a count beyond an `i64` is refused naming its field.
async fn an_enormous_amount_is_held_for_review_and_issues_nothing(app: TestApp) {
    app.counted_type("household.units", "units", false).await;
    let token = app.new_user_token().await;
    let units = |id: &str, minutes_ago: i64, units: Value| {
        json!({"client_event_id": id, "activity_type": "household.units", "occurred_at": at(minutes_ago),
               "evidence": "trace", "data": {"units": units}})
    };
    for day in 0..5 {
        let id = format!("attack-{day}");
        let r = app
            .post_activity(
                &token,
                &units(&id, 60 + day * 24 * 60, json!(9_000_000_000_000_000_000u64)),
            )
            .await;
        let body = r.assert_status(201);
        assert_eq!(body["status"], "flagged", "{}", r.text);
        assert_eq!(body["reasons"], json!(["implausible_amount"]));
        assert_eq!(
            (&body["reduction_g"], &body["granted_g"], &body["points"]),
            (&json!(9_000_000_000_000_000_000u64), &json!(0), &json!(0))
        );
    }
    let most = app
        .post_activity(&token, &units("most", 30, json!(i64::MAX)))
        .await;
    assert_eq!(
        most.assert_status(201)["reasons"],
        json!(["implausible_amount"]),
        "{}",
        most.text
    );
    let beyond = app
        .post_activity(&token, &units("beyond", 30, json!(9_223_372_036_854_775_808u64)))
        .await;
    beyond.assert_problem(422, "validation_failed");
    assert_eq!(beyond.body["errors"][0]["field"], "data.units", "{}", beyond.text);

    let wallet = app.get("/api/v1/wallet", Some(&token)).await;
    assert_eq!(wallet.assert_status(200)["balance"], 0, "{}", wallet.text);
    let at_bound = app
        .post_activity(&token, &units("at-bound", 20, json!(100_000)))
        .await;
    let body = at_bound.assert_status(201);
    assert_eq!(
        (&body["status"], &body["points"]),
        (&json!("credited"), &json!(100_000))
    );
    let above = app
        .post_activity(&token, &units("above", 10, json!(100_001)))
        .await;
    let above = above.assert_status(201).clone();
    assert_eq!(
        (&above["status"], &above["points"]),
        (&json!("flagged"), &json!(0))
    );

    // Approved, a held event issues as any flagged one does.
    let admin = app.admin_token().await;
    let approved = app
        .review(&admin, &above["activity_id"], "approve", "metered")
        .await;
    assert_eq!(
        approved.assert_status(200)["points"],
        100_001,
        "{}",
        approved.text
    );
    assert_eq!(app.balance(&token).await, 200_001);
    let report = app.verify().await;
    assert!(report.ok(), "{:?}", report.mismatches);
}
