//! `unknown` v1: the entry for a contact with no session. A first message
//! that already says what the customer wants ("oi, bom dia, eu queria a
//! segunda via do boleto") goes straight to that flow, which receives the
//! message as its trigger; anything else gets a greeting and the main menu.
//! Two answers the menu does not understand hand the customer to a human.

use switchyard_engine::classify::{Task, Wanted};
use switchyard_engine::flow::{Ctx, Lifecycle, Next, VersionDecl};
use switchyard_engine::kinds::{Custom, To};

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

/// What a message asks for: a question first, otherwise the longest phrase.
fn classify(text: &str) -> Option<&'static str> {
    if choice::pick_by_words(text, &[QUESTIONS]).is_some() {
        return Some(GENERAL_SUPPORT);
    }
    intent::classify(text, INTENTS)
}

/// The menu's options in the order `choose.prompt` numbers them.
const MENU: &[&str] = &[DIGITAL_CERTIFICATE, BILLING, GENERAL_SUPPORT, HUMAN];

/// Routing a message: the keywords above, and the model when they find nothing.
pub const INTENT: Task = Task {
    name: "intent",
    file: "prompts/intent.txt",
    prompt: include_str!("prompts/intent.txt"),
    ask: Wanted::Class(MENU),
    keywords: Some(classify),
};

/// Where an intent leads: a flow, or a human with the `handoff` text.
fn route(ctx: &mut Ctx<'_>, intent: &'static str) -> Next {
    if intent == HUMAN {
        ctx.say("handoff");
        Next::Handoff
    } else {
        Next::Handover(intent)
    }
}

pub fn version(_deps: &Deps) -> VersionDecl {
    VersionDecl::new("unknown", 1, Lifecycle::Active)
        .description("Entrada: reconhece a intenção da primeira mensagem ou mostra o menu principal")
        .texts(include_str!("texts.txt"))
        .task(INTENT)
        .entry("greet")
        .step(
            "greet",
            Custom::new(
                &[To::Step("choose"), To::Flow(DIGITAL_CERTIFICATE), To::Flow(BILLING), To::Flow(GENERAL_SUPPORT)],
                // Never waits: `enter` always moves on.
                |_ctx, _text| Next::Goto("choose"),
            )
            .on_enter(|ctx| {
                if let Some(found) = ctx.trigger().and_then(|trigger| ctx.classify(&INTENT, trigger)) {
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
                // A number picks from the menu; words are read like a first message.
                let picked = choice::number(text, MENU.len()).map(|idx| MENU[idx]);
                match picked.or_else(|| ctx.classify(&INTENT, text)) {
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
