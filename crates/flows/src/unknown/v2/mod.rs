//! `unknown` v2: the entry, routing free text by weighing evidence. A first
//! message that says what the customer wants goes straight to that flow,
//! which receives the message; anything else gets the greeting and the main
//! menu. Unlike v1, a generic keyword ("comprovante", "quanto fica",
//! "horario") no longer decides alone: the keywords' class is weighed with
//! the classifier trained on `examples/intent.tsv` and, when that leaves
//! doubt and `LLM_BASE_URL` is set, the model. A menu number or a message
//! that is exactly one of the phrases below decides at once.

use switchyard_engine::classify::{Task, Wanted};
use switchyard_engine::flow::{Ctx, Lifecycle, Next, VersionDecl};
use switchyard_engine::kinds::{Custom, To};
use switchyard_engine::text::normalize;
use switchyard_engine::trained::Weighing;

use crate::Deps;
use crate::shared::choice;
use crate::shared::intent;

const DIGITAL_CERTIFICATE: &str = "digital_certificate";
const BILLING: &str = "billing";
const GENERAL_SUPPORT: &str = "general_support";
/// Not a flow: the customer asked for a person.
const HUMAN: &str = "human";

/// Phrases that name what a message is about. The longest match wins, so
/// "status do pedido" beats "pedido" and "ja paguei" (billing) beats "pix"
/// (a question).
#[rustfmt::skip]
const INTENTS: &[(&str, &[&str])] = &[
    (DIGITAL_CERTIFICATE, &[
        "certificado", "certificados", "certificado digital", "e-cpf", "ecpf", "e-cnpj", "ecnpj", "token", "a1", "a3",
        "comprar", "renovar", "renovacao", "renova", "status do pedido", "meu pedido", "pedido", "acompanhar pedido",
        "assinatura digital", "instalar", "instalacao", "pin", "requisitos", "documentos necessarios",
        "videoconferencia",
    ]),
    (BILLING, &[
        "boleto", "boletos", "segunda via", "2 via", "2a via", "fatura", "cobranca", "financeiro", "parcelar",
        "parcelamento", "paguei", "ja paguei", "comprovante", "linha digitavel", "codigo de barras", "fiz o pagamento",
        "efetuei o pagamento", "pagamento nao caiu", "nao compensou", "nao baixou",
    ]),
    (GENERAL_SUPPORT, &[
        "horario", "horarios", "que horas", "funcionamento", "endereco", "onde fica", "onde voces ficam",
        "localizacao", "duvida", "duvidas", "informacao", "informacoes", "forma de pagamento", "formas de pagamento",
        "aceita cartao", "aceitam cartao", "pix", "preco", "precos", "quanto custa", "valor", "valores",
        "tabela de precos",
    ]),
    (HUMAN, &[
        "atendente", "humano", "uma pessoa", "falar com alguem", "atendimento humano",
    ]),
];

/// Questions general support answers, whatever product they name: "quanto
/// custa o certificado digital?" is a price question, not a purchase.
#[rustfmt::skip]
const QUESTIONS: &[&str] = &[
    "quanto custa", "quanto fica", "qual o preco", "preco", "precos", "tabela de precos", "horario", "horarios",
    "que horas", "endereco", "onde fica", "onde voces ficam", "forma de pagamento", "formas de pagamento",
];

/// What the keywords say: a question first, otherwise the longest phrase.
fn keywords(text: &str) -> Option<&'static str> {
    if choice::pick_by_words(text, &[QUESTIONS]).is_some() {
        return Some(GENERAL_SUPPORT);
    }
    intent::classify(text, INTENTS)
}

/// A message that is exactly one of the phrases ("boleto", "e-CPF",
/// "atendente"): nothing else in it could argue.
fn sure(text: &str) -> Option<&'static str> {
    let text = normalize(text);
    INTENTS.iter().find(|(_, phrases)| phrases.iter().any(|phrase| normalize(phrase) == text)).map(|(intent, _)| *intent)
}

/// The menu's options in the order `choose.prompt` numbers them.
const MENU: &[&str] = &[DIGITAL_CERTIFICATE, BILLING, GENERAL_SUPPORT, HUMAN];

/// Routing a message: keywords, the trained classifier, and the model.
pub const INTENT: Task = Task {
    name: "intent",
    file: "prompts/intent.txt",
    prompt: include_str!("prompts/intent.txt"),
    ask: Wanted::Class(MENU),
    keywords: Some(keywords),
};

const ROUTING: Weighing =
    Weighing { task: INTENT, file: "examples/intent.tsv", examples: include_str!("examples/intent.tsv"), sure: Some(sure) };

/// Where an intent leads: a flow (which gets the message), or a human.
fn route(ctx: &mut Ctx<'_>, intent: &'static str) -> Next {
    if intent == HUMAN {
        ctx.say("handoff");
        Next::Handoff
    } else {
        Next::Handover(intent)
    }
}

pub fn version(_deps: &Deps) -> VersionDecl {
    VersionDecl::new("unknown", 2, Lifecycle::Inactive)
        .description("Entrada: pondera palavras-chave, classificador treinado e modelo para rotear a primeira mensagem")
        .texts(include_str!("texts.txt"))
        .weighed(ROUTING)
        .entry("greet")
        .step(
            "greet",
            Custom::new(
                &[To::Step("choose"), To::Flow(DIGITAL_CERTIFICATE), To::Flow(BILLING), To::Flow(GENERAL_SUPPORT)],
                // Never waits: `enter` always moves on.
                |_ctx, _text| Next::Goto("choose"),
            )
            .on_enter(|ctx| {
                if let Some(found) = ctx.trigger().and_then(|trigger| ctx.weigh(&INTENT, trigger)) {
                    return route(ctx, found);
                }
                ctx.say("greet");
                Next::Goto("choose")
            })
            .texts(&["greet", "handoff"]),
        )
        .step(
            "choose",
            Custom::new(&[To::Flow(DIGITAL_CERTIFICATE), To::Flow(BILLING), To::Flow(GENERAL_SUPPORT)], |ctx, text| {
                // A number picks from the menu; words are weighed like a first message.
                let picked = choice::number(text, MENU.len()).map(|idx| MENU[idx]);
                match picked.or_else(|| ctx.weigh(&INTENT, text)) {
                    Some(found) => route(ctx, found),
                    None => choice::retry_or_handoff(ctx, "choose.invalid", 2),
                }
            })
            .on_enter(|ctx| {
                ctx.say("choose.prompt");
                Next::Wait
            })
            .texts(&["choose.prompt", "choose.invalid", "handoff"]),
        )
}
