//! Tickets: open, read, list, reply, note, update.

use super::{created, with_etag};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{
    ApiJson, PathId, QueryParams, double_option, encode_cursor, if_match_version,
};
use crate::views::{AnyTicketView, TicketChangeView, TicketDetail, TicketPage, TicketView};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use std::collections::BTreeSet;
use tierdesk_core::query::Query;
use tierdesk_core::{
    AgentId, Channel, ContactId, OrganisationId, Priority, Status, TagName, TeamId, Ticket,
    TicketId, Tier,
};
use tierdesk_store::{
    Requester, TicketChange, TicketDraft, TicketFilter, TicketQuery, TicketSort, UpdateSpec,
};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicketRequest {
    pub subject: String,
    /// The requester's first message.
    pub body: String,
    /// Agents: the requester by email (a contact is created when unknown)…
    pub requester_email: Option<String>,
    pub requester_name: Option<String>,
    /// …or an existing contact. Ignored for customers, who are always the requester.
    pub requester_id: Option<ContactId>,
    /// Default `api` (customers: always `web`).
    pub channel: Option<Channel>,
    /// Default `P3`.
    pub priority: Option<Priority>,
    /// Default 1.
    pub tier: Option<Tier>,
    pub team_id: Option<TeamId>,
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub tags: Vec<TagName>,
}

#[utoipa::path(
    post, path = "/api/v1/tickets", tag = "tickets",
    request_body = CreateTicketRequest,
    responses(
        (status = 201, description = "Created; `Location` and `ETag` set", body = TicketView),
        (status = 401, body = Problem), (status = 422, body = Problem),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateTicketRequest>,
) -> ApiResult<Response> {
    let draft = match caller.customer() {
        // Customers open tickets for themselves; routing is the desk's business.
        Some(contact) => TicketDraft {
            subject: request.subject,
            body: request.body,
            requester: Requester::Id(contact.id),
            channel: Channel::Web,
            priority: Priority::P3,
            tier: Tier::ONE,
            team: None,
            tags: Vec::new(),
        },
        None => {
            let requester = match (request.requester_id, request.requester_email) {
                (Some(id), _) => Requester::Id(id),
                (None, Some(email)) => Requester::Email {
                    email,
                    name: request.requester_name,
                },
                (None, None) => {
                    return Err(ApiError::invalid(
                        "requester_email",
                        "give requester_email or requester_id",
                    ));
                }
            };
            TicketDraft {
                subject: request.subject,
                body: request.body,
                requester,
                channel: request.channel.unwrap_or(Channel::Api),
                priority: request.priority.unwrap_or(Priority::P3),
                tier: request.tier.unwrap_or(Tier::ONE),
                team: request.team_id,
                tags: request.tags,
            }
        }
    };
    let change = state
        .store()
        .create_ticket(draft, caller.actor(), state.now())
        .await?;
    let ticket = &change.ticket;
    Ok(created(
        &ticket_location(ticket.id),
        Some(ticket.version),
        AnyTicketView::new(ticket, caller.customer().is_some()),
    ))
}

fn ticket_location(id: TicketId) -> String {
    format!("/api/v1/tickets/{id}")
}

/// The ticket if the caller may see it. Someone else's ticket is "not
/// found" for a customer, so ids reveal nothing.
pub(crate) async fn visible_ticket(
    state: &AppState,
    caller: &Caller,
    id: TicketId,
) -> ApiResult<Ticket> {
    let ticket = state.store().ticket(id).await?;
    ticket
        .filter(|t| caller.customer().is_none_or(|c| c.id == t.requester))
        .ok_or_else(|| ApiError::not_found(format!("ticket {id} not found")))
}

