//! Administration by region for reviews, providers and partners, and what an administrator can find:
//! the review queue filtered, bulk decisions, the audit log searched, providers and partners listed.

use chrono::Duration;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{anchor, Key, Resp, TestApp};

both_backends!(
    a_regional_administrator_reviews_and_onboards_only_in_its_regions,
    the_review_queue_filters_by_region_type_and_reason,
    bulk_decisions_answer_each_activity_and_replay_as_stored,
    the_audit_log_is_searched_by_actor_entity_and_time,
    providers_and_partners_are_listed_with_their_keys_never_their_secrets,
);

/// A walk of 10 km in 10 minutes (60 km/h: flagged for speed) in `region`, `minutes_ago` before the
/// anchor.
fn fast_walk(id: &str, region: &str, minutes_ago: i64) -> Value {
    json!({"client_event_id": id, "activity_type": "walking", "region_code": region,
        "occurred_at": (anchor() - Duration::minutes(minutes_ago)).to_rfc3339(),
        "evidence": "trace", "data": {"distance_m": 10_000, "duration_s": 600}})
}

/// Posts a flagged walk; returns its activity id.
async fn flagged(app: &TestApp, token: &str, id: &str, region: &str, minutes_ago: i64) -> String {
    let r = app
        .post_activity(token, &fast_walk(id, region, minutes_ago))
        .await;
    let body = r.assert_status(201);
    assert_eq!(body["status"], "flagged", "{body}");
    body["activity_id"].as_str().unwrap().to_string()
}

fn ids_of(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["activity_id"].as_str().unwrap().to_string())
        .collect()
}

async fn queue(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let r = app
        .get(&format!("/api/v1/admin/reviews{query}"), Some(token))
        .await;
    ids_of(r.assert_status(200))
}

async fn a_regional_administrator_reviews_and_onboards_only_in_its_regions(app: TestApp) {
    let person = app.new_user_token().await;
    let (_, guangdong) = app.administrator("440000").await;
    let national = app.admin_token().await;
    let shenzhen = flagged(&app, &person, "sz", "440300", 120).await;
    let wuhan = flagged(&app, &person, "wh", "420100", 60).await;

    // The queue shows only what the caller governs; the nation sees both.
    assert_eq!(queue(&app, &guangdong, "").await, [shenzhen.as_str()]);
    assert_eq!(
        queue(&app, &national, "").await,
        [wuhan.as_str(), shenzhen.as_str()]
    );
    app.review(&guangdong, &json!(wuhan), "approve", "")
        .await
        .assert_problem(403, "out_of_scope");
    let approved = app.review(&guangdong, &json!(shenzhen), "approve", "ok").await;
    assert_eq!(approved.assert_status(200)["status"], "credited");

    // Onboarding needs a scope covering every region served; none named means everywhere.
    let provider = |regions: Value| json!({"name": "武汉地铁", "kind": "transit", "region_codes": regions});
    for regions in [json!(["420100"]), json!(["440300", "420100"]), json!([])] {
        app.post("/api/v1/admin/providers", &provider(regions), Some(&guangdong))
            .await
            .assert_problem(403, "out_of_scope");
    }
    app.post(
        "/api/v1/admin/providers",
        &provider(json!(["440300"])),
        Some(&guangdong),
    )
    .await
    .assert_status(201);
    let partner = |regions: Value| json!({"name": "黄鹤楼", "kind": "scenic", "region_codes": regions});
    app.post(
        "/api/v1/admin/partners",
        &partner(json!(["420100"])),
        Some(&guangdong),
    )
    .await
    .assert_problem(403, "out_of_scope");
    app.post(
        "/api/v1/admin/partners",
        &partner(json!(["440000"])),
        Some(&guangdong),
    )
    .await
    .assert_status(201);
    // A party of another region is onboarded by the nation; its keys are not the province's to change.
    let hubei = app
        .post(
            "/api/v1/admin/partners",
            &partner(json!(["420100"])),
            Some(&national),
        )
        .await
        .assert_status(201)
        .clone();
    let keys = format!(
        "/api/v1/admin/partners/{}/keys",
        hubei["partner_id"].as_str().unwrap()
    );
    app.get(&keys, Some(&guangdong))
        .await
        .assert_problem(403, "out_of_scope");
    app.post(&keys, &json!({}), Some(&guangdong))
        .await
        .assert_problem(403, "out_of_scope");
    app.get(&keys, Some(&national)).await.assert_status(200);
}

