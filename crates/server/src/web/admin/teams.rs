//! Admins: teams with their members and auto-assignment mode; create,
//! rename, delete, choose members and set the mode, through the teams,
//! people and assignment API handlers. Capacity is per agent (agents page).

use super::{api_request, error_text, require_admin};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{ApiJson, PathId};
use crate::routes::assignment;
use crate::routes::config::{create_team, delete_team, update_team};
use crate::routes::people::update_agent;
use crate::web::render::{Shell, page};
use crate::web::{AgentForm, AgentSession, Fields, WebError, path_id, see_other};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tierdesk_core::TeamId;

const PAGE_URL: &str = "/admin/teams";

#[derive(Serialize)]
struct TeamRow {
    id: i64,
    name: String,
    description: String,
    mode: String,
    unassign_when_offline: bool,
    members: Vec<Value>,
}

/// What a refused form had typed, to show it again: the form's key
/// (`new` or a team id) and its fields.
#[derive(Serialize, Default)]
struct Typed {
    form: String,
    values: BTreeMap<String, String>,
}

pub(crate) async fn page_handler(State(state): State<AppState>, session: AgentSession) -> Response {
    show(&state, &session, StatusCode::OK, None, Typed::default()).await
}

async fn show(
    state: &AppState,
    session: &AgentSession,
    status: StatusCode,
    error: Option<String>,
    typed: Typed,
) -> Response {
    if let Err(e) = require_admin(session) {
        return e.into_response();
    }
    let listed: ApiResult<_> = async {
        let store = state.store();
        let agents = store.list_agents().await?;
        let mut rows = Vec::new();
        for team in store.list_teams().await? {
            let settings = store.team_assignment(team.id).await?;
            let mode = serde_json::to_value(settings.mode)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            rows.push(TeamRow {
                id: team.id.0,
                name: team.name.clone(),
                description: team.description.clone(),
                mode,
                unassign_when_offline: settings.unassign_when_offline,
                members: agents
                    .iter()
                    .filter(|a| a.active)
                    .map(|a| {
                        json!({
                            "id": a.id.0,
                            "name": a.name,
                            "member": a.teams.contains(&team.id),
                        })
                    })
                    .collect(),
            });
        }
        Ok(rows)
    }
    .await;
    match listed {
        Ok(teams) => page(
            status,
            "admin_teams.html",
            json!({
                "shell": Shell::of(session),
                "teams": teams,
                "modes": ["manual", "round_robin", "least_loaded"],
                "error": error,
                "typed": typed,
            }),
        ),
        Err(e) => WebError::from(e).into_response(),
    }
}

fn typed(form: &str, fields: &Fields, keys: &[&str]) -> Typed {
    Typed {
        form: form.to_string(),
        values: keys
            .iter()
            .filter_map(|k| fields.get(k).map(|v| (k.to_string(), v.to_string())))
            .collect(),
    }
}

async fn outcome(
    state: &AppState,
    session: &AgentSession,
    result: ApiResult<()>,
    typed: Typed,
) -> Response {
    match result {
        Ok(()) => see_other(PAGE_URL),
        Err(e) => show(state, session, e.status, Some(error_text(&e)), typed).await,
    }
}

pub(crate) async fn create(State(state): State<AppState>, form: AgentForm) -> Response {
    let AgentForm { session, fields } = form;
    if let Err(e) = require_admin(&session) {
        return e.into_response();
    }
    let result = async {
        let request = api_request(&json!({
            "name": fields.get("name").unwrap_or_default(),
            "description": fields.get("description").unwrap_or_default(),
        }))?;
        create_team(
            State(state.clone()),
            session.caller.clone(),
            ApiJson(request),
        )
        .await?;
        Ok(())
    }
    .await;
    let typed = typed("new", &fields, &["name", "description"]);
    outcome(&state, &session, result, typed).await
}

/// Which of a team's forms was sent.
enum TeamChange {
    Rename,
    Members,
    Assignment,
    Delete,
}

async fn change(state: AppState, raw: String, form: AgentForm, kind: TeamChange) -> Response {
    let AgentForm { session, fields } = form;
    if let Err(e) = require_admin(&session) {
        return e.into_response();
    }
    let id = match path_id(&raw) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let caller = session.caller.clone();
    let result: ApiResult<()> = async {
        match kind {
            TeamChange::Rename => {
                let request = api_request(&json!({
                    "name": fields.get("name").unwrap_or_default(),
                    "description": fields.get("description").unwrap_or_default(),
                }))?;
                let _ =
                    update_team(State(state.clone()), caller, PathId(id), ApiJson(request)).await?;
            }
            TeamChange::Assignment => {
                let request = api_request(&json!({
                    "mode": fields.get("mode").unwrap_or_default(),
                    "unassign_when_offline": fields.get("unassign_when_offline").is_some(),
                }))?;
                let _ = assignment::set(State(state.clone()), caller, PathId(id), ApiJson(request))
                    .await?;
            }
            TeamChange::Members => {
                let chosen: Vec<i64> = fields
                    .all("agent_ids")
                    .iter()
                    .filter_map(|raw| raw.parse().ok())
                    .collect();
                let team = TeamId(id);
                for agent in state.store().list_agents().await? {
                    let member = agent.teams.contains(&team);
                    if member == chosen.contains(&agent.id.0) {
                        continue;
                    }
                    let mut teams: Vec<i64> = agent
                        .teams
                        .iter()
                        .filter(|t| **t != team)
                        .map(|t| t.0)
                        .collect();
                    if !member {
                        teams.push(id);
                    }
                    let request = api_request(&json!({ "team_ids": teams }))?;
                    let _ = update_agent(
                        State(state.clone()),
                        caller.clone(),
                        PathId(agent.id.0),
                        ApiJson(request),
                    )
                    .await?;
                }
            }
            TeamChange::Delete => {
                delete_team(State(state.clone()), caller, PathId(id)).await?;
            }
        }
        Ok(())
    }
    .await;
    let typed = typed(&id.to_string(), &fields, &["name", "description"]);
    outcome(&state, &session, result, typed).await
}

pub(crate) async fn rename(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: AgentForm,
) -> Response {
    change(state, raw, form, TeamChange::Rename).await
}

pub(crate) async fn members(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: AgentForm,
) -> Response {
    change(state, raw, form, TeamChange::Members).await
}

pub(crate) async fn set_assignment(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: AgentForm,
) -> Response {
    change(state, raw, form, TeamChange::Assignment).await
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: AgentForm,
) -> Response {
    change(state, raw, form, TeamChange::Delete).await
}
