//! Debounce: customers send bursts ("oi" / "tudo bem?" / "quero meu
//! boleto"). With a window set for the instance, the processor waits until
//! the contact has been quiet for the window (the timer restarts with each
//! message, as in Evolution's bots), then merges the burst into one inbox
//! entry whose text is the messages joined with "\n". Off by default.
//!
//! Order and durability are the inbox's: the burst is read in processing
//! order and merged in one transaction before the turn, so a crash at any
//! point leaves either the separate entries or the merged one.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use switchyard_engine::engine::Content;
use switchyard_engine::queue::{InboxKind, Pending};
use switchyard_engine::store::StoreError;
use switchyard_engine::time::{parse_duration, Timestamp};

use super::AppState;

/// Longest window accepted: longer would make the bot look dead.
const MAX_WINDOW: Duration = Duration::from_secs(60);

/// Windows per instance: `DEBOUNCE=3s` (every instance) or
/// `DEBOUNCE=vendas=3s,suporte=off,2s` (per instance, with a default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Debounce {
    default: Option<Duration>,
    instances: HashMap<String, Option<Duration>>,
}

fn window(text: &str, entry: &str) -> Result<Option<Duration>, String> {
    if matches!(text, "off" | "0") {
        return Ok(None);
    }
    let duration = parse_duration(text).map_err(|problem| format!("entry '{entry}': {problem}"))?;
    if duration.is_zero() || duration > MAX_WINDOW {
        return Err(format!("entry '{entry}': the window must be between 1ms and 60s (or off)"));
    }
    Ok(Some(duration))
}

impl Debounce {
    pub fn parse(text: &str) -> Result<Debounce, String> {
        let mut debounce = Debounce::default();
        for entry in text.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            match entry.split_once('=') {
                Some((instance, value)) => {
                    let instance = instance.trim();
                    switchyard_engine::ids::InstanceId::parse(instance).map_err(|problem| format!("entry '{entry}': {problem}"))?;
                    if debounce.instances.insert(instance.to_owned(), window(value.trim(), entry)?).is_some() {
                        return Err(format!("instance '{instance}' is listed twice"));
                    }
                }
                None => debounce.default = window(entry, entry)?,
            }
        }
        Ok(debounce)
    }

    /// Every instance gets `window` (tests, the TOML file).
    pub fn everywhere(window: Duration) -> Debounce {
        Debounce { default: Some(window), instances: HashMap::new() }
    }

    pub fn window(&self, instance: &str) -> Option<Duration> {
        self.instances.get(instance).copied().unwrap_or(self.default)
    }
}

impl fmt::Display for Debounce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |window: Option<Duration>| window.map_or_else(|| "off".to_owned(), |window| format!("{}ms", window.as_millis()));
        write!(f, "{}", show(self.default))?;
        let mut instances: Vec<_> = self.instances.iter().collect();
        instances.sort();
        for (instance, window) in instances {
            write!(f, ",{instance}={}", show(*window))?;
        }
        Ok(())
    }
}

/// What the debounce hook decided.
#[allow(clippy::large_enum_variant)] // reason: `Ready` is every message's path; a box would cost an allocation per message
pub(super) enum Gathered {
    /// Process this entry now (itself, or the merged burst).
    Ready(Pending),
    /// The contact is still typing: look again after this long. The caller
    /// gives its processing slot back meanwhile, so a window never holds up
    /// other contacts.
    Later(Duration),
}

/// The debounce hook of the processor: `pending` itself, or, when the
/// instance has a window and `pending` is text, the merged burst once the
/// contact has been quiet for the window.
pub(super) async fn gather(state: &AppState, pending: Pending) -> Result<Gathered, StoreError> {
    let Some(window) = state.config().debounce.window(pending.entry.instance.as_str()) else { return Ok(Gathered::Ready(pending)) };
    if !matches!(pending.entry.kind, InboxKind::Customer(Content::Text(_))) {
        return Ok(Gathered::Ready(pending));
    }
    // Boxed: the burst's read and merge are kilobytes of future, which
    // inline would be copied with the processor's task for every message,
    // windows or not.
    Box::pin(merge(state, pending, window)).await
}

/// [`gather`] for an instance with a window.
async fn merge(state: &AppState, pending: Pending, window: Duration) -> Result<Gathered, StoreError> {
    let (instance, contact) = (&pending.entry.instance, &pending.entry.contact);
    let burst = state.store().pending_burst(instance, contact).await?;
    let Some(last) = burst.iter().map(|entry| entry.entry.received_at).max() else { return Ok(Gathered::Ready(pending)) };
    let quiet_for = Timestamp::now_utc().millis_since(last).max(0) as u128;
    if quiet_for < window.as_millis() && !*state.inner.stopping.borrow() {
        return Ok(Gathered::Later(Duration::from_millis((window.as_millis() - quiet_for) as u64)));
    }
    if burst.len() < 2 {
        return Ok(Gathered::Ready(burst.into_iter().next().unwrap_or(pending)));
    }
    let texts: Vec<&str> = burst
        .iter()
        .filter_map(|entry| match &entry.entry.kind {
            InboxKind::Customer(Content::Text(text)) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let joined = texts.join("\n");
    let seqs: Vec<i64> = burst.iter().map(|entry| entry.seq).collect();
    state.store().merge_burst(&seqs, &joined).await?;
    tracing::debug!(instance = %instance, contact = %contact.masked(), messages = seqs.len(), "burst merged into one input");
    let mut merged = burst.into_iter().next().unwrap_or(pending);
    merged.entry.kind = InboxKind::Customer(Content::Text(joined));
    Ok(Gathered::Ready(merged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_per_instance_with_a_default() {
        let debounce = Debounce::parse("vendas=3s, suporte=off, 1500ms").unwrap();
        assert_eq!(debounce.window("vendas"), Some(Duration::from_secs(3)));
        assert_eq!(debounce.window("suporte"), None);
        assert_eq!(debounce.window("outra"), Some(Duration::from_millis(1500)));
        assert_eq!(Debounce::parse("").unwrap().window("vendas"), None, "off by default");
        assert_eq!(debounce.to_string(), "1500ms,suporte=off,vendas=3000ms");
        for (text, named) in [("vendas=3", "'vendas=3'"), ("2m", "'2m'"), ("a b=1s", "'a b=1s'"), ("x=1s,x=2s", "'x'")] {
            let problem = Debounce::parse(text).unwrap_err();
            assert!(problem.contains(named), "{text}: {problem}");
        }
    }
}
