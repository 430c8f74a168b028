//! Property-based fuzzing of what the outside world sends us: the Evolution
//! webhook parser on its own, and the whole webhook handler through the real
//! server on loopback (SQLite store, stand-in Evolution API).
//!
//! Inputs are raw bytes, mutated real payloads (truncated, bytes flipped)
//! and generated webhooks whose fields take odd values (wrong types, control
//! characters, huge numbers, ids of every shape). The properties: the parser
//! never panics and its errors are one line without the customer's number;
//! the handler answers every request, never with a 5xx.
//!
//! CI runs proptest's default 256 cases per test. A long run:
//! `PROPTEST_CASES=1000000 cargo test --release -p switchyard --test fuzz`
//! (the handler test sends [`BATCH`] requests per case). Each test prints
//! its tally of answers; TESTING.md has the figures of the last long run.

mod support;

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use support::TestApp;

const SECRET: &str = "fuzz-secret";
/// Requests sent concurrently per handler case.
const BATCH: usize = 8;
/// A number that must never appear in an error message.
const PHONE: &str = "5511977770001";

/// Real payloads of the stored fixtures, the seeds of the mutations.
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../evolution/tests/fixtures");
        let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .expect("fixtures")
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .map(|path| std::fs::read(path).unwrap())
            .collect();
        seeds.sort();
        assert!(seeds.len() > 10, "fixtures missing");
        seeds
    })
}

fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("loja-bot".to_owned()),
        Just(format!("{PHONE}@s.whatsapp.net")),
        Just(format!("{PHONE}:12@s.whatsapp.net")),
        Just("204837561234567@lid".to_owned()),
        Just("120363025246125486@g.us".to_owned()),
        Just("status@broadcast".to_owned()),
        Just("00000000000000000002@s.whatsapp.net".to_owned()),
        Just("a\nb\r\u{0}\u{1b}[2J\u{2028}".to_owned()),
        "[0-9]{1,25}(@s\\.whatsapp\\.net|@lid|@g\\.us|@)?",
        "\\PC{0,40}",
        ".{0,8}",
        "x{60,70}",
        "[a-zA-Z0-9._-]{1,120}",
    ]
}

fn odd_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!(1_764_720_000)),
        Just(json!("1764720000")),
        Just(json!({"low": 1_764_720_000, "high": 0, "unsigned": true})),
        Just(json!({"low": -1, "high": 2_147_483_647})),
        odd_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-zA-Z]{1,12}", inner), 0..4).prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// A field of a webhook: usually a plausible value, sometimes anything.
fn field(plausible: impl Strategy<Value = Value> + 'static) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        6 => plausible.prop_map(Some),
        2 => odd_value().prop_map(Some),
        1 => Just(None),
    ]
}

fn message_content() -> impl Strategy<Value = Value> {
    prop_oneof![
        "\\PC{0,80}".prop_map(|text| json!({"conversation": text})),
        "\\PC{0,80}".prop_map(|text| json!({"extendedTextMessage": {"text": text}})),
        "\\PC{0,20}".prop_map(|caption| json!({"imageMessage": {"caption": caption, "mimetype": "image/jpeg"}})),
        Just(json!({"audioMessage": {"ptt": true}})),
        "[0-9]{1,3}".prop_map(|row| json!({"listResponseMessage": {"singleSelectReply": {"selectedRowId": row}}})),
        Just(json!({"ephemeralMessage": {"message": {"conversation": "1"}}})),
        Just(json!({"viewOnceMessageV2": {"message": {"imageMessage": {}}}})),
        Just(json!({"reactionMessage": {"text": "👍"}})),
        odd_value(),
    ]
}

fn insert(object: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        object.insert(key.to_owned(), value);
    }
}

