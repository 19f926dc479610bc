//! The ticket page's runbook panel and de-escalation control: the runbooks
//! attached to the ticket's tags with every step recordable (done/skipped,
//! or yes/no for a check), and handing the ticket down a tier with guidance.
//! Both go through the API's handlers; plain forms, so no script is needed.

use super::ticket::{FormState, again};
use super::{AgentForm, AgentSession, path_id, see_other};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathId};
use crate::routes::escalation::{
    DeEscalateRequest, RecordStepRequest, TicketRunbookView, de_escalate as de_escalate_handler,
    record_step, ticket_runbooks,
};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tierdesk_core::escalation::may_move_tiers;
use tierdesk_core::runbook::Position;
use tierdesk_core::{Status, Ticket, TicketId};

/// The runbooks of a ticket as the panel shows them.
pub(super) async fn panel(
    state: &AppState,
    session: &AgentSession,
    id: TicketId,
) -> ApiResult<Vec<Value>> {
    let axum::Json(views) =
        ticket_runbooks(State(state.clone()), session.caller.clone(), PathId(id.0)).await?;
    Ok(views.iter().map(runbook_json).collect())
}

fn runbook_json(view: &TicketRunbookView) -> Value {
    let next = match &view.position {
        Position::Step(step) => Some(step.as_str()),
        _ => None,
    };
    let steps: Vec<Value> = view
        .runbook
        .spec
        .steps
        .iter()
        .map(|step| {
            // The latest outcome recorded for the step, if any.
            let recorded = view
                .recorded
                .iter()
                .rev()
                .find(|r| r.step == step.id)
                .map(|r| r.outcome.to_string());
            let outcomes = if step.check.is_some() {
                ["yes", "no"]
            } else {
                ["done", "skipped"]
            };
            json!({
                "id": step.id,
                "title": step.title,
                "instructions": step.instructions,
                "outcomes": outcomes,
                "recorded": recorded,
                "next": next == Some(step.id.as_str()),
            })
        })
        .collect();
    let position = match &view.position {
        Position::Step(_) => "in progress",
        Position::Resolved => "resolved",
        Position::Escalate => "says escalate",
        Position::Finished => "finished without a fix",
    };
    json!({
        "id": view.runbook.id.0,
        "name": view.runbook.spec.name,
        "description": view.runbook.spec.description,
        "position": position,
        "suggests_escalation": view.suggests_escalation,
        "steps": steps,
    })
}

/// The tiers this agent may hand the ticket down to; empty when none.
pub(super) fn lower_tiers(session: &AgentSession, ticket: &Ticket) -> Vec<u8> {
    let open = !matches!(ticket.status, Status::Solved | Status::Closed);
    if !open || may_move_tiers(&session.agent, ticket.tier).is_err() {
        return Vec::new();
    }
    (1..ticket.tier.level()).collect()
}

fn version(fields: &super::Fields) -> Value {
    fields
        .text("version")
        .and_then(|v| v.parse::<i64>().ok())
        .map_or(Value::Null, Value::from)
}

/// Records one step's outcome; a refusal shows the page with the problem by the panel.
pub(crate) async fn record(
    State(state): State<AppState>,
    Path((raw_ticket, raw_runbook)): Path<(String, String)>,
    form: AgentForm,
) -> Response {
    let AgentForm { session, fields } = form;
    let id = match path_id(&raw_ticket) {
        Ok(id) => TicketId(id),
        Err(e) => return e.into_response(),
    };
    if let Err(e) = path_id(&raw_runbook) {
        return e.into_response();
    }
    let result = async {
        let request: RecordStepRequest = super::admin::api_request(&json!({
            "step": fields.get("step").unwrap_or_default(),
            "outcome": fields.get("outcome").unwrap_or_default(),
            "note": fields.text("note"),
            "version": version(&fields),
        }))?;
        record_step(
            State(state.clone()),
            session.caller.clone(),
            Ok(Path((raw_ticket.clone(), raw_runbook.clone()))),
            HeaderMap::new(),
            ApiJson(request),
        )
        .await
    }
    .await;
    match result {
        Ok(_) => see_other(&format!("/tickets/{id}#runbooks")),
        Err(e) => {
            again(&state, &session, id, e, |message| FormState {
                runbook_error: Some(message),
                ..FormState::default()
            })
            .await
        }
    }
}

/// Hands the ticket down to a lower tier with guidance (an internal note).
pub(crate) async fn de_escalate(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: AgentForm,
) -> Response {
    let AgentForm { session, fields } = form;
    let id = match path_id(&raw) {
        Ok(id) => TicketId(id),
        Err(e) => return e.into_response(),
    };
    let guidance = fields.get("guidance").unwrap_or_default().to_string();
    let result: Result<Response, ApiError> = async {
        let request: DeEscalateRequest = super::admin::api_request(&json!({
            "tier": super::admin::number_or_null(fields.get("tier")),
            "guidance": guidance,
            "version": version(&fields),
        }))?;
        de_escalate_handler(
            State(state.clone()),
            session.caller.clone(),
            PathId(id.0),
            HeaderMap::new(),
            ApiJson(request),
        )
        .await
    }
    .await;
    match result {
        Ok(_) => see_other(&format!("/tickets/{id}")),
        Err(e) => {
            again(&state, &session, id, e, |message| FormState {
                de_escalate_error: Some(message),
                de_escalate_guidance: guidance,
                ..FormState::default()
            })
            .await
        }
    }
}
