//! Public statistics: numbers that move with credits, exact distinct accounts, exact unaligned windows,
//! CSV that equals JSON, region filters, per-capita figures, review approvals, refusals.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{anchor, TestApp};

both_backends!(
    numbers_move_after_a_post_and_the_csv_is_the_json,
    active_accounts_are_distinct_across_days_types_and_months,
    unaligned_windows_are_answered_exactly,
    a_region_filter_keeps_its_subtree,
    provinces_and_macro_regions_carry_their_census_population,
    an_approved_review_is_counted_and_a_flagged_activity_is_not,
    bad_questions_are_refused,
);

const PATH: &str = "/api/v1/public/stats/reductions";

fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap()
}

/// `minutes_ago` before [`anchor`].
fn ago(minutes: i64) -> DateTime<Utc> {
    anchor() - Duration::minutes(minutes)
}

fn walk(id: &str, at: DateTime<Utc>, distance_m: u64) -> Value {
    json!({"client_event_id": id, "activity_type": "walking", "occurred_at": at.to_rfc3339(),
           "evidence": "trace", "data": {"distance_m": distance_m}})
}

fn enc(t: DateTime<Utc>) -> String {
    t.to_rfc3339().replace('+', "%2B")
}

/// The statistics for `group_by` over `[from, to)`, with more of the query string in `more`.
async fn stats(app: &TestApp, group_by: &str, from: DateTime<Utc>, to: DateTime<Utc>, more: &str) -> Value {
    let path = format!(
        "{PATH}?group_by={group_by}&from={}&to={}{more}",
        enc(from),
        enc(to)
    );
    let r = app.get(&path, None).await;
    r.assert_status(200).clone()
}

/// The item of `key`.
fn item<'a>(answer: &'a Value, key: &str) -> &'a Value {
    answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"] == key)
        .unwrap_or_else(|| panic!("no item {key} in {answer}"))
}

