//! Admins: each live-chat widget key with the snippet to embed it.

use super::render::{Shell, page};
use super::{AgentSession, WebError};
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tierdesk_core::Role;

#[derive(Serialize)]
struct KeyView {
    id: i64,
    name: String,
    key: String,
    origins: String,
    revoked: bool,
    snippet: String,
}

/// Where the desk is reached: the configured public URL, else this request's host.
fn desk_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = state.config().public_url.as_deref() {
        return url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

pub(crate) async fn page_handler(
    State(state): State<AppState>,
    session: AgentSession,
    headers: HeaderMap,
) -> Response {
    if session.agent.role != Role::Admin {
        return WebError::new(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Only admins manage the chat widget.",
        )
        .into_response();
    }
    let keys = match state.store().list_widget_keys().await {
        Ok(keys) => keys,
        Err(e) => return WebError::from(crate::error::ApiError::from(e)).into_response(),
    };
    let base = desk_url(&state, &headers);
    let keys: Vec<KeyView> = keys
        .into_iter()
        .map(|k| KeyView {
            id: k.id,
            snippet: format!(
                "<script src=\"{base}/widget.js\" data-key=\"{}\" async></script>",
                k.key
            ),
            name: k.name,
            key: k.key,
            origins: k.allowed_origins.join(", "),
            revoked: k.revoked_at.is_some(),
        })
        .collect();
    page(
        StatusCode::OK,
        "chat_admin.html",
        serde_json::json!({ "shell": Shell::of(&session), "keys": keys }),
    )
}
