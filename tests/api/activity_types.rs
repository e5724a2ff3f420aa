//! Activity types governed, not coded: travel and speed bounds are the type's, and a change waits for a
//! second national administrator.

use chrono::Duration;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{anchor, Resp, TestApp};

both_backends!(
    seeded_types_keep_todays_travel_and_speed_bounds,
    a_speed_limit_change_is_in_force_only_once_approved,
    a_schema_change_may_only_widen,
    a_type_created_as_travel_is_judged_as_travel,
);

async fn patch(app: &TestApp, code: &str, body: &Value, token: &str) -> Resp {
    let path = format!("/api/v1/admin/activity-types/{code}");
    app.send(app.client.patch(app.url(&path)).bearer_auth(token).json(body))
        .await
}

fn approve(change: &Value) -> String {
    let id = change["change_id"].as_str().expect("a change id");
    format!("/api/v1/admin/activity-type-changes/{id}/approve")
}

fn at(minutes_ago: i64) -> String {
    (anchor() - Duration::minutes(minutes_ago)).to_rfc3339()
}

async fn activity_type(app: &TestApp, code: &str) -> Value {
    let r = app.get("/api/v1/activity-types", None).await;
    r.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == code)
        .cloned()
        .expect("listed")
}

async fn seeded_types_keep_todays_travel_and_speed_bounds(app: TestApp) {
    for (code, travel, speed) in [
        ("walking", true, json!(8)),
        ("cycling.bikeshare", true, json!(30)),
        ("transit.bus", true, json!(80)),
        ("transit.metro", true, json!(120)),
        ("waste.sorting", false, Value::Null),
        ("electricity.saving", false, Value::Null),
    ] {
        let kind = activity_type(&app, code).await;
        assert_eq!(
            (&kind["travel"], &kind["max_speed_kmh"]),
            (&json!(travel), &speed),
            "{code}"
        );
    }
}

/// A 3 km walk in 15 minutes is 12 km/h: above walking's 8 km/h it is flagged; once a second administrator
/// approves 15 km/h, the same walk is credited, and not before.
async fn a_speed_limit_change_is_in_force_only_once_approved(app: TestApp) {
    let (maker, checker) = (app.admin_token().await, app.admin_token().await);
    let (_, guangdong) = app.administrator("440000").await;
    let token = app.new_user_token().await;
    let brisk = |id: &str, minutes_ago: i64| {
        json!({"client_event_id": id, "activity_type": "walking", "evidence": "trace",
            "occurred_at": at(minutes_ago), "ended_at": at(minutes_ago - 15), "data": {"distance_m": 3000}})
    };
    let r = app.post_activity(&token, &brisk("w-1", 200)).await;
    assert_eq!(r.assert_status(201)["status"], "flagged");

    // Activity types are national: a province's administrator neither changes nor approves them.
    patch(&app, "walking", &json!({"max_speed_kmh": 15}), &guangdong)
        .await
        .assert_problem(403, "out_of_scope");
    let r = patch(
        &app,
        "walking",
        &json!({"max_speed_kmh": 15, "name": " 快走 "}),
        &maker,
    )
    .await;
    let change = r.assert_status(202).clone();
    assert_eq!(change["status"], "pending");
    let r = app.post_activity(&token, &brisk("w-2", 150)).await;
    assert_eq!(
        r.assert_status(201)["status"],
        "flagged",
        "pending is not in force"
    );
    assert_eq!(activity_type(&app, "walking").await["max_speed_kmh"], 8);
    // The approver finds it among the pending changes.
    let pending = app
        .get(
            "/api/v1/admin/activity-type-changes?status=pending",
            Some(&checker),
        )
        .await;
    let listed = pending.assert_status(200)["items"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["change_id"], change["change_id"]);
    assert_eq!(
        listed[0]["proposed"],
        json!({"max_speed_kmh": 15, "name": "快走"})
    );
    app.get("/api/v1/admin/activity-type-changes?status=later", Some(&checker))
        .await
        .assert_problem(422, "validation_failed");

    app.post(&approve(&change), &json!({}), Some(&maker))
        .await
        .assert_problem(403, "forbidden");
    app.post(&approve(&change), &json!({}), Some(&guangdong))
        .await
        .assert_problem(403, "out_of_scope");
    let r = app.post(&approve(&change), &json!({}), Some(&checker)).await;
    let body = r.assert_status(200);
    assert_eq!(body["status"], "approved");
    assert_eq!(body["activity_type"]["max_speed_kmh"], 15);
    assert_eq!(body["activity_type"]["name"], "快走");
    assert_eq!(
        body["activity_type"]["travel"], true,
        "what the change left out stays"
    );
    let r = app.post_activity(&token, &brisk("w-3", 100)).await;
    assert_eq!(r.assert_status(201)["status"], "credited", "{}", r.text);
    app.post(&approve(&change), &json!({}), Some(&checker))
        .await
        .assert_problem(409, "invalid_state");
    let pending = app
        .get(
            "/api/v1/admin/activity-type-changes?status=pending",
            Some(&checker),
        )
        .await;
    assert_eq!(pending.assert_status(200)["items"], json!([]));

    // Both steps are audited.
    let audit = app.get("/api/v1/admin/audit?limit=20", Some(&checker)).await;
    let actions: Vec<&str> = audit.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .filter(|a| a.starts_with("activity_type."))
        .collect();
    assert_eq!(
        actions,
        ["activity_type.change_approve", "activity_type.change_request"]
    );

    // Refusals: nothing to change, bad values, no such type or change.
    patch(&app, "walking", &json!({}), &maker)
        .await
        .assert_problem(422, "validation_failed");
    let r = patch(
        &app,
        "walking",
        &json!({"max_speed_kmh": 0, "claim_window_days": 400}),
        &maker,
    )
    .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), ["claim_window_days", "max_speed_kmh"]);
    patch(&app, "walking", &json!({"colour": "green"}), &maker)
        .await
        .assert_problem(422, "validation_failed");
    patch(&app, "no.such", &json!({"travel": false}), &maker)
        .await
        .assert_problem(404, "not_found");
    app.post(
        "/api/v1/admin/activity-type-changes/999999/approve",
        &json!({}),
        Some(&checker),
    )
    .await
    .assert_problem(404, "not_found");
}

