//! A real headless Chromium, driven through chromedriver, for the pages' end-to-end tests.
//!
//! [`Browser::start`] launches chromedriver on a free port and opens a session; without chromedriver the
//! test is skipped with a message, unless CI=true, where that is a failure (as for PostgreSQL).
//! `TANHUI_CHROMEDRIVER` and `TANHUI_CHROMIUM` name other binaries than Debian's.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// The size of the browser's viewport.
#[derive(Debug, Clone, Copy)]
pub enum Viewport {
    /// A desktop window, `width` × `height` CSS pixels.
    Desktop { width: u32, height: u32 },
    /// A phone: Chromium's mobile emulation at `width` × `height` CSS pixels and a device pixel ratio of 2.
    Phone { width: u32, height: u32 },
}

pub struct Browser {
    pub client: Client,
    driver: Child,
    driver_url: String,
    downloads: tempfile::TempDir,
}

impl Browser {
    /// A desktop browser, 1280 × 900.
    pub async fn start() -> Option<Browser> {
        Browser::start_with(Viewport::Desktop {
            width: 1280,
            height: 900,
        })
        .await
    }

    pub async fn start_with(viewport: Viewport) -> Option<Browser> {
        let driver_path = chromedriver()?;
        let port = free_port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_path.display()));
        let driver_url = format!("http://127.0.0.1:{port}");
        let downloads = tempfile::tempdir().expect("download directory");
        // Owned from here, so chromedriver is stopped even if the session cannot be opened.
        let browser = Browser {
            client: connect(&driver_url, capabilities(viewport, downloads.path())).await,
            driver,
            driver_url,
            downloads,
        };
        if let Viewport::Desktop { width, height } = viewport {
            browser
                .client
                .set_window_size(width, height)
                .await
                .expect("window size");
        }
        Some(browser)
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Waits (up to 20 s) until `script`, a JavaScript expression, is truthy.
    pub async fn wait_until(&self, script: &str) {
        let body = format!("return Boolean({script});");
        for _ in 0..200 {
            let ready = self.client.execute(&body, vec![]).await.expect("execute");
            if ready == Value::Bool(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let errors = self.console_errors().await;
        panic!("timed out waiting for `{script}`; console errors: {errors:?}");
    }

    /// The value of `script`, a JavaScript expression, in the page.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(&format!("return ({script});"), vec![])
            .await
            .expect("execute")
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .click()
            .await
            .expect("click");
    }

    /// The severe messages of the browser's console since the last call (script errors, failed loads,
    /// Content-Security-Policy violations).
    pub async fn console_errors(&self) -> Vec<String> {
        let session = self
            .client
            .session_id()
            .await
            .expect("session id")
            .expect("a session");
        // chromedriver's log endpoint; W3C WebDriver has none.
        let url = format!("{}/session/{session}/se/log", self.driver_url);
        let answer: Value = reqwest::Client::new()
            .post(url)
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .expect("log request")
            .json()
            .await
            .expect("log answer");
        answer["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    pub async fn assert_no_console_errors(&self) {
        let errors = self.console_errors().await;
        assert!(errors.is_empty(), "console errors: {errors:#?}");
    }

    /// Waits (up to 20 s) for a finished download named `name` and returns its bytes.
    pub async fn download(&self, name: &str) -> Vec<u8> {
        let path = self.downloads.path().join(name);
        for _ in 0..200 {
            if let Ok(bytes) = std::fs::read(&path) {
                return bytes;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no download {name} in {}", self.downloads.path().display());
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.client.screenshot().await.expect("screenshot")
    }

    /// Ends the session and chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.stop_driver();
    }

    fn stop_driver(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.stop_driver();
    }
}

/// chromedriver, or None (skip) when it is missing outside CI.
fn chromedriver() -> Option<PathBuf> {
    let path = std::env::var_os("TANHUI_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"));
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1") {
        panic!(
            "CI=true but {} is missing (apt-get install chromium chromium-driver)",
            path.display()
        );
    }
    eprintln!("skipping the browser test: {} is missing", path.display());
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn capabilities(viewport: Viewport, downloads: &Path) -> serde_json::Map<String, Value> {
    let chromium = std::env::var("TANHUI_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let mut options = json!({
        "binary": chromium,
        // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--lang=zh-CN", "--no-first-run", "--disable-extensions"],
        "prefs": {
            "download.default_directory": downloads.display().to_string(),
            "download.prompt_for_download": false,
        },
    });
    if let Viewport::Phone { width, height } = viewport {
        options["mobileEmulation"] = json!({
            "deviceMetrics": {"width": width, "height": height, "pixelRatio": 2.0, "mobile": true, "touch": true},
        });
    }
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": options,
        "goog:loggingPrefs": {"browser": "ALL"},
    });
    match capabilities {
        Value::Object(map) => map,
        _ => unreachable!("an object literal"),
    }
}

/// Opens a session once chromedriver listens (it takes a moment to start).
async fn connect(driver_url: &str, capabilities: serde_json::Map<String, Value>) -> Client {
    let address = driver_url.trim_start_matches("http://");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(driver_url)
        .await
        .unwrap_or_else(|e| panic!("cannot open a chromedriver session at {driver_url}: {e}"))
}
