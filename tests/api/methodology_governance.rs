//! Methodology governance by region: scope, maker-checker activation and retirement, draft corrections and
//! the diff an approver reads.

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{Resp, TestApp};

both_backends!(
    a_province_administrator_governs_its_cities_versions_only,
    retiring_needs_a_second_administrator_in_scope,
    drafts_are_corrected_by_their_drafter_and_deleted_in_scope,
    the_diff_shows_what_a_draft_changes_against_the_version_it_replaces,
    the_openapi_document_lists_the_governance_routes,
);

fn bus_draft(region: &str, k: &str) -> Value {
    json!({
        "activity_type": "transit.bus", "region_code": region,
        "effective_from": "2025-06-01T00:00:00+08:00",
        "parameters": {"k": {"value": k, "unit": "g/ride", "source": "test"}},
        "formula": "count * k", "daily_cap_g": 1000, "citation": "test fixture"
    })
}

fn path(id: &str, step: &str) -> String {
    format!("/api/v1/admin/methodologies/{id}{step}")
}

async fn patch(app: &TestApp, path: &str, body: &Value, token: &str) -> Resp {
    app.send(app.client.patch(app.url(path)).bearer_auth(token).json(body))
        .await
}

async fn delete(app: &TestApp, path: &str, token: &str) -> Resp {
    app.send(app.client.delete(app.url(path)).bearer_auth(token))
        .await
}

async fn a_province_administrator_governs_its_cities_versions_only(app: TestApp) {
    let national = app.admin_token().await;
    let (_, guangdong) = app.administrator("440000").await;
    let shenzhen = app.draft(&national, &bus_draft("440300", "90")).await;
    let wuhan = app.draft(&national, &bus_draft("420100", "90")).await;
    let r = app
        .post(&path(&wuhan, "/activate"), &json!({}), Some(&guangdong))
        .await;
    r.assert_problem(403, "out_of_scope");
    let r = app
        .post(&path(&shenzhen, "/activate"), &json!({}), Some(&guangdong))
        .await;
    assert_eq!(r.assert_status(200)["status"], "active");
    // Drafting follows the same scope; the province's own drafts need a second administrator too.
    app.post(
        "/api/v1/admin/methodologies",
        &bus_draft("420100", "70"),
        Some(&guangdong),
    )
    .await
    .assert_problem(403, "out_of_scope");
    let own = app.draft(&guangdong, &bus_draft("440000", "70")).await;
    app.post(&path(&own, "/activate"), &json!({}), Some(&guangdong))
        .await
        .assert_problem(403, "forbidden");
    // Out of scope is refused before anything else, even for a draft it could otherwise not touch.
    let (_, hubei) = app.administrator("420000").await;
    app.post(&path(&own, "/activate"), &json!({}), Some(&hubei))
        .await
        .assert_problem(403, "out_of_scope");
    delete(&app, &path(&own, ""), &hubei)
        .await
        .assert_problem(403, "out_of_scope");
    patch(&app, &path(&own, ""), &json!({"daily_cap_g": 5}), &hubei)
        .await
        .assert_problem(403, "out_of_scope");
    let r = app
        .post(&path(&own, "/activate"), &json!({}), Some(&national))
        .await;
    assert_eq!(r.assert_status(200)["status"], "active");
}

