//! End to end in headless Chromium through chromedriver (W3C WebDriver over HTTP): a customer
//! types a question from the knowledge base in the web chat, sees a cited answer stream in,
//! presses "Talk to a person" and sees the status change.

use crate::helpers::*;
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::{Duration, Instant};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    http: reqwest::Client,
    base: String,
    session: String,
    process: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Driver {
    async fn start() -> Driver {
        let chromedriver = std::env::var("CONCIERGE_CHROMEDRIVER")
            .unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chromium =
            std::env::var("CONCIERGE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let process = tokio::process::Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {chromedriver}: {e} (install Debian's chromium-driver)")
            });
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let res: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("session")
            .json()
            .await
            .expect("json");
        let session = res["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {res}"))
            .to_string();
        Driver {
            http,
            base,
            session,
            process,
            _profile: profile,
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{}", self.base, self.session, path);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res: Value = req
            .send()
            .await
            .expect("webdriver")
            .json()
            .await
            .expect("json");
        res["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn find_all(&self, css: &str) -> Vec<String> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(e) = self.find_all(css).await.into_iter().next() {
                return e;
            }
            assert!(Instant::now() < deadline, "no element {css}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn text(&self, element: &str) -> String {
        self.cmd(
            reqwest::Method::GET,
            &format!("/element/{element}/text"),
            None,
        )
        .await
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    async fn attribute(&self, element: &str, name: &str) -> Option<String> {
        self.cmd(
            reqwest::Method::GET,
            &format!("/element/{element}/attribute/{name}"),
            None,
        )
        .await
        .as_str()
        .map(str::to_string)
    }

    async fn type_into(&self, element: &str, text: &str) {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn click(&self, element: &str) {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Polls until `check` returns Some.
    async fn wait_for<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn quit(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        let _ = self.process.kill().await;
    }
}

#[tokio::test]
#[cfg_attr(
    not(concierge_browser_tests),
    ignore = "set CONCIERGE_BROWSER_TESTS=1 (needs Debian's chromium and chromium-driver)"
)]
async fn web_chat_answers_with_citations_and_hands_off_to_a_person() {
    let app = TestApp::spawn().await;
    let driver = Driver::start().await;
    driver.goto(&app.url("/")).await;

    let input = driver.find("#message-input").await;
    driver
        .type_into(&input, "How do I reset my password?")
        .await;
    let send = driver.find("#send-button").await;
    driver.click(&send).await;

    let answer = driver
        .wait_for("a cited AI answer", || async {
            for m in driver.find_all(".message--ai").await {
                let text = driver.text(&m).await;
                if text.contains("Forgot password") {
                    return Some(text);
                }
            }
            None
        })
        .await;
    assert!(
        answer.contains("Follow the link in the email within 30 minutes"),
        "{answer}"
    );
    let link = driver.find(".message--ai .citations a").await;
    assert_eq!(
        driver.attribute(&link, "href").await.as_deref(),
        Some("https://help.example.test/reset-password")
    );
    assert!(driver.text(&link).await.contains("Reset your password"));

    let handoff = driver.find("#handoff-button").await;
    driver.click(&handoff).await;
    let status = driver.find("#status").await;
    driver
        .wait_for("status pending_human", || async {
            (driver.attribute(&status, "data-status").await.as_deref() == Some("pending_human"))
                .then_some(())
        })
        .await;
    driver
        .wait_for("the handoff notice", || async {
            for m in driver.find_all(".message--system").await {
                if driver.text(&m).await.contains("person") {
                    return Some(());
                }
            }
            None
        })
        .await;
    driver.quit().await;
}

impl Driver {
    /// Waits until `css` matches an element whose text contains `needle`; returns the count of
    /// such elements.
    async fn wait_text(&self, css: &str, needle: &str, at_least: usize) {
        self.wait_for(&format!("{at_least}× {needle:?} in {css}"), || async {
            let mut n = 0;
            for e in self.find_all(css).await {
                if self.text(&e).await.contains(needle) {
                    n += 1;
                }
            }
            (n >= at_least).then_some(())
        })
        .await;
    }

    async fn wait_attribute(&self, css: &str, name: &str, value: &str) {
        self.wait_for(&format!("{css} [{name}={value}]"), || async {
            let e = self.find_all(css).await.into_iter().next()?;
            (self.attribute(&e, name).await.as_deref() == Some(value)).then_some(())
        })
        .await;
    }
}

/// Two browsers: the customer asks for a person in the web chat; an agent signs in to the
/// console, claims the conversation and replies; the customer sees the reply; the agent hands
/// back; the customer's next question is answered by the AI.
#[tokio::test]
#[cfg_attr(
    not(concierge_browser_tests),
    ignore = "set CONCIERGE_BROWSER_TESTS=1 (needs Debian's chromium and chromium-driver)"
)]
async fn a_person_takes_over_in_the_console_and_hands_back_to_the_ai() {
    let app = TestApp::spawn().await;
    app.setup_people().await;
    let (customer, agent) = tokio::join!(Driver::start(), Driver::start());

    customer.goto(&app.url("/")).await;
    let input = customer.find("#message-input").await;
    customer
        .type_into(&input, "How do I reset my password?")
        .await;
    customer.click(&customer.find("#send-button").await).await;
    customer
        .wait_text(".message--ai", "Forgot password", 1)
        .await;
    customer
        .click(&customer.find("#handoff-button").await)
        .await;
    customer
        .wait_attribute("#status", "data-status", "pending_human")
        .await;

    agent.goto(&app.url("/console")).await;
    let ws = agent.find("#signin-workspace").await;
    agent
        .cmd(
            reqwest::Method::POST,
            &format!("/element/{ws}/clear"),
            Some(json!({})),
        )
        .await;
    agent.type_into(&ws, "default").await;
    agent
        .type_into(&agent.find("#signin-email").await, "ana@example.com")
        .await;
    agent
        .type_into(
            &agent.find("#signin-password").await,
            crate::console::PASSWORD,
        )
        .await;
    agent.click(&agent.find("#signin-submit").await).await;
    agent.wait_text("#me-name", "Ana", 1).await;
    // The queue shows the conversation live; open it and claim it.
    agent.click(&agent.find("#queue .queue-item").await).await;
    agent
        .wait_attribute("#conversation", "data-status", "pending_human")
        .await;
    agent
        .wait_text("#transcript .msg", "reset my password", 1)
        .await;
    agent.click(&agent.find("#claim").await).await;
    agent
        .wait_attribute("#conversation", "data-status", "human_active")
        .await;
    customer
        .wait_attribute("#status", "data-status", "human_active")
        .await;
    let reply = agent.find("#reply-text").await;
    agent
        .type_into(&reply, "Hi, this is Ana. I have sent you a new reset link.")
        .await;
    agent.click(&agent.find("#reply-send").await).await;
    customer
        .wait_text(".message--agent", "I have sent you a new reset link", 1)
        .await;
    customer.wait_text(".message--agent", "Ana", 1).await;

    // Hand back to the AI with a note.
    agent.click(&agent.find("#handback").await).await;
    agent
        .type_into(
            &agent.find("#handback-note").await,
            "Reset link sent; AI can continue.",
        )
        .await;
    agent.click(&agent.find("#handback-confirm").await).await;
    agent
        .wait_attribute("#conversation", "data-status", "ai_active")
        .await;
    customer
        .wait_attribute("#status", "data-status", "ai_active")
        .await;
    let input = customer.find("#message-input").await;
    customer
        .type_into(&input, "Thanks! And how do I reset my password on the app?")
        .await;
    customer.click(&customer.find("#send-button").await).await;
    customer
        .wait_text(".message--ai", "Forgot password", 2)
        .await;

    // The customer marks it solved and rates it; the outcome report counts both.
    customer
        .click(&customer.find("#resolve-button").await)
        .await;
    customer
        .wait_attribute("#status", "data-status", "resolved")
        .await;
    customer
        .click(&customer.find(".rating__star[data-rating='5']").await)
        .await;
    customer.wait_text("#rating-label", "Thank you", 1).await;
    let report: Value = app
        .get("/v1/analytics/outcomes", Some(&app.api_key))
        .await
        .json()
        .await
        .expect("report");
    assert_eq!(report["total"]["resolved_after_handoff"], 1, "{report}");
    assert_eq!(report["total"]["rating_mean"], 5.0, "{report}");
    customer.quit().await;
    agent.quit().await;
}
