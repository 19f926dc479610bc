//! Who is calling: password hashing, API tokens, sessions, CSRF and the
//! login rate limits.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::OnceLock;
use tierdesk_core::{Actor, Agent, Contact, Role};
use tierdesk_store::Principal;

pub const SESSION_COOKIE: &str = "tierdesk_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Long enough for any passphrase, short enough that hashing it is cheap.
pub const MAX_PASSWORD_CHARS: usize = 1024;
const API_TOKEN_PREFIX: &str = "td_";

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("could not hash the password: {0}")]
    Hash(String),
}

/// Argon2id with the crate's recommended parameters, in PHC string format.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// False for a wrong password and for a hash that does not parse.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Burns the same time as a real check, for logins with an unknown email,
/// so response times do not reveal which accounts exist.
pub fn verify_against_dummy(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let hash = DUMMY.get_or_init(|| hash_password("tierdesk-dummy-password").unwrap_or_default());
    let _ = verify_password(password, hash);
}

/// Checks a new password's length; the message is shown to the user.
pub fn check_new_password(field: &str, password: &str) -> ApiResult<()> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(ApiError::invalid(
            field,
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Hashes off the async runtime: Argon2 is deliberately slow.
pub async fn hash_password_blocking(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing task failed");
            ApiError::internal()
        })?
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing failed");
            ApiError::internal()
        })
}

/// Verifies off the async runtime; `None` hash runs the dummy check.
pub async fn verify_password_blocking(password: String, hash: Option<String>) -> ApiResult<bool> {
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) => verify_password(&password, &hash),
        None => {
            verify_against_dummy(&password);
            false
        }
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "password verification task failed");
        ApiError::internal()
    })
}

/// 32 random bytes, base64url: cookie values, CSRF tokens, invitations.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new API token: the secret (shown once) and the hash that is stored.
pub fn new_api_token() -> (String, String) {
    let secret = format!("{API_TOKEN_PREFIX}{}", random_secret());
    let hash = token_hash(&secret);
    (secret, hash)
}

