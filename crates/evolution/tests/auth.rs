//! Webhook JWT verification against tokens minted here with the same HMAC.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchyard_evolution::auth::{
    JWT_LEEWAY_SECS, JwtError, bearer_token, secret_matches, verify_jwt,
};

const KEY: &str = "webhook-jwt-key-for-tests";
const NOW: i64 = 1_762_300_000;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `header.claims` with HS256 the way Evolution's `jsonwebtoken` does.
fn mint(header: &Value, claims: &Value, key: &str) -> String {
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&mac.finalize().into_bytes()))
}

fn hs256() -> Value {
    json!({"alg": "HS256", "typ": "JWT"})
}

fn evolution_claims(iat: i64) -> Value {
    json!({"iat": iat, "exp": iat + 600, "app": "evolution", "action": "webhook"})
}

#[test]
fn a_fresh_evolution_token_verifies() {
    let token = mint(&hs256(), &evolution_claims(NOW - 5), KEY);
    assert_eq!(verify_jwt(&token, KEY, NOW), Ok(()));
    assert_eq!(verify_jwt(&format!(" {token}\n"), KEY, NOW), Ok(()));
    let header = format!("Bearer {token}");
    assert_eq!(
        verify_jwt(bearer_token(&header).expect("bearer"), KEY, NOW),
        Ok(())
    );
}

#[test]
fn wrong_key_or_tampered_claims_fail_the_signature() {
    let token = mint(&hs256(), &evolution_claims(NOW), KEY);
    assert_eq!(
        verify_jwt(&token, "another-key", NOW),
        Err(JwtError::BadSignature)
    );

    let parts: Vec<&str> = token.split('.').collect();
    let forged_claims = b64(
        json!({"iat": NOW, "exp": NOW + 99_999, "app": "evolution", "action": "webhook"})
            .to_string()
            .as_bytes(),
    );
    let forged = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
    assert_eq!(verify_jwt(&forged, KEY, NOW), Err(JwtError::BadSignature));

    let truncated_sig = format!("{}.{}.{}", parts[0], parts[1], &parts[2][..10]);
    assert!(verify_jwt(&truncated_sig, KEY, NOW).is_err());
}

#[test]
fn only_hs256_is_accepted() {
    let claims = evolution_claims(NOW);
    // alg none with an empty signature: the classic bypass.
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none"}).to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    assert_eq!(
        verify_jwt(&none, KEY, NOW),
        Err(JwtError::UnsupportedAlgorithm("none".into()))
    );
    for alg in ["HS384", "HS512", "RS256", "hs256"] {
        let token = mint(&json!({"alg": alg}), &claims, KEY);
        assert_eq!(
            verify_jwt(&token, KEY, NOW),
            Err(JwtError::UnsupportedAlgorithm(alg.into())),
            "{alg}"
        );
    }
    let no_alg = mint(&json!({"typ": "JWT"}), &claims, KEY);
    assert_eq!(
        verify_jwt(&no_alg, KEY, NOW),
        Err(JwtError::Malformed("header has no `alg`"))
    );
    assert_eq!(
        JwtError::UnsupportedAlgorithm("none".into()).to_string(),
        "unsupported jwt algorithm `none` (only hs256 is accepted)"
    );
}

#[test]
fn expiry_and_issue_time_with_leeway() {
    let token = mint(&hs256(), &evolution_claims(NOW - 600), KEY); // exp == NOW
    assert_eq!(verify_jwt(&token, KEY, NOW + JWT_LEEWAY_SECS), Ok(()));
    assert_eq!(
        verify_jwt(&token, KEY, NOW + JWT_LEEWAY_SECS + 1),
        Err(JwtError::Expired(JWT_LEEWAY_SECS + 1))
    );
    assert_eq!(JwtError::Expired(31).to_string(), "jwt expired 31 s ago");

    let future = mint(&hs256(), &evolution_claims(NOW + JWT_LEEWAY_SECS + 5), KEY);
    assert_eq!(
        verify_jwt(&future, KEY, NOW),
        Err(JwtError::NotYetValid("iat"))
    );
    let slightly_ahead = mint(&hs256(), &evolution_claims(NOW + 10), KEY);
    assert_eq!(verify_jwt(&slightly_ahead, KEY, NOW), Ok(()));

    let nbf = mint(
        &hs256(),
        &json!({"exp": NOW + 600, "nbf": NOW + 300, "app": "evolution", "action": "webhook"}),
        KEY,
    );
    assert_eq!(
        verify_jwt(&nbf, KEY, NOW),
        Err(JwtError::NotYetValid("nbf"))
    );
}

#[test]
fn exp_is_required_and_numeric() {
    let no_exp = mint(
        &hs256(),
        &json!({"iat": NOW, "app": "evolution", "action": "webhook"}),
        KEY,
    );
    assert_eq!(
        verify_jwt(&no_exp, KEY, NOW),
        Err(JwtError::MissingClaim("exp"))
    );
    let text_exp = mint(
        &hs256(),
        &json!({"iat": NOW, "exp": "tomorrow", "app": "evolution", "action": "webhook"}),
        KEY,
    );
    assert_eq!(
        verify_jwt(&text_exp, KEY, NOW),
        Err(JwtError::MissingClaim("exp"))
    );
    let float_exp = mint(
        &hs256(),
        &json!({"exp": (NOW + 600) as f64 + 0.5, "app": "evolution", "action": "webhook"}),
        KEY,
    );
    assert_eq!(verify_jwt(&float_exp, KEY, NOW), Ok(()));
}

