//! Green profiles and consent: a green-credit partner reads a person's profile only under a live grant,
//! every read is recorded, and a revocation or an expiry stops the next read on every instance.

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{second_instance, Key, TestApp};

both_backends!(
    a_profile_counts_the_quarter_and_shows_its_factors,
    a_partner_reads_while_the_consent_lives_and_never_after,
    another_partner_is_refused_and_only_banks_are_granted,
    an_expired_consent_stops_reads_and_a_bank_grades_by_its_own_tiers,
);

/// A partner onboarded by the administrator: (its signing key, its id).
async fn partner(app: &TestApp, name: &str, kind: &str) -> (Key, String) {
    let admin = app.admin_token().await;
    let r = app
        .post(
            "/api/v1/admin/partners",
            &json!({"name": name, "kind": kind, "region_codes": ["440300"]}),
            Some(&admin),
        )
        .await;
    let body = r.assert_status(201);
    (
        Key::from_credentials(body),
        body["partner_id"].as_str().unwrap().to_string(),
    )
}

/// A 10 km metro trip with a trace, an hour ago.
fn trip(id: &str) -> Value {
    json!({"client_event_id": id, "activity_type": "transit.metro", "evidence": "trace",
        "occurred_at": (Utc::now() - Duration::minutes(60)).to_rfc3339(),
        "ended_at": (Utc::now() - Duration::minutes(40)).to_rfc3339(),
        "data": {"distance_m": 10000}})
}

async fn grant(app: &TestApp, token: &str, partner_id: &str, days: i64) -> String {
    let r = app
        .post(
            "/api/v1/consents",
            &json!({"partner_id": partner_id, "scopes": ["green_profile"],
                "expires_at": (app.state.clock.now() + Duration::days(days)).to_rfc3339()}),
            Some(token),
        )
        .await;
    r.assert_status(201)["consent_id"].as_str().unwrap().to_string()
}

fn read_path(consent: &str) -> String {
    format!("/api/v1/partner/consents/{consent}/green-profile")
}

async fn a_profile_counts_the_quarter_and_shows_its_factors(app: TestApp) {
    let (token, _) = app.new_member().await;
    let empty = app.get("/api/v1/me/green-profile", Some(&token)).await;
    let empty = empty.assert_status(200);
    assert_eq!(empty["reduction_g"], 0);
    assert_eq!(empty["tier"], "light");
    assert_eq!(empty["score"], 0);

    let posted = app.post_activity(&token, &trip("t-1")).await;
    let granted = posted.assert_status(201)["granted_g"].as_i64().unwrap();
    assert!(granted > 0);
    let profile = app.get("/api/v1/me/green-profile", Some(&token)).await;
    let profile = profile.assert_status(200).clone();
    assert_eq!(profile["reduction_g"], granted, "{profile}");
    assert!(profile["quarter"].as_str().unwrap().contains("-Q"));
    let factors = profile["factors"].as_array().unwrap();
    let names: Vec<&str> = factors.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["weeks_active", "verified_evidence_share", "clean_record"]);
    assert_eq!(factors[0]["value"], "1");
    assert_eq!(factors[1]["value"], "1", "the one trip carried a trace");
    let sum: i64 = factors.iter().map(|f| f["points"].as_i64().unwrap()).sum();
    assert_eq!(profile["score"], sum);
    assert!(factors.iter().all(|f| f["weight"].as_i64().unwrap() > 0));
}

