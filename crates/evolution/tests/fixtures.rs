//! One test per webhook fixture in `tests/fixtures/`, asserting the exact
//! parse result. The fixtures are hand-written in the shapes Evolution API v2
//! sends (2.3.6 unless the name says otherwise), with invented numbers.

use std::path::{Path, PathBuf};

use switchyard_evolution::webhook::{
    Audio, Chat, Content, Identity, IgnoreReason, Incoming, Media, MediaKind, Webhook, WebhookKind,
    parse,
};

const INSTANCE: &str = "loja-teste";
const T0: i64 = 1_762_300_000;
const PN1: &str = "5521987650001";
const LID1: &str = "112233445566701";
const PN2: &str = "5521987650002";
const GROUP: &str = "120363000011112222@g.us";

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn load(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(format!("{name}.json"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

fn parse_fixture(name: &str) -> Webhook {
    parse(&load(name)).unwrap_or_else(|err| panic!("{name}: {err}"))
}

fn phone_only(phone: &str) -> Identity {
    Identity {
        phone: Some(phone.into()),
        lid: None,
        reply_to: phone.into(),
    }
}

fn phone_and_lid(phone: &str, lid: &str) -> Identity {
    Identity {
        phone: Some(phone.into()),
        lid: Some(lid.into()),
        reply_to: phone.into(),
    }
}

fn incoming(id: &str, sender: Identity, push_name: &str, ts: i64, content: Content) -> Incoming {
    Incoming {
        message_id: id.into(),
        chat: Chat::Direct,
        sender,
        push_name: Some(push_name.into()),
        timestamp_secs: Some(ts),
        content,
    }
}

fn text(text: &str) -> Content {
    Content::Text(text.into())
}

/// An image or document reference as the fixtures carry it (12345 bytes).
fn media(kind: MediaKind, mimetype: &str, file_name: Option<&str>, caption: Option<&str>) -> Content {
    Content::Media(Media {
        kind,
        mimetype: Some(mimetype.into()),
        file_name: file_name.map(Into::into),
        caption: caption.map(Into::into),
        bytes: Some(12345),
    })
}

fn unsupported(kind: &str) -> Content {
    Content::Unsupported(kind.into())
}

/// Compares the fields one by one first: `Incoming`'s `Debug` masks the
/// text and numbers, so a whole-struct mismatch alone would not say which
/// value differs.
fn assert_webhook(name: &str, event: &str, kind: WebhookKind) {
    let actual = parse_fixture(name);
    assert_eq!(actual.instance, INSTANCE, "{name}: instance");
    assert_eq!(actual.event, event, "{name}: event");
    if let (
        WebhookKind::Message(got) | WebhookKind::OperatorMessage(got),
        WebhookKind::Message(want) | WebhookKind::OperatorMessage(want),
    ) = (&actual.kind, &kind)
    {
        assert_eq!(got.message_id, want.message_id, "{name}: message id");
        assert_eq!(
            got.content.as_text(),
            want.content.as_text(),
            "{name}: text"
        );
        assert_eq!(got.sender.phone, want.sender.phone, "{name}: phone");
        assert_eq!(got.sender.lid, want.sender.lid, "{name}: lid");
        assert_eq!(
            got.sender.reply_to, want.sender.reply_to,
            "{name}: reply_to"
        );
        assert_eq!(got.push_name, want.push_name, "{name}: push name");
        assert_eq!(got.chat, want.chat, "{name}: chat");
    }
    assert_eq!(
        actual,
        Webhook {
            instance: INSTANCE.into(),
            event: event.into(),
            kind,
            chatwoot: None
        },
        "{name}"
    );
}

fn assert_message(name: &str, expected: Incoming) {
    assert_webhook(name, "messages.upsert", WebhookKind::Message(expected));
}

const COVERED: &[&str] = &[
    "01-text-pn-with-lid-alt",
    "02-reply-with-quote",
    "03-list-reply",
    "04-image-caption",
    "05-audio-ptt",
    "06-group-lid-participant",
    "07-fromme-operator",
    "08-status-broadcast",
    "09-messages-update-delivery",
    "10-connection-update-open",
    "11-lid-with-pn-alt",
    "12-lid-senderpn-v2.3.0",
    "13-previous-remote-jid-v2.3.2",
    "14-lid-only",
    "15-extended-text",
    "16-buttons-response",
    "17-template-button-reply",
    "18-interactive-response",
    "19-reaction",
    "20-sticker",
    "21-document-with-caption",
    "22-document-no-caption",
    "23-video-caption",
    "24-view-once-v2-image",
    "25-ephemeral-extended-text",
    "26-timestamp-string",
    "27-uppercase-event",
    "28-send-message",
    "29-connection-update-close",
    "30-location",
    "31-group-first-message-sender-key",
    "32-contacts-upsert",
];

#[test]
fn every_fixture_has_a_test() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    names.sort();
    assert_eq!(
        names, COVERED,
        "add a test for each new fixture (and list it in COVERED)"
    );
}

#[test]
fn f01_text_pn_with_lid_alt() {
    assert_message(
        "01-text-pn-with-lid-alt",
        incoming(
            "19F0AA01BB02CC03DD04EE05FF060708",
            phone_and_lid(PN1, LID1),
            "Maria Teste",
            T0 + 1,
            text("Olá, qual o horário de hoje?"),
        ),
    );
}

#[test]
fn f02_reply_with_quote() {
    assert_message(
        "02-reply-with-quote",
        incoming(
            "3A00000000000000RPLY",
            phone_only(PN2),
            "João Exemplo",
            T0 + 2,
            text("Pode marcar às 15h, por favor"),
        ),
    );
}

#[test]
fn f03_list_reply_gives_the_row_id() {
    assert_message(
        "03-list-reply",
        incoming(
            "63BD0000000000000000000000LIST01",
            phone_only(PN1),
            "Maria Teste",
            T0 + 3,
            text("menu_2via"),
        ),
    );
}

#[test]
fn f04_image_caption_is_media_with_its_caption() {
    assert_message(
        "04-image-caption",
        incoming(
            "B96B0000000000000000000000IMG001",
            phone_only(PN2),
            "João Exemplo",
            T0 + 4,
            media(MediaKind::Image, "image/jpeg", None, Some("Foto da nota fiscal")),
        ),
    );
}

#[test]
fn f05_audio_is_a_voice_note_without_transcript() {
    assert_message(
        "05-audio-ptt",
        incoming(
            "3AB6000000000000AUD1",
            phone_only(PN1),
            "Maria Teste",
            T0 + 5,
            Content::Audio(Audio {
                transcript: None,
                mimetype: Some("audio/ogg; codecs=opus".into()),
                seconds: Some(9),
                bytes: Some(12345),
                voice_note: true,
            }),
        ),
    );
}

#[test]
fn f06_group_author_from_lid_participant_with_alt() {
    assert_message(
        "06-group-lid-participant",
        Incoming {
            chat: Chat::Group { jid: GROUP.into() },
            ..incoming(
                "3A30000000000000GRP1",
                phone_and_lid("5521987650003", "112233445566703"),
                "Carla Teste",
                T0 + 6,
                text("@5521900000000 vocês entregam no centro?"),
            )
        },
    );
}

#[test]
fn f07_from_me_is_an_operator_message() {
    assert_webhook(
        "07-fromme-operator",
        "messages.upsert",
        WebhookKind::OperatorMessage(incoming(
            "F0690000000000000000000000OPER01",
            phone_only(PN1),
            "Você",
            T0 + 7,
            text("Oi Maria, aqui é o Pedro da loja, vou te atender."),
        )),
    );
}

#[test]
fn f08_status_broadcast_is_its_own_chat() {
    assert_message(
        "08-status-broadcast",
        Incoming {
            chat: Chat::StatusBroadcast,
            ..incoming(
                "3A21000000000000STS1",
                phone_only("5521987650004"),
                "Diego Teste",
                T0 + 8,
                text("Liquidação começa sexta!"),
            )
        },
    );
}

#[test]
fn f09_messages_update_is_a_receipt() {
    assert_webhook(
        "09-messages-update-delivery",
        "messages.update",
        WebhookKind::Ignored {
            reason: IgnoreReason::Receipt,
        },
    );
}

#[test]
fn f10_connection_open() {
    assert_webhook(
        "10-connection-update-open",
        "connection.update",
        WebhookKind::Connection {
            state: "open".into(),
            status_reason: Some(200),
        },
    );
}

#[test]
fn f11_lid_with_pn_alt_prefers_the_phone() {
    assert_message(
        "11-lid-with-pn-alt",
        incoming(
            "3A11000000000000LID1",
            phone_and_lid(PN1, LID1),
            "Maria Teste",
            T0 + 11,
            text("Bom dia"),
        ),
    );
}

#[test]
fn f12_lid_with_sender_pn_v230() {
    assert_message(
        "12-lid-senderpn-v2.3.0",
        incoming(
            "3A12000000000000SPN1",
            phone_and_lid(PN1, LID1),
            "Maria Teste",
            T0 + 12,
            text("Bom dia"),
        ),
    );
}

#[test]
fn f13_previous_remote_jid_v232() {
    assert_message(
        "13-previous-remote-jid-v2.3.2",
        incoming(
            "3A13000000000000PRV1",
            phone_and_lid(PN1, LID1),
            "Maria Teste",
            T0 + 13,
            text("Bom dia"),
        ),
    );
}

#[test]
fn f14_bare_lid_replies_to_the_lid_jid() {
    assert_message(
        "14-lid-only",
        incoming(
            "3A14000000000000LID2",
            Identity {
                phone: None,
                lid: Some(LID1.into()),
                reply_to: format!("{LID1}@lid"),
            },
            "Maria Teste",
            T0 + 14,
            text("Bom dia"),
        ),
    );
}

#[test]
fn f15_extended_text_fallback() {
    assert_message(
        "15-extended-text",
        incoming(
            "3A15000000000000EXT1",
            phone_only(PN2),
            "João Exemplo",
            T0 + 15,
            text("Confere o link https://loja.example.test/p/42"),
        ),
    );
}

#[test]
fn f16_buttons_response_gives_the_button_id() {
    assert_message(
        "16-buttons-response",
        incoming(
            "3A16000000000000BTN1",
            phone_only(PN1),
            "Maria Teste",
            T0 + 16,
            text("btn_confirmar"),
        ),
    );
}

#[test]
fn f17_template_button_reply_gives_the_selected_id() {
    assert_message(
        "17-template-button-reply",
        incoming(
            "3A17000000000000TPL1",
            phone_only(PN1),
            "Maria Teste",
            T0 + 17,
            text("tpl_sim"),
        ),
    );
}

#[test]
fn f18_interactive_response_gives_the_params_id() {
    assert_message(
        "18-interactive-response",
        incoming(
            "3A18000000000000INT1",
            phone_only(PN1),
            "Maria Teste",
            T0 + 18,
            text("menu_humano"),
        ),
    );
}

#[test]
fn f19_reaction_is_ignored_content() {
    assert_message(
        "19-reaction",
        incoming(
            "3A19000000000000RCT1",
            phone_only(PN2),
            "João Exemplo",
            T0 + 19,
            Content::Ignored("reaction".into()),
        ),
    );
}

#[test]
fn f20_sticker_is_unsupported() {
    assert_message(
        "20-sticker",
        incoming(
            "3A20000000000000STK1",
            phone_only(PN1),
            "Maria Teste",
            T0 + 20,
            unsupported("sticker"),
        ),
    );
}

#[test]
fn f21_document_with_caption_wrapper() {
    assert_message(
        "21-document-with-caption",
        incoming(
            "3A21000000000000DOC1",
            phone_only(PN2),
            "João Exemplo",
            T0 + 21,
            media(MediaKind::Document, "application/pdf", Some("comprovante.pdf"), Some("Segue o comprovante")),
        ),
    );
}

#[test]
fn f22_document_without_caption_is_a_reference() {
    assert_message(
        "22-document-no-caption",
        incoming(
            "3A22000000000000DOC2",
            phone_only(PN2),
            "João Exemplo",
            T0 + 22,
            media(MediaKind::Document, "application/pdf", Some("contrato.pdf"), None),
        ),
    );
}

#[test]
fn f23_video_caption_is_text() {
    assert_message(
        "23-video-caption",
        incoming(
            "3A23000000000000VID1",
            phone_only(PN1),
            "Maria Teste",
            T0 + 23,
            text("Vídeo do defeito"),
        ),
    );
}

#[test]
fn f24_view_once_v2_is_unwrapped() {
    assert_message(
        "24-view-once-v2-image",
        incoming(
            "3A24000000000000VOI1",
            phone_only(PN1),
            "Maria Teste",
            T0 + 24,
            media(MediaKind::Image, "image/jpeg", None, Some("Só uma vez")),
        ),
    );
}

#[test]
fn f25_ephemeral_is_unwrapped() {
    assert_message(
        "25-ephemeral-extended-text",
        incoming(
            "3A25000000000000EPH1",
            phone_only(PN2),
            "João Exemplo",
            T0 + 25,
            text("Mensagem temporária"),
        ),
    );
}

#[test]
fn f26_timestamp_as_string() {
    assert_message(
        "26-timestamp-string",
        incoming(
            "3A26000000000000OLD1",
            phone_only(PN2),
            "João Exemplo",
            1_717_689_097,
            text("Teste antigo"),
        ),
    );
}

#[test]
fn f27_uppercase_event_name_is_normalised() {
    assert_message(
        "27-uppercase-event",
        incoming(
            "3A27000000000000UPC1",
            phone_only(PN1),
            "Maria Teste",
            T0 + 27,
            text("Evento em maiúsculas"),
        ),
    );
}

#[test]
fn f28_send_message_is_an_api_send_to_check_against_ours() {
    // Ours or an agent's reply from Chatwoot: the parser cannot tell; the
    // server compares the id with the record of our sends.
    assert_webhook(
        "28-send-message",
        "send.message",
        WebhookKind::ApiSend(incoming(
            "3EB0000000000000SENT01",
            phone_only("5521987650002"),
            "Você",
            1762300028,
            text("Seu pedido foi confirmado."),
        )),
    );
}

#[test]
fn f29_connection_close_logged_out() {
    assert_webhook(
        "29-connection-update-close",
        "connection.update",
        WebhookKind::Connection {
            state: "close".into(),
            status_reason: Some(401),
        },
    );
}

#[test]
fn f30_location_is_unsupported() {
    assert_message(
        "30-location",
        incoming(
            "3A30000000000000LOC1",
            phone_only(PN1),
            "Maria Teste",
            T0 + 30,
            unsupported("location"),
        ),
    );
}

#[test]
fn f31_sender_key_distribution_beside_text_in_group() {
    assert_message(
        "31-group-first-message-sender-key",
        Incoming {
            chat: Chat::Group { jid: GROUP.into() },
            ..incoming(
                "3A31000000000000GRP2",
                phone_and_lid("5521987650004", "112233445566704"),
                "Diego Teste",
                T0 + 31,
                text("Oi grupo"),
            )
        },
    );
}

#[test]
fn f32_unsubscribed_event_is_ignored_whatever_its_data() {
    assert_webhook(
        "32-contacts-upsert",
        "contacts.upsert",
        WebhookKind::Ignored {
            reason: IgnoreReason::UnknownEvent("contacts.upsert".into()),
        },
    );
}
