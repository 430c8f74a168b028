//! `switchyard sessions`: what support needs day to day. Live sessions
//! (filtered), one contact's history, ending a session by hand, and erasing
//! a contact (LGPD).

use std::process::ExitCode;

use serde_json::{json, Value};
use switchyard_engine::event::EventKind;
use switchyard_engine::store::Store;
use switchyard::sessions::session_json;
use switchyard_engine::ids::{Contact, InstanceId, Version};
use switchyard_engine::time::Timestamp;
use switchyard_store::sessions::LiveFilter;
use switchyard_store::Db;

use crate::cli::SessionsAction;

fn invalid(problem: String) -> ExitCode {
    super::report(&[problem]);
    ExitCode::from(super::INVALID)
}

pub async fn run(action: SessionsAction) -> anyhow::Result<ExitCode> {
    match action {
        SessionsAction::List { flow, version, step, instance, limit, json } => list(flow, version, step, instance, limit, json).await,
        SessionsAction::Show { contact, json } => show(&contact, json).await,
        SessionsAction::End { contact, instance, reason } => end(&contact, instance.as_deref(), &reason).await,
        SessionsAction::Forget { contact, reason } => forget(&contact, &reason).await,
        SessionsAction::Export { flow, since, until, instance, limit, masked } => {
            super::replay::export(&flow, since.as_deref(), until.as_deref(), instance.as_deref(), limit, masked).await
        }
    }
}

async fn store() -> anyhow::Result<Result<Db, ExitCode>> {
    match switchyard::config::Config::from_env() {
        Ok(config) => super::existing_store_or_refuse(&config).await,
        Err(problems) => {
            super::report(&problems);
            Ok(Err(ExitCode::from(super::INVALID)))
        }
    }
}

