//! Signing in to the console with an admin token (`ADMIN_TOKENS`).
//!
//! - The session cookie carries the token's *name*, an expiry and a nonce,
//!   signed with HMAC-SHA256 keyed by the token itself: nothing is stored,
//!   any `serve` process verifies it, and changing or removing the token
//!   ends its sessions. `HttpOnly`, `SameSite=Strict`, and `Secure` behind
//!   TLS (`X-Forwarded-Proto: https`, or `CONSOLE_SECURE_COOKIE=true`).
//! - Every POST but the sign-in carries a CSRF token (an HMAC of the
//!   session's nonce), and a POST whose `Origin` is another site is refused.
//! - Wrong tokens are rate-limited per client address: after
//!   [`MAX_FAILURES`] within [`WINDOW`], sign-in answers 429 until the window passes.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::i18n::Lang;
use super::UiState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "switchyard_console";
/// How long a sign-in lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Wrong tokens allowed per client address within [`WINDOW`].
pub const MAX_FAILURES: u32 = 5;
/// The rate limit's window.
pub const WINDOW: Duration = Duration::from_secs(10 * 60);
/// Console forms are a few short fields.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The signed-in operator, for the handlers.
#[derive(Clone, Debug)]
pub struct Operator {
    /// The token's name: the actor in the audit log.
    pub name: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
}

/// A POST's fields, parsed once by [`require_operator`] (after the CSRF check).
#[derive(Clone, Debug, Default)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    /// The first value of `name`, trimmed; `""` when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(key, _)| key == name).map_or("", |(_, value)| value.trim())
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn mac(key: &str, parts: &[&str]) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    for part in parts {
        mac.update(part.as_bytes());
        mac.update(b"\x1f");
    }
    b64(&mac.finalize().into_bytes())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

/// The cookie value for a new sign-in with token `(name, token)`.
pub fn session_value(name: &str, token: &str) -> String {
    let name = b64(name.as_bytes());
    let expires = (now_secs() + SESSION_TTL.as_secs()).to_string();
    let nonce = uuid::Uuid::now_v7().simple().to_string();
    let signature = mac(token, &["session", &name, &expires, &nonce]);
    format!("{name}.{expires}.{nonce}.{signature}")
}

/// The operator a cookie value signs in, if it is valid, unexpired and its token still configured.
pub fn verify(value: &str, tokens: &[(String, String)]) -> Option<Operator> {
    let mut parts = value.split('.');
    let (name, expires, nonce, signature) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || expires.parse::<u64>().ok()? <= now_secs() {
        return None;
    }
    let decoded = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(name).ok()?).ok()?;
    let (_, token) = tokens.iter().find(|(known, _)| *known == decoded)?;
    let expected = mac(token, &["session", name, expires, nonce]);
    if !switchyard_evolution::auth::secret_matches(&expected, signature) {
        return None;
    }
    Some(Operator { name: decoded, csrf: mac(token, &["csrf", nonce]) })
}

/// The token's name when `presented` is one of the tokens (every token compared in constant time).
pub fn token_name(presented: &str, tokens: &[(String, String)]) -> Option<(String, String)> {
    let mut matched = None;
    for (name, token) in tokens {
        if switchyard_evolution::auth::secret_matches(token, presented) {
            matched = Some((name.clone(), token.clone()));
        }
    }
    matched
}

/// A cookie's value from the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// Whether the browser reached us over TLS (directly or through a proxy that says so).
pub fn secure(state: &UiState, headers: &HeaderMap) -> bool {
    state.app.config().console_secure_cookie
        || headers.get("x-forwarded-proto").and_then(|value| value.to_str().ok()).is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value with the console's flags.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{secure}", max_age.as_secs());
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("switchyard_console=; Path=/ui; Max-Age=0"))
}

/// Wrong-token counts per client address.
#[derive(Debug, Default)]
pub struct Limiter {
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Limiter {
    /// How long `ip` must wait, when it has used up its wrong tokens.
    pub fn blocked(&self, ip: IpAddr) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (since, count) = failures.get(&ip)?;
        let left = WINDOW.checked_sub(since.elapsed())?;
        (*count >= MAX_FAILURES).then_some(left)
    }

    /// Counts a wrong token from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() > 10_000 {
            failures.retain(|_, (since, _)| since.elapsed() < WINDOW);
        }
        let entry = failures.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }

    /// A right token clears the address's count.
    pub fn succeeded(&self, ip: IpAddr) {
        self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&ip);
    }
}

/// Whether a POST came from a page of this console: its `Origin` (when the
/// browser sends one, as they all do for POST) names the host it was sent to,
/// and `Sec-Fetch-Site` does not say cross-site.
fn same_origin(headers: &HeaderMap) -> bool {
    if headers.get("sec-fetch-site").is_some_and(|site| site == "cross-site") {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|value| value.to_str().ok()) else { return true };
    let host = headers.get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let origin_host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://")).unwrap_or("");
    !host.is_empty() && origin_host == host
}

fn peer(request: &axum::extract::Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(addr)| addr.ip())
}

