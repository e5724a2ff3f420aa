//! The binary: configuration errors, database errors, `admin create`, `migrate`.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::helpers::{base_settings, random_phone, spawn_with, Backend};

fn tanhui() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tanhui"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TANHUI__LOG__LEVEL", "warn");
    cmd
}

/// `tanhui admin create` on the database at `url`, the password given on standard input.
fn run_admin_create(url: &str, phone: &str, display_name: &str) -> std::process::Output {
    let mut child = tanhui()
        .env("TANHUI__DATABASE__URL", url)
        .args([
            "admin",
            "create",
            "--phone",
            phone,
            "--display-name",
            display_name,
        ])
        .arg("--password-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"an admin passphrase\n")
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_bad_configuration_value_names_its_key() {
    let out = tanhui()
        .env("TANHUI__SERVER__PORT", "eighty")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server.port"), "{stderr}");

    let out = tanhui()
        .env("TANHUI__DATABASE__URL", "mysql://x")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("database.url"));
}

#[test]
fn an_unreachable_database_gives_its_real_error() {
    let out = tanhui()
        .env("TANHUI__DATABASE__URL", "postgres://postgres@127.0.0.1:1/none")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.to_lowercase().contains("connection refused"), "{stderr}");
}

#[test]
fn help_describes_each_command() {
    let out = tanhui().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "migrate", "admin"] {
        assert!(text.contains(word), "{text}");
    }
    let out = tanhui().args(["admin", "create", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--password-stdin") && text.contains("--display-name"),
        "{text}"
    );
}

async fn admin_create(backend: Backend) {
    let Some((settings, guard)) = base_settings(backend) else {
        return;
    };
    let phone = random_phone();
    let out = run_admin_create(&settings.database.url, &phone, "Ops");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let url = settings.database.url.clone();
    let app = spawn_with(backend, move |s| s.database.url = url).await.unwrap();
    let r = app.login(&phone, "an admin passphrase").await;
    let token = r.assert_status(200)["access_token"].as_str().unwrap().to_string();
    let me = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(me.body["roles"], json!(["admin"]));
    drop(guard);
}

#[test]
fn admin_create_refuses_a_display_name_that_could_spoof() {
    let Some((settings, _guard)) = base_settings(Backend::Sqlite) else {
        return;
    };
    for name in ["\u{202E}spO", "O\u{200B}ps", "\u{3000} "] {
        let out = run_admin_create(&settings.database.url, &random_phone(), name);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name:?} accepted");
        assert!(stderr.contains("display_name"), "{name:?}: {stderr}");
    }
}

#[actix_web::test]
async fn admin_create_reads_the_password_from_stdin_sqlite() {
    admin_create(Backend::Sqlite).await
}

#[actix_web::test]
async fn admin_create_reads_the_password_from_stdin_postgres() {
    admin_create(Backend::Postgres).await
}

/// `tanhui demo` loads a world a newcomer can redeem in, once, and the ledger it leaves verifies.
async fn demo_world(backend: Backend) {
    let Some((settings, guard)) = base_settings(backend) else {
        return;
    };
    let demo = || {
        tanhui()
            .env("TANHUI__DATABASE__URL", &settings.database.url)
            .env("TANHUI__AUTH__ARGON2_MEMORY_KIB", "1024")
            .env("TANHUI__AUTH__ARGON2_ITERATIONS", "1")
            .arg("demo")
            .output()
            .unwrap()
    };
    let out = demo();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for expected in [
        "Demo world loaded",
        "深圳地铁",
        "民生银行",
        "/api/v1/redemptions",
        "Idempotency-Key",
    ] {
        assert!(text.contains(expected), "{text}");
    }
    let again = demo();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("empty database"));

    // The guide's steps work: sign in, see points, list offers, redeem.
    // The app reads the demo's database, and so does its replica (anonymous reads go there).
    let (url, replica_url) = (
        settings.database.url.clone(),
        settings.database.replica_url.clone(),
    );
    let app = spawn_with(backend, move |s| {
        s.database.url = url;
        s.database.replica_url = replica_url;
    })
    .await
    .unwrap();
    let login = app
        .login(tanhui::demo::ADMIN_PHONE, tanhui::demo::ADMIN_PASSWORD)
        .await;
    login.assert_status(200);
    let login = app.login("13800000001", tanhui::demo::USER_PASSWORD).await;
    let token = login.assert_status(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let wallet = app.get("/api/v1/wallet", Some(&token)).await;
    assert!(wallet.assert_status(200)["balance"].as_i64().unwrap() > 1000);
    let offers = app.get("/api/v1/offers?region_code=440300", None).await;
    assert_eq!(offers.assert_status(200)["items"].as_array().unwrap().len(), 3);
    let redeemed = app
        .send(
            app.client
                .post(app.url("/api/v1/redemptions"))
                .bearer_auth(&token)
                .header("Idempotency-Key", "demo-1")
                .json(&json!({"offer_id": "1"})),
        )
        .await;
    assert_eq!(redeemed.assert_status(201)["status"], "held");
    // The dashboard's statistics have months of activity in each of east, central and west.
    let from = (chrono::Utc::now() - chrono::Duration::days(200)).format("%Y-%m-%dT%H:%M:%SZ");
    let belts = app
        .get(
            &format!("/api/v1/public/stats/reductions?group_by=macro_region&from={from}"),
            None,
        )
        .await;
    let belts = belts.assert_status(200).clone();
    assert!(belts["totals"]["activities"].as_i64().unwrap() > 2000, "{belts}");
    for belt in belts["items"].as_array().unwrap() {
        assert!(belt["active_accounts"].as_i64().unwrap() >= 10, "{belts}");
    }
    let verify = tanhui()
        .env("TANHUI__DATABASE__URL", &settings.database.url)
        .arg("verify")
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    drop(guard);
}

#[actix_web::test]
async fn demo_loads_once_into_an_empty_database_sqlite() {
    demo_world(Backend::Sqlite).await
}

#[actix_web::test]
async fn demo_loads_once_into_an_empty_database_postgres() {
    demo_world(Backend::Postgres).await
}
