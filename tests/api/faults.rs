//! Break the service's dependencies on purpose, with real processes: a PostgreSQL cluster and a
//! redis-server of the test's own (never the shared ones), the `tanhui` binary under SIGTERM, and a
//! SQLite file on a filesystem that fills up. Each test skips with a message where its binaries (or, for
//! the full disk, root) are missing, unless CI=true.
//!
//! What each fault does to the service is in docs/operations.md, "Faults".

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::crash::{event, free_port, serve_with, wait_ready};
use crate::helpers::{base_settings, random_phone, spawn_with, Backend, Key, TestApp};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Skips (or, under CI, fails) a test that cannot run here.
fn unavailable(why: &str) -> Option<()> {
    assert!(!in_ci(), "CI=true but {why}");
    eprintln!("skipping: {why}");
    None
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PostgreSQL cluster of the test's own in a temporary directory, on a free port, stopped and removed
/// when dropped. PostgreSQL refuses to run as root: then its commands run as the `postgres` user.
struct OwnPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

impl OwnPostgres {
    fn start() -> Option<OwnPostgres> {
        // The newest installed version.
        let mut bins: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|bin| bin.join("initdb").exists())
            .collect();
        bins.sort_by_key(|p| {
            let version = p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str());
            version.and_then(|v| v.parse::<u32>().ok()).unwrap_or(0)
        });
        let Some(bin) = bins.pop() else {
            unavailable("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")?;
            return None;
        };
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::tempdir().expect("temp dir");
        if as_postgres {
            run(Command::new("chown").arg("-R").arg("postgres:").arg(dir.path()));
        }
        let pg = OwnPostgres {
            bin,
            dir,
            port: free_port(),
            as_postgres,
        };
        run(pg
            .command("initdb")
            .args(["--auth=trust", "--username=postgres", "--no-sync", "-D"])
            .arg(pg.data()));
        std::fs::write(
            pg.dir.path().join("data/postgresql.auto.conf"),
            format!(
                "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\n",
                pg.port,
                pg.dir.path().display()
            ),
        )
        .expect("configure the cluster");
        pg.resume();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        };
        cmd.stdin(Stdio::null());
        cmd
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) {
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(args));
    }

    /// A fast shutdown: sessions are cut off and in-progress transactions roll back.
    fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "stop"]);
    }

    fn resume(&self) {
        self.pg_ctl(&["-w", "start"]);
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// A redis-server of the test's own on a free port, a child process the test pauses and kills.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    /// A port where no Redis answers yet (see [`OwnRedis::resume`]).
    fn absent() -> Option<OwnRedis> {
        if Command::new("redis-server").arg("--version").output().is_err() {
            unavailable("no redis-server on the PATH")?;
        }
        Some(OwnRedis {
            port: free_port(),
            child: None,
        })
    }

    fn start() -> Option<OwnRedis> {
        let mut redis = OwnRedis::absent()?;
        redis.resume();
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--port",
            ])
            .arg(self.port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start");
    }

    /// SIGSTOP: the port still accepts connections (the kernel's backlog) but nothing answers, the worst
    /// kind of outage for a client.
    fn freeze(&self) {
        signal(self.child.as_ref().expect("running"), libc::SIGSTOP);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGCONT);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
}

/// A user of a served instance, for load from outside.
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    /// The events' times count back from here, so that a retry is the same event.
    epoch: chrono::DateTime<chrono::Utc>,
}

