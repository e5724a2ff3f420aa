//! Sweeps of what is past its retention: idempotency records and refresh tokens that nothing can use.

use chrono::Duration;
use diesel::{QueryDsl, RunQueryDsl};
use serde_json::{json, Value};
use tanhui::background::{sweep_retention, Swept, RETENTION_SWEEP_BATCH};
use tanhui::db::schema::{idempotency_keys, refresh_tokens};
use tanhui::idempotency::{store_all, Answered};

use crate::both_backends;
use crate::helpers::{second_instance, Resp, TestApp};

both_backends!(
    idempotency_records_are_kept_for_their_retention_then_forgotten,
    refresh_tokens_nothing_can_use_are_deleted,
    instances_sweeping_at_once_do_not_fail,
);

/// Runs one retention sweep at the app's (moved) time.
async fn sweep(app: &TestApp) -> Swept {
    let (now, settings) = (app.state.clock.now_naive(), app.settings.clone());
    app.with_conn(move |conn| sweep_retention(conn, now, &settings).unwrap())
        .await
}

async fn transfer(app: &TestApp, token: &str, key: &str, body: &Value) -> Value {
    app.post_transfer(token, key, body)
        .await
        .assert_status(201)
        .clone()
}

async fn idempotency_records_are_kept_for_their_retention_then_forgotten(app: TestApp) {
    assert_eq!(app.settings.retention.idempotency_days, 7);
    let (phone, password, _, account) = app.register().await;
    let (_, bob_account) = app.new_member().await;
    app.grant(&account, 100).await;
    let body = json!({"to_account_id": bob_account, "points": 5});
    let token = app.token_of(&phone, &password).await;
    let first = transfer(&app, &token, "old", &body).await;
    assert_eq!(first["balance"], 95);

    app.clock.advance(Duration::days(7) + Duration::minutes(1));
    let token = app.token_of(&phone, &password).await;
    let fresh = transfer(&app, &token, "fresh", &body).await;
    assert_eq!(fresh["balance"], 90);
    assert_eq!(
        sweep(&app).await.idempotency_keys,
        1,
        "only the record past its retention"
    );

    // Past its retention the key is a new request: it moves points again.
    let again = transfer(&app, &token, "old", &body).await;
    assert_eq!(again["balance"], 85);
    assert_ne!(again, first);
    // The fresh one is still answered from its record, and moves nothing.
    assert_eq!(transfer(&app, &token, "fresh", &body).await, fresh);
    let wallet = app.get("/api/v1/wallet", Some(&token)).await;
    assert_eq!(wallet.assert_status(200)["balance"], 85);
}

async fn refresh(app: &TestApp, tokens: &Value) -> Resp {
    let body = json!({"refresh_token": tokens["refresh_token"]});
    app.post("/api/v1/auth/refresh", &body, None).await
}

async fn stored_refresh_tokens(app: &TestApp) -> i64 {
    app.with_conn(|conn| refresh_tokens::table.count().get_result(conn).unwrap())
        .await
}

async fn refresh_tokens_nothing_can_use_are_deleted(app: TestApp) {
    let (phone, password, _, _) = app.register().await;
    let sign_in = || async { app.login(&phone, &password).await.assert_status(200).clone() };
    let kept = sign_in().await;
    let ended = sign_in().await;
    let logout = json!({"refresh_token": ended["refresh_token"]});
    let access = ended["access_token"].as_str().unwrap();
    let r = app.post("/api/v1/auth/logout", &logout, Some(access)).await;
    assert_eq!(r.status.as_u16(), 204);
    assert_eq!(stored_refresh_tokens(&app).await, 2);

    // A revoked token stays while an access token of its session may live, then goes.
    assert_eq!(sweep(&app).await.refresh_tokens, 0);
    let access_lifetime = app.settings.auth.access_token_ttl_secs;
    app.clock.advance(Duration::seconds(access_lifetime as i64 + 1));
    assert_eq!(sweep(&app).await.refresh_tokens, 1);
    let kept = refresh(&app, &kept).await.assert_status(200).clone();
    assert_eq!(
        stored_refresh_tokens(&app).await,
        2,
        "the rotated one and its successor"
    );

    // Past their expiry, the used token and its successor go; a new session's stays and refreshes.
    let refresh_lifetime = app.settings.auth.refresh_token_ttl_secs as i64;
    app.clock.advance(Duration::seconds(refresh_lifetime + 1));
    let live = sign_in().await;
    assert_eq!(sweep(&app).await.refresh_tokens, 2);
    assert_eq!(stored_refresh_tokens(&app).await, 1);
    refresh(&app, &live).await.assert_status(200);
    refresh(&app, &kept).await.assert_problem(401, "unauthorized");
}

async fn instances_sweeping_at_once_do_not_fail(app: TestApp) {
    let other = second_instance(&app).await;
    let old = app.state.clock.now_naive();
    let rows = 3 * RETENTION_SWEEP_BATCH as usize + 7;
    let keys: Vec<String> = (0..rows).map(|i| format!("k{i}")).collect();
    app.with_conn(move |conn| {
        let answered: Vec<Answered<'_>> = keys
            .iter()
            .map(|key| Answered {
                scope: "test",
                idempotency_key: key,
                request_hash: "h",
                status: 201,
                response: "{}",
                created_at: old,
            })
            .collect();
        store_all(conn, &answered).unwrap();
    })
    .await;
    app.clock.advance(Duration::days(8));
    let (a, b, c) = tokio::join!(sweep(&app), sweep(&other), sweep(&app));
    // Each instance's own sweeper also runs once as it starts, and may read the moved clock: it can take
    // some of the rows, so the three sweeps together delete at most all of them, never one twice.
    assert!(a.idempotency_keys + b.idempotency_keys + c.idempotency_keys <= rows);
    let left: i64 = app
        .with_conn(|conn| idempotency_keys::table.count().get_result(conn).unwrap())
        .await;
    assert_eq!(left, 0);
}

/// Each batch finds its rows through an index on the age column, not by reading the whole table.
#[actix_web::test]
async fn sweeps_find_their_rows_through_an_index() {
    let Some(app) = crate::helpers::spawn(crate::helpers::Backend::Sqlite).await else {
        return;
    };
    #[derive(diesel::QueryableByName)]
    struct Step {
        #[diesel(sql_type = diesel::sql_types::Text)]
        detail: String,
    }
    for (select, index) in [
        (
            "scope, idempotency_key FROM idempotency_keys WHERE created_at < ?",
            "idempotency_keys_created",
        ),
        (
            "id FROM refresh_tokens WHERE expires_at < ?",
            "refresh_tokens_expiry",
        ),
        (
            "id FROM refresh_tokens WHERE revoked_at < ?",
            "refresh_tokens_revoked",
        ),
    ] {
        let sql = format!("EXPLAIN QUERY PLAN SELECT {select} LIMIT 500");
        let plan: Vec<Step> = app
            .with_conn(move |conn| diesel::sql_query(sql).load(conn).unwrap())
            .await;
        assert!(
            plan.iter().any(|s| s.detail.contains(index)),
            "{select}: {:?}",
            plan.iter().map(|s| &s.detail).collect::<Vec<_>>()
        );
    }
}
