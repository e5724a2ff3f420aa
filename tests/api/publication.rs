//! Published methodology versions: signed documents anyone can verify with the platform's public key and
//! apply to an activity of their own.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tanhui::domain::formula::{to_grams, Formula};

use crate::both_backends;
use crate::helpers::{verified_payload, TestApp};

both_backends!(a_published_version_verifies_with_the_jwks_alone_and_reproduces_an_activity);
both_backends!(only_versions_in_force_or_retired_are_published);
both_backends!(a_region_parameter_version_is_published_signed_once_active);

fn signed_path(id: &str) -> String {
    format!("/api/v1/public/methodologies/{id}/signed")
}

/// Grams from the published version alone: its formula read by the crate's parser, its names bound to
/// the published parameters and to the activity's data.
fn evaluate(version: &Value, data: &Value) -> i64 {
    let formula = Formula::parse(version["formula"].as_str().unwrap()).expect("a published formula parses");
    let values: Vec<Decimal> = formula
        .variables()
        .iter()
        .map(|name| {
            let text = match version["parameters"][name]["value"].as_str() {
                Some(value) => value.to_string(),
                None => data[name].to_string(),
            };
            text.parse().unwrap_or_else(|_| panic!("no value for `{name}`"))
        })
        .collect();
    to_grams(formula.evaluate(&values).unwrap()).unwrap()
}

