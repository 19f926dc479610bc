//! The inbox: saved views with live counts, one page of tickets for the
//! chosen view and search, sorting, keyset pages, and bulk changes.

use super::render::{Shell, page, render};
use super::{AgentForm, AgentSession, WebError, WebResult, encode_component, local_path, path_id};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, QueryParams, decode_cursor};
use crate::routes::bulk::{BulkRequest, bulk as bulk_handler};
use crate::routes::saved_views::{self, visible_view};
use crate::routes::tickets::{next_page, parse_view_query};
use crate::sla::TicketSlaView;
use crate::views::AnyTicketView;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use tierdesk_core::query::{Query, Term};
use tierdesk_core::{
    Agent, AgentId, ContactId, OrganisationId, Priority, Status, TagName, TeamId, Ticket, TicketId,
    Tier,
};
use tierdesk_store::{SavedView, TicketQuery, TicketSort};

pub(crate) const PAGE_SIZE: u32 = 50;

const SORTS: &[(&str, &str)] = &[
    ("newest", "Newest"),
    ("oldest", "Oldest"),
    ("updated", "Recently updated"),
    ("stale", "Waiting longest"),
    ("priority", "Priority"),
];

/// Names for the ids a ticket row shows, fetched once per page.
pub(crate) struct Lookups {
    pub teams: BTreeMap<TeamId, String>,
    pub agents: Vec<Agent>,
    contacts: HashMap<ContactId, String>,
    organisations: HashMap<OrganisationId, String>,
}

impl Lookups {
    pub async fn load(state: &AppState) -> WebResult<Lookups> {
        let store = state.store();
        let teams = store
            .list_teams()
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect();
        let agents = store.list_agents().await.map_err(ApiError::from)?;
        Ok(Lookups {
            teams,
            agents,
            contacts: HashMap::new(),
            organisations: HashMap::new(),
        })
    }

    pub fn agent_name(&self, id: AgentId) -> String {
        self.agents
            .iter()
            .find(|a| a.id == id)
            .map_or_else(|| format!("agent {id}"), |a| a.name.clone())
    }

    pub fn team_name(&self, id: TeamId) -> String {
        self.teams
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("team {id}"))
    }

    pub async fn contact_name(&mut self, state: &AppState, id: ContactId) -> WebResult<String> {
        if let Some(name) = self.contacts.get(&id) {
            return Ok(name.clone());
        }
        let name = match state.store().contact(id).await.map_err(ApiError::from)? {
            Some(c) if !c.name.trim().is_empty() => c.name,
            Some(c) => c.email,
            None => format!("contact {id}"),
        };
        self.contacts.insert(id, name.clone());
        Ok(name)
    }

    pub async fn organisation_name(
        &mut self,
        state: &AppState,
        id: OrganisationId,
    ) -> WebResult<String> {
        if let Some(name) = self.organisations.get(&id) {
            return Ok(name.clone());
        }
        let name = state
            .store()
            .organisation(id)
            .await
            .map_err(ApiError::from)?
            .map_or_else(|| format!("organisation {id}"), |o| o.name);
        self.organisations.insert(id, name.clone());
        Ok(name)
    }
}

/// One line of the ticket table.
#[derive(Debug, Serialize)]
pub(crate) struct Row {
    pub id: i64,
    pub reference: String,
    pub version: i64,
    pub subject: String,
    pub requester: String,
    pub organisation: String,
    pub status: &'static str,
    pub status_label: String,
    pub priority: &'static str,
    pub tier: u8,
    pub team: String,
    pub assignee: String,
    pub tags: Vec<String>,
    pub sla: SlaCell,
}

#[derive(Debug, Serialize, Default)]
pub(crate) struct SlaCell {
    pub text: String,
    /// `breached`, `warning`, `paused`, `ok` or `none`.
    pub class: &'static str,
}

pub(crate) fn status_label(status: Status) -> String {
    match status {
        Status::OnHold => "On hold".to_string(),
        other => {
            let name = other.as_str();
            let mut chars = name.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
    }
}

/// "2h 05m", "3d 4h", "12m".
pub(crate) fn span(ms: i64) -> String {
    let minutes = ms.unsigned_abs() / 60_000;
    let (days, hours, mins) = (minutes / 1440, (minutes / 60) % 24, minutes % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins:02}m")
    } else {
        format!("{mins}m")
    }
}