async fn a_partner_reads_while_the_consent_lives_and_never_after(app: TestApp) {
    let (bank, bank_id) = partner(&app, "文登农商银行", "green_credit").await;
    let (token, _) = app.new_member().await;
    let consent = grant(&app, &token, &bank_id, 90).await;
    // Every credit acknowledged before the read is in it.
    let granted = app.post_activity(&token, &trip("t-1")).await.assert_status(201)["granted_g"]
        .as_i64()
        .unwrap();
    let read = app.signed(&bank, "GET", &read_path(&consent), None).await;
    assert_eq!(read.assert_status(200)["reduction_g"], granted);
    let other = second_instance(&app).await;
    let read = other.signed(&bank, "GET", &read_path(&consent), None).await;
    assert_eq!(read.assert_status(200)["tier"], "light");

    let listed = app.get("/api/v1/consents", Some(&token)).await;
    let item = &listed.assert_status(200)["items"][0];
    assert_eq!(
        (item["consent_id"].as_str(), item["status"].as_str()),
        (Some(consent.as_str()), Some("live"))
    );
    let accesses = app
        .get(&format!("/api/v1/consents/{consent}/accesses"), Some(&token))
        .await;
    let items = accesses.assert_status(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["partner_name"], "文登农商银行");
    assert_eq!(items[0]["partner_id"], bank_id.as_str());
    assert_eq!(items[0]["scope"], "green_profile");

    // Someone else can neither see nor revoke it.
    let (stranger, _) = app.new_member().await;
    app.get(&format!("/api/v1/consents/{consent}/accesses"), Some(&stranger))
        .await
        .assert_problem(404, "not_found");
    let r = app
        .send(
            app.client
                .delete(app.url(&format!("/api/v1/consents/{consent}")))
                .bearer_auth(&stranger),
        )
        .await;
    r.assert_problem(404, "not_found");

    let r = app
        .send(
            app.client
                .delete(app.url(&format!("/api/v1/consents/{consent}")))
                .bearer_auth(&token),
        )
        .await;
    r.assert_status(204);
    for instance in [&app, &other] {
        let read = instance.signed(&bank, "GET", &read_path(&consent), None).await;
        read.assert_problem(403, "consent_revoked");
    }
    let listed = app.get("/api/v1/consents", Some(&token)).await;
    assert_eq!(listed.assert_status(200)["items"][0]["status"], "revoked");

    let audit = app
        .get(
            &format!("/api/v1/admin/audit?entity=consent&entity_id={consent}"),
            Some(&app.admin_token().await),
        )
        .await;
    let actions: Vec<String> = audit.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    for action in ["consent.grant", "consent.read", "consent.revoke"] {
        assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
    }
}

async fn another_partner_is_refused_and_only_banks_are_granted(app: TestApp) {
    let (_, bank_id) = partner(&app, "银行甲", "green_credit").await;
    let (other_bank, _) = partner(&app, "银行乙", "green_credit").await;
    let (_, park_id) = partner(&app, "公园", "scenic").await;
    let (token, _) = app.new_member().await;
    let consent = grant(&app, &token, &bank_id, 30).await;
    let read = app.signed(&other_bank, "GET", &read_path(&consent), None).await;
    read.assert_problem(404, "not_found");

    let expires = (Utc::now() + Duration::days(30)).to_rfc3339();
    let to_park = json!({"partner_id": park_id, "scopes": ["green_profile"], "expires_at": expires});
    let r = app.post("/api/v1/consents", &to_park, Some(&token)).await;
    assert_eq!(r.status, 422, "{}", r.text);
    let unbounded = json!({"partner_id": bank_id, "scopes": ["green_profile"],
        "expires_at": (Utc::now() + Duration::days(400)).to_rfc3339()});
    let r = app.post("/api/v1/consents", &unbounded, Some(&token)).await;
    assert_eq!(r.status, 422, "{}", r.text);
    let wider = json!({"partner_id": bank_id, "scopes": ["green_profile", "wallet"], "expires_at": expires});
    let r = app.post("/api/v1/consents", &wider, Some(&token)).await;
    assert_eq!(r.status, 422, "{}", r.text);
    let unknown = json!({"partner_id": "999999", "scopes": ["green_profile"], "expires_at": expires});
    app.post("/api/v1/consents", &unknown, Some(&token))
        .await
        .assert_problem(404, "not_found");
    // Unsigned, nothing is read.
    let r = app.get(&read_path(&consent), None).await;
    assert_eq!(r.status, 401, "{}", r.text);
}

async fn an_expired_consent_stops_reads_and_a_bank_grades_by_its_own_tiers(app: TestApp) {
    let (bank, bank_id) = partner(&app, "农商银行", "green_credit").await;
    let (token, _) = app.new_member().await;
    let granted = app.post_activity(&token, &trip("t-1")).await.assert_status(201)["granted_g"]
        .as_i64()
        .unwrap();
    let consent = grant(&app, &token, &bank_id, 1).await;

    let tiers = json!({"medium_from_g": granted, "deep_above_g": granted + 1});
    let r = app
        .signed(&bank, "PUT", "/api/v1/partner/green-tiers", Some(&tiers))
        .await;
    r.assert_status(200);
    let read = app.signed(&bank, "GET", &read_path(&consent), None).await;
    let read = read.assert_status(200);
    assert_eq!(read["tier"], "medium", "{read}");
    assert_eq!(read["thresholds"]["medium_from_g"], granted);
    let own = app.get("/api/v1/me/green-profile", Some(&token)).await;
    assert_eq!(
        own.assert_status(200)["tier"],
        "light",
        "the person reads the platform's tiers"
    );
    let bad = json!({"medium_from_g": 10, "deep_above_g": 5});
    let r = app
        .signed(&bank, "PUT", "/api/v1/partner/green-tiers", Some(&bad))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);

    app.clock.advance(Duration::days(1) + Duration::seconds(1));
    let read = app.signed(&bank, "GET", &read_path(&consent), None).await;
    read.assert_problem(403, "consent_revoked");
}
