//! What a hostile or careless world does to `serve` (issue 13): blank
//! secrets, bodies before authentication, stalled clients, too many
//! connections, odd instance names, over-long message ids, `/metrics`.
//! Everything runs through the real server on loopback; configuration
//! through the real binary.

mod support;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::json;
use support::{fresh_db, upsert, ServeProcess, StandIn, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Runs the binary with only `env` (plus PATH) in a fresh working directory.
fn switchyard(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = std::env::temp_dir().join(format!("switchyard-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command
        .args(args)
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", fresh_db())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run switchyard")
}

/// Every secret or token variable.
const SECRETS: &[&str] = &[
    "WEBHOOK_SECRET",
    "WEBHOOK_SECRETS",
    "WEBHOOK_JWT_KEY",
    "ADMIN_TOKEN",
    "ADMIN_TOKENS",
    "EVOLUTION_API_KEY",
    "EVOLUTION_INSTANCE_KEYS",
    "LLM_API_KEY",
    "METRICS_TOKEN",
];

#[test]
fn a_secret_set_but_blank_is_named_by_check_and_refused_by_serve() {
    for name in SECRETS {
        for blank in ["", "   ", "\t"] {
            let output = switchyard(&["check"], &[("EVOLUTION_URL", "http://127.0.0.1:1"), (name, blank)]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "check with {name}={blank:?}: {stderr}");
            assert!(stderr.contains(&format!("{name} is set but blank")), "check names {name}: {stderr}");
        }
        // Without EVOLUTION_URL too: a blank secret is wrong whatever runs.
        let output = switchyard(&["check"], &[(name, " ")]);
        assert_eq!(output.status.code(), Some(1), "check without EVOLUTION_URL, {name} blank");
    }
    // serve refuses at once, before it listens, with the problem on one line.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    for name in ["WEBHOOK_SECRET", "WEBHOOK_JWT_KEY", "ADMIN_TOKEN", "LLM_API_KEY"] {
        let output = switchyard(&["serve"], &[("EVOLUTION_URL", "http://127.0.0.1:1"), ("BIND_ADDR", &bind), (name, "  ")]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "serve with {name} blank: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|line| line.contains(name)).collect();
        assert_eq!(lines, [format!("error: {name} is set but blank: a blank secret protects nothing; give it a value or unset it")], "{stderr}");
    }
    // The same variables with a value are fine.
    let output = switchyard(&["check"], &[("EVOLUTION_URL", "http://127.0.0.1:1"), ("WEBHOOK_SECRET", "s3cret"), ("METRICS_TOKEN", "m")]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
}

#[tokio::test]
async fn instance_names_of_only_dots_or_not_one_path_segment_are_refused_with_400() {
    let app = TestApp::spawn_configured(|config| config.admin_tokens = vec![("ops".to_owned(), "ops-token".to_owned())]).await;
    let long = "x".repeat(101);
    for name in [".", "..", "...", "a/b", "../message", "a\nb", "a b", long.as_str()] {
        let mut body = upsert("INST-1", "5511911110101", "oi", 1_795_000_000);
        body["instance"] = json!(name);
        let (status, reply) = app.webhook(&body).await;
        assert_eq!(status, 400, "webhook from instance {name:?}: {reply}");
        let error = reply["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("instance '"), "the 400 says what is wrong: {error}");
        assert!(!error.contains('\n'), "one line: {error:?}");

        let (status, reply) = app.post_admin("/api/handoffs/release", json!({"instance": name, "contact": "5511911110101"}), Some("ops-token")).await;
        assert_eq!(status, 400, "admin release on instance {name:?}: {reply}");
        let (status, reply) = app.post_admin("/api/sessions/5511911110101/end", json!({"instance": name}), Some("ops-token")).await;
        assert_eq!(status, 400, "admin end on instance {name:?}: {reply}");
    }
    let (status, reply) = app.get_admin("/api/explain?flow=billing&contact=5511911110101&instance=..", "ops-token").await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 0, "nothing stored");
    // A dotted name that is not only dots is an ordinary instance.
    let mut body = upsert("INST-2", "5511911110101", "oi", 1_795_000_000);
    body["instance"] = json!("loja.bot");
    assert_eq!(app.webhook(&body).await.0, 200);
    let sent = app.evolution.wait_for(1).await;
    assert!(sent.iter().all(|sent| sent.instance == "loja.bot"), "{sent:#?}");
    app.stop().await;
}

#[tokio::test]
async fn a_message_id_over_128_bytes_is_refused_with_400_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    for id in ["A".repeat(129), "x12345678901".repeat(1000)] {
        let (status, reply) = app.webhook(&upsert(&id, "5511911110102", "oi", 1_795_000_000)).await;
        assert_eq!(status, 400, "{reply}");
        let error = reply["error"].as_str().unwrap_or_default();
        assert!(error.contains("data.key.id") && error.contains("128 bytes"), "{error}");
        assert!(!error.contains("AAAA") && !error.contains("x1234"), "the id itself is not echoed: {error}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 0, "nothing stored");
    // 128 bytes is still an id.
    let (status, reply) = app.webhook(&upsert(&"B".repeat(128), "5511911110102", "oi", 1_795_000_000)).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("accepted")), "{reply}");
    app.wait_idle().await;
    assert_eq!(app.count("SELECT MAX(LENGTH(message_id)) FROM inbox").await, 128);
    app.stop().await;
}

/// The `host:port` a [`ServeProcess`] listens on.
fn addr(server: &ServeProcess) -> String {
    server.url.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes or `within` passes; what it sent, and
/// whether it closed.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let deadline = Instant::now() + within;
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&received).into_owned(), true),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&received).into_owned(), false),
        }
    }
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).expect("VmRSS line");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off_within_the_header_timeout() {
    let evolution = StandIn::start().await;
    let server = ServeProcess::start(&fresh_db(), &evolution, &[("HTTP_HEADER_TIMEOUT", "1s")]).await;
    let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
    let started = Instant::now();
    stream.write_all(b"POST /webhooks/evolution HTTP/1.1\r\nHost: switchyard\r\nX-Slow: ").await.unwrap();
    // One header byte every 100 ms, never the blank line: a slow-loris.
    let cut_after = loop {
        if stream.write_all(b"a").await.is_err() {
            break started.elapsed();
        }
        let (_, closed) = read_until_closed(&mut stream, Duration::from_millis(100)).await;
        if closed {
            break started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "a trickling client still holds its connection after 10 s");
    };
    // Not before the timeout; the upper bound only tells 1 s from the 10 s
    // default, with room for a busy machine.
    assert!(cut_after >= Duration::from_millis(900) && cut_after < Duration::from_secs(8), "cut off after {cut_after:?}, HTTP_HEADER_TIMEOUT=1s");
}