/// Every console route but the sign-in and the assets: the console is on,
/// the cookie signs someone in, and a POST passes the CSRF check. Puts
/// [`Operator`] and (for POST) [`FormData`] in the request's extensions.
pub async fn require_operator(State(state): State<UiState>, request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let lang = Lang::of(request.headers());
    let tokens = &state.app.config().admin_tokens;
    if tokens.is_empty() {
        return super::message(&state, lang, None, StatusCode::SERVICE_UNAVAILABLE, lang.t("console_off"));
    }
    let Some(operator) = cookie(request.headers(), SESSION_COOKIE).and_then(|value| verify(&value, tokens)) else {
        if request.method() == Method::GET {
            return Redirect::to("/ui/login").into_response();
        }
        return super::message(&state, lang, None, StatusCode::UNAUTHORIZED, lang.t("wrong_token"));
    };
    let (mut parts, body) = request.into_parts();
    if parts.method == Method::POST {
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
            return super::message(&state, lang, Some(&operator), StatusCode::PAYLOAD_TOO_LARGE, lang.t("error"));
        };
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        let presented = fields.iter().find(|(key, _)| key == "csrf").map_or("", |(_, value)| value.as_str());
        if !same_origin(&parts.headers) || !switchyard_evolution::auth::secret_matches(&operator.csrf, presented) {
            tracing::warn!(actor = %operator.name, path = %parts.uri.path(), "console form refused: CSRF check failed");
            return super::message(&state, lang, Some(&operator), StatusCode::FORBIDDEN, lang.t("csrf_refused"));
        }
        parts.extensions.insert(FormData(fields));
        parts.extensions.insert(operator);
        return next.run(axum::extract::Request::from_parts(parts, axum::body::Body::empty())).await;
    }
    parts.extensions.insert(operator);
    next.run(axum::extract::Request::from_parts(parts, body)).await
}

/// `GET /ui/login`.
pub async fn login_form(State(state): State<UiState>, headers: HeaderMap) -> Response {
    let lang = Lang::of(&headers);
    if state.app.config().admin_tokens.is_empty() {
        return super::message(&state, lang, None, StatusCode::SERVICE_UNAVAILABLE, lang.t("console_off"));
    }
    super::login_page(lang, StatusCode::OK, None)
}

/// `POST /ui/login` with `token`: sets the session cookie and goes to the overview.
pub async fn login(State(state): State<UiState>, request: axum::extract::Request) -> Response {
    let lang = Lang::of(request.headers());
    let tokens = state.app.config().admin_tokens.clone();
    if tokens.is_empty() {
        return super::message(&state, lang, None, StatusCode::SERVICE_UNAVAILABLE, lang.t("console_off"));
    }
    let ip = peer(&request);
    if let Some(wait) = state.limiter.blocked(ip) {
        let mut response = super::login_page(lang, StatusCode::TOO_MANY_REQUESTS, Some(lang.f("too_many_attempts", &[&wait.as_secs().max(1)])));
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
        return response;
    }
    if !same_origin(request.headers()) {
        return super::message(&state, lang, None, StatusCode::FORBIDDEN, lang.t("csrf_refused"));
    }
    let secure = secure(&state, request.headers());
    let Ok(bytes) = axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES).await else {
        return super::login_page(lang, StatusCode::PAYLOAD_TOO_LARGE, Some(lang.t("error").to_owned()));
    };
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let presented = fields.iter().find(|(key, _)| key == "token").map_or("", |(_, value)| value.trim());
    match token_name(presented, &tokens) {
        Some((name, token)) if !presented.is_empty() => {
            state.limiter.succeeded(ip);
            tracing::info!(actor = %name, "console sign-in");
            let mut response = Redirect::to("/ui").into_response();
            response.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &session_value(&name, &token), SESSION_TTL, secure));
            response
        }
        _ => {
            state.limiter.failed(ip);
            tracing::warn!(%ip, "console sign-in refused: wrong token");
            super::login_page(lang, StatusCode::UNAUTHORIZED, Some(lang.t("wrong_token").to_owned()))
        }
    }
}

/// `POST /ui/logout`: forgets the cookie in this browser.
pub async fn logout(State(state): State<UiState>, headers: HeaderMap) -> Response {
    let mut response = Redirect::to("/ui/login").into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", Duration::ZERO, secure(&state, &headers)));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Vec<(String, String)> {
        vec![("ana".to_owned(), "token-of-ana".to_owned()), ("bia.ops".to_owned(), "token-of-bia".to_owned())]
    }

    #[test]
    fn a_session_verifies_until_its_token_changes_or_it_is_tampered_with() {
        let value = session_value("bia.ops", "token-of-bia");
        let operator = verify(&value, &tokens()).unwrap();
        assert_eq!(operator.name, "bia.ops");
        assert_eq!(verify(&value, &tokens()).unwrap().csrf, operator.csrf, "the CSRF token is stable within a session");
        assert_ne!(verify(&session_value("bia.ops", "token-of-bia"), &tokens()).unwrap().csrf, operator.csrf, "and differs across sessions");
        let rotated = vec![("bia.ops".to_owned(), "new-token".to_owned())];
        assert!(verify(&value, &rotated).is_none(), "a changed token ends its sessions");
        // Claim another name with the same signature.
        let forged = format!("{}.{}", b64(b"ana"), value.split_once('.').unwrap().1);
        assert!(verify(&forged, &tokens()).is_none());
        assert!(verify("garbage", &tokens()).is_none());
    }

    #[test]
    fn the_limiter_blocks_after_the_allowed_failures_and_a_success_clears() {
        let limiter = Limiter::default();
        let ip = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..MAX_FAILURES - 1 {
            limiter.failed(ip);
        }
        assert!(limiter.blocked(ip).is_none());
        limiter.failed(ip);
        assert!(limiter.blocked(ip).is_some_and(|left| left <= WINDOW));
        assert!(limiter.blocked(IpAddr::from([10, 0, 0, 2])).is_none(), "other addresses are not affected");
        limiter.succeeded(ip);
        assert!(limiter.blocked(ip).is_none());
    }

    #[test]
    fn origin_must_be_this_host() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8081"));
        assert!(same_origin(&headers), "no Origin: a same-origin form from an old browser");
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8081"));
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:9999"));
        assert!(!same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8081"));
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&headers));
    }
}
