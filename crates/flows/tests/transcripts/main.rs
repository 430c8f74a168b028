//! Conversation transcripts: every transcript file under `src/`, run against
//! every flow version it lists, through the real engine with an in-memory
//! store and a fixed clock.
//!
//! # Where transcripts live
//! Any `*.txt` file in a directory named `transcripts` under `src/`:
//! - `src/<flow>/v<N>/transcripts/*.txt`: transcripts of that version; they
//!   run against `<flow>@v<N>` unless they say otherwise;
//! - `src/<flow>/transcripts/*.txt`: transcripts shared by several versions
//!   of a flow; each must say which versions it runs against.
//!
//! # Format
//! ```text
//! # A comment. Blank lines are ignored.
//! === compra de e-CPF A1 com CPF formatado        <- starts a transcript (name)
//! versions: digital_certificate@v1, digital_certificate@v2
//! overrides: billing=v2                           <- optional extra pins for every run
//! contact: 5511900000001                          <- optional
//! instance: vendas                                <- optional
//! reprompts: none                                 <- optional: fails at the first re-prompt
//!                                                    (a `retried` event: input not understood)
//!
//! > quero comprar um certificado                  <- the customer says (one message)
//! < e-CPF                                         <- some reply of this turn contains this
//! < e-CNPJ                                           (case-insensitive); several allowed
//! !< boleto                                       <- no reply of this turn contains this
//! @ purchase.choose_type                          <- the live session is at this step now
//! > 1
//! < (nothing)                                     <- the bot says nothing this turn
//! = handoff                                       <- a session ended in this turn like this
//! = handoff at purchase.collect_document             (optionally: at that step)
//! wait 31m                                        <- the clock moves; the expiry sweep runs
//! = expired at purchase.collect_email
//!
//! > 2                                             <- exact mode: the `<=` lines give every
//! <= Certo! Me envie o *CPF* do titular.             reply of the turn, in order, exactly;
//! <= Confira o seu pedido:                           each `<=` starts a reply, each `<+`
//! <+ *Total:* R$ 159,90                              adds a line to it (`<+` alone: an
//! <+                                                 empty line). Other replies, a missing
//! <+ Está tudo certo?                                one or another order fail the turn.
//! ```
//! Special customer messages: `> [audio]` (any `[kind]`: content the bot
//! cannot read), `>` alone or `> {empty}` (an empty text), `> {repeat a 5000}`
//! (the text `a` 5000 times).
//!
//! `@ step` names the innermost live session's step: inside a call (a flow
//! another flow called), the callee's. `@ none` says the contact has no live
//! session. Each session of a call stack that ends is declared: the callee at
//! its step, each caller at its call step. Outcomes are `completed`,
//! `handoff`, `expired`, `failed` and `cancelled`; a session that ends by
//! handing over to another flow is not an outcome to declare.
//!
//! # Rules
//! - Every customer message is followed by at least one `<` line (a fragment,
//!   `(nothing)`, or `<=` replies): every turn asserts what the customer saw.
//! - A transcript whose every message states its replies exactly (`<=`) or
//!   its silence is *exact*. Each version locked in `crates/flows/versions.lock`
//!   (released) needs at least three exact transcripts of its main journeys.
//! - Every session that ends in a turn or a `wait` must be declared with `=`,
//!   and every `=` must match a session that ended: an unexpected handoff or
//!   failure never passes silently.
//! - A file that does not parse fails the test, naming the file and line.
//!
//! Each customer message moves the clock one second; the clock starts at
//! 2026-11-25T12:00:00Z. The demo back office's dates are relative to it.
//!
//! To read a conversation while writing a transcript, run
//! `TRANSCRIPT_SHOW='part of a name' cargo test -p switchyard-flows --test transcripts -- --nocapture`:
//! it prints each reply in the exact format.


use switchyard_flows::transcript::{parse, run};

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use switchyard_engine::engine::{Content, Engine, EngineConfig, Inbound};
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
use switchyard_engine::session::{Outcome, Session};
use switchyard_engine::memory::MemoryStore;

use parse::{discover, parse_file, Action};
use run::{registry, run};

use switchyard_flows::transcript::{DEFAULT_CONTACT, START};

