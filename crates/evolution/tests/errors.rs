//! Refused bodies: each error is one lowercase line naming the field, with
//! no customer data; and no input, however broken, makes `parse` panic.

use serde_json::{Value, json};
use switchyard_evolution::webhook::{Content, IgnoreReason, ParseError, WebhookKind, parse};

const PN: &str = "5521987650001";
const SECRET_TEXT: &str = "meu cartão 4111111111111111";

fn err(body: &[u8]) -> ParseError {
    match parse(body) {
        Err(err) => err,
        Ok(webhook) => panic!("expected an error, got {webhook:?}"),
    }
}

fn err_json(value: Value) -> ParseError {
    err(&serde_json::to_vec(&value).expect("serialise"))
}

fn upsert(data: Value) -> Value {
    json!({"event": "messages.upsert", "instance": "loja-teste", "data": data})
}

/// The error's Display and Debug are one line, lowercase-led, and free of the
/// customer's number and text.
fn assert_clean(err: &ParseError) {
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains('\n'), "{shown}");
        assert!(!shown.contains(PN), "{shown}");
        assert!(!shown.contains("4111"), "{shown}");
        assert!(!shown.contains("cartão"), "{shown}");
    }
    let display = err.to_string();
    assert!(display.starts_with(|c: char| c.is_lowercase()), "{display}");
}

#[test]
fn malformed_json() {
    let e = err(b"{\"event\": \"messages.upsert\", ");
    assert_eq!(
        e.to_string(),
        "body is not valid json: unexpected end of input at line 1 column 29"
    );
    assert_clean(&e);
    let e = err(format!("{{\"event\": {PN}@s.whatsapp.net}}").as_bytes());
    assert!(
        e.to_string()
            .starts_with("body is not valid json: syntax error at line 1"),
        "{e}"
    );
    assert_clean(&e);
    assert_eq!(
        err(b"").to_string(),
        "body is not valid json: unexpected end of input at line 1 column 0"
    );
}

#[test]
fn non_object_json() {
    for body in [&b"[]"[..], b"\"messages.upsert\"", b"42", b"null", b"true"] {
        let e = err(body);
        assert_eq!(e, ParseError::NotObject);
        assert_eq!(e.to_string(), "body is not a json object");
    }
}

#[test]
fn missing_or_bad_envelope_fields() {
    let e = err_json(json!({"instance": "loja-teste", "data": {}}));
    assert_eq!(e, ParseError::MissingField("event"));
    assert_eq!(e.to_string(), "missing field `event`");

    let e = err_json(json!({"event": "messages.upsert", "data": {}}));
    assert_eq!(e.to_string(), "missing field `instance`");

    let e = err_json(json!({"event": "messages.upsert", "instance": null}));
    assert_eq!(e.to_string(), "missing field `instance`");

    let e = err_json(json!({"event": 7, "instance": "x"}));
    assert_eq!(e.to_string(), "field `event` must be a string");

    let e = err_json(json!({"event": "  ", "instance": "x"}));
    assert_eq!(e.to_string(), "field `event` must be a non-empty string");
}

#[test]
fn upsert_without_data_or_key() {
    let e = err_json(json!({"event": "messages.upsert", "instance": "loja-teste"}));
    assert_eq!(e.to_string(), "missing field `data`");

    let e = err_json(upsert(json!([1, 2])));
    assert_eq!(e.to_string(), "field `data` must be an object");

    let e = err_json(upsert(json!({"message": {"conversation": SECRET_TEXT}})));
    assert_eq!(e.to_string(), "missing field `data.key`");
    assert_clean(&e);

    let e = err_json(upsert(json!({
        "key": {"remoteJid": format!("{PN}@s.whatsapp.net"), "fromMe": false},
        "message": {"conversation": SECRET_TEXT}
    })));
    assert_eq!(e.to_string(), "missing field `data.key.id`");
    assert_clean(&e);

    let e = err_json(upsert(json!({"key": {"id": "X1", "fromMe": false}})));
    assert_eq!(e.to_string(), "missing field `data.key.remoteJid`");
}

