//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use crate::error::{FieldProblem, Problem};
use crate::routes::{
    assignment, bulk, config, events, jobs, macros, mail, meta, people, rules, saved_views, search,
    session, sla, tag_admin, tickets,
};
use crate::views;
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tierdesk API",
        description = "Self-hosted help desk for tiered technical support. Errors are RFC 9457 problem documents with a stable `code`."
    ),
    paths(
        meta::healthz,
        session::login, session::logout, session::current, session::portal_login,
        session::accept_invite, session::invite, session::revoke_portal_access,
        session::create_token, session::list_tokens, session::revoke_token,
        tickets::create, tickets::get, tickets::list, tickets::reply, tickets::note, tickets::update,
        sla::list_calendars, sla::create_calendar, sla::get_calendar, sla::replace_calendar,
        sla::delete_calendar, sla::list_policies, sla::create_policy, sla::get_policy,
        sla::replace_policy, sla::delete_policy, sla::reorder_policies,
        bulk::bulk,
        mail::list, mail::create, mail::get_one, mail::replace, mail::remove, mail::imap_state,
        mail::inbound, mail::ticket_mail, mail::contact_mail, mail::raw_message, mail::attachment,
        search::search,
        events::stream,
        people::list_contacts, people::create_contact, people::get_contact,
        people::update_contact, people::delete_contact,
        people::list_organisations, people::create_organisation, people::get_organisation,
        people::update_organisation, people::delete_organisation,
        people::list_agents, people::create_agent, people::get_agent, people::update_agent,
        people::get_me, people::update_me,
        config::list_teams, config::create_team, config::get_team, config::update_team,
        config::delete_team,
        assignment::get, assignment::set, assignment::backlog,
        config::list_tags, config::create_tag, config::get_tag, config::update_tag,
        config::delete_tag,
        tag_admin::review, tag_admin::rename, tag_admin::merge,
        macros::list, macros::create, macros::get, macros::update, macros::delete,
        macros::preview, macros::apply,
        saved_views::list, saved_views::create, saved_views::get, saved_views::update,
        saved_views::delete, saved_views::tickets,
        rules::list, rules::create, rules::get, rules::replace, rules::update, rules::delete,
        rules::reorder, rules::test,
        jobs::summary,
    ),
    components(schemas(
        Problem, FieldProblem, views::PortalTicketView, views::TicketView, views::StreamEventView,
        tierdesk_core::EventKind, tierdesk_core::Actor, crate::sla::TicketSlaView,
        crate::sla::TargetSlaView,
    )),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "auth", description = "Agent sessions"),
        (name = "portal", description = "Customer portal access"),
        (name = "tokens", description = "API tokens"),
        (name = "tickets"),
        (name = "events", description = "The live event stream (Server-Sent Events)"),
        (name = "contacts"), (name = "organisations"),
        (name = "agents"), (name = "teams"), (name = "tags"),
        (name = "macros", description = "Canned replies and one-click changes"),
        (name = "views", description = "Saved views: the inbox sidebar, with live counts"),
        (name = "rules", description = "Automation rules, evaluated in order inside every ticket write"),
        (name = "meta"),
        (name = "jobs", description = "The background job queue (admins)"),
        (name = "sla", description = "SLA policies and business-hours calendars"),
        (name = "mail", description = "Mailboxes, the raw-message intake for MTAs, and each ticket's mail log"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token (`td_…`) created under /api/v1/tokens"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "Set by /auth/login or /portal/login; unsafe methods also need `X-CSRF-Token`",
            ))),
        );
        components.add_security_scheme(
            "mailbox_secret",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                crate::routes::mail::SECRET_HEADER,
                "A mailbox's inbound secret (shown once when the mailbox is created), for MTA pipes",
            ))),
        );
    }
}

pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::routes::escalation::EscalationDoc::openapi());
    doc.merge(crate::routes::notifications::NotificationsDoc::openapi());
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_lists_routes_and_security() {
        let json = serde_json::to_value(openapi()).unwrap_or_default();
        assert!(
            json["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1"))
        );
        for path in [
            "/api/v1/tickets",
            "/api/v1/tickets/{id}",
            "/api/v1/tickets/{id}/replies",
            "/api/v1/auth/login",
            "/api/v1/agents/me",
            "/api/v1/tags/{id}",
            "/api/v1/events",
            "/api/v1/rules",
            "/api/v1/rules/{id}",
            "/api/v1/rules/test",
            "/api/v1/jobs",
            "/api/v1/escalation-templates",
            "/api/v1/runbooks/{id}",
            "/api/v1/tickets/{id}/escalate",
            "/api/v1/tickets/{id}/runbooks/{runbook_id}/steps",
            "/api/v1/notifications",
            "/api/v1/teams/{id}/assignment",
            "/api/v1/teams/{id}/backlog",
            "/api/v1/mailboxes/{id}/imap",
        ] {
            assert!(json["paths"].get(path).is_some(), "{path} missing");
        }
        assert!(json["components"]["securitySchemes"]["bearer"].is_object());
        assert!(json["components"]["securitySchemes"]["session"].is_object());
        assert!(json["components"]["schemas"]["Problem"].is_object());
    }
}
