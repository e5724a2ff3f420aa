//! Operations: `/metrics` and `tanhui backup`.

use std::process::Command;

use chrono::Duration;
use serde_json::{json, Value};
use tanhui::startup::Application;

use crate::helpers::{anchor, base_settings, spawn, Backend, TestApp};

crate::both_backends!(requests_and_activities_move_the_counters);

/// A 3 km walk `minutes_ago` before the anchor (walks of one account must not overlap).
fn walk(id: &str, minutes_ago: i64) -> Value {
    json!({"client_event_id": id, "activity_type": "walking",
           "occurred_at": (anchor() - Duration::minutes(minutes_ago)).to_rfc3339(),
           "evidence": "self_report", "data": {"distance_m": 3000}})
}

/// The value of the sample `name{labels}` (labels as the text format writes them, sorted), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(app: &TestApp) -> String {
    let r = app.get("/metrics", None).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert!(r.content_type().starts_with("text/plain"), "{}", r.content_type());
    r.text
}

async fn requests_and_activities_move_the_counters(app: TestApp) {
    let posted = r#"http_requests_total{method="POST",route="/api/v1/activities",status="201"}"#;
    let credited = r#"tanhui_activities_total{status="credited"}"#;
    let before = scrape(&app).await;
    assert_eq!(sample(&before, posted), 0.0);

    let token = app.new_user_token().await;
    app.post_activity(&token, &walk("m-1", 30))
        .await
        .assert_status(201);
    app.post_activity(&token, &walk("m-2", 120))
        .await
        .assert_status(201);
    // A replay is answered again but recorded once.
    app.post_activity(&token, &walk("m-1", 30)).await;
    app.get("/api/v1/methodologies/12345", None).await;
    app.get("/no/such/path/4711", None).await.assert_status(404);

    let after = scrape(&app).await;
    assert!(sample(&after, posted) >= 2.0, "{after}");
    assert_eq!(sample(&after, credited), 2.0, "{after}");
    // 3 km walked, self-reported: 43 points each.
    assert_eq!(sample(&after, "tanhui_points_issued_total"), 86.0, "{after}");
    // The route is the template, never the path asked for.
    assert!(after.contains(r#"route="/api/v1/methodologies/{id}""#), "{after}");
    assert!(!after.contains("12345") && !after.contains("4711"), "{after}");
    assert!(
        sample(
            &after,
            r#"http_requests_total{method="GET",route="unmatched",status="404"}"#
        ) >= 1.0,
        "{after}"
    );
    let bucket = r#"http_request_duration_seconds_bucket{method="POST",route="/api/v1/activities",status="201",le="+Inf"}"#;
    assert!(sample(&after, bucket) >= 2.0, "{after}");
    assert!(
        sample(&after, r#"tanhui_group_commit_items_count{queue="ingest"}"#) >= 1.0,
        "{after}"
    );
    for gauge in [
        "tanhui_unsealed_transfers",
        "tanhui_holds_pending",
        "tanhui_last_block_age_seconds",
        r#"tanhui_db_pool_connections{state="idle"}"#,
        "tanhui_redis_errors_total",
    ] {
        assert!(
            after.lines().any(|l| l.starts_with(gauge)),
            "{gauge} missing: {after}"
        );
    }
}

#[actix_web::test]
async fn a_metrics_port_moves_metrics_off_the_main_port() {
    let Some((mut settings, _guard)) = base_settings(Backend::Sqlite) else {
        return;
    };
    settings.server.metrics_port = Some(0);
    let app = Application::build(settings).await.expect("application starts");
    let (port, metrics_port) = (app.port(), app.metrics_port().expect("a metrics listener"));
    actix_web::rt::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let main = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(main.status().as_u16(), 404);
    let apart = client
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(apart.status().as_u16(), 200);
    let text = apart.text().await.unwrap();
    // The main port's answer was counted, under the fixed label of a path no route matched there.
    assert!(text.contains(r#"route="unmatched""#), "{text}");
}

fn tanhui() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tanhui"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TANHUI__LOG__LEVEL", "warn");
    cmd
}

/// A backup taken while activities are posted opens as a database of its own and verifies.
#[actix_web::test]
async fn a_backup_taken_under_load_restores_and_verifies() {
    let Some(app) = spawn(Backend::Sqlite).await else {
        return;
    };
    let tokens = futures_util::future::join_all((0..4).map(|_| app.new_user_token())).await;
    let posting = tokens.iter().enumerate().map(|(n, token)| {
        let app = &app;
        async move {
            for i in 0..60 {
                app.post_activity(token, &walk(&format!("b-{n}-{i}"), 30 + 45 * i))
                    .await
                    .assert_status(201);
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    let url = app.settings.database.url.clone();
    let backup = {
        let copy = copy.clone();
        async move {
            // Once some posts are in, while the rest are still arriving.
            actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
            actix_web::web::block(move || {
                tanhui()
                    .env("TANHUI__DATABASE__URL", &url)
                    .arg("backup")
                    .arg(&copy)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let (_, out) = tokio::join!(futures_util::future::join_all(posting), backup);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Only the one file: nothing to copy beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("copy.db")]);

    let restored = format!("sqlite://{}", copy.display());
    let verify = tanhui()
        .env("TANHUI__DATABASE__URL", &restored)
        .arg("verify")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{stdout}");
    let activities: u64 = stdout
        .split(" activities")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(activities > 0, "the copy holds no activity: {stdout}");

    // An existing file is never overwritten.
    let again = tanhui()
        .env("TANHUI__DATABASE__URL", &app.settings.database.url)
        .arg("backup")
        .arg(&copy)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
}

#[test]
fn backup_refuses_postgresql_and_names_its_tools() {
    let out = tanhui()
        .env("TANHUI__DATABASE__URL", "postgres://postgres@127.0.0.1:1/none")
        .arg("backup")
        .arg("/tmp/never-written.db")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pg_dump") && stderr.contains("pg_basebackup"),
        "{stderr}"
    );
    assert!(!std::path::Path::new("/tmp/never-written.db").exists());
}

#[actix_web::test]
async fn healthcheck_answers_from_readyz() {
    let Some(app) = spawn(Backend::Sqlite).await else {
        return;
    };
    let port = app.address.rsplit(':').next().unwrap().to_string();
    // Off this thread: the server answers on it.
    let ok = actix_web::web::block(move || {
        tanhui()
            .env("TANHUI__SERVER__PORT", &port)
            .arg("healthcheck")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let nobody = tanhui()
        .env("TANHUI__SERVER__PORT", "1")
        .arg("healthcheck")
        .output()
        .unwrap();
    assert!(!nobody.status.success());
}