#[test]
fn bad_key_values_name_the_field_not_the_value() {
    let cases = [
        (
            json!({"id": "X", "remoteJid": PN}),
            "field `data.key.remoteJid` must be a jid (user@server)",
        ),
        (
            json!({"id": "X", "remoteJid": format!("{PN}x@s.whatsapp.net")}),
            "field `data.key.remoteJid` must be a jid with a numeric user part",
        ),
        (
            json!({"id": "X", "remoteJid": format!("{PN}@s.whatsapp.net"), "fromMe": PN}),
            "field `data.key.fromMe` must be a boolean",
        ),
        (
            json!({"id": "X", "remoteJid": "120363000011112222@g.us"}),
            "missing field `data.key.participant`",
        ),
        (
            json!({"id": "X", "remoteJid": "120363000011112222@g.us", "participant": format!("{PN}abc@s.whatsapp.net")}),
            "field `data.key.participant` must be a user jid with a numeric user part",
        ),
        (
            json!({"id": 12, "remoteJid": format!("{PN}@s.whatsapp.net")}),
            "field `data.key.id` must be a string",
        ),
    ];
    for (key, expected) in cases {
        let e = err_json(upsert(
            json!({"key": key, "message": {"conversation": SECRET_TEXT}}),
        ));
        assert_eq!(e.to_string(), expected);
        assert_clean(&e);
    }
    let e = err_json(upsert(json!({
        "key": {"id": "X", "remoteJid": format!("{PN}@s.whatsapp.net")},
        "message": SECRET_TEXT
    })));
    assert_eq!(e.to_string(), "field `data.message` must be an object");
    assert_clean(&e);
}

#[test]
fn connection_update_without_state() {
    let e = err_json(
        json!({"event": "connection.update", "instance": "x", "data": {"statusReason": 200}}),
    );
    assert_eq!(e.to_string(), "missing field `data.state`");
}

#[test]
fn upsert_without_content_is_ignored_not_an_error() {
    for message in [
        Value::Null,
        json!({}),
        json!({"messageContextInfo": {"messageSecret": {"0": 1}}}),
    ] {
        let webhook = parse(
            &serde_json::to_vec(&upsert(json!({
                "key": {"id": "X", "remoteJid": format!("{PN}@s.whatsapp.net"), "fromMe": false},
                "message": message
            })))
            .expect("serialise"),
        )
        .expect("parses");
        assert_eq!(
            webhook.kind,
            WebhookKind::Ignored {
                reason: IgnoreReason::NoContent
            }
        );
    }
}

#[test]
fn unknown_events_are_ignored_with_any_data() {
    for data in [Value::Null, json!([]), json!("x"), json!({"a": 1})] {
        let webhook = parse(
            &serde_json::to_vec(
                &json!({"event": "PRESENCE_UPDATE", "instance": "x", "data": data}),
            )
            .expect("serialise"),
        )
        .expect("parses");
        assert_eq!(webhook.event, "presence.update");
        assert_eq!(
            webhook.kind,
            WebhookKind::Ignored {
                reason: IgnoreReason::UnknownEvent("presence.update".into())
            }
        );
    }
}

#[test]
fn ignore_reasons_display_as_short_phrases() {
    assert_eq!(IgnoreReason::OwnApiSend.to_string(), "own api send");
    assert_eq!(IgnoreReason::Receipt.to_string(), "delivery receipt");
    assert_eq!(
        IgnoreReason::NoContent.to_string(),
        "message without content"
    );
    assert_eq!(
        IgnoreReason::UnsupportedChat.to_string(),
        "unsupported chat type"
    );
    assert_eq!(
        IgnoreReason::UnknownEvent("qrcode.updated".into()).to_string(),
        "unhandled event qrcode.updated"
    );
}

