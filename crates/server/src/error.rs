//! One error type for the whole API, rendered as RFC 9457 problem details
//! with a stable snake_case `code` that clients can switch on.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use tierdesk_core::DecideError;
use tierdesk_store::StoreError;
use utoipa::ToSchema;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
const PROBLEM_TYPE_BASE: &str = "https://tierdesk.dev/problems/";

/// One invalid input, named by its JSON path, query parameter or header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

/// The RFC 9457 document every error response carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    /// Only on `version_conflict`: the ticket's version now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldProblem>,
    pub current_version: Option<i64>,
    /// Seconds, for `429` (`Retry-After`).
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            current_version: None,
            retry_after: None,
        }
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in or send an API token as `Authorization: Bearer <token>`",
        )
    }

    /// The one answer to every failed login, so it never tells which part was wrong.
    pub fn bad_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "the email address or password is not correct",
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn csrf_failed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "csrf_failed", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    pub fn malformed_json(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", detail)
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("{field}: {message}"),
        );
        error.errors.push(FieldProblem { field, message });
        error
    }

    /// A calendar, SLA policy, escalation template or runbook that does not
    /// validate: 422 listing each problem at its JSON path.
    pub fn invalid_config(errors: &[tierdesk_core::validate::ConfigError]) -> Self {
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!(
                "not valid: {}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        );
        error.errors = errors
            .iter()
            .map(|e| FieldProblem {
                field: e.path.clone(),
                message: e.message.clone(),
            })
            .collect();
        error
    }

    /// A rule that does not validate: 422 listing each problem at its JSON path.
    pub fn invalid_rule(errors: &[tierdesk_core::rules::RuleError]) -> Self {
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!(
                "the rule is not valid: {}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        );
        error.errors = errors
            .iter()
            .map(|e| FieldProblem {
                field: e.path.clone(),
                message: e.message.clone(),
            })
            .collect();
        error
    }

    /// An escalation whose template is not complete: every missing or wrong
    /// field, each under `answers.<key>`.
    pub fn escalation_incomplete(problems: &[tierdesk_core::escalation::FieldProblem]) -> Self {
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "escalation_incomplete",
            format!(
                "the escalation template is not complete: {}",
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        );
        error.errors = problems
            .iter()
            .map(|p| FieldProblem {
                field: format!("answers.{}", p.field),
                message: format!("{} ({})", p.message, p.label),
            })
            .collect();
        error
    }

    pub fn precondition_required() -> Self {
        Self::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition_required",
            "send the version you are changing, as `If-Match: \"<version>\"` or a `version` field",
        )
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many attempts; try again in {retry_after_secs} s"),
        );
        error.retry_after = Some(retry_after_secs);
        error
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on our side; it has been logged",
        )
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("{PROBLEM_TYPE_BASE}{}", self.code),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_string(),
            errors: self.errors.clone(),
            current_version: self.current_version,
        }
    }

    /// The code for a bare status, for errors raised outside our handlers.
    pub fn code_for_status(status: StatusCode) -> &'static str {
        match status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::UNAUTHORIZED => "unauthenticated",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::CONFLICT => "conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "validation_failed",
            StatusCode::PRECONDITION_REQUIRED => "precondition_required",
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            s if s.is_server_error() => "internal",
            _ => "bad_request",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tierdesk\""),
            );
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            StoreError::Conflict { current, .. } => {
                let mut api =
                    ApiError::new(StatusCode::CONFLICT, "version_conflict", error.to_string());
                api.current_version = Some(current);
                api
            }
            StoreError::Duplicate { .. } => {
                ApiError::new(StatusCode::CONFLICT, "duplicate", error.to_string())
            }
            StoreError::InUse(detail) => ApiError::new(StatusCode::CONFLICT, "in_use", detail),
            StoreError::Invalid { field, message } => ApiError::invalid(field, message),
            StoreError::Rejected(decision) => decision.into(),
            StoreError::InvalidRule(errors) => ApiError::invalid_rule(&errors),
            StoreError::InvalidConfig(errors) => ApiError::invalid_config(&errors),
            StoreError::EscalationIncomplete(problems) => {
                ApiError::escalation_incomplete(&problems)
            }
            StoreError::Closed => {
                tracing::error!("store unavailable: shutting down");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "internal",
                    "the service is shutting down; try again shortly",
                )
            }
            StoreError::Backend(detail) => {
                tracing::error!(error = %detail, "storage failure");
                ApiError::internal()
            }
        }
    }
}

