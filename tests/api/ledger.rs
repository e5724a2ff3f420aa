//! Wallets, transfers between people, holds, sealing, proofs and verification.

use actix_web::http::StatusCode;
use diesel::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tanhui::db::schema::unsealed_transfers;
use tanhui::db::{self, Tx};
use tanhui::idempotency;
use tanhui::ledger::handlers::TransferRequest;
use tanhui::ledger::lots::Origin;
use tanhui::ledger::service::{self, Cause, LedgerError};
use tanhui::ledger::{merkle, seal};
use tanhui::verify;

use crate::both_backends;
use crate::helpers::{anchor, now, second_instance, Resp, TestApp};

both_backends!(
    wallets_show_issued_points,
    wallet_totals_follow_every_kind_of_transfer,
    transfers_move_points_once,
    transfer_errors_are_clear,
    sixteen_concurrent_transfers_only_two_fit,
    opposite_transfer_storms_do_not_deadlock,
    one_key_racing_on_two_instances_moves_points_once,
    a_refused_key_racing_on_two_instances_stays_refused,
    a_key_claimed_by_another_transaction_is_answered_from_it,
    holds_post_void_and_expire_once,
    post_void_and_expiry_race_on_two_instances,
    sealed_blocks_and_proofs_verify_offline,
    racing_sealers_keep_one_chain,
    verify_detects_tampering,
    reserved_ids_are_new_distinct_and_in_order,
    amounts_that_would_overflow_an_account_are_refused,
    verify_reports_sums_and_stored_balances_out_of_range,
    transfers_reach_only_people_and_businesses,
);

async fn send(app: &TestApp, token: &str, key: &str, body: &Value) -> Resp {
    app.post_transfer(token, key, body).await
}

async fn wallet(app: &TestApp, token: &str) -> Value {
    app.get("/api/v1/wallet", Some(token))
        .await
        .assert_status(200)
        .clone()
}

async fn wallets_show_issued_points(app: TestApp) {
    let (token, account) = app.new_member().await;
    let w = wallet(&app, &token).await;
    assert_eq!(
        (w["balance"].as_i64(), w["available"].as_i64(), w["held"].as_i64()),
        (Some(0), Some(0), Some(0))
    );
    app.grant(&account, 500).await;
    let w = wallet(&app, &token).await;
    assert_eq!(w["account_id"], account.as_str());
    assert_eq!(w["balance"], 500);
    assert_eq!(w["issued_total"], 500);
    assert_eq!(w["spent_total"], 0);
    let r = app.get("/api/v1/wallet/transfers", Some(&token)).await;
    let items = r.assert_status(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["kind"], "issue");
    assert_eq!(items[0]["direction"], "in");
    let admin = app.admin_token().await;
    app.get("/api/v1/wallet", Some(&admin))
        .await
        .assert_problem(403, "forbidden");
    app.get("/api/v1/wallet", None)
        .await
        .assert_problem(401, "unauthorized");
}

async fn transfers_move_points_once(app: TestApp) {
    let (alice, alice_account) = app.new_member().await;
    let (bob, bob_account) = app.new_member().await;
    app.grant(&alice_account, 500).await;
    let body = json!({"to_account_id": bob_account, "points": 120, "memo": "午饭"});
    let r = send(&app, &alice, "k-1", &body).await;
    let created = r.assert_status(201).clone();
    assert_eq!(created["balance"], 380);
    // A replay answers the same and moves nothing.
    let again = send(&app, &alice, "k-1", &body).await;
    assert_eq!(again.assert_status(201), &created);
    assert_eq!(wallet(&app, &alice).await["balance"], 380);
    assert_eq!(wallet(&app, &bob).await["balance"], 120);
    // The same key with another body is a conflict.
    let mut other = body.clone();
    other["points"] = json!(121);
    send(&app, &alice, "k-1", &other)
        .await
        .assert_problem(409, "idempotency_conflict");
    // Keys are per caller: Bob may use "k-1" too.
    send(
        &app,
        &bob,
        "k-1",
        &json!({"to_account_id": alice_account, "points": 20}),
    )
    .await
    .assert_status(201);

    let r = app.get("/api/v1/wallet/transfers?limit=1", Some(&alice)).await;
    let page = r.assert_status(200).clone();
    assert_eq!(page["items"][0]["direction"], "in");
    assert_eq!(page["items"][0]["amount"], 20);
    let next = page["next_cursor"].as_str().unwrap();
    let r = app
        .get(
            &format!("/api/v1/wallet/transfers?limit=1&cursor={next}"),
            Some(&alice),
        )
        .await;
    let older = &r.assert_status(200)["items"][0];
    assert_eq!(older["direction"], "out");
    assert_eq!(older["counterparty"], bob_account.as_str());
    assert_eq!(older["memo"], "午饭");
    let w = wallet(&app, &alice).await;
    assert_eq!(
        (w["balance"].as_i64(), w["spent_total"].as_i64()),
        (Some(400), Some(120))
    );
}

