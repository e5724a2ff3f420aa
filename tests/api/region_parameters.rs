//! Region parameters as versions: inheritance, effective dating, maker-checker within scopes, what
//! activities record, and formulas reading `region.NAME`.

use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::helpers::{second_instance, Resp, TestApp};
use crate::{both_backends, both_backends_with};

both_backends!(
    a_draft_is_simulated_over_past_activities_before_it_is_activated,
    a_city_inherits_from_its_province_then_the_nation,
    the_drafter_and_admins_out_of_scope_cannot_activate,
    a_formula_reads_any_region_value_some_version_sets,
);
// These move the clock by hours: their tokens must outlive that.
both_backends_with!(drafts_are_checked_edited_and_deleted => |s| s.auth.access_token_ttl_secs = 86_400);
both_backends_with!(an_activity_earns_at_the_rate_in_force_when_it_occurred => |s| s.auth.access_token_ttl_secs = 86_400);

fn now(app: &TestApp) -> DateTime<Utc> {
    app.clock.clock().now()
}

/// An hour after the app's now: far enough ahead to be activated.
fn in_an_hour(app: &TestApp) -> DateTime<Utc> {
    now(app) + Duration::hours(1)
}

async fn draft(app: &TestApp, token: &str, region: &str, from: DateTime<Utc>, values: Value) -> Resp {
    let body = json!({"region_code": region, "effective_from": from.to_rfc3339(), "values": values,
        "citation": "test fixture"});
    app.post("/api/v1/admin/region-parameters", &body, Some(token))
        .await
}

async fn activate(app: &TestApp, token: &str, id: &str) -> Resp {
    let path = format!("/api/v1/admin/region-parameters/{id}/activate");
    app.post(&path, &json!({}), Some(token)).await
}

/// Drafts as `maker` and has `checker` activate; returns the version's id.
async fn in_force(
    app: &TestApp,
    maker: &str,
    checker: &str,
    region: &str,
    from: DateTime<Utc>,
    values: Value,
) -> String {
    let created = draft(app, maker, region, from, values).await;
    let id = created.assert_status(201)["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["status"], "draft");
    let active = activate(app, checker, &id).await;
    assert_eq!(active.assert_status(200)["status"], "active");
    id
}

async fn in_force_at(app: &TestApp, region: &str, at: DateTime<Utc>) -> Value {
    let at = at.to_rfc3339().replace('+', "%2B");
    let r = app
        .get(&format!("/api/v1/regions/{region}/parameters?at={at}"), None)
        .await;
    r.assert_status(200).clone()
}

/// (value, version id, region) of one value in force.
fn source(values: &Value, name: &str) -> (String, String, String) {
    let v = &values["values"][name];
    (
        v["value"].as_str().unwrap_or_default().to_string(),
        v["version_id"].as_str().unwrap_or_default().to_string(),
        v["region_code"].as_str().unwrap_or_default().to_string(),
    )
}

async fn a_city_inherits_from_its_province_then_the_nation(app: TestApp) {
    let other = second_instance(&app).await;
    let (_, guangdong_a) = app.administrator("440000").await;
    let (_, guangdong_b) = app.administrator("440000").await;
    let national = app.admin_token().await;
    let today = in_force_at(&app, "440300", now(&app)).await;
    let (ppg, nation_id, region) = source(&today, "points_per_gram");
    assert_eq!((ppg.as_str(), region.as_str()), ("1", "CN"), "{today}");
    assert_eq!(today["region_parameters_id"], nation_id.as_str());
    assert_eq!(source(&today, "trading_enabled").1, nation_id);
    assert_eq!(source(&today, "points_validity_days").0, "3650");

    let start = in_an_hour(&app);
    let province = in_force(
        &app,
        &guangdong_a,
        &guangdong_b,
        "440000",
        start,
        json!({"points_per_gram": "2", "ferry_g": "5"}),
    )
    .await;
    let city = in_force(
        &app,
        &guangdong_b,
        &national,
        "440300",
        start,
        json!({"grid_ef_g_per_kwh": "400"}),
    )
    .await;
    let later = start + Duration::minutes(1);
    let shenzhen = in_force_at(&app, "440300", later).await;
    assert_eq!(
        source(&shenzhen, "points_per_gram"),
        ("2".into(), province.clone(), "440000".into())
    );
    assert_eq!(source(&shenzhen, "ferry_g").1, province);
    assert_eq!(
        source(&shenzhen, "grid_ef_g_per_kwh"),
        ("400".into(), city.clone(), "440300".into())
    );
    assert_eq!(source(&shenzhen, "trading_enabled").1, nation_id);
    assert_eq!(shenzhen["region_parameters_id"], city.as_str());
    // Guangzhou has no version of its own: the province's, then the nation's.
    let guangzhou = in_force_at(&app, "440100", later).await;
    assert_eq!(source(&guangzhou, "points_per_gram").1, province);
    assert!(guangzhou["values"]["grid_ef_g_per_kwh"].is_null(), "{guangzhou}");
    assert_eq!(guangzhou["region_parameters_id"], province.as_str());
    // Another province reads the nation's.
    let wuhan = in_force_at(&app, "420100", later).await;
    assert_eq!(source(&wuhan, "points_per_gram").1, nation_id);
    assert!(wuhan["values"]["ferry_g"].is_null());
    // Before the start, nothing changed.
    let before = in_force_at(&app, "440300", start - Duration::microseconds(1)).await;
    assert_eq!(before["values"], today["values"]);
    assert_eq!(before["region_parameters_id"], today["region_parameters_id"]);

    // The other instance has the versions within a second (the activation bumped the catalog epoch).
    let deadline = Instant::now() + StdDuration::from_secs(1);
    loop {
        let seen = in_force_at(&other, "440300", later).await;
        if seen["region_parameters_id"] == city.as_str() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second instance never saw it: {seen}"
        );
        actix_web::rt::time::sleep(StdDuration::from_millis(50)).await;
    }

    // The region answers the rate in force now: once the start has passed, the province's.
    assert_eq!(
        app.get("/api/v1/regions/440300", None).await.body["points_per_gram"],
        "1"
    );
    app.clock.advance(Duration::hours(2));
    assert_eq!(
        app.get("/api/v1/regions/440300", None).await.body["points_per_gram"],
        "2"
    );
    let regions = app.get("/api/v1/regions", None).await;
    let wuhan = regions.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "420100")
        .unwrap()
        .clone();
    assert_eq!(wuhan["points_per_gram"], "1");
    app.get("/api/v1/regions/999999/parameters", None)
        .await
        .assert_problem(404, "not_found");
    let bad = app
        .get("/api/v1/regions/440300/parameters?at=yesterday", None)
        .await;
    bad.assert_problem(422, "validation_failed");
    assert_eq!(bad.error_fields(), ["at"]);
}

