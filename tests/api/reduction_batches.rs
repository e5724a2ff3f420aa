//! Pooled reductions: which activities a draft takes, one batch per activity under concurrency, the
//! lifecycle and its refusals, serials and tonnes, the evidence CSV against the ledger's blocks.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, FixedOffset, Utc};
use futures_util::TryStreamExt;
use serde_json::{json, Value};

use crate::helpers::{anchor, second_instance, Resp, TestApp};
use crate::{both_backends, both_backends_with};

both_backends!(
    a_draft_takes_the_free_credited_activities_of_its_subtree_window_and_types,
    overlapping_drafts_on_two_instances_never_share_an_activity,
    a_batch_moves_draft_submitted_verified_issued_in_order,
    concurrent_issues_number_serials_without_gaps,
    a_sum_beyond_64_bits_is_refused,
);
// The background sealer waits an hour, so the test decides what is sealed.
both_backends_with!(evidence_lines_match_the_activities_and_their_blocks => |s| {
    s.ledger.seal_interval_ms = 3_600_000;
});

pub const BATCHES: &str = "/api/v1/admin/reduction-batches";
/// An administrator's type without a daily cap: `units` grams an event (at most 100,000 before review).
pub const UNITS: &str = "household.units";
/// The most grams one event is credited without review: ten of them make a tonne.
pub const MOST: i64 = 100_000;

/// `minutes_ago` before [`anchor`].
pub fn ago(minutes: i64) -> DateTime<Utc> {
    anchor() - Duration::minutes(minutes)
}

pub fn units(id: &str, minutes_ago: i64, grams: i64, region: &str) -> Value {
    json!({"client_event_id": id, "activity_type": UNITS, "occurred_at": ago(minutes_ago).to_rfc3339(),
           "region_code": region, "evidence": "trace", "data": {"units": grams}})
}

/// Posts `events` in one batch; answers each result, asserting its status.
pub async fn post_all(app: &TestApp, token: &str, events: Vec<Value>, status: &str) -> Vec<Value> {
    let r = app
        .post(
            "/api/v1/activities/batch",
            &json!({"events": events}),
            Some(token),
        )
        .await;
    let results = r.assert_status(200)["results"].as_array().unwrap().clone();
    for result in &results {
        assert_eq!(result["status"], status, "{}", r.text);
    }
    results
}

/// `n` events of `grams` each, `minutes_ago` (each a second apart), credited; answers their ids.
pub async fn credited(
    app: &TestApp,
    token: &str,
    tag: &str,
    n: usize,
    minutes_ago: i64,
    grams: i64,
) -> Vec<String> {
    let events = (0..n)
        .map(|i| {
            let mut event = units(&format!("{tag}-{i}"), minutes_ago, grams, "440300");
            let at = ago(minutes_ago) + Duration::seconds(i as i64);
            event["occurred_at"] = json!(at.to_rfc3339());
            event
        })
        .collect();
    post_all(app, token, events, "credited")
        .await
        .iter()
        .map(|r| r["activity_id"].as_str().unwrap().to_string())
        .collect()
}

/// A draft's body over [`ago(from)`, `ago(to)`).
pub fn window(region: &str, types: Option<&[&str]>, from_minutes_ago: i64, to_minutes_ago: i64) -> Value {
    let mut body = json!({"region_code": region, "from": ago(from_minutes_ago).to_rfc3339(),
                          "to": ago(to_minutes_ago).to_rfc3339()});
    if let Some(types) = types {
        body["activity_types"] = json!(types);
    }
    body
}

pub async fn draft(app: &TestApp, admin: &str, body: &Value) -> Resp {
    app.post(BATCHES, body, Some(admin)).await
}

/// Drafts and answers the new batch.
pub async fn drafted(app: &TestApp, admin: &str, body: &Value) -> Value {
    let r = draft(app, admin, body).await;
    let batch = r.assert_status(201).clone();
    assert_eq!(batch["status"], "draft", "{}", r.text);
    batch
}

pub async fn step(app: &TestApp, admin: &str, batch: &Value, step: &str) -> Resp {
    let id = batch["batch_id"].as_str().unwrap();
    app.post(&format!("{BATCHES}/{id}/{step}"), &json!({}), Some(admin))
        .await
}