async fn retiring_needs_a_second_administrator_in_scope(app: TestApp) {
    let national = app.admin_token().await;
    let (_, guangdong) = app.administrator("440000").await;
    let (_, hubei) = app.administrator("420000").await;
    let user = app.new_user_token().await;
    let id = app
        .in_force(&national, &guangdong, &bus_draft("440300", "90"))
        .await;
    let bus = json!({"activity_type": "transit.bus", "region_code": "440300",
        "occurred_at": "2025-07-01T08:00:00+08:00", "data": {"count": 1}});
    // The version in force (after ours, Shenzhen's seeded one reads distances, which this ride lacks).
    let in_force = || async {
        let r = app.post("/api/v1/quantify", &bus, Some(&user)).await;
        r.body["methodology"]["id"].clone()
    };
    assert_eq!(in_force().await, id.as_str());

    app.post(&path(&id, "/retire"), &json!({}), Some(&hubei))
        .await
        .assert_problem(403, "out_of_scope");
    let r = app
        .post(&path(&id, "/retire"), &json!({}), Some(&guangdong))
        .await;
    assert_eq!(r.assert_status(202)["status"], "retire_pending");
    assert!(r.body["retire_requested_by"].is_string());
    app.post(&path(&id, "/retire"), &json!({}), Some(&national))
        .await
        .assert_problem(409, "invalid_state");
    assert_eq!(in_force().await, id.as_str(), "in force until approved");
    // The requester cannot approve; an administrator out of scope cannot either.
    app.post(&path(&id, "/retire/approve"), &json!({}), Some(&guangdong))
        .await
        .assert_problem(403, "forbidden");
    app.post(&path(&id, "/retire/approve"), &json!({}), Some(&hubei))
        .await
        .assert_problem(403, "out_of_scope");
    let r = app
        .post(&path(&id, "/retire/approve"), &json!({}), Some(&national))
        .await;
    assert_eq!(r.assert_status(200)["status"], "retired");
    assert_ne!(in_force().await, id.as_str(), "retired");
    app.post(&path(&id, "/retire/approve"), &json!({}), Some(&national))
        .await
        .assert_problem(409, "invalid_state");
    // A draft is deleted, not retired; approving a retirement nobody asked for is refused.
    let draft = app.draft(&national, &bus_draft("440300", "95")).await;
    app.post(&path(&draft, "/retire"), &json!({}), Some(&guangdong))
        .await
        .assert_problem(409, "invalid_state");
    let active = app
        .in_force(&national, &guangdong, &bus_draft("440300", "96"))
        .await;
    app.post(&path(&active, "/retire/approve"), &json!({}), Some(&national))
        .await
        .assert_problem(409, "invalid_state");
    let audit = app.get("/api/v1/admin/audit?limit=50", Some(&national)).await;
    let actions: Vec<&str> = audit.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity_id"] == id.as_str())
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "methodology.retire",
            "methodology.retire_request",
            "methodology.activate",
            "methodology.draft"
        ]
    );
}

async fn drafts_are_corrected_by_their_drafter_and_deleted_in_scope(app: TestApp) {
    let national = app.admin_token().await;
    let (_, guangdong) = app.administrator("440000").await;
    let id = app.draft(&guangdong, &bus_draft("440300", "90")).await;
    // Partial: the rest stays; checked as a whole (a formula naming an unknown parameter is refused).
    let r = patch(
        &app,
        &path(&id, ""),
        &json!({"daily_cap_g": 500, "citation": "corrected"}),
        &guangdong,
    )
    .await;
    let body = r.assert_status(200);
    assert_eq!(body["daily_cap_g"], 500);
    assert_eq!(body["citation"], "corrected");
    assert_eq!(body["parameters"]["k"]["value"], "90");
    assert_eq!(body["status"], "draft");
    let r = patch(&app, &path(&id, ""), &json!({"formula": "count * j"}), &guangdong).await;
    r.assert_problem(422, "invalid_formula");
    let r = patch(
        &app,
        &path(&id, ""),
        &json!({"daily_cap_g": -1, "colour": "red"}),
        &guangdong,
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = patch(&app, &path(&id, ""), &json!({"daily_cap_g": null}), &guangdong).await;
    assert_eq!(r.assert_status(200)["daily_cap_g"], Value::Null);
    let stored = app.get(&format!("/api/v1/methodologies/{id}"), None).await;
    assert_eq!(stored.assert_status(200)["citation"], "corrected");
    // Only its drafter corrects it (another could otherwise activate what it wrote itself).
    patch(&app, &path(&id, ""), &json!({"daily_cap_g": 5}), &national)
        .await
        .assert_problem(403, "forbidden");

    // Active versions are neither corrected nor deleted.
    let active = app
        .in_force(&national, &guangdong, &bus_draft("440300", "91"))
        .await;
    patch(&app, &path(&active, ""), &json!({"daily_cap_g": 5}), &national)
        .await
        .assert_problem(409, "invalid_state");
    delete(&app, &path(&active, ""), &national)
        .await
        .assert_problem(409, "invalid_state");

    // A deleted draft is gone: not found, not listed, not activated.
    delete(&app, &path(&id, ""), &national).await.assert_status(204);
    app.get(&format!("/api/v1/methodologies/{id}"), None)
        .await
        .assert_problem(404, "not_found");
    delete(&app, &path(&id, ""), &national)
        .await
        .assert_problem(404, "not_found");
    app.post(&path(&id, "/activate"), &json!({}), Some(&national))
        .await
        .assert_problem(404, "not_found");
    let listed = app
        .get("/api/v1/methodologies?region_code=440300&limit=100", None)
        .await;
    assert!(listed.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["id"] != id.as_str()));
}

