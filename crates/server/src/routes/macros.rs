//! Macros over HTTP: CRUD (shared macros by admins, personal ones by their
//! owner, others' personal macros are "not found"), a preview that renders
//! the reply and note for a ticket without writing, and applying one.

use super::created;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, FieldProblem, Problem};
use crate::extract::{ApiJson, PathId};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tierdesk_core::macros::{self, MacroActions, RenderFacts};
use tierdesk_core::{Agent, AgentId, Ticket, TicketId};
use tierdesk_store::{Macro, MacroPatch, NewMacro, TicketChange, UpdateSpec};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MacroView {
    pub id: i64,
    pub name: String,
    pub description: String,
    /// `reply`, `note`, `status`, `priority`, `tier`, `team`, `assignee`, `assign_to_me`, `add_tags`, `remove_tags`.
    #[schema(value_type = Object)]
    pub actions: MacroActions,
    pub shared: bool,
    pub owner: Option<AgentId>,
    pub uses: i64,
}

impl From<Macro> for MacroView {
    fn from(m: Macro) -> Self {
        MacroView {
            id: m.id,
            shared: m.owner.is_none(),
            owner: m.owner,
            name: m.name,
            description: m.description,
            actions: m.actions,
            uses: m.uses,
        }
    }
}

/// Every problem in the actions at once, each with its JSON path.
fn check_actions(actions: &MacroActions) -> ApiResult<()> {
    let errors = macros::validate(actions);
    if errors.is_empty() {
        return Ok(());
    }
    let mut problem = ApiError::invalid("actions", "the macro's actions have problems");
    problem.errors = errors
        .into_iter()
        .map(|e| FieldProblem {
            field: if e.path.is_empty() {
                "actions".into()
            } else {
                format!("actions.{}", e.path)
            },
            message: e.message,
        })
        .collect();
    Err(problem)
}

async fn visible_macro(state: &AppState, me: AgentId, id: i64) -> ApiResult<Macro> {
    match state.store().get_macro(id).await? {
        Some(m) if m.owner.is_none() || m.owner == Some(me) => Ok(m),
        _ => Err(ApiError::not_found("macro not found")),
    }
}

async fn changeable_macro(state: &AppState, caller: &Caller, id: i64) -> ApiResult<Macro> {
    let m = visible_macro(state, caller.agent()?.id, id).await?;
    if m.owner.is_none() {
        caller.admin()?;
    }
    Ok(m)
}