/// The audit log's actions on `batch`, newest first, and the log's answer.
pub async fn audited(app: &TestApp, admin: &str, batch: &Value) -> (Vec<String>, Resp) {
    let id = batch["batch_id"].as_str().unwrap();
    let audit = app
        .get(
            &format!("/api/v1/admin/audit?entity=reduction_batch&entity_id={id}"),
            Some(admin),
        )
        .await;
    let actions = audit.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    (actions, audit)
}

/// The evidence CSV of a batch: its lines after the header, as fields.
async fn evidence(app: &TestApp, admin: &str, batch: &Value) -> Vec<Vec<String>> {
    let id = batch["batch_id"].as_str().unwrap();
    let r = app.get(&format!("{BATCHES}/{id}/evidence"), Some(admin)).await;
    r.assert_status(200);
    assert_eq!(r.content_type(), "text/csv; charset=utf-8");
    csv_lines(&r.text)
}

fn csv_lines(text: &str) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, tanhui::reductions::evidence::HEADER.map(String::from));
    reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect()
}

/// The activity ids of evidence lines.
fn ids_of(lines: &[Vec<String>]) -> Vec<String> {
    lines.iter().map(|l| l[0].clone()).collect()
}

fn set(ids: &[String]) -> BTreeSet<String> {
    ids.iter().cloned().collect()
}

