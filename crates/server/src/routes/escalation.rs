//! Escalation over HTTP: templates and runbooks (admins write, agents
//! read), a ticket's runbooks with its progress, recording a step, the
//! escalation form for the next tier pre-filled from the runbooks, and
//! escalating or de-escalating. Customers reach none of it: every handler
//! asks for an agent, and the events it writes are internal.

use super::created;
use super::tickets::{base_version, record, visible_ticket};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, PathId, QueryParams};
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use tierdesk_core::escalation::{
    PrefillSources, Template, TemplateSpec, TimelineSummary, may_move_tiers, summarize,
    template_for,
};
use tierdesk_core::ids::{RunbookId, TemplateId};
use tierdesk_core::runbook::{
    Position, Runbook, RunbookProgress, RunbookSpec, Step, StepOutcome, StepRecord, runbooks_for,
};
use tierdesk_core::{AgentId, EventKind, TeamId, TicketId, Tier};
use tierdesk_store::{DeEscalationRequest, EscalationRequest, TicketChange};
use utoipa::{OpenApi, ToSchema};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/escalation-templates",
            get(list_templates).post(create_template),
        )
        .route(
            "/escalation-templates/{id}",
            get(get_template)
                .put(replace_template)
                .delete(delete_template),
        )
        .route("/runbooks", get(list_runbooks).post(create_runbook))
        .route(
            "/runbooks/{id}",
            get(get_runbook).put(replace_runbook).delete(delete_runbook),
        )
        .route("/tickets/{id}/escalation", get(escalation_form))
        .route("/tickets/{id}/escalate", post(escalate))
        .route("/tickets/{id}/de-escalate", post(de_escalate))
        .route("/tickets/{id}/runbooks", get(ticket_runbooks))
        .route(
            "/tickets/{id}/runbooks/{runbook_id}/steps",
            post(record_step),
        )
}

#[derive(OpenApi)]
#[openapi(
    paths(
        list_templates, create_template, get_template, replace_template, delete_template,
        list_runbooks, create_runbook, get_runbook, replace_runbook, delete_runbook,
        escalation_form, escalate, de_escalate, ticket_runbooks, record_step,
    ),
    tags(
        (name = "escalation", description = "Escalation templates, escalating and de-escalating tickets"),
        (name = "runbooks", description = "Troubleshooting procedures attached to tags, and each ticket's progress"),
    )
)]
pub(crate) struct EscalationDoc;

// --- templates -------------------------------------------------------------

#[utoipa::path(
    get, path = "/api/v1/escalation-templates", tag = "escalation",
    responses((status = 200, description = "Every template, by target tier: `{id, name, tier, description, fields: [{key, label, help, required, type: text|choice|checklist|attachment, options, items, prefill}]}`", body = Vec<Object>), (status = 403, body = Problem))
)]
pub async fn list_templates(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<Template>>> {
    caller.agent()?;
    Ok(Json(state.store().list_escalation_templates().await?))
}

#[utoipa::path(
    post, path = "/api/v1/escalation-templates", tag = "escalation",
    request_body(content = Object, description = "`{name, tier, description?, fields: [...]}`; one template per target tier (1–3)"),
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 409, description = "The tier already has a template", body = Problem), (status = 422, description = "Every problem with its path, e.g. `fields[1].options`", body = Problem))
)]
pub async fn create_template(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(spec): ApiJson<TemplateSpec>,
) -> ApiResult<Response> {
    caller.admin()?;
    let template = state
        .store()
        .create_escalation_template(spec, state.now())
        .await?;
    Ok(created(
        &format!("/api/v1/escalation-templates/{}", template.id),
        None,
        template,
    ))
}

#[utoipa::path(
    get, path = "/api/v1/escalation-templates/{id}", tag = "escalation",
    params(("id" = i64, Path)),
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 404, body = Problem))
)]
pub async fn get_template(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<Template>> {
    caller.agent()?;
    state
        .store()
        .escalation_template(TemplateId(id))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("escalation template not found"))
}

