//! Regions, activity types, methodology versions, quantification, the audit log and cache propagation.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{second_instance, Resp, TestApp};

both_backends!(
    regions_are_seeded_with_their_hierarchy,
    activity_types_are_seeded_and_admins_add_more,
    quantify_uses_the_version_in_force,
    quantify_errors_are_clear,
    drafts_need_a_second_admin_and_follow_the_lifecycle,
    bad_drafts_are_refused_and_nothing_is_stored,
    results_round_half_to_even,
    methodologies_are_listed_and_filtered,
    an_activation_reaches_another_instance_within_a_second,
    draft_texts_and_lists_are_bounded,
    activity_type_schemas_are_bounded,
    onboarding_region_lists_are_bounded,
);

async fn quantify(app: &TestApp, token: &str, body: Value) -> crate::helpers::Resp {
    app.post("/api/v1/quantify", &body, Some(token)).await
}

fn metro(region: &str, at: &str, data: Value) -> Value {
    json!({"activity_type": "transit.metro", "region_code": region, "occurred_at": at, "data": data})
}

async fn regions_are_seeded_with_their_hierarchy(app: TestApp) {
    let r = app.get("/api/v1/regions", None).await;
    let items = r.assert_status(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 42, "the nation, 31 provinces and 10 pilot cities");
    assert_eq!(items.iter().filter(|r| r["level"] == "province").count(), 31);
    let r = app.get("/api/v1/regions/440300", None).await;
    let sz = r.assert_status(200);
    assert_eq!(sz["name"], "深圳");
    assert_eq!(sz["parent_code"], "440000");
    assert_eq!(sz["level"], "city");
    assert_eq!(sz["macro_region"], "east");
    assert_eq!(sz["grid_region"], "south");
    assert_eq!(sz["points_per_gram"], "1");
    let liaoning = app.get("/api/v1/regions/210000", None).await;
    assert_eq!(liaoning.body["macro_region"], "east");
    assert_eq!(liaoning.body["nbs_region"], "northeast");
    app.get("/api/v1/regions/999999", None)
        .await
        .assert_problem(404, "not_found");
}

async fn activity_types_are_seeded_and_admins_add_more(app: TestApp) {
    let r = app.get("/api/v1/activity-types", None).await;
    let codes: Vec<String> = r.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["code"].as_str().unwrap().to_string())
        .collect();
    for code in [
        "walking",
        "cycling.bikeshare",
        "transit.bus",
        "transit.metro",
        "electricity.saving",
        "waste.sorting",
        "waste.textile",
        "secondhand.phone",
    ] {
        assert!(codes.contains(&code.to_string()), "{code}");
    }
    let admin = app.admin_token().await;
    let user = app.new_user_token().await;
    let ferry = json!({"code": "transit.ferry", "name": "轮渡", "unit": "ride",
        "data_schema": {"type": "object", "properties": {"count": {"type": "integer", "minimum": 1, "maximum": 20}}, "required": ["count"]}});
    app.post("/api/v1/admin/activity-types", &ferry, Some(&user))
        .await
        .assert_problem(403, "forbidden");
    app.post("/api/v1/admin/activity-types", &ferry, None)
        .await
        .assert_problem(401, "unauthorized");
    let r = app
        .post("/api/v1/admin/activity-types", &ferry, Some(&admin))
        .await;
    assert_eq!(r.assert_status(201)["code"], "transit.ferry");
    app.post("/api/v1/admin/activity-types", &ferry, Some(&admin))
        .await
        .assert_problem(409, "conflict");

    let mut bad = ferry.clone();
    bad["code"] = json!("Ferry Boat");
    bad["data_schema"] = json!({"type": "object", "properties": {"count": {"type": "string"}}});
    let r = app.post("/api/v1/admin/activity-types", &bad, Some(&admin)).await;
    r.assert_problem(422, "validation_failed");
    let fields = r.error_fields();
    assert!(
        fields.contains(&"code") && fields.contains(&"data_schema.properties.count"),
        "{fields:?}"
    );

    // A type without any methodology quantifies to a clear error.
    let r = quantify(
        &app,
        &user,
        json!({"activity_type": "transit.ferry", "region_code": "440300",
        "occurred_at": "2025-01-01T08:00:00+08:00", "data": {"count": 1}}),
    )
    .await;
    r.assert_problem(422, "no_methodology");
    let audit = app.get("/api/v1/admin/audit", Some(&admin)).await;
    assert_eq!(
        audit.assert_status(200)["items"][0]["action"],
        "activity_type.create"
    );
}