async fn a_draft_takes_the_free_credited_activities_of_its_subtree_window_and_types(app: TestApp) {
    app.counted_type(UNITS, "units", false).await;
    let (token, _) = app.new_member().await;
    let posted = post_all(
        &app,
        &token,
        vec![
            units("shenzhen", 30, 1_000, "440300"),
            units("guangzhou", 40, 2_000, "440100"),
            units("wuhan", 50, 4_000, "420100"),
            units("days-ago", 3 * 24 * 60, 8_000, "440300"),
        ],
        "credited",
    )
    .await;
    let id = |i: usize| posted[i]["activity_id"].as_str().unwrap().to_string();
    let walked = app
        .post_activity(
            &token,
            &json!({"client_event_id": "walk", "activity_type": "walking",
                    "occurred_at": ago(20).to_rfc3339(), "evidence": "trace", "data": {"distance_m": 3000}}),
        )
        .await;
    let walked = walked.assert_status(201).clone();
    assert_eq!(walked["status"], "credited");
    // Above the review bound: held (flagged), one of them then rejected. Neither issued points.
    let held = post_all(
        &app,
        &token,
        vec![
            units("held", 25, MOST + 1, "440300"),
            units("refused", 26, MOST + 1, "440300"),
        ],
        "flagged",
    )
    .await;
    let national = app.admin_token().await;
    app.review(&national, &held[1]["activity_id"], "reject", "no meter")
        .await
        .assert_status(200);

    // Guangdong's administrator pools Guangdong's units of the last three hours.
    let (_, guangdong) = app.administrator("440000").await;
    let body = window("440000", Some(&[UNITS]), 180, -10);
    let keyed = |key: &str| {
        app.client
            .post(app.url(BATCHES))
            .bearer_auth(&guangdong)
            .header("Idempotency-Key", key)
            .json(&body)
    };
    let r = app.send(keyed("pool-1")).await;
    let batch = r.assert_status(201).clone();
    assert_eq!(batch["status"], "draft");
    assert_eq!(batch["region_code"], "440000");
    assert_eq!(batch["activity_types"], json!([UNITS]));
    assert_eq!(
        (&batch["activities"], &batch["reduction_g"]),
        (&json!(2), &json!(3_000))
    );
    assert!(batch["tonnes"].is_null() && batch["serial_from"].is_null());
    let lines = evidence(&app, &guangdong, &batch).await;
    assert_eq!(ids_of(&lines), [id(0), id(1)]);
    // A retry under its key is the same draft; without one, nothing is left to take.
    let again = app.send(keyed("pool-1")).await;
    assert_eq!(again.assert_status(201)["batch_id"], batch["batch_id"]);
    draft(&app, &guangdong, &body)
        .await
        .assert_problem(422, "empty_batch");

    // The nation's administrator, every type: what Guangdong's batch left in the window.
    let everywhere = drafted(&app, &national, &window("CN", None, 180, -10)).await;
    let lines = evidence(&app, &national, &everywhere).await;
    let walked_id = walked["activity_id"].as_str().unwrap().to_string();
    assert_eq!(set(&ids_of(&lines)), set(&[id(2), walked_id]));
    assert_eq!(everywhere["activity_types"], Value::Null);

    // Scope: Guangdong neither reads nor lists nor drafts Hubei's.
    let national_id = everywhere["batch_id"].as_str().unwrap();
    app.get(&format!("{BATCHES}/{national_id}"), Some(&guangdong))
        .await
        .assert_problem(403, "out_of_scope");
    app.get(&format!("{BATCHES}/{national_id}/evidence"), Some(&guangdong))
        .await
        .assert_problem(403, "out_of_scope");
    draft(&app, &guangdong, &window("420000", None, 180, -10))
        .await
        .assert_problem(403, "out_of_scope");
    let listed = app.get(BATCHES, Some(&guangdong)).await;
    let listed: Vec<&Value> = listed.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| &b["batch_id"])
        .collect();
    assert_eq!(listed, [&batch["batch_id"]]);
    let all = app
        .get(&format!("{BATCHES}?status=draft&limit=1"), Some(&national))
        .await;
    let all = all.assert_status(200).clone();
    assert_eq!(all["items"][0]["batch_id"], everywhere["batch_id"]);
    let next = all["next_cursor"].as_str().unwrap();
    let rest = app
        .get(
            &format!("{BATCHES}?status=draft&limit=1&cursor={next}"),
            Some(&national),
        )
        .await;
    assert_eq!(rest.assert_status(200)["items"][0]["batch_id"], batch["batch_id"]);
    app.get(&format!("{BATCHES}?status=spent"), Some(&national))
        .await
        .assert_problem(422, "validation_failed");
    app.get(BATCHES, Some(&token))
        .await
        .assert_problem(403, "forbidden");

    // Refusals name what is wrong.
    let refused = [
        (window("999999", None, 180, 0), "unknown_region"),
        (
            window("440000", Some(&["no.such.type"]), 180, 0),
            "unknown_activity_type",
        ),
        (window("440000", Some(&[]), 180, 0), "validation_failed"),
        (window("440000", Some(&[UNITS; 65]), 180, 0), "validation_failed"),
        (window("440000", None, 0, 180), "validation_failed"),
        (window("440000", None, 367 * 24 * 60, 0), "validation_failed"),
    ];
    for (body, code) in refused {
        draft(&app, &national, &body).await.assert_problem(422, code);
    }
    draft(&app, &token, &window("440000", None, 180, 0))
        .await
        .assert_problem(403, "forbidden");

    // Deleting a draft frees its activities; approving the held one makes it credited, and free.
    let batch_path = format!("{BATCHES}/{}", batch["batch_id"].as_str().unwrap());
    let deleted = app
        .send(app.client.delete(app.url(&batch_path)).bearer_auth(&guangdong))
        .await;
    assert_eq!(deleted.status.as_u16(), 204, "{}", deleted.text);
    app.get(&batch_path, Some(&guangdong))
        .await
        .assert_problem(404, "not_found");
    app.review(&national, &held[0]["activity_id"], "approve", "metered")
        .await
        .assert_status(200);
    let redrafted = drafted(&app, &guangdong, &body).await;
    let lines = evidence(&app, &guangdong, &redrafted).await;
    let approved = held[0]["activity_id"].as_str().unwrap().to_string();
    assert_eq!(ids_of(&lines), [id(0), id(1), approved]);
    assert_eq!(redrafted["reduction_g"], json!(3_000 + MOST + 1));
}

