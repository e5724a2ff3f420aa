//! Spawns the real application on a free port against a fresh database, and talks to it over HTTP.

use std::sync::OnceLock;

use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;
use tanhui::clock::{Clock, ClockControl};
use tanhui::config::Settings;
use tanhui::startup::Application;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The password of every administrator the tests create.
pub const ADMIN_PASSWORD: &str = "admin passphrase";

pub const TEST_JWT_SECRET: &str = "test-only-secret-0123456789abcdef0123456789";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// For tests that write through the stores directly.
    pub state: actix_web::web::Data<tanhui::state::AppState>,
    pub settings: Settings,
    /// Moves this instance's clock forward (time keeps flowing from there).
    pub clock: ClockControl,
    _database: DatabaseGuard,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// The fields a validation problem names, in order.
    pub fn error_fields(&self) -> Vec<&str> {
        self.body["errors"]
            .as_array()
            .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
            .unwrap_or_default()
    }

    /// The problem's `code`, for error answers.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "body: {}",
            self.text
        );
        assert_eq!(self.code(), code, "body: {}", self.text);
        assert_eq!(self.body["status"].as_u64(), Some(status as u64));
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        &self.body
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Resp {
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body read");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Resp {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    /// An activity posted by the user's own app.
    pub async fn post_activity(&self, token: &str, body: &Value) -> Resp {
        self.post("/api/v1/activities", body, Some(token)).await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>, token: Option<&str>) -> Resp {
        let mut request = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    /// Registers an individual in Shenzhen with a fresh phone; returns (phone, password, user_id, account_id).
    pub async fn register(&self) -> (String, String, String, String) {
        let phone = random_phone();
        let password = "correct horse battery".to_string();
        let r = self
            .post(
                "/api/v1/auth/register",
                &serde_json::json!({
                    "phone": phone, "password": password, "display_name": "测试用户",
                    "account_type": "individual", "region_code": "440300"
                }),
                None,
            )
            .await;
        let body = r.assert_status(201).clone();
        (
            phone,
            password,
            body["user_id"].as_str().unwrap().to_string(),
            body["account_id"].as_str().unwrap().to_string(),
        )
    }

    pub async fn login(&self, phone: &str, password: &str) -> Resp {
        self.post(
            "/api/v1/auth/login",
            &serde_json::json!({"phone": phone, "password": password}),
            None,
        )
        .await
    }

    /// Creates a national administrator directly through the service (as `tanhui admin create` does) and
    /// signs in.
    pub async fn admin_token(&self) -> String {
        self.administrator("CN").await.1
    }

    /// Creates an administrator governing `region` (and everything under it), as
    /// `tanhui admin create --governs` does; returns its user id and a token.
    pub async fn administrator(&self, region: &str) -> (i64, String) {
        let (phone, user_id) = self.administrator_account(region).await;
        (user_id, self.token_of(&phone, ADMIN_PASSWORD).await)
    }

    /// As [`TestApp::administrator`], without signing in: its phone and user id (the password is
    /// [`ADMIN_PASSWORD`]), for a test that signs in some other way, such as through a browser.
    pub async fn administrator_account(&self, region: &str) -> (String, i64) {
        let phone = random_phone();
        let state = self.state.clone();
        let stored_phone = phone.clone();
        let governs = region.to_string();
        let user_id = actix_web::web::block(move || {
            let reg = tanhui::accounts::validate::validate(tanhui::accounts::validate::RegisterRequest {
                phone: stored_phone,
                password: ADMIN_PASSWORD.into(),
                display_name: "Admin".into(),
                account_type: tanhui::accounts::validate::AccountType::Individual,
                region_code: "CN".into(),
                credit_code: None,
            })
            .unwrap();
            let hash = state.passwords.hash(&reg.password).unwrap();
            let mut conn = state.db.get().unwrap();
            tanhui::accounts::service::register(
                &mut conn,
                &state.secrets,
                state.clock.now(),
                &reg,
                &hash,
                Some(&governs),
            )
            .unwrap()
            .user_id
        })
        .await
        .unwrap();
        (phone, user_id)
    }

    /// Issues points to a wallet straight through the ledger service (as an earned activity would).
    pub async fn grant(&self, account_id: &str, points: i64) {
        let account: i64 = account_id.parse().unwrap();
        let now = self.state.clock.now_naive();
        self.with_conn(move |conn| {
            tanhui::ledger::service::issue(
                conn,
                &tanhui::ledger::lots::Origin::plain("440300", now + chrono::Duration::days(3650)),
                account,
                points,
                &tanhui::ledger::service::Cause::of("test", "grant"),
                now,
            )
            .unwrap();
        })
        .await
    }

    /// Drafts a methodology version as `maker`; returns its id.
    pub async fn draft(&self, maker: &str, body: &Value) -> String {
        let r = self.post("/api/v1/admin/methodologies", body, Some(maker)).await;
        let created = r.assert_status(201);
        assert_eq!(created["status"], "draft");
        created["id"].as_str().unwrap().to_string()
    }

    /// Drafts a methodology version as `maker` and has `checker` (another administrator) put it in
    /// force; returns its id.
    pub async fn in_force(&self, maker: &str, checker: &str, body: &Value) -> String {
        let id = self.draft(maker, body).await;
        let activate = format!("/api/v1/admin/methodologies/{id}/activate");
        self.post(&activate, &serde_json::json!({}), Some(checker))
            .await
            .assert_status(200);
        id
    }

    /// A type counted in `count` or `units` (no maximum) and created by an administrator, travel or not,
    /// with a version in force: `formula`, with `k` = 1 g a unit when it uses it, and no daily cap.
    pub async fn counted_type(&self, code: &str, formula: &str, travel: bool) {
        let (maker, checker) = (self.admin_token().await, self.admin_token().await);
        let kind = serde_json::json!({"code": code, "name": code, "unit": "unit", "travel": travel,
            "data_schema": {"type": "object", "properties": {"count": {"type": "integer", "minimum": 1},
                                                             "units": {"type": "integer", "minimum": 0}}}});
        self.post("/api/v1/admin/activity-types", &kind, Some(&maker))
            .await
            .assert_status(201);
        let parameters = if formula.contains('k') {
            serde_json::json!({"k": {"value": "1", "unit": "g/unit", "source": "test"}})
        } else {
            serde_json::json!({})
        };
        let version = serde_json::json!({"activity_type": code, "region_code": "CN",
            "effective_from": "2020-01-01T00:00:00+08:00", "formula": formula,
            "parameters": parameters, "citation": "test fixture"});
        self.in_force(&maker, &checker, &version).await;
    }

    /// Waits (at most 5 s) until the replica, when one is configured, has replayed everything the primary
    /// committed so far, whichever instance wrote it: an anonymous read then sees every earlier write.
    /// Anonymous reads go to the replica and are only as fresh as its replay (one instance's own writes
    /// are waited for by the service; another instance's are not).
    pub async fn replica_settled(&self) {
        use diesel::{Connection, RunQueryDsl};
        if self.settings.database.replica_url.is_none() {
            return;
        }
        // The WAL is the cluster's: ask the replica's fixed database, which exists before this test's
        // database has been replayed there.
        let Some(replica_url) = replica_env() else { return };
        #[derive(diesel::QueryableByName)]
        struct Lsn {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            lsn: i64,
        }
        let primary: i64 = self
            .on_primary(|conn| {
                diesel::sql_query("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint AS lsn")
                    .get_result::<Lsn>(conn)
                    .unwrap()
                    .lsn
            })
            .await;
        let mut replica = diesel::PgConnection::establish(&replica_url).expect("replica");
        for _ in 0..500 {
            let replayed = diesel::sql_query(
                "SELECT COALESCE((pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, 0) AS lsn",
            )
            .get_result::<Lsn>(&mut replica)
            .unwrap()
            .lsn;
            if replayed >= primary {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the replica did not replay the primary's writes within 5 s");
    }

    /// `tanhui verify` over the app's database.
    pub async fn verify(&self) -> tanhui::verify::Report {
        let key = self.state.platform_key.public_key_bytes();
        self.with_conn(move |conn| tanhui::verify::verify(conn, &key, |_, _, _| {}).unwrap())
            .await
    }

    /// Runs blocking database work on one of the app's connections. Work done here goes behind the
    /// service's back (the service does not know the WAL position it reached), so the replica is waited
    /// for afterwards: the anonymous reads that follow see it.
    pub async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut tanhui::db::AnyConnection) -> T + Send + 'static,
    ) -> T {
        let out = self.on_primary(f).await;
        self.replica_settled().await;
        out
    }

    pub async fn on_primary<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut tanhui::db::AnyConnection) -> T + Send + 'static,
    ) -> T {
        let db = self.state.db.clone();
        actix_web::web::block(move || f(&mut db.get().unwrap()))
            .await
            .unwrap()
    }

    /// Registers and signs in a new individual; returns (access token, account id).
    pub async fn new_member(&self) -> (String, String) {
        let (phone, password, _, account_id) = self.register().await;
        (self.token_of(&phone, &password).await, account_id)
    }

    /// Registers and signs in a new individual; returns its access token.
    pub async fn new_user_token(&self) -> String {
        let (phone, password, _, _) = self.register().await;
        self.token_of(&phone, &password).await
    }

    /// Signs in; returns the access token.
    pub async fn token_of(&self, phone: &str, password: &str) -> String {
        let r = self.login(phone, password).await;
        r.assert_status(200)["access_token"].as_str().unwrap().to_string()
    }

    /// The wallet balance of the account behind `token`.
    pub async fn balance(&self, token: &str) -> i64 {
        self.get("/api/v1/wallet", Some(token)).await.body["balance"]
            .as_i64()
            .unwrap()
    }

    /// An admin's decision (`approve`, `reject`, …) on the flagged activity `activity_id`.
    pub async fn review(&self, admin: &str, activity_id: &Value, decision: &str, note: &str) -> Resp {
        let path = format!("/api/v1/admin/reviews/{}", activity_id.as_str().unwrap());
        let body = serde_json::json!({"decision": decision, "note": note});
        self.post(&path, &body, Some(admin)).await
    }
}