/// A webhook shaped like Evolution's, each field possibly odd or missing.
fn webhook() -> impl Strategy<Value = Value> {
    let event = prop_oneof![
        Just(json!("messages.upsert")),
        Just(json!("MESSAGES_UPSERT")),
        Just(json!("connection.update")),
        Just(json!("send.message")),
        Just(json!("messages.update")),
        odd_string().prop_map(Value::String),
    ];
    let instance = prop_oneof![Just(json!("loja-bot")), Just(json!("outra")), odd_string().prop_map(Value::String)];
    let jid = prop_oneof![
        "[0-9]{3}".prop_map(|n| json!(format!("5511977770{n}@s.whatsapp.net"))),
        "[0-9]{3}".prop_map(|n| json!(format!("204837561234{n}@lid"))),
        odd_string().prop_map(Value::String),
    ];
    let key = (field(jid.clone()), field(any::<bool>().prop_map(Value::Bool)), field(prop_oneof!["[A-F0-9]{4}".prop_map(Value::String), odd_string().prop_map(Value::String)]), field(jid.clone()), field(jid))
        .prop_map(|(remote, from_me, id, alt, participant)| {
            let mut key = Map::new();
            insert(&mut key, "remoteJid", remote);
            insert(&mut key, "fromMe", from_me);
            insert(&mut key, "id", id);
            insert(&mut key, "remoteJidAlt", alt);
            insert(&mut key, "participant", participant);
            Value::Object(key)
        });
    let data = (field(key), field(message_content()), field(odd_string().prop_map(Value::String)), field(Just(json!(1_764_720_000))), field(odd_value()), field(odd_string().prop_map(Value::String)))
        .prop_map(|(key, message, push_name, timestamp, status_reason, state)| {
            let mut data = Map::new();
            insert(&mut data, "key", key);
            insert(&mut data, "message", message);
            insert(&mut data, "pushName", push_name);
            insert(&mut data, "messageTimestamp", timestamp);
            insert(&mut data, "statusReason", status_reason);
            insert(&mut data, "state", state);
            data.insert("messageType".to_owned(), json!("conversation"));
            Value::Object(data)
        });
    (field(event), field(instance), field(data), field(odd_value())).prop_map(|(event, instance, data, extra)| {
        let mut root = Map::new();
        insert(&mut root, "event", event);
        insert(&mut root, "instance", instance);
        insert(&mut root, "data", data);
        insert(&mut root, "sender", extra);
        root.insert("date_time".to_owned(), json!("2026-12-03T00:00:00.000Z"));
        Value::Object(root)
    })
}

/// A well-formed customer message, as Evolution sends it.
fn message() -> impl Strategy<Value = Value> {
    ("[0-9]{2}", "[A-F0-9]{4,20}", message_content(), "\\PC{0,20}", any::<bool>()).prop_map(|(contact, id, message, push_name, lid)| {
        let remote = if lid { format!("2048375612345{contact}@lid") } else { format!("55119777700{contact}@s.whatsapp.net") };
        json!({
            "event": "messages.upsert",
            "instance": "loja-bot",
            "data": {
                "key": {"remoteJid": remote, "fromMe": false, "id": format!("3EB0{id}"), "remoteJidAlt": format!("55119777700{contact}@s.whatsapp.net")},
                "pushName": push_name,
                "message": message,
                "messageType": "conversation",
                "messageTimestamp": 1_764_720_000
            },
            "date_time": "2026-12-03T00:00:00.000Z",
            "sender": "5511988880000@s.whatsapp.net"
        })
    })
}

/// Places of a message webhook a mutation can hit.
const PATHS: &[&[&str]] = &[
    &["event"],
    &["instance"],
    &["data"],
    &["data", "key"],
    &["data", "key", "id"],
    &["data", "key", "remoteJid"],
    &["data", "key", "remoteJidAlt"],
    &["data", "key", "fromMe"],
    &["data", "key", "participant"],
    &["data", "key", "senderPn"],
    &["data", "message"],
    &["data", "message", "conversation"],
    &["data", "messageTimestamp"],
    &["data", "pushName"],
    &["data", "state"],
];

/// Sets (or, with `None`, removes) the value at `path`, creating objects on the way.
fn set(value: &mut Value, path: &[&str], new: Option<Value>) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut at = value;
    for key in parents {
        if !at.is_object() {
            *at = json!({});
        }
        at = at.as_object_mut().unwrap().entry(key.to_string()).or_insert_with(|| json!({}));
    }
    if let Value::Object(object) = at {
        match new {
            Some(new) => object.insert(last.to_string(), new),
            None => object.remove(*last),
        };
    }
}

/// A well-formed message with zero to three fields made odd or removed.
fn mutated_message() -> impl Strategy<Value = Value> {
    let mutation = (any::<prop::sample::Index>(), prop_oneof![4 => odd_value().prop_map(Some), 1 => Just(None)]);
    (message(), prop::collection::vec(mutation, 0..4)).prop_map(|(mut message, mutations)| {
        for (path, new) in mutations {
            set(&mut message, PATHS[path.index(PATHS.len())], new);
        }
        message
    })
}

/// A real payload, cut short and with a few bytes replaced.
fn mutated_seed() -> impl Strategy<Value = Vec<u8>> {
    let cut = prop_oneof![2 => Just(None), 1 => any::<prop::sample::Index>().prop_map(Some)];
    (any::<prop::sample::Index>(), cut, prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4)).prop_map(|(seed, cut, flips)| {
        let seeds = seeds();
        let mut body = seeds[seed.index(seeds.len())].clone();
        let len = body.len();
        if let Some(cut) = cut {
            body.truncate(len - cut.index(len / 4 + 1));
        }
        for (at, byte) in flips {
            if !body.is_empty() {
                let at = at.index(body.len());
                body[at] = byte;
            }
        }
        body
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => mutated_message().prop_map(|value| value.to_string().into_bytes()),
        2 => webhook().prop_map(|value| value.to_string().into_bytes()),
        2 => mutated_seed(),
        1 => prop::collection::vec(any::<u8>(), 0..256),
        1 => "\\PC{0,64}".prop_map(String::into_bytes),
    ]
}