async fn the_diff_shows_what_a_draft_changes_against_the_version_it_replaces(app: TestApp) {
    let national = app.admin_token().await;
    let (_, guangdong) = app.administrator("440000").await;
    let id = app.draft(&guangdong, &bus_draft("440300", "90")).await;
    let r = app.get(&path(&id, "/diff"), Some(&national)).await;
    let diff = r.assert_status(200).clone();
    assert_eq!(diff["id"], id.as_str());
    // Shenzhen's seeded bus version is in force on 1 June 2025.
    let replaced = diff["replaces"]["id"]
        .as_str()
        .expect("replaces a version")
        .to_string();
    let old = app
        .get(&format!("/api/v1/methodologies/{replaced}"), None)
        .await
        .assert_status(200)
        .clone();
    assert_eq!(
        (&old["region_code"], &old["status"]),
        (&json!("440300"), &json!("active"))
    );
    let change = |field: &str| {
        diff["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["field"] == field)
            .cloned()
    };
    let formula = change("formula").expect("the formula changed");
    assert_eq!(
        (&formula["before"], &formula["after"]),
        (&old["formula"], &json!("count * k"))
    );
    let k = change("parameters.k").expect("k is new");
    assert_eq!(
        (k["before"].clone(), &k["after"]["value"]),
        (Value::Null, &json!("90"))
    );
    for (name, _) in old["parameters"].as_object().unwrap() {
        let dropped = change(&format!("parameters.{name}")).expect("its parameters are dropped");
        assert_eq!(dropped["after"], Value::Null);
    }
    assert_eq!(change("effective_from").unwrap()["after"], "2025-05-31T16:00:00Z");
    assert!(
        change("evidence_weights.operator").is_none(),
        "unchanged weights are not listed"
    );

    // A draft for a type and region with no version in force replaces nothing: every term is new.
    let hubei = app.draft(&national, &bus_draft("420000", "90")).await;
    let r = app.get(&path(&hubei, "/diff"), Some(&guangdong)).await;
    let diff = r.assert_status(200);
    assert_eq!(diff["replaces"], Value::Null);
    assert!(diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["before"].is_null()));
    let user = app.new_user_token().await;
    app.get(&path(&hubei, "/diff"), Some(&user))
        .await
        .assert_problem(403, "forbidden");
}

async fn the_openapi_document_lists_the_governance_routes(app: TestApp) {
    let r = app.get("/api/v1/openapi.json", None).await;
    let paths = &r.assert_status(200)["paths"];
    for (path, method) in [
        ("/api/v1/admin/methodologies/{id}", "patch"),
        ("/api/v1/admin/methodologies/{id}", "delete"),
        ("/api/v1/admin/methodologies/{id}/diff", "get"),
        ("/api/v1/admin/methodologies/{id}/retire", "post"),
        ("/api/v1/admin/methodologies/{id}/retire/approve", "post"),
        ("/api/v1/admin/activity-types/{code}", "patch"),
        ("/api/v1/admin/activity-type-changes", "get"),
        ("/api/v1/admin/activity-type-changes/{id}/approve", "post"),
    ] {
        assert!(paths[path].get(method).is_some(), "{method} {path} missing");
    }
}
