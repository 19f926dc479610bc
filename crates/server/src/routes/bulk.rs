//! Bulk actions: one change applied to many tickets, chosen by id or by a
//! views-language query. Each ticket changes in its own transaction at its
//! current version (they share group commits), so one refused ticket never
//! holds back the others; the answer lists what changed and why anything
//! did not.

use super::tickets::parse_view_query;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, double_option};
use axum::Json;
use axum::extract::State;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tierdesk_core::{AgentId, Priority, Status, TagName, TeamId, TicketId, Tier};
use tierdesk_store::{TicketChange, TicketQuery, TicketSort, UpdateSpec};
use utoipa::ToSchema;

/// The most tickets one request may change.
pub const BULK_MAX: usize = 1000;
/// Changes in flight at once: enough to fill a group commit.
const CONCURRENCY: usize = 32;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// The tickets to change (at most 1,000); or use `query`.
    #[serde(default)]
    pub ids: Vec<i64>,
    /// A views-language query selecting the tickets (at most 1,000 are changed, oldest first).
    pub query: Option<String>,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub tier: Option<Tier>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub team_id: Option<Option<TeamId>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub assignee_id: Option<Option<AgentId>>,
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub add_tags: Vec<TagName>,
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub remove_tags: Vec<TagName>,
    /// An internal note added to every changed ticket.
    pub note: Option<String>,
    /// Optional: ticket id → the version the agent saw. A ticket that has
    /// changed since is reported as a `version_conflict` and left alone;
    /// tickets not listed change at their current version.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub versions: std::collections::BTreeMap<i64, i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkChanged {
    pub id: TicketId,
    /// The ticket's version after the change.
    pub version: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkFailure {
    pub id: TicketId,
    pub problem: Problem,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResult {
    pub changed: Vec<BulkChanged>,
    pub failed: Vec<BulkFailure>,
}

#[utoipa::path(
    post, path = "/api/v1/tickets/bulk", tag = "tickets",
    request_body = BulkRequest,
    responses(
        (status = 200, description = "Per ticket: changed, or the problem that stopped it", body = BulkResult),
        (status = 403, body = Problem), (status = 422, body = Problem),
    )
)]
pub async fn bulk(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<BulkRequest>,
) -> ApiResult<Json<BulkResult>> {
    let agent = caller.agent()?;
    let ids = match (&request.query, request.ids.is_empty()) {
        (Some(_), false) => {
            return Err(ApiError::invalid("ids", "send ids or query, not both"));
        }
        (None, true) => {
            return Err(ApiError::invalid("ids", "name the tickets: ids or query"));
        }
        (None, false) => {
            if request.ids.len() > BULK_MAX {
                return Err(ApiError::invalid(
                    "ids",
                    format!(
                        "at most {BULK_MAX} tickets per request, not {}",
                        request.ids.len()
                    ),
                ));
            }
            let mut ids: Vec<TicketId> = request.ids.iter().copied().map(TicketId).collect();
            ids.sort();
            ids.dedup();
            ids
        }
        (Some(text), true) => {
            let query = parse_view_query(text, "query", state.now())?;
            state
                .store()
                .query_tickets(&TicketQuery {
                    query,
                    me: Some(agent.id),
                    sort: TicketSort::Oldest,
                    after: None,
                    limit: BULK_MAX as u32,
                })
                .await?
                .iter()
                .map(|t| t.id)
                .collect()
        }
    };
    let spec = UpdateSpec {
        status: request.status,
        priority: request.priority,
        tier: request.tier,
        team: request.team_id,
        assignee: request.assignee_id,
        add_tags: request.add_tags,
        remove_tags: request.remove_tags,
    };
    let note = request
        .note
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if spec == UpdateSpec::default() && note.is_none() {
        return Err(ApiError::invalid(
            "status",
            "nothing to change: name at least one field or a note",
        ));
    }
    let actor = caller.actor();
    let versions = std::sync::Arc::new(request.versions);
    let outcomes: Vec<(TicketId, ApiResult<i64>)> = futures::stream::iter(ids)
        .map(|id| {
            let (state, spec, note) = (state.clone(), spec.clone(), note.clone());
            let expected = versions.get(&id.0).copied();
            async move {
                let result = async {
                    let store = state.store();
                    // The update and the note are one change: both or neither.
                    let mut steps = Vec::new();
                    if spec != UpdateSpec::default() {
                        steps.push(TicketChange::Update(spec));
                    }
                    if let Some(body) = note {
                        steps.push(TicketChange::InternalNote { body });
                    }
                    let change = store
                        .change_ticket(
                            id,
                            expected,
                            TicketChange::Several(steps),
                            actor,
                            state.now(),
                        )
                        .await?;
                    Ok::<_, ApiError>(change.ticket.version)
                }
                .await;
                (id, result)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut result = BulkResult {
        changed: Vec::new(),
        failed: Vec::new(),
    };
    for (id, outcome) in outcomes {
        match outcome {
            Ok(version) => result.changed.push(BulkChanged { id, version }),
            Err(e) => result.failed.push(BulkFailure {
                id,
                problem: e.problem(),
            }),
        }
    }
    result.changed.sort_by_key(|c| c.id);
    result.failed.sort_by_key(|f| f.id);
    tracing::info!(
        agent = %agent.id,
        changed = result.changed.len(),
        failed = result.failed.len(),
        "bulk change"
    );
    Ok(Json(result))
}