/// A signing key of a partner or a data provider.
#[derive(Debug, Clone)]
pub struct Key {
    pub key_id: String,
    pub secret: String,
}

impl Key {
    pub fn from_credentials(body: &Value) -> Key {
        Key {
            key_id: body["key_id"].as_str().unwrap().to_string(),
            secret: body["secret"].as_str().unwrap().to_string(),
        }
    }

    /// Signing parameters for a request sent now with a fresh nonce.
    pub fn fresh(&self) -> Signing<'_> {
        self.fresh_at(chrono::Utc::now().timestamp())
    }

    /// Signing parameters for a request sent at `unix_seconds` (a caller whose clock agrees with a moved app clock).
    pub fn fresh_at(&self, unix_seconds: i64) -> Signing<'_> {
        Signing {
            key_id: &self.key_id,
            secret: &self.secret,
            timestamp: unix_seconds,
            nonce: uuid::Uuid::new_v4().to_string(),
        }
    }
}

/// What one signed request is signed with (README, "Partner calls").
pub struct Signing<'a> {
    pub key_id: &'a str,
    pub secret: &'a str,
    pub timestamp: i64,
    pub nonce: String,
}

impl TestApp {
    /// Sends a signed request; `body` None sends an empty body. `headers` are added unsigned.
    pub async fn send_signed(
        &self,
        s: &Signing<'_>,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
        let ts = s.timestamp.to_string();
        let canonical = tanhui::auth::signature::canonical(method, path, &ts, &s.nonce, &bytes);
        let signature = tanhui::auth::signature::sign(s.secret, &canonical);
        let mut request = self
            .client
            .request(method.parse().unwrap(), self.url(path))
            .header("X-Key-Id", s.key_id)
            .header("X-Timestamp", ts)
            .header("X-Nonce", &s.nonce)
            .header("X-Signature", signature);
        if body.is_some() {
            request = request.header("content-type", "application/json").body(bytes);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// `POST /api/v1/transfers` with `body` under `Idempotency-Key: key`.
    pub async fn post_transfer(&self, token: &str, key: &str, body: &Value) -> Resp {
        let request = self
            .client
            .post(self.url("/api/v1/transfers"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body);
        self.send(request).await
    }

    /// A signed request sent now with a fresh nonce.
    pub async fn signed(&self, key: &Key, method: &str, path: &str, body: Option<&Value>) -> Resp {
        // The caller's clock agrees with the app's, also where a test moved it.
        let at = self.clock.clock().unix_seconds();
        self.send_signed(&key.fresh_at(at), method, path, body, &[]).await
    }
}

/// Now, unless the Asia/Shanghai day began less than six hours ago: then the last minute of the day before.
/// Caps count per local day, and the events of one test (up to five hours apart) must share one; posted
/// just after local midnight they used to fall on two days and get two caps. Taken once per run, so a
/// test running across 06:00 local time does not see it move.
pub fn anchor() -> chrono::DateTime<chrono::Utc> {
    static ANCHOR: OnceLock<chrono::DateTime<chrono::Utc>> = OnceLock::new();
    *ANCHOR.get_or_init(first_anchor)
}

fn first_anchor() -> chrono::DateTime<chrono::Utc> {
    use chrono::Timelike;
    let now = chrono::Utc::now();
    let shanghai = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    let into_the_day = i64::from(now.with_timezone(&shanghai).num_seconds_from_midnight());
    if into_the_day < 6 * 3600 {
        now - chrono::Duration::seconds(into_the_day + 60)
    } else {
        now
    }
}

pub fn random_phone() -> String {
    format!("13{:09}", rand::random::<u32>() % 1_000_000_000)
}

/// Settings every test starts from: a free port, cheap argon2, a known JWT secret.
pub fn base_settings(backend: Backend) -> Option<(Settings, DatabaseGuard)> {
    let mut settings = Settings::defaults();
    settings.server.port = 0;
    settings.server.workers = 2;
    settings.database.pool_size = 8;
    settings.auth.argon2_memory_kib = 1024;
    settings.auth.argon2_iterations = 1;
    settings.auth.jwt_secret = Some(TEST_JWT_SECRET.to_string().into());
    // Tests send bursts from one account (races, floods) that are not about rate limits; the tests of the
    // limits set their own.
    settings.throttle.account_write_burst = 100_000;
    settings.throttle.key_request_burst = 100_000;
    let guard = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            settings.database.url = format!("sqlite://{}", dir.path().join("tanhui.db").display());
            DatabaseGuard::Sqlite(dir)
        }
        Backend::Postgres => {
            let (pg_url, redis_url) = postgres_env()?;
            let (url, name) = fresh_postgres_database(&pg_url);
            settings.database.url = url;
            // With a streaming replica of the test server (`.ci/run` starts one), anonymous reads go there.
            settings.database.replica_url = replica_env().map(|replica| with_database(&replica, &name));
            settings.redis.url = Some(redis_url);
            settings.redis.key_prefix = format!("tanhui-test:{}:", uuid::Uuid::new_v4());
            // A test machine busy with builds can take longer than the production bound to answer; a
            // spurious trip would split throttles between Redis and the fallback and fail the tests of
            // the limits. The tests of the fallback (`faults`) set the production bound again.
            settings.redis.command_timeout_ms = 2_000;
            DatabaseGuard::Postgres {
                admin_url: pg_url,
                name,
            }
        }
    };
    Some((settings, guard))
}

/// The PostgreSQL and Redis URLs for the second backend. Under CI=true a missing one is a failure,
/// never a silent skip.
pub fn postgres_env() -> Option<(String, String)> {
    let pg = std::env::var("TANHUI_TEST_DATABASE_URL")
        .ok()
        .filter(|v| !v.is_empty());
    let redis = std::env::var("TANHUI_TEST_REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty());
    match (pg, redis) {
        (Some(pg), Some(redis)) => Some((with_database(&pg, database_name(&pg)), redis)),
        _ if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1") => {
            panic!("CI=true but TANHUI_TEST_DATABASE_URL or TANHUI_TEST_REDIS_URL is not set")
        }
        _ => {
            eprintln!(
                "skipping the PostgreSQL + Redis run: TANHUI_TEST_DATABASE_URL/TANHUI_TEST_REDIS_URL not set"
            );
            None
        }
    }
}

/// `TANHUI_TEST_REPLICA_URL`: a streaming replica of the server of `TANHUI_TEST_DATABASE_URL`.
pub fn replica_env() -> Option<String> {
    std::env::var("TANHUI_TEST_REPLICA_URL")
        .ok()
        .filter(|v| !v.is_empty())
}

pub enum DatabaseGuard {
    /// Owned by another instance.
    None,
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres {
        admin_url: String,
        name: String,
    },
}

impl Drop for DatabaseGuard {
    fn drop(&mut self) {
        if let DatabaseGuard::Postgres { admin_url, name } = self {
            if let Ok(mut conn) = PgConnection::establish(admin_url) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn);
            }
        }
    }
}