async fn transfer_errors_are_clear(app: TestApp) {
    let (alice, alice_account) = app.new_member().await;
    let (_, bob_account) = app.new_member().await;
    app.grant(&alice_account, 100).await;
    let to_bob = |points: Value| json!({"to_account_id": bob_account, "points": points});
    let r = app
        .post("/api/v1/transfers", &to_bob(json!(1)), Some(&alice))
        .await;
    r.assert_problem(400, "idempotency_key_required");
    send(&app, &alice, "a", &to_bob(json!(101)))
        .await
        .assert_problem(409, "insufficient_funds");
    send(&app, &alice, "b", &to_bob(json!(0)))
        .await
        .assert_problem(422, "validation_failed");
    send(&app, &alice, "c", &to_bob(json!(-5)))
        .await
        .assert_problem(422, "validation_failed");
    send(&app, &alice, "d", &to_bob(json!(1.5)))
        .await
        .assert_problem(422, "validation_failed");
    send(&app, &alice, "e", &to_bob(json!("10")))
        .await
        .assert_problem(422, "validation_failed");
    send(&app, &alice, "f", &to_bob(json!(1e30)))
        .await
        .assert_problem(422, "validation_failed");
    send(
        &app,
        &alice,
        "g",
        &json!({"to_account_id": alice_account, "points": 1}),
    )
    .await
    .assert_problem(422, "self_transfer");
    send(
        &app,
        &alice,
        "h",
        &json!({"to_account_id": "999999999", "points": 1}),
    )
    .await
    .assert_problem(422, "unknown_account");
    send(&app, &alice, "i", &json!({"to_account_id": "abc", "points": 1}))
        .await
        .assert_problem(422, "validation_failed");
    // The regional issuance account is not a wallet.
    let issuance = app
        .with_conn(|c| service::issuance_account(c, "440300").unwrap().id)
        .await;
    send(
        &app,
        &alice,
        "j",
        &json!({"to_account_id": issuance.to_string(), "points": 1}),
    )
    .await
    .assert_problem(422, "unknown_account");
    // Nothing moved. A refusal is its key's answer: retried once the points are there, the same request
    // is refused again, as first answered, and moves nothing; another request under the key is a
    // conflict; a new key for the right request goes through.
    assert_eq!(wallet(&app, &alice).await["balance"], 100);
    app.grant(&alice_account, 1).await;
    let retry = send(&app, &alice, "a", &to_bob(json!(101))).await;
    retry.assert_problem(409, "insufficient_funds");
    assert_eq!(retry.content_type(), "application/problem+json");
    assert_eq!(wallet(&app, &alice).await["balance"], 101);
    send(&app, &alice, "a", &to_bob(json!(100)))
        .await
        .assert_problem(409, "idempotency_conflict");
    send(&app, &alice, "a2", &to_bob(json!(101)))
        .await
        .assert_status(201);
}

