//! `switchyard audit`: deploys and policy changes; `audit ran`: which
//! versions served sessions in a window.

use std::process::ExitCode;

use switchyard_engine::time::Timestamp;

use crate::cli::AuditAction;

fn time(name: &str, text: Option<&str>) -> Result<Option<Timestamp>, String> {
    text.map(|text| Timestamp::parse_rfc3339(text).map_err(|problem| format!("{name}: {problem}"))).transpose()
}

pub async fn run(action: Option<AuditAction>, flow: Option<String>, since: Option<String>, until: Option<String>, json: bool) -> anyhow::Result<ExitCode> {
    let config = match switchyard::config::Config::from_env() {
        Ok(config) => config,
        Err(problems) => {
            super::report(&problems);
            return Ok(ExitCode::from(super::INVALID));
        }
    };
    if let Some(AuditAction::Ran { flow, from, to, json }) = action {
        let (from, to) = match (time("--from", Some(&from)), time("--to", Some(&to))) {
            (Ok(Some(from)), Ok(Some(to))) => (from, to),
            (Err(problem), _) | (_, Err(problem)) => {
                super::report(&[problem]);
                return Ok(ExitCode::from(super::INVALID));
            }
            _ => return Ok(ExitCode::from(super::INVALID)),
        };
        let store = match super::existing_store_or_refuse(&config).await? {
        Ok(store) => store,
        Err(code) => return Ok(code),
    };
        let served = store.served(&flow, from, to).await?;
        if json {
            let rows: Vec<serde_json::Value> = served
                .iter()
                .map(|row| {
                    serde_json::json!({
                        "flow": flow, "version": row.version.to_string(), "fingerprint": row.fingerprint,
                        "sessions": row.sessions, "first_started": row.first.to_string(), "last_started": row.last.to_string(),
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(rows));
        } else if served.is_empty() {
            println!("no {flow} sessions started between {from} and {to}");
        } else {
            println!("{flow} sessions started in [{from}, {to}):");
            for row in served {
                println!("  {}  fingerprint {}  {} sessions (first {}, last {})", row.version, row.fingerprint, row.sessions, row.first, row.last);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (since, until) = match (time("--since", since.as_deref()), time("--until", until.as_deref())) {
        (Ok(since), Ok(until)) => (since, until),
        (Err(problem), _) | (_, Err(problem)) => {
            super::report(&[problem]);
            return Ok(ExitCode::from(super::INVALID));
        }
    };
    let store = match super::existing_store_or_refuse(&config).await? {
        Ok(store) => store,
        Err(code) => return Ok(code),
    };
    let records = store.audit(flow.as_deref(), since, until).await?;
    if json {
        let entries: Vec<switchyard::views::records::AuditEntry> = records.iter().map(Into::into).collect();
        println!("{}", serde_json::to_string(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        println!("no audit records");
    }
    for record in records {
        println!("#{} {} {} {} {} — {}", record.seq, record.at, record.actor, record.action, record.flow.as_deref().unwrap_or("(all flows)"), record.reason);
        if record.action != "deploy" {
            let show = |value: &Option<serde_json::Value>| value.as_ref().map_or("(no rules)".to_owned(), ToString::to_string);
            println!("    before: {}", show(&record.before));
            println!("    after:  {}", show(&record.after));
        }
    }
    Ok(ExitCode::SUCCESS)
}
