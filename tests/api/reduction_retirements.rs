//! Retiring an issued batch of pooled reductions instead of selling it: by a second administrator than
//! its issuer, once, terminal (never sold afterwards, never retired once sold), audited, bad input named,
//! and `verify` seeing a retirement record that disagrees with its batch.

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{second_instance, Resp, TestApp};
use crate::reduction_batches::{audited, credited, drafted, step, window, BATCHES, MOST, UNITS};

both_backends!(
    an_issued_batch_is_retired_once_by_a_second_administrator_and_never_sold,
    a_sold_batch_is_never_retired,
);

async fn retire(app: &TestApp, admin: &str, batch: &Value, body: &Value) -> Resp {
    let id = batch["batch_id"].as_str().unwrap();
    app.post(&format!("{BATCHES}/{id}/retire"), body, Some(admin))
        .await
}

/// A batch of two whole tonnes, issued by `issuer` (verified by `checker`).
async fn issued(app: &TestApp, issuer: &str, checker: &str) -> Value {
    app.counted_type(UNITS, "units", false).await;
    let (person, _) = app.new_member().await;
    credited(app, &person, "r", 21, 100, MOST).await;
    let batch = drafted(app, issuer, &window("440300", None, 110, 90)).await;
    step(app, issuer, &batch, "submit").await.assert_status(200);
    step(app, checker, &batch, "verify").await.assert_status(200);
    let issued = step(app, issuer, &batch, "issue").await;
    assert_eq!(issued.assert_status(200)["tonnes"], 2);
    issued.body
}

fn offset() -> Value {
    json!({"beneficiary": "2026 深圳马拉松组委会", "reason": "赛事碳中和: 2 t of the event's emissions"})
}

async fn an_issued_batch_is_retired_once_by_a_second_administrator_and_never_sold(app: TestApp) {
    let (issuer, checker) = (app.admin_token().await, app.admin_token().await);
    let batch = issued(&app, &issuer, &checker).await;

    // Bad input names each field; nothing is retired.
    let bad = retire(&app, &checker, &batch, &json!({"beneficiary": " ", "reason": ""})).await;
    let mut fields = bad.error_fields();
    fields.sort();
    assert_eq!(fields, ["beneficiary", "reason"]);
    let unknown = retire(
        &app,
        &checker,
        &batch,
        &json!({"beneficiary": "x", "reason": "y", "tonnes": 1}),
    )
    .await;
    unknown.assert_problem(422, "validation_failed");
    // The issuer cannot retire what they issued.
    retire(&app, &issuer, &batch, &offset())
        .await
        .assert_problem(403, "forbidden");

    // Two administrators retire it at once, on two instances: one retires it, the other is answered
    // the same.
    let other = second_instance(&app).await;
    let other_admin = other.admin_token().await;
    let body = offset();
    let (first, second) = tokio::join!(
        retire(&app, &checker, &batch, &body),
        retire(&other, &other_admin, &batch, &body)
    );
    let retired = first.assert_status(200).clone();
    assert_eq!(second.assert_status(200)["retired_at"], retired["retired_at"]);
    assert_eq!(retired["status"], "retired");
    assert_eq!(retired["retired_for"], "2026 深圳马拉松组委会");
    assert_eq!(retired["retirement_reason"], offset()["reason"]);
    assert_eq!(retired["serial_from"], batch["serial_from"]);
    assert!(retired["retired_by"].is_string());

    // Terminal: another retirement, a sale, a settlement are refused; the batch reads as retired.
    let mut elsewhere = offset();
    elsewhere["beneficiary"] = json!("someone else");
    retire(&app, &checker, &batch, &elsewhere)
        .await
        .assert_problem(409, "invalid_state");
    let id = batch["batch_id"].as_str().unwrap();
    let sale = json!({"buyer": "深圳某环保科技有限公司", "price_fen_per_tonne": 6_000,
                      "bank_reference": "BOC-RETIRED-1"});
    app.post(&format!("{BATCHES}/{id}/sell"), &sale, Some(&issuer))
        .await
        .assert_problem(409, "invalid_state");
    step(&app, &checker, &batch, "settle")
        .await
        .assert_problem(409, "invalid_state");
    let read = app.get(&format!("{BATCHES}/{id}"), Some(&issuer)).await;
    assert_eq!(read.assert_status(200), &retired);
    let listed = app.get(&format!("{BATCHES}?status=retired"), Some(&issuer)).await;
    assert_eq!(listed.assert_status(200)["items"], json!([retired]));

    let (actions, _) = audited(&app, &issuer, &batch).await;
    assert_eq!(actions[0], "reduction_batch.retire");
    assert_eq!(
        actions.iter().filter(|a| *a == "reduction_batch.retire").count(),
        1
    );
    let report = app.verify().await;
    assert!(report.ok(), "{:?}", report.mismatches);

    // A retirement record lost behind verify's back is seen.
    app.with_conn(|conn| {
        use diesel::RunQueryDsl;
        diesel::sql_query("DELETE FROM reduction_batch_retirements")
            .execute(conn)
            .unwrap();
    })
    .await;
    let report = app.verify().await;
    assert!(
        report.mismatches.iter().any(|m| m.contains("retirement record")),
        "{:?}",
        report.mismatches
    );
}

async fn a_sold_batch_is_never_retired(app: TestApp) {
    let (issuer, checker) = (app.admin_token().await, app.admin_token().await);
    let batch = issued(&app, &issuer, &checker).await;
    let id = batch["batch_id"].as_str().unwrap();
    let sale = json!({"buyer": "深圳某环保科技有限公司", "price_fen_per_tonne": 6_000,
                      "bank_reference": "BOC-SOLD-1"});
    app.post(&format!("{BATCHES}/{id}/sell"), &sale, Some(&issuer))
        .await
        .assert_status(200);
    retire(&app, &checker, &batch, &offset())
        .await
        .assert_problem(409, "invalid_state");
    // Nor is a batch before it is issued.
    let (person, _) = app.new_member().await;
    credited(&app, &person, "d", 10, 80, MOST).await;
    let draft = drafted(&app, &issuer, &window("440300", None, 85, 70)).await;
    retire(&app, &checker, &draft, &offset())
        .await
        .assert_problem(409, "invalid_state");
    let report = app.verify().await;
    assert!(report.ok(), "{:?}", report.mismatches);
}