/// Runs `cases` of proptest (`PROPTEST_CASES`, 256 by default) and prints
/// how the inputs were answered, so a long run can be recorded.
fn run<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value, &Tally) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::default());
    let tally = Tally::default();
    let started = std::time::Instant::now();
    let result = runner.run(&strategy, |input| test(input, &tally));
    eprintln!("{name}: {} cases in {:.1?}; {}", runner.config().cases, started.elapsed(), tally.shown());
    if let Err(err) = result {
        panic!("{name}: {err}");
    }
}

/// How many inputs got each answer (shrinking runs included).
#[derive(Default)]
struct Tally(std::cell::RefCell<std::collections::BTreeMap<String, u64>>);

impl Tally {
    fn add(&self, what: impl Into<String>) {
        let mut counts = self.0.borrow_mut();
        *counts.entry(what.into()).or_default() += 1;
        // A long run says how far it got, in case it is cut short.
        let total: u64 = counts.values().sum();
        if total.is_multiple_of(100_000) {
            drop(counts);
            eprintln!("{total} inputs so far; {}", self.shown());
        }
    }
    fn shown(&self) -> String {
        self.0.borrow().iter().map(|(what, count)| format!("{what}: {count}")).collect::<Vec<_>>().join(", ")
    }
}

#[test]
fn the_parser_never_panics_and_its_errors_are_one_clean_line() {
    run("parser", body(), |body, tally| {
        match switchyard_evolution::parse(&body) {
            Ok(webhook) => tally.add(format!("ok {}", kind(&webhook.kind))),
            Err(err) => {
                tally.add(format!("error: {}", err.to_string().split([':', '`']).next().unwrap_or_default()));
                let shown = err.to_string();
                prop_assert!(!shown.is_empty() && !shown.contains('\n') && !shown.contains('\r'), "{shown:?}");
                prop_assert!(!shown.contains(PHONE) && !format!("{err:?}").contains(PHONE), "{shown}");
            }
        }
        Ok(())
    });
}

fn kind(kind: &switchyard_evolution::WebhookKind) -> &'static str {
    use switchyard_evolution::WebhookKind;
    match kind {
        WebhookKind::Message(_) => "message",
        WebhookKind::OperatorMessage(_) => "operator message",
        WebhookKind::ApiSend(_) => "api send",
        WebhookKind::Connection { .. } => "connection",
        WebhookKind::Ignored { .. } => "ignored",
    }
}

/// The server every handler case talks to, started once per test binary.
struct Fuzzed {
    runtime: tokio::runtime::Runtime,
    app: TestApp,
    client: reqwest::Client,
}

fn fuzzed() -> &'static Fuzzed {
    static FUZZED: OnceLock<Fuzzed> = OnceLock::new();
    FUZZED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let app = runtime.block_on(TestApp::spawn_configured(|config| {
            config.webhook_secret = Some(SECRET.to_owned());
        }));
        Fuzzed { runtime, app, client: support::http() }
    })
}

fn secret() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![8 => Just(Some(SECRET)), 1 => Just(None), 1 => Just(Some("wrong"))]
}

#[test]
fn the_handler_answers_everything_without_a_5xx() {
    let fuzzed = fuzzed();
    let url = format!("http://{}/webhooks/evolution", fuzzed.app.addr);
    run("handler", prop::collection::vec((body(), secret()), BATCH), |requests, tally| {
        let statuses = fuzzed.runtime.block_on(async {
            let sends = requests.iter().map(|(body, secret)| {
                let mut request = fuzzed.client.post(&url).header("content-type", "application/json").body(body.clone());
                if let Some(secret) = secret {
                    request = request.header("x-webhook-secret", *secret);
                }
                async move { request.send().await.map(|response| response.status().as_u16()) }
            });
            join_all(sends).await
        });
        for ((body, _), status) in requests.iter().zip(statuses) {
            let shown = String::from_utf8_lossy(body);
            match status {
                Ok(status) => {
                    tally.add(status.to_string());
                    prop_assert!(status < 500, "{status} for {shown}");
                }
                Err(err) => prop_assert!(false, "no answer ({err}) for {shown}"),
            }
        }
        Ok(())
    });
}

/// `join_all` without the `futures` crate: the requests of one case run
/// concurrently on the server's runtime.
async fn join_all<F: std::future::Future + Send + 'static>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.expect("request task"));
    }
    out
}