#[test]
fn debug_of_a_parsed_message_masks_number_and_text() {
    let webhook = parse(
        &serde_json::to_vec(&upsert(json!({
            "key": {"id": "X", "remoteJid": format!("{PN}@s.whatsapp.net"), "fromMe": false},
            "pushName": "Maria Teste",
            "message": {"conversation": SECRET_TEXT}
        })))
        .expect("serialise"),
    )
    .expect("parses");
    let debug = format!("{webhook:?}");
    assert!(
        !debug.contains(PN) && !debug.contains("4111") && !debug.contains("Maria"),
        "{debug}"
    );
    let WebhookKind::Message(incoming) = webhook.kind else {
        panic!("not a message")
    };
    assert_eq!(incoming.content, Content::Text(SECRET_TEXT.into()));
}

// ---- never panics -------------------------------------------------------

/// A small deterministic generator, so failures reproduce without a
/// property-testing dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn fixture_bodies() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("fixtures dir")
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| std::fs::read(path).expect("read fixture"))
        .collect()
}

#[test]
fn one_megabyte_of_garbage_does_not_panic() {
    let mut rng = XorShift(0x5eed_0001);
    let garbage: Vec<u8> = (0..1024 * 1024).map(|_| rng.next() as u8).collect();
    assert!(matches!(parse(&garbage), Err(ParseError::NotJson(_))));

    // Deep nesting stops at serde_json's recursion limit instead of the stack.
    let deep = format!("{}{}", "[".repeat(512 * 1024), "]".repeat(512 * 1024));
    assert!(matches!(
        parse(deep.as_bytes()),
        Err(ParseError::NotJson(_))
    ));
    let deep_message = format!(
        r#"{{"event":"messages.upsert","instance":"x","data":{{"key":{{"id":"X","remoteJid":"{PN}@s.whatsapp.net"}},"message":{}{}}}}}"#,
        r#"{"ephemeralMessage":{"message":"#.repeat(60),
        "}}".repeat(60)
    );
    let _ = parse(deep_message.as_bytes());
}

#[test]
fn random_bytes_do_not_panic() {
    let mut rng = XorShift(0x5eed_0002);
    for _ in 0..2000 {
        let len = rng.below(256);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = parse(&bytes);
    }
}

#[test]
fn truncated_and_mutated_fixtures_do_not_panic() {
    let mut rng = XorShift(0x5eed_0003);
    for body in fixture_bodies() {
        for cut in (0..body.len()).step_by(97) {
            let _ = parse(&body[..cut]);
        }
        for _ in 0..100 {
            let mut mutated = body.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(mutated.len());
                let alphabet = b"{}[]\":,0a-\\ \x00\xff";
                mutated[at] = alphabet[rng.below(alphabet.len())];
            }
            let _ = parse(&mutated);
        }
    }
}

/// Replaces the value at every path of every fixture with each JSON type in
/// turn: a field of an unexpected type is an error or is ignored, never a
/// panic.
#[test]
fn every_field_of_every_type_does_not_panic() {
    let replacements = [
        Value::Null,
        json!(true),
        json!(-1),
        json!(1.5e300),
        json!(""),
        json!("5521987650001@lid"),
        json!([]),
        json!({}),
        json!({"message": {}}),
    ];
    for body in fixture_bodies() {
        let root: Value = serde_json::from_slice(&body).expect("fixture is json");
        let mut paths = Vec::new();
        collect_paths(&root, String::new(), &mut paths);
        for path in &paths {
            for replacement in &replacements {
                let mut variant = root.clone();
                if let Some(slot) = variant.pointer_mut(path) {
                    *slot = replacement.clone();
                }
                let _ = parse(&serde_json::to_vec(&variant).expect("serialise"));
            }
        }
    }
}

fn collect_paths(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        // Index-keyed bytes objects are many paths of no interest.
        Value::Object(object) if object.contains_key("0") => {}
        Value::Object(object) => {
            for (key, inner) in object {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                collect_paths(inner, format!("{at}/{escaped}"), out);
            }
        }
        Value::Array(items) => {
            for (idx, inner) in items.iter().enumerate() {
                collect_paths(inner, format!("{at}/{idx}"), out);
            }
        }
        _ => {}
    }
}
