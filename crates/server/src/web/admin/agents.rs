//! Admins: agents (role, tier, teams, capacity, availability) and teams;
//! add an agent, change an agent's role, tier and capacity, through the
//! people API's handlers.

use super::{api_request, error_text, number_or_null, require_admin};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathId};
use crate::routes::people::{create_agent, update_agent};
use crate::web::render::{Shell, page};
use crate::web::{AgentForm, AgentSession, WebError, path_id, see_other};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;

const PAGE_URL: &str = "/admin/agents";

#[derive(Serialize)]
struct AgentRow {
    id: i64,
    name: String,
    email: String,
    role: String,
    tier: u8,
    teams: String,
    capacity: i64,
    available: bool,
    active: bool,
}

pub(crate) async fn page_handler(State(state): State<AppState>, session: AgentSession) -> Response {
    show(&state, &session, StatusCode::OK, None).await
}

async fn show(
    state: &AppState,
    session: &AgentSession,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    if let Err(e) = require_admin(session) {
        return e.into_response();
    }
    let listed: ApiResult<_> = async {
        let store = state.store();
        Ok((store.list_agents().await?, store.list_teams().await?))
    }
    .await;
    let (agents, teams) = match listed {
        Ok(both) => both,
        Err(e) => return WebError::from(e).into_response(),
    };
    let team_names: HashMap<i64, &str> = teams.iter().map(|t| (t.id.0, t.name.as_str())).collect();
    let rows: Vec<AgentRow> = agents
        .iter()
        .map(|a| AgentRow {
            id: a.id.0,
            name: a.name.clone(),
            email: a.email.clone(),
            role: a.role.to_string(),
            tier: a.tier.level(),
            teams: a
                .teams
                .iter()
                .map(|t| team_names.get(&t.0).copied().unwrap_or("?"))
                .collect::<Vec<_>>()
                .join(", "),
            capacity: a.capacity,
            available: a.available,
            active: a.active,
        })
        .collect();
    let teams: Vec<Value> = teams
        .iter()
        .map(|t| json!({ "id": t.id.0, "name": t.name, "description": t.description }))
        .collect();
    page(
        status,
        "admin_agents.html",
        json!({
            "shell": Shell::of(session),
            "agents": rows,
            "teams": teams,
            "tiers": [1, 2, 3],
            "roles": ["agent", "admin"],
            "error": error,
        }),
    )
}

async fn outcome(state: &AppState, session: &AgentSession, result: ApiResult<()>) -> Response {
    match result {
        Ok(()) => see_other(PAGE_URL),
        Err(e) => show(state, session, e.status, Some(error_text(&e))).await,
    }
}

fn text_or_null(raw: Option<&str>) -> Value {
    raw.map(str::trim)
        .filter(|v| !v.is_empty())
        .map_or(Value::Null, Value::from)
}

pub(crate) async fn create(State(state): State<AppState>, form: AgentForm) -> Response {
    let AgentForm { session, fields } = form;
    if let Err(e) = require_admin(&session) {
        return e.into_response();
    }
    let team_ids: Vec<Value> = fields
        .all("team_ids")
        .into_iter()
        .map(|raw| number_or_null(Some(raw)))
        .collect();
    let body = json!({
        "name": fields.get("name").unwrap_or_default(),
        "email": fields.get("email").unwrap_or_default(),
        "role": text_or_null(fields.get("role")),
        "tier": number_or_null(fields.get("tier")),
        "team_ids": team_ids,
        "capacity": number_or_null(fields.get("capacity")),
        "password": text_or_null(fields.get("password")),
    });
    let result = async {
        let request = api_request(&body)?;
        create_agent(
            State(state.clone()),
            session.caller.clone(),
            ApiJson(request),
        )
        .await?;
        Ok(())
    }
    .await;
    outcome(&state, &session, result).await
}

pub(crate) async fn update(
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
    let result = async {
        // Only what changed: an admin saving their own capacity does not "set" their role.
        let current = state
            .store()
            .agent(tierdesk_core::AgentId(id))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("agent {id} not found")))?;
        let mut body = serde_json::Map::new();
        if let Some(role) = fields
            .text("role")
            .filter(|r| *r != current.role.to_string())
        {
            body.insert("role".into(), Value::from(role));
        }
        let tier = number_or_null(fields.get("tier"));
        if !tier.is_null() && tier != json!(current.tier.level()) {
            body.insert("tier".into(), tier);
        }
        let capacity = number_or_null(fields.get("capacity"));
        if !capacity.is_null() && capacity != json!(current.capacity) {
            body.insert("capacity".into(), capacity);
        }
        if body.is_empty() {
            return Ok(());
        }
        let request = api_request(&Value::Object(body))?;
        let _ = update_agent(
            State(state.clone()),
            session.caller.clone(),
            PathId(id),
            ApiJson(request),
        )
        .await?;
        Ok(())
    }
    .await;
    outcome(&state, &session, result).await
}