async fn the_review_queue_filters_by_region_type_and_reason(app: TestApp) {
    let person = app.new_user_token().await;
    let national = app.admin_token().await;
    let (_, guangdong) = app.administrator("440000").await;
    let shenzhen = flagged(&app, &person, "sz", "440300", 300).await;
    let wuhan = flagged(&app, &person, "wh", "420100", 200).await;
    // A bus ride overlapping a metro ride: flagged for overlap, of another type.
    let at = |minutes: i64| (anchor() - Duration::minutes(minutes)).to_rfc3339();
    let metro = json!({"client_event_id": "m", "activity_type": "transit.metro", "occurred_at": at(100),
        "ended_at": at(70), "evidence": "trace", "data": {"distance_m": 8000}});
    app.post_activity(&person, &metro).await.assert_status(201);
    let bus = json!({"client_event_id": "b", "activity_type": "transit.bus", "occurred_at": at(90),
        "ended_at": at(80), "evidence": "trace", "data": {"count": 1, "distance_m": 3000}});
    let bus = app.post_activity(&person, &bus).await.assert_status(201).clone();
    assert_eq!(bus["reasons"], json!(["overlap"]));
    let bus = bus["activity_id"].as_str().unwrap().to_string();

    assert_eq!(
        queue(&app, &national, "?region_code=440000").await,
        [bus.as_str(), shenzhen.as_str()]
    );
    assert_eq!(
        queue(&app, &national, "?region_code=420000").await,
        [wuhan.as_str()]
    );
    assert_eq!(
        queue(&app, &national, "?region_code=420100").await,
        [wuhan.as_str()]
    );
    assert_eq!(
        queue(&app, &national, "?activity_type=walking").await,
        [wuhan.as_str(), shenzhen.as_str()]
    );
    assert_eq!(queue(&app, &national, "?reason=overlap").await, [bus.as_str()]);
    assert_eq!(
        queue(&app, &national, "?reason=speed&region_code=CN").await,
        [wuhan.as_str(), shenzhen.as_str()]
    );
    assert_eq!(
        queue(
            &app,
            &national,
            "?reason=speed&activity_type=walking&region_code=440300"
        )
        .await,
        [shenzhen.as_str()]
    );
    // Blank filters are no filters; a region outside the caller's scope narrows to nothing.
    assert_eq!(
        queue(&app, &national, "?region_code=&activity_type=&reason=")
            .await
            .len(),
        3
    );
    assert!(queue(&app, &guangdong, "?region_code=420000").await.is_empty());
    assert_eq!(
        queue(&app, &guangdong, "?region_code=CN").await,
        [bus.as_str(), shenzhen.as_str()]
    );
    // Paged with the filters kept.
    let first = app
        .get(
            "/api/v1/admin/reviews?region_code=440000&limit=1",
            Some(&national),
        )
        .await
        .assert_status(200)
        .clone();
    assert_eq!(ids_of(&first), [bus.as_str()]);
    let next = format!(
        "?region_code=440000&limit=1&cursor={}",
        first["next_cursor"].as_str().unwrap()
    );
    assert_eq!(queue(&app, &national, &next).await, [shenzhen.as_str()]);

    app.get("/api/v1/admin/reviews?region_code=999999", Some(&national))
        .await
        .assert_problem(422, "unknown_region");
    let unknown_reason = app
        .get("/api/v1/admin/reviews?reason=boredom", Some(&national))
        .await;
    assert_eq!(unknown_reason.status.as_u16(), 400, "{}", unknown_reason.text);
}

async fn decide(app: &TestApp, token: &str, key: Option<&str>, body: &Value) -> Resp {
    let mut request = app
        .client
        .post(app.url("/api/v1/admin/reviews/decisions"))
        .bearer_auth(token)
        .json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    app.send(request).await
}

