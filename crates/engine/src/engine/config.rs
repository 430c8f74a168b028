//! How the engine behaves in every flow: its own texts, the session and
//! handoff lifetimes, the entry flow and the global commands.

use std::time::Duration;

use crate::ids::FlowId;

/// Texts the engine itself sends, in every flow. pt-BR defaults.
#[derive(Clone, Debug)]
pub struct EngineTexts {
    /// After a handler failed: the customer is handed to a human.
    pub apology: String,
    /// For audio, stickers, documents without caption ...
    pub unsupported: String,
    /// When the version a live session was pinned to is gone from this build.
    pub restarted: String,
    /// A handoff the flow did not announce itself: never leave the customer in silence.
    pub handoff: String,
    /// A cancellation the flow did not announce itself.
    pub cancelled: String,
}

impl Default for EngineTexts {
    fn default() -> EngineTexts {
        EngineTexts {
            apology: "Desculpe, tive um problema aqui do meu lado. 😔 Já chamei uma pessoa da nossa equipe para continuar o seu atendimento."
                .to_owned(),
            unsupported: "Por enquanto eu só consigo entender mensagens de texto. Pode escrever, por favor? 🙂".to_owned(),
            restarted: "Desculpe, precisei reiniciar o nosso atendimento. Vamos recomeçar:".to_owned(),
            handoff: "Vou te passar para uma pessoa da nossa equipe. Aguarde um instante, por favor. 🙂".to_owned(),
            cancelled: "Tudo bem, encerrei o atendimento. Quando precisar, é só mandar uma mensagem. 👋".to_owned(),
        }
    }
}

/// The engine's settings (environment-derived in the server).
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Silence after which a session expires (sliding). Default 30 minutes.
    pub session_ttl: Duration,
    /// How long the bot stays silent after a handoff unless released. Default 24 hours.
    pub handoff_ttl: Duration,
    /// The flow a contact without a session starts in.
    pub entry_flow: FlowId,
    pub texts: EngineTexts,
    /// Words that act in every flow and version (`menu`, `sair`, `atendente`).
    pub commands: GlobalCommands,
}

/// What a global command does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// End the session (`cancelled`) and show the main menu (the entry flow).
    Menu,
    /// End the session politely (`cancelled`).
    Exit,
    /// Hand the customer to a human at once (`handoff`).
    Human,
}

impl Command {
    /// The name recorded in the `Ended` event's detail as `command:<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Command::Menu => "menu",
            Command::Exit => "exit",
            Command::Human => "human",
        }
    }
}

/// The words of each global command. A message is a command only when the
/// whole message, normalised ([`crate::text::normalize`]), is one of them:
/// "sair" ends the session, "quero sair do plano" is left to the flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalCommands {
    pub menu: Vec<String>,
    pub exit: Vec<String>,
    pub human: Vec<String>,
}

impl Default for GlobalCommands {
    fn default() -> GlobalCommands {
        let words = |list: &[&str]| list.iter().map(|word| (*word).to_owned()).collect();
        GlobalCommands {
            menu: words(&["menu"]),
            exit: words(&["sair", "encerrar"]),
            human: words(&["atendente", "humano"]),
        }
    }
}

impl GlobalCommands {
    /// No command at all (a deployment that wants the flows to decide everything).
    pub fn none() -> GlobalCommands {
        GlobalCommands { menu: Vec::new(), exit: Vec::new(), human: Vec::new() }
    }

    /// The command `text` is, if any.
    pub fn find(&self, text: &str) -> Option<Command> {
        Self::lookup(&self.normalized(), &crate::text::normalize(text))
    }

    /// Every word normalised with its command, in the order [`GlobalCommands::find`]
    /// tries them (the engine builds this once, not once per message).
    pub(crate) fn normalized(&self) -> Vec<(String, Command)> {
        let words = |list: &[String], command: Command| {
            list.iter().map(move |word| (crate::text::normalize(word), command)).collect::<Vec<_>>()
        };
        let mut all = words(&self.menu, Command::Menu);
        all.extend(words(&self.exit, Command::Exit));
        all.extend(words(&self.human, Command::Human));
        all
    }

    /// The command a message already normalised is, in `normalized` (from
    /// [`GlobalCommands::normalized`]).
    pub(crate) fn lookup(normalized: &[(String, Command)], text: &str) -> Option<Command> {
        if text.is_empty() {
            return None;
        }
        normalized.iter().find(|(word, _)| word == text).map(|(_, command)| *command)
    }
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            session_ttl: Duration::from_secs(30 * 60),
            handoff_ttl: Duration::from_secs(24 * 60 * 60),
            entry_flow: FlowId::new_static("unknown"),
            texts: EngineTexts::default(),
            commands: GlobalCommands::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_the_whole_message_normalised() {
        let commands = GlobalCommands::default();
        assert_eq!(commands.find("Menu"), Some(Command::Menu));
        assert_eq!(commands.find("  SAIR! "), Some(Command::Exit));
        assert_eq!(commands.find("encerrar"), Some(Command::Exit));
        assert_eq!(commands.find("Atendente"), Some(Command::Human));
        assert_eq!(commands.find("humano"), Some(Command::Human));
        assert_eq!(commands.find("quero sair do plano"), None);
        assert_eq!(commands.find("o menu"), None);
        assert_eq!(commands.find(""), None);
        assert_eq!(GlobalCommands::none().find("menu"), None);
        let custom = GlobalCommands { menu: vec!["Início".to_owned()], ..GlobalCommands::none() };
        assert_eq!(custom.find("inicio"), Some(Command::Menu));
    }
}