async fn sixteen_concurrent_transfers_only_two_fit(app: TestApp) {
    let (alice, alice_account) = app.new_member().await;
    let (_, bob_account) = app.new_member().await;
    app.grant(&alice_account, 100).await;
    let body = json!({"to_account_id": bob_account, "points": 50});
    let keys: Vec<String> = (0..16).map(|i| format!("storm-{i}")).collect();
    let results = futures_util::future::join_all(keys.iter().map(|k| send(&app, &alice, k, &body))).await;
    let ok = results.iter().filter(|r| r.status.as_u16() == 201).count();
    let refused = results
        .iter()
        .filter(|r| r.code() == "insufficient_funds")
        .count();
    assert_eq!(
        (ok, refused),
        (2, 14),
        "{:?}",
        results.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    let w = wallet(&app, &alice).await;
    assert_eq!(
        (w["balance"].as_i64(), w["available"].as_i64()),
        (Some(0), Some(0))
    );
}

async fn opposite_transfer_storms_do_not_deadlock(app: TestApp) {
    let (alice, alice_account) = app.new_member().await;
    let (bob, bob_account) = app.new_member().await;
    app.grant(&alice_account, 1000).await;
    app.grant(&bob_account, 1000).await;
    let (ab, ba) = (
        json!({"to_account_id": bob_account, "points": 3}),
        json!({"to_account_id": alice_account, "points": 2}),
    );
    let keys: Vec<(String, String)> = (0..60).map(|i| (format!("ab-{i}"), format!("ba-{i}"))).collect();
    let mut requests = Vec::new();
    for (k1, k2) in &keys {
        requests.push(send(&app, &alice, k1, &ab));
        requests.push(send(&app, &bob, k2, &ba));
    }
    let results = futures_util::future::join_all(requests).await;
    for r in &results {
        assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    }
    assert_eq!(wallet(&app, &alice).await["balance"], 1000 - 180 + 120);
    assert_eq!(wallet(&app, &bob).await["balance"], 1000 + 180 - 120);
}

/// A refusal is its key's answer however the retries arrive: together in one group commit, on two
/// instances, or after the points have come; none of them moves a point.
async fn a_refused_key_racing_on_two_instances_stays_refused(app: TestApp) {
    let other = second_instance(&app).await;
    let (alice, alice_account) = app.new_member().await;
    let (bob, bob_account) = app.new_member().await;
    app.grant(&alice_account, 5).await;
    let short = json!({"to_account_id": bob_account, "points": 7});
    let storm = |n: usize| {
        let requests: Vec<_> = (0..n)
            .map(|i| send(if i % 2 == 0 { &app } else { &other }, &alice, "short", &short))
            .collect();
        futures_util::future::join_all(requests)
    };
    for r in storm(16).await {
        r.assert_problem(409, "insufficient_funds");
    }
    app.grant(&alice_account, 100).await;
    for r in storm(8).await {
        r.assert_problem(409, "insufficient_funds");
    }
    assert_eq!(wallet(&app, &alice).await["balance"], 105);
    assert_eq!(wallet(&app, &bob).await["balance"], 0);
}

/// Requests under one key race each other inside one instance's batches and across two instances (where
/// the loser of the race for the key retries alone): one request wins, every other gets its answer or,
/// with another body, a conflict.
async fn one_key_racing_on_two_instances_moves_points_once(app: TestApp) {
    let other = second_instance(&app).await;
    let (alice, alice_account) = app.new_member().await;
    let (_, bob_account) = app.new_member().await;
    app.grant(&alice_account, 1000).await;
    let same = json!({"to_account_id": bob_account, "points": 7});
    let different = json!({"to_account_id": bob_account, "points": 9});
    let mut requests = Vec::new();
    for i in 0..24 {
        let instance = if i % 2 == 0 { &app } else { &other };
        let body = if i % 6 == 5 { &different } else { &same };
        requests.push(send(instance, &alice, "twin", body));
    }
    let results = futures_util::future::join_all(requests).await;
    let created: Vec<&Value> = results
        .iter()
        .filter(|r| r.status.as_u16() == 201)
        .map(|r| &r.body)
        .collect();
    let conflicts = results
        .iter()
        .filter(|r| r.code() == "idempotency_conflict")
        .count();
    assert_eq!(
        created.len() + conflicts,
        24,
        "{:?}",
        results.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert!(created.iter().all(|b| *b == created[0]), "{created:?}");
    // 7 when a request with the common body won (then the 4 others conflict), 9 otherwise.
    let moved = 1000 - created[0]["balance"].as_i64().unwrap();
    assert_eq!(conflicts, if moved == 7 { 4 } else { 20 });
    assert_eq!(wallet(&app, &alice).await["balance"], 1000 - moved);
    let r = app.get("/api/v1/wallet/transfers", Some(&alice)).await;
    let outgoing = r.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["direction"] == "out")
        .count();
    assert_eq!(outgoing, 1);
}

/// Another transaction (a transfer on another instance, taking the one-by-one path) has claimed the key
/// and not yet committed when the batch writes it. On PostgreSQL the batch's insert of the key waits, then
/// fails when that transaction commits, and the transfer is retried alone, finding the stored answer; on
/// SQLite the other transaction holds the write lock and the batch reads the answer after it.
async fn a_key_claimed_by_another_transaction_is_answered_from_it(app: TestApp) {
    let (alice, alice_account) = app.new_member().await;
    let (_, bob_account) = app.new_member().await;
    app.grant(&alice_account, 100).await;
    let request = TransferRequest {
        to_account_id: bob_account.clone(),
        points: 5,
        memo: None,
    };
    let hash = idempotency::request_hash(&serde_json::to_value(&request).unwrap());
    let scope = format!("transfer:{alice_account}");
    let answer = r#"{"transfer_id":"elsewhere","balance":95}"#;
    let (claimed, is_claimed) = tokio::sync::oneshot::channel();
    let clock = app.clock.clock();
    let holder = app.with_conn(move |conn| {
        db::transaction(conn, Tx::Write, |conn| {
            idempotency::claim(conn, &clock, &scope, "contested", &hash)?;
            idempotency::complete(conn, &scope, "contested", StatusCode::CREATED, answer)?;
            claimed.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(400));
            Ok::<_, tanhui::error::ApiError>(())
        })
        .unwrap()
    });
    let transfer = async {
        is_claimed.await.unwrap();
        send(
            &app,
            &alice,
            "contested",
            &json!({"to_account_id": bob_account, "points": 5}),
        )
        .await
    };
    let ((), r) = tokio::join!(holder, transfer);
    assert_eq!(
        r.assert_status(201),
        &serde_json::from_str::<Value>(answer).unwrap()
    );
    assert_eq!(wallet(&app, &alice).await["balance"], 100);
}

fn later(secs: i64) -> chrono::NaiveDateTime {
    now() + chrono::Duration::seconds(secs)
}

