//! The customer portal: sign in with a password, list your own requests,
//! read one (customer messages and public replies only — internal notes
//! and routing never appear), reply, open a new request. Same CSP, CSRF
//! and cross-site checks as the agent pages; another customer's ticket is
//! a 404.

use super::render::page;
use super::{Fields, WebError, cross_site, see_other};
use crate::AppState;
use crate::auth::{
    Credential, Identity, authenticate, clear_session_cookie, constant_time_eq, cookie_value,
    random_secret, wants_secure_cookie,
};
use crate::extract::ClientIp;
use crate::routes::session::{LoginRequest, portal_login};
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tierdesk_core::{Actor, Contact, EventKind, Priority, Ticket, TicketId, Tier};
use tierdesk_store::{Requester, TicketChange, TicketDraft, TicketFilter};

pub(super) const LOGIN_COOKIE: &str = "tierdesk_portal_login";

fn login_form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
) -> Response {
    let token = cookie_value(headers, LOGIN_COOKIE)
        .filter(|t| {
            t.len() == 43
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(random_secret, str::to_string);
    let mut response = page(
        status,
        "portal_login.html",
        json!({ "email": email, "error": error, "login_token": token }),
    );
    let secure = if wants_secure_cookie(state.config().public_url.as_deref(), headers) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{LOGIN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/portal/login; Max-Age=3600{secure}"
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

pub(crate) async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    login_form(&state, &headers, StatusCode::OK, "", None)
}

pub(crate) async fn login_submit(
    State(state): State<AppState>,
    ip: ClientIp,
    request: Request,
) -> Response {
    let (headers, fields) = match super::login::sign_in_form(&state, request, LOGIN_COOKIE).await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let email = fields.get("email").unwrap_or_default().trim().to_string();
    let request = LoginRequest {
        email: email.clone(),
        password: fields.get("password").unwrap_or_default().to_string(),
    };
    match portal_login(
        State(state.clone()),
        ip,
        headers.clone(),
        crate::extract::ApiJson(request),
    )
    .await
    {
        Ok(signed_in) => {
            let mut response = see_other("/portal");
            for cookie in signed_in.headers().get_all(header::SET_COOKIE) {
                response
                    .headers_mut()
                    .append(header::SET_COOKIE, cookie.clone());
            }
            response
        }
        Err(e) if e.code == "csrf_failed" => WebError::csrf().into_response(),
        Err(e) => {
            let message = if e.code == "unauthenticated" {
                "The email address or password is not correct.".to_string()
            } else {
                e.detail.clone()
            };
            login_form(&state, &headers, e.status, &email, Some(&message))
        }
    }
}

/// A signed-in customer (session cookie), or a redirect to the portal sign-in.
async fn customer(state: &AppState, headers: &HeaderMap) -> Result<(Contact, String), Response> {
    let caller = authenticate(headers, state)
        .await
        .map_err(|e| WebError::from(e).into_response())?;
    match caller {
        Some(crate::auth::Caller {
            identity: Identity::Customer(contact),
            credential: Credential::Session { csrf_token, .. },
        }) => Ok((contact, csrf_token)),
        _ => Err(see_other("/portal/login")),
    }
}

/// A POSTed portal form: same site and the session's CSRF token.
async fn customer_form(state: &AppState, request: Request) -> Result<(Contact, Fields), Response> {
    let headers = request.headers().clone();
    if cross_site(&headers, state) {
        return Err(WebError::csrf().into_response());
    }
    let (contact, csrf) = customer(state, &headers).await?;
    let fields = match axum::Form::<Vec<(String, String)>>::from_request(request, state).await {
        Ok(axum::Form(pairs)) => Fields(pairs),
        Err(e) => {
            return Err(
                WebError::new(StatusCode::BAD_REQUEST, "Bad form", e.body_text()).into_response(),
            );
        }
    };
    if !constant_time_eq(
        fields.get("csrf").unwrap_or_default().as_bytes(),
        csrf.as_bytes(),
    ) {
        return Err(WebError::csrf().into_response());
    }
    Ok((contact, fields))
}

/// `POST /portal/logout`: ends the customer's session (same-site, with the
/// session's CSRF token) and returns to the portal's sign-in page.
pub(crate) async fn logout(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    if let Err(refused) = customer_form(&state, request).await {
        return refused;
    }
    if let Ok(Some(crate::auth::Caller {
        credential: Credential::Session { token_hash, .. },
        ..
    })) = authenticate(&headers, &state).await
    {
        if let Err(e) = state.store().delete_session(&token_hash).await {
            return WebError::from(crate::error::ApiError::from(e)).into_response();
        }
        state.credentials().clear();
    }
    let secure = wants_secure_cookie(state.config().public_url.as_deref(), &headers);
    let mut response = see_other("/portal/login");
    if let Ok(value) = HeaderValue::from_str(&clear_session_cookie(secure)) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

pub(crate) async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (contact, csrf) = match customer(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let filter = TicketFilter {
        requester: Some(contact.id),
        ..TicketFilter::default()
    };
    let tickets = match state.store().list_tickets(&filter, None, 100).await {
        Ok(t) => t,
        Err(e) => return WebError::from(crate::error::ApiError::from(e)).into_response(),
    };
    let rows: Vec<_> = tickets.iter().map(|t| json!({ "id": t.id.0, "reference": t.reference, "subject": t.subject, "status": t.status.as_str() })).collect();
    page(
        StatusCode::OK,
        "portal.html",
        json!({ "name": contact.name, "tickets": rows, "csrf": csrf }),
    )
}

/// The contact's own ticket, or `None` (shown as 404 either way).
async fn own_ticket(state: &AppState, contact: &Contact, raw: &str) -> Result<Ticket, Response> {
    let id = super::path_id(raw).map_err(IntoResponse::into_response)?;
    match state.store().ticket(TicketId(id)).await {
        Ok(Some(t)) if t.requester == contact.id => Ok(t),
        Ok(_) => Err(WebError::not_found().into_response()),
        Err(e) => Err(WebError::from(crate::error::ApiError::from(e)).into_response()),
    }
}

pub(crate) async fn ticket_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Response {
    let (contact, csrf) = match customer(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let ticket = match own_ticket(&state, &contact, &raw).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let events = match state.store().ticket_events(ticket.id).await {
        Ok(e) => e,
        Err(e) => return WebError::from(crate::error::ApiError::from(e)).into_response(),
    };
    // Only the conversation: nothing internal can slip through a new event type.
    let messages: Vec<_> = events
        .iter()
        .filter_map(|e| match (&e.event.kind, e.event.actor) {
            (EventKind::CustomerMessage { body, .. }, _) => Some(("entry-customer", "You", body)),
            (EventKind::AgentReply { body }, Actor::Agent { .. } | Actor::Rule { .. }) => Some(("entry-reply", "Support", body)),
            _ => None,
        }.map(|(class, who, text)| json!({ "class": class, "who": who, "text": text, "at": crate::views::rfc3339(e.event.at) })))
        .collect();
    page(
        StatusCode::OK,
        "portal_ticket.html",
        json!({
            "id": ticket.id.0, "reference": ticket.reference, "subject": ticket.subject,
            "status": ticket.status.as_str(), "messages": messages, "csrf": csrf,
        }),
    )
}

pub(crate) async fn reply(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    request: Request,
) -> Response {
    let (contact, fields) = match customer_form(&state, request).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let ticket = match own_ticket(&state, &contact, &raw).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(body) = fields.text("body") else {
        return see_other(&format!("/portal/tickets/{}", ticket.id.0));
    };
    let change = TicketChange::CustomerMessage {
        author: contact.id,
        body: body.to_string(),
    };
    match state
        .store()
        .change_ticket(
            ticket.id,
            None,
            change,
            Actor::Customer { id: contact.id },
            state.now(),
        )
        .await
    {
        // A message on a closed ticket opens a follow-up: show where it landed.
        Ok(change) => see_other(&format!("/portal/tickets/{}", change.ticket.id.0)),
        Err(e) => WebError::from(crate::error::ApiError::from(e)).into_response(),
    }
}

pub(crate) async fn create(State(state): State<AppState>, request: Request) -> Response {
    let (contact, fields) = match customer_form(&state, request).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (Some(subject), Some(body)) = (fields.text("subject"), fields.text("body")) else {
        return WebError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Missing fields",
            "A subject and a description are both needed. Go back and fill them in.",
        )
        .into_response();
    };
    let draft = TicketDraft {
        subject: subject.to_string(),
        body: body.to_string(),
        requester: Requester::Id(contact.id),
        channel: tierdesk_core::Channel::Web,
        priority: Priority::P3,
        tier: Tier::ONE,
        team: None,
        tags: Vec::new(),
    };
    match state
        .store()
        .create_ticket(draft, Actor::Customer { id: contact.id }, state.now())
        .await
    {
        Ok(change) => see_other(&format!("/portal/tickets/{}", change.ticket.id.0)),
        Err(e) => WebError::from(crate::error::ApiError::from(e)).into_response(),
    }
}
