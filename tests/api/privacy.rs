//! Personal data: phones are never stored in clear (checked in the SQLite file and in a PostgreSQL dump,
//! also for rows stored before phones were sealed), a person exports everything held about them, and
//! erases their account while the ledger stays whole.

use chrono::{Duration, Utc};
use diesel::RunQueryDsl;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{second_instance, Key, TestApp};

both_backends!(
    no_phone_is_stored_in_clear_including_rows_stored_before_sealing,
    an_export_holds_every_kind_of_record,
    an_erased_account_frees_its_phone_and_keeps_the_ledger_whole,
    raw_data_past_its_retention_keeps_only_what_reproduces_the_figure,
);

/// Every byte the database holds, as text a phone number could be found in: the SQLite file and its
/// write-ahead log, or a `pg_dump` of the PostgreSQL database.
fn stored_bytes(app: &TestApp) -> Vec<u8> {
    let url = &app.settings.database.url;
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mut bytes = std::fs::read(path).expect("the SQLite file");
        for side in ["-wal", "-journal"] {
            bytes.extend(std::fs::read(format!("{path}{side}")).unwrap_or_default());
        }
        bytes
    } else {
        let out = std::process::Command::new("pg_dump")
            .arg("--no-owner")
            .arg(url)
            .output()
            .expect("pg_dump runs");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

fn holds(bytes: &[u8], phone: &str) -> bool {
    bytes.windows(phone.len()).any(|w| w == phone.as_bytes())
}

async fn no_phone_is_stored_in_clear_including_rows_stored_before_sealing(app: TestApp) {
    let (phone, password, user_id, _) = app.register().await;
    let (old_phone, old_password, old_user, _) = app.register().await;
    // What migration 000027 leaves of a row stored before: the plain phone in `phone_hash`, nothing sealed.
    let (plain, id) = (old_phone.clone(), old_user.clone());
    app.with_conn(move |conn| {
        diesel::sql_query(format!(
            "UPDATE users SET phone_hash = '{plain}', phone_sealed = NULL WHERE id = {id}"
        ))
        .execute(conn)
        .unwrap()
    })
    .await;
    assert!(
        holds(&stored_bytes(&app), &old_phone),
        "the scan finds a phone in clear"
    );

    // Start-up seals it (here a second instance's, on the same database).
    let other = second_instance(&app).await;
    let bytes = stored_bytes(&other);
    for p in [&phone, &old_phone] {
        assert!(!holds(&bytes, p), "{p} is stored in clear");
    }
    // Both sign in, the sealed row shows its masked phone, and a look-up finds it.
    let token = other.token_of(&old_phone, &old_password).await;
    let me = other.get("/api/v1/me", Some(&token)).await;
    let masked = format!("{}****{}", &old_phone[..3], &old_phone[7..]);
    assert_eq!(me.assert_status(200)["phone_masked"], masked.as_str());
    assert_eq!(me.body["user_id"], old_user.as_str());
    let mine = other.token_of(&phone, &password).await;
    let found = other
        .get(&format!("/api/v1/accounts/lookup?phone={old_phone}"), Some(&mine))
        .await;
    found.assert_status(200);
    let mine = other.get("/api/v1/me", Some(&mine)).await;
    assert_eq!(mine.assert_status(200)["user_id"], user_id.as_str());
    // The phone stays taken.
    let again = json!({"phone": phone, "password": "another password 1", "display_name": "x",
        "account_type": "individual", "region_code": "440300"});
    let r = other.post("/api/v1/auth/register", &again, None).await;
    assert_eq!(r.status, 409, "{}", r.text);
}

async fn onboard_partner(app: &TestApp, kind: &str) -> (Key, String) {
    let admin = app.admin_token().await;
    let r = app
        .post(
            "/api/v1/admin/partners",
            &json!({"name": format!("{kind} 伙伴"), "kind": kind, "region_codes": ["440300"]}),
            Some(&admin),
        )
        .await;
    let body = r.assert_status(201);
    (
        Key::from_credentials(body),
        body["partner_id"].as_str().unwrap().to_string(),
    )
}

async fn an_export_holds_every_kind_of_record(app: TestApp) {
    let (phone, password, user_id, account) = app.register().await;
    let token = app.token_of(&phone, &password).await;
    // An activity and its issue.
    let trip = json!({"client_event_id": "t-1", "activity_type": "transit.metro", "evidence": "trace",
        "occurred_at": (Utc::now() - Duration::minutes(60)).to_rfc3339(),
        "ended_at": (Utc::now() - Duration::minutes(40)).to_rfc3339(), "data": {"distance_m": 10000}});
    app.post_activity(&token, &trip).await.assert_status(201);
    app.grant(&account, 1000).await;
    // A redemption.
    let (gate, _) = onboard_partner(&app, "scenic").await;
    let terms = json!({"title": "门票", "points_cost": 300, "stock": 5,
        "valid_from": (Utc::now() - Duration::days(1)).to_rfc3339(),
        "valid_to": (Utc::now() + Duration::days(30)).to_rfc3339(), "region_codes": ["440300"]});
    let offer = app
        .signed(&gate, "POST", "/api/v1/partner/offers", Some(&terms))
        .await;
    let offer_id = offer.assert_status(201)["id"].as_str().unwrap().to_string();
    let held = app
        .send(
            app.client
                .post(app.url("/api/v1/redemptions"))
                .bearer_auth(&token)
                .header("Idempotency-Key", "r-1")
                .json(&json!({"offer_id": offer_id})),
        )
        .await;
    held.assert_status(201);
    // A consent, read once.
    let (bank, bank_id) = onboard_partner(&app, "green_credit").await;
    let consent = app
        .post(
            "/api/v1/consents",
            &json!({"partner_id": bank_id, "scopes": ["green_profile"],
                "expires_at": (Utc::now() + Duration::days(30)).to_rfc3339()}),
            Some(&token),
        )
        .await;
    let consent_id = consent.assert_status(201)["consent_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/partner/consents/{consent_id}/green-profile");
    app.signed(&bank, "GET", &path, None).await.assert_status(200);
    // A binding.
    let admin = app.admin_token().await;
    let r = app
        .post(
            "/api/v1/admin/providers",
            &json!({"name": "深圳地铁", "kind": "transit", "region_codes": ["440300"]}),
            Some(&admin),
        )
        .await;
    let body = r.assert_status(201);
    let metro = Key::from_credentials(body);
    let provider_id: i64 = body["partner_id"].as_str().unwrap().parse().unwrap();
    let code = app
        .post(
            "/api/v1/me/binding-codes",
            &json!({"provider_id": provider_id}),
            Some(&token),
        )
        .await;
    let code = code.assert_status(201)["code"].as_str().unwrap().to_string();
    let bound = app
        .signed(
            &metro,
            "POST",
            "/api/v1/provider/bindings",
            Some(&json!({"code": code, "external_ref": "card-8812"})),
        )
        .await;
    bound.assert_status(201);
    // Money: a deposit, a bid that holds some of it, and a retirement of points.
    crate::market::Treasury::new(&app)
        .await
        .fund(&app, &account, 500)
        .await;
    let bid = json!({"side": "buy", "points": 1_000, "price_fen_per_1000": 200});
    crate::market::post_keyed(&app, "/api/v1/market/orders", &bid, &token)
        .await
        .assert_status(201);
    let retirement = json!({"points": 10, "beneficiary": "绿色工厂", "reason": "年度碳中和"});
    crate::market::post_keyed(&app, "/api/v1/retirements", &retirement, &token)
        .await
        .assert_status(201);

    let export = app.get("/api/v1/me/export", Some(&token)).await;
    let export: Value = export.assert_status(200).clone();
    assert_eq!(export["profile"]["phone"], phone.as_str());
    assert_eq!(export["profile"]["user_id"], user_id.as_str());
    assert_eq!(export["activities"][0]["client_event_id"], "t-1");
    assert!(export["activities"][0]["data"]
        .as_str()
        .unwrap()
        .contains("distance_m"));
    // Issue, grant, redemption hold, deposit (cash), bid hold (cash), retirement.
    let kinds: Vec<&str> = export["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.len() >= 6, "{kinds:?}");
    assert!(kinds.contains(&"retire"), "{kinds:?}");
    assert_eq!(export["cash_deposits"][0]["amount_fen"], 500);
    assert_eq!(export["market_orders"][0]["side"], "buy");
    assert_eq!(export["retirements"][0]["beneficiary"], "绿色工厂");
    assert_eq!(export["cash_withdrawals"], json!([]));
    assert_eq!(export["incentives"], json!([]));
    assert_eq!(export["redemptions"].as_array().unwrap().len(), 1);
    assert_eq!(export["consents"][0]["consent_id"], consent_id.as_str());
    assert_eq!(export["consents"][0]["accesses"].as_array().unwrap().len(), 1);
    assert_eq!(export["bindings"][0]["external_ref"], "card-8812");
    assert!(!export["sessions"].as_array().unwrap().is_empty());
    assert!(export["green_profile"]["reduction_g"].as_i64().unwrap() > 0);
    assert_eq!(export["truncated"], json!([]));
    let text = serde_json::to_string(&export).unwrap();
    assert!(
        !text.contains("token_hash") && !text.contains("password"),
        "no secret is exported"
    );
}

async fn an_erased_account_frees_its_phone_and_keeps_the_ledger_whole(app: TestApp) {
    let (phone, password, _, account) = app.register().await;
    let token = app.token_of(&phone, &password).await;
    app.grant(&account, 500).await;
    let (_, friend_account) = app.new_member().await;
    let sent = app
        .post_transfer(
            &token,
            "gift",
            &json!({"to_account_id": friend_account, "points": 200}),
        )
        .await;
    sent.assert_status(201);
    let refresh = app.login(&phone, &password).await.body["refresh_token"].clone();

    let erase = |password: &str| {
        app.client
            .delete(app.url("/api/v1/me"))
            .bearer_auth(&token)
            .json(&json!({"password": password}))
    };
    let wrong = app.send(erase("not my password")).await;
    assert_eq!(wrong.status, 401, "{}", wrong.text);
    app.send(erase(&password)).await.assert_status(204);

    // Every session is over, on every instance, and nobody signs in with the phone.
    let r = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let other = second_instance(&app).await;
    let r = other.get("/api/v1/me", Some(&token)).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let r = app
        .post("/api/v1/auth/refresh", &json!({"refresh_token": refresh}), None)
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(app.login(&phone, &password).await.status, 401);

    // The phone registers again, as a new person with a new wallet.
    let again = json!({"phone": phone, "password": "a new password 1", "display_name": "新用户",
        "account_type": "individual", "region_code": "440300"});
    let r = app.post("/api/v1/auth/register", &again, None).await;
    let new_account = r.assert_status(201)["account_id"].as_str().unwrap().to_string();
    assert_ne!(new_account, account);
    let new_token = app.token_of(&phone, "a new password 1").await;
    assert_eq!(app.balance(&new_token).await, 0);

    // Nothing new goes into the erased wallet: it is no one's to receive.
    let (friend_phone, friend_password, _, _) = app.register().await;
    let friend = app.token_of(&friend_phone, &friend_password).await;
    let late = app
        .post_transfer(
            &friend,
            "late-gift",
            &json!({"to_account_id": account, "points": 1}),
        )
        .await;
    late.assert_problem(422, "unknown_account");

    // The ledger is whole: the erased wallet keeps its history and its remaining 300 points.
    let report = app.verify().await;
    assert!(report.ok(), "{report:?}");
    #[derive(diesel::QueryableByName)]
    struct Balance {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let left = app
        .with_conn(move |conn| {
            diesel::sql_query(format!(
                "SELECT CAST(credits_posted - debits_posted AS BIGINT) AS n FROM accounts WHERE id = {account}"
            ))
            .get_result::<Balance>(conn)
            .unwrap()
            .n
        })
        .await;
    assert_eq!(left, 300);
}

#[derive(diesel::QueryableByName)]
struct Data {
    #[diesel(sql_type = diesel::sql_types::Text)]
    data: String,
}

async fn stored_data(app: &TestApp, id: &str) -> String {
    let sql = format!("SELECT data FROM activities WHERE id = {id}");
    app.with_conn(move |conn| diesel::sql_query(sql).get_result::<Data>(conn).unwrap().data)
        .await
}

async fn sweep(app: &TestApp) -> tanhui::background::Swept {
    let (now, settings) = (app.state.clock.now_naive(), app.settings.clone());
    app.with_conn(move |conn| tanhui::background::sweep_retention(conn, now, &settings).unwrap())
        .await
}

async fn raw_data_past_its_retention_keeps_only_what_reproduces_the_figure(app: TestApp) {
    let (token, _) = app.new_member().await;
    let trip = json!({"client_event_id": "t-1", "activity_type": "transit.metro", "evidence": "trace",
        "occurred_at": (Utc::now() - Duration::minutes(60)).to_rfc3339(),
        "ended_at": (Utc::now() - Duration::minutes(40)).to_rfc3339(), "data": {"distance_m": 10000}});
    let posted = app.post_activity(&token, &trip).await;
    let id = posted.assert_status(201)["activity_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Data beside the formula's inputs, as an older data schema let an app send.
    let sql =
        format!(r#"UPDATE activities SET data = '{{"distance_m":10000,"note":"家到公司"}}' WHERE id = {id}"#);
    app.with_conn(move |conn| diesel::sql_query(sql).execute(conn).unwrap())
        .await;

    assert_eq!(sweep(&app).await.activity_data, 0, "inside the retention");
    assert!(stored_data(&app, &id).await.contains("note"));
    app.clock
        .advance(Duration::days(i64::from(app.settings.retention.activity_data_days)) + Duration::hours(1));
    assert_eq!(sweep(&app).await.activity_data, 1);
    assert_eq!(stored_data(&app, &id).await, r#"{"distance_m":10000}"#);
    assert_eq!(sweep(&app).await.activity_data, 0, "each row is read once");
    let report = app.verify().await;
    assert!(report.ok(), "the figure is still reproduced: {report:?}");
}