/// Every transcript run once per listed version; parse errors and failures
/// are collected, not stopped at.
struct Outcomes {
    failures: Vec<String>,
    entered: BTreeSet<(String, String, String)>,
    /// (label, transcripts run against it, exact ones among them).
    runs: Vec<(String, usize, usize)>,
    transcripts: usize,
}

fn run_all() -> &'static Outcomes {
    static OUTCOMES: OnceLock<Outcomes> = OnceLock::new();
    OUTCOMES.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        discover(&src, &mut files);
        let mut outcomes =
            Outcomes { failures: Vec::new(), entered: BTreeSet::new(), runs: Vec::new(), transcripts: 0 };
        for file in &files {
            let source = match std::fs::read_to_string(file) {
                Ok(source) => source,
                Err(problem) => {
                    outcomes.failures.push(format!("{}: cannot read: {problem}", file.display()));
                    continue;
                }
            };
            // Failures name the file relative to the crate, as the author knows it.
            let shown = file.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(file);
            let transcripts = match parse_file(shown, &source) {
                Ok(transcripts) => transcripts,
                Err(problem) => {
                    outcomes.failures.push(problem);
                    continue;
                }
            };
            if transcripts.is_empty() {
                outcomes.failures.push(format!("{}: holds no transcript", file.display()));
            }
            for transcript in &transcripts {
                outcomes.transcripts += 1;
                for (flow, version) in &transcript.versions {
                    let label = format!("{flow}@{version}");
                    let exact = usize::from(transcript.is_exact());
                    match outcomes.runs.iter_mut().find(|(seen, _, _)| *seen == label) {
                        Some((_, count, exacts)) => {
                            *count += 1;
                            *exacts += exact;
                        }
                        None => outcomes.runs.push((label, 1, exact)),
                    }
                    match run(transcript, flow, version) {
                        Ok(log) => outcomes.entered.extend(log.entered),
                        Err(failure) => outcomes.failures.push(failure),
                    }
                }
            }
        }
        outcomes.runs.sort();
        outcomes
    })
}

#[test]
fn every_transcript_passes_on_every_version_it_lists() {
    let outcomes = run_all();
    let summary: Vec<String> =
        outcomes.runs.iter().map(|(label, count, exact)| format!("{label}: {count} ({exact} exact)")).collect();
    println!("{} transcripts; runs per version: {}", outcomes.transcripts, summary.join(", "));
    assert!(
        outcomes.failures.is_empty(),
        "{} transcript failure(s):\n\n{}",
        outcomes.failures.len(),
        outcomes.failures.join("\n\n")
    );
    assert!(outcomes.transcripts >= 60, "expected at least 60 transcripts, found {}", outcomes.transcripts);
}

/// Each released (locked) version has its main journeys pinned reply by
/// reply: at least three exact transcripts run against it. Versions not
/// locked yet are named, not failed.
#[test]
fn every_locked_version_has_three_exact_transcripts() {
    let lock_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("versions.lock");
    let text = std::fs::read_to_string(&lock_file).unwrap_or_else(|problem| panic!("{}: {problem}", lock_file.display()));
    let lock = switchyard_flows::lock::Lock::parse(&text).unwrap_or_else(|problem| panic!("{problem}"));
    assert!(!lock.versions.is_empty(), "versions.lock locks no version");
    let outcomes = run_all();
    let mut short = Vec::new();
    for label in lock.versions.keys() {
        let exact = outcomes.runs.iter().find(|(seen, _, _)| seen == label).map_or(0, |(_, _, exact)| *exact);
        if exact < 3 {
            short.push(format!("{label}: {exact} exact transcript(s), at least 3 wanted"));
        }
    }
    assert!(short.is_empty(), "released versions without their journeys pinned exactly:\n{}", short.join("\n"));
    for (label, _, exact) in &outcomes.runs {
        if !lock.versions.contains_key(label) {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "note: {label} is not locked (not released yet): {exact} exact transcript(s)");
        }
    }
}

#[test]
fn every_step_of_every_version_is_entered_by_some_transcript() {
    let outcomes = run_all();
    let registry = registry();
    let mut missing = Vec::new();
    for fv in registry.all() {
        for step in fv.steps() {
            let key = (fv.flow().to_string(), fv.version().to_string(), step.id.to_owned());
            if !outcomes.entered.contains(&key) {
                missing.push(format!("{}@{}: {}", key.0, key.1, key.2));
            }
        }
    }
    assert!(missing.is_empty(), "steps no transcript enters:\n{}", missing.join("\n"));
}

