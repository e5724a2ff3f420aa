//! The claim registry: operator codes, trips claimed as their activities are stored, peer platforms
//! checking and registering claims, and one owner per claim under concurrency.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{second_instance, Key, Resp, Signing, TestApp};
use crate::{both_backends, both_backends_with};

both_backends!(
    operator_codes_are_slugs_held_by_one_provider,
    a_provider_trip_is_claimed_for_tanhui_once,
    a_trip_a_peer_claimed_first_is_stored_rejected_without_points,
    a_claim_raced_by_two_peers_on_two_instances_has_one_owner,
    registry_calls_are_bounded_and_signed_by_peers,
);

both_backends_with!(a_rejected_trip_gives_its_claim_up => |s| {
    s.activities.max_reduction_g_per_event = 400;
});

const ACTIVITIES: &str = "/api/v1/provider/activities";
const BATCH: &str = "/api/v1/provider/activities/batch";
const CHECK: &str = "/api/v1/registry/claims/check";
const REGISTER: &str = "/api/v1/registry/claims";

/// The claim every platform computes for an operator's trip, computed here independently of the service.
fn claim(code: &str, trip_ref: &str) -> String {
    hex::encode(Sha256::digest(format!("tanhui-claim-v1\n{code}\n{trip_ref}")))
}

/// A provider onboarded with `code` (none: `None`), and its key.
async fn provider(app: &TestApp, code: Option<&str>) -> Key {
    let admin = app.admin_token().await;
    let body = json!({"name": "深圳地铁", "kind": "transit", "region_codes": ["440300"], "code": code});
    let r = app.post("/api/v1/admin/providers", &body, Some(&admin)).await;
    assert_eq!(r.assert_status(201)["operator_code"], json!(code));
    Key::from_credentials(&r.body)
}

async fn peer(app: &TestApp, name: &str) -> Key {
    let admin = app.admin_token().await;
    let r = app
        .post("/api/v1/admin/peers", &json!({"name": name}), Some(&admin))
        .await;
    let body = r.assert_status(201);
    assert!(body["peer_id"].is_string(), "{}", r.text);
    Key::from_credentials(body)
}

fn trip(user_id: &str, id: &str, trip_ref: &str, minutes_ago: i64) -> Value {
    json!({"user_id": user_id, "client_event_id": id, "trip_ref": trip_ref,
        "activity_type": "transit.metro",
        "occurred_at": (Utc::now() - Duration::minutes(minutes_ago)).to_rfc3339(),
        "ended_at": (Utc::now() - Duration::minutes(minutes_ago - 20)).to_rfc3339(),
        "data": {"distance_m": 10000}})
}

async fn check(app: &TestApp, key: &Key, claims: &[&str]) -> Resp {
    app.signed(key, "POST", CHECK, Some(&json!({"claims": claims})))
        .await
}

async fn register(app: &TestApp, key: &Key, claims: &[impl AsRef<str>]) -> Resp {
    let at = Utc::now().to_rfc3339();
    let entries: Vec<Value> = claims
        .iter()
        .map(|c| json!({"claim": c.as_ref(), "claimed_at": at}))
        .collect();
    app.signed(key, "POST", REGISTER, Some(&json!({"claims": entries})))
        .await
}

