//! The console over plain HTTP (no browser): it is off without admin tokens,
//! sign-in and its cookie, the wrong-token rate limit, CSRF and origin
//! checks, a steering change end to end, and the language choice. The real
//! server on port 0, its console on a port of its own.

mod support;

use std::net::SocketAddr;

use support::TestApp;

const TOKEN: &str = "console-token-of-ana";

async fn console(tokens: bool) -> (TestApp, String) {
    let app = TestApp::spawn_configured(|config| {
        config.console_bind = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        if tokens {
            config.admin_tokens = vec![("ana".to_owned(), TOKEN.to_owned())];
        }
    })
    .await;
    let base = format!("http://{}", app.server.console_addr.expect("the console listens"));
    (app, base)
}

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn sign_in(http: &reqwest::Client, base: &str, token: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = http.post(format!("{base}/ui/login")).form(&[("token", token)]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// Signs in; returns the `name=value` cookie and the CSRF token of the session.
async fn session(http: &reqwest::Client, base: &str) -> (String, String) {
    let response = sign_in(http, base, TOKEN, &[]).await;
    assert_eq!(response.status(), 303);
    let set = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = http.get(format!("{base}/ui/health")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).expect("a form with a CSRF token").split('"').next().unwrap().to_owned();
    (cookie, csrf)
}

#[tokio::test]
async fn without_admin_tokens_the_console_is_off_and_says_so() {
    let (app, base) = console(false).await;
    let http = client();
    for path in ["/ui/login", "/ui", "/ui/health"] {
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 503, "{path}");
        assert!(response.text().await.unwrap().contains("The console is off: set ADMIN_TOKENS"), "{path}");
    }
    assert_eq!(sign_in(&http, &base, "anything", &[]).await.status(), 503);
    app.stop().await;
}

#[tokio::test]
async fn sign_in_refuses_a_wrong_token_and_gives_a_strict_http_only_cookie_for_the_right_one() {
    let (app, base) = console(true).await;
    let http = client();
    let unsigned = http.get(format!("{base}/ui")).send().await.unwrap();
    assert_eq!((unsigned.status().as_u16(), unsigned.headers()["location"].to_str().unwrap()), (303, "/ui/login"));

    let wrong = sign_in(&http, &base, "not-the-token", &[]).await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    assert!(wrong.text().await.unwrap().contains("Wrong token"));

    let right = sign_in(&http, &base, TOKEN, &[]).await;
    assert_eq!(right.status(), 303);
    let cookie = right.headers()["set-cookie"].to_str().unwrap().to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: no Secure flag ({cookie})");
    assert!(!cookie.contains(TOKEN), "the token itself never goes into the cookie");
    let behind_tls = sign_in(&http, &base, TOKEN, &[("x-forwarded-proto", "https")]).await;
    assert!(behind_tls.headers()["set-cookie"].to_str().unwrap().contains("; Secure"));

    let pair = cookie.split(';').next().unwrap();
    let overview = http.get(format!("{base}/ui")).header("cookie", pair).send().await.unwrap();
    assert_eq!(overview.status(), 200);
    assert!(overview.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    let body = overview.text().await.unwrap();
    assert!(body.contains("digital_certificate") && body.contains("billing") && body.contains("Signed in as <strong>ana</strong>"), "{body}");
    let forged = format!("{}x", pair);
    assert_eq!(http.get(format!("{base}/ui")).header("cookie", forged).send().await.unwrap().status(), 303, "a tampered cookie signs no one in");
    app.stop().await;
}

#[tokio::test]
async fn wrong_tokens_are_rate_limited_even_when_the_right_one_follows() {
    let (app, base) = console(true).await;
    let http = client();
    for attempt in 0..switchyard::ui::auth::MAX_FAILURES {
        assert_eq!(sign_in(&http, &base, &format!("guess-{attempt}"), &[]).await.status(), 401);
    }
    let blocked = sign_in(&http, &base, TOKEN, &[]).await;
    assert_eq!(blocked.status(), 429);
    let wait: u64 = blocked.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait > 0 && wait <= switchyard::ui::auth::WINDOW.as_secs());
    assert!(blocked.text().await.unwrap().contains("Too many wrong tokens"));
    app.stop().await;
}

fn split_form(csrf: &str) -> Vec<(&str, &str)> {
    vec![("csrf", csrf), ("weights", "v1=50,v2=50"), ("salt", ""), ("memory_days", "0"), ("guard", "completion"), ("guard_min_sessions", "50"), ("guard_tolerance", "2"), ("guard_confidence", "0.95"), ("reason", "try v2 on half")]
}

#[tokio::test]
async fn a_form_without_the_csrf_token_or_from_another_origin_changes_nothing() {
    let (app, base) = console(true).await;
    let http = client();
    let (cookie, csrf) = session(&http, &base).await;
    let apply = format!("{base}/ui/flows/billing/steer/split/apply");

    let no_token = http.post(&apply).header("cookie", &cookie).form(&split_form("")).send().await.unwrap();
    assert_eq!(no_token.status(), 403);
    assert!(no_token.text().await.unwrap().contains("CSRF check failed"));
    let cross_site = http.post(&apply).header("cookie", &cookie).header("origin", "http://evil.example").form(&split_form(&csrf)).send().await.unwrap();
    assert_eq!(cross_site.status(), 403);
    let (_, rules) = app.get_admin("/api/rollout", TOKEN).await;
    assert!(rules["flows"].get("billing").is_none(), "nothing changed: {rules}");

    // The same form from the console's own page goes through, audited as the token's name.
    let origin = base.clone();
    let applied = http.post(&apply).header("cookie", &cookie).header("origin", origin).form(&split_form(&csrf)).send().await.unwrap();
    assert_eq!(applied.status(), 303);
    let location = applied.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/ui/flows/billing/steer?applied=split&seq="), "{location}");
    let (_, audit) = app.get_admin("/api/audit?flow=billing", TOKEN).await;
    let last = audit.as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["actor"].as_str(), last["action"].as_str(), last["reason"].as_str()), (Some("ana"), Some("split"), Some("try v2 on half")));
    let notice = http.get(format!("{base}{location}")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(notice.contains("Applied: Split on billing"), "{notice}");
    app.stop().await;
}