async fn quantify_uses_the_version_in_force(app: TestApp) {
    let token = app.new_user_token().await;
    // Shenzhen's own metro version: 3.2 km × 46.7 g/pkm = 149.44 g → 149.
    let r = quantify(
        &app,
        &token,
        metro("440300", "2025-03-01T08:00:00+08:00", json!({"distance_m": 3200})),
    )
    .await;
    let body = r.assert_status(200).clone();
    assert_eq!(body["reduction_g"], 149);
    assert_eq!(body["methodology"]["region_code"], "440300");
    assert_eq!(body["points"], 74, "self_report earns half, rounded down");
    assert_eq!(body["evidence"], "self_report");
    let steps = body["breakdown"].as_array().unwrap();
    assert!(
        steps
            .iter()
            .any(|s| s["expr"] == "metro_saving_g_per_pkm" && s["value"] == "46.7"),
        "{steps:?}"
    );
    assert!(
        steps
            .iter()
            .any(|s| s["expr"] == "distance_m / 1000" && s["value"] == "3.2"),
        "{steps:?}"
    );
    let mut traced = metro("440300", "2025-03-01T08:00:00+08:00", json!({"distance_m": 3200}));
    traced["evidence"] = json!("trace");
    assert_eq!(quantify(&app, &token, traced).await.body["points"], 149);

    // Wuhan's 2023 version (distance) until 2024-08-01 00:00 Beijing time, then 2024's (rides).
    let r = quantify(
        &app,
        &token,
        metro(
            "420100",
            "2024-07-31T23:59:59+08:00",
            json!({"distance_m": 10000}),
        ),
    )
    .await;
    assert_eq!(r.assert_status(200)["reduction_g"], 784);
    assert_eq!(r.body["methodology"]["version"], 1);
    let r = quantify(
        &app,
        &token,
        metro("420100", "2024-07-31T16:00:00Z", json!({"count": 2})),
    )
    .await;
    assert_eq!(r.assert_status(200)["reduction_g"], 340);
    assert_eq!(r.body["methodology"]["version"], 2);
    let r = quantify(
        &app,
        &token,
        metro(
            "420100",
            "2024-08-01T00:00:00+08:00",
            json!({"distance_m": 10000}),
        ),
    )
    .await;
    r.assert_problem(422, "missing_field");
    // Before Wuhan had a version of its own, the nation's applies.
    let r = quantify(
        &app,
        &token,
        metro(
            "420100",
            "2023-03-01T08:00:00+08:00",
            json!({"distance_m": 10000}),
        ),
    )
    .await;
    assert_eq!(r.assert_status(200)["methodology"]["region_code"], "CN");
    assert_eq!(r.body["reduction_g"], 467);

    // Beijing has no metro version: city ▸ province ▸ nation.
    let r = quantify(
        &app,
        &token,
        metro(
            "110000",
            "2025-03-01T08:00:00+08:00",
            json!({"distance_m": 10000}),
        ),
    )
    .await;
    assert_eq!(r.assert_status(200)["methodology"]["region_code"], "CN");

    // The region's grid factor for the activity's year: southern grid 2023 = 404.2 g/kWh.
    let power = |region: &str, at: &str| {
        json!({"activity_type": "electricity.saving", "region_code": region,
        "occurred_at": at, "data": {"kwh": 2.5}})
    };
    let r = quantify(&app, &token, power("440300", "2023-06-01T12:00:00+08:00")).await;
    assert_eq!(
        r.assert_status(200)["reduction_g"],
        1010,
        "2.5 × 404.2 = 1010.5 → 1010 (half to even)"
    );
    let r = quantify(&app, &token, power("440300", "2026-06-01T12:00:00+08:00")).await;
    assert_eq!(
        r.assert_status(200)["reduction_g"],
        1010,
        "later years fall back to the latest factor"
    );
    let r = quantify(&app, &token, power("CN", "2023-06-01T12:00:00+08:00")).await;
    assert_eq!(
        r.assert_status(200)["reduction_g"],
        1326,
        "national 2023: 2.5 × 530.6 = 1326.5 → 1326"
    );
    let r = quantify(&app, &token, power("420100", "2023-06-01T12:00:00+08:00")).await;
    assert_eq!(
        r.assert_status(200)["reduction_g"],
        1312,
        "Wuhan's own 525 g/kWh: 1312.5 → 1312 (half to even)"
    );
}

async fn quantify_errors_are_clear(app: TestApp) {
    let token = app.new_user_token().await;
    let at = "2025-03-01T08:00:00+08:00";
    let mut body = metro("440300", at, json!({"distance_m": 3200}));
    body["activity_type"] = json!("teleport");
    quantify(&app, &token, body)
        .await
        .assert_problem(422, "unknown_activity_type");
    quantify(&app, &token, metro("999999", at, json!({"distance_m": 3200})))
        .await
        .assert_problem(422, "unknown_region");
    let r = quantify(
        &app,
        &token,
        metro("440300", at, json!({"distance_m": 1000000000})),
    )
    .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "data.distance_m");
    // A field the type requires and the formula needs, absent: the contract's `missing_field`.
    let walk = json!({"activity_type": "walking", "region_code": "440300", "occurred_at": at, "data": {}});
    let r = quantify(&app, &token, walk).await;
    r.assert_problem(422, "missing_field");
    assert_eq!(r.body["errors"][0]["field"], "data.distance_m");
    let r = quantify(&app, &token, metro("440300", at, json!({"distance_m": -5}))).await;
    r.assert_problem(422, "validation_failed");
    let r = quantify(&app, &token, metro("440300", at, json!({"distance_m": "far"}))).await;
    r.assert_problem(422, "validation_failed");
    let r = quantify(&app, &token, metro("440300", at, json!({"speed": 3}))).await;
    r.assert_problem(422, "validation_failed");
    let r = quantify(
        &app,
        &token,
        metro("440300", "2025-03-01 08:00:00", json!({"distance_m": 3200})),
    )
    .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "occurred_at");
    quantify(
        &app,
        &token,
        metro("440300", "2020-01-01T00:00:00+08:00", json!({"distance_m": 3200})),
    )
    .await
    .assert_problem(422, "no_methodology");
    app.post(
        "/api/v1/quantify",
        &metro("440300", at, json!({"distance_m": 1})),
        None,
    )
    .await
    .assert_problem(401, "unauthorized");
}

fn bus_draft(region: &str, formula: &str, k: &str) -> Value {
    json!({
        "activity_type": "transit.bus", "region_code": region,
        "effective_from": "2020-01-01T00:00:00+08:00",
        "parameters": {"k": {"value": k, "unit": "g/ride", "source": "test"}},
        "formula": formula, "daily_cap_g": 1000, "citation": "test fixture"
    })
}