/// SHA-256 hex. Secrets are long and random, so a fast hash suffices.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares without an early exit, so timing does not reveal a prefix.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The identity behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Agent(Agent),
    Customer(Contact),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer`; never sent by a browser on its own, so CSRF-exempt.
    Token,
    Session {
        token_hash: String,
        csrf_token: String,
    },
}

/// An authenticated caller. As an extractor it answers 401 without
/// credentials and 403 `csrf_failed` for unsafe cookie requests without the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub identity: Identity,
    pub credential: Credential,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        match &self.identity {
            Identity::Agent(agent) => Actor::Agent { id: agent.id },
            Identity::Customer(contact) => Actor::Customer { id: contact.id },
        }
    }

    pub fn agent(&self) -> ApiResult<&Agent> {
        match &self.identity {
            Identity::Agent(agent) => Ok(agent),
            Identity::Customer(_) => Err(ApiError::forbidden("only agents may do this")),
        }
    }

    pub fn admin(&self) -> ApiResult<&Agent> {
        let agent = self.agent()?;
        if agent.role == Role::Admin {
            Ok(agent)
        } else {
            Err(ApiError::forbidden("only admins may do this"))
        }
    }

    pub fn customer(&self) -> Option<&Contact> {
        match &self.identity {
            Identity::Customer(contact) => Some(contact),
            Identity::Agent(_) => None,
        }
    }

    fn check_csrf(&self, method: &Method, headers: &HeaderMap) -> ApiResult<()> {
        let Credential::Session { csrf_token, .. } = &self.credential else {
            return Ok(());
        };
        if matches!(
            *method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        ) {
            return Ok(());
        }
        let sent = headers
            .get(CSRF_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if constant_time_eq(sent, csrf_token.as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::csrf_failed(
                "send the session's CSRF token in the X-CSRF-Token header",
            ))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let caller = authenticate(&parts.headers, state)
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        caller.check_csrf(&parts.method, &parts.headers)?;
        Ok(caller)
    }
}

/// A caller who may or may not be signed in; no CSRF check is made.
#[derive(Debug, Clone)]
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        authenticate(&parts.headers, state).await.map(MaybeCaller)
    }
}

impl MaybeCaller {
    pub fn require_csrf(&self, method: &Method, headers: &HeaderMap) -> ApiResult<()> {
        match &self.0 {
            Some(caller) => caller.check_csrf(method, headers),
            None => Ok(()),
        }
    }
}

/// Resolves the bearer token or session cookie. A bearer token that does not
/// resolve is an error (never a silent fallback to the cookie); a stale
/// cookie simply means "not signed in".
pub async fn authenticate(headers: &HeaderMap, state: &AppState) -> ApiResult<Option<Caller>> {
    let store = state.store();
    if let Some(authorization) = headers.get(header::AUTHORIZATION) {
        let secret = authorization
            .to_str()
            .ok()
            .and_then(bearer_secret)
            .ok_or_else(ApiError::unauthenticated)?;
        let hash = token_hash(secret);
        if let Some(caller) = state.credentials().get(&hash) {
            return Ok(Some(caller));
        }
        let token = store
            .api_token(&hash)
            .await?
            .filter(|t| !t.revoked)
            .ok_or_else(ApiError::unauthenticated)?;
        let agent = store
            .agent(token.agent)
            .await?
            .filter(|a| a.active)
            .ok_or_else(ApiError::unauthenticated)?;
        let caller = Caller {
            identity: Identity::Agent(agent),
            credential: Credential::Token,
        };
        state.credentials().put(hash, caller.clone());
        return Ok(Some(caller));
    }
    let Some(cookie) = cookie_value(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let hash = token_hash(cookie);
    if let Some(caller) = state.credentials().get(&hash) {
        return Ok(Some(caller));
    }
    let Some(session) = store.session(&hash, state.now()).await? else {
        return Ok(None);
    };
    let identity = match session.principal {
        Principal::Agent(id) => store
            .agent(id)
            .await?
            .filter(|a| a.active)
            .map(Identity::Agent),
        // Revoking portal access ends the customer's sessions too.
        Principal::Customer(id) => store
            .contact(id)
            .await?
            .filter(|c| c.portal_access)
            .map(Identity::Customer),
    };
    let caller = identity.map(|identity| Caller {
        identity,
        credential: Credential::Session {
            token_hash: hash.clone(),
            csrf_token: session.csrf_token,
        },
    });
    if let Some(caller) = &caller {
        state.credentials().put(hash, caller.clone());
    }
    Ok(caller)
}

fn bearer_secret(value: &str) -> Option<&str> {
    let (scheme, secret) = value.trim().split_once(' ')?;
    let secret = secret.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !secret.is_empty()).then_some(secret)
}

pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
        .map(|(_, value)| value)
}

/// `Secure` when the public URL is https or a proxy says the request was.
pub fn wants_secure_cookie(public_url: Option<&str>, headers: &HeaderMap) -> bool {
    let public_https = public_url.is_some_and(|u| u.to_ascii_lowercase().starts_with("https://"));
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    public_https || forwarded_https
}

pub fn session_cookie(value: &str, max_age_secs: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age_secs}{secure}"
    )
}

pub fn clear_session_cookie(secure: bool) -> String {
    session_cookie("", 0, secure)
}

/// Login forms have no session to carry a CSRF token yet, so a browser
/// `Origin` from another site is refused instead. Clients that send no
/// `Origin` (curl, integrations) are not browsers and pass.
pub fn origin_allowed(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(origin_host) = authority_of(origin) else {
        return false;
    };
    let host_matches = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|host| host.trim().eq_ignore_ascii_case(origin_host));
    let public_matches = public_url
        .and_then(authority_of)
        .is_some_and(|public| public.eq_ignore_ascii_case(origin_host));
    host_matches || public_matches
}

fn authority_of(url: &str) -> Option<&str> {
    let (_, rest) = url.trim().split_once("://")?;
    let authority = rest.split('/').next()?;
    (!authority.is_empty()).then_some(authority)
}

/// Login attempts per email and per client address.
#[derive(Debug)]
pub struct LoginLimiter {
    by_email: DefaultKeyedRateLimiter<String>,
    by_ip: DefaultKeyedRateLimiter<IpAddr>,
}

/// Above this many tracked keys, forget the ones that are back to full allowance.
const LIMITER_RETAIN_THRESHOLD: usize = 10_000;

impl LoginLimiter {
    pub fn new(per_minute: u32) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
        Self {
            by_email: RateLimiter::keyed(quota),
            by_ip: RateLimiter::keyed(quota),
        }
    }

    pub fn check(&self, email: &str, ip: Option<IpAddr>) -> ApiResult<()> {
        if self.by_email.len() > LIMITER_RETAIN_THRESHOLD {
            self.by_email.retain_recent();
        }
        if self.by_ip.len() > LIMITER_RETAIN_THRESHOLD {
            self.by_ip.retain_recent();
        }
        let now = DefaultClock::default().now();
        let retry = |wait: std::time::Duration| ApiError::rate_limited(wait.as_secs().max(1));
        if let Some(ip) = ip {
            self.by_ip
                .check_key(&ip)
                .map_err(|not_until| retry(not_until.wait_time_from(now)))?;
        }
        self.by_email
            .check_key(&email.trim().to_lowercase())
            .map_err(|not_until| retry(not_until.wait_time_from(now)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse").unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "not a phc string"));
    }

    #[test]
    fn api_tokens_are_prefixed_and_hashed() {
        let (secret, hash) = new_api_token();
        assert!(secret.starts_with("td_"));
        assert_eq!(secret.len(), 3 + 43);
        assert_eq!(hash, token_hash(&secret));
        assert_eq!(hash.len(), 64);
        assert_ne!(new_api_token().0, secret);
    }

    #[test]
    fn csrf_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn cookies_and_bearer() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; tierdesk_session=xyz; b=2"),
        );
        assert_eq!(cookie_value(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(bearer_secret("Bearer td_abc"), Some("td_abc"));
        assert_eq!(bearer_secret("bearer  td_abc "), Some("td_abc"));
        assert_eq!(bearer_secret("Basic dXNlcg=="), None);
        let cookie = session_cookie("v", 60, true);
        assert!(cookie.contains("HttpOnly") && cookie.contains("Secure"));
        assert!(!session_cookie("v", 60, false).contains("Secure"));
    }

    #[test]
    fn origins() {
        let mut headers = HeaderMap::new();
        assert!(origin_allowed(&headers, None));
        headers.insert(header::HOST, HeaderValue::from_static("desk.example.com"));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://desk.example.com"),
        );
        assert!(origin_allowed(&headers, None));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.test"),
        );
        assert!(!origin_allowed(&headers, None));
        assert!(origin_allowed(&headers, Some("https://evil.test/")));
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!origin_allowed(&headers, None));
    }

    #[test]
    fn login_limits_per_email() {
        let limiter = LoginLimiter::new(2);
        assert!(limiter.check("a@x.io", None).is_ok());
        assert!(limiter.check("A@x.io", None).is_ok());
        let third = limiter.check("a@x.io", None);
        assert_eq!(third.err().map(|e| e.code), Some("rate_limited"));
        assert!(limiter.check("b@x.io", None).is_ok());
    }
}
