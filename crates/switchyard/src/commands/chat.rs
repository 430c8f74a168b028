//! `switchyard chat`: the console channel. Customer lines come from stdin;
//! bot replies go to stdout. Same engine and store as the server, so a chat
//! session shows up in the event log like any other.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use switchyard_engine::engine::{Content, Inbound, Turn};
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::service::Conversations;
use switchyard_engine::session::Outcome;
use switchyard_engine::store::Store;
use switchyard_engine::time::{parse_duration, Clock, Timestamp};

/// The wall clock plus an offset that `/wait` moves forward.
#[derive(Clone, Default)]
struct ChatClock {
    offset_millis: Arc<AtomicI64>,
}

impl Clock for ChatClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(Timestamp::now_utc().as_millis() + self.offset_millis.load(Ordering::Relaxed))
    }
}

struct Printer {
    json: bool,
    out: std::io::Stdout,
}

impl Printer {
    fn turn(&mut self, turn: &Turn) -> std::io::Result<()> {
        let mut out = self.out.lock();
        // Sessions that ended before the replies were produced (expiry, handover)
        // are announced first, so the order reads as it happened.
        let mut ended: Vec<_> = turn.ended().collect();
        ended.sort_by_key(|session| session.ended_at());
        for reply in &turn.replies {
            if self.json {
                let value = serde_json::json!({
                    "type": "reply",
                    "flow": reply.flow.as_ref().map(|flow| flow.as_str()),
                    "version": reply.version.map(|version| version.to_string()),
                    "step": reply.step.as_ref().map(|step| step.as_str()),
                    "text": reply.text.as_str(),
                });
                writeln!(out, "{value}")?;
            } else {
                let mut lines = reply.text.lines();
                writeln!(out, "bot │ {}", lines.next().unwrap_or(""))?;
                for line in lines {
                    writeln!(out, "    │ {line}")?;
                }
            }
        }
        for session in ended {
            let detail = turn.events.iter().find_map(|event| match &event.kind {
                switchyard_engine::event::EventKind::Ended { detail, .. } if event.session == session.id() => detail.clone(),
                _ => None,
            });
            let outcome = session.outcome().unwrap_or(Outcome::Failed);
            if self.json {
                let value = serde_json::json!({
                    "type": "session_end",
                    "flow": session.flow().as_str(),
                    "version": session.version().to_string(),
                    "outcome": outcome.as_str(),
                    "step": session.step().as_str(),
                    "detail": detail,
                });
                writeln!(out, "{value}")?;
            } else {
                let detail = detail.map(|detail| format!(", {detail}")).unwrap_or_default();
                writeln!(
                    out,
                    "  ── session ended: {outcome} ({}@{} at step {}{detail})",
                    session.flow(),
                    session.version(),
                    session.step()
                )?;
            }
        }
        if turn.silenced {
            if self.json {
                writeln!(out, "{}", serde_json::json!({ "type": "silenced" }))?;
            } else {
                writeln!(out, "  ── a human has this conversation: the bot stays silent (/reset to start over)")?;
            }
        }
        out.flush()
    }

    fn note(&mut self, text: &str) -> std::io::Result<()> {
        let mut out = self.out.lock();
        if !self.json {
            writeln!(out, "  ── {text}")?;
        }
        out.flush()
    }
}