pub(crate) fn sla_cell(sla: Option<&TicketSlaView>) -> SlaCell {
    let Some(sla) = sla else {
        return SlaCell {
            text: "—".into(),
            class: "none",
        };
    };
    let running = sla
        .targets
        .iter()
        .filter(|t| t.state == "running")
        .min_by_key(|t| t.remaining_business_ms);
    if sla.breached {
        let late = running
            .filter(|t| t.remaining_business_ms < 0)
            .map(|t| format!(" {} ago", span(t.remaining_business_ms)))
            .unwrap_or_default();
        return SlaCell {
            text: format!("Breached{late}"),
            class: "breached",
        };
    }
    match running {
        Some(t) => SlaCell {
            text: format!("{} left", span(t.remaining_business_ms)),
            class: if sla.warning { "warning" } else { "ok" },
        },
        None if sla.paused => SlaCell {
            text: "Paused".into(),
            class: "paused",
        },
        None => SlaCell {
            text: "Met".into(),
            class: "ok",
        },
    }
}

/// Table rows for tickets, with names and SLA time left.
pub(crate) async fn rows(
    state: &AppState,
    lookups: &mut Lookups,
    tickets: &[Ticket],
) -> WebResult<Vec<Row>> {
    let mut views: Vec<AnyTicketView> = tickets
        .iter()
        .map(|t| AnyTicketView::new(t, false))
        .collect();
    crate::sla::decorate(state, &mut views).await?;
    let mut out = Vec::with_capacity(tickets.len());
    for (ticket, view) in tickets.iter().zip(&views) {
        let sla = match view {
            AnyTicketView::Agent(v) => v.sla.as_ref(),
            AnyTicketView::Customer(_) => None,
        };
        out.push(Row {
            id: ticket.id.0,
            reference: ticket.reference().to_string(),
            version: ticket.version,
            subject: ticket.subject.clone(),
            requester: lookups.contact_name(state, ticket.requester).await?,
            organisation: match ticket.organisation {
                Some(id) => lookups.organisation_name(state, id).await?,
                None => String::new(),
            },
            status: ticket.status.as_str(),
            status_label: status_label(ticket.status),
            priority: ticket.priority.as_str(),
            tier: ticket.tier.level(),
            team: ticket
                .team
                .map(|t| lookups.team_name(t))
                .unwrap_or_default(),
            assignee: ticket
                .assignee
                .map(|a| lookups.agent_name(a))
                .unwrap_or_default(),
            tags: ticket.tags.iter().cloned().collect(),
            sla: sla_cell(sla),
        });
    }
    Ok(out)
}

/// What the inbox shows: a view, a search, a sort and a page.
#[derive(Debug, Default, Clone)]
struct Selection {
    view: Option<SavedView>,
    q: String,
    sort: Option<TicketSort>,
    cursor: Option<String>,
}

impl Selection {
    async fn from_params(
        state: &AppState,
        me: AgentId,
        params: &QueryParams,
    ) -> WebResult<Selection> {
        let view = match params.get("view").filter(|v| !v.is_empty()) {
            Some(raw) => Some(visible_view(state, me, super::path_id(raw)?).await?),
            None => None,
        };
        Ok(Selection {
            view,
            q: params.get("q").unwrap_or_default().to_string(),
            sort: params.get("sort").and_then(TicketSort::parse),
            cursor: params
                .get("cursor")
                .filter(|c| !c.is_empty())
                .map(str::to_string),
        })
    }

    fn sort(&self) -> TicketSort {
        self.sort
            .or(self.view.as_ref().map(|v| v.sort))
            .unwrap_or_default()
    }

    /// The view's query and the search, both; a search mistake is the error.
    fn query(&self, state: &AppState) -> Result<Query, ApiError> {
        let mut parts = Vec::new();
        if let Some(view) = &self.view {
            parts.push(parse_view_query(&view.query, "view", state.now())?);
        }
        if !self.q.trim().is_empty() {
            parts.push(parse_view_query(&self.q, "q", state.now())?);
        }
        Ok(Query::And(parts))
    }

