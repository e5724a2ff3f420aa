//! A headless Chromium driven over WebDriver (chromedriver), for tests that need a real browser: the
//! console's and the dashboard's pages, their scripts, their Content-Security-Policy.
//!
//! Plain HTTP + JSON with the client the tests already use, so no driver crate is needed. Without
//! `chromedriver` a test is skipped, unless `CI` is set (CI installs Chromium, so there it fails).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a wait for something to appear lasts before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    base: String,
    /// The window's starting size, in pixels.
    size: (u32, u32),
    _profile: tempfile::TempDir,
}

/// An element of the page, as the driver names it.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver takes its browser down with it.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// A fresh headless browser with its own profile, `width` × `height` pixels; `None` (skip) when
    /// chromedriver is absent outside CI.
    pub async fn start(width: u32, height: u32) -> Option<Browser> {
        if !Path::new(CHROMEDRIVER).exists() {
            assert!(
                std::env::var("CI").is_err(),
                "CI needs {CHROMEDRIVER} (Debian's chromium-driver)"
            );
            eprintln!("skipped: no {CHROMEDRIVER}");
            return None;
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(started.elapsed() < PATIENCE, "chromedriver did not answer");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-extensions", "--lang=zh-CN",
                format!("--window-size={width},{height}"),
                format!("--user-data-dir={}", profile.path().display()),
            ]},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let r = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        let session = body["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {body}"))
            .to_string();
        Some(Browser {
            driver,
            http,
            session,
            base,
            size: (width, height),
            _profile: profile,
        })
    }

    /// A command's value, or the driver's refusal (a stale element, say) as its JSON.
    async fn try_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        if status.is_success() {
            Ok(body["value"].clone())
        } else {
            Err(body)
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_command(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.command(reqwest::Method::GET, path, None).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and answers its return value.
    pub async fn script(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// The elements matching a CSS selector now.
    pub async fn all(&self, css: &str) -> Vec<Element> {
        let found = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await;
        found
            .as_array()
            .unwrap_or_else(|| panic!("no elements list for {css}: {found}"))
            .iter()
            .map(|e| {
                Element(
                    e[ELEMENT]
                        .as_str()
                        .unwrap_or_else(|| panic!("not an element: {e}"))
                        .to_string(),
                )
            })
            .collect()
    }

    /// The first visible element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        self.eventually(css, |_| true).await
    }

    /// The first visible element matching `css` whose text contains `text`, waiting for it.
    pub async fn find_text(&self, css: &str, text: &str) -> Element {
        self.eventually(&format!("{css} ⟨{text}⟩"), |t| t.contains(text))
            .await
    }

    async fn eventually(&self, what: &str, accept: impl Fn(&str) -> bool) -> Element {
        let css = what.split(" ⟨").next().unwrap();
        let started = Instant::now();
        loop {
            for e in self.all(css).await {
                // The page may replace an element between the look-up and these reads: a stale element
                // is one more reason to look again.
                let (shown, text) = (
                    format!("/element/{}/displayed", e.0),
                    format!("/element/{}/text", e.0),
                );
                if self.try_command(reqwest::Method::GET, &shown, None).await != Ok(json!(true)) {
                    continue;
                }
                let text = self.try_command(reqwest::Method::GET, &text, None).await;
                if text.is_ok_and(|t| accept(t.as_str().unwrap_or_default())) {
                    return e;
                }
            }
            assert!(
                started.elapsed() < PATIENCE,
                "nothing shown matches {what}; page text: {}",
                self.page_text().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn page_text(&self) -> String {
        self.script("return document.body.innerText", json!([]))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn text(&self, e: &Element) -> String {
        self.get(&format!("/element/{}/text", e.0))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn attribute(&self, e: &Element, name: &str) -> Option<String> {
        self.get(&format!("/element/{}/attribute/{name}", e.0))
            .await
            .as_str()
            .map(str::to_string)
    }

    pub async fn click(&self, e: &Element) {
        self.post(&format!("/element/{}/click", e.0), json!({})).await;
    }

    /// Types into a field, replacing what it held (keystrokes, so the page sees `input` events).
    pub async fn type_into(&self, e: &Element, text: &str) {
        self.post(&format!("/element/{}/clear", e.0), json!({})).await;
        self.post(&format!("/element/{}/value", e.0), json!({"text": text}))
            .await;
    }

    /// Presses keys on whatever has the focus (`\u{E004}` is Tab, `\u{E007}` Enter).
    pub async fn keys(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|k| {
                [
                    json!({"type": "keyDown", "value": k.to_string()}),
                    json!({"type": "keyUp", "value": k.to_string()}),
                ]
            })
            .collect();
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await;
    }

    /// The `id` of the element that has the focus.
    pub async fn focused_id(&self) -> String {
        self.script(
            "return document.activeElement && document.activeElement.id",
            json!([]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Saves a PNG of the whole page (the window grows to the page's height first).
    pub async fn screenshot(&self, path: &Path) {
        // Back to the starting size first, so a short page is not drawn in the last tall window.
        self.post(
            "/window/rect",
            json!({"width": self.size.0, "height": self.size.1}),
        )
        .await;
        let height = self
            .script(
                "return Math.min(4000, document.documentElement.scrollHeight)",
                json!([]),
            )
            .await
            .as_u64()
            .unwrap_or(900);
        let height = (height + 120).max(u64::from(self.size.1));
        self.post("/window/rect", json!({"width": self.size.0, "height": height}))
            .await;
        let png = self.get("/screenshot").await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// What the page logged as an error or a warning since the last call (CSP violations and uncaught
    /// exceptions land here). A refused request the test provoked is logged too; the caller filters.
    pub async fn console_problems(&self) -> Vec<String> {
        let entries = self.post("/se/log", json!({"type": "browser"})).await;
        entries
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| matches!(e["level"].as_str(), Some("SEVERE" | "WARNING")))
                    .map(|e| e["message"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Where screenshots go: `docs/screenshots/` of the repository.
pub fn screenshot_path(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/screenshots")
        .join(name)
}