#[utoipa::path(
    get, path = "/api/v1/tickets/{id}", tag = "tickets",
    params(("id" = i64, Path, description = "Ticket id")),
    responses(
        (status = 200, description = "The ticket and its timeline; `ETag` set. Customers get the portal view and public events only.", body = TicketDetail),
        (status = 404, body = Problem),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Response> {
    let ticket = visible_ticket(&state, &caller, TicketId(id)).await?;
    let events = state.store().ticket_events(ticket.id).await?;
    let for_customer = caller.customer().is_some();
    let mut view = [AnyTicketView::new(&ticket, for_customer)];
    crate::sla::decorate(&state, &mut view).await?;
    let [view] = view;
    let detail = TicketDetail {
        ticket: view,
        events: super::rules::timeline(&state, &events, for_customer).await?,
    };
    Ok(with_etag(ticket.version, Json(detail)))
}

const LIST_PARAMS: &[&str] = &[
    "status",
    "priority",
    "tier",
    "team",
    "assignee",
    "tag",
    "requester",
    "organisation",
    "limit",
    "cursor",
    "q",
    "sort",
];

#[utoipa::path(
    get, path = "/api/v1/tickets", tag = "tickets",
    params(
        ("status" = Option<String>, Query, description = "Comma-separated statuses"),
        ("priority" = Option<String>, Query, description = "Comma-separated priorities"),
        ("tier" = Option<String>, Query, description = "Comma-separated tiers"),
        ("team" = Option<String>, Query, description = "Team id or `none`"),
        ("assignee" = Option<String>, Query, description = "Agent id, `none` or `me`"),
        ("tag" = Option<String>, Query, description = "Repeat or comma-separate; all must match"),
        ("requester" = Option<i64>, Query),
        ("organisation" = Option<i64>, Query),
        ("limit" = Option<u32>, Query, description = "1–200, default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("q" = Option<String>, Query, description = "Agents: a views-language query, e.g. `status:open tier:2 (tag:bug-report OR priority:P1) -tag:spam \"login fails\"`; not combined with the other filters"),
        ("sort" = Option<String>, Query, description = "Agents, with `q`: newest (default), oldest, updated, stale or priority"),
    ),
    responses((status = 200, description = "Newest first unless sorted", body = TicketPage), (status = 422, body = Problem))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> ApiResult<Json<TicketPage>> {
    query.allow_only(LIST_PARAMS)?;
    if query.get("q").is_some() || query.get("sort").is_some() {
        return search(&state, &caller, &query).await.map(Json);
    }
    let mut filter = TicketFilter {
        status: query.parse_list::<Status>("status")?,
        priority: query.parse_list::<Priority>("priority")?,
        tier: query.parse_list::<Tier>("tier")?,
        team: parse_optional_id(&query, "team")?.map(|t| t.map(TeamId)),
        assignee: parse_assignee(&query, &caller)?,
        tags: query
            .list("tag")
            .into_iter()
            .map(|raw| {
                TagName::parse(raw)
                    .map(|t| t.to_string())
                    .map_err(|e| ApiError::invalid("tag", e.to_string()))
            })
            .collect::<ApiResult<_>>()?,
        requester: query.parse::<i64>("requester")?.map(ContactId),
        organisation: query.parse::<i64>("organisation")?.map(OrganisationId),
    };
    let limit = query.limit()?;
    let before = query.cursor()?.map(TicketId);
    if let Some(contact) = caller.customer() {
        // Customers see their own tickets, filtered only by what they can see.
        filter = TicketFilter {
            status: filter.status,
            priority: filter.priority,
            requester: Some(contact.id),
            ..TicketFilter::default()
        };
    }
    let mut tickets = state
        .store()
        .list_tickets(&filter, before, limit.saturating_add(1))
        .await?;
    let next_cursor = next_page(&mut tickets, limit, |t| t.id.0);
    let for_customer = caller.customer().is_some();
    let mut views: Vec<AnyTicketView> = tickets
        .iter()
        .map(|t| AnyTicketView::new(t, for_customer))
        .collect();
    crate::sla::decorate(&state, &mut views).await?;
    Ok(Json(TicketPage {
        tickets: views,
        next_cursor,
    }))
}

/// `GET /api/v1/tickets?q=…&sort=…`: one page of a views-language query.
/// Agents only: text terms search internal notes too.
async fn search(state: &AppState, caller: &Caller, params: &QueryParams) -> ApiResult<TicketPage> {
    let agent = caller.agent()?;
    if let Some(other) = LIST_PARAMS
        .iter()
        .take_while(|p| **p != "limit")
        .find(|p| params.get(p).is_some())
    {
        return Err(ApiError::invalid(
            *other,
            format!("combine {other} with q inside the query (e.g. {other}:…)"),
        ));
    }
    let query = parse_view_query(params.get("q").unwrap_or_default(), "q", state.now())?;
    let sort = match params.get("sort") {
        None => TicketSort::default(),
        Some(raw) => TicketSort::parse(raw).ok_or_else(|| {
            ApiError::invalid("sort", "use newest, oldest, updated, stale or priority")
        })?,
    };
    let limit = params.limit()?;
    let mut tickets = state
        .store()
        .query_tickets(&TicketQuery {
            query,
            me: Some(agent.id),
            sort,
            after: params.cursor()?.map(TicketId),
            limit: limit.saturating_add(1),
        })
        .await?;
    let next_cursor = next_page(&mut tickets, limit, |t| t.id.0);
    let mut views: Vec<AnyTicketView> = tickets
        .iter()
        .map(|t| AnyTicketView::new(t, false))
        .collect();
    crate::sla::decorate(state, &mut views).await?;
    Ok(TicketPage {
        tickets: views,
        next_cursor,
    })
}

/// Parses a views-language query; errors name the field and the position.
pub(crate) fn parse_view_query(
    text: &str,
    field: &str,
    now: tierdesk_core::Timestamp,
) -> ApiResult<Query> {
    Query::parse(text, now).map_err(|e| ApiError::invalid(field.to_string(), e.to_string()))
}

/// Trims the extra row fetched to detect another page and returns its cursor.
pub(crate) fn next_page<T>(
    rows: &mut Vec<T>,
    limit: u32,
    id: impl Fn(&T) -> i64,
) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|row| encode_cursor(id(row)))
    } else {
        None
    }
}

