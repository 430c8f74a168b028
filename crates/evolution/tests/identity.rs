//! The PN/LID identity rules across Evolution versions: the same customer
//! must get the same canonical id and reply address whichever field carried
//! the phone number.

use serde_json::{Value, json};
use switchyard_evolution::webhook::{Chat, Identity, Incoming, WebhookKind, parse};

const PN: &str = "5521987650001";
const LID: &str = "112233445566701";

fn body(key: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "event": "messages.upsert",
        "instance": "loja-teste",
        "data": {
            "key": key,
            "pushName": "Maria Teste",
            "message": {"conversation": "Bom dia"},
            "messageTimestamp": 1762300000
        }
    }))
    .expect("serialise")
}

fn incoming(key: Value) -> Incoming {
    match parse(&body(key)).expect("parses").kind {
        WebhookKind::Message(incoming) => incoming,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn sender(key: Value) -> Identity {
    incoming(key).sender
}

#[test]
fn four_lid_variants_give_the_same_identity() {
    let pn_jid = format!("{PN}@s.whatsapp.net");
    let lid_jid = format!("{LID}@lid");
    let variants = [
        // ≤ 2.3.0: bare @lid plus senderPn
        (
            "senderPn",
            json!({"remoteJid": lid_jid, "senderPn": pn_jid, "fromMe": false, "id": "A1"}),
        ),
        // 2.3.1 – 2.3.4: remoteJid rewritten to the PN, LID kept aside
        (
            "previousRemoteJid",
            json!({"remoteJid": pn_jid, "previousRemoteJid": lid_jid, "fromMe": false, "id": "A2"}),
        ),
        // 2.3.5 – 2.3.6, addressingMode lid
        (
            "remoteJidAlt (lid first)",
            json!({"remoteJid": lid_jid, "remoteJidAlt": pn_jid, "addressingMode": "lid", "fromMe": false, "id": "A3"}),
        ),
        // 2.3.6 addressingMode pn, and 2.4.0's swap
        (
            "remoteJidAlt (pn first)",
            json!({"remoteJid": pn_jid, "remoteJidAlt": lid_jid, "addressingMode": "pn", "fromMe": false, "id": "A4"}),
        ),
    ];
    for (label, key) in variants {
        let identity = sender(key);
        assert_eq!(identity.canonical(), PN, "{label}");
        assert_eq!(identity.reply_to, PN, "{label}");
        assert_eq!(identity.phone.as_deref(), Some(PN), "{label}");
        assert_eq!(identity.lid.as_deref(), Some(LID), "{label}");
    }
}

#[test]
fn bare_lid_is_canonical_and_replied_to_as_a_jid() {
    let identity = sender(json!({"remoteJid": format!("{LID}@lid"), "fromMe": false, "id": "B1"}));
    assert_eq!(identity.canonical(), LID);
    assert_eq!(identity.reply_to, format!("{LID}@lid"));
    assert_eq!(identity.phone, None);
}

#[test]
fn two_point_three_point_seven_pn_in_both_fields() {
    // 2.3.7 overwrites remoteJid with remoteJidAlt: both hold the PN.
    let pn_jid = format!("{PN}@s.whatsapp.net");
    let identity =
        sender(json!({"remoteJid": pn_jid, "remoteJidAlt": pn_jid, "fromMe": false, "id": "C1"}));
    assert_eq!(identity.canonical(), PN);
    assert_eq!(identity.lid, None);
}

#[test]
fn device_suffix_case_and_legacy_server_are_normalised() {
    for remote in [
        format!("{PN}:12@s.whatsapp.net"),
        format!("{PN}@S.WhatsApp.Net"),
        format!("{PN}@c.us"),
        format!(" {PN}@s.whatsapp.net "),
    ] {
        let identity = sender(json!({"remoteJid": remote, "fromMe": false, "id": "D1"}));
        assert_eq!(identity.canonical(), PN, "{remote}");
        assert_eq!(identity.reply_to, PN, "{remote}");
    }
}

#[test]
fn a_malformed_alternative_is_skipped() {
    let identity = sender(json!({
        "remoteJid": format!("{LID}@lid"),
        "remoteJidAlt": "not-a-number@s.whatsapp.net",
        "senderPn": 42,
        "fromMe": false,
        "id": "E1"
    }));
    assert_eq!(identity.canonical(), LID);
    assert_eq!(identity.reply_to, format!("{LID}@lid"));
}

#[test]
fn group_author_in_either_addressing_mode() {
    let group = "120363000011112222@g.us";
    for (participant, alt) in [
        (format!("{LID}@lid"), format!("{PN}@s.whatsapp.net")),
        (format!("{PN}@s.whatsapp.net"), format!("{LID}@lid")),
    ] {
        let message = incoming(json!({
            "remoteJid": group, "participant": participant, "participantAlt": alt,
            "fromMe": false, "id": "G1"
        }));
        assert_eq!(message.chat, Chat::Group { jid: group.into() });
        assert_eq!(message.sender.canonical(), PN);
        assert_eq!(message.sender.lid.as_deref(), Some(LID));
        assert_eq!(message.sender.reply_to, PN);
    }
}

#[test]
fn group_author_with_only_a_lid() {
    let message = incoming(json!({
        "remoteJid": "120363000011112222@g.us", "participant": format!("{LID}@lid"),
        "fromMe": false, "id": "G2"
    }));
    assert_eq!(message.sender.canonical(), LID);
    assert_eq!(message.sender.reply_to, format!("{LID}@lid"));
}

#[test]
fn status_author_comes_from_participant() {
    let message = incoming(json!({
        "remoteJid": "status@broadcast", "participant": format!("{PN}@s.whatsapp.net"),
        "fromMe": false, "id": "S1"
    }));
    assert_eq!(message.chat, Chat::StatusBroadcast);
    assert_eq!(message.sender.canonical(), PN);
}

#[test]
fn newsletters_and_broadcast_lists_are_ignored_chats() {
    for remote in ["120363999999999999@newsletter", "1762300000@broadcast"] {
        let webhook = parse(&body(
            json!({"remoteJid": remote, "fromMe": false, "id": "N1"}),
        ))
        .expect("parses");
        assert_eq!(
            webhook.kind.clone(),
            WebhookKind::Ignored {
                reason: switchyard_evolution::IgnoreReason::UnsupportedChat
            },
            "{remote}"
        );
    }
}