async fn a_schema_change_may_only_widen(app: TestApp) {
    let (maker, checker) = (app.admin_token().await, app.admin_token().await);
    let schema = |walking: Value, required: Value| json!({"type": "object", "properties": walking, "required": required});
    let seeded = json!({
        "distance_m": {"type": "integer", "minimum": 1, "maximum": 100000},
        "duration_s": {"type": "integer", "minimum": 1, "maximum": 86400},
        "steps": {"type": "integer", "minimum": 1, "maximum": 200000}
    });
    let refused = |fields: Value, required: Value, field: &'static str| {
        let body = json!({"data_schema": schema(fields, required)});
        let (app, maker) = (&app, &maker);
        async move {
            let r = patch(app, "walking", &body, maker).await;
            r.assert_problem(409, "incompatible_schema");
            assert_eq!(r.error_fields(), [field], "{}", r.text);
        }
    };
    let mut narrower = seeded.clone();
    narrower["distance_m"]["maximum"] = json!(50000);
    refused(
        narrower,
        json!(["distance_m"]),
        "data_schema.properties.distance_m",
    )
    .await;
    let mut removed = seeded.clone();
    removed.as_object_mut().unwrap().remove("steps");
    refused(removed, json!(["distance_m"]), "data_schema.properties.steps").await;
    let mut retyped = seeded.clone();
    retyped["duration_s"]["type"] = json!("number");
    refused(
        retyped,
        json!(["distance_m"]),
        "data_schema.properties.duration_s",
    )
    .await;
    refused(
        seeded.clone(),
        json!(["distance_m", "steps"]),
        "data_schema.properties.steps",
    )
    .await;
    let mut required_new = seeded.clone();
    required_new["floors"] = json!({"type": "integer", "minimum": 0});
    refused(
        required_new,
        json!(["distance_m", "floors"]),
        "data_schema.properties.floors",
    )
    .await;

    // Widening and an optional new field pass, and are in force once approved.
    let mut wider = seeded.clone();
    wider["distance_m"]["maximum"] = json!(200000);
    wider["floors"] = json!({"type": "integer", "minimum": 0, "maximum": 500});
    let r = patch(
        &app,
        "walking",
        &json!({"data_schema": schema(wider, json!(["distance_m"]))}),
        &maker,
    )
    .await;
    let change = r.assert_status(202).clone();
    let token = app.new_user_token().await;
    let long_walk = json!({"client_event_id": "long", "activity_type": "walking", "evidence": "trace",
        "occurred_at": at(1000), "ended_at": at(10), "data": {"distance_m": 150000, "floors": 3}});
    app.post_activity(&token, &long_walk)
        .await
        .assert_problem(422, "validation_failed");
    app.post(&approve(&change), &json!({}), Some(&checker))
        .await
        .assert_status(200);
    let kind = activity_type(&app, "walking").await;
    assert_eq!(kind["data_schema"]["properties"]["distance_m"]["maximum"], 200000);
    let r = app.post_activity(&token, &long_walk).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// Travel is a property of the type, not of its code: a type created as travel counts rides, one created
/// without does not, whatever their names.
async fn a_type_created_as_travel_is_judged_as_travel(app: TestApp) {
    let (maker, checker) = (app.admin_token().await, app.admin_token().await);
    let (_, guangdong) = app.administrator("440000").await;
    let kind = |code: &str, travel: bool| {
        json!({"code": code, "name": code, "unit": "ride", "travel": travel, "max_speed_kmh": 60,
            "data_schema": {"type": "object", "properties": {"count": {"type": "integer", "minimum": 1}}}})
    };
    app.post(
        "/api/v1/admin/activity-types",
        &kind("ferry.river", true),
        Some(&guangdong),
    )
    .await
    .assert_problem(403, "out_of_scope");
    for (code, travel) in [("ferry.river", true), ("transit.parcel", false)] {
        let r = app
            .post("/api/v1/admin/activity-types", &kind(code, travel), Some(&maker))
            .await;
        let body = r.assert_status(201);
        assert_eq!(
            (&body["travel"], &body["max_speed_kmh"]),
            (&json!(travel), &json!(60))
        );
        let version = json!({"activity_type": code, "region_code": "CN",
            "effective_from": "2020-01-01T00:00:00+08:00", "formula": "count * k",
            "parameters": {"k": {"value": "1", "unit": "g/ride", "source": "test"}}, "citation": "test fixture"});
        app.in_force(&maker, &checker, &version).await;
    }
    let token = app.new_user_token().await;
    let thousand = |activity_type: &str| {
        json!({"client_event_id": activity_type, "activity_type": activity_type, "occurred_at": at(30),
               "evidence": "trace", "data": {"count": 1000}})
    };
    // A thousand rides take longer than a day; a thousand parcels take no time of their own.
    let rides = app.post_activity(&token, &thousand("ferry.river")).await;
    rides.assert_problem(422, "validation_failed");
    assert_eq!(rides.error_fields(), ["data.count"]);
    let parcels = app.post_activity(&token, &thousand("transit.parcel")).await;
    assert_eq!(
        parcels.assert_status(201)["status"],
        "credited",
        "{}",
        parcels.text
    );
}