async fn the_drafter_and_admins_out_of_scope_cannot_activate(app: TestApp) {
    let (guangdong_a_id, guangdong_a) = app.administrator("440000").await;
    let (guangdong_b_id, guangdong_b) = app.administrator("440000").await;
    let (_, hubei) = app.administrator("420000").await;
    let created = draft(
        &app,
        &guangdong_a,
        "440300",
        in_an_hour(&app),
        json!({"points_per_gram": "1.5"}),
    )
    .await;
    let version = created.assert_status(201).clone();
    assert_eq!(version["status"], "draft");
    assert_eq!(version["drafted_by"], guangdong_a_id.to_string());
    let id = version["id"].as_str().unwrap();
    activate(&app, &guangdong_a, id)
        .await
        .assert_problem(403, "forbidden");
    activate(&app, &hubei, id)
        .await
        .assert_problem(403, "out_of_scope");
    draft(
        &app,
        &hubei,
        "440300",
        in_an_hour(&app),
        json!({"points_per_gram": "3"}),
    )
    .await
    .assert_problem(403, "out_of_scope");
    let active = activate(&app, &guangdong_b, id).await;
    let active = active.assert_status(200);
    assert_eq!(active["status"], "active");
    assert_eq!(active["approved_by"], guangdong_b_id.to_string());
    activate(&app, &guangdong_b, id)
        .await
        .assert_problem(409, "invalid_state");
    // An active version is neither edited nor deleted: a later one replaces it.
    let path = format!("/api/v1/admin/region-parameters/{id}");
    app.send(app.client.delete(app.url(&path)).bearer_auth(&guangdong_a))
        .await
        .assert_problem(409, "invalid_state");

    // Every step is in the audit log, against the version.
    let audit = app.get("/api/v1/admin/audit?limit=20", Some(&guangdong_b)).await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity"] == "region_parameter_version" && e["entity_id"] == id)
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["region_parameters.activate", "region_parameters.draft"]);
    let listed = app
        .get(
            "/api/v1/admin/region-parameters?region_code=440300&status=active",
            Some(&hubei),
        )
        .await;
    let ids: Vec<&str> = listed.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id]);
}