async fn holds_post_void_and_expire_once(app: TestApp) {
    let (alice, alice_account) = app.new_member().await;
    let (_, shop_account) = app.new_member().await;
    app.grant(&alice_account, 300).await;
    let (a, s): (i64, i64) = (alice_account.parse().unwrap(), shop_account.parse().unwrap());
    let cause = Cause::of("test", "hold");

    let c = cause.clone();
    let hold = app
        .with_conn(move |conn| service::hold(conn, a, s, 100, later(3600), &c, now()).unwrap())
        .await;
    let w = wallet(&app, &alice).await;
    assert_eq!(
        (w["balance"].as_i64(), w["held"].as_i64(), w["available"].as_i64()),
        (Some(300), Some(100), Some(200))
    );
    // Held points cannot be spent.
    let c = cause.clone();
    let overdraw = app
        .with_conn(move |conn| service::transfer(conn, service::Kind::Transfer, a, s, 201, &c, now()))
        .await;
    assert_eq!(overdraw.unwrap_err(), LedgerError::InsufficientFunds);

    let c = cause.clone();
    let id = hold.id;
    let (first, second, void_after) = app
        .with_conn(move |conn| {
            (
                service::post(conn, id, &c, now()),
                service::post(conn, id, &c, now()),
                service::void(conn, id, &c, now()),
            )
        })
        .await;
    assert_eq!(first.unwrap().kind.as_str(), "post");
    assert_eq!(second.unwrap_err(), LedgerError::NotPending);
    assert_eq!(void_after.unwrap_err(), LedgerError::NotPending);
    let w = wallet(&app, &alice).await;
    assert_eq!((w["balance"].as_i64(), w["held"].as_i64()), (Some(200), Some(0)));

    // Void returns the points.
    let c = cause.clone();
    let voided = app
        .with_conn(move |conn| {
            let h = service::hold(conn, a, s, 50, later(3600), &c, now()).unwrap();
            service::void(conn, h.id, &c, now()).map(|t| t.kind)
        })
        .await;
    assert_eq!(voided.unwrap().as_str(), "void");
    assert_eq!(wallet(&app, &alice).await["available"], 200);

    // A hold past its timeout is expired by the sweeper, and only once; one not yet due is left alone.
    // The sweep runs an hour ahead of the clock, so the app's own background sweeper (on the real clock)
    // cannot take the hold first.
    let c = cause.clone();
    let (due, not_due) = app
        .with_conn(move |conn| {
            let due = service::hold(conn, a, s, 70, later(1800), &c, now()).unwrap();
            let not_due = service::hold(conn, a, s, 30, later(3 * 3600), &c, now()).unwrap();
            (due.id, not_due.id)
        })
        .await;
    let (expired, again, early) = app
        .with_conn(move |conn| {
            let in_an_hour = later(3600);
            let expired = service::expire_due(conn, in_an_hour, 100, &[]).unwrap();
            let again = service::expire_due(conn, in_an_hour, 100, &[]).unwrap();
            (expired, again, service::expire(conn, not_due, in_an_hour))
        })
        .await;
    assert!(expired.iter().any(|t| t.pending_id == Some(due)));
    assert!(again.is_empty());
    assert_eq!(early.unwrap_err(), LedgerError::NotPending);
    let w = wallet(&app, &alice).await;
    assert_eq!((w["balance"].as_i64(), w["held"].as_i64()), (Some(200), Some(30)));
    let unknown = app
        .with_conn(move |conn| service::post(conn, 987_654_321, &Cause::default(), now()))
        .await;
    assert_eq!(unknown.unwrap_err(), LedgerError::UnknownHold);
}