/// The URL of database `name` on the server of `url`. TLS is off for these loopback test connections: a
/// test binary exits with pool threads still reconnecting to dropped test databases, and OpenSSL's exit
/// handlers running under them crash the process after every test has passed.
fn with_database(url: &str, name: &str) -> String {
    let url = url.split('?').next().unwrap_or(url);
    let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(url);
    format!("{base}/{name}?sslmode=disable")
}

fn database_name(url: &str) -> &str {
    let url = url.split('?').next().unwrap_or(url);
    url.rsplit_once('/').map(|(_, n)| n).unwrap_or("postgres")
}

/// A database of its own for one test, cloned from a template that holds the migrated schema. The
/// template's name carries a digest of the migrations, so a changed migration builds a new one.
fn fresh_postgres_database(admin_url: &str) -> (String, String) {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    let template = TEMPLATE.get_or_init(|| build_template(admin_url));
    let name = format!("tanhui_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::establish(admin_url).expect("connect to the test PostgreSQL");
    let mut attempts = 0;
    loop {
        match diesel::sql_query(format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""))
            .execute(&mut conn)
        {
            Ok(_) => break,
            Err(e) if attempts < 20 => {
                attempts += 1;
                eprintln!("CREATE DATABASE retry: {e}");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => panic!("cannot create test database: {e}"),
        }
    }
    (with_database(admin_url, &name), name)
}

fn migrations_digest() -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    let mut files: Vec<_> = walk(&root);
    files.sort();
    for f in files {
        hasher.update(f.to_string_lossy().as_bytes());
        hasher.update(std::fs::read(&f).unwrap_or_default());
    }
    hex::encode(&hasher.finalize()[..8])
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn build_template(admin_url: &str) -> String {
    let name = format!("tanhui_tpl_{}", migrations_digest());
    let mut conn = PgConnection::establish(admin_url).expect("connect to the test PostgreSQL");
    // Test processes may run side by side: one builds the template, the others wait for it.
    diesel::sql_query("SELECT pg_advisory_lock(7461686875)")
        .execute(&mut conn)
        .expect("lock");
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let found: Found = diesel::sql_query(format!(
        "SELECT COUNT(*) AS n FROM pg_database WHERE datname = '{name}'"
    ))
    .get_result(&mut conn)
    .expect("query pg_database");
    if found.n == 0 {
        let building = format!("{name}_building");
        diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"))
            .execute(&mut conn)
            .expect("drop stale template");
        diesel::sql_query(format!("CREATE DATABASE \"{building}\""))
            .execute(&mut conn)
            .expect("create template");
        let mut settings = Settings::defaults();
        settings.database.url = with_database(admin_url, &building);
        settings.database.pool_size = 1;
        let db = tanhui::startup::open_database(&settings).expect("migrate template");
        drop(db);
        diesel::sql_query(format!("ALTER DATABASE \"{building}\" RENAME TO \"{name}\""))
            .execute(&mut conn)
            .expect("rename template");
    }
    diesel::sql_query("SELECT pg_advisory_unlock(7461686875)")
        .execute(&mut conn)
        .expect("unlock");
    name
}

/// The time for tests that call the service layer directly, on apps whose clocks they do not move.
pub fn now() -> chrono::NaiveDateTime {
    Clock::system().now_naive()
}

pub async fn spawn(backend: Backend) -> Option<TestApp> {
    spawn_with(backend, |_| {}).await
}

pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    let (mut settings, guard) = base_settings(backend)?;
    adjust(&mut settings);
    Some(start(settings, guard, Clock::shiftable().1).await)
}

