//! Automation rules: agents read them, admins change them, anyone on the
//! desk can try them against a ticket without changing anything.

use super::created;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, PathId, parse_json};
use crate::views::{EventView, TicketView, rfc3339};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tierdesk_core::rules::{Action, Condition, Field, NotifyTarget, Op, RuleError, RuleSpec};
use tierdesk_core::{AgentId, EventKind, OrganisationId, RuleId, TeamId, TicketId};
use tierdesk_store::rules::CANDIDATE_ID;
use tierdesk_store::{RuleCandidate, RuleRecord, StoredEvent};
use utoipa::ToSchema;

/// A saved rule: its definition (as sent to create it) plus identity and order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuleView {
    pub id: RuleId,
    /// Rules run in increasing position.
    pub position: i64,
    #[serde(flatten)]
    pub spec: RuleSpec,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub updated_by: Option<AgentId>,
}

impl From<&RuleRecord> for RuleView {
    fn from(r: &RuleRecord) -> Self {
        RuleView {
            id: r.rule.id,
            position: r.rule.position,
            spec: r.rule.spec.clone(),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            updated_by: r.updated_by,
        }
    }
}

/// A timeline for the caller, with rule names for agents.
pub(crate) async fn timeline(
    state: &AppState,
    events: &[StoredEvent],
    for_customer: bool,
) -> ApiResult<Vec<EventView>> {
    let mut views = EventView::list(events, for_customer);
    if !for_customer {
        let ids = EventView::rule_ids(&views);
        if !ids.is_empty() {
            let names = state.store().rule_names(&ids).await?;
            EventView::name_rules(&mut views, &names);
        }
    }
    Ok(views)
}

fn problem(path: String, message: impl Into<String>) -> RuleError {
    RuleError {
        path,
        message: message.into(),
    }
}

/// Validation beyond the spec itself: the teams, agents and organisations
/// a rule names must exist. Every problem is reported, with its path.
async fn check(state: &AppState, spec: &RuleSpec) -> ApiResult<()> {
    let mut errors = spec.validate().err().unwrap_or_default();
    let store = state.store();
    for (i, action) in spec.actions.iter().enumerate() {
        match action {
            Action::SetTeam {
                team_id: Some(team),
            } if store.team(*team).await?.is_none() => {
                errors.push(problem(
                    format!("actions[{i}].team_id"),
                    format!("no team with id {team}"),
                ));
            }
            Action::SetAssignee {
                agent_id: Some(agent),
            }
            | Action::Notify {
                to: NotifyTarget::Agent { agent_id: agent },
                ..
            } => {
                let path = match action {
                    Action::Notify { .. } => format!("actions[{i}].to.agent_id"),
                    _ => format!("actions[{i}].agent_id"),
                };
                match store.agent(*agent).await? {
                    None => errors.push(problem(path, format!("no agent with id {agent}"))),
                    Some(a) if !a.active => {
                        errors.push(problem(path, format!("agent {agent} is deactivated")));
                    }
                    Some(_) => {}
                }
            }
            _ => {}
        }
    }
    for (list, conditions) in [("all", &spec.conditions.all), ("any", &spec.conditions.any)] {
        for (i, condition) in conditions.iter().enumerate() {
            if let Some(message) = missing_reference(state, condition).await? {
                errors.push(problem(format!("conditions.{list}[{i}].value"), message));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_rule(&errors))
    }
}

async fn missing_reference(state: &AppState, c: &Condition) -> ApiResult<Option<String>> {
    if !matches!(c.op, Op::Is | Op::IsNot) {
        return Ok(None);
    }
    let Some(id) = c.value.as_i64() else {
        return Ok(None);
    };
    let store = state.store();
    let exists = match c.field {
        Field::Team => store.team(TeamId(id)).await?.is_some(),
        Field::Assignee => store.agent(AgentId(id)).await?.is_some(),
        Field::Organisation => store.organisation(OrganisationId(id)).await?.is_some(),
        _ => return Ok(None),
    };
    Ok((!exists).then(|| format!("no {:?} with id {id}", c.field).to_lowercase()))
}

#[utoipa::path(
    get, path = "/api/v1/rules", tag = "rules",
    responses((status = 200, description = "Every rule, in evaluation order", body = Vec<RuleView>), (status = 403, body = Problem))
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<RuleView>>> {
    caller.agent()?;
    let rules = state.store().list_rules().await?;
    Ok(Json(rules.iter().map(RuleView::from).collect()))
}

#[utoipa::path(
    post, path = "/api/v1/rules", tag = "rules",
    request_body = RuleSpec,
    responses(
        (status = 201, description = "Saved after the last rule; `Location` set", body = RuleView),
        (status = 403, body = Problem),
        (status = 422, description = "Not valid: `errors` lists each problem with its JSON path", body = Problem),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> ApiResult<Response> {
    let admin = caller.admin()?.id;
    check(&state, &spec).await?;
    let saved = state
        .store()
        .create_rule(spec, Some(admin), state.now())
        .await?;
    Ok(created(
        &format!("/api/v1/rules/{}", saved.rule.id),
        None,
        RuleView::from(&saved),
    ))
}

async fn saved(state: &AppState, id: i64) -> ApiResult<RuleRecord> {
    state
        .store()
        .rule(RuleId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("rule {id} not found")))
}

#[utoipa::path(
    get, path = "/api/v1/rules/{id}", tag = "rules",
    params(("id" = i64, Path)),
    responses((status = 200, body = RuleView), (status = 404, body = Problem))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<RuleView>> {
    caller.agent()?;
    Ok(Json(RuleView::from(&saved(&state, id).await?)))
}

#[utoipa::path(
    put, path = "/api/v1/rules/{id}", tag = "rules",
    params(("id" = i64, Path)), request_body = RuleSpec,
    responses(
        (status = 200, description = "Replaced; the position stays", body = RuleView),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem),
    )
)]
pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> ApiResult<Json<RuleView>> {
    let admin = caller.admin()?.id;
    check(&state, &spec).await?;
    let saved = state
        .store()
        .update_rule(RuleId(id), spec, Some(admin), state.now())
        .await?;
    Ok(Json(RuleView::from(&saved)))
}