    fn url(&self, sort: Option<TicketSort>, cursor: Option<&str>) -> String {
        let mut params = Vec::new();
        if let Some(view) = &self.view {
            params.push(format!("view={}", view.id));
        }
        if !self.q.is_empty() {
            params.push(format!("q={}", encode_component(&self.q)));
        }
        if let Some(sort) = sort {
            params.push(format!("sort={}", sort_key(sort)));
        }
        if let Some(cursor) = cursor {
            params.push(format!("cursor={}", encode_component(cursor)));
        }
        if params.is_empty() {
            "/inbox".to_string()
        } else {
            format!("/inbox?{}", params.join("&"))
        }
    }

    /// Parameters the live script passes back when it asks for a row.
    fn row_params(&self) -> String {
        let mut params = Vec::new();
        if let Some(view) = &self.view {
            params.push(format!("view={}", view.id));
        }
        if !self.q.is_empty() {
            params.push(format!("q={}", encode_component(&self.q)));
        }
        params.join("&")
    }
}

fn sort_key(sort: TicketSort) -> &'static str {
    match sort {
        TicketSort::Newest => "newest",
        TicketSort::Oldest => "oldest",
        TicketSort::Updated => "updated",
        TicketSort::Stale => "stale",
        TicketSort::Priority => "priority",
    }
}

#[derive(Debug, Serialize)]
struct SidebarView {
    id: i64,
    name: String,
    count: u64,
    /// More than `count`: shown as "1000+".
    capped: bool,
    url: String,
    selected: bool,
    shared: bool,
}

/// Options of the routing selects: statuses, priorities, tiers, teams, agents.
pub(crate) fn choices(lookups: &Lookups) -> serde_json::Value {
    json!({
        "statuses": Status::ALL.iter().map(|s| json!({"value": s.as_str(), "label": status_label(*s)})).collect::<Vec<_>>(),
        "priorities": Priority::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        "tiers": Tier::ALL.iter().map(|t| t.level()).collect::<Vec<_>>(),
        "teams": lookups.teams.iter().map(|(id, name)| json!({"id": id.0, "name": name})).collect::<Vec<_>>(),
        "agents": lookups.agents.iter().filter(|a| a.active).map(|a| json!({"id": a.id.0, "name": a.name, "tier": a.tier.level()})).collect::<Vec<_>>(),
    })
}

pub(crate) async fn page_handler(
    State(state): State<AppState>,
    session: AgentSession,
    params: QueryParams,
) -> Response {
    match inbox(&state, &session, &params).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn inbox(
    state: &AppState,
    session: &AgentSession,
    params: &QueryParams,
) -> WebResult<Response> {
    let me = session.agent.id;
    let selection = Selection::from_params(state, me, params).await?;
    let Json(views) = saved_views::list(State(state.clone()), session.caller.clone()).await?;
    let all_count = state
        .store()
        .count_tickets(&Query::And(Vec::new()), Some(me))
        .await
        .map_err(ApiError::from)?;
    let selected_id = selection.view.as_ref().map(|v| v.id);
    let sidebar: Vec<SidebarView> = views
        .into_iter()
        .map(|v| SidebarView {
            url: format!("/inbox?view={}", v.id),
            selected: Some(v.id) == selected_id,
            id: v.id,
            name: v.name,
            count: v.count,
            capped: v.count_capped,
            shared: v.shared,
        })
        .collect();
    let mut lookups = Lookups::load(state).await?;
    let sort = selection.sort();
    let (status, rows, next_url, search_error) = match selection.query(state) {
        Ok(query) => {
            let after = match &selection.cursor {
                Some(c) => Some(TicketId(decode_cursor(c).ok_or_else(|| {
                    WebError::new(
                        StatusCode::BAD_REQUEST,
                        "Bad page",
                        "That page link is not valid; start from the first page.",
                    )
                })?)),
                None => None,
            };
            let mut tickets = state
                .store()
                .query_tickets(&TicketQuery {
                    query,
                    me: Some(me),
                    sort,
                    after,
                    limit: PAGE_SIZE + 1,
                })
                .await
                .map_err(ApiError::from)?;
            let next = next_page(&mut tickets, PAGE_SIZE, |t| t.id.0);
            let rows = rows(state, &mut lookups, &tickets).await?;
            let next_url = next.map(|c| selection.url(selection.sort, Some(&c)));
            (StatusCode::OK, rows, next_url, None)
        }
        Err(e) => {
            let message = e
                .errors
                .first()
                .map_or(e.detail.clone(), |f| f.message.clone());
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Vec::new(),
                None,
                Some(message),
            )
        }
    };
    let sort_links: Vec<_> = SORTS
        .iter()
        .filter_map(|(key, label)| {
            let s = TicketSort::parse(key)?;
            Some(json!({"key": key, "label": label, "url": selection.url(Some(s), None), "selected": s == sort}))
        })
        .collect();
    let title = selection
        .view
        .as_ref()
        .map_or_else(|| "All tickets".to_string(), |v| v.name.clone());
    let back = selection.url(selection.sort, selection.cursor.as_deref());
    Ok(page(
        status,
        "inbox.html",
        json!({
            "shell": Shell::of(session),
            "title": title,
            "views": sidebar,
            "all_count": all_count,
            "all_selected": selected_id.is_none(),
            "view_id": selected_id,
            "view_query": selection.view.as_ref().map(|v| v.query.clone()),
            "q": selection.q,
            "sort": sort_key(sort),
            "sort_links": sort_links,
            "rows": rows,
            "next_url": next_url,
            "first_url": selection.cursor.as_ref().map(|_| selection.url(selection.sort, None)),
            "search_error": search_error,
            "notice": params.get("notice"),
            "back": back,
            "row_params": selection.row_params(),
            "choices": choices(&lookups),
        }),
    ))
}

