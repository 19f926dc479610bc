//! Templates: compiled into the binary, rendered with minijinja with HTML
//! autoescaping on (every template name ends in `.html`).

use super::{AgentSession, WebError, WebResult};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use serde::Serialize;
use std::sync::LazyLock;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("error.html", include_str!("templates/error.html")),
    ("login.html", include_str!("templates/login.html")),
    ("inbox.html", include_str!("templates/inbox.html")),
    ("row.html", include_str!("templates/row.html")),
    ("ticket.html", include_str!("templates/ticket.html")),
    ("timeline.html", include_str!("templates/timeline.html")),
    ("escalate.html", include_str!("templates/escalate.html")),
    ("chat_admin.html", include_str!("templates/chat_admin.html")),
    ("help_base.html", include_str!("templates/help_base.html")),
    ("help_home.html", include_str!("templates/help_home.html")),
    ("help_list.html", include_str!("templates/help_list.html")),
    (
        "help_article.html",
        include_str!("templates/help_article.html"),
    ),
    (
        "help_answer.html",
        include_str!("templates/help_answer.html"),
    ),
    (
        "admin_index.html",
        include_str!("templates/admin_index.html"),
    ),
    ("admin_tags.html", include_str!("templates/admin_tags.html")),
    (
        "admin_rules.html",
        include_str!("templates/admin_rules.html"),
    ),
    (
        "admin_agents.html",
        include_str!("templates/admin_agents.html"),
    ),
    (
        "admin_specs.html",
        include_str!("templates/admin_specs.html"),
    ),
    (
        "admin_calendars.html",
        include_str!("templates/admin_calendars.html"),
    ),
    (
        "admin_mailboxes.html",
        include_str!("templates/admin_mailboxes.html"),
    ),
    (
        "admin_teams.html",
        include_str!("templates/admin_teams.html"),
    ),
    (
        "portal_login.html",
        include_str!("templates/portal_login.html"),
    ),
    ("portal.html", include_str!("templates/portal.html")),
    ("kb_list.html", include_str!("templates/kb_list.html")),
    ("kb_edit.html", include_str!("templates/kb_edit.html")),
    ("kb_history.html", include_str!("templates/kb_history.html")),
    (
        "portal_link.html",
        include_str!("templates/portal_link.html"),
    ),
    (
        "portal_ticket.html",
        include_str!("templates/portal_ticket.html"),
    ),
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // Our own URLs: nothing in them needs escaping.
    env.add_function("asset", |name: &str| {
        minijinja::Value::from_safe_string(super::assets::url(name))
    });
    for (name, source) in TEMPLATES {
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "a built-in template does not compile");
        }
    }
    env
});

/// Renders one template; a failure is logged and becomes a 500 page.
pub(crate) fn render(name: &str, context: impl Serialize) -> WebResult<String> {
    let template = ENV.get_template(name).map_err(|e| {
        tracing::error!(template = name, error = %e, "missing template");
        internal()
    })?;
    template.render(context).map_err(|e| {
        tracing::error!(template = name, error = %e, "template failed to render");
        internal()
    })
}

fn internal() -> WebError {
    WebError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The page could not be shown. The error has been logged.",
    )
}

/// The context every signed-in page shares: who, and the CSRF token.
#[derive(Debug, Serialize)]
pub(crate) struct Shell<'a> {
    pub agent_name: &'a str,
    pub agent_email: &'a str,
    pub csrf: &'a str,
    /// Admins get a link to the admin pages.
    pub is_admin: bool,
}

impl<'a> Shell<'a> {
    pub fn of(session: &'a AgentSession) -> Self {
        Shell {
            agent_name: &session.agent.name,
            agent_email: &session.agent.email,
            csrf: &session.csrf,
            is_admin: session.agent.role == tierdesk_core::Role::Admin,
        }
    }
}

/// A whole page with a status.
pub(crate) fn page(status: StatusCode, name: &str, context: impl Serialize) -> Response {
    match render(name, context) {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        for (name, _) in TEMPLATES {
            assert!(ENV.get_template(name).is_ok(), "{name} does not compile");
        }
    }

    #[test]
    fn html_is_escaped() {
        let html = render(
            "error.html",
            serde_json::json!({"title": "<script>alert(1)</script>", "message": "a & b", "status": 400}),
        )
        .unwrap_or_default();
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>alert"));
    }
}