async fn post_void_and_expiry_race_on_two_instances(app: TestApp) {
    let other = second_instance(&app).await;
    let (alice, alice_account) = app.new_member().await;
    let (_, shop_account) = app.new_member().await;
    app.grant(&alice_account, 10_000).await;
    let (a, s): (i64, i64) = (alice_account.parse().unwrap(), shop_account.parse().unwrap());
    // Holds due in an hour, expired by a racer an hour ahead of the clock: the app's own background
    // sweeper, on the real clock, is no racer.
    for round in 0..10 {
        let hold = app
            .with_conn(move |conn| {
                service::hold(conn, a, s, 10, later(3600), &Cause::of("race", round), now())
                    .unwrap()
                    .id
            })
            .await;
        let (db1, db2) = (app.state.db.clone(), other.state.db.clone());
        let outcomes: Vec<bool> = std::thread::scope(|scope| {
            let racers = [
                scope
                    .spawn(|| service::post(&mut db1.get().unwrap(), hold, &Cause::default(), now()).is_ok()),
                scope
                    .spawn(|| service::void(&mut db2.get().unwrap(), hold, &Cause::default(), now()).is_ok()),
                scope.spawn(|| service::expire(&mut db1.get().unwrap(), hold, later(7200)).is_ok()),
                scope
                    .spawn(|| service::post(&mut db2.get().unwrap(), hold, &Cause::default(), now()).is_ok()),
            ];
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert_eq!(
            outcomes.iter().filter(|ok| **ok).count(),
            1,
            "round {round}: {outcomes:?}"
        );
    }
    let w = wallet(&app, &alice).await;
    assert_eq!(w["held"], 0);
    let report = app
        .with_conn(|conn| verify::verify(conn, &[0; 32], |_, _, _| {}).unwrap())
        .await;
    assert!(
        report.mismatches.iter().all(|m| m.contains("signature")),
        "{:?}",
        report.mismatches
    );
}

/// Sealers read and hash outside the write lock, so several meet on the same head: one writes its block,
/// the others find the head moved and write nothing (no fork, no transfer in two blocks, no error).
async fn racing_sealers_keep_one_chain(app: TestApp) {
    let (_, account) = app.new_member().await;
    for _ in 0..40 {
        app.grant(&account, 1).await;
    }
    let (db, key) = (app.state.db.clone(), app.state.platform_key.clone());
    let clock = app.state.clock.clone();
    let report = tokio::task::spawn_blocking(move || {
        let sealers: Vec<_> = (0..4)
            .map(|_| {
                let (db, key, clock) = (db.clone(), key.clone(), clock.clone());
                std::thread::spawn(move || {
                    let mut conn = db.get().unwrap();
                    // Blocks of three, so that the sealers keep meeting on one head.
                    while seal::seal_once(&mut conn, &key, 3, &clock).unwrap().is_some()
                        || unsealed_transfers::table
                            .count()
                            .get_result::<i64>(&mut conn)
                            .unwrap()
                            > 0
                    {}
                })
            })
            .collect();
        for sealer in sealers {
            sealer.join().expect("a sealer failed");
        }
        let mut conn = db.get().unwrap();
        verify::verify(&mut conn, &key.public_key_bytes(), |_, _, _| {}).unwrap()
    })
    .await
    .unwrap();
    assert!(report.ok(), "{:?}", report.mismatches);
    assert!(
        report.transfers >= 40,
        "only {} transfers sealed",
        report.transfers
    );
}

fn seal_now(app: &TestApp) -> impl std::future::Future<Output = ()> + '_ {
    let (key, clock) = (app.state.platform_key.clone(), app.state.clock.clone());
    app.with_conn(move |conn| while seal::seal_once(conn, &key, 10_000, &clock).unwrap().is_some() {})
}

async fn sealed_blocks_and_proofs_verify_offline(app: TestApp) {
    let (alice, alice_account) = app.new_member().await;
    let bob = app.new_member().await;
    let bob_account = bob.1.clone();
    app.grant(&alice_account, 100).await;
    let r = send(
        &app,
        &alice,
        "p-1",
        &json!({"to_account_id": bob_account, "points": 7}),
    )
    .await;
    let transfer_id = r.assert_status(201)["transfer_id"].as_str().unwrap().to_string();
    seal_now(&app).await;
    let later_transfer = send(
        &app,
        &alice,
        "p-2",
        &json!({"to_account_id": bob_account, "points": 1}),
    )
    .await;
    let unsealed_id = later_transfer.body["transfer_id"].as_str().unwrap().to_string();
    // The background sealer may have sealed it already; if not, it is not provable yet.
    let maybe = app
        .get(&format!("/api/v1/public/ledger/proof/{unsealed_id}"), None)
        .await;
    assert!(
        maybe.status.as_u16() == 200 || maybe.code() == "not_found",
        "{}",
        maybe.text
    );

    let key = app
        .get("/api/v1/public/ledger/key", None)
        .await
        .assert_status(200)
        .clone();
    assert_eq!(key["algorithm"], "Ed25519");
    let public: [u8; 32] = hex::decode(key["public_key_hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();

    // Anyone may check the leaf's inclusion; only a party to the transfer or an administrator reads it.
    let proof_for = |token: Option<String>| {
        let path = format!("/api/v1/public/ledger/proof/{transfer_id}");
        let app = &app;
        async move { app.get(&path, token.as_deref()).await.assert_status(200).clone() }
    };
    let (stranger, _) = app.new_member().await;
    for reader in [None, Some(stranger)] {
        let proof = proof_for(reader).await;
        assert!(proof["leaf_data"].is_null(), "{proof}");
        assert!(proof["leaf_hash"].is_string(), "{proof}");
    }
    let (bob, _) = bob;
    let admin = app.admin_token().await;
    let readers = [proof_for(Some(bob)).await, proof_for(Some(admin)).await];
    assert!(readers.iter().all(|p| p["leaf_data"].is_string()), "{readers:?}");
    app.get(
        &format!("/api/v1/public/ledger/proof/{transfer_id}"),
        Some("not-a-token"),
    )
    .await
    .assert_problem(401, "unauthorized");
    let proof = proof_for(Some(alice.clone())).await;
    let leaf_data = proof["leaf_data"].as_str().unwrap();
    assert!(leaf_data.contains(&transfer_id));
    let leaf = merkle::leaf_hash(leaf_data.as_bytes());
    assert_eq!(hex::encode(leaf), proof["leaf_hash"]);
    let path: Vec<merkle::Hash> = proof["audit_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| hex::decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
        .collect();
    let root: merkle::Hash = hex::decode(proof["merkle_root"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let (index, size) = (
        proof["leaf_index"].as_u64().unwrap(),
        proof["tree_size"].as_u64().unwrap(),
    );
    assert!(merkle::verify_inclusion(&leaf, index, size, &path, &root));

    let height = proof["block_height"].as_i64().unwrap();
    let block = app
        .get(&format!("/api/v1/public/ledger/blocks/{height}"), None)
        .await
        .assert_status(200)
        .clone();
    assert_eq!(block["merkle_root"], proof["merkle_root"]);
    assert_eq!(block["transfer_count"].as_u64(), Some(size));
    let header = serde_json::to_vec(&(
        "tanhui-block-v1",
        height,
        block["prev_hash"].as_str().unwrap(),
        block["merkle_root"].as_str().unwrap(),
        block["transfer_count"].as_i64().unwrap(),
        block["sealed_at_micros"].as_i64().unwrap(),
    ))
    .unwrap();
    let hash = Sha256::digest(&header);
    assert_eq!(hex::encode(hash), block["hash"]);
    let signature = hex::decode(block["signature"].as_str().unwrap()).unwrap();
    assert!(tanhui::ledger::signing::verify(&public, &hash, &signature));

    app.get("/api/v1/public/ledger/blocks/999999", None)
        .await
        .assert_problem(404, "not_found");
    app.get("/api/v1/public/ledger/proof/999999", None)
        .await
        .assert_problem(404, "not_found");
    app.get("/api/v1/public/ledger/blocks/first", None)
        .await
        .assert_problem(400, "invalid_path");
}

/// Runs `verify` and expects a mismatch saying `fragment`.
async fn assert_reported(app: &TestApp, fragment: &str) {
    let report = app.verify().await;
    assert!(
        report.mismatches.iter().any(|m| m.contains(fragment)),
        "{:?}",
        report.mismatches
    );
}

async fn exec(app: &TestApp, sql: &str) {
    let sql = sql.to_string();
    app.with_conn(move |conn| {
        use diesel::RunQueryDsl;
        diesel::sql_query(sql).execute(conn).unwrap()
    })
    .await;
}

/// The totals a wallet's read answers are kept in its row with every write that changes them: issues by
/// the ledger service and by an activity's group commit, transfers both ways, a hold posted and one voided,
/// a reversal. Each total is what the transfers give, and `verify` reports one edited behind its back.
async fn wallet_totals_follow_every_kind_of_transfer(app: TestApp) {
    let (alice, alice_account) = app.new_member().await;
    let (bob, bob_account) = app.new_member().await;
    app.grant(&alice_account, 500).await;
    let walk = json!({"client_event_id": "totals-walk", "activity_type": "walking", "evidence": "self_report",
        "occurred_at": (anchor() - chrono::Duration::minutes(30)).to_rfc3339(), "data": {"distance_m": 3000}});
    let earned = app.post_activity(&alice, &walk).await.assert_status(201)["points"]
        .as_i64()
        .unwrap();
    assert!(earned > 0);
    send(
        &app,
        &alice,
        "t-out",
        &json!({"to_account_id": bob_account, "points": 30}),
    )
    .await
    .assert_status(201);
    send(
        &app,
        &bob,
        "t-in",
        &json!({"to_account_id": alice_account, "points": 10}),
    )
    .await
    .assert_status(201);
    let (a, b): (i64, i64) = (alice_account.parse().unwrap(), bob_account.parse().unwrap());
    let at = now();
    app.with_conn(move |conn| {
        let cause = Cause::of("test", "totals");
        let captured = service::hold(conn, a, b, 50, at + chrono::Duration::hours(1), &cause, at).unwrap();
        service::post(conn, captured.id, &cause, at).unwrap();
        let voided = service::hold(conn, a, b, 20, at + chrono::Duration::hours(1), &cause, at).unwrap();
        service::void(conn, voided.id, &cause, at).unwrap();
        let issuance = service::issuance_account(conn, "440300").unwrap().id;
        service::transfer(conn, service::Kind::Reverse, a, issuance, 5, &cause, at).unwrap();
    })
    .await;
    let w = wallet(&app, &alice).await;
    let issued = 500 + earned;
    assert_eq!(w["issued_total"], issued);
    assert_eq!(w["spent_total"], 30 + 50 + 5);
    assert_eq!(w["balance"], issued + 10 - 85);
    assert_eq!(
        (w["held"].as_i64(), w["available"].clone()),
        (Some(0), w["balance"].clone())
    );
    let w = wallet(&app, &bob).await;
    assert_eq!(
        (w["issued_total"].as_i64(), w["spent_total"].as_i64()),
        (Some(0), Some(10))
    );
    assert_eq!(w["balance"], 30 + 50 - 10);
    let clean = app.verify().await;
    assert!(clean.ok(), "{:?}", clean.mismatches);

    // A total edited behind the ledger's back is reported, and the wallet's read shows nothing else.
    exec(
        &app,
        &format!("UPDATE accounts SET issued_posted = issued_posted + 1 WHERE id = {a}"),
    )
    .await;
    let report = app.verify().await;
    assert!(
        report
            .mismatches
            .iter()
            .any(|m| m.starts_with(&format!("account {a} (")) && m.contains("stored")),
        "{:?}",
        report.mismatches
    );
    exec(
        &app,
        &format!("UPDATE accounts SET issued_posted = issued_posted - 1 WHERE id = {a}"),
    )
    .await;
    assert!(app.verify().await.ok());
}

async fn verify_detects_tampering(app: TestApp) {
    let (alice, alice_account) = app.new_member().await;
    let (bob, bob_account) = app.new_member().await;
    app.grant(&alice_account, 100).await;
    for i in 0..3 {
        send(
            &app,
            &alice,
            &format!("v-{i}"),
            &json!({"to_account_id": bob_account, "points": 5}),
        )
        .await
        .assert_status(201);
    }
    send(
        &app,
        &bob,
        "v-back",
        &json!({"to_account_id": alice_account, "points": 1}),
    )
    .await
    .assert_status(201);
    seal_now(&app).await;
    let clean = app.verify().await;
    assert!(clean.ok(), "{:?}", clean.mismatches);
    assert!(clean.transfers >= 5 && clean.blocks >= 1);

    // An edited amount: the account no longer equals its transfers, and the block's root breaks.
    exec(&app, "UPDATE transfers SET amount = amount + 1 WHERE id = (SELECT MAX(id) FROM transfers WHERE kind = 'transfer')").await;
    let report = app.verify().await;
    assert!(
        report.mismatches.iter().any(|m| m.contains("stored")),
        "{:?}",
        report.mismatches
    );
    assert!(
        report.mismatches.iter().any(|m| m.contains("Merkle root")),
        "{:?}",
        report.mismatches
    );
    exec(&app, "UPDATE transfers SET amount = amount - 1 WHERE id = (SELECT MAX(id) FROM transfers WHERE kind = 'transfer')").await;
    assert!(app.verify().await.ok());

    // The flags the service decides by: a wallet's floor lifted (it could then overdraw), and an issuance
    // account given a balance in its row (which a derived account's readers would add).
    let floor = |on: bool| format!("UPDATE accounts SET floored = {on} WHERE id = {alice_account}");
    exec(&app, &floor(false)).await;
    assert_reported(&app, "must be floored=true").await;
    exec(&app, &floor(true)).await;
    let issuance_row = |credits: i64| {
        format!("UPDATE accounts SET credits_posted = {credits} WHERE id = (SELECT MIN(id) FROM accounts WHERE kind = 'issuance')")
    };
    exec(&app, &issuance_row(1000)).await;
    assert_reported(&app, "is derived but its row holds").await;
    exec(&app, &issuance_row(0)).await;
    assert!(app.verify().await.ok());

    // Renumbered leaves that keep their order: the root still matches, but a proof would point past the tree.
    let renumber = |by: i64| {
        format!("UPDATE block_transfers SET leaf_index = leaf_index + {by} WHERE block_height = 1 AND leaf_index = (SELECT MAX(leaf_index) FROM block_transfers WHERE block_height = 1)")
    };
    exec(&app, &renumber(100)).await;
    assert_reported(&app, "is recorded at leaf").await;
    exec(&app, &renumber(-100)).await;
    assert!(app.verify().await.ok());

    // An edited block header.
    exec(
        &app,
        "UPDATE ledger_blocks SET transfer_count = transfer_count + 1 WHERE height = 1",
    )
    .await;
    let report = app.verify().await;
    assert!(
        report.mismatches.iter().any(|m| m.contains("block 1: hash")),
        "{:?}",
        report.mismatches
    );
    exec(
        &app,
        "UPDATE ledger_blocks SET transfer_count = transfer_count - 1 WHERE height = 1",
    )
    .await;
    exec(&app, "UPDATE ledger_blocks SET signature = '00' WHERE height = 1").await;
    assert_reported(&app, "signature").await;

    // A deleted transfer.
    exec(
        &app,
        "DELETE FROM transfers WHERE id = (SELECT MIN(id) FROM transfers WHERE kind = 'transfer')",
    )
    .await;
    let report = app.verify().await;
    assert!(
        report.mismatches.iter().any(|m| m.contains("is missing")),
        "{:?}",
        report.mismatches
    );
    assert!(
        report.mismatches.iter().any(|m| m.contains("stored")),
        "{:?}",
        report.mismatches
    );
}

/// Ids are reserved at most 32 per statement on PostgreSQL: a reservation of more spans statements and
/// must still be one ascending run of new ids.
async fn reserved_ids_are_new_distinct_and_in_order(app: TestApp) {
    use diesel::dsl::max;
    use tanhui::db::schema::{activities, transfers};
    use tanhui::db::{reserve_ids, Ids};
    let (first, second, used) = app
        .with_conn(|conn| {
            let used: Option<i64> = transfers::table.select(max(transfers::id)).first(conn).unwrap();
            let first = reserve_ids(conn, Ids::Transfers, 70).unwrap();
            let second = reserve_ids(conn, Ids::Activities, 33).unwrap();
            let none: Option<i64> = activities::table.select(max(activities::id)).first(conn).unwrap();
            assert_eq!(none, None, "a new app has no activities");
            (first, second, used.unwrap_or(0))
        })
        .await;
    for (ids, n, above) in [(&first, 70, used), (&second, 33, 0)] {
        assert_eq!(ids.len(), n);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(ids[0] > above, "{ids:?} after {above}");
    }
    assert!(app
        .with_conn(|conn| reserve_ids(conn, Ids::Transfers, 0).unwrap())
        .await
        .is_empty());
}

/// Issues points straight through the ledger service, in `region`.
async fn issue(app: &TestApp, region: &'static str, account: &str, points: i64) -> Result<(), LedgerError> {
    let account: i64 = account.parse().unwrap();
    let now = app.state.clock.now_naive();
    app.with_conn(move |conn| {
        let origin = Origin::plain(region, now + chrono::Duration::days(3650));
        service::issue(conn, &origin, account, points, &Cause::of("test", "issue"), now).map(|_| ())
    })
    .await
}

/// Every total of an account stays within BIGINT: what would take one beyond is refused, and refused
/// whole (on SQLite the sum used to be stored as a float, on PostgreSQL the statement failed with a 500).
async fn amounts_that_would_overflow_an_account_are_refused(app: TestApp) {
    let (alice, alice_account) = app.new_member().await;
    let (bob, bob_account) = app.new_member().await;
    let (_, carol_account) = app.new_member().await;
    let near_full = i64::MAX - 5;
    issue(&app, "440300", &alice_account, near_full).await.unwrap();
    // Bob's and Carol's points come from another region, so no issuance account sums past the range.
    issue(&app, "110000", &bob_account, 10).await.unwrap();
    issue(&app, "110000", &carol_account, 10).await.unwrap();
    assert_eq!(
        issue(&app, "440300", &alice_account, 6).await,
        Err(LedgerError::OutOfRange)
    );
    send(
        &app,
        &bob,
        "over",
        &json!({"to_account_id": alice_account, "points": 6}),
    )
    .await
    .assert_problem(422, "amount_out_of_range");
    send(
        &app,
        &alice,
        "max",
        &json!({"to_account_id": bob_account, "points": i64::MAX}),
    )
    .await
    .assert_problem(409, "insufficient_funds");
    // Pending totals are bounded too: Bob is owed almost everything, so Carol's hold cannot add to it.
    let (alice_id, bob_id, carol_id): (i64, i64, i64) = (
        alice_account.parse().unwrap(),
        bob_account.parse().unwrap(),
        carol_account.parse().unwrap(),
    );
    let (now, later) = (now(), now() + chrono::Duration::hours(1));
    let holds = app
        .with_conn(move |conn| {
            let cause = Cause::of("test", "hold");
            let first = service::hold(conn, alice_id, bob_id, near_full, later, &cause, now).map(|_| ());
            let second = service::hold(conn, carol_id, bob_id, 6, later, &cause, now).map(|_| ());
            (first, second)
        })
        .await;
    assert_eq!(holds, (Ok(()), Err(LedgerError::OutOfRange)));
    // Nothing refused changed anything, and every wallet still answers.
    let w = wallet(&app, &alice).await;
    assert_eq!(
        (
            w["balance"].as_i64(),
            w["held"].as_i64(),
            w["issued_total"].as_i64()
        ),
        (Some(near_full), Some(near_full), Some(near_full))
    );
    let w = wallet(&app, &bob).await;
    assert_eq!((w["balance"].as_i64(), w["held"].as_i64()), (Some(10), Some(0)));
    let report = app.verify().await;
    assert!(report.ok(), "{:?}", report.mismatches);
}

/// `verify` reports totals beyond BIGINT, and on SQLite a balance stored as a float, instead of failing.
async fn verify_reports_sums_and_stored_balances_out_of_range(app: TestApp) {
    let (_, alice_account) = app.new_member().await;
    let (_, bob_account) = app.new_member().await;
    // Each wallet fits, but the region's issuance account is the sum of both issues.
    issue(&app, "440300", &alice_account, i64::MAX - 5).await.unwrap();
    issue(&app, "440300", &bob_account, i64::MAX - 5).await.unwrap();
    let issuance = app
        .with_conn(|c| service::issuance_account(c, "440300").unwrap().id)
        .await;
    let report = app.verify().await;
    let beyond = format!("account {issuance}: its transfers sum to");
    assert!(
        report.mismatches.iter().any(|m| m.starts_with(&beyond)),
        "{:?}",
        report.mismatches
    );
    let alice: i64 = alice_account.parse().unwrap();
    let sqlite = app
        .with_conn(move |conn| {
            let sqlite = matches!(conn, db::AnyConnection::Sqlite(_));
            if sqlite {
                // What an unguarded addition did: SQLite stores the overflowing sum as a float.
                diesel::sql_query("UPDATE accounts SET credits_posted = credits_posted + 100 WHERE id = ?")
                    .bind::<diesel::sql_types::BigInt, _>(alice)
                    .execute(conn)
                    .unwrap();
            }
            sqlite
        })
        .await;
    if sqlite {
        let report = app.verify().await;
        let float = format!("account {alice} holds a balance that is not an integer");
        assert!(
            report.mismatches.iter().any(|m| m.starts_with(&float)),
            "{:?}",
            report.mismatches
        );
    }
}

/// Points go from person to person (or business): an administrator's wallet, like an issuance or
/// settlement account, cannot receive them, since nobody could spend them there.
async fn transfers_reach_only_people_and_businesses(app: TestApp) {
    let (alice, alice_account) = app.new_member().await;
    app.grant(&alice_account, 100).await;
    let admin = app.admin_token().await;
    let admin_account = app.get("/api/v1/me", Some(&admin)).await.assert_status(200)["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    send(
        &app,
        &alice,
        "to-admin",
        &json!({"to_account_id": admin_account, "points": 10}),
    )
    .await
    .assert_problem(422, "unknown_account");
    assert_eq!(wallet(&app, &alice).await["balance"], 100);
    let admin_id: i64 = admin_account.parse().unwrap();
    let admin_balance = app
        .with_conn(move |c| {
            tanhui::ledger::store::account(c, admin_id)
                .unwrap()
                .unwrap()
                .balance()
        })
        .await;
    assert_eq!(admin_balance, 0);

    let phone = crate::helpers::random_phone();
    let r = app
        .post(
            "/api/v1/auth/register",
            &json!({"phone": phone, "password": "correct horse battery", "display_name": "绿色商店",
                    "account_type": "business", "region_code": "440300",
                    "credit_code": "91350100M000100Y43"}),
            None,
        )
        .await;
    let business_account = r.assert_status(201)["account_id"].as_str().unwrap().to_string();
    let business = app.token_of(&phone, "correct horse battery").await;
    send(
        &app,
        &alice,
        "to-business",
        &json!({"to_account_id": business_account, "points": 10}),
    )
    .await
    .assert_status(201);
    assert_eq!(wallet(&app, &alice).await["balance"], 90);
    assert_eq!(wallet(&app, &business).await["balance"], 10);
}