impl From<DecideError> for ApiError {
    fn from(error: DecideError) -> Self {
        let detail = error.to_string();
        let code = match &error {
            DecideError::TicketClosed => "ticket_closed",
            DecideError::InvalidTransition { .. } => "invalid_transition",
            DecideError::AssigneeInactive(_) => "assignee_inactive",
            DecideError::AssigneeTierTooLow { .. } => "assignee_tier_too_low",
            DecideError::NotUp { .. } => "escalation_not_up",
            DecideError::NotDown { .. } => "de_escalation_not_down",
            DecideError::TicketSolved => "ticket_solved",
            DecideError::Field { field, error } => {
                return ApiError::invalid(*field, error.to_string());
            }
            DecideError::NotPermitted => return ApiError::forbidden(detail),
        };
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }
}

/// Turns any error response that is not already a problem document (axum's
/// own 405, rejections raised by layers) into one, keeping its headers.
pub async fn problem_for_bare_errors(
    response: axum::response::Response,
) -> axum::response::Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_CONTENT_TYPE.as_bytes()));
    // The web app's error pages are for people and already say what happened.
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if status.as_u16() < 400 || is_problem || is_html {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Client errors keep the framework's short explanation; server errors never leak it.
    let detail = if status.is_client_error() {
        axum::body::to_bytes(body, 2048)
            .await
            .ok()
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .filter(|s| !s.is_empty())
    } else {
        tracing::error!(%status, "unhandled error response");
        None
    };
    let mut error = ApiError::new(
        status,
        ApiError::code_for_status(status),
        detail.unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_lowercase()),
    );
    if status.is_server_error() {
        error.detail = ApiError::internal().detail;
    }
    let mut fresh = error.into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in fresh.headers().iter() {
        parts.headers.insert(name.clone(), value.clone());
    }
    *fresh.headers_mut() = parts.headers;
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_render_with_type_code_and_fields() {
        let problem = ApiError::invalid("tags[0]", "bad tag").problem();
        let json = serde_json::to_value(&problem).unwrap_or_default();
        assert_eq!(
            json["type"],
            "https://tierdesk.dev/problems/validation_failed"
        );
        assert_eq!(json["status"], 422);
        assert_eq!(json["code"], "validation_failed");
        assert_eq!(json["title"], "Unprocessable Entity");
        assert_eq!(json["errors"][0]["field"], "tags[0]");
        assert!(json.get("current_version").is_none());
    }

    #[test]
    fn store_errors_map_to_stable_codes() {
        let conflict: ApiError = StoreError::Conflict {
            expected: 2,
            current: 5,
        }
        .into();
        assert_eq!(conflict.status, StatusCode::CONFLICT);
        assert_eq!(conflict.code, "version_conflict");
        assert_eq!(conflict.problem().current_version, Some(5));

        let backend: ApiError = StoreError::Backend("disk on fire at /var/x".into()).into();
        assert_eq!(backend.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!backend.detail.contains("disk"));

        let closed: ApiError = StoreError::Rejected(DecideError::TicketClosed).into();
        assert_eq!(
            (closed.status.as_u16(), closed.code),
            (422, "ticket_closed")
        );

        let denied: ApiError = StoreError::Rejected(DecideError::NotPermitted).into();
        assert_eq!((denied.status.as_u16(), denied.code), (403, "forbidden"));
    }

    #[test]
    fn unauthenticated_asks_for_bearer() {
        let response = ApiError::unauthenticated().into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(
            response
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .is_some_and(|v| v.as_bytes().starts_with(b"Bearer"))
        );
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(PROBLEM_CONTENT_TYPE.as_bytes())
        );
    }
}