/// Each claim's `claimed` in a check's answer, in order.
fn claimed(r: &Resp) -> Vec<bool> {
    r.assert_status(200)["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["claimed"].as_bool().unwrap())
        .collect()
}

/// Each claim's `status` in a registration's answer, in order.
fn statuses(r: &Resp) -> Vec<String> {
    r.assert_status(200)["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_string())
        .collect()
}

async fn operator_codes_are_slugs_held_by_one_provider(app: TestApp) {
    let admin = app.admin_token().await;
    provider(&app, Some("shenzhen-metro")).await;
    provider(&app, None).await;
    provider(&app, None).await;
    let onboard = |code: Value| json!({"name": "x", "kind": "transit", "code": code});
    let taken = app
        .post(
            "/api/v1/admin/providers",
            &onboard(json!("shenzhen-metro")),
            Some(&admin),
        )
        .await;
    taken.assert_problem(409, "operator_code_taken");
    for bad in [
        json!("Shenzhen-Metro"),
        json!("shenzhen_metro"),
        json!("-metro"),
        json!("shenzhen--metro"),
        json!(""),
        json!("深圳地铁"),
        json!("a".repeat(65)),
        json!(7),
    ] {
        let r = app
            .post("/api/v1/admin/providers", &onboard(bad.clone()), Some(&admin))
            .await;
        assert_eq!(r.status.as_u16(), 422, "{bad}: {}", r.text);
    }
    let r = app
        .post(
            "/api/v1/admin/providers",
            &onboard(json!("Bad Code")),
            Some(&admin),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), ["code"]);
    // Partners report no trips: they have no operator code.
    let partner = json!({"name": "p", "kind": "transit", "region_codes": ["440300"], "code": "metro-x"});
    let r = app.post("/api/v1/admin/partners", &partner, Some(&admin)).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), ["code"]);
    let list = app.get("/api/v1/admin/providers", Some(&admin)).await;
    let codes: Vec<&Value> = list.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["operator_code"])
        .collect();
    assert_eq!(codes, [&Value::Null, &Value::Null, &json!("shenzhen-metro")]);
    // Two administrators onboarding one code at once, on two instances: one provider gets it.
    let other = second_instance(&app).await;
    let (a, b) = futures_util::future::join(
        app.post("/api/v1/admin/providers", &onboard(json!("bus-2")), Some(&admin)),
        other.post("/api/v1/admin/providers", &onboard(json!("bus-2")), Some(&admin)),
    )
    .await;
    let mut outcomes = [a.status.as_u16(), b.status.as_u16()];
    outcomes.sort_unstable();
    assert_eq!(outcomes, [201, 409], "{} / {}", a.text, b.text);
}

async fn a_provider_trip_is_claimed_for_tanhui_once(app: TestApp) {
    let metro = provider(&app, Some("shenzhen-metro")).await;
    let watcher = peer(&app, "另一平台").await;
    let (phone, password, user_id, _) = app.register().await;
    let token = app.token_of(&phone, &password).await;
    let first = trip(&user_id, "op-1", "T-2026-0815#4411", 60);
    let r = app.signed(&metro, "POST", ACTIVITIES, Some(&first)).await;
    let credited = r.assert_status(201).clone();
    assert_eq!(credited["status"], "credited");
    assert_eq!(app.balance(&token).await, 467);
    let id = claim("shenzhen-metro", "T-2026-0815#4411");
    let seen = check(&app, &watcher, &[&id, &claim("shenzhen-metro", "T-other")]).await;
    assert_eq!(claimed(&seen), [true, false]);
    assert!(seen.body["results"][0]["claimed_at"].is_string());
    assert!(seen.body["results"][1].get("claimed_at").is_none());
    // Nothing personal crosses: the answer names claims and times only.
    for result in seen.body["results"].as_array().unwrap() {
        let keys: Vec<&String> = result.as_object().unwrap().keys().collect();
        assert!(
            keys.iter()
                .all(|k| ["claim", "claimed", "claimed_at"].contains(&k.as_str())),
            "{keys:?}"
        );
    }
    // A retry under the same id answers the first answer; the same trip under another id is refused.
    let again = app.signed(&metro, "POST", ACTIVITIES, Some(&first)).await;
    assert_eq!(again.assert_status(200), &credited);
    let reposted = trip(&user_id, "op-1-bis", "T-2026-0815#4411", 60);
    app.signed(&metro, "POST", ACTIVITIES, Some(&reposted))
        .await
        .assert_problem(409, "already_claimed");
    // So in a batch, where the trip also comes twice: once credited, the repeat refused.
    let batch = json!({"events": [
        trip(&user_id, "op-1-ter", "T-2026-0815#4411", 60),
        trip(&user_id, "op-2", "T-2", 200),
        trip(&user_id, "op-2-bis", "T-2", 200),
    ]});
    let r = app.signed(&metro, "POST", BATCH, Some(&batch)).await;
    let results = r.assert_status(200)["results"].as_array().unwrap().clone();
    assert_eq!(results[0]["error"]["code"], "already_claimed", "{}", r.text);
    assert_eq!(results[1]["status"], "credited", "{}", r.text);
    assert_eq!(results[2]["error"]["code"], "already_claimed", "{}", r.text);
    assert_eq!(app.balance(&token).await, 2 * 467, "each trip credited once");
    // A peer registering a trip Tanhui holds learns it is taken.
    let r = register(&app, &watcher, &[&id, &claim("shenzhen-metro", "T-2")]).await;
    assert_eq!(statuses(&r), ["already_claimed", "already_claimed"]);
    // A trip Tanhui rejects (reported after its claim window) keeps no claim.
    let late = trip(&user_id, "op-late", "T-late", 8 * 24 * 60);
    let r = app.signed(&metro, "POST", ACTIVITIES, Some(&late)).await;
    assert_eq!(r.assert_status(201)["reasons"], json!(["late"]));
    assert_eq!(
        claimed(&check(&app, &watcher, &[&claim("shenzhen-metro", "T-late")]).await),
        [false]
    );
    // Only a provider with an operator code names trips, and only as printable ASCII of bounded length.
    let codeless = provider(&app, None).await;
    app.signed(
        &codeless,
        "POST",
        ACTIVITIES,
        Some(&trip(&user_id, "c-1", "T-1", 30)),
    )
    .await
    .assert_problem(422, "no_operator_code");
    for bad in [
        "x".repeat(129),
        "a\nb".into(),
        " T-1".into(),
        "行程".into(),
        String::new(),
    ] {
        let r = app
            .signed(&metro, "POST", ACTIVITIES, Some(&trip(&user_id, "bad", &bad, 30)))
            .await;
        r.assert_problem(422, "validation_failed");
        assert_eq!(r.error_fields(), ["trip_ref"], "{bad:?}");
    }
    let mut own = trip(&user_id, "app-1", "T-app", 30);
    own.as_object_mut().unwrap().remove("user_id");
    let r = app.post_activity(&token, &own).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), ["trip_ref"]);
}