async fn bulk_decisions_answer_each_activity_and_replay_as_stored(app: TestApp) {
    let (person, _) = app.new_member().await;
    let (_, guangdong) = app.administrator("440000").await;
    let a = flagged(&app, &person, "a", "440300", 400).await;
    let b = flagged(&app, &person, "b", "440300", 300).await;
    let wuhan = flagged(&app, &person, "c", "420100", 200).await;
    let before = app.balance(&person).await;
    let body = json!({"activity_ids": [a, b, wuhan, "99999999"], "decision": "approve",
        "note": "traces checked"});

    let answered = decide(&app, &guangdong, Some("bulk-1"), &body).await;
    let results = answered.assert_status(200)["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 4);
    for (result, id) in results.iter().zip([&a, &b, &wuhan]) {
        assert_eq!(result["activity_id"], id.as_str());
    }
    assert_eq!(results[0]["status"], "credited");
    assert_eq!(results[0]["result"]["status"], "credited");
    assert!(results[0]["error"].is_null());
    assert_eq!(results[1]["status"], "credited");
    assert_eq!(results[2]["status"], "error");
    assert_eq!(results[2]["error"]["code"], "out_of_scope");
    assert_eq!(results[3]["status"], "error");
    assert_eq!(results[3]["error"]["code"], "not_found");
    let earned =
        results[0]["result"]["points"].as_i64().unwrap() + results[1]["result"]["points"].as_i64().unwrap();
    assert!(earned > 0);
    assert_eq!(app.balance(&person).await, before + earned);

    // The replay is the stored answer, and issues nothing again; the same key with another body is a
    // conflict; a bulk decision needs a key.
    let replay = decide(&app, &guangdong, Some("bulk-1"), &body).await;
    assert_eq!(replay.assert_status(200), answered.assert_status(200));
    assert_eq!(app.balance(&person).await, before + earned);
    let mut other = body.clone();
    other["decision"] = json!("reject");
    decide(&app, &guangdong, Some("bulk-1"), &other)
        .await
        .assert_problem(409, "idempotency_conflict");
    decide(&app, &guangdong, None, &body)
        .await
        .assert_problem(400, "idempotency_key_required");
    // A second call under a new key finds them decided, each on its own.
    let again = decide(&app, &guangdong, Some("bulk-2"), &body).await;
    let again = again.assert_status(200)["results"].as_array().unwrap().clone();
    assert_eq!(again[0]["error"]["code"], "invalid_state");
    assert_eq!(again[2]["error"]["code"], "out_of_scope");

    // Bounded and without repeats.
    let many: Vec<String> = (1..=101).map(|n| n.to_string()).collect();
    let too_many = decide(
        &app,
        &guangdong,
        Some("bulk-3"),
        &json!({"activity_ids": many, "decision": "reject", "note": ""}),
    )
    .await;
    too_many.assert_problem(422, "validation_failed");
    assert_eq!(too_many.error_fields(), ["activity_ids"]);
    decide(
        &app,
        &guangdong,
        Some("bulk-4"),
        &json!({"activity_ids": [wuhan, wuhan], "decision": "reject", "note": ""}),
    )
    .await
    .assert_problem(422, "validation_failed");
    decide(
        &app,
        &guangdong,
        Some("bulk-5"),
        &json!({"activity_ids": [], "decision": "reject", "note": ""}),
    )
    .await
    .assert_problem(422, "validation_failed");
    decide(&app, &person, Some("bulk-6"), &body)
        .await
        .assert_problem(403, "forbidden");
}

async fn audit(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let r = app.get(&format!("/api/v1/admin/audit{query}"), Some(token)).await;
    r.assert_status(200)["items"].as_array().unwrap().clone()
}

fn actions(items: &[Value]) -> Vec<&str> {
    items.iter().map(|i| i["action"].as_str().unwrap()).collect()
}

async fn the_audit_log_is_searched_by_actor_entity_and_time(app: TestApp) {
    let (national_id, national) = app.administrator("CN").await;
    let (guangdong_id, guangdong) = app.administrator("440000").await;
    let provider = app
        .post(
            "/api/v1/admin/providers",
            &json!({"name": "深圳巴士", "kind": "transit", "region_codes": ["440300"]}),
            Some(&guangdong),
        )
        .await
        .assert_status(201)
        .clone();
    let provider_id = provider["partner_id"].as_str().unwrap().to_string();
    app.clock.advance(Duration::minutes(10));
    let partner = app
        .post(
            "/api/v1/admin/partners",
            &json!({"name": "东湖", "kind": "scenic", "region_codes": ["420100"]}),
            Some(&national),
        )
        .await
        .assert_status(201)
        .clone();
    let partner_id = partner["partner_id"].as_str().unwrap().to_string();
    app.post(
        &format!("/api/v1/admin/providers/{provider_id}/keys"),
        &json!({}),
        Some(&guangdong),
    )
    .await
    .assert_status(201);

    // By actor: what the province's administrator did, newest first, in the contract's shape.
    let by_guangdong = audit(&app, &national, &format!("?actor_id={guangdong_id}")).await;
    assert_eq!(actions(&by_guangdong), ["key.create", "provider.create"]);
    let created = &by_guangdong[1];
    assert_eq!(created["actor_id"], guangdong_id.to_string().as_str());
    assert_eq!(created["entity"], "provider");
    assert_eq!(created["entity_id"], provider_id.as_str());
    assert_eq!(created["after"]["region_codes"], json!(["440300"]));
    assert!(created["id"].is_string() && created["at"].is_string());
    assert!(created.get("actor_user_id").is_none() && created.get("created_at").is_none());
    let by_nation = audit(&app, &guangdong, &format!("?actor_id={national_id}")).await;
    assert_eq!(actions(&by_nation), ["partner.create"]);

    // By entity, and by one of them.
    let partners = audit(&app, &national, "?entity=partner").await;
    assert!(partners.iter().all(|i| i["entity"] == "partner"));
    assert_eq!(partners.len(), 1);
    let this_provider = audit(
        &app,
        &national,
        &format!("?entity=provider&entity_id={provider_id}"),
    )
    .await;
    assert_eq!(actions(&this_provider), ["key.create", "provider.create"]);
    assert!(audit(&app, &national, "?entity=provider&entity_id=0")
        .await
        .is_empty());

    // By time: [from, to).
    let partner_at = by_nation[0]["at"].as_str().unwrap().to_string();
    let since = audit(&app, &national, &format!("?from={partner_at}")).await;
    assert_eq!(actions(&since), ["key.create", "partner.create"]);
    let until = audit(&app, &national, &format!("?to={partner_at}&entity=provider")).await;
    assert_eq!(actions(&until), ["provider.create"]);
    assert_eq!(until[0]["entity_id"], provider_id.as_str());
    assert_eq!(partner_id, by_nation[0]["entity_id"].as_str().unwrap());

    // Paged with the filters kept.
    let first = app
        .get(
            &format!("/api/v1/admin/audit?actor_id={guangdong_id}&limit=1"),
            Some(&national),
        )
        .await
        .assert_status(200)
        .clone();
    assert_eq!(actions(first["items"].as_array().unwrap()), ["key.create"]);
    let next = format!(
        "?actor_id={guangdong_id}&limit=1&cursor={}",
        first["next_cursor"].as_str().unwrap()
    );
    assert_eq!(actions(&audit(&app, &national, &next).await), ["provider.create"]);

    // Bad filters are refused, naming the field.
    let r = app
        .get(
            &format!("/api/v1/admin/audit?from={partner_at}&to={partner_at}"),
            Some(&national),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), ["to"]);
    let r = app
        .get("/api/v1/admin/audit?from=yesterday", Some(&national))
        .await;
    assert_eq!(r.error_fields(), ["from"]);
    let r = app
        .get("/api/v1/admin/audit?entity=planet", Some(&national))
        .await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.text);
}