#[tokio::test]
async fn a_stalled_body_gets_408_within_the_request_timeout_and_a_wrong_secret_401_before_its_body() {
    let evolution = StandIn::start().await;
    let env = [("WEBHOOK_SECRET", "right-secret"), ("HTTP_REQUEST_TIMEOUT", "1s"), ("METRICS_TOKEN", "metrics-token")];
    let server = ServeProcess::start(&fresh_db(), &evolution, &env).await;
    let head = |secret: &str| {
        format!("POST /webhooks/evolution HTTP/1.1\r\nHost: switchyard\r\nx-webhook-secret: {secret}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    };

    // The right secret, then 10 of the 1000 bytes promised, then nothing.
    let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
    let started = Instant::now();
    stream.write_all(format!("{}{{\"event\":", head("right-secret")).as_bytes()).await.unwrap();
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    let elapsed = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "a stalled body is answered 408: {answer:?} after {elapsed:?}");
    // Not before the timeout; the upper bound tells 1 s from the 30 s default.
    assert!(elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(10), "408 after {elapsed:?}, HTTP_REQUEST_TIMEOUT=1s");

    // A wrong secret is answered from the headers, without waiting for the body.
    let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
    stream.write_all(head("wrong-secret").as_bytes()).await.unwrap();
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    // Had the server waited for the 1000 promised bytes, the request timeout
    // would have answered 408: a 401 is the proof it read only the headers.
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer:?}");

    let metrics = support::http().get(format!("{}/metrics", server.url)).bearer_auth("metrics-token").send().await.unwrap().text().await.unwrap();
    for status in ["401", "408"] {
        assert!(metrics.contains(&format!("switchyard_webhook_requests_total{{status=\"{status}\"}} 1")), "{status} counted: {metrics}");
    }
}

