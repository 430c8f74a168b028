//! Command-line arguments (clap derive). Kept declarative: the commands
//! module does the work.

use clap::{Parser, Subcommand};

/// Switchyard: a WhatsApp conversation engine whose flows exist in several
/// versions side by side. Each new conversation is pinned to one version,
/// chosen by an explicit policy; `FLOW_VERSION_OVERRIDES=flow=vN` beats
/// everything and is the one-line rollback.
///
/// Configuration comes from the environment or a TOML file (SWITCHYARD_CONFIG,
/// the environment wins): DATABASE_URL (default
/// sqlite://switchyard.db), FLOW_VERSION_OVERRIDES, SESSION_TTL (default 30m),
/// HANDOFF_TTL (default 24h).
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about, long_about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Evolution API channel: an HTTP server for Evolution's webhook
    /// that answers customers through Evolution's REST API.
    ///
    /// Needs EVOLUTION_URL; see the README for every variable (BIND_ADDR,
    /// EVOLUTION_API_KEY, WEBHOOK_SECRET, SEND_THROTTLE, ...).
    Serve,
    /// Drive synthetic customers through the real engine and store, with a
    /// behaviour per version, to demonstrate and test a split and its report.
    ///
    /// Uses the DATABASE_URL database and its rollout policy exactly as
    /// `serve` does; time is simulated and the run ends shortly before now.
    Simulate(crate::commands::simulate::SimulateArgs),
    /// Run a flow's recorded sessions (or a corpus) through a candidate
    /// version in memory, and compare it with the version that served them:
    /// alignment, first divergence, understanding, handoffs, a verdict.
    Replay(crate::commands::replay::ReplayArgs),
    /// Per-version results of a flow: sessions, completion/handoff/expiry/
    /// failure rates with 95% intervals, the funnel per step side by side, and
    /// an A/B comparison with a plain-language verdict.
    Report {
        flow: String,
        /// Versions to show, baseline first (default: every version with sessions).
        #[arg(long, value_delimiter = ',')]
        versions: Option<Vec<String>>,
        /// Sessions started from this time (RFC 3339 or a date).
        #[arg(long)]
        since: Option<String>,
        /// Sessions started before this time.
        #[arg(long)]
        until: Option<String>,
        /// Only sessions on this Evolution instance.
        #[arg(long)]
        instance: Option<String>,
        /// Finished sessions per version before a winner may be named.
        #[arg(long, default_value_t = 100)]
        min_finished: u64,
        #[arg(long)]
        json: bool,
    },
    /// Change which version new sessions get, at runtime and audited: pins,
    /// instance rules, schedules, splits, promotion. Every running `serve`
    /// applies a change within a second; FLOW_VERSION_OVERRIDES still wins.
    Rollout {
        #[command(subcommand)]
        action: RolloutAction,
    },
    /// The audit log: deploys and policy changes; `audit ran` tells which
    /// versions served sessions in a time window.
    Audit {
        #[command(subcommand)]
        action: Option<AuditAction>,
        /// Only records about this flow (deploys concern every flow).
        #[arg(long)]
        flow: Option<String>,
        /// From this time on (RFC 3339 or a date).
        #[arg(long)]
        since: Option<String>,
        /// Before this time.
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Human handoffs: after a handoff the bot is silent for the contact
    /// until released or HANDOFF_TTL passes.
    Handoff {
        #[command(subcommand)]
        action: HandoffAction,
    },
    /// Live sessions, one contact's history, ending a session by hand, and
    /// erasing a contact's personal data (LGPD).
    Sessions {
        #[command(subcommand)]
        action: SessionsAction,
    },
    /// List every compiled flow version (or show one, or draw its graph).
    Flows {
        #[command(subcommand)]
        action: Option<FlowsAction>,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Validate the flow registry and the configuration (FLOW_VERSION_OVERRIDES,
    /// SESSION_TTL, ...). Exit 0 when all is well, 1 with one line per problem.
    Check,
    /// Accuracy of a version's classifiers on the labelled evaluation set
    /// (overall, per class, confusion pairs): the keyword classifier, and the
    /// model too when LLM_BASE_URL is set.
    EvalClassifier {
        /// FLOW@VERSION, e.g. digital_certificate@v2.
        #[arg(value_name = "FLOW@VERSION")]
        spec: String,
        #[arg(long)]
        json: bool,
    },
    /// Show the version a new session would get now, and why.
    Explain {
        /// The flow, e.g. digital_certificate.
        #[arg(long)]
        flow: String,
        /// The customer's phone number or WhatsApp id.
        #[arg(long)]
        contact: String,
        /// The Evolution API instance the message would arrive on.
        #[arg(long, default_value = "console")]
        instance: String,
        /// Print {"flow","version","reason",...} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Talk to the bot on the console, over the same engine and store as the
    /// server. Reads customer lines from stdin (a terminal or a pipe).
    ///
    /// Meta-lines: `/wait 31m` advances this chat's clock; `/state` prints the
    /// session; `/reset` ends it (and any handoff); `/audio` sends a voice note.
    Chat {
        /// The customer's phone number.
        #[arg(long, default_value = "5511999990000")]
        contact: String,
        /// The Evolution API instance to pretend the messages arrive on.
        #[arg(long, default_value = "console")]
        instance: String,
        /// One JSON object per line: replies and session ends.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum FlowsAction {
    /// Publish a flow document (TOML) as the next version of its flow:
    /// validated, its transcripts run, stored inactive and audited. Every
    /// `serve` loads it within a second.
    Publish {
        /// The document, e.g. billing.toml.
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
        /// Why (recorded in the audit log).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Run transcripts against an unpublished flow document.
    Test {
        /// The document.
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
        /// Transcript files (besides those the document names).
        #[arg(value_name = "TRANSCRIPTS")]
        transcripts: Vec<std::path::PathBuf>,
    },
    /// Write a compiled version as a flow document, naming the steps that
    /// cannot be written as one.
    Export {
        /// FLOW@VERSION, e.g. billing@v1.
        #[arg(value_name = "FLOW@VERSION")]
        spec: String,
    },
    /// Steps, subroutes and transitions of one version.
    Show {
        /// FLOW@VERSION, e.g. digital_certificate@v1.
        #[arg(value_name = "FLOW@VERSION")]
        spec: String,
        #[arg(long)]
        json: bool,
    },
    /// What changed between two versions: steps added or removed,
    /// transitions changed, texts added, removed or reworded.
    Diff {
        /// The older version, FLOW@VERSION.
        #[arg(value_name = "FROM")]
        from: String,
        /// The newer version, FLOW@VERSION.
        #[arg(value_name = "TO")]
        to: String,
        #[arg(long)]
        json: bool,
    },
    /// Everything an auditor needs about one version: fingerprint, steps,
    /// interrupts, every text and embedded file.
    Snapshot {
        /// FLOW@VERSION, e.g. digital_certificate@v1.
        #[arg(value_name = "FLOW@VERSION")]
        spec: String,
        /// md (Markdown, for people) or json (for tools).
        #[arg(long, default_value = "md")]
        format: String,
    },
    /// Start a new version as a copy of another: the folder with the version
    /// renamed (declared inactive) and its transcripts; nothing else changes.
    New {
        /// The new version, FLOW@VERSION, e.g. digital_certificate@v4.
        #[arg(value_name = "FLOW@VERSION")]
        spec: String,
        /// The version to copy, e.g. v3.
        #[arg(long, value_name = "VERSION")]
        from: String,
        /// The flows crate (holding src/<flow>/v<N>/).
        #[arg(long, default_value = "crates/flows")]
        dir: std::path::PathBuf,
    },
    /// The version's step graph as a Mermaid flowchart.
    Graph {
        /// FLOW@VERSION, e.g. digital_certificate@v1.
        #[arg(value_name = "FLOW@VERSION")]
        spec: String,
    },
    /// Lock released versions: add them with their fingerprints to
    /// crates/flows/versions.lock. A locked version is never changed.
    Lock {
        /// The versions to lock (FLOW@VERSION); none: every compiled version
        /// not locked yet.
        #[arg(value_name = "FLOW@VERSION")]
        specs: Vec<String>,
        /// The lock file (default: crates/flows/versions.lock of this source tree).
        #[arg(long)]
        file: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum HandoffAction {
    /// Let the bot answer the contact again.
    Release {
        /// The customer's phone number or WhatsApp id.
        contact: String,
        /// The Evolution API instance.
        #[arg(long, default_value = "console")]
        instance: String,
        /// Why, for the audit log.
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsAction {
    /// Live sessions, longest-running first.
    #[command(disable_version_flag = true)]
    List {
        #[arg(long)]
        flow: Option<String>,
        /// `v2` (needs --flow).
        #[arg(long)]
        version: Option<String>,
        #[arg(long)]
        step: Option<String>,
        #[arg(long)]
        instance: Option<String>,
        #[arg(long, default_value_t = 200)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// One contact's sessions on every instance: versions, steps, outcomes, times.
    Show {
        /// The customer's phone number or WhatsApp id.
        contact: String,
        #[arg(long)]
        json: bool,
    },
    /// End the contact's live session now (outcome `cancelled`, detail
    /// `operator`); audited as `end_session` with `cli:<user>` as the actor.
    End {
        contact: String,
        /// Only on this instance (default: every instance).
        #[arg(long)]
        instance: Option<String>,
        /// Why, for the audit log (default: "ended by hand").
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// A flow's recorded sessions as a replay corpus (JSON lines) on stdout,
    /// personal data replaced by stand-ins of the same kind.
    Export {
        #[arg(long)]
        flow: String,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        instance: Option<String>,
        #[arg(long, default_value_t = 10_000)]
        limit: u32,
        /// Required: the export is always masked.
        #[arg(long)]
        masked: bool,
    },
    /// Erase the contact's personal data everywhere (messages, session data,
    /// outbox, event details, pins), keeping anonymous counts; audited.
    Forget {
        contact: String,
        /// Why (the request or ticket): recorded in the audit.
        #[arg(long)]
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}

#[derive(Debug, Subcommand)]
pub enum RolloutAction {
    /// The override and every flow's rules (or one flow's).
    Show {
        flow: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Keep contacts (test numbers, a customer) on a version.
    Pin {
        #[arg(value_name = "FLOW@VERSION")]
        spec: String,
        #[arg(required = true)]
        contacts: Vec<String>,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Remove contacts' pins.
    Unpin {
        flow: String,
        #[arg(required = true)]
        contacts: Vec<String>,
        #[arg(long)]
        reason: String,
    },
    /// Send every new session on an Evolution instance to a version.
    Instance {
        #[arg(value_name = "FLOW@VERSION")]
        spec: String,
        instance: String,
        #[arg(long)]
        reason: String,
    },
    /// A version for new sessions inside [--from, --until); afterwards new
    /// sessions go back by themselves.
    Schedule {
        #[arg(value_name = "FLOW@VERSION")]
        spec: String,
        /// Start (RFC 3339 such as 2026-12-01T00:00:00-03:00, or a date).
        #[arg(long)]
        from: String,
        /// End, exclusive.
        #[arg(long)]
        until: String,
        #[arg(long)]
        reason: String,
    },
    /// Weighted, sticky split: WEIGHTS like v1=90,v2=10 (sum 100, fractions
    /// such as 0.5 allowed; the first version is the baseline).
    Split {
        flow: String,
        weights: String,
        /// Bucketing salt (default: the flow name); a new salt re-randomises.
        #[arg(long)]
        salt: Option<String>,
        /// Keep a contact on the version a split served it for N days.
        #[arg(long, default_value_t = 0)]
        memory_days: u32,
        /// Guard the candidate: roll it back to the baseline when it is
        /// significantly worse on this metric (completion, handoff, failure, expiry).
        #[arg(long)]
        guard: Option<String>,
        /// Finished sessions each version needs before the guard may act.
        #[arg(long, default_value_t = 100)]
        guard_min_sessions: u64,
        /// Tolerated degradation in percentage points.
        #[arg(long, default_value_t = 2.0)]
        guard_tolerance: f64,
        /// Confidence the guard needs (0.5 to under 1).
        #[arg(long, default_value_t = 0.95)]
        guard_confidence: f64,
        #[arg(long)]
        reason: String,
    },
    /// Make a version the policy's active one (no deploy needed).
    Promote {
        #[arg(value_name = "FLOW@VERSION")]
        spec: String,
        #[arg(long)]
        reason: String,
    },
    /// The drain view: per version, live sessions, when the last of them
    /// expires if nobody writes, and the share of new sessions in the last hour.
    Status {
        flow: String,
        #[arg(long)]
        json: bool,
    },
    /// End FLOW@VERSION's live sessions now and restart each customer on the
    /// version that resolves now, with a short message (change the policy first).
    Evacuate {
        #[arg(value_name = "FLOW@VERSION")]
        spec: String,
        #[arg(long)]
        reason: String,
    },
    /// Evaluate every split guard once now (serve does it periodically).
    CheckGuards,
    /// Remove rules of a flow: one kind or all.
    Clear {
        flow: String,
        /// pin, instance, schedule, split, promote or all.
        #[arg(long, default_value = "all")]
        kind: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Which versions of FLOW served sessions started in [--from, --to), with
    /// fingerprints and session counts.
    Ran {
        #[arg(long)]
        flow: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        json: bool,
    },
}
