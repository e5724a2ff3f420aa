//! Kill the server with SIGKILL while activity batches are in flight: nothing acknowledged is lost and
//! nothing unacknowledged is half-written.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{base_settings, random_phone, Backend};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(settings: &tanhui::config::Settings, port: u16) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tanhui"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TANHUI__SERVER__PORT", port.to_string())
        .env("TANHUI__DATABASE__URL", &settings.database.url)
        .env("TANHUI__AUTH__ARGON2_MEMORY_KIB", "1024")
        .env("TANHUI__AUTH__ARGON2_ITERATIONS", "1")
        .env("TANHUI__ACTIVITIES__BATCH_WINDOW_MS", "40")
        .env("TANHUI__LOG__LEVEL", "warn")
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(redis) = &settings.redis.url {
        cmd.env("TANHUI__REDIS__URL", redis)
            .env("TANHUI__REDIS__KEY_PREFIX", &settings.redis.key_prefix);
    }
    cmd.spawn().expect("start tanhui")
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not become ready");
}

fn event(i: usize) -> Value {
    json!({"client_event_id": format!("crash-{i}"), "activity_type": "transit.metro", "evidence": "trace",
        "occurred_at": (chrono::Utc::now() - chrono::Duration::minutes(i as i64 + 1)).to_rfc3339(),
        "data": {"distance_m": 1000 + i, "count": 1}})
}

async fn crash_mid_batch(backend: Backend) {
    let Some((settings, _guard)) = base_settings(backend) else {
        return;
    };
    let client = reqwest::Client::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = serve(&settings, port);
    wait_ready(&client, &base).await;

    let phone = random_phone();
    client
        .post(format!("{base}/api/v1/auth/register"))
        .json(
            &json!({"phone": phone, "password": "crash test password", "display_name": "c",
                      "account_type": "individual", "region_code": "440300"}),
        )
        .send()
        .await
        .unwrap();
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"phone": phone, "password": "crash test password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_string();

    // Fire events continuously; kill the server once some are acknowledged and more are in flight.
    let events: Vec<Value> = (0..200).map(event).collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (i, body) in events.iter().cloned().enumerate() {
        let (client, base, token, tx) = (client.clone(), base.clone(), token.clone(), tx.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i as u64 * 3)).await;
            let answer = client
                .post(format!("{base}/api/v1/activities"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await;
            // Some(body) when acknowledged, None when the connection broke (the kill), else skipped.
            let outcome = match answer {
                Ok(r) if r.status().as_u16() == 201 => r.json::<Value>().await.ok().map(Some),
                Ok(_) => None,
                Err(_) => Some(None),
            };
            if let Some(outcome) = outcome {
                let _ = tx.send((i, outcome));
            }
        });
    }
    drop(tx);
    let (mut acknowledged, mut cut_off) = (Vec::new(), 0);
    while let Some((i, answer)) = rx.recv().await {
        match answer {
            Some(body) => acknowledged.push((i, body)),
            None => cut_off += 1,
        }
        if acknowledged.len() == 30 {
            server.kill().expect("SIGKILL");
        }
    }
    server.wait().unwrap();
    assert!(
        acknowledged.len() >= 30,
        "only {} acknowledged before the kill",
        acknowledged.len()
    );
    // The kill came with traffic still going: requests lost their connection to it.
    assert!(cut_off > 0, "no request was cut off by the kill");

    let mut server = serve(&settings, port);
    wait_ready(&client, &base).await;
    // Every acknowledged event is there, exactly as answered (a retry replays it).
    for (i, body) in &acknowledged {
        let r = client
            .post(format!("{base}/api/v1/activities"))
            .bearer_auth(&token)
            .json(&events[*i])
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let replay: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "acknowledged event {i} was lost");
        assert_eq!(replay["activity_id"], body["activity_id"]);
        assert_eq!(replay["points"], body["points"]);
    }
    // Whatever else was stored is whole: the wallet holds exactly the points of the stored activities,
    // and every balance equals its transfers.
    let wallet: Value = client
        .get(format!("{base}/api/v1/wallet"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let activities: Value = client
        .get(format!("{base}/api/v1/activities?limit=200"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored_points: i64 = activities["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["points"].as_i64().unwrap())
        .sum();
    assert_eq!(wallet["balance"].as_i64().unwrap(), stored_points);
    server.kill().unwrap();
    server.wait().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tanhui"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TANHUI__DATABASE__URL", &settings.database.url)
        .arg("verify")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[actix_web::test]
async fn killing_the_server_mid_batch_loses_nothing_acknowledged_sqlite() {
    crash_mid_batch(Backend::Sqlite).await
}

#[actix_web::test]
async fn killing_the_server_mid_batch_loses_nothing_acknowledged_postgres() {
    crash_mid_batch(Backend::Postgres).await
}
