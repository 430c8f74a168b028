//! `general_support` v1: answers the frequent questions (opening hours,
//! address, prices, payment methods) and asks whether that solved it. "Não",
//! or a question it has no answer for, goes to a human.
//!
//! When the session starts with a message that already is one of these
//! questions ("qual o horário de vocês?"), it is answered at once.

use switchyard_engine::classify::{Task, Wanted};
use switchyard_engine::flow::{Ctx, Lifecycle, Next, VersionDecl};
use switchyard_engine::kinds::{Custom, To};
use switchyard_engine::text::normalize;

use crate::Deps;
use crate::shared::backend::Product;
use crate::shared::choice;
use crate::shared::money;

// The fingerprint covers the shared helpers this file names. Also used,
// through `shared::backend`: shared::dates, shared::document, shared::order.

/// Topics in the order `ask_question.prompt` numbers them; the code is the
/// text key suffix (`answer.hours`) and the value stored as `topic`.
#[rustfmt::skip]
const TOPICS: &[(&str, &[&str])] = &[
    ("hours", &[
        "horario", "horarios", "que horas", "abre", "abrem", "fecha", "fecham", "funcionamento", "aberto", "abertos",
        "expediente", "sabado", "domingo", "feriado",
    ]),
    ("address", &[
        "endereco", "onde fica", "onde voces ficam", "onde ficam", "localizacao", "loja", "como chegar",
        "ponto de atendimento", "atendimento presencial", "estacionamento",
    ]),
    ("prices", &[
        "preco", "precos", "quanto custa", "quanto fica", "quanto e", "valor", "valores", "tabela", "custa", "custo",
    ]),
    ("payment", &[
        "forma de pagamento", "formas de pagamento", "pagamento", "pagar", "pix", "cartao", "cartao de credito",
        "debito", "boleto", "parcela", "parcelas", "parcelar", "parcelado",
    ]),
];

/// Words that carry no question ("oi, tudo bem? tenho uma dúvida").
#[rustfmt::skip]
const FILLER: &[&str] = &[
    "oi", "ola", "bom", "boa", "dia", "tarde", "noite", "tudo", "bem", "e", "ai", "opa", "obrigado", "obrigada", "por",
    "favor", "ok", "eu", "queria", "quero", "gostaria", "de", "uma", "um", "duvida", "pergunta", "tenho", "saber",
    "uma", "so", "pode", "me", "ajudar", "ajuda",
];

const HUMAN: &[&str] = &["atendente", "humano", "uma pessoa", "falar com alguem"];

/// The FAQ topics, as the model's classes (the order of [`TOPICS`]).
const TOPIC_CLASSES: &[&str] = &["hours", "address", "prices", "payment"];

/// FAQ matching: the topic words, and the model for a question they miss.
pub const TOPIC: Task = Task {
    name: "topic",
    file: "prompts/topic.txt",
    prompt: include_str!("prompts/topic.txt"),
    ask: Wanted::Class(TOPIC_CLASSES),
    keywords: Some(topic_by_words),
};

fn topic_words() -> Vec<&'static [&'static str]> {
    TOPICS.iter().map(|(_, words)| *words).collect()
}

/// The topic named in words (numbers are not read: a trigger's "3" answered
/// the previous flow's menu).
fn topic_by_words(text: &str) -> Option<&'static str> {
    choice::pick_by_words(text, &topic_words()).map(|idx| TOPICS[idx].0)
}

/// True when the message has a word that is neither filler nor a number
/// (a menu number that is not on the menu): a real question.
fn has_question(text: &str) -> bool {
    normalize(text)
        .split(' ')
        .any(|word| !word.is_empty() && !FILLER.contains(&word) && !word.bytes().all(|byte| byte.is_ascii_digit()))
}

