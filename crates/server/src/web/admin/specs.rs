//! Admins: SLA policies, escalation templates and runbooks,
//! each a list plus a JSON editor in the API's own shape (as the rules page
//! does): the API's handlers parse and validate, and a refusal shows the
//! text again with every problem and its path. Policies also move up/down.

use super::{api_request, error_text, require_admin};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathId, QueryParams, parse_json};
use crate::routes::{escalation, sla};
use crate::web::render::{Shell, page};
use crate::web::{AgentForm, AgentSession, WebError, path_id, see_other};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use tierdesk_core::ids::{RunbookId, SlaPolicyId, TemplateId};

/// The configuration edited as JSON on these pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Policies,
    Templates,
    Runbooks,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Policies, Kind::Templates, Kind::Runbooks];

    fn url(self) -> &'static str {
        match self {
            Kind::Policies => "/admin/sla-policies",
            Kind::Templates => "/admin/escalation-templates",
            Kind::Runbooks => "/admin/runbooks",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::Policies => "SLA policies",
            Kind::Templates => "Escalation templates",
            Kind::Runbooks => "Runbooks",
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Kind::Policies => "policy",
            Kind::Templates => "template",
            Kind::Runbooks => "runbook",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Kind::Policies => {
                "The first enabled policy, in this order, that covers a ticket (priorities, tiers, plans, channels) sets its targets. Durations like 30m, 4h, 1h30m; `tiers` overrides targets per tier; `calendar_id` counts business hours."
            }
            Kind::Templates => {
                "One template per target tier: the fields an agent must fill to escalate there. A field's type is text, choice (with options), checklist (with items) or attachment; prefill takes steps_tried or last_customer_message."
            }
            Kind::Runbooks => {
                "A ticket carrying any of the tags shows the runbook. Each step has an id and a title; a check branches on yes/no to a step id, resolved or escalate; `next` leads an instruction elsewhere."
            }
        }
    }

    /// A valid starting point for a new one.
    fn starter(self) -> &'static str {
        match self {
            Kind::Policies => {
                r#"{
  "name": "Standard",
  "enabled": true,
  "applies_to": {"priorities": [], "tiers": [], "plans": [], "channels": []},
  "calendar_id": null,
  "targets": {"first_response": "4h", "resolution": "24h"},
  "tiers": {},
  "pause_when": ["pending"],
  "warning_percent": 75
}"#
            }
            Kind::Templates => {
                r#"{
  "name": "Tier 2 hand-over",
  "tier": 2,
  "description": "",
  "fields": [
    {"key": "steps_tried", "label": "Steps tried", "type": "text", "required": true, "prefill": "steps_tried"}
  ]
}"#
            }
            Kind::Runbooks => {
                r#"{
  "name": "Cannot log in",
  "tags": ["login"],
  "steps": [
    {"id": "reset", "title": "Send a password reset link"},
    {"id": "works", "title": "Can the customer log in now?", "check": {"yes": "resolved", "no": "escalate"}}
  ]
}"#
            }
        }
    }
}

/// The pages' routes, one set per kind.
pub(crate) fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for kind in Kind::ALL {
        router = router
            .route(
                kind.url(),
                get(
                    move |state: State<AppState>, session: AgentSession, params: QueryParams| {
                        page_handler(kind, state, session, params)
                    },
                )
                .post(move |state: State<AppState>, form: AgentForm| create(kind, state, form)),
            )
            .route(
                &format!("{}/{{id}}", kind.url()),
                post(
                    move |state: State<AppState>, raw: Path<String>, form: AgentForm| {
                        save(kind, state, raw, form)
                    },
                ),
            )
            .route(
                &format!("{}/{{id}}/delete", kind.url()),
                post(
                    move |state: State<AppState>, raw: Path<String>, form: AgentForm| {
                        delete(kind, state, raw, form)
                    },
                ),
            );
    }
    router.route("/admin/sla-policies/{id}/move", post(move_policy))
}

#[derive(Serialize)]
struct Row {
    id: i64,
    name: String,
    summary: String,
}

#[derive(Serialize, Default)]
struct Editor {
    id: Option<i64>,
    text: String,
    errors: Vec<String>,
}