impl Client {
    async fn register(port: u16) -> Client {
        let http = reqwest::Client::builder()
            // A request the service leaves hanging is a failure of the test, not a hang of it.
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        wait_ready(&http, &base).await;
        let phone = random_phone();
        let password = "fault test password";
        let r = http
            .post(format!("{base}/api/v1/auth/register"))
            .json(&json!({"phone": phone, "password": password, "display_name": "f",
                "account_type": "individual", "region_code": "440300"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let login: Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"phone": phone, "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["access_token"].as_str().unwrap().to_string();
        Client {
            http,
            base,
            token,
            epoch: chrono::Utc::now(),
        }
    }

    async fn post_event(&self, i: usize) -> Result<(u16, Value), reqwest::Error> {
        let r = self
            .http
            .post(format!("{}/api/v1/activities", self.base))
            .bearer_auth(&self.token)
            .json(&event(self.epoch, i))
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Every acknowledged event is stored exactly as answered (a retry replays it), and the wallet holds
    /// exactly the points of the stored activities.
    async fn assert_nothing_acknowledged_lost(&self, acknowledged: &[(usize, Value)]) {
        for (i, body) in acknowledged {
            let (status, replay) = self.post_event(*i).await.expect("the retry is answered");
            assert_eq!(status, 200, "acknowledged event {i} was lost: {replay}");
            assert_eq!(replay["activity_id"], body["activity_id"]);
            assert_eq!(replay["points"], body["points"]);
        }
        let mut stored_points = 0;
        let mut cursor: Option<String> = None;
        loop {
            let page = match &cursor {
                None => self.get("/api/v1/activities?limit=200").await,
                Some(c) => {
                    self.get(&format!("/api/v1/activities?limit=200&cursor={c}"))
                        .await
                }
            };
            let items = page["items"].as_array().unwrap();
            stored_points += items.iter().map(|a| a["points"].as_i64().unwrap()).sum::<i64>();
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        let wallet = self.get("/api/v1/wallet").await;
        assert_eq!(wallet["balance"].as_i64().unwrap(), stored_points);
    }
}

fn verify(database_url: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_tanhui"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TANHUI__DATABASE__URL", database_url)
        .arg("verify")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What became of one posted event. The fields are shown in failure messages.
#[derive(Debug)]
#[allow(dead_code)]
enum Outcome {
    Acknowledged(Value),
    Status(u16, Value),
    /// No answer: the connection failed or broke.
    NoAnswer(String),
}

/// Events posted by `workers` tasks one after another until `stop` is set, numbered from `first`.
struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    answers: UnboundedReceiver<(usize, Instant, Instant, Outcome)>,
    /// The events sent and not yet answered, with when they were sent.
    in_flight: Arc<Mutex<std::collections::HashMap<usize, Instant>>>,
}

impl Load {
    fn start(client: &Arc<Client>, workers: usize, first: usize) -> Load {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(first));
        let in_flight = Arc::new(Mutex::new(std::collections::HashMap::new()));
        let (tx, answers) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..workers {
            let (client, stop, next, tx, in_flight) = (
                client.clone(),
                stop.clone(),
                next.clone(),
                tx.clone(),
                in_flight.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let sent = Instant::now();
                    in_flight.lock().unwrap().insert(i, sent);
                    let outcome = match client.post_event(i).await {
                        Ok((201, body)) => Outcome::Acknowledged(body),
                        Ok((status, body)) => Outcome::Status(status, body),
                        Err(e) => Outcome::NoAnswer(e.to_string()),
                    };
                    in_flight.lock().unwrap().remove(&i);
                    let refused = !matches!(outcome, Outcome::Acknowledged(_));
                    if tx.send((i, sent, Instant::now(), outcome)).is_err() {
                        break;
                    }
                    // A refused post comes back at once: pace the retries of a dependency that is down.
                    if refused {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            });
        }
        Load {
            stop,
            answers,
            in_flight,
        }
    }

    /// The next answer, failing the test after `within`.
    async fn next(&mut self, within: Duration) -> (usize, Instant, Instant, Outcome) {
        tokio::time::timeout(within, self.answers.recv())
            .await
            .expect("the load got no answer in time")
            .expect("the load stopped")
    }

    /// Stops the workers and collects the answers still coming.
    async fn finish(mut self) -> Vec<(usize, Instant, Instant, Outcome)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut rest = Vec::new();
        while let Ok(Some(answer)) = tokio::time::timeout(Duration::from_secs(60), self.answers.recv()).await
        {
            rest.push(answer);
        }
        rest
    }
}

/// PostgreSQL stops under load and comes back: while it is down every post is answered 503 (promptly,
/// not after a hang, never 500); the service recovers without a restart; nothing acknowledged is lost
/// and `verify` passes.
#[actix_web::test]
async fn postgres_restarted_mid_load_answers_503_and_recovers() {
    let Some(pg) = OwnPostgres::start() else { return };
    let (mut settings, _guard) = base_settings(Backend::Sqlite).expect("settings");
    settings.database.url = pg.url();
    let port = free_port();
    let env = [("TANHUI__DATABASE__CONNECT_TIMEOUT_SECS", "2".to_string())];
    let mut server = serve_with(&settings, port, 2, &env);
    let client = Arc::new(Client::register(port).await);
    let mut load = Load::start(&client, 4, 0);

    let mut acknowledged = Vec::new();
    let mut unavailable = 0;
    let mut other = Vec::new();
    let mut record = |i: usize, outcome: Outcome, acknowledged: &mut Vec<(usize, Value)>| match outcome {
        Outcome::Acknowledged(body) => acknowledged.push((i, body)),
        Outcome::Status(503, _) => unavailable += 1,
        o => other.push((i, o)),
    };
    while acknowledged.len() < 40 {
        let (i, _, _, outcome) = load.next(Duration::from_secs(30)).await;
        record(i, outcome, &mut acknowledged);
    }
    pg.stop();
    let stopped_at = Instant::now();
    // Down for a few seconds under constant posts.
    while stopped_at.elapsed() < Duration::from_secs(4) {
        let (i, _, _, outcome) = load.next(Duration::from_secs(30)).await;
        record(i, outcome, &mut acknowledged);
    }
    let before_restart = acknowledged.len();
    pg.resume();
    let resumed_at = Instant::now();
    // It recovers by itself: posts are acknowledged again.
    while acknowledged.len() < before_restart + 40 {
        assert!(
            resumed_at.elapsed() < Duration::from_secs(60),
            "no recovery within a minute"
        );
        let (i, _, _, outcome) = load.next(Duration::from_secs(30)).await;
        record(i, outcome, &mut acknowledged);
    }
    for (i, _, _, outcome) in load.finish().await {
        record(i, outcome, &mut acknowledged);
    }
    assert!(unavailable > 0, "no post was refused while PostgreSQL was down");
    assert!(other.is_empty(), "answers other than 201 and 503: {other:?}");

    client.assert_nothing_acknowledged_lost(&acknowledged).await;
    let _ = server.kill();
    server.wait().unwrap();
    verify(&pg.url());
}

/// The group-commit window of the SIGTERM test: long, so that the signal finds requests in an open group.
const WINDOW_MS: u64 = 1000;

/// SIGTERM under load: the requests in flight when it comes are answered (nothing is cut off, nothing
/// half-written), the process exits cleanly, and every acknowledged event is there after a restart.
async fn sigterm_under_load(backend: Backend) {
    let Some((settings, _guard)) = base_settings(backend) else {
        return;
    };
    let port = free_port();
    let mut server = serve_with(&settings, port, WINDOW_MS, &[]);
    let client = Arc::new(Client::register(port).await);
    let mut load = Load::start(&client, 16, 0);
    let mut answers = Vec::new();
    let signalled_at = loop {
        let answer = load.next(Duration::from_secs(30)).await;
        answers.push(answer);
        let acknowledged = answers
            .iter()
            .filter(|a| matches!(a.3, Outcome::Acknowledged(_)))
            .count();
        // Requests that have waited long enough to be inside the server, not on their way to it: a good
        // part of the window (on a loaded machine a request can take tens of milliseconds to be written
        // to its connection, and one written as the server closes an idle connection is never read).
        let waiting: Vec<usize> = (load.in_flight.lock().unwrap().iter())
            .filter(|(_, sent)| sent.elapsed() > Duration::from_millis(WINDOW_MS * 2 / 5))
            .map(|(i, _)| *i)
            .collect();
        if acknowledged >= 30 && waiting.len() >= 3 {
            signal(&server, libc::SIGTERM);
            break (Instant::now(), waiting);
        }
    };
    answers.extend(load.finish().await);
    let status = server.wait().unwrap();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
    let (at, waiting) = signalled_at;
    for (i, sent, answered, outcome) in &answers {
        if waiting.contains(i) {
            assert!(
                matches!(outcome, Outcome::Acknowledged(_)),
                "event {i}, in flight at the signal, was not finished: {outcome:?}"
            );
        } else if *answered < at || *sent < at {
            assert!(
                matches!(outcome, Outcome::Acknowledged(_) | Outcome::NoAnswer(_)),
                "event {i}: {outcome:?}"
            );
        }
    }
    let acknowledged: Vec<(usize, Value)> = answers
        .into_iter()
        .filter_map(|(i, _, _, o)| match o {
            Outcome::Acknowledged(body) => Some((i, body)),
            _ => None,
        })
        .collect();
    let mut server = serve_with(&settings, port, 2, &[]);
    let http = reqwest::Client::new();
    wait_ready(&http, &client.base).await;
    client.assert_nothing_acknowledged_lost(&acknowledged).await;
    let _ = server.kill();
    server.wait().unwrap();
    verify(&settings.database.url);
}

#[actix_web::test]
async fn sigterm_under_load_finishes_what_is_in_flight_sqlite() {
    sigterm_under_load(Backend::Sqlite).await
}

#[actix_web::test]
async fn sigterm_under_load_finishes_what_is_in_flight_postgres() {
    sigterm_under_load(Backend::Postgres).await
}

/// A small filesystem of the test's own (a tmpfs), unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        if unsafe { libc::geteuid() } != 0 {
            unavailable("mounting a tmpfs needs root")?;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size}"))
            .arg("tmpfs")
            .arg(dir.path())
            .output();
        if !mounted.is_ok_and(|o| o.status.success()) {
            unavailable("mount -t tmpfs failed (no CAP_SYS_ADMIN?)")?;
        }
        Some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the filesystem is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).expect("filler");
        let block = vec![0u8; 64 * 1024];
        loop {
            if file.write_all(&block).is_err() {
                break;
            }
        }
        // Down to the last bytes.
        while file.write_all(&[0u8; 512]).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).output();
    }
}

