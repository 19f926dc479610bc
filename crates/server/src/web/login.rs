//! Signing in and out with a form. The password check, rate limits and the
//! session are the API's own (`POST /api/v1/auth/login`), called in-process.
//!
//! Before there is a session the form carries a one-off token that must
//! match a cookie set with it (a double-submit token), on top of refusing
//! other sites' `Origin`.

use super::render::page;
use super::{AgentSession, Fields, WebError, cross_site, local_path, see_other};
use crate::AppState;
use crate::auth::{
    Credential, authenticate, clear_session_cookie, constant_time_eq, cookie_value, random_secret,
    wants_secure_cookie,
};
use crate::extract::{ClientIp, QueryParams};
use crate::routes::session::{LoginRequest, login};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

const LOGIN_COOKIE: &str = "tierdesk_login";

fn login_cookie(value: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{LOGIN_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/login; Max-Age=3600{secure}")
}

/// The form, with a fresh token in it and in its cookie.
fn form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    email: &str,
    next: &str,
    error: Option<String>,
) -> Response {
    // Reuse the browser's token, so two open sign-in tabs both work.
    let token = cookie_value(headers, LOGIN_COOKIE)
        .filter(|t| {
            t.len() == 43
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(random_secret, str::to_string);
    let mut response = page(
        status,
        "login.html",
        json!({ "email": email, "next": next, "error": error, "login_token": token }),
    );
    let secure = wants_secure_cookie(state.config().public_url.as_deref(), headers);
    if let Ok(value) = HeaderValue::from_str(&login_cookie(&token, secure)) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

pub(crate) async fn page_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryParams,
) -> Response {
    let next = local_path(query.get("next"));
    if let Ok(Some(caller)) = authenticate(&headers, &state).await
        && caller.customer().is_none()
        && matches!(caller.credential, Credential::Session { .. })
    {
        return see_other(&next);
    }
    form(&state, &headers, StatusCode::OK, "", &next, None)
}

/// A sign-in form as posted, once it passed the checks a form without a
/// session can have: same site, and the `login_token` field matching the
/// `cookie` set with the form (double submit).
pub(super) async fn sign_in_form(
    state: &AppState,
    request: Request,
    cookie: &str,
) -> Result<(HeaderMap, Fields), Response> {
    let headers = request.headers().clone();
    if cross_site(&headers, state) {
        return Err(WebError::csrf().into_response());
    }
    let fields = match axum::Form::<Vec<(String, String)>>::from_request(request, state).await {
        Ok(axum::Form(pairs)) => Fields(pairs),
        Err(e) => {
            return Err(
                WebError::new(StatusCode::BAD_REQUEST, "Bad form", e.body_text()).into_response(),
            );
        }
    };
    let expected = cookie_value(&headers, cookie).unwrap_or_default();
    let sent = fields.get("login_token").unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
        return Err(WebError::csrf().into_response());
    }
    Ok((headers, fields))
}

pub(crate) async fn submit(
    State(state): State<AppState>,
    ip: ClientIp,
    request: Request,
) -> Response {
    let (headers, pairs) = match sign_in_form(&state, request, LOGIN_COOKIE).await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let email = pairs.get("email").unwrap_or_default().trim().to_string();
    let next = local_path(pairs.get("next"));
    let request = LoginRequest {
        email: email.clone(),
        password: pairs.get("password").unwrap_or_default().to_string(),
    };
    match login(
        State(state.clone()),
        ip,
        headers.clone(),
        crate::extract::ApiJson(request),
    )
    .await
    {
        Ok(signed_in) => {
            let mut response = see_other(&next);
            for cookie in signed_in.headers().get_all(header::SET_COOKIE) {
                response
                    .headers_mut()
                    .append(header::SET_COOKIE, cookie.clone());
            }
            response
        }
        Err(e) => {
            let message = match e.code {
                "rate_limited" => format!("Too many attempts. {}", capitalise(&e.detail)),
                "csrf_failed" => return WebError::csrf().into_response(),
                "unauthenticated" => "The email address or password is not correct.".to_string(),
                _ => capitalise(&e.detail),
            };
            form(&state, &headers, e.status, &email, &next, Some(message))
        }
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Ends the session (the form carries its CSRF token) and clears the cookie.
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: super::AgentForm,
) -> Response {
    let AgentSession { caller, .. } = form.session;
    if let Credential::Session { token_hash, .. } = &caller.credential {
        if let Err(e) = state.store().delete_session(token_hash).await {
            return WebError::from(crate::error::ApiError::from(e)).into_response();
        }
        state.credentials().clear();
    }
    let secure = wants_secure_cookie(state.config().public_url.as_deref(), &headers);
    let mut response = see_other("/login");
    if let Ok(value) = HeaderValue::from_str(&clear_session_cookie(secure)) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