async fn list(flow: Option<String>, version: Option<String>, step: Option<String>, instance: Option<String>, limit: u32, json: bool) -> anyhow::Result<ExitCode> {
    let version = match version.as_deref().map(Version::parse).transpose() {
        Ok(version) => version,
        Err(problem) => return Ok(invalid(format!("--version: {problem}"))),
    };
    if version.is_some() && flow.is_none() {
        return Ok(invalid("--version needs --flow (versions are numbered per flow)".to_owned()));
    }
    let instance = match instance.as_deref().map(InstanceId::parse).transpose() {
        Ok(instance) => instance,
        Err(problem) => return Ok(invalid(format!("--instance: {problem}"))),
    };
    let store = match store().await? {
        Ok(store) => store,
        Err(code) => return Ok(code),
    };
    let filter = LiveFilter { flow: flow.as_deref(), version, step: step.as_deref(), instance: instance.as_ref() };
    let sessions = store.live_sessions(&filter, limit).await?;
    if json {
        println!("{}", Value::Array(sessions.iter().map(session_json).collect()));
        return Ok(ExitCode::SUCCESS);
    }
    if sessions.is_empty() {
        println!("no live sessions match");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<16} {:<12} {:<24} {:<30} {:>5}  {:<20}  expires", "contact", "instance", "flow@version", "step", "turns", "started");
    let now = Timestamp::now_utc();
    for session in &sessions {
        let expiry = if session.expires_at() <= now { "due (the sweeper ends it)".to_owned() } else { session.expires_at().to_string() };
        println!(
            "{:<16} {:<12} {:<24} {:<30} {:>5}  {:<20}  {expiry}",
            session.contact().as_str(),
            session.instance().as_str(),
            format!("{}@{}", session.flow(), session.version()),
            session.step().as_str(),
            session.turns(),
            session.started_at().to_string(),
        );
    }
    if sessions.len() as u32 == limit {
        println!("(first {limit}; use --limit for more)");
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(contact: &str, json: bool) -> anyhow::Result<ExitCode> {
    let contact = match Contact::parse(contact) {
        Ok(contact) => contact,
        Err(problem) => return Ok(invalid(format!("CONTACT: {problem}"))),
    };
    let store = match store().await? {
        Ok(store) => store,
        Err(code) => return Ok(code),
    };
    let history = store.history_of(&contact).await?;
    // The path through each session: the steps entered, re-prompts, how it ended.
    let mut paths = Vec::with_capacity(history.len());
    for session in &history {
        let events = store.events_of(session.id()).await?;
        let path: Vec<String> = events
            .iter()
            .filter_map(|event| match &event.kind {
                EventKind::StepEntered => event.step.as_ref().map(ToString::to_string),
                EventKind::Retried => Some("(retry)".to_owned()),
                EventKind::Ended { outcome, detail } => Some(match detail {
                    Some(detail) => format!("[{outcome}: {detail}]"),
                    None => format!("[{outcome}]"),
                }),
                EventKind::Undeliverable { .. } => Some("(undeliverable reply)".to_owned()),
                EventKind::Received { medium } => Some(format!("({medium})")),
                EventKind::Started { .. } | EventKind::Classified(_) | EventKind::SlotFilled { .. } | EventKind::SlotMissed { .. } => None,
            })
            .collect();
        paths.push(path);
    }
    if json {
        let sessions = history.iter().zip(&paths).map(|(session, path)| {
            let mut value = session_json(session);
            value["path"] = json!(path);
            value
        });
        println!("{}", Value::Array(sessions.collect()));
        return Ok(ExitCode::SUCCESS);
    }
    if history.is_empty() {
        println!("no sessions for {}", contact.masked());
        return Ok(ExitCode::SUCCESS);
    }
    println!("sessions of {} (newest first):", contact.masked());
    for (session, path) in history.iter().zip(&paths) {
        let end = match (session.outcome(), session.ended_at()) {
            (Some(outcome), Some(at)) => format!("{outcome} at {} ({at})", session.step()),
            _ => format!("LIVE at {}", session.step()),
        };
        println!(
            "  {}  {}  {}@{} ({})  {} turns  {end}",
            session.started_at(),
            session.instance(),
            session.flow(),
            session.version(),
            session.reason().name(),
            session.turns()
        );
        println!("      {}", path.join(" → "));
    }
    Ok(ExitCode::SUCCESS)
}

async fn end(contact: &str, instance: Option<&str>, reason: &str) -> anyhow::Result<ExitCode> {
    let contact = match Contact::parse(contact) {
        Ok(contact) => contact,
        Err(problem) => return Ok(invalid(format!("CONTACT: {problem}"))),
    };
    let instance = match instance.map(InstanceId::parse).transpose() {
        Ok(instance) => instance,
        Err(problem) => return Ok(invalid(format!("--instance: {problem}"))),
    };
    let (_, engine, store) = match super::setup_with_existing_store().await? {
        Ok(setup) => setup,
        Err(code) => return Ok(code),
    };
    let ended = switchyard::sessions::end_by_hand(&engine, &store, &contact, instance.as_ref(), &super::rollout::actor(), reason).await?;
    if ended.ended == 0 {
        println!("{} has no live session; nothing to end", contact.masked());
    } else {
        println!("ended {} live session(s) of {} (cancelled, detail 'operator'; audited)", ended.ended, contact.masked());
    }
    Ok(ExitCode::SUCCESS)
}

async fn forget(contact: &str, reason: &str) -> anyhow::Result<ExitCode> {
    let contact = match Contact::parse(contact) {
        Ok(contact) => contact,
        Err(problem) => return Ok(invalid(format!("CONTACT: {problem}"))),
    };
    if reason.trim().is_empty() {
        return Ok(invalid("--reason must say why (the request or ticket); it is recorded in the audit".to_owned()));
    }
    let (_, engine, store) = match super::setup_with_existing_store().await? {
        Ok(setup) => setup,
        Err(code) => return Ok(code),
    };
    let (erasure, ended) = switchyard::sessions::forget(&engine, &store, &contact, &super::rollout::actor(), reason.trim()).await?;
    let aliases = match erasure.ids.saturating_sub(1) {
        0 => String::new(),
        1 => " and its linked id".to_owned(),
        n => format!(" and its {n} linked ids"),
    };
    println!(
        "erased {}{aliases}: {} sessions ({} ended now), {} events, {} inbox and {} outbox messages, {} holds, {} assignments, {} policy and {} audit records rewritten",
        contact.masked(),
        erasure.sessions,
        ended,
        erasure.events,
        erasure.inbox,
        erasure.outbox,
        erasure.handoffs,
        erasure.assignments,
        erasure.policy,
        erasure.audit
    );
    println!("the contact is now {} in every row; audit record #{} (switchyard audit)", erasure.pseudonym, erasure.audit_seq);
    Ok(ExitCode::SUCCESS)
}
