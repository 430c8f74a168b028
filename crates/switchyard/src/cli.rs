//! Command-line arguments (clap derive). Kept declarative: the commands
//! module does the work.

use clap::{Parser, Subcommand};

/// Switchyard: a WhatsApp conversation engine whose flows exist in several
/// versions side by side. Each new conversation is pinned to one version,
/// chosen by an explicit policy; `FLOW_VERSION_OVERRIDES=flow=vN` beats
/// everything and is the one-line rollback.
///
/// Configuration comes from the environment: DATABASE_URL (default
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
    /// Human handoffs: after a handoff the bot is silent for the contact
    /// until released or HANDOFF_TTL passes.
    Handoff {
        #[command(subcommand)]
        action: HandoffAction,
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
    /// Steps, subroutes and transitions of one version.
    Show {
        /// FLOW@VERSION, e.g. digital_certificate@v1.
        #[arg(value_name = "FLOW@VERSION")]
        spec: String,
        #[arg(long)]
        json: bool,
    },
    /// The version's step graph as a Mermaid flowchart.
    Graph {
        /// FLOW@VERSION, e.g. digital_certificate@v1.
        #[arg(value_name = "FLOW@VERSION")]
        spec: String,
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
