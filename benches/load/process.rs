//! The service under load as an operator runs it: the release binary, `tanhui serve`, in a process of
//! its own, configured through `TANHUI__…` variables. The resident memory the bench reports is then one
//! instance's alone; the load generator's own is printed beside it.
//!
//! `TANHUI_BENCH_SERVICE_BIN` names another build's binary to put under the same load instead of this
//! one's, so that a change is measured against the build before it in one sitting (`benches/against.sh`).

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tanhui::config::Settings;

/// How long a fresh database's migrations and the first start may take.
const START_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Service {
    child: Child,
    pub base: String,
}

impl Service {
    /// Starts `tanhui serve` with `settings` on a free port and waits until it accepts connections.
    pub fn start(settings: &Settings) -> Service {
        let port = free_port();
        let other = std::env::var("TANHUI_BENCH_SERVICE_BIN")
            .ok()
            .filter(|b| !b.is_empty());
        let mut command = Command::new(other.as_deref().unwrap_or(env!("CARGO_BIN_EXE_tanhui")));
        // Another build reads its defaults from its own tree's `config/`, as that build's `cargo run` would.
        if let Some(tree) = other.as_deref().and_then(tree_of) {
            command.current_dir(tree);
        }
        // Only the settings given here: variables of the caller's shell would make the service differ
        // from the settings the bench's own database helpers use.
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("TANHUI")) {
            command.env_remove(name);
        }
        let mut child = command
            .arg("serve")
            .envs(environment(settings, port))
            .stdout(Stdio::null())
            .spawn()
            .expect("start tanhui serve");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait().expect("service status") {
                panic!("tanhui serve exited at start: {status}");
            }
            assert!(started.elapsed() < START_TIMEOUT, "tanhui serve did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Service {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The source tree a binary was built in: the nearest folder above it with `config/default.toml`.
fn tree_of(binary: &str) -> Option<&Path> {
    Path::new(binary)
        .ancestors()
        .find(|dir| dir.join("config/default.toml").is_file())
}

/// A port nobody listens on now (the service binds it a moment later).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("free port");
    listener.local_addr().expect("port").port()
}

/// The settings the bench changes from the defaults, as the variables the service reads them from.
fn environment(s: &Settings, port: u16) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        ("TANHUI__SERVER__PORT", port.to_string()),
        ("TANHUI__LOG__LEVEL", s.log.level.clone()),
        ("TANHUI__DATABASE__URL", s.database.url.clone()),
        ("TANHUI__DATABASE__POOL_SIZE", s.database.pool_size.to_string()),
        (
            "TANHUI__AUTH__ARGON2_MEMORY_KIB",
            s.auth.argon2_memory_kib.to_string(),
        ),
        (
            "TANHUI__AUTH__ARGON2_ITERATIONS",
            s.auth.argon2_iterations.to_string(),
        ),
        (
            "TANHUI__THROTTLE__LOGIN_FAILURES_PER_ADDRESS",
            s.throttle.login_failures_per_address.to_string(),
        ),
        (
            "TANHUI__THROTTLE__ACCOUNT_WRITES_PER_SEC",
            s.throttle.account_writes_per_sec.to_string(),
        ),
        (
            "TANHUI__THROTTLE__ACCOUNT_WRITE_BURST",
            s.throttle.account_write_burst.to_string(),
        ),
        (
            "TANHUI__THROTTLE__KEY_REQUESTS_PER_SEC",
            s.throttle.key_requests_per_sec.to_string(),
        ),
        (
            "TANHUI__THROTTLE__KEY_REQUEST_BURST",
            s.throttle.key_request_burst.to_string(),
        ),
        (
            "TANHUI__LEDGER__SEAL_MAX_TRANSFERS",
            s.ledger.seal_max_transfers.to_string(),
        ),
        ("TANHUI__ACTIVITIES__WRITERS", s.activities.writers.to_string()),
        ("TANHUI__REDIS__KEY_PREFIX", s.redis.key_prefix.clone()),
    ];
    if let Some(url) = &s.redis.url {
        vars.push(("TANHUI__REDIS__URL", url.clone()));
    }
    vars
}
