//! SLA calendars and policies: agents read them, admins change them. An
//! invalid one is a 422 listing every problem with its JSON path.

use super::created;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, PathId};
use crate::views::rfc3339;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tierdesk_core::calendar::CalendarSpec;
use tierdesk_core::ids::{CalendarId, SlaPolicyId};
use tierdesk_core::sla::{SlaPolicy, SlaPolicySpec};
use tierdesk_store::CalendarRecord;
use utoipa::ToSchema;

/// A saved calendar: its definition (as sent) plus `id` and `updated_at`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CalendarView {
    pub id: CalendarId,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub spec: CalendarSpec,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&CalendarRecord> for CalendarView {
    fn from(r: &CalendarRecord) -> Self {
        CalendarView {
            id: r.id,
            spec: r.spec.clone(),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

/// A saved policy: its definition (as sent) plus `id` and `position`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SlaPolicyView {
    pub id: SlaPolicyId,
    /// The first enabled policy (by position) that covers a ticket applies.
    pub position: i64,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub spec: SlaPolicySpec,
}

impl From<&SlaPolicy> for SlaPolicyView {
    fn from(p: &SlaPolicy) -> Self {
        SlaPolicyView {
            id: p.id,
            position: p.position,
            spec: p.spec.clone(),
        }
    }
}

#[utoipa::path(
    get, path = "/api/v1/sla/calendars", tag = "sla",
    responses((status = 200, body = Vec<CalendarView>), (status = 403, body = Problem))
)]
pub async fn list_calendars(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<CalendarView>>> {
    caller.agent()?;
    let calendars = state.store().list_calendars().await?;
    Ok(Json(calendars.iter().map(CalendarView::from).collect()))
}

#[utoipa::path(
    post, path = "/api/v1/sla/calendars", tag = "sla",
    request_body(content = Object, description = "`{name, time_zone, always_open?, hours: {mon: [\"08:00-18:00\"], …}, holidays: [{date, name, yearly?, open?}]}`"),
    responses(
        (status = 201, description = "Saved; `Location` set", body = CalendarView),
        (status = 403, body = Problem),
        (status = 422, description = "Not valid: `errors` lists each problem with its JSON path", body = Problem),
    )
)]
pub async fn create_calendar(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(spec): ApiJson<CalendarSpec>,
) -> ApiResult<Response> {
    caller.admin()?;
    let saved = state.store().create_calendar(spec, state.now()).await?;
    Ok(created(
        &format!("/api/v1/sla/calendars/{}", saved.id),
        None,
        CalendarView::from(&saved),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/sla/calendars/{id}", tag = "sla",
    params(("id" = i64, Path)),
    responses((status = 200, body = CalendarView), (status = 404, body = Problem))
)]
pub async fn get_calendar(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<CalendarView>> {
    caller.agent()?;
    let calendar = state
        .store()
        .calendar(CalendarId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("calendar {id} not found")))?;
    Ok(Json(CalendarView::from(&calendar)))
}

#[utoipa::path(
    put, path = "/api/v1/sla/calendars/{id}", tag = "sla",
    params(("id" = i64, Path)),
    request_body(content = Object, description = "The whole calendar, as for create"),
    responses(
        (status = 200, body = CalendarView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem),
    )
)]
pub async fn replace_calendar(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(spec): ApiJson<CalendarSpec>,
) -> ApiResult<Json<CalendarView>> {
    caller.admin()?;
    let saved = state
        .store()
        .update_calendar(CalendarId(id), spec, state.now())
        .await?;
    Ok(Json(CalendarView::from(&saved)))
}

#[utoipa::path(
    delete, path = "/api/v1/sla/calendars/{id}", tag = "sla",
    params(("id" = i64, Path)),
    responses(
        (status = 204), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "`in_use`: a policy counts in it", body = Problem),
    )
)]
pub async fn delete_calendar(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    caller.admin()?;
    state
        .store()
        .delete_calendar(CalendarId(id), state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/api/v1/sla/policies", tag = "sla",
    responses((status = 200, description = "Every policy, in evaluation order", body = Vec<SlaPolicyView>), (status = 403, body = Problem))
)]
pub async fn list_policies(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<SlaPolicyView>>> {
    caller.agent()?;
    let policies = state.store().list_sla_policies().await?;
    Ok(Json(policies.iter().map(SlaPolicyView::from).collect()))
}

#[utoipa::path(
    post, path = "/api/v1/sla/policies", tag = "sla",
    request_body(content = Object, description = "`{name, enabled?, applies_to: {priorities, tiers, plans, channels}, calendar_id?, targets: {first_response?, next_response?, resolution?}, tiers: {\"2\": {…}}, pause_when?, warning_percent?}`; durations like `30m`, `4h`, `1h30m`, `45s`"),
    responses(
        (status = 201, description = "Saved after the last policy; `Location` set", body = SlaPolicyView),
        (status = 403, body = Problem),
        (status = 422, description = "Not valid: `errors` lists each problem with its JSON path", body = Problem),
    )
)]
pub async fn create_policy(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(spec): ApiJson<SlaPolicySpec>,
) -> ApiResult<Response> {
    caller.admin()?;
    let saved = state.store().create_sla_policy(spec, state.now()).await?;
    Ok(created(
        &format!("/api/v1/sla/policies/{}", saved.id),
        None,
        SlaPolicyView::from(&saved),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/sla/policies/{id}", tag = "sla",
    params(("id" = i64, Path)),
    responses((status = 200, body = SlaPolicyView), (status = 404, body = Problem))
)]
pub async fn get_policy(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<SlaPolicyView>> {
    caller.agent()?;
    let policy = state
        .store()
        .sla_policy(SlaPolicyId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("SLA policy {id} not found")))?;
    Ok(Json(SlaPolicyView::from(&policy)))
}

#[utoipa::path(
    put, path = "/api/v1/sla/policies/{id}", tag = "sla",
    params(("id" = i64, Path)),
    request_body(content = Object, description = "The whole policy, as for create; its position stays"),
    responses(
        (status = 200, body = SlaPolicyView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem),
    )
)]
pub async fn replace_policy(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(spec): ApiJson<SlaPolicySpec>,
) -> ApiResult<Json<SlaPolicyView>> {
    caller.admin()?;
    let saved = state
        .store()
        .update_sla_policy(SlaPolicyId(id), spec, state.now())
        .await?;
    Ok(Json(SlaPolicyView::from(&saved)))
}

#[utoipa::path(
    delete, path = "/api/v1/sla/policies/{id}", tag = "sla",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem))
)]
pub async fn delete_policy(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    caller.admin()?;
    state
        .store()
        .delete_sla_policy(SlaPolicyId(id), state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReorderPoliciesRequest {
    /// Every policy's id, in the order they should be tried.
    pub order: Vec<SlaPolicyId>,
}

#[utoipa::path(
    post, path = "/api/v1/sla/policies/reorder", tag = "sla",
    request_body = ReorderPoliciesRequest,
    responses(
        (status = 200, description = "Every policy, in the new order", body = Vec<SlaPolicyView>),
        (status = 403, body = Problem), (status = 422, body = Problem),
    )
)]
pub async fn reorder_policies(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<ReorderPoliciesRequest>,
) -> ApiResult<Json<Vec<SlaPolicyView>>> {
    caller.admin()?;
    let policies = state
        .store()
        .reorder_sla_policies(&request.order, state.now())
        .await?;
    Ok(Json(policies.iter().map(SlaPolicyView::from).collect()))
}