#[utoipa::path(
    get, path = "/api/v1/macros", tag = "macros",
    responses((status = 200, body = Vec<MacroView>), (status = 403, body = Problem))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<MacroView>>> {
    let me = caller.agent()?.id;
    let list = state.store().list_macros(me).await?;
    Ok(Json(list.into_iter().map(MacroView::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMacroRequest {
    pub name: String,
    pub description: Option<String>,
    #[schema(value_type = Object)]
    pub actions: MacroActions,
    /// Share with every agent (admins only); otherwise it is yours.
    #[serde(default)]
    pub shared: bool,
}

#[utoipa::path(
    post, path = "/api/v1/macros", tag = "macros",
    request_body = CreateMacroRequest,
    responses((status = 201, body = MacroView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateMacroRequest>,
) -> ApiResult<Response> {
    let me = caller.agent()?.id;
    if request.shared {
        caller.admin()?;
    }
    check_actions(&request.actions)?;
    let m = state
        .store()
        .create_macro(
            NewMacro {
                name: request.name,
                description: request.description.unwrap_or_default(),
                actions: request.actions,
                owner: (!request.shared).then_some(me),
            },
            state.now(),
        )
        .await?;
    Ok(created(
        &format!("/api/v1/macros/{}", m.id),
        None,
        MacroView::from(m),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/macros/{id}", tag = "macros",
    params(("id" = i64, Path)),
    responses((status = 200, body = MacroView), (status = 404, body = Problem))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<MacroView>> {
    let me = caller.agent()?.id;
    Ok(Json(visible_macro(&state, me, id).await?.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMacroRequest {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Replaces all the actions.
    #[schema(value_type = Option<Object>)]
    pub actions: Option<MacroActions>,
}

#[utoipa::path(
    patch, path = "/api/v1/macros/{id}", tag = "macros",
    params(("id" = i64, Path)), request_body = UpdateMacroRequest,
    responses((status = 200, body = MacroView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem))
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(request): ApiJson<UpdateMacroRequest>,
) -> ApiResult<Json<MacroView>> {
    changeable_macro(&state, &caller, id).await?;
    if let Some(actions) = &request.actions {
        check_actions(actions)?;
    }
    let m = state
        .store()
        .update_macro(
            id,
            MacroPatch {
                name: request.name,
                description: request.description,
                actions: request.actions,
            },
            state.now(),
        )
        .await?;
    Ok(Json(m.into()))
}

#[utoipa::path(
    delete, path = "/api/v1/macros/{id}", tag = "macros",
    params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, body = Problem), (status = 404, body = Problem))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    changeable_macro(&state, &caller, id).await?;
    state.store().delete_macro(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What applying a macro to a ticket would do.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MacroPreview {
    /// The public reply as the customer would read it.
    pub reply: Option<String>,
    /// The internal note as it would be recorded.
    pub note: Option<String>,
    /// The field changes, with `assign_to_me` resolved to the caller.
    #[schema(value_type = Object)]
    pub changes: MacroActions,
}

pub(crate) async fn preview_for(
    state: &AppState,
    agent: &Agent,
    ticket: &Ticket,
    m: &Macro,
) -> ApiResult<MacroPreview> {
    let requester = state
        .store()
        .contact(ticket.requester)
        .await?
        .ok_or_else(ApiError::internal)?;
    let facts = RenderFacts {
        requester_name: &requester.name,
        requester_email: &requester.email,
        agent_name: &agent.name,
    };
    let mut changes = m.actions.clone();
    if changes.assign_to_me {
        changes.assign_to_me = false;
        changes.assignee = Some(Some(agent.id));
    }
    let reply = changes
        .reply
        .take()
        .map(|t| macros::render(&t, ticket, &facts));
    let note = changes
        .note
        .take()
        .map(|t| macros::render(&t, ticket, &facts));
    Ok(MacroPreview {
        reply,
        note,
        changes,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewMacroRequest {
    #[schema(value_type = i64)]
    pub ticket_id: TicketId,
}

#[utoipa::path(
    post, path = "/api/v1/macros/{id}/preview", tag = "macros",
    params(("id" = i64, Path)), request_body = PreviewMacroRequest,
    responses((status = 200, description = "Rendered, nothing written", body = MacroPreview), (status = 404, body = Problem))
)]
pub async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(request): ApiJson<PreviewMacroRequest>,
) -> ApiResult<Json<MacroPreview>> {
    let agent = caller.agent()?;
    let m = visible_macro(&state, agent.id, id).await?;
    let ticket = state
        .store()
        .ticket(request.ticket_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("ticket {} not found", request.ticket_id)))?;
    Ok(Json(preview_for(&state, agent, &ticket, &m).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyMacroRequest {
    #[schema(value_type = i64)]
    pub ticket_id: TicketId,
    /// The ticket version the agent saw; a stale one is refused with 409.
    pub version: i64,
}

#[utoipa::path(
    post, path = "/api/v1/macros/{id}/apply", tag = "macros",
    params(("id" = i64, Path)), request_body = ApplyMacroRequest,
    responses(
        (status = 200, description = "Applied in one transaction: the ticket now and the events recorded", body = crate::views::TicketChangeView),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
    )
)]
pub async fn apply(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(request): ApiJson<ApplyMacroRequest>,
) -> ApiResult<Response> {
    let agent = caller.agent()?;
    let m = visible_macro(&state, agent.id, id).await?;
    let ticket = state
        .store()
        .ticket(request.ticket_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("ticket {} not found", request.ticket_id)))?;
    let preview = preview_for(&state, agent, &ticket, &m).await?;
    let changes = preview.changes;
    // A reply carries the status change with it, as an agent replying and solving does.
    let reply_status = preview.reply.as_ref().and(changes.status);
    let update = UpdateSpec {
        status: if reply_status.is_some() {
            None
        } else {
            changes.status
        },
        priority: changes.priority,
        tier: changes.tier,
        team: changes.team,
        assignee: changes.assignee,
        add_tags: changes.add_tags,
        remove_tags: changes.remove_tags,
    };
    let mut steps = Vec::new();
    if update != UpdateSpec::default() {
        steps.push(TicketChange::Update(update));
    }
    if let Some(body) = preview.note {
        steps.push(TicketChange::InternalNote { body });
    }
    if let Some(body) = preview.reply {
        steps.push(TicketChange::AgentReply {
            body,
            status: reply_status,
        });
    }
    let change = state
        .store()
        .change_ticket(
            ticket.id,
            Some(request.version),
            TicketChange::Several(steps),
            caller.actor(),
            state.now(),
        )
        .await?;
    if let Err(e) = state.store().record_macro_use(m.id).await {
        // The change is committed; a lost use count only skews the macro review.
        tracing::warn!(macro_id = m.id, error = %e, "could not count a macro use");
    }
    Ok(super::with_etag(
        change.ticket.version,
        Json(crate::views::TicketChangeView {
            ticket: crate::views::AnyTicketView::new(&change.ticket, false),
            events: super::rules::timeline(&state, &change.events, false).await?,
        }),
    ))
}
