//! One ticket: its whole timeline, the composer (reply or internal note),
//! macros, the routing controls, and the escalation form built from the
//! target tier's template. Changes go through the API's own handlers.

use super::inbox::{Lookups, choices, sla_cell, span, status_label};
use super::render::{Shell, page, render};
use super::{AgentForm, AgentSession, Fields, WebError, WebResult, path_id, see_other};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, PathId, QueryParams};
use crate::routes::escalation::{
    EscalateRequest, EscalationFormView, escalate as escalate_handler, escalation_form,
};
use crate::routes::macros::{ApplyMacroRequest, apply as apply_handler};
use crate::routes::tickets::{
    NoteRequest, ReplyRequest, UpdateTicketRequest, note as note_handler, reply as reply_handler,
    update as update_handler, visible_ticket,
};
use crate::views::{AnyTicketView, rfc3339};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tierdesk_core::escalation::{AnswerValue, FieldType};
use tierdesk_core::{
    Actor, AgentId, EventKind, Priority, Status, TagName, TeamId, Ticket, TicketId, Tier,
};
use tierdesk_store::StoredEvent;

/// One timeline entry as the page shows it.
#[derive(Debug, Serialize)]
pub(crate) struct Entry {
    pub id: i64,
    /// CSS modifier: `customer`, `reply`, `note`, `escalation` or `system`.
    pub class: &'static str,
    pub label: String,
    pub actor: String,
    pub at: String,
    pub at_text: String,
    pub body: Option<String>,
    pub text: Option<String>,
    /// Escalation answers: (label, value).
    pub details: Vec<(String, String)>,
}

