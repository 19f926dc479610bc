//! Admin pages: tags, rules and agents as forms over the JSON API's own
//! handlers (so validation lives in one place), and an index linking them.

pub(crate) mod agents;
pub(crate) mod calendars;
pub(crate) mod mailboxes;
pub(crate) mod rules;
pub(crate) mod specs;
pub(crate) mod tags;
pub(crate) mod teams;

use super::render::{Shell, page};
use super::{AgentSession, WebError, WebResult};
use crate::error::{ApiError, ApiResult};
use crate::extract::parse_json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tierdesk_core::Role;

/// Admin pages are for admins, as the API calls behind them are.
pub(super) fn require_admin(session: &AgentSession) -> WebResult<()> {
    if session.agent.role == Role::Admin {
        Ok(())
    } else {
        Err(WebError::new(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Only admins manage the desk's configuration.",
        ))
    }
}

/// A form turned into the API's request type, parsed like a request body so
/// a bad field is named just as the API names it.
pub(super) fn api_request<T: DeserializeOwned>(body: &Value) -> ApiResult<T> {
    let bytes = serde_json::to_vec(body).map_err(|_| ApiError::internal())?;
    parse_json(&bytes)
}

/// A form field as a JSON value: blank or `none` is null, a number is a
/// number, anything else a string (which the request type then refuses).
pub(super) fn number_or_null(raw: Option<&str>) -> Value {
    match raw.map(str::trim) {
        None | Some("") | Some("none") => Value::Null,
        Some(text) => text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(text)),
    }
}

/// An error from the API as one line for the page: the detail, then each field's problem.
pub(super) fn error_text(error: &ApiError) -> String {
    let mut text = error.detail.clone();
    for problem in &error.errors {
        let line = format!("{}: {}", problem.field, problem.message);
        if !text.contains(&line) {
            text.push_str("; ");
            text.push_str(&line);
        }
    }
    text
}

pub(crate) async fn index(session: AgentSession) -> Response {
    if let Err(e) = require_admin(&session) {
        return e.into_response();
    }
    page(
        StatusCode::OK,
        "admin_index.html",
        json!({ "shell": Shell::of(&session) }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_numbers_become_json() {
        assert_eq!(number_or_null(None), Value::Null);
        assert_eq!(number_or_null(Some(" none ")), Value::Null);
        assert_eq!(number_or_null(Some("2")), json!(2));
        assert_eq!(number_or_null(Some("two")), json!("two"));
    }

    #[test]
    fn request_errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Wants {
            tier: tierdesk_core::Tier,
        }
        let error = api_request::<Wants>(&json!({"tier": 9})).err();
        let text = error.as_ref().map(error_text).unwrap_or_default();
        assert!(text.contains("tier"), "{text}");
        assert!(api_request::<Wants>(&json!({"tier": 2})).is_ok());
    }
}