async fn drafts_are_checked_edited_and_deleted(app: TestApp) {
    let (a_id, a) = app.administrator("440000").await;
    let (b_id, b) = app.administrator("440300").await;
    // A start that has passed (or is too near) could change results already given.
    let r = draft(&app, &a, "440300", now(&app), json!({"points_per_gram": "2"})).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), ["effective_from"]);
    let r = draft(
        &app,
        &a,
        "440300",
        in_an_hour(&app),
        json!({"points_per_gram": "-1", "trading_enabled": "yes", "Bad": "1", "points_validity_days": "0.5"}),
    )
    .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(
        r.error_fields(),
        [
            "values.Bad",
            "values.points_per_gram",
            "values.points_validity_days",
            "values.trading_enabled"
        ]
    );
    draft(&app, &a, "999999", in_an_hour(&app), json!({}))
        .await
        .assert_problem(422, "validation_failed");

    // An edit by another administrator in scope makes it the drafter: the first may then approve.
    let created = draft(
        &app,
        &a,
        "440300",
        in_an_hour(&app),
        json!({"points_per_gram": "2"}),
    )
    .await;
    let id = created.assert_status(201)["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/admin/region-parameters/{id}");
    let edit = |token: &str, body: Value| {
        let request = app.client.patch(app.url(&path)).bearer_auth(token).json(&body);
        app.send(request)
    };
    let edited = edit(
        &b,
        json!({"values": {"points_per_gram": "3", "trading_enabled": "0"}}),
    )
    .await;
    let edited = edited.assert_status(200).clone();
    assert_eq!(
        edited["values"],
        json!({"points_per_gram": "3", "trading_enabled": "0"})
    );
    assert_eq!(edited["drafted_by"], b_id.to_string());
    edit(&b, json!({"values": {"trading_enabled": "2"}}))
        .await
        .assert_problem(422, "validation_failed");
    activate(&app, &b, &id).await.assert_problem(403, "forbidden");
    let (_, hubei) = app.administrator("420000").await;
    edit(&hubei, json!({"citation": "mine"}))
        .await
        .assert_problem(403, "out_of_scope");
    let got = app.get(&path, Some(&hubei)).await;
    assert_eq!(got.assert_status(200)["values"]["points_per_gram"], "3");
    assert_eq!(got.body["drafted_by"], b_id.to_string());
    assert_ne!(a_id, b_id);

    // A draft whose start passed while it waited cannot be activated until it is moved.
    app.clock.advance(Duration::hours(2));
    activate(&app, &a, &id).await.assert_problem(409, "invalid_state");
    let moved = edit(&b, json!({"effective_from": in_an_hour(&app).to_rfc3339()})).await;
    moved.assert_status(200);
    activate(&app, &a, &id).await.assert_status(200);

    // A deleted draft is gone.
    let doomed = draft(&app, &a, "440000", in_an_hour(&app), json!({"ferry_g": "1"})).await;
    let doomed = doomed.assert_status(201)["id"].as_str().unwrap().to_string();
    let doomed_path = format!("/api/v1/admin/region-parameters/{doomed}");
    app.send(app.client.delete(app.url(&doomed_path)).bearer_auth(&b))
        .await
        .assert_problem(403, "out_of_scope");
    let deleted = app
        .send(app.client.delete(app.url(&doomed_path)).bearer_auth(&a))
        .await;
    assert_eq!(deleted.status, 204);
    app.get(&doomed_path, Some(&a))
        .await
        .assert_problem(404, "not_found");
    let audit = app.get("/api/v1/admin/audit?limit=20", Some(&a)).await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity"] == "region_parameter_version")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "region_parameters.delete",
            "region_parameters.draft",
            "region_parameters.activate",
            "region_parameters.edit",
            "region_parameters.edit",
            "region_parameters.draft"
        ]
    );
}

fn walk(id: &str, at: DateTime<Utc>) -> Value {
    json!({"client_event_id": id, "activity_type": "walking", "occurred_at": at.to_rfc3339(),
           "evidence": "trace", "data": {"distance_m": 3000}})
}