pub(crate) fn when(at: tierdesk_core::Timestamp) -> String {
    jiff::Timestamp::from_millisecond(at.millis())
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

fn answer_text(value: &AnswerValue) -> String {
    match value {
        AnswerValue::Text { text } => text.clone(),
        AnswerValue::Choice { choice } => choice.clone(),
        AnswerValue::Checklist { checked, unchecked } => {
            let mut parts: Vec<String> = checked.iter().map(|c| format!("✓ {c}")).collect();
            parts.extend(unchecked.iter().map(|c| format!("✗ {c}")));
            parts.join(", ")
        }
        AnswerValue::Attachment { attachments } => attachments.join(", "),
    }
}

/// Timeline entries for stored events, with people's names.
pub(crate) async fn entries(
    state: &AppState,
    lookups: &mut Lookups,
    events: &[StoredEvent],
) -> WebResult<Vec<Entry>> {
    let rule_ids: Vec<_> = {
        let mut ids: Vec<_> = events
            .iter()
            .filter_map(|e| match e.event.actor {
                Actor::Rule { id } => Some(id),
                _ => None,
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let rule_names = if rule_ids.is_empty() {
        BTreeMap::new()
    } else {
        state
            .store()
            .rule_names(&rule_ids)
            .await
            .map_err(ApiError::from)?
    };
    let team = |lookups: &Lookups, t: Option<TeamId>| {
        t.map_or_else(|| "no team".to_string(), |t| lookups.team_name(t))
    };
    let agent = |lookups: &Lookups, a: Option<AgentId>| {
        a.map_or_else(|| "nobody".to_string(), |a| lookups.agent_name(a))
    };
    let mut out = Vec::with_capacity(events.len());
    for stored in events {
        let actor = match stored.event.actor {
            Actor::Agent { id } => lookups.agent_name(id),
            Actor::Customer { id } => lookups.contact_name(state, id).await?,
            Actor::Rule { id } => format!(
                "Rule {}",
                rule_names
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| id.to_string())
            ),
            Actor::System => "Tierdesk".to_string(),
        };
        let mut entry = Entry {
            id: stored.id.0,
            class: "system",
            label: String::new(),
            actor,
            at: rfc3339(stored.event.at),
            at_text: when(stored.event.at),
            body: None,
            text: None,
            details: Vec::new(),
        };
        let (class, label, body, text): (&'static str, &str, Option<String>, Option<String>) =
            match &stored.event.kind {
                EventKind::Created {
                    subject, channel, ..
                } => (
                    "system",
                    "Created",
                    None,
                    Some(format!("Opened by {channel}: {subject}")),
                ),
                EventKind::CustomerMessage { author, body } => {
                    entry.actor = lookups.contact_name(state, *author).await?;
                    ("customer", "Customer message", Some(body.clone()), None)
                }
                EventKind::AgentReply { body } => {
                    ("reply", "Public reply", Some(body.clone()), None)
                }
                EventKind::InternalNote { body } => {
                    ("note", "Internal note", Some(body.clone()), None)
                }
                EventKind::StatusChanged { from, to } => (
                    "system",
                    "Status",
                    None,
                    Some(format!("{} → {}", status_label(*from), status_label(*to))),
                ),
                EventKind::PriorityChanged { from, to } => {
                    ("system", "Priority", None, Some(format!("{from} → {to}")))
                }
                EventKind::TierChanged { from, to } => (
                    "system",
                    "Tier",
                    None,
                    Some(format!("{} → {}", from.level(), to.level())),
                ),
                EventKind::TeamChanged { from, to } => (
                    "system",
                    "Team",
                    None,
                    Some(format!("{} → {}", team(lookups, *from), team(lookups, *to))),
                ),
                EventKind::AssigneeChanged { from, to } => (
                    "system",
                    "Assignee",
                    None,
                    Some(format!(
                        "{} → {}",
                        agent(lookups, *from),
                        agent(lookups, *to)
                    )),
                ),
                EventKind::TagAdded { tag } => ("system", "Tag added", None, Some(tag.clone())),
                EventKind::TagRemoved { tag } => ("system", "Tag removed", None, Some(tag.clone())),
                EventKind::SlaWarning { target, due_at } => (
                    "system",
                    "SLA warning",
                    None,
                    Some(format!("{target} due {}", when(*due_at))),
                ),
                EventKind::SlaBreached { target, due_at } => (
                    "system",
                    "SLA breached",
                    None,
                    Some(format!("{target} was due {}", when(*due_at))),
                ),
                EventKind::Escalated {
                    from,
                    to,
                    reason,
                    template,
                    ..
                } => {
                    entry.details = template
                        .answers
                        .iter()
                        .map(|a| (a.label.clone(), answer_text(&a.value)))
                        .collect();
                    (
                        "escalation",
                        "Escalated",
                        None,
                        Some(format!("Tier {} → {}: {reason}", from.level(), to.level())),
                    )
                }
                EventKind::DeEscalated { from, to, .. } => (
                    "escalation",
                    "De-escalated",
                    None,
                    Some(format!("Tier {} → {}", from.level(), to.level())),
                ),
                EventKind::RunbookStepRecorded {
                    title,
                    outcome,
                    note,
                    ..
                } => (
                    "system",
                    "Runbook step",
                    None,
                    Some(match note {
                        Some(note) => format!("{title}: {outcome} ({note})"),
                        None => format!("{title}: {outcome}"),
                    }),
                ),
                EventKind::MailQueued { to, purpose, .. } => (
                    "system",
                    "Email queued",
                    None,
                    Some(format!("{purpose} to {}", to.join(", "))),
                ),
                EventKind::MailSent { .. } => (
                    "system",
                    "Email sent",
                    None,
                    Some("Delivered to the mail server".into()),
                ),
                EventKind::MailFailed { reason, .. } => {
                    ("system", "Email failed", None, Some(reason.clone()))
                }
            };
        entry.class = class;
        entry.label = label.to_string();
        entry.body = body;
        entry.text = text;
        out.push(entry);
    }
    Ok(out)
}

/// What a re-shown ticket page keeps from a refused form.
#[derive(Debug, Default, Serialize)]
pub(super) struct FormState {
    pub composer_error: Option<String>,
    pub composer_body: String,
    pub composer_kind: String,
    pub controls_error: Option<String>,
    pub macro_error: Option<String>,
    pub runbook_error: Option<String>,
    pub de_escalate_error: Option<String>,
    pub de_escalate_guidance: String,
}

async fn ticket_page(
    state: &AppState,
    session: &AgentSession,
    id: TicketId,
    status: StatusCode,
    form: FormState,
) -> WebResult<Response> {
    let ticket = visible_ticket(state, &session.caller, id).await?;
    let events = state
        .store()
        .ticket_events(ticket.id)
        .await
        .map_err(ApiError::from)?;
    let mut lookups = Lookups::load(state).await?;
    let timeline = entries(state, &mut lookups, &events).await?;
    let mut view = [AnyTicketView::new(&ticket, false)];
    crate::sla::decorate(state, &mut view).await?;
    let sla = match &view[0] {
        AnyTicketView::Agent(v) => v.sla.clone(),
        AnyTicketView::Customer(_) => None,
    };
    let sla_targets: Vec<Value> = sla
        .as_ref()
        .map(|s| {
            s.targets
                .iter()
                .map(|t| {
                    json!({
                        "target": t.target.replace('_', " "),
                        "state": t.state,
                        "left": if t.state == "running" || t.state == "paused" { span(t.remaining_business_ms) } else { String::new() },
                        "breached": t.breached,
                        "warning": t.warning,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let macros = state
        .store()
        .list_macros(session.agent.id)
        .await
        .map_err(ApiError::from)?;
    let requester = lookups.contact_name(state, ticket.requester).await?;
    let organisation = match ticket.organisation {
        Some(o) => Some(lookups.organisation_name(state, o).await?),
        None => None,
    };
    let last_event = events.last().map_or(0, |e| e.id.0);
    // Suggested articles for the ticket at hand; a search failure only
    // leaves the panel empty.
    let articles: Vec<Value> = crate::routes::kb::search_hits(
        state,
        &ticket.subject,
        tierdesk_kb::Audience::Agent,
        None,
        5,
    )
    .unwrap_or_default()
    .into_iter()
    .map(|h| json!({ "slug": h.slug, "title": h.title }))
    .collect();
    let next_tier = Tier::new(i64::from(ticket.tier.level()) + 1).ok();
    let runbooks = super::ticket_runbooks::panel(state, session, ticket.id).await?;
    let lower_tiers = super::ticket_runbooks::lower_tiers(session, &ticket);
    let context = json!({
        "shell": Shell::of(session),
        "ticket": {
            "id": ticket.id.0,
            "reference": ticket.reference().to_string(),
            "subject": ticket.subject,
            "version": ticket.version,
            "status": ticket.status.as_str(),
            "status_label": status_label(ticket.status),
            "priority": ticket.priority.as_str(),
            "tier": ticket.tier.level(),
            "team": ticket.team.map(|t| t.0),
            "team_name": ticket.team.map(|t| lookups.team_name(t)),
            "assignee": ticket.assignee.map(|a| a.0),
            "assignee_name": ticket.assignee.map(|a| lookups.agent_name(a)),
            "tags": ticket.tags.iter().cloned().collect::<Vec<_>>().join(", "),
            "tag_list": ticket.tags.iter().cloned().collect::<Vec<_>>(),
            "channel": ticket.channel.as_str(),
            "requester": requester,
            "organisation": organisation,
            "created": when(ticket.created_at),
            "closed": ticket.status == Status::Closed,
        },
        "sla": sla_cell(sla.as_ref()),
        "sla_targets": sla_targets,
        "timeline": timeline,
        "last_event": last_event,
        "macros": macros.iter().map(|m| json!({"id": m.id, "name": m.name})).collect::<Vec<_>>(),
        "choices": choices(&lookups),
        "next_tier": next_tier.map(|t| t.level()),
        "runbooks": runbooks,
        "lower_tiers": lower_tiers,
        "form": form,
        "articles": articles,
    });
    Ok(page(status, "ticket.html", context))
}

pub(crate) async fn page_handler(
    State(state): State<AppState>,
    session: AgentSession,
    Path(raw): Path<String>,
) -> Response {
    let result = async {
        let id = TicketId(path_id(&raw)?);
        ticket_page(&state, &session, id, StatusCode::OK, FormState::default()).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Timeline entries after `after` (an event id), for the live script; the
/// ticket's version rides along in `X-Ticket-Version` so forms stay current.
pub(crate) async fn timeline(
    State(state): State<AppState>,
    session: AgentSession,
    Path(raw): Path<String>,
    params: QueryParams,
) -> Response {
    let result: WebResult<Response> = async {
        let id = TicketId(path_id(&raw)?);
        let after = params.parse::<i64>("after")?.unwrap_or(0);
        let ticket = visible_ticket(&state, &session.caller, id).await?;
        let events: Vec<StoredEvent> = state
            .store()
            .ticket_events(ticket.id)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .filter(|e| e.id.0 > after)
            .collect();
        let mut lookups = Lookups::load(&state).await?;
        let timeline = entries(&state, &mut lookups, &events).await?;
        let html = render("timeline.html", json!({ "timeline": timeline }))?;
        let mut response = Html(html).into_response();
        if let Ok(v) = HeaderValue::from_str(&ticket.version.to_string()) {
            response.headers_mut().insert("x-ticket-version", v);
        }
        Ok(response)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

fn ticket_url(id: TicketId) -> String {
    format!("/tickets/{id}")
}

/// A refused form shows the page again, with the problem next to the form.
pub(super) async fn again(
    state: &AppState,
    session: &AgentSession,
    id: TicketId,
    error: ApiError,
    form: impl FnOnce(String) -> FormState,
) -> Response {
    let status = error.status;
    let message = error_message(&error);
    ticket_page(state, session, id, status, form(message))
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

fn error_message(error: &ApiError) -> String {
    match error.code {
        "version_conflict" => {
            "Someone changed this ticket meanwhile. Review the page as it is now and try again."
                .to_string()
        }
        _ => error.errors.first().map_or(error.detail.clone(), |f| {
            format!("{}: {}", f.field, f.message)
        }),
    }
}

/// The composer: a public reply (optionally setting the status) or an
/// internal note.
pub(crate) async fn message(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: AgentForm,
) -> Response {
    let AgentForm { session, fields } = form;
    let id = match path_id(&raw) {
        Ok(id) => TicketId(id),
        Err(e) => return e.into_response(),
    };
    let body = fields.get("body").unwrap_or_default().to_string();
    let kind = fields.get("kind").unwrap_or("reply").to_string();
    let result = if kind == "note" {
        note_handler(
            State(state.clone()),
            session.caller.clone(),
            PathId(id.0),
            HeaderMap::new(),
            ApiJson(NoteRequest {
                body: body.clone(),
                version: None,
            }),
        )
        .await
    } else {
        let status = match fields.text("status").map(str::parse::<Status>).transpose() {
            Ok(status) => status,
            Err(e) => return WebError::new(StatusCode::BAD_REQUEST, "Bad form", e).into_response(),
        };
        reply_handler(
            State(state.clone()),
            session.caller.clone(),
            PathId(id.0),
            HeaderMap::new(),
            ApiJson(ReplyRequest {
                body: body.clone(),
                status,
                version: None,
                as_requester: false,
            }),
        )
        .await
    };
    match result {
        Ok(_) => see_other(&ticket_url(id)),
        Err(e) => {
            again(&state, &session, id, e, |message| FormState {
                composer_error: Some(message),
                composer_body: body,
                composer_kind: kind,
                ..FormState::default()
            })
            .await
        }
    }
}

/// The routing controls: only what differs from the version the form
/// showed is sent, at that version.
pub(crate) async fn update(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: AgentForm,
) -> Response {
    let AgentForm { session, fields } = form;
    let id = match path_id(&raw) {
        Ok(id) => TicketId(id),
        Err(e) => return e.into_response(),
    };
    let request = async {
        let ticket = visible_ticket(&state, &session.caller, id).await?;
        changes(&ticket, &fields)
    }
    .await;
    let result = match request {
        Ok(None) => return see_other(&ticket_url(id)),
        Ok(Some(request)) => {
            update_handler(
                State(state.clone()),
                session.caller.clone(),
                PathId(id.0),
                HeaderMap::new(),
                ApiJson(request),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => see_other(&ticket_url(id)),
        Err(e) => {
            again(&state, &session, id, e, |message| FormState {
                controls_error: Some(message),
                ..FormState::default()
            })
            .await
        }
    }
}

fn parse_field<T: std::str::FromStr<Err = String>>(
    fields: &Fields,
    name: &str,
) -> Result<Option<T>, ApiError> {
    fields
        .text(name)
        .map(|raw| raw.parse::<T>().map_err(|e| ApiError::invalid(name, e)))
        .transpose()
}

fn optional_id(fields: &Fields, name: &str) -> Result<Option<i64>, ApiError> {
    match fields.text(name) {
        None | Some("none") => Ok(None),
        Some(raw) => raw
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::invalid(name, format!("{raw:?} is not an id"))),
    }
}

/// The update the controls ask for, or `None` when nothing changed.
fn changes(ticket: &Ticket, fields: &Fields) -> Result<Option<UpdateTicketRequest>, ApiError> {
    let version = fields
        .text("version")
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| ApiError::invalid("version", "missing; reload the page"))?;
    let status = parse_field::<Status>(fields, "status")?.filter(|s| *s != ticket.status);
    let priority = parse_field::<Priority>(fields, "priority")?.filter(|p| *p != ticket.priority);
    let tier = parse_field::<Tier>(fields, "tier")?.filter(|t| *t != ticket.tier);
    let team = optional_id(fields, "team")?.map(TeamId);
    let team_id = (team != ticket.team).then_some(team);
    let assignee = optional_id(fields, "assignee")?.map(AgentId);
    let assignee_id = (assignee != ticket.assignee).then_some(assignee);
    let mut tags = Vec::new();
    for raw in fields
        .get("tags")
        .unwrap_or_default()
        .split([',', ' '])
        .filter(|t| !t.trim().is_empty())
    {
        tags.push(
            TagName::parse(raw.trim()).map_err(|e| ApiError::invalid("tags", e.to_string()))?,
        );
    }
    let same_tags =
        tags.len() == ticket.tags.len() && tags.iter().all(|t| ticket.tags.contains(t.as_str()));
    let tags = (!same_tags).then_some(tags);
    if status.is_none()
        && priority.is_none()
        && tier.is_none()
        && team_id.is_none()
        && assignee_id.is_none()
        && tags.is_none()
    {
        return Ok(None);
    }
    Ok(Some(UpdateTicketRequest {
        version: Some(version),
        status,
        priority,
        tier,
        team_id,
        assignee_id,
        add_tags: Vec::new(),
        remove_tags: Vec::new(),
        tags,
    }))
}

pub(crate) async fn apply_macro(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: AgentForm,
) -> Response {
    let AgentForm { session, fields } = form;
    let id = match path_id(&raw) {
        Ok(id) => TicketId(id),
        Err(e) => return e.into_response(),
    };
    let parsed = (|| {
        let macro_id = fields
            .text("macro")
            .and_then(|m| m.parse::<i64>().ok())
            .ok_or_else(|| ApiError::invalid("macro", "choose a macro"))?;
        let version = fields
            .text("version")
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| ApiError::invalid("version", "missing; reload the page"))?;
        Ok::<_, ApiError>((macro_id, version))
    })();
    let result = match parsed {
        Ok((macro_id, version)) => apply_handler(
            State(state.clone()),
            session.caller.clone(),
            PathId(macro_id),
            ApiJson(ApplyMacroRequest {
                ticket_id: id,
                version,
            }),
        )
        .await
        .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => see_other(&ticket_url(id)),
        Err(e) => {
            again(&state, &session, id, e, |message| FormState {
                macro_error: Some(message),
                ..FormState::default()
            })
            .await
        }
    }
}

// --- escalation -------------------------------------------------------------

#[derive(Debug, Serialize)]
struct FormField {
    key: String,
    label: String,
    help: String,
    required: bool,
    kind: &'static str,
    /// For text and attachment fields.
    value: String,
    options: Vec<Choice>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Choice {
    value: String,
    selected: bool,
}

fn value_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn value_has(value: Option<&Value>, item: &str) -> bool {
    match value {
        Some(Value::String(s)) => s == item,
        Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(item)),
        _ => false,
    }
}

struct EscalationInput {
    answers: BTreeMap<String, Value>,
    reason: String,
    team: Option<i64>,
    assignee: Option<i64>,
    errors: BTreeMap<String, String>,
    error: Option<String>,
}

async fn escalation_view(
    state: &AppState,
    session: &AgentSession,
    id: TicketId,
    tier: Option<u8>,
) -> WebResult<EscalationFormView> {
    let params = QueryParams(
        tier.map(|t| vec![("tier".to_string(), t.to_string())])
            .unwrap_or_default(),
    );
    let axum::Json(view) = escalation_form(
        State(state.clone()),
        session.caller.clone(),
        PathId(id.0),
        params,
    )
    .await?;
    Ok(view)
}

async fn escalation_response(
    state: &AppState,
    session: &AgentSession,
    id: TicketId,
    status: StatusCode,
    view: EscalationFormView,
    input: Option<EscalationInput>,
) -> WebResult<Response> {
    let ticket = visible_ticket(state, &session.caller, id).await?;
    let lookups = Lookups::load(state).await?;
    let answers = input
        .as_ref()
        .map_or_else(|| view.prefill.clone(), |i| i.answers.clone());
    let fields: Vec<FormField> = view
        .template
        .as_ref()
        .map(|t| {
            t.spec
                .fields
                .iter()
                .map(|f| {
                    let value = answers.get(&f.key);
                    let listed: &[String] = match f.kind {
                        FieldType::Choice => &f.options,
                        FieldType::Checklist => &f.items,
                        _ => &[],
                    };
                    let options = listed
                        .iter()
                        .map(|o| Choice {
                            value: o.clone(),
                            selected: value_has(value, o),
                        })
                        .collect();
                    FormField {
                        key: f.key.clone(),
                        label: f.label.clone(),
                        help: f.help.clone(),
                        required: f.required,
                        kind: f.kind.as_str(),
                        value: value_text(value),
                        options,
                        error: input.as_ref().and_then(|i| i.errors.get(&f.key).cloned()),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let context = json!({
        "shell": Shell::of(session),
        "ticket": {
            "id": ticket.id.0,
            "reference": ticket.reference().to_string(),
            "subject": ticket.subject,
            "version": ticket.version,
        },
        "from_tier": view.from_tier.level(),
        "to_tier": view.to_tier.map(|t| t.level()),
        "template_name": view.template.as_ref().map(|t| t.spec.name.clone()),
        "template_description": view.template.as_ref().map(|t| t.spec.description.clone()),
        "fields": fields,
        "reason": input.as_ref().map(|i| i.reason.clone()).unwrap_or_default(),
        "reason_error": input.as_ref().and_then(|i| i.errors.get("reason").cloned()),
        "error": input.as_ref().and_then(|i| i.error.clone()),
        "summary": {
            "customer_messages": view.summary.customer_messages,
            "agent_replies": view.summary.agent_replies,
            "internal_notes": view.summary.internal_notes,
            "escalations": view.summary.escalations,
            "steps_done": view.summary.steps_done,
        },
        "choices": choices(&lookups),
        "team": input.as_ref().and_then(|i| i.team),
        "assignee": input.as_ref().and_then(|i| i.assignee),
        "runbook_suggests_escalation": view.runbook_suggests_escalation,
    });
    Ok(page(status, "escalate.html", context))
}

pub(crate) async fn escalation_page(
    State(state): State<AppState>,
    session: AgentSession,
    Path(raw): Path<String>,
    params: QueryParams,
) -> Response {
    let result: WebResult<Response> = async {
        let id = TicketId(path_id(&raw)?);
        let tier = params.parse::<u8>("tier")?;
        let view = escalation_view(&state, &session, id, tier).await?;
        escalation_response(&state, &session, id, StatusCode::OK, view, None).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The submitted answers, shaped as the template's field types want them.
fn answers_from(view: &EscalationFormView, fields: &Fields) -> BTreeMap<String, Value> {
    let mut answers = BTreeMap::new();
    let Some(template) = &view.template else {
        return answers;
    };
    for field in &template.spec.fields {
        let name = format!("answers.{}", field.key);
        let value = match field.kind {
            FieldType::Text | FieldType::Choice => {
                fields.text(&name).map(|v| Value::String(v.to_string()))
            }
            FieldType::Checklist => {
                let checked: Vec<Value> = fields
                    .all(&name)
                    .into_iter()
                    .map(|v| Value::String(v.to_string()))
                    .collect();
                (!checked.is_empty()).then_some(Value::Array(checked))
            }
            FieldType::Attachment => {
                let lines: Vec<Value> = fields
                    .get(&name)
                    .unwrap_or_default()
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| Value::String(l.to_string()))
                    .collect();
                (!lines.is_empty()).then_some(Value::Array(lines))
            }
        };
        if let Some(value) = value {
            answers.insert(field.key.clone(), value);
        }
    }
    answers
}

pub(crate) async fn escalate(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: AgentForm,
) -> Response {
    let AgentForm { session, fields } = form;
    let result: WebResult<Response> = async {
        let id = TicketId(path_id(&raw)?);
        let tier = fields.text("tier").and_then(|t| t.parse::<u8>().ok());
        let view = escalation_view(&state, &session, id, tier).await?;
        let answers = answers_from(&view, &fields);
        let reason = fields.get("reason").unwrap_or_default().trim().to_string();
        let version = fields.text("version").and_then(|v| v.parse::<i64>().ok());
        let team = optional_id(&fields, "team")?;
        let assignee = optional_id(&fields, "assignee")?;
        let outcome = escalate_handler(
            State(state.clone()),
            session.caller.clone(),
            PathId(id.0),
            HeaderMap::new(),
            ApiJson(EscalateRequest {
                tier: view.to_tier,
                team_id: team.map(TeamId),
                assignee_id: assignee.map(AgentId),
                reason: reason.clone(),
                answers: answers.clone(),
                version,
            }),
        )
        .await;
        match outcome {
            Ok(_) => Ok(see_other(&ticket_url(id))),
            Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
                let mut errors = BTreeMap::new();
                for problem in &e.errors {
                    let key = problem
                        .field
                        .strip_prefix("answers.")
                        .unwrap_or(&problem.field)
                        .to_string();
                    errors.insert(key, problem.message.clone());
                }
                let error = Some(if e.code == "escalation_incomplete" {
                    "The escalation template is not complete; see the fields marked below."
                        .to_string()
                } else {
                    error_message(&e)
                });
                let input = EscalationInput {
                    answers,
                    reason,
                    team,
                    assignee,
                    errors,
                    error,
                };
                escalation_response(&state, &session, id, e.status, view, Some(input)).await
            }
            Err(e) => {
                let input = EscalationInput {
                    answers,
                    reason,
                    team,
                    assignee,
                    errors: BTreeMap::new(),
                    error: Some(error_message(&e)),
                };
                escalation_response(&state, &session, id, e.status, view, Some(input)).await
            }
        }
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