#[tokio::test]
async fn the_confirmation_says_what_changes_and_refuses_a_change_without_a_reason() {
    let (app, base) = console(true).await;
    let http = client();
    let (cookie, csrf) = session(&http, &base).await;
    let confirm = format!("{base}/ui/flows/billing/steer/split/confirm");
    let page = http.post(&confirm).header("cookie", &cookie).form(&split_form(&csrf)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    assert!(body.contains("New sessions are split v1 50% · v2 50%"), "{body}");
    assert!(body.contains("A guard rolls the candidate back when its completion rate is significantly worse"));
    assert!(body.contains("No live sessions: nothing else changes."));
    assert!(body.contains(r#"name="weights" value="v1=50,v2=50""#), "the confirm button sends the same fields");
    let mut no_reason = split_form(&csrf);
    no_reason.retain(|(name, _)| *name != "reason");
    let refused = http.post(&confirm).header("cookie", &cookie).form(&no_reason).send().await.unwrap();
    assert_eq!(refused.status(), 422);
    no_reason.push(("reason", "   "));
    let refused = http.post(&confirm).header("cookie", &cookie).form(&no_reason).send().await.unwrap();
    assert_eq!(refused.status(), 422, "blanks are no reason");
    let bad_weights = [("csrf", csrf.as_str()), ("weights", "v1=70,v2=20"), ("reason", "x")];
    let refused = http.post(&confirm).header("cookie", &cookie).form(&bad_weights).send().await.unwrap();
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("sum to 90, not 100"));
    let (_, rules) = app.get_admin("/api/rollout", TOKEN).await;
    assert!(rules["flows"].get("billing").is_none(), "a confirmation page changes nothing");
    app.stop().await;
}

#[tokio::test]
async fn pages_follow_accept_language_and_the_switch() {
    let (app, base) = console(true).await;
    let http = client();
    let (cookie, _) = session(&http, &base).await;
    let get = |path: &str, lang: Option<&str>, extra_cookie: Option<&str>| {
        let mut request = http.get(format!("{base}{path}")).header("cookie", extra_cookie.map_or(cookie.clone(), |extra| format!("{cookie}; {extra}")));
        if let Some(lang) = lang {
            request = request.header("accept-language", lang);
        }
        request.send()
    };
    let portuguese = get("/ui/health", Some("pt-BR,pt;q=0.9,en;q=0.5"), None).await.unwrap().text().await.unwrap();
    assert!(portuguese.contains("<html lang=\"pt-BR\">") && portuguese.contains("Saúde") && portuguese.contains("Fila de saída"));
    let english = get("/ui/health", Some("en-US"), None).await.unwrap().text().await.unwrap();
    assert!(english.contains("<html lang=\"en\">") && english.contains("Outbox"));
    let switch = http.get(format!("{base}/ui/lang?to=en&back=/ui/health")).send().await.unwrap();
    assert_eq!(switch.headers()["location"], "/ui/health");
    let lang_cookie = switch.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let switched = get("/ui/health", Some("pt-BR"), Some(&lang_cookie)).await.unwrap().text().await.unwrap();
    assert!(switched.contains("<html lang=\"en\">"), "the switch beats Accept-Language");
    let away = http.get(format!("{base}/ui/lang?to=en&back=https://evil.example/")).send().await.unwrap();
    assert_eq!(away.headers()["location"], "/ui", "no open redirect");
    app.stop().await;
}

#[tokio::test]
async fn every_page_renders_and_the_assets_are_compiled_in() {
    let (app, base) = console(true).await;
    let http = client();
    let (cookie, csrf) = session(&http, &base).await;
    for path in ["/ui", "/ui/flows/digital_certificate", "/ui/flows/digital_certificate?window=7d", "/ui/flows/billing?window=custom&since=2026-01-01", "/ui/flows/billing/steer", "/ui/health", "/ui/sessions"] {
        let response = http.get(format!("{base}{path}")).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("class=\"error\""), "{path}: {body}");
    }
    let bad_window = http.get(format!("{base}/ui/flows/billing?window=1y")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(bad_window.status(), 400);
    assert!(bad_window.text().await.unwrap().contains("1y&#39; must be 24h, 7d, 30d or custom"));
    assert_eq!(http.get(format!("{base}/ui/flows/nope")).header("cookie", &cookie).send().await.unwrap().status(), 404);
    let found = http.post(format!("{base}/ui/sessions")).header("cookie", &cookie).form(&[("csrf", csrf.as_str()), ("contact", "5511987654321")]).send().await.unwrap();
    let found = found.text().await.unwrap();
    assert!(found.contains("No sessions for 5511*******21."), "{found}");
    assert!(!found.contains(">5511987654321<"), "the number is shown masked");
    let htmx = http.get(format!("{base}/ui/assets/htmx.min.js")).send().await.unwrap();
    assert_eq!(htmx.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(htmx.text().await.unwrap().starts_with("var htmx="));
    app.stop().await;
}

#[tokio::test]
async fn a_live_session_is_ended_and_the_contact_forgotten_through_the_forms() {
    let (app, base) = console(true).await;
    let http = client();
    let (cookie, csrf) = session(&http, &base).await;
    let number = "5511987650002";
    assert_eq!(app.webhook(&support::upsert("UIHTTP0001", number, "oi", 1_764_750_000)).await.0, 200);
    app.wait_idle().await;
    let post = |path: &str, fields: Vec<(&str, &str)>| http.post(format!("{base}{path}")).header("cookie", &cookie).form(&fields).send();
    let found = post("/ui/sessions", vec![("csrf", &csrf), ("contact", number)]).await.unwrap().text().await.unwrap();
    assert!(found.contains("End this session") && found.contains("5511*******02"), "{found}");
    let ended = post("/ui/sessions/end", vec![("csrf", &csrf), ("contact", number), ("instance", "loja-bot")]).await.unwrap().text().await.unwrap();
    assert!(ended.contains("1 live sessions ended.") && !ended.contains("End this session"), "{ended}");
    let confirm = post("/ui/sessions/forget/confirm", vec![("csrf", &csrf), ("contact", number), ("reason", "ticket 42")]).await.unwrap();
    assert_eq!(confirm.status(), 200);
    let confirm = confirm.text().await.unwrap();
    assert!(confirm.contains("Forget this contact (LGPD): 5511*******02") && confirm.contains("ticket 42"), "{confirm}");
    assert_eq!(post("/ui/sessions/forget", vec![("csrf", &csrf), ("contact", number), ("reason", "")]).await.unwrap().status(), 400, "a reason is required");
    assert_eq!(post("/ui/sessions/forget/confirm", vec![("csrf", &csrf), ("contact", number), ("reason", "  ")]).await.unwrap().status(), 400, "blanks are no reason");
    let forgotten = post("/ui/sessions/forget", vec![("csrf", &csrf), ("contact", number), ("reason", "ticket 42")]).await.unwrap().text().await.unwrap();
    assert!(forgotten.contains("Erased; audit #"), "{forgotten}");
    let after = post("/ui/sessions", vec![("csrf", &csrf), ("contact", number)]).await.unwrap().text().await.unwrap();
    assert!(after.contains("No sessions for 5511*******02."), "erased: {after}");
    app.stop().await;
}

/// The value of the first hidden `name` field after `marker` in a page.
fn hidden_after(page: &str, marker: &str, name: &str) -> String {
    let rest = &page[page.find(marker).unwrap_or_else(|| panic!("{marker} in {page}"))..];
    let pattern = format!("name=\"{name}\" value=\"");
    rest.split(pattern.as_str()).nth(1).unwrap_or_else(|| panic!("a {name} field after {marker}")).split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_health_page_shows_connections_the_outbox_failures_and_holds_and_releases_through_its_form() {
    let (app, base) = console(true).await;
    let http = client();
    let (cookie, csrf) = session(&http, &base).await;
    let page = || async { http.get(format!("{base}/ui/health")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap() };
    assert!(page().await.contains("No connection.update heard yet"));

    // Evolution says the instance dropped (logged out), then that it is back.
    let connection = |state: &str, reason: u16| serde_json::json!({"event": "connection.update", "instance": "loja-bot", "data": {"instance": "loja-bot", "state": state, "statusReason": reason}});
    assert_eq!(app.webhook(&connection("close", 401)).await.0, 200);
    let closed = page().await;
    let row = closed.split("<tr class=\"connection\">").nth(1).expect("a connection row").split("</tr>").next().unwrap().to_owned();
    assert!(row.contains("loja-bot") && row.contains("⚠ close") && row.contains("<td>401</td>") && row.contains("class=\"worse\""), "{row}");
    let (status, bad) = app.webhook(&connection("open\u{1b}[31m", 200)).await;
    assert_eq!(status, 400, "not a state word: {bad}");
    assert!(bad["error"].as_str().unwrap().starts_with("data.state \"open\\u{1b}[31m\" is not a connection state"), "{bad}");
    assert_eq!(app.webhook(&connection("open", 200)).await.0, 200);
    let (status, health) = app.get_admin("/api/health", TOKEN).await;
    assert_eq!(status, 200);
    assert_eq!((health["connections"][0]["instance"].as_str(), health["connections"][0]["state"].as_str(), health["connections"][0]["open"].as_bool()), (Some("loja-bot"), Some("open"), Some(true)), "{health}");
    assert!(page().await.contains("✓ open"));

    // A reply Evolution refuses for good: counted by its reason.
    let refused = "5511987650011";
    app.evolution.reject_number(refused);
    assert_eq!(app.webhook(&support::upsert("UIHEALTH01", refused, "oi", 1_764_750_000)).await.0, 200);
    app.wait_idle().await;
    let failures = page().await;
    let row = failures.split("<tr class=\"failure\">").nth(1).expect("a failure row").split("</tr>").next().unwrap().to_owned();
    let failed = app.count("SELECT COUNT(*) FROM outbox WHERE failed_at IS NOT NULL").await;
    assert!(failed >= 1);
    assert!(row.contains("400: number is not on whatsapp") && row.contains(&format!(">{failed}</td>")), "{failed} failed: {row}");

    // A contact asks for a person: on hold.
    let held = "5511987650012";
    assert_eq!(app.webhook(&support::upsert("UIHEALTH02", held, "atendente", 1_764_750_001)).await.0, 200);
    app.wait_idle().await;
    support::wait_until(|| async { app.count("SELECT COUNT(*) FROM handoffs").await == 1 }).await;

    // Evolution is down: a reply waits; it was queued ten minutes ago.
    app.evolution.fail_with(503);
    assert_eq!(app.webhook(&support::upsert("UIHEALTH03", "5511987650013", "oi", 1_764_750_002)).await.0, 200);
    support::wait_until(|| async { app.count("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL AND attempts > 0").await == 1 }).await;
    sqlx::query("UPDATE outbox SET created_at = created_at - 600000 WHERE sent_at IS NULL AND failed_at IS NULL").execute(app.pool()).await.unwrap();
    let waiting = page().await;
    let depth = app.count("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL").await;
    assert!(depth >= 1 && waiting.contains(&format!("<span class=\"outbox-depth\">{depth}</span>")), "{depth} waiting: {waiting}");
    assert!(waiting.contains("<span class=\"oldest-unsent-age\">waiting for 10 min</span>"), "{waiting}");
    let (_, health) = app.get_admin("/api/health", TOKEN).await;
    assert!((600..660).contains(&health["oldest_unsent_age_secs"].as_u64().unwrap()), "{health}");
    assert_eq!((health["send_failures"][0]["reason"].as_str(), health["send_failures"][0]["count"].as_i64()), (Some("400: number is not on whatsapp"), Some(failed)));
    assert_eq!((health["on_hold"].as_u64(), health["holds"][0]["contact_masked"].as_str()), (Some(1), Some("5511*******12")), "{health}");
    assert!(!health.to_string().contains(held), "the API shows the held contact masked: {health}");

    // The held contact's row and its release button.
    assert!(waiting.contains("<span class=\"holds-count\">1</span>") && waiting.contains("Oldest hold"), "{waiting}");
    let hold_row = waiting.split("<tr class=\"hold\">").nth(1).expect("a hold row").split("</tr>").next().unwrap().to_owned();
    assert!(hold_row.contains("5511*******12") && hold_row.contains("handed over by the bot"), "{hold_row}");
    let contact = hidden_after(&waiting, "<tr class=\"hold\">", "contact");
    let instance = hidden_after(&waiting, "<tr class=\"hold\">", "instance");
    assert_eq!((contact.as_str(), instance.as_str()), (held, "loja-bot"));
    let release = format!("{base}/ui/health/release");
    let fields = |csrf: &str| vec![("csrf", csrf.to_owned()), ("instance", instance.clone()), ("contact", contact.clone())];
    let forged = http.post(&release).header("cookie", &cookie).form(&fields("not-the-token")).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    assert!(forged.text().await.unwrap().contains("CSRF check failed"));
    let cross_site = http.post(&release).header("cookie", &cookie).header("origin", "http://evil.example").form(&fields(&csrf)).send().await.unwrap();
    assert_eq!(cross_site.status(), 403);
    assert_eq!(app.count("SELECT COUNT(*) FROM handoffs").await, 1, "refused forms change nothing");

    let released = http.post(&release).header("cookie", &cookie).header("origin", base.clone()).form(&fields(&csrf)).send().await.unwrap();
    assert_eq!(released.status(), 200);
    let released = released.text().await.unwrap();
    assert!(released.contains("Released: the bot answers 5511*******12 again (audit #"), "{released}");
    assert!(released.contains("Nobody is on human hold.") && released.contains("<span class=\"holds-count\">0</span>"), "{released}");
    let (_, audit) = app.get_admin("/api/audit", TOKEN).await;
    let last = audit.as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["actor"].as_str(), last["action"].as_str(), last["reason"].as_str()), (Some("ana"), Some("release"), Some("released from the console")), "{last}");
    assert_eq!(app.scalar("SELECT ended_by FROM holds").await, "release");
    let again = http.post(&release).header("cookie", &cookie).form(&fields(&csrf)).send().await.unwrap().text().await.unwrap();
    assert!(again.contains("5511*******12 was not on hold."), "{again}");
    app.evolution.recover();
    app.stop().await;
}

#[test]
fn a_bad_console_bind_address_is_refused_in_one_line() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("EVOLUTION_URL", "http://127.0.0.1:1")
        .env("CONSOLE_BIND_ADDR", "localhost-8081")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    let line = err.lines().find(|line| line.contains("CONSOLE_BIND_ADDR")).unwrap_or_default();
    assert!(line.contains("CONSOLE_BIND_ADDR 'localhost-8081' must be an address and port such as 127.0.0.1:8081, or off"), "{err}");
}

#[tokio::test]
async fn holds_made_by_simulate_show_their_cause_and_start_on_the_health_page() {
    // Three simulated customers ask for a person: `simulate` hands each over.
    let db = support::fresh_db();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["simulate", "--json", "--contacts", "3", "--behave", "v1:human=1"])
        .env("DATABASE_URL", &db)
        .env_remove("FLOW_VERSION_OVERRIDES")
        .env_remove("HANDOFF_TTL")
        .env_remove("SESSION_TTL")
        .output()
        .expect("run simulate");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let handoffs = summary["versions"][0]["handoff"].as_u64();
    assert_eq!(handoffs, Some(3), "{summary}");

    let evolution = support::StandIn::start().await;
    let app = TestApp::spawn_with(&db, &evolution, |config| {
        config.console_bind = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.admin_tokens = vec![("ana".to_owned(), TOKEN.to_owned())];
    })
    .await;
    let (status, health) = app.get_admin("/api/health", TOKEN).await;
    assert_eq!((status, health["on_hold"].as_u64()), (200, Some(3)), "{health}");
    assert!(health["oldest_hold"].is_string(), "the oldest hold's start is known: {health}");
    for hold in health["holds"].as_array().unwrap() {
        assert_eq!(hold["cause"].as_str(), Some("handoff"), "{hold}");
        let since = hold["since"].as_str().unwrap_or_else(|| panic!("no start time: {hold}"));
        assert!(since < hold["until"].as_str().unwrap(), "{hold}");
    }

    let base = format!("http://{}", app.server.console_addr.expect("the console listens"));
    let http = client();
    let (cookie, _) = session(&http, &base).await;
    let page = http.get(format!("{base}/ui/health")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    let rows: Vec<&str> = page.split("<tr class=\"hold\">").skip(1).map(|row| row.split("</tr>").next().unwrap()).collect();
    assert_eq!(rows.len(), 3, "{page}");
    for row in rows {
        let cells: Vec<&str> = row.split("<td>").skip(1).map(|cell| cell.split("</td>").next().unwrap()).collect();
        assert!(cells[2].contains("handed over by the bot") && !cells[3].trim().is_empty(), "cause and start shown: {row}");
    }
    app.stop().await;
}