/// The point of the rewrite: the same purchase takes fewer customer messages
/// on digital_certificate v2 than on v1.
#[test]
fn a_purchase_on_digital_certificate_v2_takes_fewer_turns_than_on_v1() {
    let registry = registry();
    let turns = |version: &str, messages: &[&str]| -> u32 {
        let overrides = Overrides::parse(&format!("digital_certificate={version}"), &registry).expect("valid override");
        let engine = Engine::new(
            Arc::clone(&registry),
            Resolver::new(&registry, overrides, Box::new(NoRules)),
            EngineConfig::default(),
        )
        .expect("engine");
        let store = MemoryStore::new();
        let (instance, contact) = (InstanceId::parse("vendas").unwrap(), Contact::parse(DEFAULT_CONTACT).unwrap());
        let mut now = START;
        let mut completed = None;
        for message in messages {
            now = now.plus(Duration::from_secs(1));
            let inbound = Inbound {
                instance: instance.clone(),
                contact: contact.clone(),
                content: Content::Text((*message).to_owned()),
            };
            let turn = engine.turn(store.contact_state_now(&instance, &contact), &inbound, now);
            store.commit_now(&turn).expect("commit");
            completed = completed.or_else(|| {
                turn.ended()
                    .find(|session| {
                        session.flow().as_str() == "digital_certificate"
                            && session.outcome() == Some(Outcome::Completed)
                    })
                    .map(Session::turns)
            });
        }
        completed.unwrap_or_else(|| panic!("the purchase on {version} did not complete"))
    };
    let v1 = turns(
        "v1",
        &[
            "quero comprar um certificado",
            "e-CPF",
            "A1",
            "529.982.247-25",
            "ana@exemplo.com.br",
            "videoconferência",
            "sim",
        ],
    );
    let v2 = turns("v2", &["quero comprar um certificado", "1", "529.982.247-25 ana@exemplo.com.br", "sim"]);
    assert!(v2 < v1, "v2 took {v2} turns, v1 {v1}");
    assert_eq!((v1, v2), (7, 4));
}

#[test]
fn the_parser_refuses_malformed_transcripts_with_file_and_line() {
    let path = Path::new("src/digital_certificate/v1/transcripts/example.txt");
    let cases = [
        ("> oi\n< olá\n", "before the first"),
        ("=== a\n> oi\n", "at least one '<'"),
        ("=== a\n> oi\n< olá\n=== a\n> oi\n< olá\n", "used twice"),
        ("=== a\n< olá\n", "needs a '>'"),
        ("=== a\n> oi\n< olá\n= finished\n", "outcome 'finished'"),
        ("=== a\n> oi\n< (nothing)\n< olá\n", "contradicts"),
        ("=== a\n> oi\n< olá\nwait 31\n", "duration"),
        ("=== a\n> oi\n< olá\nwait 31m\n< olá\n", "after 'wait'"),
        ("=== a\nversions: digital_certificate\n> oi\n< olá\n", "flow@vN"),
        ("=== a\n> {repeat a many}\n< olá\n", "repeat count"),
        ("=== a\n> oi\n< olá\n? what\n", "cannot read"),
        ("=== a\nreprompts: few\n> oi\n< olá\n", "only setting"),
        ("=== a\n> oi\n<+ olá\n", "needs a '<=' line"),
        ("=== a\n> oi\n< (nothing)\n<= olá\n", "contradicts"),
        ("=== a\n> oi\n< olá\nwait 31m\n<= olá\n", "after 'wait'"),
    ];
    for (source, wanted) in cases {
        let problem = parse_file(path, source).expect_err(source);
        assert!(problem.contains(wanted) && problem.contains("example.txt:"), "{source:?}: {problem}");
    }
    let shared = Path::new("src/digital_certificate/transcripts/shared.txt");
    let problem = parse_file(shared, "=== a\n> oi\n< olá\n").expect_err("no versions");
    assert!(problem.contains("versions"), "{problem}");

    let parsed =
        parse_file(path, "=== a\n> {repeat ab 3}\n< x\n> [audio]\n< y\n>\n< z\nwait 31m\n= expired at route\n")
            .unwrap();
    assert_eq!(parsed[0].versions, [("digital_certificate".to_owned(), "v1".to_owned())]);
    assert!(!parsed[0].is_exact());
    let exact = parse_file(path, "=== a\n> oi\n<= Olá!\n<+\n<+  Escolha:\n<= 1 loja\n> tchau\n< (nothing)\n").unwrap();
    assert!(exact[0].is_exact());
    let Action::Say { expects, .. } = &exact[0].actions[0] else { panic!("a message") };
    assert!(
        matches!(&expects[..], [parse::Expect::Exact { replies, .. }] if replies == &["Olá!\n\n Escolha:".to_owned(), "1 loja".to_owned()]),
        "{expects:?}"
    );
    let contents: Vec<&Content> = parsed[0]
        .actions
        .iter()
        .filter_map(|action| match action {
            Action::Say { content, .. } => Some(content),
            Action::Wait { .. } => None,
        })
        .collect();
    assert_eq!(
        contents,
        [&Content::Text("ababab".to_owned()), &Content::Unsupported("audio".to_owned()), &Content::Text(String::new())]
    );
}

