//! The state of the job queue, for admins: is deferred work keeping up?

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::views::rfc3339;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use tierdesk_core::Timestamp;
use tierdesk_store::JobKindSummary;
use utoipa::ToSchema;

/// Jobs of one kind (or of all kinds) by state.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct JobCountsView {
    /// `null` in the totals.
    pub kind: Option<String>,
    /// Waiting for their due time or a free worker.
    pub pending: i64,
    /// Pending and already due: the backlog.
    pub due: i64,
    pub running: i64,
    pub done: i64,
    /// Failed for good; kept for inspection.
    pub dead: i64,
    pub cancelled: i64,
    /// The earliest due time of a pending job; when it lies in the past, by
    /// how much the queue is behind.
    #[schema(format = DateTime)]
    pub oldest_due_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobsSummaryView {
    pub totals: JobCountsView,
    /// In kind order.
    pub kinds: Vec<JobCountsView>,
    /// The summary's reference time (what "due" is measured against).
    #[schema(format = DateTime)]
    pub as_of: String,
}

fn counts(summary: &JobKindSummary) -> JobCountsView {
    JobCountsView {
        kind: Some(summary.kind.clone()),
        pending: summary.pending,
        due: summary.due,
        running: summary.running,
        done: summary.done,
        dead: summary.dead,
        cancelled: summary.cancelled,
        oldest_due_at: summary.oldest_due_at.map(rfc3339),
    }
}

fn totals(kinds: &[JobKindSummary]) -> JobCountsView {
    let oldest: Option<Timestamp> = kinds.iter().filter_map(|k| k.oldest_due_at).min();
    JobCountsView {
        kind: None,
        pending: kinds.iter().map(|k| k.pending).sum(),
        due: kinds.iter().map(|k| k.due).sum(),
        running: kinds.iter().map(|k| k.running).sum(),
        done: kinds.iter().map(|k| k.done).sum(),
        dead: kinds.iter().map(|k| k.dead).sum(),
        cancelled: kinds.iter().map(|k| k.cancelled).sum(),
        oldest_due_at: oldest.map(rfc3339),
    }
}

#[utoipa::path(
    get, path = "/api/v1/jobs", tag = "jobs",
    responses((status = 200, body = JobsSummaryView), (status = 403, body = Problem))
)]
pub async fn summary(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<JobsSummaryView>> {
    caller.admin()?;
    let now = state.now();
    let kinds = state.store().job_summary(now).await?;
    Ok(Json(JobsSummaryView {
        totals: totals(&kinds),
        kinds: kinds.iter().map(counts).collect(),
        as_of: rfc3339(now),
    }))
}
