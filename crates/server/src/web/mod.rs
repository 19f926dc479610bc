//! The agent web app: server-rendered HTML over the same store calls and
//! route handlers as the JSON API, with a small hand-written script that
//! enhances it (live updates, keyboard shortcuts). Every form works without
//! JavaScript: POST, then a redirect (or the page again with the errors).
//!
//! Security: a strict Content-Security-Policy on every response (no inline
//! script or style), the session's CSRF token in every form and checked on
//! every POST, and cross-site POSTs refused by `Origin`/`Sec-Fetch-Site`.

mod admin;
mod assets;
mod chat_admin;
mod help;
mod inbox;
mod kb_edit;
mod login;
mod portal;
mod portal_link;
mod render;
mod ticket;
mod ticket_runbooks;

use crate::AppState;
use crate::auth::{Caller, Credential, Identity, authenticate, constant_time_eq, origin_allowed};
use crate::error::ApiError;
use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use render::render;
use serde_json::json;
use tierdesk_core::Agent;

pub(crate) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The pages and their form targets, all under the site root.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login::page_handler).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/inbox", get(inbox::page_handler))
        .route("/inbox/bulk", post(inbox::bulk))
        .route("/inbox/rows/{id}", get(inbox::row))
        .route("/inbox/counts", get(inbox::counts))
        .route("/tickets/{id}", get(ticket::page_handler))
        .route("/tickets/{id}/timeline", get(ticket::timeline))
        .route("/tickets/{id}/messages", post(ticket::message))
        .route("/tickets/{id}/update", post(ticket::update))
        .route("/tickets/{id}/macro", post(ticket::apply_macro))
        .route(
            "/tickets/{id}/escalate",
            get(ticket::escalation_page).post(ticket::escalate),
        )
        .route(
            "/tickets/{id}/runbooks/{runbook}/steps",
            post(ticket_runbooks::record),
        )
        .route(
            "/tickets/{id}/de-escalate",
            post(ticket_runbooks::de_escalate),
        )
        .route("/admin/chat", get(chat_admin::page_handler))
        .route("/admin", get(admin::index))
        .route(
            "/admin/tags",
            get(admin::tags::page_handler).post(admin::tags::create),
        )
        .route("/admin/tags/{id}", post(admin::tags::edit))
        .route("/admin/tags/{id}/rename", post(admin::tags::rename_tag))
        .route("/admin/tags/{id}/merge", post(admin::tags::merge_tag))
        .route(
            "/admin/rules",
            get(admin::rules::page_handler).post(admin::rules::create),
        )
        .route("/admin/rules/{id}", post(admin::rules::save))
        .route("/admin/rules/{id}/enabled", post(admin::rules::set_enabled))
        .route(
            "/admin/agents",
            get(admin::agents::page_handler).post(admin::agents::create),
        )
        .route("/admin/agents/{id}", post(admin::agents::update))
        .merge(admin::specs::routes())
        .route(
            "/admin/sla-calendars",
            get(admin::calendars::page_handler).post(admin::calendars::create),
        )
        .route("/admin/sla-calendars/{id}", post(admin::calendars::save))
        .route(
            "/admin/sla-calendars/{id}/delete",
            post(admin::calendars::delete),
        )
        .route(
            "/admin/mailboxes",
            get(admin::mailboxes::page_handler).post(admin::mailboxes::create),
        )
        .route("/admin/mailboxes/{id}", post(admin::mailboxes::save))
        .route(
            "/admin/mailboxes/{id}/delete",
            post(admin::mailboxes::delete),
        )
        .route(
            "/admin/teams",
            get(admin::teams::page_handler).post(admin::teams::create),
        )
        .route("/admin/teams/{id}", post(admin::teams::rename))
        .route("/admin/teams/{id}/members", post(admin::teams::members))
        .route(
            "/admin/teams/{id}/assignment",
            post(admin::teams::set_assignment),
        )
        .route("/admin/teams/{id}/delete", post(admin::teams::delete))
        .route(
            "/portal/login",
            get(portal::login_page).post(portal::login_submit),
        )
        .route("/portal/login/link", post(portal_link::request))
        .route(
            "/portal/magic",
            get(portal_link::confirm_page).post(portal_link::confirm),
        )
        .route("/portal", get(portal::home))
        .route("/portal/logout", post(portal::logout))
        .route("/portal/tickets", post(portal::create))
        .route("/portal/tickets/{id}", get(portal::ticket_page))
        .route("/portal/tickets/{id}/reply", post(portal::reply))
        .route("/kb", get(kb_edit::list))
        .route("/kb/edit/new", get(kb_edit::new_form).post(kb_edit::create))
        .route("/kb/edit/{id}", get(kb_edit::edit_form).post(kb_edit::save))
        .route("/kb/history/{id}", get(kb_edit::history))
        .route("/kb/id/{id}", get(help::agent_article_by_id))
        .route("/kb/{slug}", get(help::agent_article))
        .route("/tickets/{id}/article-draft", post(help::draft_from_ticket))
        .route("/help", get(help::home))
        .route("/help/search", get(help::search))
        .route("/help/ask", post(help::ask))
        .route("/help/c/{slug}", get(help::category))
        .route("/help/a/{slug}", get(help::article))
        .route("/help/a/{slug}/feedback", post(help::feedback))
        .route("/help/answers/{id}/solved", post(help::solved))
        .route("/help/answers/{id}/handover", post(help::handover))
        .route("/assets/{name}", get(assets::serve))
        .layer(axum::middleware::map_response(security_headers))
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// An error shown as an HTML page (never a problem document: a person reads it).
#[derive(Debug)]
pub(crate) struct WebError {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
    /// Seconds, for `429` (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl WebError {
    pub fn new(status: StatusCode, title: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            title: title.to_string(),
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is nothing here, or you may not see it.",
        )
    }

    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Form refused",
            "The form expired or was sent from another site (or this browser refuses cookies). Go back, reload the page and try again.",
        )
    }
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        let title = match e.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::TOO_MANY_REQUESTS => "Too many requests",
            s if s.is_server_error() => "Something went wrong",
            _ => "That did not work",
        };
        let mut web = Self::new(e.status, title, e.detail);
        web.retry_after = e.retry_after;
        web
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let body = render(
            "error.html",
            json!({ "title": self.title, "message": self.message, "status": self.status.as_u16() }),
        )
        .unwrap_or_else(|_| self.message.clone());
        let mut response = (self.status, axum::response::Html(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

pub(crate) type WebResult<T> = Result<T, WebError>;

/// A signed-in agent on a page. Not signed in: a redirect to the sign-in
/// form. A customer: 403 (the portal is theirs, not these pages).
#[derive(Debug, Clone)]
pub(crate) struct AgentSession {
    pub caller: Caller,
    pub agent: Agent,
    pub csrf: String,
}

impl FromRequestParts<AppState> for AgentSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let caller = authenticate(&parts.headers, state)
            .await
            .map_err(|e| WebError::from(e).into_response())?;
        let Some(caller) = caller else {
            let next = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/inbox");
            let target = format!("/login?next={}", encode_component(next));
            return Err(Redirect::to(&target).into_response());
        };
        let csrf = match &caller.credential {
            Credential::Session { csrf_token, .. } => csrf_token.clone(),
            // A token never comes from a browser form; these pages are for people.
            Credential::Token => {
                return Err(WebError::new(
                    StatusCode::FORBIDDEN,
                    "Not allowed",
                    "Sign in with the form to use the web app; API tokens are for the API.",
                )
                .into_response());
            }
        };
        let agent = match &caller.identity {
            Identity::Agent(agent) => agent.clone(),
            Identity::Customer(_) => {
                return Err(WebError::new(
                    StatusCode::FORBIDDEN,
                    "Agents only",
                    "These pages are for the desk's agents.",
                )
                .into_response());
            }
        };
        Ok(AgentSession {
            caller,
            agent,
            csrf,
        })
    }
}