/// SQLite on a full disk: posts answer 503 (never 500), the file is not corrupted, and posts succeed
/// again once there is room.
#[actix_web::test]
async fn sqlite_on_a_full_disk_answers_503_and_recovers() {
    let Some(disk) = SmallDisk::mount("24m") else {
        return;
    };
    let (mut settings, _guard) = base_settings(Backend::Sqlite).expect("settings");
    settings.database.url = format!("sqlite://{}", disk.path().join("tanhui.db").display());
    let port = free_port();
    let mut server = serve_with(&settings, port, 2, &[]);
    let client = Client::register(port).await;
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let (status, body) = client.post_event(i).await.unwrap();
        assert_eq!(status, 201, "{body}");
        acknowledged.push((i, body));
    }
    let filler = disk.fill();
    let mut refused = 0;
    for i in 20..80 {
        match client.post_event(i).await.unwrap() {
            (201, body) => acknowledged.push((i, body)),
            (503, _) => refused += 1,
            (status, body) => panic!("event {i} on a full disk: {status} {body}"),
        }
    }
    assert!(refused > 0, "no post was refused on a full disk");
    std::fs::remove_file(filler).unwrap();
    // Room again: posts are acknowledged, by the same process.
    for i in 80..100 {
        let (status, body) = client.post_event(i).await.unwrap();
        assert_eq!(status, 201, "after the disk was freed: {body}");
        acknowledged.push((i, body));
    }
    client.assert_nothing_acknowledged_lost(&acknowledged).await;
    let _ = server.kill();
    server.wait().unwrap();
    let out = Command::new("sqlite3")
        .arg(disk.path().join("tanhui.db"))
        .arg("PRAGMA integrity_check")
        .output();
    if let Ok(out) = out {
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    }
    verify(&settings.database.url);
}