/// The local day of `anchor`, as a window of UTC instants.
fn today() -> (DateTime<Utc>, DateTime<Utc>) {
    let day = anchor().with_timezone(&shanghai()).date_naive();
    (midnight(day), midnight(day + Duration::days(1)))
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    shanghai()
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// Posts and returns the answer, credited.
async fn credited(app: &TestApp, token: &str, event: &Value) -> Value {
    let r = app.post_activity(token, event).await;
    let body = r.assert_status(201).clone();
    assert_eq!(body["status"], "credited", "{body}");
    body
}

async fn numbers_move_after_a_post_and_the_csv_is_the_json(app: TestApp) {
    let (from, to) = today();
    let before = stats(&app, "city", from, to, "").await;
    assert_eq!(before["group_by"], "city");
    assert_eq!(item(&before, "440300")["activities"], 0);
    assert_eq!(before["totals"]["active_accounts"], 0);

    let token = app.new_user_token().await;
    let walked = credited(&app, &token, &walk("w1", ago(30), 3000)).await;
    // Credits are in the rollups when the post is answered; wait the promised 2 s at most anyway.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let after = loop {
        let after = stats(&app, "city", from, to, "").await;
        if after["totals"]["activities"] == 1 || std::time::Instant::now() > deadline {
            break after;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let shenzhen = item(&after, "440300");
    assert_eq!(shenzhen["name"], "深圳");
    assert_eq!(shenzhen["activities"], 1);
    assert_eq!(shenzhen["granted_g"], walked["granted_g"]);
    assert_eq!(shenzhen["reduction_g"], walked["reduction_g"]);
    assert_eq!(shenzhen["points"], walked["points"]);
    assert_eq!(shenzhen["active_accounts"], 1);
    assert_eq!(after["totals"]["granted_g"], walked["granted_g"]);
    assert!(after["as_of"].as_str().is_some());

    for group_by in [
        "macro_region",
        "nbs_region",
        "province",
        "city",
        "activity_type",
        "day",
        "month",
    ] {
        let json = stats(&app, group_by, from, to, "").await;
        let path = format!("{PATH}?group_by={group_by}&from={}&to={}", enc(from), enc(to));
        let csv = app
            .send(app.client.get(app.url(&path)).header("accept", "text/csv"))
            .await;
        assert_eq!(csv.status, 200);
        assert!(
            csv.content_type().starts_with("text/csv"),
            "{}",
            csv.content_type()
        );
        let mut reader = csv::Reader::from_reader(csv.text.as_bytes());
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        let items = json["items"].as_array().unwrap();
        assert_eq!(rows.len(), items.len(), "{group_by}");
        for (row, item) in rows.iter().zip(items) {
            let text = |v: &Value| match v {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let fields = [
                "key",
                "name",
                "granted_g",
                "reduction_g",
                "points",
                "activities",
                "active_accounts",
                "population",
                "per_capita_g",
            ];
            for (i, field) in fields.iter().enumerate() {
                assert_eq!(row.get(i).unwrap(), text(&item[*field]), "{group_by} {field}");
            }
        }
    }
    let report = app.verify().await;
    assert!(report.ok(), "{report:?}");
}

async fn active_accounts_are_distinct_across_days_types_and_months(app: TestApp) {
    let (from, to) = today();
    let (a, b) = (app.new_user_token().await, app.new_user_token().await);
    let yesterday = ago(24 * 60);
    for (i, minutes) in [30, 90, 150].into_iter().enumerate() {
        credited(&app, &a, &walk(&format!("a{i}"), ago(minutes), 1000)).await;
    }
    credited(&app, &a, &walk("a-yesterday", yesterday, 1000)).await;
    let metro = json!({"client_event_id": "m", "activity_type": "transit.metro", "occurred_at": ago(300).to_rfc3339(),
        "ended_at": ago(280).to_rfc3339(), "evidence": "trace", "data": {"distance_m": 8000}});
    credited(&app, &a, &metro).await;
    credited(&app, &b, &walk("b0", ago(45), 1000)).await;

    let day = stats(&app, "activity_type", from, to, "").await;
    assert_eq!(item(&day, "walking")["activities"], 4);
    assert_eq!(item(&day, "walking")["active_accounts"], 2);
    assert_eq!(item(&day, "transit.metro")["active_accounts"], 1);
    assert_eq!(day["totals"]["activities"], 5);
    assert_eq!(day["totals"]["active_accounts"], 2);

    // Two days, by day: each day's own accounts; the window's, once each.
    let two = stats(&app, "day", from - Duration::days(1), to, "").await;
    assert_eq!(two["items"].as_array().unwrap().len(), 2);
    assert_eq!(two["items"][0]["active_accounts"], 1);
    assert_eq!(two["items"][1]["active_accounts"], 2);
    assert_eq!(two["totals"]["active_accounts"], 2);
    assert_eq!(two["totals"]["activities"], 6);

    // Month-aligned windows read the monthly rollups: the same accounts, counted once.
    let local = anchor().with_timezone(&shanghai()).date_naive();
    let first = local.with_day(1).unwrap();
    let month_from = midnight(first - chrono::Months::new(2));
    let month_to = midnight(first + chrono::Months::new(1));
    for group_by in ["month", "province", "macro_region", "activity_type"] {
        let months = stats(&app, group_by, month_from, month_to, "").await;
        assert_eq!(months["totals"]["active_accounts"], 2, "{group_by}");
        assert_eq!(months["totals"]["activities"], 6, "{group_by}");
    }
    let months = stats(&app, "month", month_from, month_to, "").await;
    assert_eq!(months["items"].as_array().unwrap().len(), 3);
    let this_month = &months["items"][2];
    assert_eq!(this_month["key"], first.format("%Y-%m").to_string());
    // Yesterday may be last month: then this month holds what today holds.
    let expected = if yesterday.with_timezone(&shanghai()).month() == first.month() {
        6
    } else {
        5
    };
    assert_eq!(this_month["activities"], expected);
    assert_eq!(this_month["active_accounts"], 2);
    assert_eq!(
        item(&stats(&app, "province", month_from, month_to, "").await, "440000")["active_accounts"],
        2
    );
}

async fn unaligned_windows_are_answered_exactly(app: TestApp) {
    let (a, b) = (app.new_user_token().await, app.new_user_token().await);
    let times = [ago(24 * 60 + 30), ago(300), ago(200), ago(100)];
    let mut grants = Vec::new();
    for (i, t) in times.iter().enumerate() {
        let token = if i % 2 == 0 { &a } else { &b };
        let body = credited(&app, token, &walk(&format!("w{i}"), *t, 1000 + 500 * i as u64)).await;
        grants.push(body["granted_g"].as_i64().unwrap());
    }
    let minute = Duration::minutes(1);
    // Windows inside one day, across a day, and from yesterday's activity to a minute after the last.
    let cases: [(DateTime<Utc>, DateTime<Utc>, &[usize]); 5] = [
        (times[1], times[2], &[1]),
        (times[1] + minute, times[3] + minute, &[2, 3]),
        (times[0], times[3], &[0, 1, 2]),
        (times[0] + minute, times[3] + minute, &[1, 2, 3]),
        (times[0] - Duration::days(2) - minute, times[1] + minute, &[0, 1]),
    ];
    for (from, to, expected) in cases {
        let granted: i64 = expected.iter().map(|&i| grants[i]).sum();
        let accounts =
            if expected.iter().any(|i| i % 2 == 0) as i64 + expected.iter().any(|i| i % 2 == 1) as i64 == 2 {
                2
            } else {
                1
            };
        for group_by in ["province", "day", "month"] {
            let answer = stats(&app, group_by, from, to, "").await;
            assert_eq!(answer["totals"]["granted_g"], granted, "{group_by} {from} {to}");
            assert_eq!(
                answer["totals"]["activities"],
                expected.len(),
                "{group_by} {from} {to}"
            );
            assert_eq!(
                answer["totals"]["active_accounts"], accounts,
                "{group_by} {from} {to}"
            );
            let items: i64 = answer["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["granted_g"].as_i64().unwrap())
                .sum();
            assert_eq!(items, granted, "{group_by} {from} {to}");
        }
    }
}

async fn a_region_filter_keeps_its_subtree(app: TestApp) {
    let (from, to) = today();
    let token = app.new_user_token().await;
    let here = credited(&app, &token, &walk("shenzhen", ago(60), 2000)).await;
    let mut there = walk("chengdu", ago(120), 1000);
    there["region_code"] = json!("510100");
    let there = credited(&app, &token, &there).await;

    let guangdong = stats(&app, "city", from, to, "&region_code=440000").await;
    let cities: Vec<&str> = guangdong["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(cities, vec!["440100", "440300"]);
    assert_eq!(item(&guangdong, "440300")["granted_g"], here["granted_g"]);
    assert_eq!(guangdong["totals"]["granted_g"], here["granted_g"]);
    assert_eq!(guangdong["totals"]["activities"], 1);

    let sichuan = stats(&app, "activity_type", from, to, "&region_code=510000").await;
    assert_eq!(item(&sichuan, "walking")["granted_g"], there["granted_g"]);
    assert_eq!(sichuan["totals"]["active_accounts"], 1);

    let nation = stats(&app, "macro_region", from, to, "").await;
    let keys: Vec<&str> = nation["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["central", "east", "west"]);
    assert_eq!(item(&nation, "east")["active_accounts"], 1);
    assert_eq!(item(&nation, "west")["active_accounts"], 1);
    assert_eq!(item(&nation, "east")["name"], "东部");
    // One person in two regions is one active account in the nation.
    assert_eq!(nation["totals"]["active_accounts"], 1);
    assert_eq!(nation["totals"]["activities"], 2);
}

/// `n / d` to 20 decimal places, cut.
fn quotient(n: i64, d: i64) -> String {
    let mut rest = n % d;
    let mut digits = String::new();
    for _ in 0..20 {
        rest *= 10;
        digits.push_str(&(rest / d).to_string());
        rest %= d;
    }
    format!("{}.{digits}", n / d)
}

async fn provinces_and_macro_regions_carry_their_census_population(app: TestApp) {
    let (from, to) = today();
    let token = app.new_user_token().await;
    let walked = credited(&app, &token, &walk("w", ago(60), 5000)).await;
    let granted = walked["granted_g"].as_i64().unwrap();

    let provinces = stats(&app, "province", from, to, "").await;
    let guangdong = item(&provinces, "440000");
    assert_eq!(guangdong["name"], "广东");
    assert_eq!(guangdong["population"], 126_012_510);
    assert_eq!(guangdong["per_capita_g"], quotient(granted, 126_012_510));
    let digits = guangdong["per_capita_g"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .len();
    assert!(digits >= 10);
    assert_eq!(
        item(&provinces, "510000")["per_capita_g"],
        quotient(0, 83_674_866)
    );
    assert_eq!(provinces["items"].as_array().unwrap().len(), 31);

    let belts = stats(&app, "macro_region", from, to, "").await;
    assert_eq!(item(&belts, "east")["population"], 606_308_526);
    assert_eq!(
        item(&belts, "east")["per_capita_g"],
        quotient(granted, 606_308_526)
    );
    assert_eq!(item(&belts, "central")["population"], 420_617_903);
    assert_eq!(item(&belts, "west")["population"], 382_852_295);

    // Under a province, its own residents; cities and other groupings carry none.
    let within = stats(&app, "macro_region", from, to, "&region_code=440000").await;
    assert_eq!(item(&within, "east")["population"], 126_012_510);
    let cities = stats(&app, "city", from, to, "").await;
    assert!(item(&cities, "440300").get("population").is_none());
    assert!(item(&cities, "440300").get("per_capita_g").is_none());
}

async fn an_approved_review_is_counted_and_a_flagged_activity_is_not(app: TestApp) {
    let (from, to) = today();
    let token = app.new_user_token().await;
    let admin = app.admin_token().await;
    let mut fast = walk("fast", ago(60), 10_000);
    fast["data"]["duration_s"] = json!(600);
    let r = app.post_activity(&token, &fast).await;
    let flagged = r.assert_status(201).clone();
    assert_eq!(flagged["status"], "flagged");
    let before = stats(&app, "activity_type", from, to, "").await;
    assert_eq!(before["totals"]["activities"], 0);

    let decided = app
        .review(&admin, &flagged["activity_id"], "approve", "trace checked")
        .await;
    let decided = decided.assert_status(200).clone();
    assert_eq!(decided["status"], "credited");
    let after = stats(&app, "activity_type", from, to, "").await;
    assert_eq!(item(&after, "walking")["activities"], 1);
    assert_eq!(item(&after, "walking")["granted_g"], decided["granted_g"]);
    assert_eq!(item(&after, "walking")["points"], decided["points"]);
    assert_eq!(after["totals"]["active_accounts"], 1);
    let report = app.verify().await;
    assert!(report.ok(), "{report:?}");
}

async fn bad_questions_are_refused(app: TestApp) {
    let (from, to) = today();
    let app = &app;
    let q = |query: String| async move { app.get(&format!("{PATH}?{query}"), None).await };
    let window = format!("from={}&to={}", enc(from), enc(to));
    q(format!("group_by=planet&{window}"))
        .await
        .assert_problem(422, "validation_failed");
    q(window.clone()).await.assert_problem(422, "validation_failed");
    q(format!("group_by=day&from={}&to={}", enc(to), enc(from)))
        .await
        .assert_problem(422, "validation_failed");
    q(format!("group_by=day&from={}&to={}", enc(from), enc(from)))
        .await
        .assert_problem(422, "validation_failed");
    q(format!(
        "group_by=day&from={}&to={}",
        enc(from - Duration::days(2000)),
        enc(to)
    ))
    .await
    .assert_problem(422, "validation_failed");
    q(format!("group_by=day&from=yesterday&to={}", enc(to)))
        .await
        .assert_problem(422, "validation_failed");
    q(format!("group_by=city&{window}&region_code=999999"))
        .await
        .assert_problem(422, "unknown_region");
    // Without a window: the last 30 Asia/Shanghai days, today included.
    let default = app.get(&format!("{PATH}?group_by=day"), None).await;
    assert_eq!(default.assert_status(200)["items"].as_array().unwrap().len(), 30);
}