async fn drafts_need_a_second_admin_and_follow_the_lifecycle(app: TestApp) {
    let (maker, checker) = (app.admin_token().await, app.admin_token().await);
    let user = app.new_user_token().await;
    let bus = |n: u32| {
        json!({"activity_type": "transit.bus", "region_code": "110000",
        "occurred_at": "2025-03-01T08:00:00+08:00", "data": {"count": n}})
    };
    assert_eq!(
        quantify(&app, &user, bus(1)).await.body["reduction_g"],
        80,
        "national 80 g per ride"
    );

    app.post(
        "/api/v1/admin/methodologies",
        &bus_draft("110000", "count * k", "100"),
        Some(&user),
    )
    .await
    .assert_problem(403, "forbidden");
    // The value's spaces are dropped when it is saved: with them, the version in force lacked `k`.
    let id = app
        .draft(&maker, &bus_draft("110000", "count * k", " 100 "))
        .await;
    assert_eq!(
        quantify(&app, &user, bus(1)).await.body["reduction_g"],
        80,
        "a draft is not in force"
    );

    let activate = format!("/api/v1/admin/methodologies/{id}/activate");
    app.post(&activate, &json!({}), Some(&maker))
        .await
        .assert_problem(403, "forbidden");
    app.post(&activate, &json!({}), Some(&user))
        .await
        .assert_problem(403, "forbidden");
    let r = app.post(&activate, &json!({}), Some(&checker)).await;
    assert_eq!(r.assert_status(200)["status"], "active");
    assert!(r.body["approved_by"].is_string());
    // In force at once on this instance.
    let r = quantify(&app, &user, bus(2)).await;
    assert_eq!(r.body["reduction_g"], 200);
    assert_eq!(r.body["methodology"]["id"], id.as_str());
    app.post(&activate, &json!({}), Some(&checker))
        .await
        .assert_problem(409, "invalid_state");

    // Retiring is requested by one administrator and approved by another.
    let retire = format!("/api/v1/admin/methodologies/{id}/retire");
    assert_eq!(
        app.post(&retire, &json!({}), Some(&checker))
            .await
            .assert_status(202)["status"],
        "retire_pending"
    );
    let approve_retire = format!("{retire}/approve");
    app.post(&approve_retire, &json!({}), Some(&checker))
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(
        app.post(&approve_retire, &json!({}), Some(&maker))
            .await
            .assert_status(200)["status"],
        "retired"
    );
    app.post(&activate, &json!({}), Some(&checker))
        .await
        .assert_problem(409, "invalid_state");
    app.post(&retire, &json!({}), Some(&checker))
        .await
        .assert_problem(409, "invalid_state");
    assert_eq!(
        quantify(&app, &user, bus(1)).await.body["reduction_g"],
        80,
        "back to the nation's"
    );
    app.post(
        "/api/v1/admin/methodologies/999999/activate",
        &json!({}),
        Some(&checker),
    )
    .await
    .assert_problem(404, "not_found");
    app.post(
        "/api/v1/admin/methodologies/abc/activate",
        &json!({}),
        Some(&checker),
    )
    .await
    .assert_problem(400, "invalid_path");

    // Every change is audited with who, and before/after.
    let r = app.get("/api/v1/admin/audit?limit=4", Some(&checker)).await;
    let items = r.assert_status(200)["items"].as_array().unwrap().clone();
    let actions: Vec<&str> = items.iter().map(|i| i["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "methodology.retire",
            "methodology.retire_request",
            "methodology.activate",
            "methodology.draft"
        ]
    );
    assert_eq!(items[2]["before"]["status"], "draft");
    assert_eq!(items[2]["after"]["status"], "active");
    assert!(r.body["next_cursor"].is_string());
    let next = format!(
        "/api/v1/admin/audit?limit=4&cursor={}",
        r.body["next_cursor"].as_str().unwrap()
    );
    let older = app.get(&next, Some(&checker)).await;
    assert!(older.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["id"] != items[3]["id"]));
    app.get("/api/v1/admin/audit", Some(&user))
        .await
        .assert_problem(403, "forbidden");
}

async fn bad_drafts_are_refused_and_nothing_is_stored(app: TestApp) {
    let admin = app.admin_token().await;
    let before = app.get("/api/v1/methodologies?limit=200", None).await.body["items"]
        .as_array()
        .unwrap()
        .len();

    let r = app
        .post(
            "/api/v1/admin/methodologies",
            &bus_draft("110000", "count * * k", "1"),
            Some(&admin),
        )
        .await;
    r.assert_problem(422, "invalid_formula");
    assert!(
        r.body["detail"].as_str().unwrap().contains("column 9"),
        "{}",
        r.text
    );

    let r = app
        .post(
            "/api/v1/admin/methodologies",
            &bus_draft("110000", "count * car_factor", "1"),
            Some(&admin),
        )
        .await;
    r.assert_problem(422, "invalid_formula");
    assert!(
        r.body["detail"].as_str().unwrap().contains("car_factor"),
        "{}",
        r.text
    );
    let r = app
        .post(
            "/api/v1/admin/methodologies",
            &bus_draft("110000", "count * region.sunshine", "1"),
            Some(&admin),
        )
        .await;
    r.assert_problem(422, "invalid_formula");

    let r = app
        .post(
            "/api/v1/admin/methodologies",
            &bus_draft("110000", "count * k", "ten"),
            Some(&admin),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "parameters.k.value");

    let mut backwards = bus_draft("110000", "count * k", "1");
    backwards["effective_to"] = json!("2019-01-01T00:00:00+08:00");
    let r = app
        .post("/api/v1/admin/methodologies", &backwards, Some(&admin))
        .await;
    assert_eq!(r.body["errors"][0]["field"], "effective_to");

    let mut unknown = bus_draft("999999", "count * k", "1");
    unknown["activity_type"] = json!("teleport");
    let r = app
        .post("/api/v1/admin/methodologies", &unknown, Some(&admin))
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"].as_array().unwrap().len(), 2);

    let mut no_offset = bus_draft("110000", "count * k", "1");
    no_offset["effective_from"] = json!("2020-01-01T00:00:00");
    app.post("/api/v1/admin/methodologies", &no_offset, Some(&admin))
        .await
        .assert_problem(422, "validation_failed");

    let after = app.get("/api/v1/methodologies?limit=200", None).await.body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);
}