/// An instance on PostgreSQL (the shared test server) with a Redis of the test's own.
async fn with_own_redis(redis: &OwnRedis) -> Option<TestApp> {
    let url = redis.url();
    spawn_with(Backend::Postgres, move |s| {
        s.redis.url = Some(url);
        // The production bound, which the checks below hold requests to.
        s.redis.command_timeout_ms = 100;
        // The login throttle's limit, reached quickly.
        s.throttle.login_failures_per_phone = 3;
    })
    .await
}

async fn onboard_provider(app: &TestApp) -> Key {
    let admin = app.admin_token().await;
    let r = app
        .post(
            "/api/v1/admin/providers",
            &json!({"name": "深圳地铁", "kind": "transit", "region_codes": ["440300"]}),
            Some(&admin),
        )
        .await;
    Key::from_credentials(r.assert_status(201))
}

fn metro_trip(user_id: &str, id: &str, minutes_ago: i64) -> Value {
    let now = chrono::Utc::now();
    json!({"user_id": user_id, "client_event_id": id, "activity_type": "transit.metro",
        "occurred_at": (now - chrono::Duration::minutes(minutes_ago)).to_rfc3339(),
        "ended_at": (now - chrono::Duration::minutes(minutes_ago - 20)).to_rfc3339(),
        "data": {"distance_m": 10000}})
}

