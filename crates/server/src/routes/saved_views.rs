//! Saved views: the inbox sidebar. Shared views are everyone's and only
//! admins change them; personal views belong to one agent and are invisible
//! (404) to the others. Every listing carries each view's live count.

use super::created;
use super::tickets::{next_page, parse_view_query};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, PathId, QueryParams};
use crate::views::{AnyTicketView, TicketPage};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tierdesk_core::{AgentId, TicketId};
use tierdesk_store::{NewView, SavedView, TicketQuery, TicketSort, VIEW_COUNT_CAP, ViewPatch};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ViewView {
    pub id: i64,
    pub name: String,
    /// The views-language query.
    pub query: String,
    /// newest, oldest, updated, stale or priority.
    pub sort: String,
    /// True for a view every agent sees.
    pub shared: bool,
    pub owner: Option<AgentId>,
    pub position: i64,
    /// Tickets matching right now. A view with free text stops counting
    /// at 1,000 (see `count_capped`).
    pub count: u64,
    /// True when the view holds more than `count` tickets: counting a
    /// view with free text stops at 1,000 (shown as "1000+").
    pub count_capped: bool,
}

fn sort_name(sort: TicketSort) -> String {
    serde_json::to_value(sort)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn parse_sort(raw: &str) -> ApiResult<TicketSort> {
    TicketSort::parse(raw)
        .ok_or_else(|| ApiError::invalid("sort", "use newest, oldest, updated, stale or priority"))
}

async fn with_count(state: &AppState, me: AgentId, view: SavedView) -> ApiResult<ViewView> {
    let query = parse_view_query(&view.query, "query", state.now())?;
    let count = state
        .store()
        .count_view(&query, Some(me), VIEW_COUNT_CAP)
        .await?;
    Ok(ViewView {
        id: view.id,
        shared: view.owner.is_none(),
        owner: view.owner,
        sort: sort_name(view.sort),
        name: view.name,
        query: view.query,
        position: view.position,
        count: count.count,
        count_capped: count.capped,
    })
}

/// The view if the caller may see it; someone else's personal view is "not found".
pub(crate) async fn visible_view(state: &AppState, me: AgentId, id: i64) -> ApiResult<SavedView> {
    match state.store().view(id).await? {
        Some(view) if view.owner.is_none() || view.owner == Some(me) => Ok(view),
        _ => Err(ApiError::not_found("view not found")),
    }
}

/// Shared views are changed by admins, personal ones by their owner.
async fn changeable_view(state: &AppState, caller: &Caller, id: i64) -> ApiResult<SavedView> {
    let agent = caller.agent()?;
    let view = visible_view(state, agent.id, id).await?;
    if view.owner.is_none() {
        caller.admin()?;
    }
    Ok(view)
}

#[utoipa::path(
    get, path = "/api/v1/views", tag = "views",
    responses((status = 200, description = "Shared and own views in sidebar order, with live counts", body = Vec<ViewView>), (status = 403, body = Problem))
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<ViewView>>> {
    let me = caller.agent()?.id;
    let mut out = Vec::new();
    for view in state.store().list_views(me).await? {
        out.push(with_count(&state, me, view).await?);
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateViewRequest {
    pub name: String,
    pub query: String,
    /// newest (default), oldest, updated, stale or priority.
    pub sort: Option<String>,
    /// Share with every agent (admins only); otherwise the view is yours.
    #[serde(default)]
    pub shared: bool,
    pub position: Option<i64>,
}

#[utoipa::path(
    post, path = "/api/v1/views", tag = "views",
    request_body = CreateViewRequest,
    responses((status = 201, body = ViewView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateViewRequest>,
) -> ApiResult<Response> {
    let me = caller.agent()?.id;
    if request.shared {
        caller.admin()?;
    }
    // Parse first: the error then carries the position in the query.
    parse_view_query(&request.query, "query", state.now())?;
    let view = state
        .store()
        .create_view(
            NewView {
                name: request.name,
                query: request.query,
                sort: request
                    .sort
                    .as_deref()
                    .map(parse_sort)
                    .transpose()?
                    .unwrap_or_default(),
                owner: (!request.shared).then_some(me),
                position: request.position,
            },
            state.now(),
        )
        .await?;
    let location = format!("/api/v1/views/{}", view.id);
    Ok(created(
        &location,
        None,
        with_count(&state, me, view).await?,
    ))
}

#[utoipa::path(
    get, path = "/api/v1/views/{id}", tag = "views",
    params(("id" = i64, Path)),
    responses((status = 200, body = ViewView), (status = 404, body = Problem))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<ViewView>> {
    let me = caller.agent()?.id;
    let view = visible_view(&state, me, id).await?;
    Ok(Json(with_count(&state, me, view).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateViewRequest {
    pub name: Option<String>,
    pub query: Option<String>,
    pub sort: Option<String>,
    pub position: Option<i64>,
}

#[utoipa::path(
    patch, path = "/api/v1/views/{id}", tag = "views",
    params(("id" = i64, Path)),
    request_body = UpdateViewRequest,
    responses((status = 200, body = ViewView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem))
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(request): ApiJson<UpdateViewRequest>,
) -> ApiResult<Json<ViewView>> {
    changeable_view(&state, &caller, id).await?;
    if let Some(query) = &request.query {
        parse_view_query(query, "query", state.now())?;
    }
    let patch = ViewPatch {
        name: request.name,
        query: request.query,
        sort: request.sort.as_deref().map(parse_sort).transpose()?,
        position: request.position,
    };
    let view = state.store().update_view(id, patch, state.now()).await?;
    Ok(Json(with_count(&state, caller.agent()?.id, view).await?))
}

#[utoipa::path(
    delete, path = "/api/v1/views/{id}", tag = "views",
    params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, body = Problem), (status = 404, body = Problem))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    changeable_view(&state, &caller, id).await?;
    state.store().delete_view(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/api/v1/views/{id}/tickets", tag = "views",
    params(
        ("id" = i64, Path),
        ("limit" = Option<u32>, Query, description = "1–200, default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses((status = 200, description = "In the view's order", body = TicketPage), (status = 404, body = Problem))
)]
pub async fn tickets(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    params: QueryParams,
) -> ApiResult<Json<TicketPage>> {
    params.allow_only(&["limit", "cursor"])?;
    let me = caller.agent()?.id;
    let view = visible_view(&state, me, id).await?;
    let limit = params.limit()?;
    let mut tickets = state
        .store()
        .query_tickets(&TicketQuery {
            query: parse_view_query(&view.query, "query", state.now())?,
            me: Some(me),
            sort: view.sort,
            after: params.cursor()?.map(TicketId),
            limit: limit.saturating_add(1),
        })
        .await?;
    let next_cursor = next_page(&mut tickets, limit, |t| t.id.0);
    let mut views: Vec<AnyTicketView> = tickets
        .iter()
        .map(|t| AnyTicketView::new(t, false))
        .collect();
    crate::sla::decorate(&state, &mut views).await?;
    Ok(Json(TicketPage {
        tickets: views,
        next_cursor,
    }))
}
