//! Administration by region: role grants, scopes, and the rule that the last national grant stays.

use serde_json::json;

use crate::both_backends;
use crate::helpers::TestApp;

both_backends!(
    a_national_admin_grants_and_revokes_a_regional_scope,
    only_national_admins_grant_roles,
    grants_go_only_to_administrator_accounts,
    the_last_national_grant_cannot_be_revoked,
);

async fn delete(app: &TestApp, path: &str, token: &str) -> crate::helpers::Resp {
    app.send(app.client.delete(app.url(path)).bearer_auth(token))
        .await
}

async fn a_national_admin_grants_and_revokes_a_regional_scope(app: TestApp) {
    let national = app.admin_token().await;
    let (wuhan_admin, _) = app.administrator("420100").await;
    let granted = app
        .post(
            "/api/v1/admin/role-grants",
            &json!({"user_id": wuhan_admin, "role": "region_admin", "region_code": "440000"}),
            Some(&national),
        )
        .await
        .assert_status(201)
        .clone();
    assert_eq!(granted["role"], "region_admin");
    assert_eq!(granted["region_code"], "440000");
    let grant_id = granted["grant_id"].as_str().unwrap().to_string();
    // The same grant twice is a conflict; both live grants are listed.
    app.post(
        "/api/v1/admin/role-grants",
        &json!({"user_id": wuhan_admin, "role": "region_admin", "region_code": "440000"}),
        Some(&national),
    )
    .await
    .assert_problem(409, "conflict");
    let listed = app
        .get(
            &format!("/api/v1/admin/role-grants?user_id={wuhan_admin}"),
            Some(&national),
        )
        .await
        .assert_status(200)
        .clone();
    let mut regions: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["region_code"].as_str().unwrap())
        .collect();
    regions.sort();
    assert_eq!(regions, ["420100", "440000"]);
    delete(&app, &format!("/api/v1/admin/role-grants/{grant_id}"), &national)
        .await
        .assert_status(204);
    delete(&app, &format!("/api/v1/admin/role-grants/{grant_id}"), &national)
        .await
        .assert_problem(404, "not_found");
    // Both changes are in the audit log, against the grant.
    let audit = app.get("/api/v1/admin/audit?limit=10", Some(&national)).await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity"] == "role_grant" && e["entity_id"] == grant_id.as_str())
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["role.revoke", "role.grant"]);
}

async fn only_national_admins_grant_roles(app: TestApp) {
    let (_, guangdong) = app.administrator("440000").await;
    let (other, _) = app.administrator("440300").await;
    app.post(
        "/api/v1/admin/role-grants",
        &json!({"user_id": other, "role": "region_admin", "region_code": "440300"}),
        Some(&guangdong),
    )
    .await
    .assert_problem(403, "out_of_scope");
    // A person's token is not an administrator's at all.
    let person = app.new_user_token().await;
    app.get("/api/v1/admin/role-grants", Some(&person))
        .await
        .assert_problem(403, "forbidden");
}

async fn grants_go_only_to_administrator_accounts(app: TestApp) {
    let national = app.admin_token().await;
    let (_, _, person, _) = app.register().await;
    app.post(
        "/api/v1/admin/role-grants",
        &json!({"user_id": person.parse::<i64>().unwrap(), "role": "region_admin", "region_code": "440300"}),
        Some(&national),
    )
    .await
    .assert_problem(409, "invalid_state");
    let (admin, _) = app.administrator("440300").await;
    app.post(
        "/api/v1/admin/role-grants",
        &json!({"user_id": admin, "role": "admin", "region_code": "440000"}),
        Some(&national),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.post(
        "/api/v1/admin/role-grants",
        &json!({"user_id": admin, "role": "region_admin", "region_code": "999999"}),
        Some(&national),
    )
    .await
    .assert_problem(422, "unknown_region");
}

async fn the_last_national_grant_cannot_be_revoked(app: TestApp) {
    let (first, first_token) = app.administrator("CN").await;
    let (second, _) = app.administrator("CN").await;
    let grants = app
        .get("/api/v1/admin/role-grants", Some(&first_token))
        .await
        .assert_status(200)
        .clone();
    let national_grant_of = |user: i64| {
        grants["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["role"] == "admin" && g["user_id"] == user.to_string().as_str())
            .map(|g| g["grant_id"].as_str().unwrap().to_string())
            .unwrap()
    };
    delete(
        &app,
        &format!("/api/v1/admin/role-grants/{}", national_grant_of(second)),
        &first_token,
    )
    .await
    .assert_status(204);
    delete(
        &app,
        &format!("/api/v1/admin/role-grants/{}", national_grant_of(first)),
        &first_token,
    )
    .await
    .assert_problem(409, "invalid_state");
}