async fn overlapping_drafts_on_two_instances_never_share_an_activity(app: TestApp) {
    app.counted_type(UNITS, "units", false).await;
    let (token, _) = app.new_member().await;
    let mut posted = credited(&app, &token, "early", 30, 90, 1_000).await;
    posted.extend(credited(&app, &token, "late", 30, 30, 1_000).await);
    let other = second_instance(&app).await;
    let (first, second) = (app.admin_token().await, other.admin_token().await);
    // Four drafts at once, two per instance: two over the whole window, two over overlapping halves.
    let whole = window("440300", None, 120, 0);
    let (early, late) = (
        window("CN", None, 120, 60),
        window("440000", Some(&[UNITS]), 100, 0),
    );
    let (a, b, c, d) = tokio::join!(
        draft(&app, &first, &whole),
        draft(&other, &second, &whole),
        draft(&app, &first, &early),
        draft(&other, &second, &late),
    );
    let mut union = BTreeSet::new();
    let mut taken = 0;
    for r in [a, b, c, d] {
        if r.status.as_u16() == 422 {
            r.assert_problem(422, "empty_batch");
            continue;
        }
        let batch = r.assert_status(201).clone();
        let ids = ids_of(&evidence(&app, &first, &batch).await);
        assert_eq!(batch["activities"], json!(ids.len()));
        taken += ids.len();
        for id in ids {
            assert!(union.insert(id.clone()), "activity {id} is in two batches");
        }
    }
    assert_eq!(taken, 60);
    assert_eq!(union, set(&posted));
}

async fn a_batch_moves_draft_submitted_verified_issued_in_order(app: TestApp) {
    app.counted_type(UNITS, "units", false).await;
    let (token, _) = app.new_member().await;
    credited(&app, &token, "first", 25, 100, MOST).await;
    let (maker, checker) = (app.admin_token().await, app.admin_token().await);
    let (_, hubei) = app.administrator("420000").await;
    let batch = drafted(&app, &maker, &window("440300", None, 110, 90)).await;
    assert_eq!(batch["reduction_g"], json!(25 * MOST));

    // Out of order.
    step(&app, &checker, &batch, "verify")
        .await
        .assert_problem(409, "invalid_state");
    step(&app, &checker, &batch, "issue")
        .await
        .assert_problem(409, "invalid_state");
    step(&app, &hubei, &batch, "submit")
        .await
        .assert_problem(403, "out_of_scope");

    let submitted = step(&app, &maker, &batch, "submit").await;
    let submitted = submitted.assert_status(200).clone();
    assert_eq!(submitted["status"], "submitted");
    assert_eq!(
        step(&app, &maker, &batch, "submit").await.assert_status(200),
        &submitted
    );
    step(&app, &maker, &batch, "verify")
        .await
        .assert_problem(403, "forbidden");
    step(&app, &hubei, &batch, "verify")
        .await
        .assert_problem(403, "out_of_scope");
    let verified = step(&app, &checker, &batch, "verify").await;
    let verified = verified.assert_status(200).clone();
    assert_eq!(verified["status"], "verified");
    assert_eq!(
        step(&app, &checker, &batch, "verify").await.assert_status(200),
        &verified
    );
    step(&app, &maker, &batch, "submit")
        .await
        .assert_problem(409, "invalid_state");
    let path = format!("{BATCHES}/{}", batch["batch_id"].as_str().unwrap());
    let r = app
        .send(app.client.delete(app.url(&path)).bearer_auth(&maker))
        .await;
    r.assert_problem(409, "invalid_state");

    // 2.5 t: two whole tonnes, serials 1 and 2 of Shenzhen's year; the half tonne is never issued.
    let issued = step(&app, &maker, &batch, "issue").await;
    let issued = issued.assert_status(200).clone();
    let year = app
        .state
        .clock
        .now()
        .with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
        .year();
    assert_eq!(issued["status"], "issued");
    assert_eq!(
        (&issued["tonnes"], &issued["remainder_g"]),
        (&json!(2), &json!(500_000))
    );
    assert_eq!(issued["serial_from"], format!("CN-440300-{year}-000001"));
    assert_eq!(issued["serial_to"], format!("CN-440300-{year}-000002"));
    assert_eq!(
        step(&app, &checker, &batch, "issue").await.assert_status(200),
        &issued
    );
    assert_eq!(app.get(&path, Some(&checker)).await.assert_status(200), &issued);
    step(&app, &checker, &batch, "verify")
        .await
        .assert_problem(409, "invalid_state");

    // The next batch of the region continues the numbers.
    credited(&app, &token, "second", 10, 80, MOST).await;
    let next = drafted(&app, &checker, &window("440300", None, 85, 75)).await;
    step(&app, &checker, &next, "submit").await.assert_status(200);
    step(&app, &maker, &next, "verify").await.assert_status(200);
    let next = step(&app, &checker, &next, "issue").await;
    let next = next.assert_status(200).clone();
    assert_eq!((&next["tonnes"], &next["remainder_g"]), (&json!(1), &json!(0)));
    assert_eq!(next["serial_from"], format!("CN-440300-{year}-000003"));
    assert_eq!(next["serial_to"], next["serial_from"]);

    // Under a tonne: refused at submission, while the draft can still be deleted.
    credited(&app, &token, "small", 1, 70, MOST).await;
    let small = drafted(&app, &maker, &window("440300", None, 72, 68)).await;
    step(&app, &maker, &small, "submit")
        .await
        .assert_problem(422, "below_one_tonne");
    let path = format!("{BATCHES}/{}", small["batch_id"].as_str().unwrap());
    let r = app
        .send(app.client.delete(app.url(&path)).bearer_auth(&checker))
        .await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);

    // Every step is in the audit log, with the state it left.
    let (actions, audit) = audited(&app, &maker, &batch).await;
    assert_eq!(
        actions,
        [
            "reduction_batch.issue",
            "reduction_batch.verify",
            "reduction_batch.submit",
            "reduction_batch.draft"
        ]
    );
    assert_eq!(audit.body["items"][0]["after"]["serial_to"], issued["serial_to"]);
}