/// What must hold while Redis does not answer, on two instances: posts are credited, readiness says
/// 503, a nonce used on one instance is refused on the other, and password guesses are throttled
/// across both. Each request is timed: none may wait out Redis.
async fn serves_without_redis(app: &TestApp, other: &TestApp, provider: &Key, round: &str) {
    let slowest = Arc::new(Mutex::new(Duration::ZERO));
    let timed = |start: Instant| {
        let mut s = slowest.lock().unwrap();
        *s = (*s).max(start.elapsed());
    };
    for instance in [app, other] {
        let t = Instant::now();
        let r = instance.get("/readyz", None).await;
        timed(t);
        r.assert_problem(503, "not_ready");
        assert_eq!(r.body["redis"], "down");
        assert_eq!(r.body["database"], "ok");
    }
    let (phone, password, user_id, _) = app.register().await;
    let t = Instant::now();
    let token = app.login(&phone, &password).await.assert_status(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    timed(t);
    for (n, instance) in [app, other].into_iter().enumerate() {
        let body = json!({"client_event_id": format!("{round}-{n}"), "activity_type": "transit.metro",
            "evidence": "trace", "occurred_at": (chrono::Utc::now() - chrono::Duration::minutes(n as i64 + 1)).to_rfc3339(),
            "data": {"distance_m": 2000}});
        let t = Instant::now();
        instance.post_activity(&token, &body).await.assert_status(201);
        timed(t);
    }
    // A nonce seen by one instance is refused by the other.
    let signing = provider.fresh();
    let t = Instant::now();
    let trip = metro_trip(&user_id, &format!("{round}-trip"), 90);
    app.send_signed(&signing, "POST", "/api/v1/provider/activities", Some(&trip), &[])
        .await
        .assert_status(201);
    other
        .send_signed(&signing, "POST", "/api/v1/provider/activities", Some(&trip), &[])
        .await
        .assert_problem(401, "nonce_replayed");
    timed(t);
    // Guesses at a password are counted across instances: the fourth is refused, and so is the
    // right password then.
    for n in 0..3 {
        let instance = if n % 2 == 0 { app } else { other };
        instance
            .login(&phone, "wrong password")
            .await
            .assert_problem(401, "invalid_credentials");
    }
    let t = Instant::now();
    other
        .login(&phone, "wrong password")
        .await
        .assert_problem(429, "rate_limited");
    app.login(&phone, &password)
        .await
        .assert_problem(429, "rate_limited");
    timed(t);
    let slowest = *slowest.lock().unwrap();
    // The bound is generous for a busy machine; what it rules out is waiting on Redis (a connect or a
    // command timeout of seconds, or a hang).
    assert!(
        slowest < Duration::from_secs(2),
        "{round}: a request took {slowest:?}"
    );
}

/// Redis stops answering under two instances, first frozen (connections accepted, nothing answered),
/// then gone; when it is back, readiness recovers.
#[actix_web::test]
async fn redis_down_falls_back_to_the_database() {
    let Some(mut redis) = OwnRedis::start() else {
        return;
    };
    let Some(app) = with_own_redis(&redis).await else {
        return;
    };
    let other = crate::helpers::second_instance(&app).await;
    let provider = onboard_provider(&app).await;
    assert!(ready(&app).await, "not ready with Redis up");

    redis.freeze();
    serves_without_redis(&app, &other, &provider, "frozen").await;
    redis.kill();
    serves_without_redis(&app, &other, &provider, "gone").await;

    redis.resume();
    assert!(ready(&app).await, "readiness did not recover with Redis");
}

/// Whether `app` becomes ready within ten seconds.
async fn ready(app: &TestApp) -> bool {
    for _ in 0..100 {
        if app.get("/readyz", None).await.status.as_u16() == 200 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// An instance whose Redis does not answer at start starts anyway and serves as above.
#[actix_web::test]
async fn an_instance_starts_while_redis_is_unreachable() {
    let Some(redis) = OwnRedis::absent() else { return };
    let Some(app) = with_own_redis(&redis).await else {
        return;
    };
    let other = crate::helpers::second_instance(&app).await;
    let provider = onboard_provider(&app).await;
    serves_without_redis(&app, &other, &provider, "never").await;
}
