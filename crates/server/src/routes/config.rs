//! Desk configuration: teams and tags. Agents read it, admins change it.

use super::created;
use super::people::valid_name;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, PathId, double_option};
use crate::views::{TagView, TeamView};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tierdesk_core::{TagId, TagName, TeamId, Tier};
use tierdesk_store::{NewTag, NewTeam, TagPatch, TeamPatch};
use utoipa::ToSchema;

const DESCRIPTION_MAX_CHARS: usize = 2000;

fn valid_description(raw: Option<String>) -> ApiResult<String> {
    let text = raw.unwrap_or_default().trim().to_string();
    if text.chars().count() > DESCRIPTION_MAX_CHARS {
        return Err(ApiError::invalid(
            "description",
            format!("must be at most {DESCRIPTION_MAX_CHARS} characters"),
        ));
    }
    Ok(text)
}

// --- teams ----------------------------------------------------------------

#[utoipa::path(
    get, path = "/api/v1/teams", tag = "teams",
    responses((status = 200, body = Vec<TeamView>), (status = 403, body = Problem))
)]
pub async fn list_teams(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<TeamView>>> {
    caller.agent()?;
    let teams = state.store().list_teams().await?;
    Ok(Json(teams.iter().map(TeamView::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeamRequest {
    pub name: String,
    pub description: Option<String>,
}

#[utoipa::path(
    post, path = "/api/v1/teams", tag = "teams",
    request_body = CreateTeamRequest,
    responses((status = 201, body = TeamView), (status = 403, body = Problem), (status = 409, body = Problem))
)]
pub async fn create_team(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateTeamRequest>,
) -> ApiResult<Response> {
    caller.admin()?;
    let new = NewTeam {
        name: valid_name("name", &request.name)?,
        description: valid_description(request.description)?,
    };
    let team = state.store().create_team(new).await?;
    Ok(created(
        &format!("/api/v1/teams/{}", team.id),
        None,
        TeamView::from(&team),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/teams/{id}", tag = "teams",
    params(("id" = i64, Path)),
    responses((status = 200, body = TeamView), (status = 404, body = Problem))
)]
pub async fn get_team(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<TeamView>> {
    caller.agent()?;
    let team = state
        .store()
        .team(TeamId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("team {id} not found")))?;
    Ok(Json(TeamView::from(&team)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTeamRequest {
    pub name: Option<String>,
    pub description: Option<String>,
}

#[utoipa::path(
    patch, path = "/api/v1/teams/{id}", tag = "teams",
    params(("id" = i64, Path)), request_body = UpdateTeamRequest,
    responses((status = 200, body = TeamView), (status = 403, body = Problem), (status = 404, body = Problem))
)]
pub async fn update_team(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(request): ApiJson<UpdateTeamRequest>,
) -> ApiResult<Json<TeamView>> {
    caller.admin()?;
    let patch = TeamPatch {
        name: request.name.map(|n| valid_name("name", &n)).transpose()?,
        description: request
            .description
            .map(|d| valid_description(Some(d)))
            .transpose()?,
    };
    let team = state.store().update_team(TeamId(id), patch).await?;
    Ok(Json(TeamView::from(&team)))
}

#[utoipa::path(
    delete, path = "/api/v1/teams/{id}", tag = "teams",
    params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 409, description = "Still in use", body = Problem))
)]
pub async fn delete_team(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    caller.admin()?;
    state.store().delete_team(TeamId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- tags -----------------------------------------------------------------

#[utoipa::path(
    get, path = "/api/v1/tags", tag = "tags",
    responses((status = 200, body = Vec<TagView>), (status = 403, body = Problem))
)]
pub async fn list_tags(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<TagView>>> {
    caller.agent()?;
    let tags = state.store().list_tags().await?;
    Ok(Json(tags.iter().map(TagView::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTagRequest {
    /// Lowercase a-z, 0-9 and `-_.:`; normalised.
    #[schema(value_type = String)]
    pub name: TagName,
    pub description: Option<String>,
    /// The tier that owns tickets with this tag.
    pub owner_tier: Option<Tier>,
    /// The team that owns tickets with this tag.
    pub owner_team_id: Option<TeamId>,
}

#[utoipa::path(
    post, path = "/api/v1/tags", tag = "tags",
    request_body = CreateTagRequest,
    responses((status = 201, body = TagView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem))
)]
pub async fn create_tag(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateTagRequest>,
) -> ApiResult<Response> {
    caller.admin()?;
    let new = NewTag {
        name: request.name,
        description: valid_description(request.description)?,
        owner_tier: request.owner_tier,
        owner_team: request.owner_team_id,
    };
    let tag = state.store().create_tag(new).await?;
    Ok(created(
        &format!("/api/v1/tags/{}", tag.id),
        None,
        TagView::from(&tag),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/tags/{id}", tag = "tags",
    params(("id" = i64, Path)),
    responses((status = 200, body = TagView), (status = 404, body = Problem))
)]
pub async fn get_tag(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<TagView>> {
    caller.agent()?;
    let tag = state
        .store()
        .tag(TagId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("tag {id} not found")))?;
    Ok(Json(TagView::from(&tag)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTagRequest {
    #[schema(value_type = Option<String>)]
    pub name: Option<TagName>,
    pub description: Option<String>,
    /// A tier, or `null` for no owning tier.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u8>)]
    pub owner_tier: Option<Option<Tier>>,
    /// A team id, or `null` for no owning team.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub owner_team_id: Option<Option<TeamId>>,
}

#[utoipa::path(
    patch, path = "/api/v1/tags/{id}", tag = "tags",
    params(("id" = i64, Path)), request_body = UpdateTagRequest,
    responses((status = 200, body = TagView), (status = 403, body = Problem), (status = 404, body = Problem))
)]
pub async fn update_tag(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(request): ApiJson<UpdateTagRequest>,
) -> ApiResult<Json<TagView>> {
    caller.admin()?;
    let patch = TagPatch {
        name: request.name,
        description: request
            .description
            .map(|d| valid_description(Some(d)))
            .transpose()?,
        owner_tier: request.owner_tier,
        owner_team: request.owner_team_id,
    };
    let before = state
        .store()
        .tag(TagId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("tag {id} not found")))?;
    let tag = state.store().update_tag(TagId(id), patch).await?;
    if tag.name != before.name {
        // A new name carries the tickets along, as POST /tags/{id}/rename does.
        super::tag_admin::retag(&state, caller.actor(), &before.name, &tag.name).await?;
    }
    Ok(Json(TagView::from(&tag)))
}

#[utoipa::path(
    delete, path = "/api/v1/tags/{id}", tag = "tags",
    params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, body = Problem))
)]
pub async fn delete_tag(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    caller.admin()?;
    state.store().delete_tag(TagId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