#[utoipa::path(
    put, path = "/api/v1/escalation-templates/{id}", tag = "escalation",
    params(("id" = i64, Path)), request_body = Object,
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem))
)]
pub async fn replace_template(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(spec): ApiJson<TemplateSpec>,
) -> ApiResult<Json<Template>> {
    caller.admin()?;
    Ok(Json(
        state
            .store()
            .update_escalation_template(TemplateId(id), spec, state.now())
            .await?,
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/escalation-templates/{id}", tag = "escalation",
    params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, body = Problem), (status = 404, body = Problem))
)]
pub async fn delete_template(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    caller.admin()?;
    state
        .store()
        .delete_escalation_template(TemplateId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- runbooks --------------------------------------------------------------

#[utoipa::path(
    get, path = "/api/v1/runbooks", tag = "runbooks",
    responses((status = 200, description = "Every runbook: `{id, name, description, tags, allow_cycles, steps: [{id, title, instructions, article_id, check: {yes, no}, next}]}`", body = Vec<Object>), (status = 403, body = Problem))
)]
pub async fn list_runbooks(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<Runbook>>> {
    caller.agent()?;
    Ok(Json(state.store().list_runbooks().await?))
}

#[utoipa::path(
    post, path = "/api/v1/runbooks", tag = "runbooks",
    request_body(content = Object, description = "`{name, tags, steps, description?, allow_cycles?}`; a step leads to the next one, to another step id, `resolved` or `escalate`"),
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, description = "Every problem with its path, e.g. `steps[2].check.yes`", body = Problem))
)]
pub async fn create_runbook(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(spec): ApiJson<RunbookSpec>,
) -> ApiResult<Response> {
    caller.admin()?;
    let runbook = state.store().create_runbook(spec, state.now()).await?;
    Ok(created(
        &format!("/api/v1/runbooks/{}", runbook.id),
        None,
        runbook,
    ))
}

#[utoipa::path(
    get, path = "/api/v1/runbooks/{id}", tag = "runbooks",
    params(("id" = i64, Path)),
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 404, body = Problem))
)]
pub async fn get_runbook(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<Runbook>> {
    caller.agent()?;
    state
        .store()
        .runbook(RunbookId(id))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("runbook not found"))
}