async fn a_trip_a_peer_claimed_first_is_stored_rejected_without_points(app: TestApp) {
    let metro = provider(&app, Some("shenzhen-metro")).await;
    let elsewhere = peer(&app, "另一平台").await;
    let (phone, password, user_id, _) = app.register().await;
    let token = app.token_of(&phone, &password).await;
    let taken = [claim("shenzhen-metro", "T-9"), claim("shenzhen-metro", "T-10")];
    let r = register(&app, &elsewhere, &[&taken[0], &taken[1]]).await;
    assert_eq!(statuses(&r), ["registered", "registered"]);
    // Registering again (a retry) answers the same: the caller holds them.
    let r = register(&app, &elsewhere, &[&taken[0]]).await;
    assert_eq!(statuses(&r), ["registered"]);
    let nine = trip(&user_id, "op-9", "T-9", 60);
    let r = app.signed(&metro, "POST", ACTIVITIES, Some(&nine)).await;
    let body = r.assert_status(201).clone();
    assert_eq!(body["status"], "rejected");
    assert_eq!(body["reasons"], json!(["already_claimed"]));
    assert_eq!(body["points"], 0);
    let batch =
        json!({"events": [trip(&user_id, "op-10", "T-10", 120), trip(&user_id, "op-11", "T-11", 180)]});
    let r = app.signed(&metro, "POST", BATCH, Some(&batch)).await;
    let results = r.assert_status(200)["results"].as_array().unwrap().clone();
    assert_eq!(results[0]["status"], "rejected", "{}", r.text);
    assert_eq!(results[1]["status"], "credited", "{}", r.text);
    assert_eq!(app.balance(&token).await, 467, "only the unclaimed trip earned");
    let list = app.get("/api/v1/activities", Some(&token)).await;
    let rejected: Vec<&Value> = list.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == "rejected")
        .map(|a| &a["reasons"])
        .collect();
    assert_eq!(
        rejected,
        [&json!(["already_claimed"]), &json!(["already_claimed"])]
    );
    // The stored rejection replays as it was.
    let again = app.signed(&metro, "POST", ACTIVITIES, Some(&nine)).await;
    assert_eq!(again.assert_status(200), &body);
    assert!(app.verify().await.ok());
}