async fn concurrent_issues_number_serials_without_gaps(app: TestApp) {
    app.counted_type(UNITS, "units", false).await;
    let (token, _) = app.new_member().await;
    let other = second_instance(&app).await;
    let (maker, checker) = (app.admin_token().await, other.admin_token().await);
    // Four verified batches of 1, 2, 3 and 4 tonnes, ten minutes of activities apart.
    let mut batches = Vec::new();
    for k in 0..4 {
        let minutes_ago = 100 - 10 * k;
        credited(
            &app,
            &token,
            &format!("b{k}"),
            10 * (k as usize + 1),
            minutes_ago,
            MOST,
        )
        .await;
        let batch = drafted(
            &app,
            &maker,
            &window("440300", None, minutes_ago + 1, minutes_ago - 5),
        )
        .await;
        step(&app, &maker, &batch, "submit").await.assert_status(200);
        step(&other, &checker, &batch, "verify").await.assert_status(200);
        batches.push(batch);
    }
    let issues = batches.iter().enumerate().map(|(k, batch)| {
        let (instance, admin) = if k % 2 == 0 {
            (&app, &maker)
        } else {
            (&other, &checker)
        };
        step(instance, admin, batch, "issue")
    });
    let mut numbers = Vec::new();
    for r in futures_util::future::join_all(issues).await {
        let issued = r.assert_status(200).clone();
        let serial = |field: &str| -> i64 {
            issued[field]
                .as_str()
                .unwrap()
                .rsplit('-')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let (first, last) = (serial("serial_from"), serial("serial_to"));
        assert_eq!(last - first + 1, issued["tonnes"].as_i64().unwrap());
        numbers.extend(first..=last);
    }
    numbers.sort();
    assert_eq!(numbers, (1..=10).collect::<Vec<i64>>());
}

/// Five approved activities, each granted the day's "no cap" ceiling (2⁶¹ − 1 g): their sum passes the
/// 64-bit range, and the draft is refused whole (nothing is stored), not wrapped. (Five people in five
/// regions, so that no other total sums two of them.)
async fn a_sum_beyond_64_bits_is_refused(app: TestApp) {
    app.counted_type(UNITS, "units", false).await;
    let admin = app.admin_token().await;
    for region in ["440300", "440100", "420100", "110000", "310000"] {
        let (token, _) = app.new_member().await;
        let held = post_all(&app, &token, vec![units(region, 30, i64::MAX, region)], "flagged").await;
        let approved = app
            .review(&admin, &held[0]["activity_id"], "approve", "metered")
            .await;
        assert_eq!(approved.assert_status(200)["granted_g"], json!(i64::MAX / 4));
    }
    draft(&app, &admin, &window("CN", None, 60, 0))
        .await
        .assert_problem(422, "amount_out_of_range");
    let listed = app.get(BATCHES, Some(&admin)).await;
    assert_eq!(listed.assert_status(200)["items"], json!([]));
    // A province's two of them fit.
    let fits = drafted(&app, &admin, &window("440000", None, 60, 0)).await;
    assert_eq!(fits["reduction_g"], json!(i64::MAX / 4 * 2));
}

async fn evidence_lines_match_the_activities_and_their_blocks(app: TestApp) {
    app.counted_type(UNITS, "units", false).await;
    let (alice, alice_account) = app.new_member().await;
    let (bob, bob_account) = app.new_member().await;
    let mut answers = post_all(
        &app,
        &alice,
        vec![units("a1", 50, 1_500, "440300"), units("a2", 40, 2_500, "440300")],
        "credited",
    )
    .await;
    answers.extend(post_all(&app, &bob, vec![units("b1", 45, 700, "440300")], "credited").await);
    let (key, clock) = (app.state.platform_key.clone(), app.state.clock.clone());
    app.with_conn(move |conn| {
        while tanhui::ledger::seal::seal_once(conn, &key, 10_000, &clock)
            .unwrap()
            .is_some()
        {}
    })
    .await;
    // Posted after sealing: not in a block yet.
    answers.extend(post_all(&app, &bob, vec![units("b2", 35, 300, "440300")], "credited").await);
    let owners = [&alice_account, &alice_account, &bob_account, &bob_account];

    let admin = app.admin_token().await;
    let batch = drafted(&app, &admin, &window("440300", None, 60, 0)).await;
    let lines = evidence(&app, &admin, &batch).await;
    assert_eq!(lines.len(), 4);
    for ((line, answer), owner) in lines.iter().zip(&answers).zip(owners) {
        let id = answer["activity_id"].as_str().unwrap();
        let stored = app.get(&format!("/api/v1/activities/{id}"), Some(&admin)).await;
        let stored = stored.assert_status(200).clone();
        let account: i64 = owner.parse().unwrap();
        assert_eq!(line[0], id);
        assert_eq!(line[1], app.state.secrets.account_pseudonym(account));
        assert!(line[1].len() == 64 && line[1].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(line[2], UNITS);
        let occurred = DateTime::parse_from_rfc3339(&line[3]).unwrap();
        let posted = DateTime::parse_from_rfc3339(stored["occurred_at"].as_str().unwrap()).unwrap();
        assert_eq!(occurred, posted);
        assert_eq!(line[4], stored["methodology"]["id"].as_str().unwrap());
        assert_eq!(line[5], stored["methodology"]["version"].to_string());
        assert_eq!(line[6], stored["reduction_g"].to_string());
        assert_eq!(line[7], stored["granted_g"].to_string());
        // The block the ledger's public proof names for the activity's issue transfer.
        let transfer = stored["transfer_id"].as_str().unwrap();
        let proof = app
            .get(&format!("/api/v1/public/ledger/proof/{transfer}"), None)
            .await;
        if id == answers[3]["activity_id"] {
            proof.assert_problem(404, "not_found");
            assert_eq!(line[8], "");
        } else {
            assert_eq!(line[8], proof.assert_status(200)["block"]["height"].to_string());
        }
    }
    assert_ne!(lines[0][1], lines[2][1], "two accounts, two pseudonyms");
    assert_eq!(lines[0][1], lines[1][1]);

    // Read in pages of two, the stream is the same text.
    let whole = app
        .get(
            &format!("{BATCHES}/{}/evidence", batch["batch_id"].as_str().unwrap()),
            Some(&admin),
        )
        .await
        .text;
    let id: i64 = batch["batch_id"].as_str().unwrap().parse().unwrap();
    let (db, secrets) = (app.state.db.clone(), app.state.secrets.clone());
    let paged: Vec<_> = tanhui::reductions::evidence::stream_in_pages(db, secrets, id, 2)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(String::from_utf8(paged.concat()).unwrap(), whole);
    let missing = app.get(&format!("{BATCHES}/999999/evidence"), Some(&admin)).await;
    missing.assert_problem(404, "not_found");
}
