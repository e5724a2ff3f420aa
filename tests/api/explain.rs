//! Every figure explained: one activity read back with its breakdown, version and review, for its owner
//! or an administrator governing its region; recomputed on demand; reproduced by `verify`.

use chrono::Duration;
use diesel::RunQueryDsl;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{anchor, TestApp};

both_backends!(
    an_activity_is_explained_to_its_owner_and_to_administrators_in_scope,
    requantifying_reproduces_the_stored_grams_for_administrators_in_scope,
    verify_reports_a_tampered_reduction,
);

/// A walk in `region`, `minutes_ago` before the anchor; `fast` makes it 60 km/h (flagged).
fn walk(id: &str, region: &str, minutes_ago: i64, fast: bool) -> Value {
    let mut data = json!({"distance_m": 3000});
    if fast {
        data = json!({"distance_m": 10_000, "duration_s": 600});
    }
    json!({"client_event_id": id, "activity_type": "walking", "region_code": region,
        "occurred_at": (anchor() - Duration::minutes(minutes_ago)).to_rfc3339(),
        "evidence": "trace", "data": data})
}

fn path(activity: &Value) -> String {
    format!("/api/v1/activities/{}", activity["activity_id"].as_str().unwrap())
}

async fn an_activity_is_explained_to_its_owner_and_to_administrators_in_scope(app: TestApp) {
    let owner = app.new_user_token().await;
    let stranger = app.new_user_token().await;
    let (_, guangdong) = app.administrator("440000").await;
    let (_, hubei) = app.administrator("420000").await;
    let posted = app
        .post_activity(&owner, &walk("w", "440300", 60, false))
        .await
        .assert_status(201)
        .clone();

    let explained = app
        .get(&path(&posted), Some(&owner))
        .await
        .assert_status(200)
        .clone();
    assert_eq!(explained["activity_id"], posted["activity_id"]);
    assert_eq!(explained["status"], "credited");
    assert_eq!(explained["region_code"], "440300");
    assert_eq!(explained["evidence"], "trace");
    assert_eq!(explained["reduction_g"], posted["reduction_g"]);
    assert_eq!(explained["points"], posted["points"]);
    assert_eq!(explained["reasons"], json!([]));
    assert_eq!(explained["breakdown"], posted["breakdown"]);
    assert!(!explained["breakdown"].as_array().unwrap().is_empty());
    assert_eq!(explained["methodology"]["id"], posted["methodology"]["id"]);
    assert_eq!(
        explained["methodology"]["version"],
        posted["methodology"]["version"]
    );
    assert_eq!(explained["data"]["distance_m"], 3000);
    assert_eq!(explained["review"], Value::Null);
    assert!(explained["occurred_at"].is_string() && explained["created_at"].is_string());

    // Another person learns nothing, not even that it exists; an administrator governing Shenzhen reads
    // it, one governing Hubei is out of scope.
    app.get(&path(&posted), Some(&stranger))
        .await
        .assert_problem(404, "not_found");
    let by_admin = app.get(&path(&posted), Some(&guangdong)).await;
    assert_eq!(by_admin.assert_status(200), &explained);
    app.get(&path(&posted), Some(&hubei))
        .await
        .assert_problem(403, "out_of_scope");
    app.get("/api/v1/activities/99999999", Some(&owner))
        .await
        .assert_problem(404, "not_found");
    app.get("/api/v1/activities/99999999", Some(&guangdong))
        .await
        .assert_problem(404, "not_found");
    app.get(&path(&posted), None)
        .await
        .assert_problem(401, "unauthorized");

    // A reviewed activity carries its review: decision, note, who and when.
    let flagged = app
        .post_activity(&owner, &walk("fast", "440300", 30, true))
        .await
        .assert_status(201)
        .clone();
    assert_eq!(flagged["status"], "flagged");
    app.review(&guangdong, &flagged["activity_id"], "reject", "no such pace")
        .await
        .assert_status(200);
    let reviewed = app
        .get(&path(&flagged), Some(&owner))
        .await
        .assert_status(200)
        .clone();
    assert_eq!(reviewed["status"], "rejected");
    assert_eq!(reviewed["reasons"], json!(["speed"]));
    assert_eq!(reviewed["review"]["decision"], "reject");
    assert_eq!(reviewed["review"]["note"], "no such pace");
    assert!(reviewed["review"]["by"].is_string() && reviewed["review"]["at"].is_string());
}

async fn requantifying_reproduces_the_stored_grams_for_administrators_in_scope(app: TestApp) {
    let owner = app.new_user_token().await;
    let (_, guangdong) = app.administrator("440000").await;
    let (_, hubei) = app.administrator("420000").await;
    let posted = app
        .post_activity(&owner, &walk("w", "440300", 60, false))
        .await
        .assert_status(201)
        .clone();
    let requantify = format!(
        "{}/requantify",
        path(&posted).replace("/activities/", "/admin/activities/")
    );
    let again = app
        .post(&requantify, &json!({}), Some(&guangdong))
        .await
        .assert_status(200)
        .clone();
    assert_eq!(again["same"], true);
    assert_eq!(again["reduction_g"], posted["reduction_g"]);
    assert_eq!(again["stored_reduction_g"], posted["reduction_g"]);
    assert_eq!(again["breakdown"], posted["breakdown"]);
    assert_eq!(again["methodology"]["id"], posted["methodology"]["id"]);
    app.post(&requantify, &json!({}), Some(&hubei))
        .await
        .assert_problem(403, "out_of_scope");
    app.post(&requantify, &json!({}), Some(&owner))
        .await
        .assert_problem(403, "forbidden");
    app.post(
        "/api/v1/admin/activities/99999999/requantify",
        &json!({}),
        Some(&guangdong),
    )
    .await
    .assert_problem(404, "not_found");
}

async fn verify_reports_a_tampered_reduction(app: TestApp) {
    let owner = app.new_user_token().await;
    let admin = app.admin_token().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let posted = app
            .post_activity(&owner, &walk(&format!("w-{n}"), "440300", 60 + 30 * n, false))
            .await;
        ids.push(
            posted.assert_status(201)["activity_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let report = app.verify().await;
    assert!(report.ok(), "{:?}", report.mismatches);
    assert_eq!(report.activities, 3);

    // One stored figure changed behind the service's back: its points and transfer still agree, only
    // its grams are no longer what its inputs give.
    let tampered: i64 = ids[1].parse().unwrap();
    app.with_conn(move |conn| {
        diesel::sql_query(format!(
            "UPDATE activities SET reduction_g = reduction_g + 7 WHERE id = {tampered}"
        ))
        .execute(conn)
        .unwrap();
    })
    .await;
    let report = app.verify().await;
    assert_eq!(report.mismatches.len(), 1, "{:?}", report.mismatches);
    assert!(
        report.mismatches[0].contains(&format!("activity {tampered} ")),
        "{:?}",
        report.mismatches
    );
    let again = app
        .post(
            &format!("/api/v1/admin/activities/{tampered}/requantify"),
            &json!({}),
            Some(&admin),
        )
        .await
        .assert_status(200)
        .clone();
    assert_eq!(again["same"], false);
    assert_eq!(
        again["stored_reduction_g"].as_i64().unwrap(),
        again["reduction_g"].as_i64().unwrap() + 7
    );
}