#[utoipa::path(
    patch, path = "/api/v1/rules/{id}", tag = "rules",
    params(("id" = i64, Path)),
    request_body(content = Object, description = "Any top-level fields of a rule (`name`, `enabled`, `when`, `conditions`, `actions`, `stop`); each replaces the saved one"),
    responses(
        (status = 200, body = RuleView),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(patch): ApiJson<Map<String, Value>>,
) -> ApiResult<Json<RuleView>> {
    let admin = caller.admin()?.id;
    let current = saved(&state, id).await?;
    let mut merged = match serde_json::to_value(&current.rule.spec) {
        Ok(Value::Object(map)) => map,
        _ => return Err(ApiError::internal()),
    };
    merged.extend(patch);
    // Parsed like a body, so shape errors name their path too.
    let bytes = serde_json::to_vec(&merged).map_err(|_| ApiError::internal())?;
    let spec: RuleSpec = parse_json(&bytes)?;
    check(&state, &spec).await?;
    let saved = state
        .store()
        .update_rule(RuleId(id), spec, Some(admin), state.now())
        .await?;
    Ok(Json(RuleView::from(&saved)))
}

#[utoipa::path(
    delete, path = "/api/v1/rules/{id}", tag = "rules",
    params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted; timelines keep its name"), (status = 403, body = Problem), (status = 404, body = Problem))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    let admin = caller.admin()?.id;
    state
        .store()
        .delete_rule(RuleId(id), Some(admin), state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReorderRequest {
    /// Every rule's id, in the order they should run.
    pub order: Vec<RuleId>,
}

#[utoipa::path(
    post, path = "/api/v1/rules/reorder", tag = "rules",
    request_body = ReorderRequest,
    responses(
        (status = 200, description = "Every rule, in the new order", body = Vec<RuleView>),
        (status = 403, body = Problem), (status = 422, body = Problem),
    )
)]
pub async fn reorder(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<ReorderRequest>,
) -> ApiResult<Json<Vec<RuleView>>> {
    let admin = caller.admin()?.id;
    let rules = state
        .store()
        .reorder_rules(&request.order, Some(admin), state.now())
        .await?;
    Ok(Json(rules.iter().map(RuleView::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    pub ticket_id: TicketId,
    /// An unsaved rule to try as well: after the saved rules, or in place
    /// of `replaces`. It runs even when it says `enabled: false`.
    pub rule: Option<RuleSpec>,
    /// The saved rule `rule` stands in for (same position).
    pub replaces: Option<RuleId>,
}

/// One rule that matched, and what it would change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MatchView {
    /// `null` for the unsaved rule of the request.
    pub rule_id: Option<RuleId>,
    pub name: String,
    pub changes: Vec<EventKind>,
    /// Actions that could not apply, and why.
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SideEffectView {
    pub rule_id: Option<RuleId>,
    pub action: Action,
}

/// A dry run: the ticket's opening replayed through the rules, as of when
/// it was opened. Nothing is written.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TestResult {
    pub ticket_id: TicketId,
    /// Rules that matched, in the order they ran.
    pub matched: Vec<MatchView>,
    /// Notifications and webhooks that would be sent.
    pub side_effects: Vec<SideEffectView>,
    /// The ticket as opened, before rules.
    pub before: TicketView,
    /// The ticket after the rules' changes.
    pub after: TicketView,
}

fn shown_id(id: RuleId) -> Option<RuleId> {
    (id != CANDIDATE_ID).then_some(id)
}

#[utoipa::path(
    post, path = "/api/v1/rules/test", tag = "rules",
    request_body = TestRequest,
    responses(
        (status = 200, body = TestResult),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem),
    )
)]
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<TestRequest>,
) -> ApiResult<Json<TestResult>> {
    caller.agent()?;
    let candidate = match (request.rule, request.replaces) {
        (None, Some(_)) => {
            return Err(ApiError::invalid("replaces", "needs a `rule` to stand in"));
        }
        (None, None) => None,
        (Some(spec), replaces) => {
            // Prefix the rule's problems with where it sits in this request.
            check(&state, &spec).await.map_err(|mut e| {
                for problem in &mut e.errors {
                    problem.field = format!("rule.{}", problem.field);
                }
                e
            })?;
            Some(match replaces {
                Some(id) => RuleCandidate::replacing(&saved(&state, id.0).await?.rule, spec),
                None => RuleCandidate::last(spec),
            })
        }
    };
    let run = state
        .store()
        .dry_run_rules(request.ticket_id, candidate)
        .await
        .map_err(|e| match e {
            tierdesk_store::StoreError::NotFound(_) => {
                ApiError::not_found(format!("ticket {} not found", request.ticket_id))
            }
            other => other.into(),
        })?;
    Ok(Json(TestResult {
        ticket_id: request.ticket_id,
        matched: run
            .firings
            .iter()
            .map(|f| MatchView {
                rule_id: shown_id(f.rule),
                name: f.name.clone(),
                changes: f.events.iter().map(|e| e.kind.clone()).collect(),
                skipped: f.skipped.clone(),
            })
            .collect(),
        side_effects: run
            .side_effects
            .iter()
            .map(|s| SideEffectView {
                rule_id: shown_id(s.rule),
                action: s.action.clone(),
            })
            .collect(),
        before: TicketView::from(&run.before),
        after: TicketView::from(&run.after),
    }))
}