#[utoipa::path(
    put, path = "/api/v1/runbooks/{id}", tag = "runbooks",
    params(("id" = i64, Path)), request_body = Object,
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem))
)]
pub async fn replace_runbook(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(spec): ApiJson<RunbookSpec>,
) -> ApiResult<Json<Runbook>> {
    caller.admin()?;
    Ok(Json(
        state
            .store()
            .update_runbook(RunbookId(id), spec, state.now())
            .await?,
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/runbooks/{id}", tag = "runbooks",
    params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted; timelines keep the steps recorded"), (status = 403, body = Problem), (status = 404, body = Problem))
)]
pub async fn delete_runbook(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    caller.admin()?;
    state.store().delete_runbook(RunbookId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- a ticket's runbooks -----------------------------------------------------

/// One runbook as a ticket shows it, with the ticket's progress through it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketRunbookView {
    #[schema(value_type = Object)]
    pub runbook: Runbook,
    /// `{at: "step", step: "<id>"}`, `{at: "resolved"}`, `{at: "escalate"}` or `{at: "finished"}`.
    #[schema(value_type = Object)]
    pub position: Position,
    /// The step to do next, when the position is a step.
    #[schema(value_type = Option<Object>)]
    pub next_step: Option<Step>,
    /// The runbook ended without resolving the problem: escalate.
    pub suggests_escalation: bool,
    /// The steps recorded, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub recorded: Vec<StepRecord>,
}

async fn runbook_views(
    state: &AppState,
    ticket: &tierdesk_core::Ticket,
    events: &[tierdesk_core::Event],
) -> ApiResult<Vec<TicketRunbookView>> {
    let runbooks = state.store().list_runbooks().await?;
    let progress = RunbookProgress::all_from_events(events);
    Ok(runbooks_for(&runbooks, &ticket.tags)
        .into_iter()
        .map(|runbook| {
            let progress = progress
                .get(&runbook.id)
                .cloned()
                .unwrap_or_else(|| RunbookProgress::new(runbook.id));
            let position = progress.position(&runbook.spec);
            let next_step = match &position {
                Position::Step(id) => runbook.spec.step(id).cloned(),
                _ => None,
            };
            TicketRunbookView {
                suggests_escalation: position.suggests_escalation(),
                runbook: runbook.clone(),
                position,
                next_step,
                recorded: progress.records,
            }
        })
        .collect())
}

async fn agent_ticket(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> ApiResult<(tierdesk_core::Ticket, Vec<tierdesk_core::Event>)> {
    caller.agent()?;
    let ticket = visible_ticket(state, caller, TicketId(id)).await?;
    let events = state
        .store()
        .ticket_events(ticket.id)
        .await?
        .into_iter()
        .map(|e| e.event)
        .collect();
    Ok((ticket, events))
}

#[utoipa::path(
    get, path = "/api/v1/tickets/{id}/runbooks", tag = "runbooks",
    params(("id" = i64, Path)),
    responses((status = 200, description = "The runbooks attached to the ticket's tags, with its progress", body = Vec<TicketRunbookView>), (status = 403, body = Problem), (status = 404, body = Problem))
)]
pub async fn ticket_runbooks(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<Vec<TicketRunbookView>>> {
    let (ticket, events) = agent_ticket(&state, &caller, id).await?;
    Ok(Json(runbook_views(&state, &ticket, &events).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordStepRequest {
    /// The step's id.
    pub step: String,
    /// `done` or `skipped` for an instruction, `yes` or `no` for a check.
    #[schema(value_type = String)]
    pub outcome: StepOutcome,
    pub note: Option<String>,
    pub version: Option<i64>,
}

/// Two ids from the path, e.g. a ticket and one of its runbooks.
fn two_ids(parts: axum::extract::Path<(String, String)>) -> ApiResult<(i64, i64)> {
    let axum::extract::Path((a, b)) = parts;
    let parse = |raw: &str| {
        raw.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| ApiError::not_found(format!("{raw:?} is not an id")))
    };
    Ok((parse(&a)?, parse(&b)?))
}

#[utoipa::path(
    post, path = "/api/v1/tickets/{id}/runbooks/{runbook_id}/steps", tag = "runbooks",
    params(("id" = i64, Path), ("runbook_id" = i64, Path)), request_body = RecordStepRequest,
    responses((status = 201, description = "Recorded as a `runbook_step_recorded` event", body = crate::views::TicketChangeView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, description = "Unknown step, or an outcome that does not fit it, or a runbook not attached to the ticket's tags", body = Problem))
)]
pub async fn record_step(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<axum::extract::Path<(String, String)>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<RecordStepRequest>,
) -> ApiResult<Response> {
    caller.agent()?;
    let path = path.map_err(|_| ApiError::not_found("no such resource"))?;
    let (id, runbook) = two_ids(path)?;
    visible_ticket(&state, &caller, TicketId(id)).await?;
    let expected = base_version(&headers, request.version)?;
    let change = TicketChange::RecordRunbookStep {
        runbook: RunbookId(runbook),
        step: request.step,
        outcome: request.outcome,
        note: request.note,
    };
    record(&state, &caller, TicketId(id), expected, change).await
}

// --- escalating --------------------------------------------------------------

/// What escalating a ticket asks for, and what it already knows.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EscalationFormView {
    pub ticket_id: TicketId,
    pub from_tier: Tier,
    /// The tier asked for (`?tier=`), else the next one; `null` at tier 3.
    pub to_tier: Option<Tier>,
    /// The template the target tier requires; `null` when it has none.
    #[schema(value_type = Option<Object>)]
    pub template: Option<Template>,
    /// Suggested answers by field key: "steps tried" from the runbook steps
    /// recorded, the last customer message where a field asks for it.
    #[schema(value_type = Object)]
    pub prefill: BTreeMap<String, Value>,
    /// A runbook of the ticket ended without resolving the problem.
    pub runbook_suggests_escalation: bool,
    pub runbooks: Vec<TicketRunbookView>,
    /// The timeline in brief, as the escalation will carry it.
    pub summary: TimelineSummary,
    /// Earlier escalations and de-escalations, with their reasons.
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<EventKind>,
}

#[utoipa::path(
    get, path = "/api/v1/tickets/{id}/escalation", tag = "escalation",
    params(("id" = i64, Path), ("tier" = Option<i64>, Query, description = "Target tier; default the next one")),
    responses((status = 200, body = EscalationFormView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem))
)]
pub async fn escalation_form(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    query: QueryParams,
) -> ApiResult<Json<EscalationFormView>> {
    query.allow_only(&["tier"])?;
    let asked = query.parse::<Tier>("tier")?;
    let (ticket, events) = agent_ticket(&state, &caller, id).await?;
    let to_tier = asked.or_else(|| Tier::new(i64::from(ticket.tier.level()) + 1).ok());
    let templates = state.store().list_escalation_templates().await?;
    let template = to_tier.and_then(|tier| template_for(&templates, tier).cloned());
    let runbooks = runbook_views(&state, &ticket, &events).await?;
    let summary = summarize(&events);
    let steps_tried = RunbookProgress::all_from_events(&events)
        .values()
        .map(RunbookProgress::steps_tried)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let last_customer_message = events.iter().rev().find_map(|e| match &e.kind {
        EventKind::CustomerMessage { body, .. } => Some(body.as_str()),
        _ => None,
    });
    let prefill = template
        .as_ref()
        .map(|t| {
            t.prefill(&PrefillSources {
                steps_tried: &steps_tried,
                last_customer_message,
            })
        })
        .unwrap_or_default();
    Ok(Json(EscalationFormView {
        ticket_id: ticket.id,
        from_tier: ticket.tier,
        to_tier,
        template,
        prefill,
        runbook_suggests_escalation: runbooks.iter().any(|r| r.suggests_escalation),
        runbooks,
        summary,
        history: events
            .into_iter()
            .filter(|e| {
                matches!(
                    e.kind,
                    EventKind::Escalated { .. } | EventKind::DeEscalated { .. }
                )
            })
            .map(|e| e.kind)
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalateRequest {
    /// Default: the next tier.
    pub tier: Option<Tier>,
    /// Default: the team owning the ticket's tags at the new tier, else the ticket's team.
    pub team_id: Option<TeamId>,
    /// A new owner who works the new tier; default: the tier's queue.
    pub assignee_id: Option<AgentId>,
    /// Why, in a few words; kept for reports.
    pub reason: String,
    /// The template's fields by key: text, a choice, a list of checked
    /// items, a list of attachment file names or URLs.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub answers: BTreeMap<String, Value>,
    pub version: Option<i64>,
}

#[utoipa::path(
    post, path = "/api/v1/tickets/{id}/escalate", tag = "escalation",
    params(("id" = i64, Path)), request_body = EscalateRequest,
    responses(
        (status = 201, description = "Escalated: an `escalated` event with the filled template and the timeline summary, then the tier, team and assignee changes", body = crate::views::TicketChangeView),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, description = "`escalation_incomplete` listing every missing or invalid field as `answers.<key>`; `escalation_not_up`; `ticket_solved`; `validation_failed`", body = Problem),
    )
)]
pub async fn escalate(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    headers: HeaderMap,
    ApiJson(request): ApiJson<EscalateRequest>,
) -> ApiResult<Response> {
    let agent = caller.agent()?;
    let ticket = visible_ticket(&state, &caller, TicketId(id)).await?;
    may_move_tiers(agent, ticket.tier).map_err(ApiError::forbidden)?;
    let expected = base_version(&headers, request.version)?;
    let change = TicketChange::Escalate(Box::new(EscalationRequest {
        tier: request.tier,
        team: request.team_id,
        assignee: request.assignee_id,
        reason: request.reason,
        answers: request.answers,
    }));
    record(&state, &caller, TicketId(id), expected, change).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeEscalateRequest {
    /// The lower tier (at least 1).
    pub tier: Tier,
    /// What the lower tier should do; recorded as an internal note.
    pub guidance: String,
    pub team_id: Option<TeamId>,
    /// Hand it back to someone (e.g. whoever escalated it).
    pub assignee_id: Option<AgentId>,
    pub version: Option<i64>,
}

#[utoipa::path(
    post, path = "/api/v1/tickets/{id}/de-escalate", tag = "escalation",
    params(("id" = i64, Path)), request_body = DeEscalateRequest,
    responses(
        (status = 201, description = "A `de_escalated` event, the routing changes and the guidance as an internal note", body = crate::views::TicketChangeView),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, description = "`de_escalation_not_down`, `ticket_solved`, or a missing guidance", body = Problem),
    )
)]
pub async fn de_escalate(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    headers: HeaderMap,
    ApiJson(request): ApiJson<DeEscalateRequest>,
) -> ApiResult<Response> {
    let agent = caller.agent()?;
    let ticket = visible_ticket(&state, &caller, TicketId(id)).await?;
    may_move_tiers(agent, ticket.tier).map_err(ApiError::forbidden)?;
    let expected = base_version(&headers, request.version)?;
    let change = TicketChange::DeEscalate(DeEscalationRequest {
        tier: request.tier,
        guidance: request.guidance,
        team: request.team_id,
        assignee: request.assignee_id,
    });
    record(&state, &caller, TicketId(id), expected, change).await
}