async fn results_round_half_to_even(app: TestApp) {
    let (maker, checker) = (app.admin_token().await, app.admin_token().await);
    let user = app.new_user_token().await;
    app.in_force(&maker, &checker, &bus_draft("370200", "count * k", "0.5"))
        .await;
    for (count, grams) in [(1, 0), (3, 2), (5, 2), (7, 4), (9, 4)] {
        let r = quantify(
            &app,
            &user,
            json!({"activity_type": "transit.bus", "region_code": "370200",
            "occurred_at": "2025-03-01T08:00:00+08:00", "data": {"count": count}}),
        )
        .await;
        assert_eq!(r.assert_status(200)["reduction_g"], grams, "{count} × 0.5");
    }
    // A negative result counts as zero.
    app.in_force(&maker, &checker, &bus_draft("371000", "count * k - 1000", "1"))
        .await;
    let r = quantify(
        &app,
        &user,
        json!({"activity_type": "transit.bus", "region_code": "371000",
        "occurred_at": "2025-03-01T08:00:00+08:00", "data": {"count": 1}}),
    )
    .await;
    assert_eq!(r.assert_status(200)["reduction_g"], 0);
    // Division by zero at evaluation time is a clean 422.
    app.in_force(&maker, &checker, &bus_draft("330800", "count / (k - k)", "1"))
        .await;
    let r = quantify(
        &app,
        &user,
        json!({"activity_type": "transit.bus", "region_code": "330800",
        "occurred_at": "2025-03-01T08:00:00+08:00", "data": {"count": 1}}),
    )
    .await;
    r.assert_problem(422, "evaluation_failed");
}