fn answer(ctx: &mut Ctx<'_>, deps: &Deps) -> Next {
    match ctx.data().get("topic") {
        Some("prices") => {
            let lines: Vec<String> = Product::all()
                .map(|product| {
                    let label = ctx.render(&format!("product.{}", product.code()), &[]);
                    let price: money::Cents = deps.backend.price(product);
                    ctx.render("answer.prices.line", &[("product", &label), ("price", &price.to_string())])
                })
                .collect();
            ctx.say_with("answer.prices", &[("list", &lines.join("\n"))]);
        }
        Some("hours") => ctx.say("answer.hours"),
        Some("address") => ctx.say("answer.address"),
        Some("payment") => ctx.say("answer.payment"),
        // Only this version sets `topic`; an unknown value is a bug, and a person fixes the conversation.
        _ => {
            ctx.say("handoff");
            return Next::Handoff;
        }
    }
    Next::Goto("confirm")
}

pub fn version(deps: &Deps) -> VersionDecl {
    let deps = deps.clone();
    VersionDecl::new("general_support", 1, Lifecycle::Active)
        .description("Dúvidas frequentes: horários, endereço, preços e formas de pagamento")
        .texts(include_str!("texts.txt"))
        .task(TOPIC)
        .entry("ask_question")
        .step(
            "ask_question",
            Custom::new(&[To::Step("answer")], |ctx, text| {
                let numbered = choice::pick(text, &topic_words()).map(|idx| TOPICS[idx].0);
                if let Some(topic) = numbered {
                    ctx.data_mut().set("topic", topic);
                    return Next::Goto("answer");
                }
                if choice::pick_by_words(text, &[HUMAN]).is_some() {
                    ctx.say("handoff");
                    return Next::Handoff;
                }
                if has_question(text) {
                    // Words the topic lists miss: the model may still recognise the topic.
                    if let Some(topic) = ctx.classify(&TOPIC, text) {
                        ctx.data_mut().set("topic", topic);
                        return Next::Goto("answer");
                    }
                    // A real question we have no answer for: a person answers it.
                    ctx.say("no_answer");
                    return Next::Handoff;
                }
                choice::retry_or_handoff(ctx, "ask_question.invalid", 2)
            })
            .on_enter(|ctx| {
                if let Some(topic) = ctx.trigger().and_then(|trigger| ctx.classify(&TOPIC, trigger)) {
                    ctx.data_mut().set("topic", topic);
                    return Next::Goto("answer");
                }
                ctx.say("ask_question.prompt");
                Next::Wait
            })
            .texts(&["ask_question.prompt", "ask_question.invalid", "no_answer", "handoff"]),
        )
        .step(
            "answer",
            Custom::new(&[To::Step("confirm")], |_ctx, _text| Next::Goto("confirm"))
                .on_enter(move |ctx| answer(ctx, &deps))
                .texts(&[
                    "answer.hours",
                    "answer.address",
                    "answer.prices",
                    "answer.prices.line",
                    "answer.payment",
                    "product.ecpf_a1",
                    "product.ecpf_a3_token",
                    "product.ecpf_a3_card",
                    "product.ecnpj_a1",
                    "product.ecnpj_a3_token",
                    "product.ecnpj_a3_card",
                    "handoff",
                ]),
        )
        .step(
            "confirm",
            Custom::new(&[To::Step("answer")], |ctx, text| {
                // Another question right away is answered, not counted as a miss.
                if let Some(topic) = topic_by_words(text) {
                    ctx.data_mut().set("topic", topic);
                    return Next::Goto("answer");
                }
                match choice::yes_no(text) {
                    Some(true) => {
                        ctx.say("confirm.thanks");
                        Next::Complete
                    }
                    Some(false) => {
                        ctx.say("handoff");
                        Next::Handoff
                    }
                    None => choice::retry_or_handoff(ctx, "confirm.invalid", 2),
                }
            })
            .on_enter(|ctx| {
                ctx.say("confirm.prompt");
                Next::Wait
            })
            .texts(&["confirm.prompt", "confirm.invalid", "confirm.thanks", "handoff"]),
        )
}