/// The region-parameter version an activity recorded.
async fn recorded_version(app: &TestApp, activity_id: &Value) -> Option<i64> {
    use diesel::prelude::*;
    use tanhui::db::schema::activities;
    let id: i64 = activity_id.as_str().unwrap().parse().unwrap();
    app.with_conn(move |conn| {
        activities::table
            .find(id)
            .select(activities::region_parameters_id)
            .first::<Option<i64>>(conn)
            .unwrap()
    })
    .await
}

async fn an_activity_earns_at_the_rate_in_force_when_it_occurred(app: TestApp) {
    let (_, maker) = app.administrator("440000").await;
    let checker = app.admin_token().await;
    let token = app.new_user_token().await; // homed in Shenzhen
    let nation: i64 = in_force_at(&app, "440300", now(&app)).await["region_parameters_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let start = in_an_hour(&app);
    let doubled = in_force(
        &app,
        &maker,
        &checker,
        "440300",
        start,
        json!({"points_per_gram": "2"}),
    )
    .await;
    let doubled: i64 = doubled.parse().unwrap();

    // 3 km on foot: 85.8 → 86 g, traced (full weight).
    let before = app
        .post_activity(&token, &walk("before", now(&app) - Duration::minutes(30)))
        .await;
    let before = before.assert_status(201).clone();
    assert_eq!(
        (before["reduction_g"].as_i64(), before["points"].as_i64()),
        (Some(86), Some(86))
    );
    assert_eq!(recorded_version(&app, &before["activity_id"]).await, Some(nation));

    app.clock.advance(Duration::hours(2));
    let after = app.post_activity(&token, &walk("after", now(&app))).await;
    let after = after.assert_status(201).clone();
    assert_eq!(
        (after["reduction_g"].as_i64(), after["points"].as_i64()),
        (Some(86), Some(172))
    );
    assert_eq!(recorded_version(&app, &after["activity_id"]).await, Some(doubled));
    // Posted now, but it occurred before the change: the rate then.
    let late = app
        .post_activity(&token, &walk("late", start - Duration::minutes(20)))
        .await;
    let late = late.assert_status(201).clone();
    assert_eq!(
        (late["reduction_g"].as_i64(), late["points"].as_i64()),
        (Some(86), Some(86))
    );
    assert_eq!(recorded_version(&app, &late["activity_id"]).await, Some(nation));
    assert_eq!(app.balance(&token).await, 86 + 172 + 86);
    // The dry run, too, reads the rate at the time asked.
    for (at, points) in [(start - Duration::seconds(1), 86), (start, 172)] {
        let body = json!({"activity_type": "walking", "region_code": "440300", "occurred_at": at.to_rfc3339(),
            "data": {"distance_m": 3000}, "evidence": "trace"});
        let q = app.post("/api/v1/quantify", &body, Some(&token)).await;
        assert_eq!(q.assert_status(200)["points"], points, "{at}");
    }
    // Every figure still reproduces from its recorded versions after the change.
    let report = app.verify().await;
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
}

async fn a_formula_reads_any_region_value_some_version_sets(app: TestApp) {
    let (maker, checker) = (app.admin_token().await, app.admin_token().await);
    let ferry = json!({"code": "transit.ferry", "name": "轮渡", "unit": "ride",
        "data_schema": {"type": "object", "properties": {"count": {"type": "integer", "minimum": 1, "maximum": 20}}, "required": ["count"]}});
    app.post("/api/v1/admin/activity-types", &ferry, Some(&maker))
        .await
        .assert_status(201);
    let methodology = json!({
        "activity_type": "transit.ferry", "region_code": "CN",
        "effective_from": "2020-01-01T00:00:00+08:00", "parameters": {},
        "formula": "count * region.ferry_g", "citation": "test fixture"
    });
    // No version sets `ferry_g` yet: the formula names something unknown.
    app.post("/api/v1/admin/methodologies", &methodology, Some(&maker))
        .await
        .assert_problem(422, "invalid_formula");
    let start = in_an_hour(&app);
    let wuhan = in_force(&app, &maker, &checker, "420100", start, json!({"ferry_g": "120"})).await;
    app.in_force(&maker, &checker, &methodology).await;

    let ride = |region: &str, at: DateTime<Utc>| {
        json!({"activity_type": "transit.ferry", "region_code": region, "occurred_at": at.to_rfc3339(),
            "data": {"count": 2}, "evidence": "trace"})
    };
    let q = app
        .post("/api/v1/quantify", &ride("420100", start), Some(&maker))
        .await;
    let q = q.assert_status(200).clone();
    assert_eq!(q["reduction_g"], 240);
    assert!(
        q["breakdown"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["expr"] == "region.ferry_g" && s["value"] == "120"),
        "{q}"
    );
    // Where, or when, no version in force sets it, quantification says which value is missing.
    for (region, at) in [("440300", start), ("420100", start - Duration::seconds(1))] {
        let r = app
            .post("/api/v1/quantify", &ride(region, at), Some(&maker))
            .await;
        r.assert_problem(422, "no_region_value");
        assert!(
            r.body["detail"].as_str().unwrap().contains("ferry_g"),
            "{}",
            r.text
        );
    }
    assert_eq!(
        source(&in_force_at(&app, "420100", start).await, "ferry_g").1,
        wuhan
    );
}

async fn a_draft_is_simulated_over_past_activities_before_it_is_activated(app: TestApp) {
    let (_, guangdong) = app.administrator("440000").await;
    let (_, hubei) = app.administrator("420000").await;
    let window_start = now(&app) - Duration::hours(3);
    // Two people walk in Shenzhen (86 g and 86 points each at today's rate of 1), one twice.
    let (first, second) = (app.new_user_token().await, app.new_user_token().await);
    for (token, id, minutes_ago) in [(&first, "w-1", 120), (&first, "w-2", 60), (&second, "w-3", 90)] {
        let r = app
            .post_activity(token, &walk(id, now(&app) - Duration::minutes(minutes_ago)))
            .await;
        assert_eq!(r.assert_status(201)["points"], 86);
    }
    let drafted = draft(
        &app,
        &guangdong,
        "440300",
        in_an_hour(&app),
        json!({"points_per_gram": "2"}),
    )
    .await;
    let id = drafted.assert_status(201)["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/admin/region-parameters/{id}/simulate");
    let window = json!({"from": window_start.to_rfc3339(), "to": now(&app).to_rfc3339()});
    let simulated = app
        .post(&path, &window, Some(&guangdong))
        .await
        .assert_status(200)
        .clone();
    assert_eq!(simulated["activities"], 3);
    assert_eq!(
        (
            simulated["current_total_g"].as_i64(),
            simulated["delta_g"].as_i64()
        ),
        (Some(258), Some(0))
    );
    assert_eq!(
        (
            simulated["current_points"].as_i64(),
            simulated["draft_points"].as_i64()
        ),
        (Some(258), Some(516))
    );
    assert_eq!(
        (simulated["delta_points"].as_i64(), simulated["people"].as_i64()),
        (Some(258), Some(2))
    );
    assert_eq!(simulated["by_region"][0]["region_code"], "440300");
    assert_eq!(simulated["by_region"][0]["macro_region"], "east");
    // Only walks: the same; only metro rides: nothing to compare.
    let walks =
        json!({"from": window_start.to_rfc3339(), "to": now(&app).to_rfc3339(), "activity_type": "walking"});
    assert_eq!(
        app.post(&path, &walks, Some(&guangdong)).await.body["delta_points"],
        258
    );
    let rides = json!({"from": window_start.to_rfc3339(), "to": now(&app).to_rfc3339(), "activity_type": "transit.metro"});
    assert_eq!(
        app.post(&path, &rides, Some(&guangdong)).await.body["activities"],
        0
    );
    // Out of scope, outside the draft's region, or an empty window: refused, nothing changes.
    app.post(&path, &window, Some(&hubei))
        .await
        .assert_problem(403, "out_of_scope");
    let elsewhere =
        json!({"from": window_start.to_rfc3339(), "to": now(&app).to_rfc3339(), "region_code": "420100"});
    app.post(&path, &elsewhere, Some(&guangdong))
        .await
        .assert_problem(422, "validation_failed");
    let empty = json!({"from": now(&app).to_rfc3339(), "to": window_start.to_rfc3339()});
    app.post(&path, &empty, Some(&guangdong))
        .await
        .assert_problem(422, "validation_failed");
    let too_long =
        json!({"from": (now(&app) - Duration::days(400)).to_rfc3339(), "to": now(&app).to_rfc3339()});
    app.post(&path, &too_long, Some(&guangdong))
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(
        app.get("/api/v1/regions/440300", None).await.body["points_per_gram"],
        "1"
    );
}