/// Exact mode fails a turn whose replies differ in wording, number or order.
#[test]
fn an_exact_turn_fails_on_a_reworded_missing_extra_or_reordered_reply() {
    let path = Path::new("src/unknown/v1/transcripts/example.txt");
    let greeting = "Olá! 👋 Aqui é a assistente virtual da *CertiFácil Certificados Digitais*.";
    let menu = "Como posso te ajudar hoje? Responda com o número:\n\
                1️⃣ Certificado digital (comprar, renovar, suporte, status do pedido)\n\
                2️⃣ Boletos e segunda via\n\
                3️⃣ Dúvidas gerais (horários, endereço, preços, formas de pagamento)\n\
                4️⃣ Falar com um atendente";
    let exact = |replies: &[&str]| {
        let lines: Vec<String> = replies.iter().map(|reply| format!("<= {}", reply.replace('\n', "\n<+ "))).collect();
        format!("=== t\n> oi\n{}\n", lines.join("\n"))
    };
    let run_on = |source: String| {
        let transcripts = parse_file(path, &source).unwrap_or_else(|problem| panic!("{problem}"));
        run(&transcripts[0], "unknown", "v1")
    };
    assert!(run_on(exact(&[greeting, menu])).is_ok(), "as written, it passes");
    let reworded = menu.replace("Boletos e segunda via", "Boletos");
    for (what, replies, wanted) in [
        ("reworded", vec![greeting, reworded.as_str()], "reply 2 is not exactly as written"),
        ("missing", vec![greeting], "expected exactly 1 replies, got 2"),
        ("extra", vec![greeting, menu, "Até logo!"], "expected exactly 3 replies, got 2"),
        ("reordered", vec![menu, greeting], "reply 1 is not exactly as written"),
        ("a fragment only", vec!["Olá!", menu], "reply 1 is not exactly as written"),
    ] {
        let failure = run_on(exact(&replies)).expect_err(what);
        assert!(failure.contains(wanted) && failure.contains("example.txt:3"), "{what}: {failure}");
    }
}

/// `reprompts: none` fails a transcript at the first re-prompt, even when
/// every expectation holds (the v2 menu re-prompts for "quero arquivo").
#[test]
fn reprompts_none_fails_at_the_first_reprompt() {
    let path = Path::new("src/digital_certificate/v2/transcripts/example.txt");
    let source = "=== a\nreprompts: none\n> comprar certificado\n< Qual certificado\n> quero arquivo\n< Responda com o número\n";
    let parsed = parse_file(path, source).expect("parses");
    let failure = run(&parsed[0], "digital_certificate", "v2").expect_err("a re-prompt fails it");
    assert!(failure.contains("re-prompted at 'purchase.choose_product'"), "{failure}");
    let lenient = parse_file(path, &source.replace("reprompts: none\n", "")).expect("parses");
    assert!(run(&lenient[0], "digital_certificate", "v2").is_ok());
}