/// `none` → `Some(None)`, a number → `Some(Some(n))`, absent → `None`.
fn parse_optional_id(query: &QueryParams, name: &str) -> ApiResult<Option<Option<i64>>> {
    match query.get(name) {
        None => Ok(None),
        Some(raw) if raw.eq_ignore_ascii_case("none") => Ok(Some(None)),
        Some(raw) => raw
            .parse::<i64>()
            .map(|id| Some(Some(id)))
            .map_err(|_| ApiError::invalid(name, format!("{raw:?} is not an id or `none`"))),
    }
}

fn parse_assignee(query: &QueryParams, caller: &Caller) -> ApiResult<Option<Option<AgentId>>> {
    if query
        .get("assignee")
        .is_some_and(|v| v.eq_ignore_ascii_case("me"))
    {
        // Customers have no queue; their filter is replaced below anyway.
        return Ok(caller.agent().ok().map(|agent| Some(agent.id)));
    }
    Ok(parse_optional_id(query, "assignee")?.map(|a| a.map(AgentId)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyRequest {
    pub body: String,
    /// Agents: the status to set with the reply.
    pub status: Option<Status>,
    /// The version this reply answers; optional (or send `If-Match`).
    pub version: Option<i64>,
    /// Agents (integrations): record the message as coming from the requester.
    #[serde(default)]
    pub as_requester: bool,
}

#[utoipa::path(
    post, path = "/api/v1/tickets/{id}/replies", tag = "tickets",
    params(("id" = i64, Path), ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\"")),
    request_body = ReplyRequest,
    responses(
        (status = 201, description = "The ticket and the new events. A customer message on a closed ticket opens a follow-up ticket, which is returned (and named by `Location`).", body = TicketChangeView),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
    )
)]
pub async fn reply(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    headers: HeaderMap,
    ApiJson(request): ApiJson<ReplyRequest>,
) -> ApiResult<Response> {
    let id = TicketId(id);
    let expected = base_version(&headers, request.version)?;
    let change = match caller.customer() {
        Some(contact) => {
            if request.status.is_some() || request.as_requester {
                return Err(ApiError::forbidden(
                    "customers cannot set the status or reply on someone's behalf",
                ));
            }
            visible_ticket(&state, &caller, id).await?;
            TicketChange::CustomerMessage {
                author: contact.id,
                body: request.body,
            }
        }
        None if request.as_requester => {
            if request.status.is_some() {
                return Err(ApiError::invalid(
                    "status",
                    "cannot be set on a message from the requester",
                ));
            }
            let ticket = visible_ticket(&state, &caller, id).await?;
            TicketChange::CustomerMessage {
                author: ticket.requester,
                body: request.body,
            }
        }
        None => TicketChange::AgentReply {
            body: request.body,
            status: request.status,
        },
    };
    record(&state, &caller, id, expected, change).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    pub body: String,
    pub version: Option<i64>,
}

#[utoipa::path(
    post, path = "/api/v1/tickets/{id}/notes", tag = "tickets",
    params(("id" = i64, Path), ("If-Match" = Option<String>, Header)),
    request_body = NoteRequest,
    responses((status = 201, body = TicketChangeView), (status = 403, body = Problem), (status = 404, body = Problem))
)]
pub async fn note(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    headers: HeaderMap,
    ApiJson(request): ApiJson<NoteRequest>,
) -> ApiResult<Response> {
    caller.agent()?;
    let expected = base_version(&headers, request.version)?;
    let change = TicketChange::InternalNote { body: request.body };
    record(&state, &caller, TicketId(id), expected, change).await
}

/// Applies a message or note and answers 201 with the ticket it landed on.
pub(crate) async fn record(
    state: &AppState,
    caller: &Caller,
    id: TicketId,
    expected: Option<i64>,
    change: TicketChange,
) -> ApiResult<Response> {
    let change = state
        .store()
        .change_ticket(id, expected, change, caller.actor(), state.now())
        .await?;
    let for_customer = caller.customer().is_some();
    let ticket = &change.ticket;
    Ok(created(
        &ticket_location(ticket.id),
        Some(ticket.version),
        TicketChangeView {
            ticket: AnyTicketView::new(ticket, for_customer),
            events: super::rules::timeline(state, &change.events, for_customer).await?,
        },
    ))
}