/// A second instance on the same database and Redis as `app` (as behind a load balancer).
pub async fn second_instance(app: &TestApp) -> TestApp {
    start(app.settings.clone(), DatabaseGuard::None, app.clock.clone()).await
}

async fn start(settings: Settings, guard: DatabaseGuard, clock: ClockControl) -> TestApp {
    init_test_log();
    let app = Application::build_with_clock(settings.clone(), clock.clock())
        .await
        .expect("application starts");
    let port = app.port();
    let state = app.state();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        state,
        settings,
        clock,
        _database: guard,
    }
}

/// Logs only when TEST_LOG is set, so test output stays readable.
fn init_test_log() {
    if std::env::var("TEST_LOG").is_ok() {
        let mut log = Settings::defaults().log;
        log.level = "debug".into();
        tanhui::telemetry::init(&log);
    }
}

/// [`both_backends!`] for a test that needs settings of its own: `both_backends_with!(name => |s| …);`.
#[macro_export]
macro_rules! both_backends_with {
    ($name:ident => $configure:expr) => {
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                let backend = $crate::helpers::Backend::Sqlite;
                if let Some(app) = $crate::helpers::spawn_with(backend, $configure).await {
                    super::$name(app).await
                }
            }

            #[actix_web::test]
            async fn postgres() {
                let backend = $crate::helpers::Backend::Postgres;
                if let Some(app) = $crate::helpers::spawn_with(backend, $configure).await {
                    super::$name(app).await
                }
            }
        }
    };
}