async fn methodologies_are_listed_and_filtered(app: TestApp) {
    let r = app
        .get(
            "/api/v1/methodologies?activity_type=transit.metro&region_code=420100",
            None,
        )
        .await;
    let items = r.assert_status(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    assert!(items
        .iter()
        .all(|v| v["citation"].as_str().unwrap().contains("Wuhan")));
    assert_eq!(items[1]["effective_to"], "2024-07-31T16:00:00Z");
    // Parameters with no value filter nothing.
    let everything = app.get("/api/v1/methodologies?limit=200", None).await;
    let template = app
        .get(
            "/api/v1/methodologies?activity_type=&region_code=&status=&limit=200",
            None,
        )
        .await;
    assert_eq!(template.assert_status(200)["items"], everything.body["items"]);
    assert!(!everything.body["items"].as_array().unwrap().is_empty());
    let r = app.get("/api/v1/methodologies?limit=2", None).await;
    assert_eq!(r.assert_status(200)["items"].as_array().unwrap().len(), 2);
    let cursor = r.body["next_cursor"].as_str().unwrap().to_string();
    let r = app
        .get(&format!("/api/v1/methodologies?limit=2&cursor={cursor}"), None)
        .await;
    assert_eq!(r.assert_status(200)["items"].as_array().unwrap().len(), 2);
    app.get("/api/v1/methodologies?status=maybe", None)
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/v1/methodologies?limit=500", None)
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/v1/methodologies?limit=x", None)
        .await
        .assert_problem(400, "invalid_query");
    app.get("/api/v1/methodologies?cursor=bogus", None)
        .await
        .assert_problem(422, "validation_failed");
}

async fn an_activation_reaches_another_instance_within_a_second(app: TestApp) {
    let other = second_instance(&app).await;
    let (maker, checker) = (app.admin_token().await, app.admin_token().await);
    let user = app.new_user_token().await;
    let bus = json!({"activity_type": "transit.bus", "region_code": "510500",
        "occurred_at": "2025-03-01T08:00:00+08:00", "data": {"count": 1}});
    assert_eq!(quantify(&other, &user, bus.clone()).await.body["reduction_g"], 80);
    app.in_force(&maker, &checker, &bus_draft("510500", "count * k", "123"))
        .await;
    let activated = Instant::now();
    loop {
        let r = quantify(&other, &user, bus.clone()).await;
        if r.body["reduction_g"] == 123 {
            break;
        }
        // The catalog is refreshed every second; the bound leaves room for a machine busy with other tests.
        assert!(
            activated.elapsed() < Duration::from_secs(10),
            "not in force on the other instance after 10 s"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

both_backends!(simulation_compares_a_draft_with_what_was_credited);
both_backends!(simulation_finds_activities_by_when_they_occurred_not_when_they_arrived);
both_backends!(simulation_answers_points_people_and_macro_regions);
both_backends!(simulation_needs_the_drafts_region_in_scope);
both_backends!(simulation_pages_through_activities_that_arrived_together);

/// Simulates methodology version `id` over `window` (`{from, to, region_code?}`), as `token`.
async fn simulate(app: &TestApp, token: &str, id: &str, window: &Value) -> Resp {
    let path = format!("/api/v1/admin/methodologies/{id}/simulate");
    app.post(&path, window, Some(token)).await
}

async fn simulation_compares_a_draft_with_what_was_credited(app: TestApp) {
    let (maker, user) = (app.admin_token().await, app.new_user_token().await);
    let now = chrono::Utc::now();
    let ride = |id: &str, region: &str, minutes: i64| {
        json!({"client_event_id": id, "activity_type": "transit.metro", "region_code": region, "evidence": "trace",
            "occurred_at": (now - chrono::Duration::minutes(minutes)).to_rfc3339(), "data": {"count": 1, "distance_m": 10000}})
    };
    let mut beijing_g = 0;
    for (id, region, minutes) in [
        ("s1", "420100", 300),
        ("s2", "420100", 200),
        ("s3", "440300", 100),
        ("s4", "110000", 150),
    ] {
        let r = app.post_activity(&user, &ride(id, region, minutes)).await;
        let reduction_g = r.assert_status(201)["reduction_g"].as_i64().unwrap();
        if region == "110000" {
            beijing_g = reduction_g;
        }
    }
    let window = json!({"from": (now - chrono::Duration::days(1)).to_rfc3339(), "to": (now + chrono::Duration::minutes(1)).to_rfc3339()});
    // Drafts in force from yesterday: later than every seeded version, so each takes its region's rides.
    let since_yesterday = |mut body: Value| {
        body["activity_type"] = json!("transit.metro");
        body["effective_from"] = json!((now - chrono::Duration::days(1)).to_rfc3339());
        body
    };

    // A Wuhan draft paying 200 g a ride instead of 170.
    let wuhan = since_yesterday(bus_draft("420100", "count * k", "200"));
    let id = app.draft(&maker, &wuhan).await;
    let r = simulate(&app, &maker, &id, &window).await;
    let sim = r.assert_status(200).clone();
    assert_eq!(sim["activities"], 2);
    assert_eq!(sim["current_total_g"], 340);
    assert_eq!(sim["draft_total_g"], 400);
    assert_eq!(sim["delta_g"], 60);
    assert_eq!(
        sim["by_region"],
        json!([{"region_code": "420100", "macro_region": "central", "activities": 2, "delta_g": 60,
                "delta_points": 60, "people": 1}])
    );

    // A national draft takes only what no city's own version takes: Beijing's ride, not Wuhan's or
    // Shenzhen's, whose own versions would still quantify theirs.
    let national = since_yesterday(bus_draft("CN", "distance_m / 1000 * k", "50"));
    let id = app.draft(&maker, &national).await;
    let sim = simulate(&app, &maker, &id, &window).await;
    assert_eq!(
        sim.assert_status(200)["by_region"],
        json!([{"region_code": "110000", "macro_region": "east", "activities": 1, "delta_g": 500 - beijing_g,
                "delta_points": 500 - beijing_g, "people": 1}])
    );
    let mut only_shenzhen = window.clone();
    only_shenzhen["region_code"] = json!("440300");
    let sim = simulate(&app, &maker, &id, &only_shenzhen).await;
    assert_eq!(sim.body["activities"], 0);

    // A draft of Wuhan's own that starts before its version in force takes none of its rides: the later
    // version would still be in force.
    let mut older = bus_draft("420100", "count * k", "200");
    older["activity_type"] = json!("transit.metro");
    let older = app.draft(&maker, &older).await;
    let sim = simulate(&app, &maker, &older, &window).await;
    assert_eq!(sim.assert_status(200)["activities"], 0);

    // Nothing changed: the stored results stand and the draft is still a draft.
    let listed = app.get("/api/v1/activities", Some(&user)).await;
    let stored: i64 = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["reduction_g"].as_i64().unwrap())
        .sum();
    assert_eq!(stored, 340 + 467 + beijing_g);
    assert_eq!(
        app.get(&format!("/api/v1/methodologies/{id}"), None).await.body["status"],
        "draft"
    );

    let backwards = json!({"from": now.to_rfc3339(), "to": (now - chrono::Duration::days(1)).to_rfc3339()});
    simulate(&app, &maker, &id, &backwards)
        .await
        .assert_problem(422, "validation_failed");
    simulate(&app, &maker, "9999999", &window)
        .await
        .assert_problem(404, "not_found");
    simulate(&app, &user, &id, &window)
        .await
        .assert_problem(403, "forbidden");
}

/// A national bus draft paying 100 g a ride (80 in force): points follow the evidence's weight, people
/// count once, regions stay as the activities carry them and roll up by macro-region.
async fn simulation_answers_points_people_and_macro_regions(app: TestApp) {
    let maker = app.admin_token().await;
    let (a, b, c) = (
        app.new_user_token().await,
        app.new_user_token().await,
        app.new_user_token().await,
    );
    let now = chrono::Utc::now();
    let bus = |id: &str, region: &str, evidence: &str, count: i64, minutes: i64| {
        json!({"client_event_id": id, "activity_type": "transit.bus", "region_code": region, "evidence": evidence,
            "occurred_at": (now - chrono::Duration::minutes(minutes)).to_rfc3339(), "data": {"count": count, "distance_m": 5000}})
    };
    for (user, ride) in [
        (&a, bus("a1", "420100", "trace", 1, 300)),
        (&a, bus("a2", "420100", "trace", 1, 200)),
        (&b, bus("b1", "420100", "self_report", 1, 250)),
        (&b, bus("b2", "610000", "trace", 2, 100)),
        (&c, bus("c1", "440100", "trace", 1, 150)),
        // Shenzhen has a bus version of its own: the national draft does not take its rides.
        (&c, bus("c2", "440300", "trace", 1, 50)),
    ] {
        app.post_activity(user, &ride).await.assert_status(201);
    }
    let mut draft = bus_draft("CN", "count * k", "100");
    draft["effective_from"] = json!((now - chrono::Duration::days(1)).to_rfc3339());
    let id = app.draft(&maker, &draft).await;
    let window = json!({"from": (now - chrono::Duration::days(1)).to_rfc3339(), "to": now.to_rfc3339()});
    let sim = simulate(&app, &maker, &id, &window)
        .await
        .assert_status(200)
        .clone();
    // Grams: 80 a ride now, 100 under the draft; points: the same at 1 point per gram, half for b1
    // (self-reported).
    assert_eq!(
        [
            &sim["activities"],
            &sim["current_total_g"],
            &sim["draft_total_g"],
            &sim["delta_g"]
        ],
        [5, 480, 600, 120]
    );
    assert_eq!(
        [&sim["current_points"], &sim["draft_points"], &sim["delta_points"]],
        [440, 550, 110]
    );
    assert_eq!(sim["people"], 3, "a, b and c, each once");
    assert_eq!(
        sim["by_region"],
        json!([
            {"region_code": "420100", "macro_region": "central", "activities": 3, "delta_g": 60, "delta_points": 50, "people": 2},
            {"region_code": "440100", "macro_region": "east", "activities": 1, "delta_g": 20, "delta_points": 20, "people": 1},
            {"region_code": "610000", "macro_region": "west", "activities": 1, "delta_g": 40, "delta_points": 40, "people": 1},
        ])
    );
    assert_eq!(
        sim["by_macro_region"],
        json!([
            {"macro_region": "central", "activities": 3, "delta_g": 60, "delta_points": 50, "people": 2},
            {"macro_region": "east", "activities": 1, "delta_g": 20, "delta_points": 20, "people": 1},
            {"macro_region": "west", "activities": 1, "delta_g": 40, "delta_points": 40, "people": 1},
        ])
    );

    // A draft that changes nothing for anyone: the same activities, nobody affected.
    let same = app
        .draft(&maker, &{
            let mut d = bus_draft("CN", "count * k", "80");
            d["effective_from"] = draft["effective_from"].clone();
            d
        })
        .await;
    let sim = simulate(&app, &maker, &same, &window)
        .await
        .assert_status(200)
        .clone();
    assert_eq!(
        [
            &sim["activities"],
            &sim["delta_g"],
            &sim["delta_points"],
            &sim["people"]
        ],
        [5, 0, 0, 0]
    );
}

/// Only an administrator whose scope covers the draft's region may simulate it.
async fn simulation_needs_the_drafts_region_in_scope(app: TestApp) {
    let maker = app.admin_token().await;
    let (_, guangdong) = app.administrator("440000").await;
    let window = json!({"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"});
    let shenzhen = app.draft(&maker, &bus_draft("440300", "count * k", "100")).await;
    let wuhan = app.draft(&maker, &bus_draft("420100", "count * k", "100")).await;
    let national = app.draft(&maker, &bus_draft("CN", "count * k", "100")).await;
    simulate(&app, &guangdong, &shenzhen, &window)
        .await
        .assert_status(200);
    for other in [&wuhan, &national] {
        simulate(&app, &guangdong, other, &window)
            .await
            .assert_problem(403, "out_of_scope");
    }
    simulate(&app, &maker, &wuhan, &window).await.assert_status(200);
}

/// Activities stored in one group share their arrival time: pages that end among them resume after the
/// last one read, so each activity is read once.
async fn simulation_pages_through_activities_that_arrived_together(app: TestApp) {
    let user = app.new_user_token().await;
    let now = chrono::Utc::now();
    let rides: Vec<Value> = (0..7)
        .map(|i| {
            json!({"client_event_id": format!("t{i}"), "activity_type": "transit.bus", "region_code": "420100",
                "occurred_at": (now - chrono::Duration::minutes(10 * (i + 1))).to_rfc3339(), "data": {"count": 1}})
        })
        .collect();
    app.post("/api/v1/activities/batch", &json!({"events": rides}), Some(&user))
        .await
        .assert_status(200);
    let (from, to) = (
        (now - chrono::Duration::days(1)).naive_utc(),
        (now + chrono::Duration::minutes(1)).naive_utc(),
    );
    let (arrivals, ids) = app
        .with_conn(move |conn| {
            let (mut arrivals, mut ids) = (std::collections::BTreeSet::new(), Vec::new());
            tanhui::methodology::window::for_each_in_pages(conn, "transit.bus", from, to, 2, |row| {
                arrivals.insert(row.created_at);
                ids.push(row.id);
            })
            .unwrap();
            (arrivals, ids)
        })
        .await;
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!((ids.len(), distinct.len()), (7, 7), "{ids:?}");
    assert!(arrivals.len() < 7, "some arrived together: {arrivals:?}");
}

/// Activities are read by when they arrived (the index every insert appends to), but a late post belongs
/// to the window it occurred in, and so does one stamped a little in the future (clock skew).
async fn simulation_finds_activities_by_when_they_occurred_not_when_they_arrived(app: TestApp) {
    let (maker, user) = (app.admin_token().await, app.new_user_token().await);
    let now = chrono::Utc::now();
    let ago = |minutes: i64| (now - chrono::Duration::minutes(minutes)).to_rfc3339();
    for (id, occurred_at) in [("late", ago(6 * 24 * 60)), ("ahead", ago(-4))] {
        let ride = json!({"client_event_id": id, "activity_type": "transit.metro", "region_code": "420100",
            "occurred_at": occurred_at, "data": {"count": 1, "distance_m": 10000}});
        app.post_activity(&user, &ride).await.assert_status(201);
    }
    let mut draft = bus_draft("420100", "count * k", "200");
    draft["activity_type"] = json!("transit.metro");
    draft["effective_from"] = json!(ago(8 * 24 * 60));
    let id = app.draft(&maker, &draft).await;
    let counted = |from: i64, to: i64| {
        let window = json!({"from": ago(from), "to": ago(to)});
        let (app, maker, id) = (&app, &maker, &id);
        async move {
            let sim = simulate(app, maker, id, &window).await;
            sim.assert_status(200)["activities"].as_i64().unwrap()
        }
    };
    assert_eq!(
        counted(7 * 24 * 60, 5 * 24 * 60).await,
        1,
        "the late post, in the window it occurred in"
    );
    assert_eq!(
        counted(-1, -10).await,
        1,
        "the post stamped ahead of the server's clock"
    );
    assert_eq!(counted(5 * 24 * 60, 0).await, 0, "nothing occurred in between");
}

both_backends!(long_formulas_explain_in_bounded_answers);

/// The most a `/quantify` answer may weigh, whatever formula is in force.
const MOST_ANSWER_BYTES: usize = 256 * 1024;

/// Operators of a formula's text: the four signs (binary or unary) and the function calls.
fn operators(formula: &str) -> usize {
    formula.matches(['+', '-', '*', '/']).count()
        + formula.matches("min(").count()
        + formula.matches("max(").count()
}

/// `units+a+a+…` up to `len` characters: the longest flat chain a formula may be.
fn flat_sum(len: usize) -> String {
    let mut formula = "units".to_string();
    while formula.len() + 2 <= len {
        formula.push_str("+a");
    }
    formula
}

/// `depth` nested parentheses, each level adding `a`s to the sum inside it, up to `len` characters.
fn nested_sum(depth: usize, len: usize) -> String {
    let links_per_level = (len - "units".len() - 2 * depth) / 2 / depth;
    let mut formula = "units".to_string();
    for _ in 0..depth {
        formula = format!("({formula}{})", "+a".repeat(links_per_level));
    }
    formula
}

/// A type with one data field, `units`, and a national version computing `formula` with `a` a third.
async fn in_force_for_units(app: &TestApp, maker: &str, checker: &str, code: &str, formula: &str) {
    let kind = json!({"code": code, "name": code, "unit": "unit",
        "data_schema": {"type": "object", "properties": {"units": {"type": "integer", "minimum": 0, "maximum": 10}},
                        "required": ["units"]}});
    app.post("/api/v1/admin/activity-types", &kind, Some(maker))
        .await
        .assert_status(201);
    app.in_force(
        maker,
        checker,
        &units_version(code, formula, "2020-01-01T00:00:00+08:00"),
    )
    .await;
}

fn units_version(code: &str, formula: &str, effective_from: &str) -> Value {
    json!({"activity_type": code, "region_code": "CN", "effective_from": effective_from,
        "parameters": {"a": {"value": "0.3333333333333333333333333333", "unit": "g", "source": "test"}},
        "formula": formula, "citation": "test fixture"})
}

async fn long_formulas_explain_in_bounded_answers(app: TestApp) {
    let (maker, checker) = (app.admin_token().await, app.admin_token().await);
    let user = app.new_user_token().await;
    let now = chrono::Utc::now();
    let flat = flat_sum(4096);
    let nested = nested_sum(60, 4096);
    for (n, formula) in [flat, nested].iter().enumerate() {
        assert!((4000..=4096).contains(&formula.len()), "{}", formula.len());
        let code = format!("chores.units{n}");
        in_force_for_units(&app, &maker, &checker, &code, formula).await;

        let event = json!({"activity_type": code, "region_code": "440300",
            "occurred_at": (now - chrono::Duration::minutes(10)).to_rfc3339(), "data": {"units": 1}});
        let r = quantify(&app, &user, event.clone()).await;
        let body = r.assert_status(200).clone();
        assert!(r.text.len() < MOST_ANSWER_BYTES, "{code}: {} bytes", r.text.len());
        let steps = body["breakdown"].as_array().unwrap();
        let inputs = 2;
        assert!(
            steps.len() - inputs <= operators(formula),
            "{code}: {} steps",
            steps.len()
        );
        assert_eq!(steps[0], json!({"expr": "units", "value": "1"}));
        // The sum of 1 and about 2,000 thirds, rounded: every step says its value, the last one the result.
        let last: f64 = steps.last().unwrap()["value"].as_str().unwrap().parse().unwrap();
        assert_eq!(body["reduction_g"], last.round() as i64, "{code}");

        // A posted activity stores and answers its breakdown just as bounded.
        let mut posted = event.clone();
        posted["client_event_id"] = json!(format!("long-{n}"));
        posted["evidence"] = json!("trace");
        let r = app.post_activity(&user, &posted).await;
        let stored = r.assert_status(201).clone();
        assert_eq!(stored["reduction_g"], body["reduction_g"]);
        assert_eq!(stored["breakdown"], body["breakdown"]);
        assert!(r.text.len() < MOST_ANSWER_BYTES, "{code}: {} bytes", r.text.len());
        let id: i64 = stored["activity_id"].as_str().unwrap().parse().unwrap();
        let stored_bytes = app
            .with_conn(move |conn| {
                use diesel::prelude::*;
                #[derive(QueryableByName)]
                struct Stored {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    bytes: i64,
                }
                diesel::sql_query(format!(
                    "SELECT CAST(LENGTH(breakdown) AS BIGINT) AS bytes FROM activities WHERE id = {id}"
                ))
                .get_result::<Stored>(conn)
                .unwrap()
                .bytes
            })
            .await;
        assert!(
            (stored_bytes as usize) < MOST_ANSWER_BYTES,
            "{code}: {stored_bytes} bytes stored"
        );

        // Re-quantified under the version it recorded (as a simulation does), it gives the same grams.
        let draft = units_version(&code, formula, &(now - chrono::Duration::days(1)).to_rfc3339());
        let draft_id = app.draft(&maker, &draft).await;
        let window = json!({"from": (now - chrono::Duration::days(1)).to_rfc3339(),
            "to": (now + chrono::Duration::minutes(1)).to_rfc3339()});
        let r = simulate(&app, &maker, &draft_id, &window).await;
        let simulated = r.assert_status(200);
        assert_eq!(simulated["activities"], 1, "{code}");
        assert_eq!(simulated["current_total_g"], body["reduction_g"], "{code}");
        assert_eq!(simulated["draft_total_g"], body["reduction_g"], "{code}");
    }

    // A failure deep in a long formula names the operation that failed, not the whole formula.
    let failing = format!("({})/(units-1)", &flat_sum(4096 - 12));
    assert!(failing.len() <= 4096);
    in_force_for_units(&app, &maker, &checker, "chores.failing", &failing).await;
    let r = quantify(
        &app,
        &user,
        json!({"activity_type": "chores.failing", "region_code": "440300",
            "occurred_at": (now - chrono::Duration::minutes(10)).to_rfc3339(), "data": {"units": 1}}),
    )
    .await;
    r.assert_problem(422, "evaluation_failed");
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.len() < 200, "{} bytes: {detail:.200}", detail.len());
    assert!(detail.ends_with(" / (units - 1)`"), "{detail}");
}

/// Posts `body` to `path` and checks it is refused with 422 naming `field` and no other.
async fn refused_naming(app: &TestApp, path: &str, admin: &str, body: &Value, field: &str) {
    let r = app.post(path, body, Some(admin)).await;
    r.assert_problem(422, "validation_failed");
    let fields = r.error_fields();
    assert_eq!(fields, [field], "{}", r.text);
}

async fn methodology_count(app: &TestApp) -> usize {
    app.get("/api/v1/methodologies?limit=200", None).await.body["items"]
        .as_array()
        .unwrap()
        .len()
}

/// A draft with `n` parameters `p0…`, each `value`, `unit` and `source`, and the formula `count * p0`.
fn draft_with_parameters(n: usize, value: &str, unit: &str, source: &str) -> Value {
    let mut draft = bus_draft("110000", "count * p0", "1");
    draft["parameters"] = (0..n)
        .map(|i| {
            (
                format!("p{i}"),
                json!({"value": value, "unit": unit, "source": source}),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    draft
}

async fn draft_texts_and_lists_are_bounded(app: TestApp) {
    let admin = app.admin_token().await;
    let path = "/api/v1/admin/methodologies";
    let before = methodology_count(&app).await;
    let (value, unit, source) = (format!("{}1.5", "0".repeat(61)), "u".repeat(64), "s".repeat(500));
    let mut at_limits = draft_with_parameters(64, &value, &unit, &source);
    at_limits["citation"] = json!("c".repeat(2_000));
    let long_name = format!("k{}", "x".repeat(63));
    at_limits["parameters"][long_name.as_str()] = json!({"value": "1"});
    at_limits["parameters"].as_object_mut().unwrap().remove("p63");
    app.post(path, &at_limits, Some(&admin)).await.assert_status(201);

    let mut over = at_limits.clone();
    over["citation"] = json!("c".repeat(2_001));
    refused_naming(&app, path, &admin, &over, "citation").await;
    let over = draft_with_parameters(65, "1", "", "");
    refused_naming(&app, path, &admin, &over, "parameters").await;
    let mut over = at_limits.clone();
    over["parameters"][format!("{long_name}x").as_str()] = json!({"value": "1"});
    over["parameters"].as_object_mut().unwrap().remove("p62");
    refused_naming(&app, path, &admin, &over, "parameters").await;
    for (part, text) in [
        ("value", format!("0{value}")),
        ("unit", format!("{unit}u")),
        ("source", format!("{source}s")),
    ] {
        let mut over = at_limits.clone();
        over["parameters"]["p0"][part] = json!(text);
        refused_naming(&app, path, &admin, &over, &format!("parameters.p0.{part}")).await;
    }
    assert_eq!(
        methodology_count(&app).await,
        before + 1,
        "only the draft at the limits"
    );
}

async fn activity_type_count(app: &TestApp) -> usize {
    app.get("/api/v1/activity-types", None).await.body["items"]
        .as_array()
        .unwrap()
        .len()
}

/// An activity type `code` whose schema declares `fields` fields, `required` of them required.
fn activity_type(code: &str, fields: usize, required: usize) -> Value {
    let properties: serde_json::Map<String, Value> = (0..fields)
        .map(|i| (format!("f{i}"), json!({"type": "integer", "minimum": 0})))
        .collect();
    let required: Vec<String> = (0..required).map(|i| format!("f{}", i % fields)).collect();
    json!({"code": code, "name": "n".repeat(64), "unit": "u".repeat(64),
        "data_schema": {"type": "object", "properties": properties, "required": required}})
}

async fn activity_type_schemas_are_bounded(app: TestApp) {
    let admin = app.admin_token().await;
    let path = "/api/v1/admin/activity-types";
    let before = activity_type_count(&app).await;
    let code = format!("t.{}", "a".repeat(62));
    app.post(path, &activity_type(&code, 64, 64), Some(&admin))
        .await
        .assert_status(201);

    let over = activity_type("transit.wide", 65, 0);
    refused_naming(&app, path, &admin, &over, "data_schema.properties").await;
    let over = activity_type("transit.needy", 1, 65);
    refused_naming(&app, path, &admin, &over, "data_schema.required").await;
    let over = activity_type(&format!("{code}a"), 1, 1);
    refused_naming(&app, path, &admin, &over, "code").await;
    for label in ["name", "unit"] {
        let mut over = activity_type("transit.labelled", 1, 1);
        over[label] = json!("x".repeat(65));
        refused_naming(&app, path, &admin, &over, label).await;
    }
    assert_eq!(
        activity_type_count(&app).await,
        before + 1,
        "only the type at the limits"
    );
}

async fn onboarding_region_lists_are_bounded(app: TestApp) {
    let admin = app.admin_token().await;
    let partner = |regions: usize, name: String| json!({"name": name, "kind": "transit", "region_codes": vec!["440300"; regions]});
    let count = |r: Resp| r.body["items"].as_array().unwrap().len();
    let before = count(app.get("/api/v1/admin/partners?limit=200", Some(&admin)).await);
    app.post(
        "/api/v1/admin/partners",
        &partner(64, "p".repeat(100)),
        Some(&admin),
    )
    .await
    .assert_status(201);
    let path = "/api/v1/admin/partners";
    refused_naming(&app, path, &admin, &partner(65, "p".into()), "region_codes").await;
    refused_naming(&app, path, &admin, &partner(1, "p".repeat(101)), "name").await;
    let after = count(app.get("/api/v1/admin/partners?limit=200", Some(&admin)).await);
    assert_eq!(after, before + 1, "only the partner at the limits");
}