#[test]
fn app_and_action_claims_must_match() {
    let wrong_app = mint(
        &hs256(),
        &json!({"iat": NOW, "exp": NOW + 600, "app": "other", "action": "webhook"}),
        KEY,
    );
    assert_eq!(
        verify_jwt(&wrong_app, KEY, NOW),
        Err(JwtError::WrongClaim {
            claim: "app",
            expected: "evolution"
        })
    );
    let no_action = mint(
        &hs256(),
        &json!({"iat": NOW, "exp": NOW + 600, "app": "evolution"}),
        KEY,
    );
    let err = verify_jwt(&no_action, KEY, NOW).unwrap_err();
    assert_eq!(
        err,
        JwtError::WrongClaim {
            claim: "action",
            expected: "webhook"
        }
    );
    assert_eq!(err.to_string(), "jwt claim `action` must be `webhook`");
}

#[test]
fn malformed_tokens_are_one_line_errors() {
    let cases = [
        ("", "malformed jwt: expected three dot-separated parts"),
        ("a.b", "malformed jwt: expected three dot-separated parts"),
        (
            "a.b.c.d",
            "malformed jwt: expected three dot-separated parts",
        ),
        ("!!!.e30.", "malformed jwt: header is not base64url"),
        ("W10.e30.", "malformed jwt: header is not a json object"), // header `[]`
    ];
    for (token, expected) in cases {
        let err = verify_jwt(token, KEY, NOW).unwrap_err();
        assert_eq!(err.to_string(), expected, "{token}");
    }
    // Padded base64 is not base64url-without-padding.
    let token = mint(&hs256(), &evolution_claims(NOW), KEY);
    let parts: Vec<&str> = token.split('.').collect();
    let padded = format!("{}.{}.{}=", parts[0], parts[1], parts[2]);
    assert!(verify_jwt(&padded, KEY, NOW).is_err());
}

#[test]
fn empty_key_fails_closed() {
    let token = mint(&hs256(), &evolution_claims(NOW), "");
    assert_eq!(verify_jwt(&token, "", NOW), Err(JwtError::EmptyKey));
}

#[test]
fn errors_never_show_the_token_or_key() {
    let token = mint(&hs256(), &evolution_claims(NOW - 10_000), KEY);
    for err in [
        verify_jwt(&token, KEY, NOW).unwrap_err(),
        verify_jwt(&token, "wrong", NOW).unwrap_err(),
    ] {
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains(KEY) && !shown.contains(&token[..20]),
            "{shown}"
        );
    }
}

#[test]
fn secret_header_comparison() {
    assert!(secret_matches("x-bot-secret-value", "x-bot-secret-value"));
    assert!(!secret_matches("x-bot-secret-value", "X-bot-secret-value"));
    assert!(!secret_matches("x-bot-secret-value", "x-bot-secret-valu"));
    assert!(!secret_matches(
        "x-bot-secret-value",
        "x-bot-secret-value-and-more"
    ));
    assert!(!secret_matches("", ""));
}

#[test]
fn every_flipped_signature_character_is_refused() {
    let token = mint(&hs256(), &evolution_claims(NOW), KEY);
    let (message, signature) = token.rsplit_once('.').unwrap();
    for at in 0..signature.len() {
        let mut forged: Vec<u8> = signature.bytes().collect();
        forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
        let forged = format!("{message}.{}", String::from_utf8(forged).unwrap());
        assert!(verify_jwt(&forged, KEY, NOW).is_err(), "flipped at {at}");
    }
}

#[test]
fn claims_that_are_not_an_object_are_refused_after_the_signature() {
    let array = mint(&hs256(), &json!([1, 2]), KEY);
    assert_eq!(
        verify_jwt(&array, KEY, NOW),
        Err(JwtError::Malformed("claims are not a json object"))
    );
    let header = b64(hs256().to_string().as_bytes());
    let not_json = format!("{header}.{}", b64(b"not json"));
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(not_json.as_bytes());
    let token = format!("{not_json}.{}", b64(&mac.finalize().into_bytes()));
    assert_eq!(
        verify_jwt(&token, KEY, NOW),
        Err(JwtError::Malformed("claims are not a json object"))
    );
    // Signed with HS512 but labelled HS256: the signature does not match.
    let hs256_header = b64(hs256().to_string().as_bytes());
    let claims = b64(evolution_claims(NOW).to_string().as_bytes());
    let mut mac = Hmac::<sha2::Sha512>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(format!("{hs256_header}.{claims}").as_bytes());
    let relabelled = format!("{hs256_header}.{claims}.{}", b64(&mac.finalize().into_bytes()));
    assert_eq!(verify_jwt(&relabelled, KEY, NOW), Err(JwtError::BadSignature));
}
