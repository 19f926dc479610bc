//! Admins: every tag with its owner, description and usage; create, edit,
//! rename and merge through the tag API's handlers.

use super::{api_request, error_text, number_or_null, require_admin};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathId};
use crate::routes::config::{create_tag, update_tag};
use crate::routes::tag_admin::{merge, rename};
use crate::web::render::{Shell, page};
use crate::web::{AgentForm, AgentSession, WebError, path_id, see_other};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use tierdesk_core::Timestamp;

/// Usage counts cover tickets created in this many days.
const USAGE_DAYS: i64 = 30;
const PAGE_URL: &str = "/admin/tags";

#[derive(Serialize)]
struct TagRow {
    id: i64,
    name: String,
    description: String,
    owner_tier: Option<u8>,
    owner_team_id: Option<i64>,
    owner_team: Option<String>,
    tickets: u64,
    open_tickets: u64,
    created_since: u64,
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
    match rows(state).await {
        Ok((tags, teams)) => page(
            status,
            "admin_tags.html",
            json!({
                "shell": Shell::of(session),
                "tags": tags,
                "teams": teams,
                "tiers": [0, 1, 2, 3],
                "usage_days": USAGE_DAYS,
                "error": error,
            }),
        ),
        Err(e) => WebError::from(e).into_response(),
    }
}

async fn rows(state: &AppState) -> ApiResult<(Vec<TagRow>, Vec<serde_json::Value>)> {
    let store = state.store();
    let since = Timestamp(state.now().0 - USAGE_DAYS * 86_400_000);
    let usage: HashMap<String, _> = store
        .tag_usage(since)
        .await?
        .into_iter()
        .map(|u| (u.tag.clone(), u))
        .collect();
    let teams = store.list_teams().await?;
    let team_names: HashMap<i64, String> = teams.iter().map(|t| (t.id.0, t.name.clone())).collect();
    let tags = store
        .list_tags()
        .await?
        .into_iter()
        .map(|tag| {
            let used = usage.get(tag.name.as_str());
            let owner_team_id = tag.owner_team.map(|t| t.0);
            TagRow {
                id: tag.id.0,
                description: tag.description.clone(),
                owner_tier: tag.owner_tier.map(|t| t.level()),
                owner_team: owner_team_id.and_then(|id| team_names.get(&id).cloned()),
                owner_team_id,
                tickets: used.map_or(0, |u| u.tickets),
                open_tickets: used.map_or(0, |u| u.open_tickets),
                created_since: used.map_or(0, |u| u.created_since),
                name: tag.name.to_string(),
            }
        })
        .collect();
    let teams = teams
        .iter()
        .map(|t| json!({ "id": t.id.0, "name": t.name }))
        .collect();
    Ok((tags, teams))
}

/// After a change: back to the list, or the list again with the error.
async fn outcome(
    state: &AppState,
    session: &AgentSession,
    result: ApiResult<impl Sized>,
) -> Response {
    match result {
        Ok(_) => see_other(PAGE_URL),
        Err(e) => show(state, session, e.status, Some(error_text(&e))).await,
    }
}

pub(crate) async fn create(State(state): State<AppState>, form: AgentForm) -> Response {
    let AgentForm { session, fields } = form;
    if let Err(e) = require_admin(&session) {
        return e.into_response();
    }
    let body = json!({
        "name": fields.text("name").unwrap_or_default(),
        "description": fields.get("description").unwrap_or_default(),
        "owner_tier": number_or_null(fields.get("owner_tier")),
        "owner_team_id": number_or_null(fields.get("owner_team_id")),
    });
    let result = match api_request(&body) {
        Ok(request) => create_tag(
            State(state.clone()),
            session.caller.clone(),
            ApiJson(request),
        )
        .await
        .map(|_| ()),
        Err(e) => Err(e),
    };
    outcome(&state, &session, result).await
}

/// Which of the three tag forms was sent.
enum TagChange {
    Edit,
    Rename,
    Merge,
}

async fn change(state: AppState, raw: String, form: AgentForm, kind: TagChange) -> Response {
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
            TagChange::Edit => {
                let body = json!({
                    "description": fields.get("description").unwrap_or_default(),
                    "owner_tier": number_or_null(fields.get("owner_tier")),
                    "owner_team_id": number_or_null(fields.get("owner_team_id")),
                });
                let request = api_request(&body)?;
                let _ =
                    update_tag(State(state.clone()), caller, PathId(id), ApiJson(request)).await?;
            }
            TagChange::Rename => {
                let body = json!({ "name": fields.text("name").unwrap_or_default() });
                let request = api_request(&body)?;
                let _ = rename(State(state.clone()), caller, PathId(id), ApiJson(request)).await?;
            }
            TagChange::Merge => {
                let into = fields
                    .text("into")
                    .ok_or_else(|| ApiError::invalid("into", "pick the tag to merge into"))?;
                let request = api_request(&json!({ "into": into }))?;
                let _ = merge(State(state.clone()), caller, PathId(id), ApiJson(request)).await?;
            }
        }
        Ok(())
    }
    .await;
    outcome(&state, &session, result).await
}

pub(crate) async fn edit(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: AgentForm,
) -> Response {
    change(state, raw, form, TagChange::Edit).await
}

pub(crate) async fn rename_tag(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: AgentForm,
) -> Response {
    change(state, raw, form, TagChange::Rename).await
}

pub(crate) async fn merge_tag(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: AgentForm,
) -> Response {
    change(state, raw, form, TagChange::Merge).await
}