async fn a_claim_raced_by_two_peers_on_two_instances_has_one_owner(app: TestApp) {
    let other = second_instance(&app).await;
    let (one, two) = (peer(&app, "甲").await, peer(&app, "乙").await);
    // Each round: both peers register the same 40 claims at once, on different instances, in opposite
    // orders, in four concurrent calls each.
    for round in 0..3 {
        let claims: Vec<String> = (0..40)
            .map(|i| claim("bus-7", &format!("R-{round}-{i}")))
            .collect();
        let forward: Vec<&str> = claims.iter().map(String::as_str).collect();
        let backward: Vec<&str> = forward.iter().rev().copied().collect();
        let (a, b) = futures_util::future::join(
            futures_util::future::join_all(
                forward
                    .chunks(10)
                    .map(|list| async { (list.to_vec(), register(&app, &one, list).await) }),
            ),
            futures_util::future::join_all(
                backward
                    .chunks(10)
                    .map(|list| async { (list.to_vec(), register(&other, &two, list).await) }),
            ),
        )
        .await;
        let mut registered: HashMap<&str, usize> = HashMap::new();
        for (list, r) in a.iter().chain(&b) {
            for (claim, status) in list.iter().zip(statuses(r)) {
                *registered.entry(claim).or_default() += usize::from(status == "registered");
            }
        }
        assert_eq!(registered.len(), 40);
        assert!(
            registered.values().all(|&n| n == 1),
            "round {round}: {registered:?}"
        );
        assert!(claimed(&check(&other, &two, &forward).await).iter().all(|c| *c));
    }
    // A provider's trips posted on one instance while a peer registers their claims on the other: each
    // trip is credited here or registered there, never both, never neither.
    let metro = provider(&app, Some("bus-7")).await;
    let (_, _, user_id, _) = app.register().await;
    let trips: Vec<Value> = (0..12)
        .map(|i| trip(&user_id, &format!("race-{i}"), &format!("X-{i}"), 30 + 25 * i))
        .collect();
    let claims: Vec<[String; 1]> = (0..12).map(|i| [claim("bus-7", &format!("X-{i}"))]).collect();
    let (posted, registered) = futures_util::future::join(
        futures_util::future::join_all(
            trips
                .iter()
                .map(|t| app.signed(&metro, "POST", ACTIVITIES, Some(t))),
        ),
        futures_util::future::join_all(claims.iter().map(|c| register(&other, &one, &c[..]))),
    )
    .await;
    for (post, registration) in posted.iter().zip(&registered) {
        let activity = post.assert_status(201);
        let ours = activity["status"] == "credited";
        let theirs = statuses(registration) == ["registered"];
        assert!(ours != theirs, "{} / {}", post.text, registration.text);
        if theirs {
            assert_eq!(activity["reasons"], json!(["already_claimed"]));
        }
    }
}

