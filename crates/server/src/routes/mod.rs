//! The route table and the response helpers handlers share.

pub(crate) mod assignment;
pub(crate) mod bulk;
pub(crate) mod chat;
pub(crate) mod config;
pub(crate) mod escalation;
pub(crate) mod events;
pub(crate) mod jobs;
pub(crate) mod kb;
pub(crate) mod macros;
pub(crate) mod mail;
pub(crate) mod meta;
pub(crate) mod notifications;
pub(crate) mod people;
pub(crate) mod presence;
pub(crate) mod rules;
pub(crate) mod saved_views;
pub(crate) mod search;
pub(crate) mod session;
pub(crate) mod sla;
pub(crate) mod tag_admin;
pub(crate) mod tickets;

use crate::AppState;
use crate::extract::etag;
use axum::Json;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Serialize;

pub fn router() -> Router<AppState> {
    let api = Router::new()
        .route("/auth/login", post(session::login))
        .route("/auth/logout", post(session::logout))
        .route("/auth/session", get(session::current))
        .route("/portal/login", post(session::portal_login))
        .route("/portal/accept-invite", post(session::accept_invite))
        .route(
            "/tokens",
            get(session::list_tokens).post(session::create_token),
        )
        .route("/tokens/{id}", delete(session::revoke_token))
        .route("/events", get(events::stream))
        .route("/tickets", get(tickets::list).post(tickets::create))
        .route("/tickets/bulk", post(bulk::bulk))
        .route("/search", get(search::search))
        .route("/tickets/{id}", get(tickets::get).patch(tickets::update))
        .route("/tickets/{id}/replies", post(tickets::reply))
        .route("/tickets/{id}/notes", post(tickets::note))
        .route(
            "/contacts",
            get(people::list_contacts).post(people::create_contact),
        )
        .route(
            "/contacts/{id}",
            get(people::get_contact)
                .patch(people::update_contact)
                .delete(people::delete_contact),
        )
        .route("/contacts/{id}/invite", post(session::invite))
        .route(
            "/contacts/{id}/portal-access",
            delete(session::revoke_portal_access),
        )
        .route(
            "/organisations",
            get(people::list_organisations).post(people::create_organisation),
        )
        .route(
            "/organisations/{id}",
            get(people::get_organisation)
                .patch(people::update_organisation)
                .delete(people::delete_organisation),
        )
        .route(
            "/agents",
            get(people::list_agents).post(people::create_agent),
        )
        .route("/agents/me", get(people::get_me).patch(people::update_me))
        .route(
            "/agents/{id}",
            get(people::get_agent).patch(people::update_agent),
        )
        .route("/teams", get(config::list_teams).post(config::create_team))
        .route(
            "/teams/{id}",
            get(config::get_team)
                .patch(config::update_team)
                .delete(config::delete_team),
        )
        .route(
            "/teams/{id}/assignment",
            get(assignment::get).put(assignment::set),
        )
        .route("/teams/{id}/backlog", get(assignment::backlog))
        .route("/tags", get(config::list_tags).post(config::create_tag))
        .route("/tags/review", get(tag_admin::review))
        .route("/tags/{id}/rename", post(tag_admin::rename))
        .route("/tags/{id}/merge", post(tag_admin::merge))
        .route(
            "/tags/{id}",
            get(config::get_tag)
                .patch(config::update_tag)
                .delete(config::delete_tag),
        )
        .route("/macros", get(macros::list).post(macros::create))
        .route(
            "/macros/{id}",
            get(macros::get)
                .patch(macros::update)
                .delete(macros::delete),
        )
        .route("/macros/{id}/preview", post(macros::preview))
        .route("/macros/{id}/apply", post(macros::apply))
        .route("/views", get(saved_views::list).post(saved_views::create))
        .route(
            "/views/{id}",
            get(saved_views::get)
                .patch(saved_views::update)
                .delete(saved_views::delete),
        )
        .route("/views/{id}/tickets", get(saved_views::tickets))
        .route(
            "/kb/categories",
            get(kb::list_categories).post(kb::create_category),
        )
        .route("/kb/categories/{id}", delete(kb::delete_category))
        .route(
            "/kb/articles",
            get(kb::list_articles).post(kb::create_article),
        )
        .route(
            "/kb/articles/{id}",
            get(kb::get_article)
                .patch(kb::update_article)
                .delete(kb::delete_article),
        )
        .route("/kb/articles/{id}/versions", get(kb::article_versions))
        .route("/kb/articles/{id}/feedback", post(kb::feedback))
        .route("/kb/search", get(kb::search))
        .route("/kb/stats", get(kb::stats))
        .route("/answers", post(kb::ask))
        .route("/answers/{id}/solved", post(kb::solved))
        .route("/answers/{id}/handover", post(kb::handover))
        .route("/tickets/{id}/suggestions", get(kb::suggestions))
        .route("/tickets/{id}/articles", post(kb::link))
        .route("/tickets/{id}/articles/{article}", delete(kb::unlink))
        .route("/tickets/{id}/article-draft", post(kb::article_from_ticket))
        .route("/rules", get(rules::list).post(rules::create))
        .route("/rules/reorder", post(rules::reorder))
        .route("/rules/test", post(rules::test))
        .route(
            "/rules/{id}",
            get(rules::get)
                .put(rules::replace)
                .patch(rules::update)
                .delete(rules::delete),
        )
        .route(
            "/sla/calendars",
            get(sla::list_calendars).post(sla::create_calendar),
        )
        .route(
            "/sla/calendars/{id}",
            get(sla::get_calendar)
                .put(sla::replace_calendar)
                .delete(sla::delete_calendar),
        )
        .route(
            "/sla/policies",
            get(sla::list_policies).post(sla::create_policy),
        )
        .route("/sla/policies/reorder", post(sla::reorder_policies))
        .route(
            "/sla/policies/{id}",
            get(sla::get_policy)
                .put(sla::replace_policy)
                .delete(sla::delete_policy),
        )
        .route("/jobs", get(jobs::summary))
        .route("/openapi.json", get(meta::openapi_json))
        .merge(escalation::routes())
        .merge(notifications::routes())
        .merge(mail::routes())
        .merge(chat::api_routes())
        .merge(presence::routes());
    Router::new()
        .route("/", get(meta::index))
        .route("/healthz", get(meta::healthz))
        .nest("/api/v1", api)
        .merge(chat::public_routes())
        .merge(crate::web::router())
        .fallback(meta::not_found)
}

/// 201 with `Location`, and `ETag` for versioned resources.
pub(crate) fn created(location: &str, version: Option<i64>, body: impl Serialize) -> Response {
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if let Some(version) = version {
        set_etag(&mut response, version);
    }
    response
}

pub(crate) fn with_etag(version: i64, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    set_etag(&mut response, version);
    response
}

fn set_etag(response: &mut Response, version: i64) {
    if let Ok(value) = HeaderValue::from_str(&etag(version)) {
        response.headers_mut().insert(header::ETAG, value);
    }
}