async fn a_published_version_verifies_with_the_jwks_alone_and_reproduces_an_activity(app: TestApp) {
    let user = app.new_user_token().await;
    let data = json!({"count": 1, "distance_m": 12345});
    let ride = json!({"client_event_id": "pub-1", "activity_type": "transit.metro", "region_code": "440300",
        "evidence": "trace", "occurred_at": chrono::Utc::now().to_rfc3339(), "data": data});
    let stored = app.post_activity(&user, &ride).await.assert_status(201).clone();
    let id = stored["methodology"]["id"].as_str().unwrap();

    let r = app.get(&signed_path(id), None).await;
    r.assert_status(200);
    assert_eq!(r.content_type(), "application/jose");
    let version = verified_payload(&app, &r.text).await.expect("verifies");
    assert_eq!(version["id"], id);
    assert_eq!(
        [
            &version["activity_type"]["code"],
            &version["region_code"],
            &version["status"]
        ],
        ["transit.metro", "440300", "active"]
    );
    assert_eq!(version["parameters"]["metro_saving_g_per_pkm"]["unit"], "g/pkm");
    assert!(version["parameters"]["metro_saving_g_per_pkm"]["source"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert!(version["activity_type"]["data_schema"]["properties"]["distance_m"].is_object());
    assert!(version["effective_from"].is_string());
    assert!(version.get("evidence_weights").is_some() && version.get("daily_cap_g").is_some());
    assert_eq!(version["replaces"], Value::Null, "Shenzhen's first metro version");
    assert_eq!(evaluate(&version, &data), stored["reduction_g"].as_i64().unwrap());

    // A changed payload under the same signature is refused.
    let parts: Vec<&str> = r.text.split('.').collect();
    let mut forged = version.clone();
    forged["parameters"]["metro_saving_g_per_pkm"]["value"] = json!("99");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(forged.to_string()),
        parts[2]
    );
    assert!(verified_payload(&app, &forged).await.is_err());

    // Wuhan's second metro version names the first as the one it replaces.
    let wuhan = json!({"client_event_id": "pub-2", "activity_type": "transit.metro", "region_code": "420100",
        "evidence": "trace", "occurred_at": chrono::Utc::now().to_rfc3339(), "data": data});
    let stored = app.post_activity(&user, &wuhan).await.assert_status(201).clone();
    let r = app
        .get(&signed_path(stored["methodology"]["id"].as_str().unwrap()), None)
        .await;
    let version = verified_payload(&app, &r.text).await.expect("verifies");
    assert_eq!(version["version"], 2);
    assert_eq!(version["replaces"]["version"], 1);
    assert_eq!(evaluate(&version, &data), stored["reduction_g"].as_i64().unwrap());
}

async fn only_versions_in_force_or_retired_are_published(app: TestApp) {
    let maker = app.admin_token().await;
    let draft = json!({"activity_type": "transit.bus", "region_code": "110000",
        "effective_from": "2030-01-01T00:00:00+08:00",
        "parameters": {"k": {"value": "90", "unit": "g/ride", "source": "test"}},
        "formula": "count * k", "citation": "test fixture"});
    let id = app.draft(&maker, &draft).await;
    app.get(&signed_path(&id), None)
        .await
        .assert_problem(404, "not_found");
    app.get(&signed_path("9999999"), None)
        .await
        .assert_problem(404, "not_found");

    // Once in force and then retired, it stays published, saying so.
    let checker = app.admin_token().await;
    app.post(
        &format!("/api/v1/admin/methodologies/{id}/activate"),
        &json!({}),
        Some(&checker),
    )
    .await
    .assert_status(200);
    let r = app.get(&signed_path(&id), None).await;
    assert_eq!(verified_payload(&app, &r.text).await.unwrap()["status"], "active");
    let retired = id.parse::<i64>().unwrap();
    app.with_conn(move |conn| {
        use diesel::prelude::*;
        diesel::sql_query(format!(
            "UPDATE methodology_versions SET status = 'retired', retired_at = activated_at WHERE id = {retired}"
        ))
        .execute(conn)
        .unwrap();
    })
    .await;
    let r = app.get(&signed_path(&id), None).await;
    let version = verified_payload(&app, &r.text).await.unwrap();
    assert_eq!(version["status"], "retired");
    assert!(version["retired_at"].is_string());
}

async fn a_region_parameter_version_is_published_signed_once_active(app: TestApp) {
    let (maker, checker) = (app.admin_token().await, app.admin_token().await);
    let from = app.clock.clock().now() + chrono::Duration::hours(1);
    let body = json!({"region_code": "440300", "effective_from": from.to_rfc3339(),
        "values": {"points_per_gram": "2", "transit_bonus": "1.25"}, "citation": "深圳市碳普惠管理办法"});
    let drafted = app
        .post("/api/v1/admin/region-parameters", &body, Some(&maker))
        .await;
    let id = drafted.assert_status(201)["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/public/region-parameters/{id}/signed");
    app.get(&path, None).await.assert_problem(404, "not_found");
    let activate = format!("/api/v1/admin/region-parameters/{id}/activate");
    app.post(&activate, &json!({}), Some(&checker))
        .await
        .assert_status(200);

    let signed = app.get(&path, None).await;
    assert_eq!(signed.assert_status(200), &Value::Null, "a JWS is not JSON");
    assert_eq!(signed.content_type(), "application/jose");
    let document = verified_payload(&app, &signed.text)
        .await
        .expect("verifies with the JWKS alone");
    assert_eq!(document["id"], id.as_str());
    assert_eq!(
        (
            document["region_code"].as_str(),
            document["inherits_from"].as_str()
        ),
        (Some("440300"), Some("440000"))
    );
    assert_eq!(document["status"], "active");
    assert_eq!(
        document["values"]["points_per_gram"],
        json!({"value": "2", "unit": "points/g"})
    );
    assert_eq!(
        document["values"]["transit_bonus"],
        json!({"value": "1.25", "unit": null})
    );
    assert_eq!(document["citation"], "深圳市碳普惠管理办法");
    let effective: chrono::DateTime<chrono::Utc> =
        document["effective_from"].as_str().unwrap().parse().unwrap();
    assert_eq!(effective.timestamp(), from.timestamp());
    // A changed payload under the same signature is refused.
    let mut parts: Vec<String> = signed.text.split('.').map(str::to_string).collect();
    let mut forged = document.clone();
    forged["values"]["points_per_gram"]["value"] = json!("20");
    parts[1] = URL_SAFE_NO_PAD.encode(forged.to_string());
    assert!(verified_payload(&app, &parts.join(".")).await.is_err());
    app.get("/api/v1/public/region-parameters/999999/signed", None)
        .await
        .assert_problem(404, "not_found");
}
