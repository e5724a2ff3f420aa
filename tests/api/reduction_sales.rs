//! Selling an issued batch of pooled reductions and settling the sale: maker-checker, one bank reference
//! for one payment, the proceeds paid once to the people whose activities the batch holds (pro rata to
//! their grams, the platform's share and an erased person's share kept), under concurrent settlement on
//! two instances, and `verify` seeing a payout edited behind its back.

use serde_json::{json, Value};

use crate::both_backends_with;
use crate::helpers::{second_instance, Resp, TestApp};
use crate::reduction_batches::{audited, credited, drafted, step, window, BATCHES, MOST, UNITS};

// A tenth of each sale stays with the platform.
both_backends_with!(a_settled_sale_pays_each_person_once_pro_rata_to_their_grams => |s| {
    s.registry.platform_share_bps = 1_000;
});

const PASSWORD: &str = "correct horse battery";

async fn sell(app: &TestApp, admin: &str, batch: &Value, body: &Value) -> Resp {
    let id = batch["batch_id"].as_str().unwrap();
    app.post(&format!("{BATCHES}/{id}/sell"), body, Some(admin)).await
}

async fn cash_of(app: &TestApp, token: &str) -> i64 {
    app.get("/api/v1/cash", Some(token)).await.assert_status(200)["balance_fen"]
        .as_i64()
        .unwrap()
}

async fn a_settled_sale_pays_each_person_once_pro_rata_to_their_grams(app: TestApp) {
    app.counted_type(UNITS, "units", false).await;
    // Half a tonne, a tonne and 0.6 t: 2.1 t, of which two whole tonnes are issued.
    let (a, _) = app.new_member().await;
    let (b, _) = app.new_member().await;
    let (c, _) = app.new_member().await;
    credited(&app, &a, "a", 5, 100, MOST).await;
    credited(&app, &b, "b", 10, 100, MOST).await;
    credited(&app, &c, "c", 6, 100, MOST).await;
    let (maker, checker) = (app.admin_token().await, app.admin_token().await);
    let batch = drafted(&app, &maker, &window("440300", None, 110, 90)).await;
    step(&app, &maker, &batch, "submit").await.assert_status(200);
    step(&app, &checker, &batch, "verify").await.assert_status(200);
    let sale = json!({"buyer": "深圳某环保科技有限公司", "price_fen_per_tonne": 6_000,
                      "bank_reference": "BOC-2026-0001"});
    sell(&app, &maker, &batch, &sale)
        .await
        .assert_problem(409, "invalid_state");
    let issued = step(&app, &maker, &batch, "issue").await;
    assert_eq!(issued.assert_status(200)["tonnes"], 2);

    // Bad input names each field.
    let bad = sell(
        &app,
        &maker,
        &batch,
        &json!({"buyer": " ", "price_fen_per_tonne": 0, "bank_reference": ""}),
    )
    .await;
    let mut fields = bad.error_fields();
    fields.sort();
    assert_eq!(fields, ["bank_reference", "buyer", "price_fen_per_tonne"]);

    let sold = sell(&app, &maker, &batch, &sale).await;
    let sold = sold.assert_status(200).clone();
    assert_eq!(sold["status"], "sold");
    assert_eq!(sold["proceeds_fen"], 12_000);
    assert!(sold["settled_at"].is_null() && sold["distributed_fen"].is_null());
    // The same sale again is answered as it is; another one is refused.
    assert_eq!(sell(&app, &maker, &batch, &sale).await.assert_status(200), &sold);
    let mut cheaper = sale.clone();
    cheaper["price_fen_per_tonne"] = json!(5_000);
    sell(&app, &maker, &batch, &cheaper)
        .await
        .assert_problem(409, "invalid_state");
    // A payment is accepted once: no deposit under the sale's reference.
    let (_, account) = app.new_member().await;
    let deposit = app
        .send(
            app.client
                .post(app.url("/api/v1/admin/cash/deposits"))
                .bearer_auth(&maker)
                .header("Idempotency-Key", "sale-reference")
                .json(&json!({"account_id": account, "amount_fen": 100, "bank_reference": "BOC-2026-0001"})),
        )
        .await;
    deposit.assert_problem(409, "conflict");
    assert_eq!(cash_of(&app, &a).await, 0, "nothing is paid before settlement");

    // The seller cannot settle their own sale.
    step(&app, &maker, &batch, "settle")
        .await
        .assert_problem(403, "forbidden");

    // C leaves before the money arrives: their share stays with the platform.
    let erased = app
        .send(
            app.client
                .delete(app.url("/api/v1/me"))
                .bearer_auth(&c)
                .json(&json!({"password": PASSWORD})),
        )
        .await;
    erased.assert_status(204);

    // Two administrators confirm at once, on two instances: one settles, the other is answered the same.
    let other = second_instance(&app).await;
    let other_checker = other.admin_token().await;
    let (first, second) = tokio::join!(
        step(&app, &checker, &batch, "settle"),
        step(&other, &other_checker, &batch, "settle")
    );
    let settled = first.assert_status(200).clone();
    assert_eq!(second.assert_status(200)["settled_at"], settled["settled_at"]);
    assert_eq!(settled["status"], "settled");
    // 10 % to the platform: 1,200. 10,800 over 5 : 10 : 6 is 2,571.43, 5,142.86 and 3,085.71; the two
    // fen left go to the largest remainders (B, then C). C's 3,086 stays with the platform.
    assert_eq!(
        (&settled["distributed_fen"], &settled["platform_fen"]),
        (&json!(2_571 + 5_143), &json!(1_200 + 3_086))
    );
    assert_eq!(cash_of(&app, &a).await, 2_571);
    assert_eq!(cash_of(&app, &b).await, 5_143);
    assert_eq!(
        step(&app, &checker, &batch, "settle").await.assert_status(200),
        &settled
    );
    assert_eq!(cash_of(&app, &b).await, 5_143, "paid once");

    // Each person sees which batch paid them.
    let paid = app.get("/api/v1/me/incentives", Some(&a)).await;
    let item = &paid.assert_status(200)["items"][0];
    assert_eq!(item["batch_id"], batch["batch_id"]);
    assert_eq!(item["amount_fen"], 2_571);
    assert_eq!(item["granted_g"], 5 * MOST);
    assert_eq!(item["serial_from"], issued.body["serial_from"]);
    assert_eq!(item["buyer"], "深圳某环保科技有限公司");
    assert_eq!(paid.body["items"].as_array().unwrap().len(), 1);
    let (stranger, _) = app.new_member().await;
    let none = app.get("/api/v1/me/incentives", Some(&stranger)).await;
    assert_eq!(none.assert_status(200)["items"], json!([]));

    let (actions, _) = audited(&app, &maker, &batch).await;
    assert_eq!(&actions[..2], ["reduction_batch.settle", "reduction_batch.sell"]);
    let report = app.verify().await;
    assert!(report.ok(), "{:?}", report.mismatches);

    // A payout edited behind verify's back is seen, from the bank's side and from the sale's.
    app.with_conn(|conn| {
        use diesel::RunQueryDsl;
        diesel::sql_query("UPDATE reduction_incentives SET amount_fen = amount_fen + 1 WHERE amount_fen > 0")
            .execute(conn)
            .unwrap();
    })
    .await;
    let report = app.verify().await;
    for fragment in ["out of the bank account", "paid out"] {
        assert!(
            report.mismatches.iter().any(|m| m.contains(fragment)),
            "{fragment} in {:?}",
            report.mismatches
        );
    }
}
