//! An agent's own notifications: listed unread first, marked read one by
//! one or all at once. They are also pushed live on the event stream
//! (`event: notification`, to the agent concerned only). Email delivery
//! comes with the email channel; nothing is sent yet.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{PathId, QueryParams};
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::Serialize;
use tierdesk_core::{EventId, TicketId, Timestamp};
use tierdesk_store::{Notification, NotificationCursor};
use utoipa::{OpenApi, ToSchema};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/notifications", get(list))
        .route("/notifications/read-all", post(read_all))
        .route("/notifications/{id}/read", post(read))
}

#[derive(OpenApi)]
#[openapi(
    paths(list, read, read_all),
    components(schemas(NotificationView)),
    tags((name = "notifications", description = "Your notifications: assigned, escalated to your team, SLA warnings and breaches, mentions, escalated tickets solved"))
)]
pub(crate) struct NotificationsDoc;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: i64,
    /// `assigned`, `escalated_to_team`, `sla_warning`, `sla_breached`, `mentioned`, `escalated_ticket_solved`.
    pub kind: String,
    pub ticket_id: TicketId,
    /// The timeline event that caused it.
    pub event_id: EventId,
    pub text: String,
    pub created_at: Timestamp,
    pub read_at: Option<Timestamp>,
}

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> Self {
        NotificationView {
            id: n.id,
            kind: n.kind.as_str().to_string(),
            ticket_id: n.ticket,
            event_id: n.event,
            text: n.text,
            created_at: n.created_at,
            read_at: n.read_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotificationPageView {
    pub notifications: Vec<NotificationView>,
    /// How many of yours are unread in all.
    pub unread: u64,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/notifications", tag = "notifications",
    params(("limit" = Option<u32>, Query, description = "1–200, default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "Yours only: unread first, newest first within each", body = NotificationPageView), (status = 403, body = Problem), (status = 422, body = Problem))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> ApiResult<Json<NotificationPageView>> {
    let me = caller.agent()?.id;
    query.allow_only(&["limit", "cursor"])?;
    let limit = query.limit()?;
    let cursor = query
        .get("cursor")
        .map(|raw| {
            NotificationCursor::parse(raw).ok_or_else(|| {
                ApiError::invalid("cursor", "is not a cursor this server handed out")
            })
        })
        .transpose()?;
    let page = state.store().list_notifications(me, cursor, limit).await?;
    Ok(Json(NotificationPageView {
        notifications: page.notifications.into_iter().map(Into::into).collect(),
        unread: state.store().unread_notification_count(me).await?,
        next_cursor: page.next.map(NotificationCursor::encode),
    }))
}

#[utoipa::path(
    post, path = "/api/v1/notifications/{id}/read", tag = "notifications",
    params(("id" = i64, Path)),
    responses((status = 200, body = NotificationView), (status = 403, body = Problem), (status = 404, description = "Not one of yours", body = Problem))
)]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<NotificationView>> {
    let me = caller.agent()?.id;
    let n = state
        .store()
        .mark_notification_read(me, id, state.now())
        .await?;
    Ok(Json(n.into()))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReadAllView {
    /// How many were unread.
    pub marked: u64,
}

#[utoipa::path(
    post, path = "/api/v1/notifications/read-all", tag = "notifications",
    responses((status = 200, body = ReadAllView), (status = 403, body = Problem))
)]
pub async fn read_all(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<ReadAllView>> {
    let me = caller.agent()?.id;
    let marked = state
        .store()
        .mark_all_notifications_read(me, state.now())
        .await?;
    Ok(Json(ReadAllView { marked }))
}
