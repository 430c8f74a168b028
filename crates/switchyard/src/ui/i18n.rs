//! The console's two languages: English and Brazilian Portuguese, chosen by
//! the `lang` cookie (the switch) or else by `Accept-Language`.

use axum::http::HeaderMap;

/// A console language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    PtBr,
}

/// The cookie the language switch sets.
pub const LANG_COOKIE: &str = "switchyard_lang";

impl Lang {
    /// The `lang` attribute and cookie value.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::PtBr => "pt-BR",
        }
    }

    /// The other language (what the switch offers).
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::PtBr,
            Lang::PtBr => Lang::En,
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        let code = code.trim().to_ascii_lowercase();
        if code == "en" || code.starts_with("en-") {
            Some(Lang::En)
        } else if code == "pt" || code.starts_with("pt-") {
            Some(Lang::PtBr)
        } else {
            None
        }
    }

    /// The switch's cookie, else the first supported language of
    /// `Accept-Language` by quality, else English.
    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(lang) = super::auth::cookie(headers, LANG_COOKIE).and_then(|code| Lang::parse(&code)) {
            return lang;
        }
        let accept = headers.get(axum::http::header::ACCEPT_LANGUAGE).and_then(|value| value.to_str().ok()).unwrap_or_default();
        let mut choices: Vec<(f32, Lang)> = accept
            .split(',')
            .filter_map(|entry| {
                let mut parts = entry.split(';');
                let lang = Lang::parse(parts.next()?)?;
                let quality = parts.find_map(|part| part.trim().strip_prefix("q=")).and_then(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
                Some((quality, lang))
            })
            .collect();
        // Stable: among equal qualities the first listed wins.
        choices.sort_by(|a, b| b.0.total_cmp(&a.0));
        choices.first().map_or(Lang::En, |(_, lang)| *lang)
    }

    /// The text for `key`; the key itself when missing (a test checks every key the templates use).
    pub fn t(self, key: &str) -> &'static str {
        match TEXTS.iter().find(|(known, _, _)| *known == key) {
            Some((_, en, pt)) => match self {
                Lang::En => en,
                Lang::PtBr => pt,
            },
            None => "??",
        }
    }

    /// The text for `key` with `{0}`, `{1}`, ... replaced by `args`.
    pub fn f(self, key: &str, args: &[&dyn std::fmt::Display]) -> String {
        let mut text = self.t(key).to_owned();
        for (idx, arg) in args.iter().enumerate() {
            text = text.replace(&format!("{{{idx}}}"), &arg.to_string());
        }
        text
    }
}