/// Fields of a submitted form, in order; names may repeat (checkboxes).
#[derive(Debug, Clone, Default)]
pub(crate) struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value, trimmed; `None` when absent or blank.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A browser's own claim that a request came from another site.
fn cross_site(headers: &HeaderMap, state: &AppState) -> bool {
    let fetch_site_foreign = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"));
    fetch_site_foreign || !origin_allowed(headers, state.config().public_url.as_deref())
}

/// A POSTed form from a signed-in agent, after the CSRF checks: same site,
/// and the session's token in the `csrf` field.
pub(crate) struct AgentForm {
    pub session: AgentSession,
    pub fields: Fields,
}

impl FromRequest<AppState> for AgentForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        if cross_site(&parts.headers, state) {
            return Err(WebError::csrf().into_response());
        }
        let session = match AgentSession::from_request_parts(&mut parts, state).await {
            Ok(session) => session,
            // A form posted after the session ended: sign in again, then start over.
            Err(rejection) if rejection.status().is_redirection() => {
                return Err(Redirect::to("/login").into_response());
            }
            Err(rejection) => return Err(rejection),
        };
        let request = Request::from_parts(parts, body);
        let axum::Form(pairs) = axum::Form::<Vec<(String, String)>>::from_request(request, state)
            .await
            .map_err(|e| {
                WebError::new(StatusCode::BAD_REQUEST, "Bad form", e.body_text()).into_response()
            })?;
        let fields = Fields(pairs);
        let sent = fields.get("csrf").unwrap_or_default();
        if !constant_time_eq(sent.as_bytes(), session.csrf.as_bytes()) {
            return Err(WebError::csrf().into_response());
        }
        Ok(AgentForm { session, fields })
    }
}