fn secrets_absent(listing: &Resp, secrets: &[&str]) {
    for secret in secrets {
        assert!(!listing.text.contains(secret), "a secret is listed");
    }
    assert!(!listing.text.contains("secret"), "{}", listing.text);
}

async fn providers_and_partners_are_listed_with_their_keys_never_their_secrets(app: TestApp) {
    let national = app.admin_token().await;
    let (_, guangdong) = app.administrator("440000").await;
    let created = app
        .post(
            "/api/v1/admin/providers",
            &json!({"name": "深圳地铁", "kind": "transit", "region_codes": ["440300"]}),
            Some(&national),
        )
        .await
        .assert_status(201)
        .clone();
    let first = Key::from_credentials(&created);
    let provider_id = created["partner_id"].as_str().unwrap().to_string();
    let keys = format!("/api/v1/admin/providers/{provider_id}/keys");
    let second = app.post(&keys, &json!({}), Some(&national)).await;
    let second = Key::from_credentials(second.assert_status(201));
    app.post(
        &format!("{keys}/{}/revoke", first.key_id),
        &json!({}),
        Some(&national),
    )
    .await
    .assert_status(200);
    let partner = app
        .post(
            "/api/v1/admin/partners",
            &json!({"name": "世界之窗", "kind": "scenic", "region_codes": ["440300"]}),
            Some(&national),
        )
        .await
        .assert_status(201)
        .clone();
    let partner_key = Key::from_credentials(&partner);

    for token in [&national, &guangdong] {
        let providers = app.get("/api/v1/admin/providers", Some(token)).await;
        let items = providers.assert_status(200)["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1);
        let listed = &items[0];
        assert_eq!(listed["provider_id"], provider_id.as_str());
        assert_eq!(listed["name"], "深圳地铁");
        assert_eq!(listed["region_codes"], json!(["440300"]));
        let keys = listed["keys"].as_array().unwrap();
        let state: Vec<(&str, bool)> = keys
            .iter()
            .map(|k| (k["key_id"].as_str().unwrap(), k["revoked_at"].is_string()))
            .collect();
        assert_eq!(
            state,
            [(second.key_id.as_str(), false), (first.key_id.as_str(), true)]
        );
        assert!(keys.iter().all(|k| k["created_at"].is_string()));
        secrets_absent(&providers, &[&first.secret, &second.secret]);

        let partners = app.get("/api/v1/admin/partners", Some(token)).await;
        let items = partners.assert_status(200)["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["partner_id"], partner["partner_id"]);
        assert_eq!(items[0]["keys"][0]["key_id"], partner_key.key_id.as_str());
        assert!(items[0]["keys"][0]["revoked_at"].is_null());
        secrets_absent(&partners, &[&partner_key.secret]);
    }
    let person = app.new_user_token().await;
    app.get("/api/v1/admin/providers", Some(&person))
        .await
        .assert_problem(403, "forbidden");
}