async fn registry_calls_are_bounded_and_signed_by_peers(app: TestApp) {
    let watcher = peer(&app, "另一平台").await;
    let id = claim("shenzhen-metro", "T-1");
    let thousand: Vec<String> = (0..1000).map(|i| claim("m", &i.to_string())).collect();
    let thousand: Vec<&str> = thousand.iter().map(String::as_str).collect();
    assert_eq!(claimed(&check(&app, &watcher, &thousand).await).len(), 1000);
    let mut too_many = thousand.clone();
    too_many.push(&id);
    check(&app, &watcher, &too_many)
        .await
        .assert_problem(422, "validation_failed");
    register(&app, &watcher, &too_many)
        .await
        .assert_problem(422, "validation_failed");
    check(&app, &watcher, &[])
        .await
        .assert_problem(422, "validation_failed");
    let upper = id.to_uppercase();
    for bad in [&id[..63], upper.as_str(), "zz", ""] {
        let r = check(&app, &watcher, &[&id, bad]).await;
        r.assert_problem(422, "validation_failed");
        assert_eq!(r.error_fields(), ["claims[1]"], "{bad}");
        let r = register(&app, &watcher, &[bad]).await;
        assert_eq!(r.error_fields(), ["claims[0].claim"], "{bad}");
    }
    let future = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let r = app
        .signed(
            &watcher,
            "POST",
            REGISTER,
            Some(&json!({"claims": [{"claim": id, "claimed_at": future}]})),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), ["claims[0].claimed_at"]);
    assert_eq!(
        claimed(&check(&app, &watcher, &[&id]).await),
        [false],
        "nothing registered"
    );
    // Signed by a peer's key, and only by one.
    let body = json!({"claims": [id]});
    app.post(CHECK, &body, None)
        .await
        .assert_problem(401, "signature_missing");
    let wrong = Signing {
        secret: "not-the-secret",
        ..watcher.fresh()
    };
    app.send_signed(&wrong, "POST", CHECK, Some(&body), &[])
        .await
        .assert_problem(401, "bad_signature");
    let metro = provider(&app, Some("shenzhen-metro")).await;
    app.signed(&metro, "POST", CHECK, Some(&body))
        .await
        .assert_problem(401, "unknown_key");
    app.signed(&metro, "POST", REGISTER, Some(&json!({"claims": []})))
        .await
        .assert_problem(401, "unknown_key");
    let (_, _, user_id, _) = app.register().await;
    app.signed(
        &watcher,
        "POST",
        ACTIVITIES,
        Some(&trip(&user_id, "p-1", "T-1", 30)),
    )
    .await
    .assert_problem(401, "unknown_key");
    // Onboarding peers: national administrators only, a bounded name, audited.
    let user = app.new_user_token().await;
    app.post("/api/v1/admin/peers", &json!({"name": "x"}), Some(&user))
        .await
        .assert_problem(403, "forbidden");
    let (_, regional) = app.administrator("440300").await;
    app.post("/api/v1/admin/peers", &json!({"name": "x"}), Some(&regional))
        .await
        .assert_problem(403, "out_of_scope");
    let admin = app.admin_token().await;
    for name in [json!(""), json!(" "), json!("名".repeat(101))] {
        app.post("/api/v1/admin/peers", &json!({"name": name}), Some(&admin))
            .await
            .assert_problem(422, "validation_failed");
    }
    let list = app.get("/api/v1/admin/peers", Some(&admin)).await;
    let peers = list.assert_status(200)["items"].as_array().unwrap().clone();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0]["keys"][0]["key_id"], watcher.key_id.as_str());
    let audit = app.get("/api/v1/admin/audit?entity=peer", Some(&admin)).await;
    assert_eq!(
        audit.assert_status(200)["items"][0]["action"],
        "peer.create",
        "{}",
        audit.text
    );
    // A revoked peer key stops working.
    let peer_id = peers[0]["peer_id"].as_str().unwrap();
    let path = format!("/api/v1/admin/peers/{peer_id}/keys/{}/revoke", watcher.key_id);
    app.post(&path, &json!({}), Some(&admin)).await.assert_status(200);
    check(&app, &watcher, &[&id])
        .await
        .assert_problem(401, "key_revoked");
    let doc = app.get("/api/v1/openapi.json", None).await;
    for path in [CHECK, REGISTER, "/api/v1/admin/peers"] {
        assert!(
            doc.body["paths"].get(path).is_some(),
            "{path} not in the OpenAPI document"
        );
    }
}

/// Flagged for its size, the trip holds its claim until the review rejects it.
async fn a_rejected_trip_gives_its_claim_up(app: TestApp) {
    let metro = provider(&app, Some("shenzhen-metro")).await;
    let watcher = peer(&app, "另一平台").await;
    let (_, _, user_id, _) = app.register().await;
    let r = app
        .signed(
            &metro,
            "POST",
            ACTIVITIES,
            Some(&trip(&user_id, "big", "T-big", 60)),
        )
        .await;
    let flagged = r.assert_status(201).clone();
    assert_eq!(flagged["status"], "flagged", "{}", r.text);
    let id = claim("shenzhen-metro", "T-big");
    assert_eq!(claimed(&check(&app, &watcher, &[&id]).await), [true]);
    let admin = app.admin_token().await;
    app.review(&admin, &flagged["activity_id"], "reject", "not a real trip")
        .await
        .assert_status(200);
    assert_eq!(claimed(&check(&app, &watcher, &[&id]).await), [false]);
    assert_eq!(statuses(&register(&app, &watcher, &[&id]).await), ["registered"]);
}
