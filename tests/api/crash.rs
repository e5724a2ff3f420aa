//! Kill the server with SIGKILL while activity batches are in flight: nothing acknowledged is lost and
//! nothing unacknowledged is half-written.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{base_settings, random_phone, Backend};

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the service; an idle ingest writer gathers events for `window_ms` before it commits.
fn serve(settings: &tanhui::config::Settings, port: u16, window_ms: u64) -> Child {
    serve_with(settings, port, window_ms, &[])
}

/// As [`serve`], with more settings in the environment (they override the ones set here).
pub(crate) fn serve_with(
    settings: &tanhui::config::Settings,
    port: u16,
    window_ms: u64,
    env: &[(&str, String)],
) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tanhui"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TANHUI__SERVER__PORT", port.to_string())
        .env("TANHUI__DATABASE__URL", &settings.database.url)
        .env("TANHUI__AUTH__ARGON2_MEMORY_KIB", "1024")
        .env("TANHUI__AUTH__ARGON2_ITERATIONS", "1")
        .env("TANHUI__ACTIVITIES__BATCH_WINDOW_MS", window_ms.to_string())
        // One account fires 200 posts in 0.6 s: a flood the rate limit would rightly refuse.
        .env("TANHUI__THROTTLE__ACCOUNT_WRITE_BURST", "100000")
        .env("TANHUI__LOG__LEVEL", "warn")
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(redis) = &settings.redis.url {
        cmd.env("TANHUI__REDIS__URL", redis)
            .env("TANHUI__REDIS__KEY_PREFIX", &settings.redis.key_prefix);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.spawn().expect("start tanhui")
}

pub(crate) async fn wait_ready(client: &reqwest::Client, base: &str) {
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

/// Metro rides a minute apart: each occupies the 30 s its kilometre takes at the speed bound, so none
/// overlaps another and every one is credited.
/// Timed back from `now`, which a retry must repeat to be the same event.
pub(crate) fn event(now: chrono::DateTime<chrono::Utc>, i: usize) -> Value {
    json!({"client_event_id": format!("crash-{i}"), "activity_type": "transit.metro", "evidence": "trace",
        "occurred_at": (now - chrono::Duration::minutes(i as i64 + 1)).to_rfc3339(),
        "data": {"distance_m": 1000 + i}})
}

/// What became of one request.
enum Outcome {
    Acknowledged(Value),
    /// The connection broke: the kill.
    CutOff,
    /// Any other answer: a live server must acknowledge every event.
    Refused(u16, String),
}

async fn crash_mid_batch(backend: Backend) {
    let Some((settings, _guard)) = base_settings(backend) else {
        return;
    };
    let client = reqwest::Client::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // A long window, so that requests wait in an open group long enough for the kill to find them there.
    let mut server = serve(&settings, port, 400);
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
    let now = chrono::Utc::now();
    let events: Vec<Value> = (0..200).map(|i| event(now, i)).collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // The requests sent and not yet answered, with when they were sent: the kill waits until some have
    // waited long enough that they sit in an open group (a commit takes far less), not between one
    // group's answers and the next group's first event.
    let in_flight = Arc::new(Mutex::new(HashMap::new()));
    for (i, body) in events.iter().cloned().enumerate() {
        let (client, base, token, tx) = (client.clone(), base.clone(), token.clone(), tx.clone());
        let in_flight = in_flight.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i as u64 * 3)).await;
            let sent_at = Instant::now();
            in_flight.lock().unwrap().insert(i, sent_at);
            let answer = client
                .post(format!("{base}/api/v1/activities"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await;
            let outcome = match answer {
                Ok(r) if r.status().as_u16() == 201 => match r.json::<Value>().await {
                    Ok(body) => Outcome::Acknowledged(body),
                    Err(_) => Outcome::CutOff,
                },
                Ok(r) => Outcome::Refused(r.status().as_u16(), r.text().await.unwrap_or_default()),
                Err(_) => Outcome::CutOff,
            };
            in_flight.lock().unwrap().remove(&i);
            let _ = tx.send((i, sent_at, outcome));
        });
    }
    drop(tx);
    let (mut acknowledged, mut cut_off, mut killed_at) = (Vec::new(), 0, None);
    let all_answered = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let next = tokio::time::timeout(Duration::from_millis(2), rx.recv()).await;
            let waiting = (in_flight.lock().unwrap().values())
                .filter(|sent_at| sent_at.elapsed() > Duration::from_millis(50))
                .count();
            if acknowledged.len() >= 30 && killed_at.is_none() && waiting >= 3 {
                server.kill().expect("SIGKILL");
                killed_at = Some(Instant::now());
            }
            let Ok(received) = next else { continue };
            let Some((i, sent_at, outcome)) = received else {
                break;
            };
            match outcome {
                Outcome::Acknowledged(body) => acknowledged.push((i, body)),
                // Only a request sent before the kill was cut off by it: later ones found no server.
                Outcome::CutOff if killed_at.is_some_and(|at| sent_at < at) => cut_off += 1,
                Outcome::CutOff => {}
                Outcome::Refused(status, text) => panic!("event {i} answered {status}: {text}"),
            }
        }
    })
    .await;
    // However it went, the server is stopped before waiting for it.
    let _ = server.kill();
    server.wait().unwrap();
    assert!(
        all_answered.is_ok(),
        "requests still unanswered after two minutes"
    );
    assert!(
        killed_at.is_some(),
        "only {} acknowledged before the kill",
        acknowledged.len()
    );
    // The kill came with traffic still going: requests in flight lost their connection to it.
    assert!(cut_off > 0, "no request in flight was cut off by the kill");

    // The usual window: the retries below come one at a time.
    let mut server = serve(&settings, port, 2);
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
    assert!(activities["next_cursor"].is_null(), "one page holds them all");
    let stored = activities["items"].as_array().unwrap();
    assert!(stored.len() >= acknowledged.len());
    let stored_points: i64 = stored.iter().map(|a| a["points"].as_i64().unwrap()).sum();
    assert!(stored_points > 0, "the rides were credited");
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