fn pretty(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

async fn rows(state: &AppState, kind: Kind) -> ApiResult<Vec<Row>> {
    let store = state.store();
    Ok(match kind {
        Kind::Policies => {
            let calendars: HashMap<i64, String> = store
                .list_calendars()
                .await?
                .into_iter()
                .map(|c| (c.id.0, c.spec.name))
                .collect();
            store
                .list_sla_policies()
                .await?
                .into_iter()
                .map(|p| {
                    let calendar = p.spec.calendar_id.map_or_else(
                        || "24/7".to_string(),
                        |id| calendars.get(&id.0).cloned().unwrap_or_default(),
                    );
                    let targets = serde_json::to_value(p.spec.targets)
                        .ok()
                        .and_then(|v| v.as_object().cloned())
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|(_, v)| !v.is_null())
                        .map(|(k, v)| {
                            format!("{} {}", k.replace('_', " "), v.as_str().unwrap_or_default())
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    Row {
                        id: p.id.0,
                        summary: format!(
                            "#{} · {} · {calendar} · {targets}",
                            p.position,
                            if p.spec.enabled {
                                "enabled"
                            } else {
                                "disabled"
                            }
                        ),
                        name: p.spec.name,
                    }
                })
                .collect()
        }
        Kind::Templates => store
            .list_escalation_templates()
            .await?
            .into_iter()
            .map(|t| Row {
                id: t.id.0,
                summary: format!("to tier {} · {} fields", t.spec.tier, t.spec.fields.len()),
                name: t.spec.name,
            })
            .collect(),
        Kind::Runbooks => store
            .list_runbooks()
            .await?
            .into_iter()
            .map(|r| Row {
                id: r.id.0,
                summary: format!(
                    "tags {} · {} steps",
                    r.spec
                        .tags
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    r.spec.steps.len()
                ),
                name: r.spec.name,
            })
            .collect(),
    })
}

/// A saved one's definition as the editor shows it.
async fn saved_text(state: &AppState, kind: Kind, id: i64) -> ApiResult<Option<String>> {
    let store = state.store();
    Ok(match kind {
        Kind::Policies => store
            .sla_policy(SlaPolicyId(id))
            .await?
            .map(|p| pretty(&p.spec)),
        Kind::Templates => store
            .escalation_template(TemplateId(id))
            .await?
            .map(|t| pretty(&t.spec)),
        Kind::Runbooks => store.runbook(RunbookId(id)).await?.map(|r| pretty(&r.spec)),
    })
}

async fn page_handler(
    kind: Kind,
    State(state): State<AppState>,
    session: AgentSession,
    QueryParams(params): QueryParams,
) -> Response {
    if let Err(e) = require_admin(&session) {
        return e.into_response();
    }
    let edit = params
        .iter()
        .find(|(k, _)| k == "edit")
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty());
    let editor = match edit.map(|raw| path_id(&raw)) {
        None => Editor {
            text: kind.starter().to_string(),
            ..Editor::default()
        },
        Some(Err(e)) => return e.into_response(),
        Some(Ok(id)) => match saved_text(&state, kind, id).await {
            Ok(Some(text)) => Editor {
                id: Some(id),
                text,
                errors: Vec::new(),
            },
            Ok(None) => return WebError::not_found().into_response(),
            Err(e) => return WebError::from(e).into_response(),
        },
    };
    show(&state, &session, kind, StatusCode::OK, editor, None).await
}

async fn show(
    state: &AppState,
    session: &AgentSession,
    kind: Kind,
    status: StatusCode,
    editor: Editor,
    error: Option<String>,
) -> Response {
    match rows(state, kind).await {
        Ok(rows) => page(
            status,
            "admin_specs.html",
            json!({
                "shell": Shell::of(session),
                "url": kind.url(),
                "title": kind.title(),
                "singular": kind.singular(),
                "help": kind.help(),
                "movable": kind == Kind::Policies,
                "rows": rows,
                "editor": editor,
                "error": error,
            }),
        ),
        Err(e) => WebError::from(e).into_response(),
    }
}

/// Parses the text as the kind's request body and saves it through the API handler.
async fn store_text(
    state: &AppState,
    session: &AgentSession,
    kind: Kind,
    id: Option<i64>,
    text: &str,
) -> ApiResult<()> {
    let state = State(state.clone());
    let caller = session.caller.clone();
    let bytes = text.as_bytes();
    match (kind, id) {
        (Kind::Policies, None) => {
            sla::create_policy(state, caller, ApiJson(parse_json(bytes)?)).await?;
        }
        (Kind::Policies, Some(id)) => {
            let _ =
                sla::replace_policy(state, caller, PathId(id), ApiJson(parse_json(bytes)?)).await?;
        }
        (Kind::Templates, None) => {
            escalation::create_template(state, caller, ApiJson(parse_json(bytes)?)).await?;
        }
        (Kind::Templates, Some(id)) => {
            let _ = escalation::replace_template(
                state,
                caller,
                PathId(id),
                ApiJson(parse_json(bytes)?),
            )
            .await?;
        }
        (Kind::Runbooks, None) => {
            escalation::create_runbook(state, caller, ApiJson(parse_json(bytes)?)).await?;
        }
        (Kind::Runbooks, Some(id)) => {
            let _ =
                escalation::replace_runbook(state, caller, PathId(id), ApiJson(parse_json(bytes)?))
                    .await?;
        }
    }
    Ok(())
}

async fn store_form(kind: Kind, state: AppState, id: Option<i64>, form: AgentForm) -> Response {
    let AgentForm { session, fields } = form;
    if let Err(e) = require_admin(&session) {
        return e.into_response();
    }
    let text = fields.get("spec").unwrap_or_default().to_string();
    match store_text(&state, &session, kind, id, &text).await {
        Ok(()) => see_other(kind.url()),
        Err(e) => {
            let mut errors: Vec<String> = e
                .errors
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect();
            if errors.is_empty() {
                errors.push(e.detail.clone());
            }
            let editor = Editor { id, text, errors };
            show(&state, &session, kind, e.status, editor, None).await
        }
    }
}

async fn create(kind: Kind, State(state): State<AppState>, form: AgentForm) -> Response {
    store_form(kind, state, None, form).await
}

async fn save(
    kind: Kind,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: AgentForm,
) -> Response {
    match path_id(&raw) {
        Ok(id) => store_form(kind, state, Some(id), form).await,
        Err(e) => e.into_response(),
    }
}

async fn delete(
    kind: Kind,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: AgentForm,
) -> Response {
    let session = form.session;
    if let Err(e) = require_admin(&session) {
        return e.into_response();
    }
    let id = match path_id(&raw) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let state_arg = State(state.clone());
    let caller = session.caller.clone();
    let result = match kind {
        Kind::Policies => sla::delete_policy(state_arg, caller, PathId(id)).await,
        Kind::Templates => escalation::delete_template(state_arg, caller, PathId(id)).await,
        Kind::Runbooks => escalation::delete_runbook(state_arg, caller, PathId(id)).await,
    };
    match result {
        Ok(_) => see_other(kind.url()),
        Err(e) => {
            let editor = Editor {
                text: kind.starter().to_string(),
                ..Editor::default()
            };
            show(
                &state,
                &session,
                kind,
                e.status,
                editor,
                Some(error_text(&e)),
            )
            .await
        }
    }
}

/// Moves a policy one place up or down, through the reorder handler.
async fn move_policy(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: AgentForm,
) -> Response {
    let AgentForm { session, fields } = form;
    if let Err(e) = require_admin(&session) {
        return e.into_response();
    }
    let id = match path_id(&raw) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let result: ApiResult<()> = async {
        let mut order: Vec<i64> = state
            .store()
            .list_sla_policies()
            .await?
            .iter()
            .map(|p| p.id.0)
            .collect();
        let at = order
            .iter()
            .position(|p| *p == id)
            .ok_or_else(|| ApiError::not_found(format!("SLA policy {id} not found")))?;
        let to = match fields.get("direction") {
            Some("up") => at.checked_sub(1),
            Some("down") => Some(at + 1).filter(|to| *to < order.len()),
            _ => return Err(ApiError::invalid("direction", "up or down")),
        };
        if let Some(to) = to {
            order.swap(at, to);
            let request = api_request(&json!({ "order": order }))?;
            let _ = sla::reorder_policies(
                State(state.clone()),
                session.caller.clone(),
                ApiJson(request),
            )
            .await?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => see_other(Kind::Policies.url()),
        Err(e) => {
            let editor = Editor {
                text: Kind::Policies.starter().to_string(),
                ..Editor::default()
            };
            show(
                &state,
                &session,
                Kind::Policies,
                e.status,
                editor,
                Some(error_text(&e)),
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starters_are_valid_for_the_api() {
        use tierdesk_core::escalation::TemplateSpec;
        use tierdesk_core::runbook::RunbookSpec;
        use tierdesk_core::sla::SlaPolicySpec;
        let policy = serde_json::from_str::<SlaPolicySpec>(Kind::Policies.starter());
        assert!(policy.is_ok_and(|p| p.validate().is_ok()));
        let template = serde_json::from_str::<TemplateSpec>(Kind::Templates.starter());
        assert!(template.is_ok_and(|t| t.validate().is_ok()));
        let runbook = serde_json::from_str::<RunbookSpec>(Kind::Runbooks.starter());
        assert!(runbook.is_ok_and(|r| r.validate().is_ok()));
    }
}