/// (key, English, Portuguese).
pub const TEXTS: &[(&str, &str, &str)] = &[
    ("console", "Switchyard console", "Console do Switchyard"),
    ("overview", "Overview", "Visão geral"),
    ("flows", "Flows", "Fluxos"),
    ("health", "Health", "Saúde"),
    ("sessions", "Sessions", "Sessões"),
    ("steering", "Steering", "Controle"),
    ("sign_in", "Sign in", "Entrar"),
    ("sign_out", "Sign out", "Sair"),
    ("signed_in_as", "Signed in as", "Conectado como"),
    ("admin_token", "Admin token", "Token de administração"),
    ("sign_in_help", "Use one of the tokens in ADMIN_TOKENS. The token's name is recorded as the actor of every change you make.", "Use um dos tokens de ADMIN_TOKENS. O nome do token fica registrado como autor de cada mudança que você fizer."),
    ("wrong_token", "Wrong token: not signed in.", "Token errado: acesso negado."),
    ("too_many_attempts", "Too many wrong tokens from your address. Try again in {0} seconds.", "Tokens errados demais a partir do seu endereço. Tente de novo em {0} segundos."),
    ("console_off", "The console is off: set ADMIN_TOKENS (name=token,...) and restart serve to open it.", "O console está desligado: defina ADMIN_TOKENS (nome=token,...) e reinicie o serve para abri-lo."),
    ("csrf_refused", "Refused: this form did not come from this console (CSRF check failed). Nothing changed.", "Recusado: este formulário não veio deste console (verificação CSRF falhou). Nada mudou."),
    ("language", "Language", "Idioma"),
    ("lang_name", "English", "Português (Brasil)"),
    ("switch_to", "Português (Brasil)", "English"),
    ("flow", "Flow", "Fluxo"),
    ("version", "Version", "Versão"),
    ("versions", "Versions", "Versões"),
    ("lifecycle", "Lifecycle", "Ciclo de vida"),
    ("new_sessions_get", "New sessions get", "Novas sessões recebem"),
    ("why", "Why", "Por quê"),
    ("rules", "Rules", "Regras"),
    ("no_rules", "No rules: new sessions get the version declared active in code.", "Sem regras: novas sessões recebem a versão declarada ativa no código."),
    ("pins", "Pins", "Fixações"),
    ("pinned_contacts", "{0} pinned contacts", "{0} contatos fixados"),
    ("instance", "Instance", "Instância"),
    ("schedule", "Schedule", "Agendamento"),
    ("split", "Split", "Divisão"),
    ("promote", "Promote", "Promover"),
    ("promoted", "Promoted", "Promovida"),
    ("guard", "Guard", "Guarda"),
    ("guard_armed", "armed", "armada"),
    ("guard_tripped", "TRIPPED", "DISPARADA"),
    ("guard_none", "no guard", "sem guarda"),
    ("live_sessions", "Live sessions", "Sessões ativas"),
    ("drain", "Drained by", "Esvazia até"),
    ("drained", "drained", "vazia"),
    ("window", "Window", "Janela"),
    ("previous_window", "previous window", "janela anterior"),
    ("sessions_started", "Sessions started", "Sessões iniciadas"),
    ("last_audit", "Last changes (audit)", "Últimas mudanças (auditoria)"),
    ("when", "When", "Quando"),
    ("actor", "Actor", "Autor"),
    ("action", "Action", "Ação"),
    ("reason", "Reason", "Motivo"),
    ("reason_help", "Required: the audit log records why.", "Obrigatório: a auditoria registra o porquê."),
    ("nothing_yet", "Nothing yet.", "Nada ainda."),
    ("override", "FLOW_VERSION_OVERRIDES sets {0}; it beats every rule", "FLOW_VERSION_OVERRIDES define {0}; vence todas as regras"),
    ("why_split", "split: {0}", "divisão: {0}"),
    ("why_schedule", "schedule until {0}", "agendada até {0}"),
    ("why_promoted", "promoted by the policy", "promovida pela política"),
    ("why_active", "declared active in code", "declarada ativa no código"),
    ("why_pins_instances", "except {0} pinned contacts and {1} instance rules", "exceto {0} contatos fixados e {1} regras de instância"),
    ("comparison", "A/B comparison", "Comparação A/B"),
    ("completion", "Completion", "Conclusão"),
    ("handoff", "Handoff", "Transferência"),
    ("expiry", "Expiry", "Expiração"),
    ("failure", "Failure", "Falha"),
    ("verdict", "Verdict", "Veredito"),
    ("better", "better", "melhor"),
    ("worse", "worse", "pior"),
    ("no_difference", "no clear difference", "sem diferença clara"),
    ("interval_note", "Dots are rates; whiskers are 95% intervals.", "Pontos são taxas; bigodes são intervalos de 95%."),
    ("srm", "Sample-ratio check", "Verificação de proporção da amostra"),
    ("srm_ok", "Sessions match the split's weights (p = {0}).", "As sessões batem com os pesos da divisão (p = {0})."),
    ("srm_mismatch", "MISMATCH: sessions do not match the split's weights (p = {0}); do not trust the comparison.", "DIVERGÊNCIA: as sessões não batem com os pesos da divisão (p = {0}); não confie na comparação."),
    ("srm_none", "Not checked: there is no split, or its guard rolled it back (today's weights did not assign these sessions).", "Não verificado: não há divisão, ou a proteção a reverteu (os pesos de hoje não distribuíram estas sessões)."),
    ("funnels", "Funnels", "Funis"),
    ("step", "Step", "Etapa"),
    ("reached", "reached", "chegaram"),
    ("dropped", "dropped", "saíram"),
    ("commands_used", "global commands", "comandos globais"),
    ("classification", "Classification", "Classificação"),
    ("decisions", "Decisions", "Decisões"),
    ("by_keyword", "by keyword", "por palavra-chave"),
    ("by_trained", "by trained classifier", "pelo classificador treinado"),
    ("by_model", "by model", "pelo modelo"),
    ("model_calls", "Model calls", "Chamadas ao modelo"),
    ("model_failures", "Model failures", "Falhas do modelo"),
    ("latency", "Latency p50 / p95 (ms)", "Latência p50 / p95 (ms)"),
    ("tokens", "Tokens (prompt / completion)", "Tokens (prompt / resposta)"),
    ("last_24h", "24 h", "24 h"),
    ("last_7d", "7 days", "7 dias"),
    ("last_30d", "30 days", "30 dias"),
    ("custom", "Custom", "Personalizada"),
    ("since", "Since", "Desde"),
    ("until", "Until", "Até"),
    ("show", "Show", "Mostrar"),
    ("started", "Started", "Iniciadas"),
    ("finished", "Finished", "Terminadas"),
    ("no_sessions", "No sessions in this window.", "Nenhuma sessão nesta janela."),
    ("connection", "WhatsApp connections", "Conexões do WhatsApp"),
    ("connection_none", "No connection.update heard yet (Evolution sends one when an instance connects or drops).", "Nenhum connection.update recebido ainda (a Evolution envia um quando uma instância conecta ou cai)."),
    ("heard", "Last heard", "Último aviso"),
    ("ago", "{0} ago", "há {0}"),
    ("waiting_for", "waiting for {0}", "aguardando há {0}"),
    ("failures_since", "Replies given up on since {0}.", "Respostas abandonadas desde {0}."),
    ("no_failures", "No reply given up on.", "Nenhuma resposta abandonada."),
    ("count", "Count", "Quantidade"),
    ("contact_masked", "Contact", "Contato"),
    ("cause", "Cause", "Causa"),
    ("cause_handoff", "handed over by the bot", "transferido pelo bot"),
    ("cause_takeover", "an agent wrote first", "um atendente escreveu primeiro"),
    ("hold_until", "Bot silent until", "Bot em silêncio até"),
    ("no_holds", "Nobody is on human hold.", "Ninguém em atendimento humano."),
    ("holds_more", "The first {0} of {1} are listed; release the others by number below.", "Os primeiros {0} de {1} estão listados; libere os demais pelo número abaixo."),
    ("release_other", "Release a contact by number", "Liberar um contato pelo número"),
    ("reason_optional", "Reason (optional, for the audit)", "Motivo (opcional, para a auditoria)"),
    ("state", "State", "Estado"),
    ("outbox", "Outbox", "Fila de saída"),
    ("outbox_depth", "Replies waiting", "Respostas aguardando"),
    ("oldest_unsent", "Oldest unsent", "Mais antiga não enviada"),
    ("send_failures", "Send failures by reason", "Falhas de envio por motivo"),
    ("llm_breaker", "LLM circuit breaker", "Disjuntor do LLM"),
    ("breaker_open", "OPEN: keywords decide until it closes", "ABERTO: palavras-chave decidem até fechar"),
    ("breaker_closed", "closed: the model answers", "fechado: o modelo responde"),
    ("breaker_off", "no model configured (LLM_BASE_URL): keywords decide", "nenhum modelo configurado (LLM_BASE_URL): palavras-chave decidem"),
    ("holds", "Human hold", "Atendimento humano"),
    ("holds_count", "Contacts on hold", "Contatos em espera"),
    ("oldest_hold", "Oldest hold", "Espera mais antiga"),
    ("release", "Release: the bot answers again", "Liberar: o bot volta a responder"),
    ("released", "Released: the bot answers {0} again (audit #{1}).", "Liberado: o bot volta a responder {0} (auditoria #{1})."),
    ("not_on_hold", "{0} was not on hold.", "{0} não estava em espera."),
    ("contact", "Contact (phone number)", "Contato (telefone)"),
    ("find", "Find", "Buscar"),
    ("find_help", "The number is used for the search and shown masked.", "O número é usado na busca e exibido mascarado."),
    ("no_history", "No sessions for {0}.", "Nenhuma sessão para {0}."),
    ("outcome", "Outcome", "Resultado"),
    ("live", "live", "ativa"),
    ("turns", "Turns", "Turnos"),
    ("steps", "Steps", "Etapas"),
    ("end_session", "End this session", "Encerrar esta sessão"),
    ("ended", "{0} live sessions ended.", "{0} sessões ativas encerradas."),
    ("forget", "Forget this contact (LGPD)", "Esquecer este contato (LGPD)"),
    ("forget_help", "Erases the contact's messages, sessions and data; the audit keeps a pseudonym.", "Apaga mensagens, sessões e dados do contato; a auditoria guarda um pseudônimo."),
    ("forgotten", "Erased; audit #{0}, pseudonym {1}.", "Apagado; auditoria #{0}, pseudônimo {1}."),
    ("confirm", "Confirm", "Confirmar"),
    ("confirm_title", "Confirm: {0} on {1}", "Confirmar: {0} em {1}"),
    ("cancel", "Cancel", "Cancelar"),
    ("apply", "Apply this change", "Aplicar esta mudança"),
    ("review", "Review the change", "Revisar a mudança"),
    ("for_new", "For new sessions", "Para novas sessões"),
    ("for_live", "For live sessions", "Para sessões ativas"),
    ("before", "Before", "Antes"),
    ("after", "After", "Depois"),
    ("live_keep", "{0} live sessions on {1} keep their version until they end (drained by {2} unless customers write).", "{0} sessões ativas em {1} mantêm a versão até terminarem (esvaziam até {2} se os clientes não escreverem)."),
    ("live_none", "No live sessions: nothing else changes.", "Nenhuma sessão ativa: nada mais muda."),
    ("live_unchanged", "Live sessions keep the version they started on.", "Sessões ativas mantêm a versão em que começaram."),
    ("evacuate", "Evacuate", "Evacuar"),
    ("evacuate_live", "{0} live sessions on {1} end now; each customer restarts on {2} with a short message.", "{0} sessões ativas em {1} terminam agora; cada cliente recomeça em {2} com uma mensagem curta."),
    ("evacuate_refused", "New sessions still resolve to {0}: change the policy first (promote, split or clear).", "Novas sessões ainda resolvem para {0}: mude a política antes (promover, dividir ou limpar)."),
    ("evacuated", "{0} live sessions restarted on the current version.", "{0} sessões ativas recomeçaram na versão atual."),
    ("new_pin", "These contacts get {0}; everyone else is unaffected.", "Estes contatos recebem {0}; os demais não mudam."),
    ("new_unpin", "These contacts go back to the other rules.", "Estes contatos voltam às outras regras."),
    ("new_instance", "Every new session on instance {0} gets {1}.", "Toda nova sessão na instância {0} recebe {1}."),
    ("new_schedule", "From {0} until {1}, new sessions get {2}; afterwards they go back by themselves.", "De {0} até {1}, novas sessões recebem {2}; depois voltam sozinhas."),
    ("new_split", "New sessions are split {0}; contacts keep their bucket.", "Novas sessões são divididas {0}; contatos mantêm seu grupo."),
    ("new_split_guard", "A guard rolls the candidate back when its {0} rate is significantly worse.", "Uma guarda reverte a candidata quando a taxa de {0} for significativamente pior."),
    ("new_promote", "New sessions not matched by another rule get {0}.", "Novas sessões sem outra regra recebem {0}."),
    ("new_clear", "These rules are removed: {0}. New sessions then get: {1}.", "Estas regras são removidas: {0}. Novas sessões passam a receber: {1}."),
    ("applied", "Applied: {0} on {1} (audit #{2}). Running servers follow within a second.", "Aplicado: {0} em {1} (auditoria #{2}). Os servidores seguem em até um segundo."),
    ("refused", "Refused", "Recusado"),
    ("weights", "Weights (first is the baseline), e.g. v1=90,v2=10", "Pesos (o primeiro é a base), ex. v1=90,v2=10"),
    ("salt", "Salt (optional)", "Sal (opcional)"),
    ("memory_days", "Keep a contact's version for (days)", "Manter a versão do contato por (dias)"),
    ("guard_metric", "Guard metric", "Métrica da guarda"),
    ("guard_min", "Finished sessions per version before the guard acts", "Sessões terminadas por versão antes de a guarda agir"),
    ("guard_tolerance", "Tolerance (percentage points)", "Tolerância (pontos percentuais)"),
    ("guard_confidence", "Confidence (0.5 to 0.999)", "Confiança (0,5 a 0,999)"),
    ("contacts", "Contacts (one per line or comma-separated)", "Contatos (um por linha ou separados por vírgula)"),
    ("from", "From (RFC 3339 or a date)", "De (RFC 3339 ou uma data)"),
    ("clear", "Clear", "Limpar"),
    ("unpin", "Unpin", "Desafixar"),
    ("pin", "Pin", "Fixar"),
    ("kind", "Kind of rule", "Tipo de regra"),
    ("explain", "Explain one contact", "Explicar um contato"),
    ("not_found", "Not found", "Não encontrado"),
    ("unknown_flow", "Unknown flow '{0}'.", "Fluxo desconhecido '{0}'."),
    ("store_unavailable", "The store is unavailable; try again.", "O armazenamento está indisponível; tente de novo."),
    ("error", "Error", "Erro"),
    ("refresh_note", "Refreshes every 15 s while JavaScript is on.", "Atualiza a cada 15 s com JavaScript ligado."),
    ("all_flows", "All flows", "Todos os fluxos"),
    ("none", "none", "nenhuma"),
    ("shares", "Shares", "Participação"),
    ("guards", "Split guards", "Guardas das divisões"),
    ("rate", "Rate", "Taxa"),
    ("difference", "Difference", "Diferença"),
    ("median_turns", "Median turns", "Mediana de turnos"),
    ("verdict_short_one", "{0} needs {1} more finished session", "{0} precisa de mais {1} sessão terminada"),
    ("verdict_short_many", "{0} needs {1} more finished sessions", "{0} precisa de mais {1} sessões terminadas"),
    ("verdict_short_both", "{0} needs {1} more and {2} {3} more finished sessions", "{0} precisa de mais {1} e {2} de mais {3} sessões terminadas"),
    ("verdict_not_enough", "not enough data yet: {0} (minimum {1} per version) before a winner can be named", "dados insuficientes: {0} (mínimo de {1} por versão) antes de apontar uma vencedora"),
    ("verdict_effect", "{0} points (95% CI {1} to {2}), {3}", "{0} pontos (IC 95% {1} a {2}), {3}"),
    ("verdict_more_often", "more often", "com mais frequência"),
    ("verdict_less_often", "less often", "com menos frequência"),
    ("verdict_both", "{0} completes {1} than {2}: {3}, and hands off {4}: {5}", "{0} conclui {1} que {2}: {3}, e transfere {4}: {5}"),
    ("verdict_completion", "{0} completes {1} than {2}: {3}", "{0} conclui {1} que {2}: {3}"),
    ("verdict_handoff", "{0} hands off {1} than {2}: {3}; completion shows no significant difference ({4})", "{0} transfere {1} que {2}: {3}; a conclusão não mostra diferença significativa ({4})"),
    ("verdict_none", "no significant difference between {0} and {1} (completion {2}, handoff {3})", "nenhuma diferença significativa entre {0} e {1} (conclusão {2}, transferência {3})"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(accept: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(axum::http::header::ACCEPT_LANGUAGE, HeaderValue::from_str(accept).unwrap());
        headers
    }

    #[test]
    fn accept_language_picks_the_best_supported_language() {
        assert_eq!(Lang::of(&headers("pt-BR,pt;q=0.9,en;q=0.8")), Lang::PtBr);
        assert_eq!(Lang::of(&headers("fr-FR, en;q=0.5, pt;q=0.7")), Lang::PtBr);
        assert_eq!(Lang::of(&headers("de")), Lang::En);
        assert_eq!(Lang::of(&HeaderMap::new()), Lang::En);
        let mut switched = headers("pt-BR");
        switched.insert(axum::http::header::COOKIE, HeaderValue::from_static("switchyard_lang=en"));
        assert_eq!(Lang::of(&switched), Lang::En, "the switch beats the browser");
    }

    /// Every key a template or the Rust code asks for exists, in both languages.
    #[test]
    fn every_used_key_has_both_languages() {
        let mut sources = Vec::new();
        for dir in ["templates/ui", "src/ui", "src/views"] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|ext| ext == "html" || ext == "rs") {
                    sources.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        let mut missing = Vec::new();
        for (path, text) in &sources {
            for pattern in [".t(\"", ".f(\""] {
                for (idx, _) in text.match_indices(pattern) {
                    let rest = &text[idx + pattern.len()..];
                    let key = &rest[..rest.find('"').unwrap()];
                    if !TEXTS.iter().any(|(known, _, _)| *known == key) {
                        missing.push(format!("{path}: {key}"));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "keys without texts: {missing:?}");
        for (key, en, pt) in TEXTS {
            assert!(!en.is_empty() && !pt.is_empty(), "{key} is blank in a language");
            assert_eq!(en.matches('{').count(), pt.matches('{').count(), "{key}: the languages take different arguments");
        }
        let mut keys: Vec<&str> = TEXTS.iter().map(|(key, _, _)| *key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), TEXTS.len(), "a key is listed twice");
    }
}
