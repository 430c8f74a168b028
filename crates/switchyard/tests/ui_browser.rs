//! The console in a real browser: Debian's `chromium` driven through
//! `chromedriver` (WebDriver, with fantoccini) against the real server on
//! port 0. Each test starts its own chromedriver on a free port.
//!
//! Without chromium and chromedriver on PATH these tests say so and pass,
//! unless `SWITCHYARD_REQUIRE_BROWSER=1` (CI sets it): then they fail.
//! Screenshots of every page go to `target/ui-screenshots/`.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use support::TestApp;

const TOKEN: &str = "browser-token-of-ana";
const CONTACT: &str = "5511987650001";

/// One browser at a time: two chromiums on two cores make every step slow.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|path| path.is_file()))
}

struct Browser {
    client: Client,
    driver: Child,
}

impl Browser {
    /// A headless chromium, or `None` (after saying why) when it is not installed and not required.
    async fn start() -> Option<Browser> {
        let (Some(chromium), Some(chromedriver)) = (on_path("chromium"), on_path("chromedriver")) else {
            let message = "chromium and chromedriver are not on PATH (apt-get install chromium chromium-driver)";
            assert!(std::env::var("SWITCHYARD_REQUIRE_BROWSER").as_deref() != Ok("1"), "SWITCHYARD_REQUIRE_BROWSER=1 but {message}");
            eprintln!("skipping the browser test: {message}");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(chromedriver).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let http = support::http();
        support::wait_until(|| async { http.get(format!("{url}/status")).send().await.is_ok_and(|response| response.status() == 200) }).await;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1600", "--lang=en-US"],
                "prefs": {"intl.accept_languages": "en-US,en"},
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("a chromium session");
        Some(Browser { client, driver })
    }

    async fn stop(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }

    /// The page's text; empty while a navigation has no body yet.
    async fn body_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap_or_else(|err| panic!("{css}: {err}"));
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|err| panic!("{css}: {err}")).click().await.unwrap();
    }

    /// Waits until the page's text contains `text` (pages load after a click).
    async fn wait_text(&self, text: &str) -> String {
        for _ in 0..100 {
            let body = self.body_text().await;
            if body.contains(text) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the page never said {text:?}; it says:\n{}", self.body_text().await);
    }

    async fn sign_in(&self, base: &str, token: &str) {
        self.client.goto(&format!("{base}/ui/login")).await.unwrap();
        self.fill("#token", token).await;
        self.click("form[action='/ui/login'] button[type=submit]").await;
    }

    /// Saves a screenshot of the current page as `name.png`, and fails when
    /// the page is blank or shows an error.
    async fn screenshot(&self, name: &str) {
        let text = self.body_text().await;
        assert!(text.trim().len() > 80, "{name}: the page is (nearly) blank: {text:?}");
        let errors = self.client.find_all(Locator::Css(".error")).await.unwrap();
        assert!(errors.is_empty(), "{name}: the page shows an error: {text}");
        let png = self.client.screenshot().await.unwrap();
        assert!(png.len() > 10_000, "{name}: a {}-byte screenshot is a blank page", png.len());
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Form controls without a label (`<label for>`, a wrapping label, or `aria-label`).
    async fn unlabelled_controls(&self) -> Vec<String> {
        let script = r#"
            return Array.from(document.querySelectorAll('input, select, textarea'))
              .filter(el => el.type !== 'hidden' && el.type !== 'submit')
              .filter(el => !(el.id && document.querySelector('label[for="' + el.id + '"]')) && !el.closest('label') && !el.getAttribute('aria-label'))
              .map(el => el.outerHTML);
        "#;
        serde_json::from_value(self.client.execute(script, vec![]).await.unwrap()).unwrap()
    }

    /// Elements coloured better/worse/tripped whose text has no word or shape saying so.
    async fn colour_only_cues(&self) -> (usize, Vec<String>) {
        let script = r#"
            const cued = Array.from(document.querySelectorAll('.better, .worse, .tripped, .armed, .up, .down'));
            const words = /[▲▼⚠✓●]|better|worse|melhor|pior|tripped|armed|open|closed|aberto|fechado/i;
            return [cued.length, cued.filter(el => !words.test(el.innerText)).map(el => el.outerHTML)];
        "#;
        let value = self.client.execute(script, vec![]).await.unwrap();
        (value[0].as_u64().unwrap() as usize, serde_json::from_value(value[1].clone()).unwrap())
    }
}

async fn console() -> (TestApp, String) {
    console_on(&support::fresh_db()).await
}

async fn console_on(db: &str) -> (TestApp, String) {
    let evolution = support::StandIn::start().await;
    let app = TestApp::spawn_with(db, &evolution, |config| {
        config.console_bind = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.admin_tokens = vec![("ana".to_owned(), TOKEN.to_owned())];
    })
    .await;
    let base = format!("http://{}", app.server.console_addr.expect("the console listens"));
    (app, base)
}

fn cli(args: &[&str], db: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_switchyard")).args(args).env("DATABASE_URL", db).env_remove("FLOW_VERSION_OVERRIDES").stdin(Stdio::null()).output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// A store where an experiment ran: simulated customers on a guarded split
/// of digital_certificate, v2 handing off far more, and the guard evaluated
/// (so it really tripped); then a pin on billing, a live session, and an
/// open WhatsApp connection.
async fn seeded() -> (TestApp, String) {
    let db = support::fresh_db();
    cli(&["rollout", "split", "digital_certificate", "v1=50,v2=50", "--guard", "handoff", "--guard-min-sessions", "100", "--reason", "try v2"], &db);
    cli(&["simulate", "--contacts", "400", "--behave", "v1:human=0.05", "--behave", "v2:human=0.4", "--json"], &db);
    cli(&["rollout", "check-guards"], &db);
    let (app, base) = console_on(&db).await;
    let (status, _) = app
        .put_admin("/api/rollout/billing", json!({"rules": {"pins": [{"contact": "5511900000001", "version": "v2"}]}, "reason": "testers on v2"}), TOKEN)
        .await;
    assert_eq!(status, 200);
    let (status, _) = app.webhook(&support::upsert("BROWSER0001", CONTACT, "oi", 1_764_750_000)).await;
    assert_eq!(status, 200);
    app.wait_idle().await;
    let connection = json!({"event": "connection.update", "instance": "loja-bot", "data": {"instance": "loja-bot", "state": "open", "statusReason": 200}});
    assert_eq!(app.webhook(&connection).await.0, 200);
    (app, base)
}

async fn explain(app: &TestApp, flow: &str, contact: &str) -> Value {
    app.get_admin(&format!("/api/explain?flow={flow}&contact={contact}"), TOKEN).await.1
}

#[tokio::test]
async fn sign_in_refuses_a_wrong_token_and_accepts_the_right_one() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(browser) = Browser::start().await else { return };
    let (app, base) = console().await;
    browser.client.goto(&format!("{base}/ui")).await.unwrap();
    assert!(browser.client.current_url().await.unwrap().path().ends_with("/ui/login"), "signed out: the overview sends to the sign-in");
    browser.sign_in(&base, "not-the-token").await;
    browser.wait_text("Wrong token").await;
    assert!(browser.client.find_all(Locator::Css("form.signout")).await.unwrap().is_empty());
    browser.sign_in(&base, TOKEN).await;
    browser.wait_text("Signed in as ana").await;
    assert_eq!(browser.client.current_url().await.unwrap().path(), "/ui");
    browser.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn the_overview_shows_the_seeded_flows_versions_rules_and_a_guard_that_tripped() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(browser) = Browser::start().await else { return };
    let (app, base) = seeded().await;
    browser.sign_in(&base, TOKEN).await;
    let text = browser.wait_text("Overview").await;
    for expected in ["billing", "digital_certificate", "general_support", "v3", "1 pinned contacts → v2", "v1 100% · v2 0%", "testers on v2", "guard_rollback"] {
        assert!(text.contains(expected), "{expected:?} missing from the overview:\n{text}");
    }
    let guard = browser.client.find(Locator::Css("section[aria-labelledby='flow-digital_certificate'] .guard .tripped")).await.unwrap().text().await.unwrap();
    assert!(guard.contains("⚠ TRIPPED") && guard.contains("handoff"), "{guard}");
    browser.client.goto(&format!("{base}/ui/health")).await.unwrap();
    let health = browser.wait_text("Split guards").await;
    assert!(health.contains("digital_certificate: ⚠ TRIPPED"), "{health}");
    browser.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_split_through_the_form_changes_what_explain_returns_and_the_audit_names_the_token() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(browser) = Browser::start().await else { return };
    let (app, base) = console().await;
    assert_eq!(explain(&app, "billing", CONTACT).await["version"], "v1", "billing's active version before the split");
    browser.sign_in(&base, TOKEN).await;
    browser.wait_text("Signed in as ana").await;
    browser.client.goto(&format!("{base}/ui/flows/billing/steer")).await.unwrap();
    browser.fill("#split-weights", "v1=0,v2=100").await;
    browser.fill("#split-reason", "all of billing on v2 for the launch").await;
    browser.click("#form-split button[type=submit]").await;
    let confirm = browser.wait_text("For new sessions").await;
    assert!(confirm.contains("New sessions are split v1 0% · v2 100%"), "{confirm}");
    browser.screenshot("confirm").await;
    browser.click("#apply").await;
    browser.wait_text("Applied: Split on billing").await;
    // Every process follows the stored policy within a poll.
    support::wait_until(|| async { explain(&app, "billing", CONTACT).await["version"] == "v2" }).await;
    let explained = explain(&app, "billing", CONTACT).await;
    assert_eq!(explained["reason"], "split", "{explained}");
    let (_, audit) = app.get_admin("/api/audit?flow=billing", TOKEN).await;
    let last = audit.as_array().unwrap().last().unwrap();
    assert_eq!((last["actor"].as_str(), last["action"].as_str()), (Some("ana"), Some("split")), "{last}");
    assert_eq!(last["reason"], "all of billing on v2 for the launch");
    browser.stop().await;
    app.stop().await;
}

/// A page on another origin whose form posts to the console's split.
async fn evil_site(console: &str) -> String {
    let page = format!(
        r#"<!doctype html><html><body><h1>Win a prize</h1>
        <form method="post" action="{console}/ui/flows/billing/steer/split/apply">
          <input type="hidden" name="csrf" value="guessed">
          <input type="hidden" name="weights" value="v1=0,v2=100">
          <input type="hidden" name="reason" value="not you">
          <button id="go" type="submit">Claim</button>
        </form></body></html>"#
    );
    let router = axum::Router::new().route("/", axum::routing::get(move || async move { axum::response::Html(page) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/")
}

#[tokio::test]
async fn a_cross_site_form_post_is_refused() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(browser) = Browser::start().await else { return };
    let (app, base) = console().await;
    browser.sign_in(&base, TOKEN).await;
    browser.wait_text("Signed in as ana").await;
    browser.client.goto(&evil_site(&base).await).await.unwrap();
    browser.click("#go").await;
    browser.wait_text("CSRF check failed").await;
    let (_, rules) = app.get_admin("/api/rollout", TOKEN).await;
    assert!(rules["flows"].get("billing").is_none(), "nothing changed: {rules}");
    assert_eq!(explain(&app, "billing", CONTACT).await["version"], "v1");
    browser.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn every_page_has_a_screenshot_labelled_forms_and_cues_beyond_colour() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(browser) = Browser::start().await else { return };
    let (app, base) = seeded().await;
    browser.client.goto(&format!("{base}/ui/login")).await.unwrap();
    browser.screenshot("login").await;
    assert!(browser.unlabelled_controls().await.is_empty());
    browser.sign_in(&base, TOKEN).await;
    browser.wait_text("Signed in as ana").await;
    let mut cues = 0;
    for (name, path) in [
        ("overview", "/ui".to_owned()),
        ("flow", "/ui/flows/digital_certificate?window=30d".to_owned()),
        ("health", "/ui/health".to_owned()),
        ("steer", "/ui/flows/billing/steer".to_owned()),
        ("sessions", "/ui/sessions".to_owned()),
    ] {
        browser.client.goto(&format!("{base}{path}")).await.unwrap();
        browser.screenshot(name).await;
        let unlabelled = browser.unlabelled_controls().await;
        assert!(unlabelled.is_empty(), "{name}: controls without a label: {unlabelled:#?}");
        let (count, colour_only) = browser.colour_only_cues().await;
        assert!(colour_only.is_empty(), "{name}: colour is the only cue in {colour_only:#?}");
        cues += count;
    }
    assert!(cues >= 5, "the seeded pages show the guard, the A/B differences and the connection ({cues} cues)");
    // The language switch in the header: Portuguese, remembered across pages.
    browser.client.goto(&format!("{base}/ui")).await.unwrap();
    browser.click("header a.lang").await;
    browser.wait_text("Visão geral").await;
    browser.screenshot("overview-pt-BR").await;
    browser.client.goto(&format!("{base}/ui/health")).await.unwrap();
    browser.wait_text("Fila de saída").await;
    browser.click("header a.lang").await;
    browser.wait_text("Outbox").await;
    // The experiment on the flow page: whiskers per metric, v2 worse on handoffs, the verdict, the sample-ratio check, funnels.
    browser.client.goto(&format!("{base}/ui/flows/digital_certificate?window=30d")).await.unwrap();
    let flow = browser.wait_text("Verdict").await;
    // After the guard's rollback the split's weights (100/0) did not assign these
    // sessions: the check says it was not made rather than raising a false alarm.
    assert!(flow.contains("Handoff: ▼ worse") && flow.contains("Sample-ratio check") && flow.contains("Not checked: there is no split, or its guard rolled it back"), "{flow}");
    assert!(!flow.contains("MISMATCH"), "{flow}");
    assert_eq!(browser.client.find_all(Locator::Css("svg.whiskers")).await.unwrap().len(), 4);
    assert!(browser.client.find_all(Locator::Css("svg.funnel")).await.unwrap().len() >= 2);
    // htmx loaded under the console's CSP, and the custom window goes through it (the URL follows).
    assert_eq!(browser.client.execute("return typeof htmx", vec![]).await.unwrap(), json!("object"));
    browser.fill("#since", "2026-01-01").await;
    browser.click("form.window button[type=submit]").await;
    support::wait_until(|| async { browser.client.current_url().await.unwrap().query().is_some_and(|query| query.contains("window=custom")) }).await;
    assert!(browser.body_text().await.contains("Verdict"), "the swapped page still shows the comparison");
    // A contact's sessions, found through the form: shown masked.
    browser.client.goto(&format!("{base}/ui/sessions")).await.unwrap();
    browser.fill("#find-contact", CONTACT).await;
    browser.click("form[action='/ui/sessions'] button[type=submit]").await;
    let found = browser.wait_text("End this session").await;
    assert!(!found.contains(CONTACT), "the number is masked on the page");
    browser.screenshot("sessions-found").await;
    assert!(browser.unlabelled_controls().await.is_empty());
    browser.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn the_health_page_shows_a_dropped_connection_and_releases_a_held_contact_with_its_button() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(browser) = Browser::start().await else { return };
    let (app, base) = console().await;
    let held = "5511987650009";
    assert_eq!(app.webhook(&support::upsert("BROWSERH01", held, "atendente", 1_764_750_000)).await.0, 200);
    app.wait_idle().await;
    support::wait_until(|| async { app.count("SELECT COUNT(*) FROM handoffs").await == 1 }).await;
    let connection = json!({"event": "connection.update", "instance": "loja-bot", "data": {"instance": "loja-bot", "state": "close", "statusReason": 401}});
    assert_eq!(app.webhook(&connection).await.0, 200);

    browser.sign_in(&base, TOKEN).await;
    browser.wait_text("Signed in as ana").await;
    browser.client.goto(&format!("{base}/ui/health")).await.unwrap();
    let page = browser.wait_text("⚠ close").await;
    assert!(page.contains("5511*******09") && !page.contains(held), "the held contact is listed masked: {page}");
    assert!(page.contains("Contacts on hold: 1") && page.contains("handed over by the bot"), "{page}");
    browser.screenshot("health-on-hold").await;
    assert!(browser.unlabelled_controls().await.is_empty());
    let (cues, colour_only) = browser.colour_only_cues().await;
    assert!(cues >= 1 && colour_only.is_empty(), "the dropped connection has a shape cue: {colour_only:#?}");

    browser.click("tr.hold form[action='/ui/health/release'] button[type=submit]").await;
    let released = browser.wait_text("Released: the bot answers 5511*******09 again").await;
    assert!(released.contains("Nobody is on human hold."), "{released}");
    browser.screenshot("health-released").await;
    let (_, audit) = app.get_admin("/api/audit", TOKEN).await;
    let last = audit.as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["actor"].as_str(), last["action"].as_str()), (Some("ana"), Some("release")), "{last}");
    browser.stop().await;
    app.stop().await;
}