/// Runs a test body once on SQLite and once on PostgreSQL + Redis (when configured).
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[actix_web::test]
                async fn sqlite() {
                    if let Some(app) = $crate::helpers::spawn($crate::helpers::Backend::Sqlite).await {
                        super::$name(app).await
                    }
                }

                #[actix_web::test]
                async fn postgres() {
                    if let Some(app) = $crate::helpers::spawn($crate::helpers::Backend::Postgres).await {
                        super::$name(app).await
                    }
                }
            }
        )+
    };
}

/// The payload of `token`, checked as an outsider would: its key is the one `/.well-known/jwks.json`
/// names by the header's `kid`, and the signature verifies with that key alone.
pub async fn verified_payload(app: &TestApp, token: &str) -> Result<Value, String> {
    let jwks = app.get("/.well-known/jwks.json", None).await;
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err(format!("not a compact JWS: {token}"));
    };
    use base64::Engine;
    use ed25519_dalek::Verifier;
    use serde_json::json;
    let decode = |part: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|e| e.to_string())
    };
    let header: Value = serde_json::from_slice(&decode(header)?).map_err(|e| e.to_string())?;
    if header["alg"] != "EdDSA" {
        return Err(format!("alg {}", header["alg"]));
    }
    let jwk = jwks.body["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == header["kid"]))
        .ok_or("no key with the header's kid")?;
    assert_eq!((&jwk["kty"], &jwk["crv"]), (&json!("OKP"), &json!("Ed25519")));
    let x: [u8; 32] = decode(jwk["x"].as_str().ok_or("no x")?)?
        .try_into()
        .map_err(|_| "x is not 32 bytes")?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|e| e.to_string())?;
    let signature = ed25519_dalek::Signature::from_slice(&decode(signature)?).map_err(|e| e.to_string())?;
    let signing_input = &token[..token.rfind('.').unwrap()];
    key.verify(signing_input.as_bytes(), &signature)
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&decode(payload)?).map_err(|e| e.to_string())
}