/// One table row for the live script: 200 with the `<tr>` while the ticket
/// is in the view (and search), 204 when it is not (any more).
pub(crate) async fn row(
    State(state): State<AppState>,
    session: AgentSession,
    Path(raw): Path<String>,
    params: QueryParams,
) -> Response {
    let result: WebResult<Response> = async {
        let id = TicketId(path_id(&raw)?);
        let selection = Selection::from_params(&state, session.agent.id, &params).await?;
        let query = selection.query(&state)?;
        let query = Query::And(vec![query, Query::Term(Term::Reference(id))]);
        let tickets = state
            .store()
            .query_tickets(&TicketQuery {
                query,
                me: Some(session.agent.id),
                sort: TicketSort::Newest,
                after: None,
                limit: 1,
            })
            .await
            .map_err(ApiError::from)?;
        if tickets.is_empty() {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        let mut lookups = Lookups::load(&state).await?;
        let rows = rows(&state, &mut lookups, &tickets).await?;
        let html = render("row.html", json!({ "rows": rows }))?;
        Ok(Html(html).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Live counts for the sidebar: `{"all": n, "views": {"id": n}, "capped":
/// ["id"]}`, the last listing the views that hold more than their count.
pub(crate) async fn counts(State(state): State<AppState>, session: AgentSession) -> Response {
    let result: WebResult<Response> = async {
        let me = session.agent.id;
        let Json(views) = saved_views::list(State(state.clone()), session.caller.clone()).await?;
        let all = state
            .store()
            .count_tickets(&Query::And(Vec::new()), Some(me))
            .await
            .map_err(ApiError::from)?;
        let by_view: BTreeMap<String, u64> =
            views.iter().map(|v| (v.id.to_string(), v.count)).collect();
        let capped: Vec<String> = views
            .iter()
            .filter(|v| v.count_capped)
            .map(|v| v.id.to_string())
            .collect();
        Ok(Json(json!({ "all": all, "views": by_view, "capped": capped })).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The bulk form: the checked tickets, one change, then back to the list
/// with what happened.
pub(crate) async fn bulk(State(state): State<AppState>, form: AgentForm) -> Response {
    let AgentForm { session, fields } = form;
    let back = local_path(fields.get("back"));
    let notice = match bulk_change(&state, &session, &fields).await {
        Ok(notice) => notice,
        Err(message) => message,
    };
    let separator = if back.contains('?') { '&' } else { '?' };
    super::see_other(&format!(
        "{back}{separator}notice={}",
        encode_component(&notice)
    ))
}

async fn bulk_change(
    state: &AppState,
    session: &AgentSession,
    fields: &super::Fields,
) -> Result<String, String> {
    let ids: Vec<i64> = fields
        .all("ids")
        .iter()
        .filter_map(|id| id.parse().ok())
        .collect();
    if ids.is_empty() {
        return Err("Select at least one ticket first.".into());
    }
    let parse_err = |field: &str, e: String| format!("{field}: {e}");
    let status = fields
        .text("status")
        .map(str::parse::<Status>)
        .transpose()
        .map_err(|e| parse_err("Status", e))?;
    let priority = fields
        .text("priority")
        .map(str::parse::<Priority>)
        .transpose()
        .map_err(|e| parse_err("Priority", e))?;
    let assignee_id = match fields.text("assignee") {
        None => None,
        Some("none") => Some(None),
        Some("me") => Some(Some(session.agent.id)),
        Some(raw) => {
            Some(Some(AgentId(raw.parse().map_err(|_| {
                format!("Assignee: {raw:?} is not an agent")
            })?)))
        }
    };
    let tag_list = |name: &str| -> Result<Vec<TagName>, String> {
        fields
            .text(name)
            .map(|raw| {
                raw.split([',', ' '])
                    .filter(|t| !t.is_empty())
                    .map(|t| TagName::parse(t).map_err(|e| format!("Tag {t:?}: {e}")))
                    .collect()
            })
            .unwrap_or(Ok(Vec::new()))
    };
    let request = BulkRequest {
        ids,
        query: None,
        status,
        priority,
        tier: None,
        team_id: None,
        assignee_id,
        add_tags: tag_list("add_tags")?,
        remove_tags: tag_list("remove_tags")?,
        note: None,
        versions: BTreeMap::new(),
    };
    let Json(result) = bulk_handler(
        State(state.clone()),
        session.caller.clone(),
        ApiJson(request),
    )
    .await
    .map_err(|e| {
        if e.code == "validation_failed" && e.detail.contains("nothing to change") {
            "Choose a change to make: a status, priority, assignee or tag.".to_string()
        } else {
            e.detail
        }
    })?;
    let changed = result.changed.len();
    let mut notice = format!(
        "Changed {changed} ticket{}.",
        if changed == 1 { "" } else { "s" }
    );
    if let Some(first) = result.failed.first() {
        notice.push_str(&format!(
            " {} not changed (ticket {}: {}).",
            result.failed.len(),
            first.id,
            first.problem.detail
        ));
    }
    Ok(notice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::TargetSlaView;

    fn target(state: &str, remaining: i64) -> TargetSlaView {
        TargetSlaView {
            target: "resolution".into(),
            state: state.into(),
            cycle: 0,
            target_ms: 8 * 3_600_000,
            remaining_business_ms: remaining,
            due_at: None,
            warn_at: None,
            breached_at: None,
            paused: state == "paused",
            breached: remaining < 0,
            warning: false,
        }
    }

    fn sla(
        breached: bool,
        warning: bool,
        paused: bool,
        targets: Vec<TargetSlaView>,
    ) -> TicketSlaView {
        TicketSlaView {
            policy_id: None,
            breached,
            warning,
            paused,
            due_at: None,
            targets,
        }
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(0), "0m");
        assert_eq!(span(59 * 60_000), "59m");
        assert_eq!(span(2 * 3_600_000 + 5 * 60_000), "2h 05m");
        assert_eq!(span(-(26 * 3_600_000)), "1d 2h");
    }

    #[test]
    fn sla_cells_say_what_is_left() {
        assert_eq!(sla_cell(None).class, "none");
        let running = sla(false, false, false, vec![target("running", 90 * 60_000)]);
        let cell = sla_cell(Some(&running));
        assert_eq!((cell.text.as_str(), cell.class), ("1h 30m left", "ok"));
        let warning = sla(false, true, false, vec![target("running", 10 * 60_000)]);
        assert_eq!(sla_cell(Some(&warning)).class, "warning");
        let late = sla(true, false, false, vec![target("running", -5 * 60_000)]);
        let cell = sla_cell(Some(&late));
        assert_eq!(
            (cell.text.as_str(), cell.class),
            ("Breached 5m ago", "breached")
        );
        let paused = sla(false, false, true, vec![target("paused", 60_000)]);
        assert_eq!(sla_cell(Some(&paused)).text, "Paused");
        let met = sla(false, false, false, vec![target("met", 60_000)]);
        assert_eq!(sla_cell(Some(&met)).text, "Met");
    }

    #[test]
    fn status_labels() {
        assert_eq!(status_label(Status::OnHold), "On hold");
        assert_eq!(status_label(Status::New), "New");
    }
}
