//! A team's auto-assignment settings and its backlog. Agents read them,
//! admins change the settings.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, PathId, QueryParams};
use crate::views::{TicketView, rfc3339};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tierdesk_core::routing::{TeamAssignment, TeamAssignmentMode};
use tierdesk_core::{AgentId, TeamId, Tier};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct AssignmentView {
    pub team_id: TeamId,
    /// `manual` (agents pick tickets), `round_robin` (the eligible agent
    /// assigned longest ago) or `least_loaded` (the lowest open/capacity).
    pub mode: TeamAssignmentMode,
    /// Unassign an agent's new/open tickets of this team when they become
    /// unavailable or are deactivated, so the tickets are assigned again.
    pub unassign_when_offline: bool,
}

impl AssignmentView {
    fn new(team: TeamId, settings: TeamAssignment) -> Self {
        AssignmentView {
            team_id: team,
            mode: settings.mode,
            unassign_when_offline: settings.unassign_when_offline,
        }
    }
}

#[utoipa::path(
    get, path = "/api/v1/teams/{id}/assignment", tag = "teams",
    params(("id" = i64, Path)),
    responses((status = 200, body = AssignmentView), (status = 403, body = Problem), (status = 404, body = Problem))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<AssignmentView>> {
    caller.agent()?;
    let team = TeamId(id);
    let settings = state.store().team_assignment(team).await?;
    Ok(Json(AssignmentView::new(team, settings)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAssignmentRequest {
    pub mode: TeamAssignmentMode,
    #[serde(default)]
    pub unassign_when_offline: bool,
}

#[utoipa::path(
    put, path = "/api/v1/teams/{id}/assignment", tag = "teams",
    params(("id" = i64, Path)), request_body = SetAssignmentRequest,
    responses((status = 200, body = AssignmentView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem))
)]
pub async fn set(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(request): ApiJson<SetAssignmentRequest>,
) -> ApiResult<Json<AssignmentView>> {
    caller.admin()?;
    let team = TeamId(id);
    let settings = TeamAssignment {
        mode: request.mode,
        unassign_when_offline: request.unassign_when_offline,
    };
    let saved = state
        .store()
        .set_team_assignment(team, settings, state.now())
        .await?;
    Ok(Json(AssignmentView::new(team, saved)))
}

/// A member of the team as the assigner sees them.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentLoadView {
    pub id: AgentId,
    pub name: String,
    pub tier: Tier,
    pub available: bool,
    pub active: bool,
    /// Most open (not solved/closed) tickets the assigner gives them.
    pub capacity: i64,
    /// Open tickets assigned to them now, in any team.
    pub open_assigned: i64,
    /// When the assigner last gave them a ticket.
    #[schema(format = DateTime)]
    pub last_assigned_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BacklogView {
    #[serde(flatten)]
    pub settings: AssignmentView,
    /// Unassigned new/open tickets of the team, in the order they will be
    /// assigned (oldest first).
    pub waiting: Vec<TicketView>,
    pub agents: Vec<AgentLoadView>,
}

const BACKLOG_DEFAULT: u32 = 100;
const BACKLOG_MAX: u32 = 1000;

#[utoipa::path(
    get, path = "/api/v1/teams/{id}/backlog", tag = "teams",
    params(
        ("id" = i64, Path),
        ("limit" = Option<u32>, Query, description = "Waiting tickets to list, 1–1000 (default 100)")
    ),
    responses((status = 200, body = BacklogView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem))
)]
pub async fn backlog(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    params: QueryParams,
) -> ApiResult<Json<BacklogView>> {
    caller.agent()?;
    params.allow_only(&["limit"])?;
    let limit = match params.parse::<u32>("limit")? {
        None => BACKLOG_DEFAULT,
        Some(n) if (1..=BACKLOG_MAX).contains(&n) => n,
        Some(n) => {
            return Err(crate::error::ApiError::invalid(
                "limit",
                format!("must be between 1 and {BACKLOG_MAX}, not {n}"),
            ));
        }
    };
    let team = TeamId(id);
    let store = state.store();
    let settings = store.team_assignment(team).await?;
    let waiting = store.team_backlog(team, limit).await?;
    let candidates = store.assignment_candidates(team).await?;
    let names: BTreeMap<AgentId, String> = store
        .list_agents()
        .await?
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect();
    let agents = candidates
        .into_iter()
        .map(|c| AgentLoadView {
            name: names.get(&c.id).cloned().unwrap_or_default(),
            id: c.id,
            tier: c.tier,
            available: c.available,
            active: c.active,
            capacity: c.capacity,
            open_assigned: c.open_assigned,
            last_assigned_at: c.last_assigned_at.map(rfc3339),
        })
        .collect();
    Ok(Json(BacklogView {
        settings: AssignmentView::new(team, settings),
        waiting: waiting.iter().map(TicketView::from).collect(),
        agents,
    }))
}
