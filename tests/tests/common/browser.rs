//! Headless Chromium driven through ChromeDriver's W3C WebDriver API
//! (<https://www.w3.org/TR/webdriver2/>), over plain HTTP: Debian's
//! `chromium` and `chromium-driver`, which `scripts/test` installs. The
//! driver is stopped when the browser is dropped, even when a test fails.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::web as http;

/// The element key of WebDriver's element references.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    profile: std::path::PathBuf,
}

fn program(var: &str, default: &str) -> String {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: run scripts/test (it installs Debian's chromium and chromium-driver), or apt-get install chromium chromium-driver, or set {var}"
    );
    path
}

impl Browser {
    /// Start ChromeDriver on a free port and a headless Chromium session.
    pub fn start() -> Self {
        let driver_path = program("TASK_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = program("TASK_TEST_CHROMIUM", "/usr/bin/chromium");
        let port = super::free_port();
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let profile = std::env::temp_dir().join(format!("task-tests-chromium-{}", uuid::Uuid::new_v4().simple()));
        let mut browser = Browser { driver, base, session: String::new(), profile };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "chromedriver did not listen within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        // The flags this machine's closed network needs (no background connections).
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", browser.profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {"binary": chromium, "args": args}}}});
        let answer = http::post(&format!("{}/session", browser.base), &[], &caps.to_string());
        assert_eq!(answer.status, 200, "new session: {}", answer.body);
        browser.session = answer.json()["value"]["sessionId"].as_str().expect("a session id").to_owned();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let answer = http::request(method, &url, &[], body.map(|b| b.to_string()).as_deref());
        assert_eq!(answer.status, 200, "{method} {path}: {}", answer.body);
        answer.json()["value"].clone()
    }

    /// Open `url`.
    pub fn open(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url})));
    }

    /// Run `script` in the page; its value.
    pub fn run(&self, script: &str) -> Value {
        self.call("POST", "/execute/sync", Some(json!({"script": script, "args": []})))
    }

    /// The element references matching `css`, now.
    fn find_all(&self, css: &str) -> Vec<String> {
        let found = self.call("POST", "/elements", Some(json!({"using": "css selector", "value": css})));
        found.as_array().into_iter().flatten().filter_map(|e| e[ELEMENT].as_str().map(str::to_owned)).collect()
    }

    /// The text of each element matching `css`, now (an element the page
    /// replaced between the find and the read is left out).
    pub fn texts(&self, css: &str) -> Vec<String> {
        self.find_all(css)
            .iter()
            .filter_map(|e| {
                let url = format!("{}/session/{}/element/{e}/text", self.base, self.session);
                let a = http::get(&url, &[]);
                (a.status == 200).then(|| a.json()["value"].as_str().unwrap_or_default().to_owned())
            })
            .collect()
    }

    /// Wait (at most `limit`) until the text of the first element matching
    /// `css` satisfies `ok`; that text. The page re-renders every 2 s, so
    /// this reads again rather than holding an element.
    pub fn wait_text(&self, css: &str, limit: Duration, ok: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        let mut last = None;
        while started.elapsed() < limit {
            if let Some(t) = self.texts(css).into_iter().next() {
                if ok(&t) {
                    return t;
                }
                last = Some(t);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let page = self.run("return document.body.innerText;");
        let matching = self.run(&format!("return document.querySelectorAll({}).length;", Value::String(css.to_owned())));
        let found = self.find_all(css).len();
        panic!("`{css}` did not read as expected within {limit:?}; last read {last:?} ({matching} in the page, {found} found by the driver); the page:\n{page}");
    }

    /// Click the first element matching `css` (found again each try, since the page re-renders).
    pub fn click(&self, css: &str) {
        let started = Instant::now();
        loop {
            if let Some(e) = self.find_all(css).first() {
                let url = format!("{}/session/{}/element/{e}/click", self.base, self.session);
                if http::post(&url, &[], "{}").status == 200 {
                    return;
                }
            }
            assert!(started.elapsed() < Duration::from_secs(20), "could not click `{css}`");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A PNG of the window.
    pub fn screenshot(&self) -> Vec<u8> {
        base64(self.call("GET", "/screenshot", None).as_str().expect("base64"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http::request("DELETE", &format!("{}/session/{}", self.base, self.session), &[], None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Standard base64, decoded.
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