/// Percent-encodes a query-string component.
pub(crate) fn encode_component(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A path on this site to return to; anything else (another host, `//x`)
/// becomes the inbox, so the parameter cannot send anyone away.
pub(crate) fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => "/inbox".to_string(),
    }
}

/// 303 See Other: the browser follows with a GET (post/redirect/get).
pub(crate) fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// An `id` path segment; anything else is "not found".
pub(crate) fn path_id(raw: &str) -> WebResult<i64> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(WebError::not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_this_site() {
        assert_eq!(local_path(Some("/tickets/4?x=1")), "/tickets/4?x=1");
        assert_eq!(local_path(Some("//evil.test/x")), "/inbox");
        assert_eq!(local_path(Some("/\\evil.test")), "/inbox");
        assert_eq!(local_path(Some("https://evil.test/")), "/inbox");
        assert_eq!(local_path(None), "/inbox");
    }

    #[test]
    fn query_components_are_percent_encoded() {
        assert_eq!(
            encode_component("status:open \"a b\"&x=/é"),
            "status%3Aopen%20%22a%20b%22%26x%3D%2F%C3%A9"
        );
        assert_eq!(encode_component("plain-1.2_3~"), "plain-1.2_3~");
    }

    #[test]
    fn form_fields_repeat_and_trim() {
        let fields = Fields(vec![
            ("ids".into(), "1".into()),
            ("ids".into(), "2".into()),
            ("q".into(), "  ".into()),
        ]);
        assert_eq!(fields.all("ids"), vec!["1", "2"]);
        assert_eq!(fields.get("ids"), Some("1"));
        assert_eq!(fields.text("q"), None);
        assert_eq!(fields.get("missing"), None);
    }

    #[test]
    fn ids_in_paths() {
        assert_eq!(path_id("12").ok(), Some(12));
        assert!(path_id("0").is_err());
        assert!(path_id("-3").is_err());
        assert!(path_id("abc").is_err());
    }
}