/// `If-Match` wins; a body `version` is the fallback for clients that cannot
/// set headers. Both given and different is a contradiction, not a guess.
pub(crate) fn base_version(
    headers: &HeaderMap,
    body_version: Option<i64>,
) -> ApiResult<Option<i64>> {
    match (if_match_version(headers)?, body_version) {
        (Some(header), Some(body)) if header != body => Err(ApiError::invalid(
            "version",
            format!("If-Match says {header} but the body says {body}"),
        )),
        (Some(v), _) | (None, Some(v)) => Ok(Some(v)),
        (None, None) => Ok(None),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTicketRequest {
    /// The version being changed, unless sent as `If-Match`.
    pub version: Option<i64>,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub tier: Option<Tier>,
    /// A team id, or `null` to clear.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub team_id: Option<Option<TeamId>>,
    /// An agent id, or `null` to unassign.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub assignee_id: Option<Option<AgentId>>,
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub add_tags: Vec<TagName>,
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub remove_tags: Vec<TagName>,
    /// Replaces the whole tag set; not combined with add_tags/remove_tags.
    #[schema(value_type = Option<Vec<String>>)]
    pub tags: Option<Vec<TagName>>,
}

#[utoipa::path(
    patch, path = "/api/v1/tickets/{id}", tag = "tickets",
    params(("id" = i64, Path), ("If-Match" = Option<String>, Header, description = "Required unless the body has `version`")),
    request_body = UpdateTicketRequest,
    responses(
        (status = 200, description = "The ticket now; `ETag` set", body = TicketView),
        (status = 409, description = "Stale version; see `current_version`", body = Problem),
        (status = 422, body = Problem), (status = 428, body = Problem),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    headers: HeaderMap,
    ApiJson(request): ApiJson<UpdateTicketRequest>,
) -> ApiResult<Response> {
    caller.agent()?;
    let id = TicketId(id);
    let expected =
        base_version(&headers, request.version)?.ok_or_else(ApiError::precondition_required)?;
    let (add_tags, remove_tags) = match request.tags {
        None => (request.add_tags, request.remove_tags),
        Some(_) if !request.add_tags.is_empty() || !request.remove_tags.is_empty() => {
            return Err(ApiError::invalid(
                "tags",
                "send either tags (the whole set) or add_tags/remove_tags, not both",
            ));
        }
        Some(wanted) => {
            let ticket = visible_ticket(&state, &caller, id).await?;
            if ticket.version != expected {
                return Err(tierdesk_store::StoreError::Conflict {
                    expected,
                    current: ticket.version,
                }
                .into());
            }
            tag_diff(&ticket.tags, wanted)
        }
    };
    let spec = UpdateSpec {
        status: request.status,
        priority: request.priority,
        tier: request.tier,
        team: request.team_id,
        assignee: request.assignee_id,
        add_tags,
        remove_tags,
    };
    let change = state
        .store()
        .change_ticket(
            id,
            Some(expected),
            TicketChange::Update(spec),
            caller.actor(),
            state.now(),
        )
        .await?;
    Ok(with_etag(
        change.ticket.version,
        Json(TicketView::from(&change.ticket)),
    ))
}

/// What to add and remove to turn `current` into `wanted`.
fn tag_diff(current: &BTreeSet<String>, wanted: Vec<TagName>) -> (Vec<TagName>, Vec<TagName>) {
    let wanted: BTreeSet<TagName> = wanted.into_iter().collect();
    let add = wanted
        .iter()
        .filter(|t| !current.contains(t.as_str()))
        .cloned()
        .collect();
    let remove = current
        .iter()
        .filter(|t| !wanted.iter().any(|w| w.as_str() == t.as_str()))
        .filter_map(|t| TagName::parse(t).ok())
        .collect();
    (add, remove)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(names: &[&str]) -> Vec<TagName> {
        names
            .iter()
            .filter_map(|n| TagName::parse(n).ok())
            .collect()
    }

    #[test]
    fn replacing_tags_computes_the_difference() {
        let current: BTreeSet<String> = ["vpn", "billing"].iter().map(|s| s.to_string()).collect();
        let (add, remove) = tag_diff(&current, tags(&["vpn", "outage", "outage"]));
        assert_eq!(add, tags(&["outage"]));
        assert_eq!(remove, tags(&["billing"]));
    }

    #[test]
    fn pages_trim_the_probe_row() {
        let mut rows = vec![9, 8, 7];
        assert_eq!(next_page(&mut rows, 2, |r| *r), Some(encode_cursor(8)));
        assert_eq!(rows, vec![9, 8]);
        let mut short = vec![3];
        assert_eq!(next_page(&mut short, 2, |r| *r), None);
    }
}