pub async fn run(contact: &str, instance: &str, json: bool) -> anyhow::Result<ExitCode> {
    let (config, engine, store) = match super::setup_with_store().await? {
        Ok(setup) => setup,
        Err(code) => return Ok(code),
    };
    let (contact, instance) = match super::contact_and_instance(contact, instance) {
        Ok(parsed) => parsed,
        Err(code) => return Ok(code),
    };
    let clock = ChatClock::default();
    let model = super::model(&config)?.map(|llm| llm as Arc<dyn switchyard_engine::classify::Model>);
    let conversations = Conversations::new(engine, switchyard::holding::HoldingStore::new(store, clock.clone()), clock.clone()).with_model(model);
    let mut printer = Printer { json, out: std::io::stdout() };

    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal() && !json;
    if interactive {
        println!("Switchyard console — you are the customer {} on instance {instance}.", contact.masked());
        println!("Type a message; /wait 31m, /state, /reset, /audio; Ctrl-D to quit.\n");
    }
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            print!("você> ");
            std::io::stdout().flush()?;
        }
        let Some(line) = lines.next() else { break };
        let line = line.context("reading stdin")?;
        let trimmed = line.trim();
        if let Some(command) = trimmed.strip_prefix('/') {
            let (name, argument) = command.split_once(' ').map_or((command, ""), |(name, arg)| (name, arg.trim()));
            match name {
                "wait" => match parse_duration(argument) {
                    Ok(duration) => {
                        clock.offset_millis.fetch_add(duration.as_millis() as i64, Ordering::Relaxed);
                        printer.note(&format!("{argument} later"))?;
                        expire_due(&conversations, &instance, &contact, &mut printer).await?;
                    }
                    Err(problem) => eprintln!("error: /wait: {problem}"),
                },
                "state" => print_state(&conversations, &instance, &contact, json).await?,
                "reset" => {
                    let turn = conversations.close(&instance, &contact, Outcome::Cancelled, "reset").await?;
                    let released = conversations.store().release_handoff(&instance, &contact).await?;
                    match turn {
                        Some(turn) => printer.turn(&turn)?,
                        None if released => printer.note("handoff released")?,
                        None => printer.note("no live session")?,
                    }
                }
                "audio" => {
                    let inbound = Inbound { instance: instance.clone(), contact: contact.clone(), content: Content::Unsupported("audio".to_owned()) };
                    let turn = conversations.handle(&inbound).await?;
                    printer.turn(&turn)?;
                }
                _ => eprintln!("error: unknown console command '/{name}' (try /wait 31m, /state, /reset, /audio)"),
            }
            continue;
        }
        if !interactive && !json {
            println!("você> {line}");
        }
        let inbound = Inbound { instance: instance.clone(), contact: contact.clone(), content: Content::Text(line) };
        let turn = conversations.handle(&inbound).await?;
        printer.turn(&turn)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// After `/wait`: expires this contact's session if its TTL passed, as the
/// server's sweeper would.
async fn expire_due<S: Store>(
    conversations: &Conversations<S, ChatClock>,
    instance: &InstanceId,
    contact: &Contact,
    printer: &mut Printer,
) -> anyhow::Result<()> {
    let now = conversations.clock().now();
    let state = conversations.store().contact_state(instance, contact).await?;
    if state.session.as_ref().is_some_and(|session| session.is_live() && session.expires_at() <= now)
        && let Some(turn) = conversations.engine().expire_all(state, now)
    {
        conversations.store().commit(&turn).await?;
        printer.turn(&turn)?;
    }
    Ok(())
}

async fn print_state<S: Store>(
    conversations: &Conversations<S, ChatClock>,
    instance: &InstanceId,
    contact: &Contact,
    json: bool,
) -> anyhow::Result<()> {
    let state = conversations.store().contact_state(instance, contact).await?;
    let now = conversations.clock().now();
    let session = state.session.filter(|session| session.is_live());
    let handoff = state.handoff_until.filter(|until| *until > now);
    // The flows the session called and is waiting for (outermost first): the
    // customer is talking to the last one, on its own version.
    let calls: Vec<&switchyard_engine::session::Session> = state.calls.iter().filter(|call| call.is_live()).collect();
    if json {
        let value = match &session {
            Some(session) => serde_json::json!({
                "type": "state",
                "flow": session.flow().as_str(),
                "version": session.version().to_string(),
                "step": session.step().as_str(),
                "reason": session.reason().name(),
                "fingerprint": session.fingerprint().as_str(),
                "turns": session.turns(),
                "expires_in_seconds": session.expires_at().millis_since(now) / 1000,
                "data": session.data().iter().collect::<std::collections::BTreeMap<_, _>>(),
                "handoff_until": handoff.map(|until| until.to_string()),
                "calls": calls.iter().map(|call| serde_json::json!({
                    "flow": call.flow().as_str(),
                    "version": call.version().to_string(),
                    "step": call.step().as_str(),
                    "reason": call.reason().name(),
                    "fingerprint": call.fingerprint().as_str(),
                })).collect::<Vec<_>>(),
            }),
            None => serde_json::json!({ "type": "state", "flow": null, "handoff_until": handoff.map(|until| until.to_string()) }),
        };
        println!("{value}");
        return Ok(());
    }
    match session {
        Some(session) => {
            println!("  ── session {}@{} at step {}", session.flow(), session.version(), session.step());
            println!("     reason: {}, fingerprint: {}, turns: {}", session.reason(), session.fingerprint().short(), session.turns());
            println!("     expires in {}s", session.expires_at().millis_since(now) / 1000);
            for call in &calls {
                println!("     called {}@{}, now at step {} (reason: {}, fingerprint: {})", call.flow(), call.version(), call.step(), call.reason(), call.fingerprint().short());
            }
            // The innermost frame holds the data collected so far.
            let data = calls.last().map_or(session.data(), |call| call.data());
            for (key, value) in data.iter() {
                println!("     {key} = {value}");
            }
        }
        None => println!("  ── no live session"),
    }
    if let Some(until) = handoff {
        println!("  ── handed off to a human until {until}");
    }
    Ok(())
}
