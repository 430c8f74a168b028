//! Webhook authentication.
//!
//! Evolution does not sign webhook bodies. A per-instance webhook can carry
//! either a static secret header (compare it with [`secret_matches`]) or, when
//! its `headers` contain `jwt_key`, an `Authorization: Bearer <jwt>` header:
//! an HS256 token with claims `{iat, exp: iat+600, app: "evolution",
//! action: "webhook"}` that does not cover the body ([`verify_jwt`]). Both
//! only prove the sender knows the secret; replays within the token's
//! lifetime are caught by the server's deduplication, not here.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Clock skew tolerated on `exp`, `iat` and `nbf`.
pub const JWT_LEEWAY_SECS: i64 = 30;

/// Compares a presented secret with the expected one in constant time.
///
/// Both values are reduced to HMAC-SHA256 tags under a fixed key and the tags
/// are compared with `hmac`'s constant-time `verify_slice`, so neither the
/// position of the first differing byte nor a length difference changes the
/// comparison's timing (only hashing time depends on the lengths).
///
/// An empty `expected` never matches: an unset secret must fail closed.
pub fn secret_matches(expected: &str, presented: &str) -> bool {
    if expected.is_empty() {
        return false;
    }
    let tag = |value: &str| {
        // The key is public: it only makes the two inputs fixed-length.
        let mut mac = HmacSha256::new_from_slice(b"switchyard secret comparison")
            .expect("hmac accepts keys of any length");
        mac.update(value.as_bytes());
        mac
    };
    let expected_tag = tag(expected).finalize().into_bytes();
    tag(presented).verify_slice(&expected_tag).is_ok()
}

/// The token of an `Authorization: Bearer <token>` header value (scheme
/// matched case-insensitively), or `None` for another scheme.
pub fn bearer_token(header_value: &str) -> Option<&str> {
    let value = header_value.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Why a webhook JWT was refused. Messages never include the token or key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("jwt key is empty")]
    EmptyKey,
    #[error("malformed jwt: {0}")]
    Malformed(&'static str),
    #[error("unsupported jwt algorithm `{0}` (only hs256 is accepted)")]
    UnsupportedAlgorithm(String),
    #[error("jwt signature does not match the configured key")]
    BadSignature,
    #[error("jwt claim `{0}` is missing or not a number")]
    MissingClaim(&'static str),
    #[error("jwt expired {0} s ago")]
    Expired(i64),
    #[error("jwt is not valid yet (`{0}` is in the future; check the clocks)")]
    NotYetValid(&'static str),
    #[error("jwt claim `{claim}` must be `{expected}`")]
    WrongClaim {
        claim: &'static str,
        expected: &'static str,
    },
}

/// Verifies an Evolution webhook JWT: HS256 only, signature under `key`,
/// `exp` not passed and `iat`/`nbf` not in the future (each with
/// [`JWT_LEEWAY_SECS`]), `app == "evolution"` and `action == "webhook"`.
///
/// `exp` is required; `iat` and `nbf` are checked when present.
///
/// The `jsonwebtoken` crate decodes the token and checks its signature
/// (ring's HMAC, constant-time). The times are compared here because its
/// validation reads the system clock and `now_unix_secs` is injected; the
/// header's `alg` is read first only to name a refused algorithm.
pub fn verify_jwt(token: &str, key: &str, now_unix_secs: i64) -> Result<(), JwtError> {
    if key.is_empty() {
        return Err(JwtError::EmptyKey);
    }
    let token = token.trim();
    let mut parts = token.split('.');
    let (Some(header_b64), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("expected three dot-separated parts"));
    };

    // The algorithm is checked before anything else: a token that says
    // `none` or `RS256` must not get as far as a signature comparison.
    let header = decode_header(header_b64)?;
    match header.get("alg").and_then(Value::as_str) {
        Some("HS256") => {}
        Some(other) => return Err(JwtError::UnsupportedAlgorithm(sanitise(other))),
        None => return Err(JwtError::Malformed("header has no `alg`")),
    }

    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Value>(token, &DecodingKey::from_secret(key.as_bytes()), &validation)
        .map_err(|err| library_error(err.kind()))?
        .claims;
    if !claims.is_object() {
        return Err(JwtError::Malformed("claims are not a json object"));
    }

    let exp = numeric_claim(&claims, "exp")?.ok_or(JwtError::MissingClaim("exp"))?;
    if now_unix_secs > exp.saturating_add(JWT_LEEWAY_SECS) {
        return Err(JwtError::Expired(now_unix_secs.saturating_sub(exp)));
    }
    for name in ["iat", "nbf"] {
        if let Some(at) = numeric_claim(&claims, name)?
            && at > now_unix_secs.saturating_add(JWT_LEEWAY_SECS)
        {
            return Err(JwtError::NotYetValid(name));
        }
    }
    for (claim, expected) in [("app", "evolution"), ("action", "webhook")] {
        if claims.get(claim).and_then(Value::as_str) != Some(expected) {
            return Err(JwtError::WrongClaim { claim, expected });
        }
    }
    Ok(())
}

/// What `jsonwebtoken` refused, in our words (never the token or key).
fn library_error(kind: &ErrorKind) -> JwtError {
    match kind {
        ErrorKind::InvalidSignature => JwtError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            JwtError::UnsupportedAlgorithm("?".to_owned())
        }
        ErrorKind::Base64(_) => JwtError::Malformed("signature or claims are not base64url"),
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
            JwtError::Malformed("claims are not a json object")
        }
        _ => JwtError::Malformed("not a jwt"),
    }
}

fn decode_header(part: &str) -> Result<Value, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed("header is not base64url"))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(JwtError::Malformed("header is not a json object")),
    }
}

/// A NumericDate claim: `None` when absent, an error when not a number.
fn numeric_claim(claims: &Value, name: &'static str) -> Result<Option<i64>, JwtError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => number
            .as_i64()
            .or_else(|| {
                number
                    .as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 9.0e15)
                    .map(|f| f.floor() as i64)
            })
            .map(Some)
            .ok_or(JwtError::MissingClaim(name)),
        Some(_) => Err(JwtError::MissingClaim(name)),
    }
}

/// Keeps an attacker-chosen `alg` printable and short for the error message.
fn sanitise(alg: &str) -> String {
    alg.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(16)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_matches_exact_only() {
        assert!(secret_matches("s3cret-value", "s3cret-value"));
        assert!(!secret_matches("s3cret-value", "s3cret-valuf"));
        assert!(!secret_matches("s3cret-value", "s3cret-value "));
        assert!(!secret_matches("s3cret-value", "s3cret"));
        assert!(!secret_matches("s3cret-value", ""));
        assert!(!secret_matches("", ""));
    }

    #[test]
    fn bearer_token_extracts_the_token() {
        assert_eq!(bearer_token("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer_token("bearer   abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }

    #[test]
    fn sanitise_bounds_the_algorithm_name() {
        assert_eq!(sanitise("none"), "none");
        assert_eq!(sanitise("RS256\n\"x"), "RS256x");
        assert_eq!(sanitise(&"A".repeat(100)).len(), 16);
    }
}
