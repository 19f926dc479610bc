//! Portal sign-in by emailed link. Asking for a link always answers the
//! same page, known address or not, and the work happens after the answer,
//! so neither the page nor its timing tells who has an account. The link's
//! GET only shows a confirmation form: mail scanners that fetch links do
//! not spend it; the form's POST does, and signs in.

use super::render::page;
use super::{WebError, see_other};
use crate::AppState;
use crate::auth::{cookie_value, random_secret, token_hash, wants_secure_cookie};
use crate::error::ApiError;
use crate::extract::{ClientIp, QueryParams};
use crate::routes::session::start_session;
use crate::views::{ContactView, PrincipalView};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tierdesk_store::mail::{OutgoingMail, SIGN_IN_LINK};
use tierdesk_store::{NewSignInLink, Principal, StoreError};

/// The double-submit cookie of the confirmation form (the sign-in page's
/// own cookie covers the request form, under `/portal/login`).
const CONFIRM_COOKIE: &str = "tierdesk_portal_magic";
const LINK_TTL_MS: i64 = 15 * 60 * 1000;
/// Links per contact in one [`LINK_TTL_MS`] window.
const LINKS_PER_WINDOW: i64 = 3;

/// A secret as [`random_secret`] makes them: 43 URL-safe characters.
fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `POST /portal/login/link`: the neutral page, whatever the address.
pub(crate) async fn request(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    request: Request,
) -> Response {
    let (_, fields) =
        match super::login::sign_in_form(&state, request, super::portal::LOGIN_COOKIE).await {
            Ok(form) => form,
            Err(refused) => return refused,
        };
    let email = fields
        .get("email")
        .unwrap_or_default()
        .trim()
        .to_lowercase();
    // Per address and per client, shared with password attempts.
    if let Err(e) = state.login_limiter().check(&email, ip) {
        return WebError::from(e).into_response();
    }
    if !email.is_empty() {
        let background = state.clone();
        let address = email.clone();
        tokio::spawn(async move {
            if let Err(e) = send_link(&background, &address).await {
                tracing::error!(error = %e, "a portal sign-in link could not be queued");
            }
        });
    }
    page(
        StatusCode::OK,
        "portal_link.html",
        json!({ "state": "sent", "title": "Check your email", "email": email }),
    )
}

/// Mails a link if `email` is that of a contact with portal access, through
/// the first enabled mailbox, unless the contact is over its limit.
/// Everything else is logged.
async fn send_link(state: &AppState, email: &str) -> Result<(), StoreError> {
    let store = state.store();
    // Portal access is what an invitation grants and revoking removes; a
    // link is another way in for those who have it, not a way around it.
    let Some(contact) = store
        .contact_by_email(email)
        .await?
        .filter(|c| c.portal_access)
    else {
        tracing::info!(
            "portal sign-in link asked for an address without portal access; nothing sent"
        );
        return Ok(());
    };
    let Some(base) = state.config().public_url.as_deref() else {
        tracing::warn!("portal sign-in links need public_url (the link's address); nothing sent");
        return Ok(());
    };
    let Some(mailbox) = store
        .list_mailboxes()
        .await?
        .into_iter()
        .find(|m| m.spec.enabled)
    else {
        tracing::warn!("no enabled mailbox to send a portal sign-in link from; nothing sent");
        return Ok(());
    };
    let secret = random_secret();
    let now = state.now();
    let domain = tierdesk_core::validate::email_domain(&mailbox.spec.address);
    let url = format!("{}/portal/magic?token={secret}", base.trim_end_matches('/'));
    let mail = OutgoingMail {
        ticket_id: None,
        mailbox_id: mailbox.id,
        // Random, and not the secret: Message-IDs travel in logs and headers.
        message_id: format!("tierdesk.signin.{}@{domain}", random_secret()),
        from: mailbox.spec.address.clone(),
        from_name: mailbox.spec.from_name.clone(),
        reply_to: mailbox.spec.address.clone(),
        to: vec![contact.email.clone()],
        cc: Vec::new(),
        subject: "Your sign-in link".into(),
        body: format!(
            "Hello {},\n\nOpen this link to see your support requests:\n\n{url}\n\n\
             It works once, within 15 minutes. If you did not ask for it, ignore this message.\n",
            contact.name
        ),
        in_reply_to: None,
        references: Vec::new(),
        purpose: SIGN_IN_LINK.into(),
    };
    let link = NewSignInLink {
        contact: contact.id,
        token_hash: token_hash(&secret),
        created_at: now,
        expires_at: now.plus_millis(LINK_TTL_MS),
        max_recent: LINKS_PER_WINDOW,
        window_start: now.plus_millis(-LINK_TTL_MS),
    };
    if !store.create_sign_in_link(link, mail).await? {
        tracing::info!(
            contact = contact.id.0,
            "portal sign-in links rate-limited; nothing sent"
        );
    }
    Ok(())
}

/// `GET /portal/magic?token=…`: the confirmation form, with a fresh
/// double-submit token in it and in its cookie.
pub(crate) async fn confirm_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryParams,
) -> Response {
    let token = query.get("token").unwrap_or_default().trim();
    if !well_formed(token) {
        return refused();
    }
    let form_token = cookie_value(&headers, CONFIRM_COOKIE)
        .filter(|t| well_formed(t))
        .map_or_else(random_secret, str::to_string);
    let mut response = page(
        StatusCode::OK,
        "portal_link.html",
        json!({ "state": "confirm", "title": "Sign in", "token": token, "login_token": form_token }),
    );
    let secure = if wants_secure_cookie(state.config().public_url.as_deref(), &headers) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{CONFIRM_COOKIE}={form_token}; HttpOnly; SameSite=Strict; Path=/portal/magic; Max-Age=3600{secure}"
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `POST /portal/magic`: spends the link and signs in.
pub(crate) async fn confirm(State(state): State<AppState>, request: Request) -> Response {
    let (headers, fields) = match super::login::sign_in_form(&state, request, CONFIRM_COOKIE).await
    {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let token = fields.get("token").unwrap_or_default().trim();
    if !well_formed(token) {
        return refused();
    }
    let contact = match state
        .store()
        .redeem_sign_in_link(&token_hash(token), state.now())
        .await
    {
        // Access revoked since the link was sent: the link goes with it.
        Ok(contact) if !contact.portal_access => return refused(),
        Ok(contact) => contact,
        Err(StoreError::NotFound(_)) => return refused(),
        Err(e) => return WebError::from(ApiError::from(e)).into_response(),
    };
    let view = PrincipalView::Customer(ContactView::from(&contact));
    match start_session(&state, &headers, Principal::Customer(contact.id), view).await {
        Ok(signed_in) => {
            let mut response = see_other("/portal");
            for cookie in signed_in.headers().get_all(header::SET_COOKIE) {
                response
                    .headers_mut()
                    .append(header::SET_COOKIE, cookie.clone());
            }
            response
        }
        Err(e) => WebError::from(e).into_response(),
    }
}

/// Used, expired and forged links all get this one page.
fn refused() -> Response {
    page(
        StatusCode::GONE,
        "portal_link.html",
        json!({ "state": "refused", "title": "This link does not work" }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_secrets_of_our_shape_are_looked_up() {
        assert!(well_formed(&random_secret()));
        assert!(!well_formed("short"));
        assert!(!well_formed(&"a".repeat(44)));
        assert!(!well_formed(&format!("{}<", "a".repeat(42))));
    }
}