#[tokio::test]
async fn two_hundred_unauthenticated_large_bodies_do_not_move_rss_by_more_than_a_few_mib() {
    let evolution = StandIn::start().await;
    let server = ServeProcess::start(&fresh_db(), &evolution, &[("WEBHOOK_SECRET", "right-secret")]).await;
    let body = vec![b' '; 2 * 1024 * 1024];
    let send = |secret: &'static str| {
        let addr = addr(&server);
        let body = body.clone();
        async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "POST /webhooks/evolution HTTP/1.1\r\nHost: switchyard\r\nx-webhook-secret: {secret}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            // The server may answer and close before the body is through: not an error here.
            if stream.write_all(head.as_bytes()).await.is_ok() {
                let _ = stream.write_all(&body).await;
            }
            let _ = read_until_closed(&mut stream, Duration::from_secs(10)).await;
        }
    };
    // Warm up (runtime threads, allocator arenas, the SQLite pool), then measure.
    for _ in 0..3 {
        send("wrong-secret").await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(server.pid());
    for _ in 0..4 {
        let batch: Vec<_> = (0..50).map(|_| tokio::spawn(send("wrong-secret"))).collect();
        for task in batch {
            task.await.unwrap();
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = rss_kib(server.pid());
    let grown = after.saturating_sub(before);
    eprintln!("RSS {before} KiB before, {after} KiB after 200 unauthenticated 2 MiB bodies");
    assert!(grown < 6 * 1024, "200 unauthenticated 2 MiB bodies grew RSS by {} KiB ({before} -> {after} KiB)", grown);
    assert_eq!(support::http().get(format!("{}/healthz", server.url)).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn connections_beyond_http_max_connections_wait_until_one_closes() {
    let evolution = StandIn::start().await;
    let server = ServeProcess::start(&fresh_db(), &evolution, &[("HTTP_MAX_CONNECTIONS", "2"), ("HTTP_HEADER_TIMEOUT", "30s")]).await;
    // Let the readiness probe's connection go.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(TcpStream::connect(addr(&server)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(addr(&server)).await.unwrap();
    third.write_all(b"GET /healthz HTTP/1.1\r\nHost: switchyard\r\nConnection: close\r\n\r\n").await.unwrap();
    let (answer, _) = read_until_closed(&mut third, Duration::from_secs(1)).await;
    assert_eq!(answer, "", "a third connection is not served while two are open");
    drop(idle.pop());
    let (answer, _) = read_until_closed(&mut third, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "served once a connection closed: {answer:?}");
}

#[tokio::test]
async fn at_http_max_connections_busy_keep_alive_connections_close_after_their_answer() {
    let evolution = StandIn::start().await;
    let server = ServeProcess::start(&fresh_db(), &evolution, &[("HTTP_MAX_CONNECTIONS", "2"), ("HTTP_HEADER_TIMEOUT", "30s")]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Two keep-alive connections take both permits; a third waits.
    let mut busy = Vec::new();
    for _ in 0..2 {
        busy.push(TcpStream::connect(addr(&server)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(addr(&server)).await.unwrap();
    third.write_all(b"GET /healthz HTTP/1.1\r\nHost: switchyard\r\nConnection: close\r\n\r\n").await.unwrap();
    // The busy ones ask for keep-alive; at the limit each is answered and
    // closed, so the waiting connection is served long before the 30 s an
    // idle keep-alive connection would hold its permit.
    for stream in &mut busy {
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: switchyard\r\n\r\n").await.unwrap();
        let (answer, closed) = read_until_closed(stream, Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 200") && answer.to_ascii_lowercase().contains("connection: close"), "{answer:?}");
        assert!(closed, "closed after its answer while every permit is taken");
    }
    let (answer, _) = read_until_closed(&mut third, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "the waiting connection is served: {answer:?}");
    // Well below the limit keep-alive stays on.
    let roomy = ServeProcess::start(&fresh_db(), &evolution, &[("HTTP_MAX_CONNECTIONS", "8")]).await;
    let mut alone = TcpStream::connect(addr(&roomy)).await.unwrap();
    alone.write_all(b"GET /healthz HTTP/1.1\r\nHost: switchyard\r\n\r\n").await.unwrap();
    let (answer, closed) = read_until_closed(&mut alone, Duration::from_millis(500)).await;
    assert!(answer.starts_with("HTTP/1.1 200") && !closed, "kept alive below the limit: {answer:?}");
}

#[tokio::test]
async fn metrics_want_the_metrics_token_and_count_every_webhook_answer_413_included() {
    let evolution = StandIn::start().await;
    let env = [("METRICS_TOKEN", "metrics-token"), ("WEBHOOK_MAX_BODY_BYTES", "1024")];
    let server = ServeProcess::start(&fresh_db(), &evolution, &env).await;
    let http = support::http();
    let scrape = |token: Option<&'static str>| {
        let mut request = http.get(format!("{}/metrics", server.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    for token in [None, Some("wrong"), Some("metrics-tokenX"), Some("")] {
        let (status, body) = scrape(token).await;
        assert_eq!(status, 401, "token {token:?}: {body}");
        assert!(!body.contains("switchyard_"), "nothing leaks: {body}");
    }
    let webhook = |body: String| http.post(format!("{}/webhooks/evolution", server.url)).header("content-type", "application/json").body(body).send();
    let too_large = upsert("BIG-1", "5511911110103", &"a".repeat(2000), 1_795_000_000).to_string();
    assert_eq!(webhook(too_large).await.unwrap().status(), 413);
    assert_eq!(webhook(upsert("OK-1", "5511911110103", "oi", 1_795_000_000).to_string()).await.unwrap().status(), 200);
    let (status, body) = scrape(Some("metrics-token")).await;
    assert_eq!(status, 200);
    for line in ["switchyard_webhook_requests_total{status=\"413\"} 1", "switchyard_webhook_requests_total{status=\"200\"} 1", "switchyard_messages_in_total 1"] {
        assert!(body.lines().any(|l| l == line), "{line} in {body}");
    }
}

#[tokio::test]
async fn metric_totals_are_the_counters_the_store_keeps_and_equal_the_table_counts() {
    let app = TestApp::spawn().await;
    for (idx, number) in ["5511911110104", "5511911110105", "5511911110106"].iter().enumerate() {
        for (turn, line) in ["oi", "2"].iter().enumerate() {
            let (status, _) = app.webhook(&upsert(&format!("CNT-{idx}-{turn}"), number, line, 1_795_000_000 + turn as i64)).await;
            assert_eq!(status, 200);
        }
    }
    app.wait_idle().await;
    let (status, metrics) = app.get("/metrics").await;
    assert_eq!(status, 200);
    let value = |name: &str| -> i64 {
        let line = metrics.lines().find(|line| line.split_whitespace().next() == Some(name)).unwrap_or_else(|| panic!("{name} in {metrics}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let inbound = app.count("SELECT COUNT(*) FROM inbox").await;
    let outbound = app.count("SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL").await;
    assert!(inbound == 6 && outbound > 0);
    assert_eq!(value("switchyard_messages_in_total"), inbound);
    assert_eq!(value("switchyard_messages_out_total"), outbound);
    assert_eq!(value("switchyard_outbox_depth"), app.count("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL").await);
    let live = app.count("SELECT COUNT(*) FROM sessions WHERE outcome IS NULL").await;
    let shown: i64 = metrics
        .lines()
        .filter(|line| line.starts_with("switchyard_sessions{") && line.contains("outcome=\"live\""))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(shown, live);
    // Those numbers are rows the triggers keep, not a count of the tables.
    assert_eq!(app.count("SELECT value FROM counters WHERE name = 'messages_in'").await, inbound);
    assert_eq!(app.count("SELECT value FROM counters WHERE name = 'messages_out'").await, outbound);
    assert_eq!(app.count("SELECT SUM(sessions) FROM session_counts WHERE outcome = 'live'").await, live);
    app.stop().await;
}

#[tokio::test]
async fn admin_bodies_are_read_only_after_the_token_and_kept_small() {
    let app = TestApp::spawn_configured(|config| config.admin_tokens = vec![("ops".to_owned(), "ops-token".to_owned())]).await;
    let head = |auth: &str, length: usize| {
        format!("POST /api/handoffs/release HTTP/1.1\r\nHost: switchyard\r\n{auth}Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n")
    };
    // No token: 401 from the headers, the 2 MiB body never waited for.
    for auth in ["", "Authorization: Bearer wrong\r\n"] {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        let started = Instant::now();
        stream.write_all(head(auth, 2 * 1024 * 1024).as_bytes()).await.unwrap();
        let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{auth:?}: {answer:?}");
        assert!(started.elapsed() < Duration::from_millis(800), "401 took {:?}", started.elapsed());
    }
    // With the token, an admin body over 64 KiB is refused.
    let body = format!("{{\"instance\": \"loja-bot\", \"contact\": \"5511911110107\", \"pad\": \"{}\"}}", "x".repeat(100 * 1024));
    let response = support::http()
        .post(format!("http://{}/api/handoffs/release", app.addr))
        .bearer_auth("ops-token")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let (status, reply) = app.post_admin("/api/handoffs/release", json!({"instance": "loja-bot", "contact": "5511911110107"}), Some("ops-token")).await;
    assert_eq!(status, 200, "{reply}");
    app.stop().await;
}
