//! Escalation templates, runbooks and agent notifications: the storage half.
//!
//! Templates and runbooks are admin-edited data (JSON specs from the core,
//! validated here before any backend writes them). Notifications are
//! written by ticket changes themselves, in their transaction (see
//! [`notify`]), and read per agent.

use crate::error::{Result, StoreError};
use crate::model::{StoredEvent, TicketChange};
use crate::ops::Tx;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use tierdesk_core::command::{DeEscalation, Escalation};
use tierdesk_core::escalation::{
    FilledTemplate, Template, TemplateSpec, owning_team, summarize, template_for,
};
use tierdesk_core::ids::{RunbookId, TemplateId};
use tierdesk_core::notify::{AgentBrief, NewNotification, NotificationKind};
use tierdesk_core::runbook::{RecordError, Runbook, RunbookSpec, StepOutcome};
use tierdesk_core::{
    AgentId, Command, DecideError, Event, EventId, Status, TeamId, Ticket, TicketId, Tier,
    Timestamp,
};

/// A move up a tier as the API asks for it, references not yet resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EscalationRequest {
    /// Default: one tier up.
    pub tier: Option<Tier>,
    /// Default: the owning team of the ticket's tags for the new tier, else
    /// the ticket's team.
    pub team: Option<TeamId>,
    /// A named new owner; default: the new tier's queue.
    pub assignee: Option<AgentId>,
    pub reason: String,
    /// The template's answers by field key.
    pub answers: BTreeMap<String, Value>,
}

/// A move back down a tier with guidance (written as an internal note).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeEscalationRequest {
    pub tier: Tier,
    pub guidance: String,
    pub team: Option<TeamId>,
    pub assignee: Option<AgentId>,
}

/// A notification as stored for one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: i64,
    pub agent: AgentId,
    pub kind: NotificationKind,
    pub ticket: TicketId,
    pub event: EventId,
    pub text: String,
    pub created_at: Timestamp,
    pub read_at: Option<Timestamp>,
}

/// Where a page of notifications (unread first, then read, newest first in
/// each) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationCursor {
    pub unread: bool,
    /// The id of the last notification seen in that part.
    pub before: i64,
}

impl NotificationCursor {
    /// `u123` or `r123`, as the API hands it out.
    pub fn encode(self) -> String {
        format!("{}{}", if self.unread { 'u' } else { 'r' }, self.before)
    }

    pub fn parse(text: &str) -> Option<Self> {
        let (unread, rest) = match text.split_at_checked(1)? {
            ("u", rest) => (true, rest),
            ("r", rest) => (false, rest),
            _ => return None,
        };
        let before = rest.parse::<i64>().ok().filter(|n| *n > 0)?;
        Some(Self { unread, before })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationPage {
    pub notifications: Vec<Notification>,
    pub next: Option<NotificationCursor>,
}

/// Storage for templates, runbooks and notifications. Every backend
/// implements it; [`crate::Store`] requires it.
#[async_trait]
pub trait EscalationStore: Send + Sync + 'static {
    /// Validates and saves a template; one per target tier (`Duplicate`).
    async fn create_escalation_template(
        &self,
        spec: TemplateSpec,
        now: Timestamp,
    ) -> Result<Template>;
    async fn escalation_template(&self, id: TemplateId) -> Result<Option<Template>>;
    /// By target tier.
    async fn list_escalation_templates(&self) -> Result<Vec<Template>>;
    async fn update_escalation_template(
        &self,
        id: TemplateId,
        spec: TemplateSpec,
        now: Timestamp,
    ) -> Result<Template>;
    async fn delete_escalation_template(&self, id: TemplateId) -> Result<()>;

    /// Validates and saves a runbook.
    async fn create_runbook(&self, spec: RunbookSpec, now: Timestamp) -> Result<Runbook>;
    async fn runbook(&self, id: RunbookId) -> Result<Option<Runbook>>;
    /// By id.
    async fn list_runbooks(&self) -> Result<Vec<Runbook>>;
    async fn update_runbook(
        &self,
        id: RunbookId,
        spec: RunbookSpec,
        now: Timestamp,
    ) -> Result<Runbook>;
    async fn delete_runbook(&self, id: RunbookId) -> Result<()>;

    /// One agent's unread (or read) notifications, newest first, with an id
    /// below `before` when given.
    async fn notifications_page(
        &self,
        agent: AgentId,
        unread: bool,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Notification>>;
    /// One agent's notifications with an id above `after`, oldest first
    /// (for the live stream).
    async fn notifications_after(
        &self,
        agent: AgentId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Notification>>;
    /// The newest notification id of any agent, 0 when none.
    async fn last_notification_id(&self) -> Result<i64>;
    /// Marks one of the agent's notifications read (once; reading again
    /// keeps the first time). Another agent's is `NotFound`.
    async fn mark_notification_read(
        &self,
        agent: AgentId,
        id: i64,
        now: Timestamp,
    ) -> Result<Notification>;
    /// Marks every unread notification of the agent read; how many.
    async fn mark_all_notifications_read(&self, agent: AgentId, now: Timestamp) -> Result<u64>;
    async fn unread_notification_count(&self, agent: AgentId) -> Result<u64>;

    /// Unread first, then read; newest first within each.
    async fn list_notifications(
        &self,
        agent: AgentId,
        cursor: Option<NotificationCursor>,
        limit: u32,
    ) -> Result<NotificationPage> {
        let limit = limit.max(1);
        let mut notifications = Vec::new();
        let mut before = cursor.map(|c| c.before);
        let mut unread = cursor.is_none_or(|c| c.unread);
        if unread {
            notifications = self
                .notifications_page(agent, true, before, limit + 1)
                .await?;
            if notifications.len() as u32 <= limit {
                unread = false;
                before = None;
            }
        }
        if !unread {
            let room = limit + 1 - notifications.len() as u32;
            notifications.extend(self.notifications_page(agent, false, before, room).await?);
        }
        let more = notifications.len() as u32 > limit;
        notifications.truncate(limit as usize);
        let next = more
            .then(|| notifications.last())
            .flatten()
            .map(|last| NotificationCursor {
                unread: last.read_at.is_none(),
                before: last.id,
            });
        Ok(NotificationPage {
            notifications,
            next,
        })
    }
}

/// What escalations and notifications read and write inside a ticket
/// change's transaction (see [`crate::Tx`]).
#[async_trait]
pub trait EscalationTx: Send {
    async fn escalation_templates(&mut self) -> Result<Vec<Template>>;
    async fn runbook_for_change(&mut self, id: RunbookId) -> Result<Option<Runbook>>;
    /// The ticket's whole timeline so far, this transaction's events included.
    async fn ticket_history(&mut self, id: TicketId) -> Result<Vec<Event>>;
    /// Every agent, for team notifications and mentions.
    async fn agent_directory(&mut self) -> Result<Vec<AgentBrief>>;
    async fn insert_notifications(
        &mut self,
        notifications: &[NewNotification],
        now: Timestamp,
    ) -> Result<()>;
}

fn invalid_config(errors: Vec<tierdesk_core::validate::ConfigError>) -> StoreError {
    StoreError::InvalidConfig(errors)
}

/// A template ready to save, or every problem with its path.
pub fn checked_template(spec: TemplateSpec) -> Result<TemplateSpec> {
    spec.validate().map_err(invalid_config)?;
    Ok(spec)
}

/// A runbook ready to save, or every problem with its path.
pub fn checked_runbook(spec: RunbookSpec) -> Result<RunbookSpec> {
    spec.validate().map_err(invalid_config)?;
    Ok(spec)
}

pub fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(e.to_string()))
}

pub fn from_json<T: serde::de::DeserializeOwned>(what: &str, id: i64, json: &str) -> Result<T> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Backend(format!("{what} {id} is not readable: {e}")))
}

/// A notification row: id, agent_id, kind, ticket_id, event_id, text,
/// created_at, read_at.
pub type NotificationColumns = (i64, i64, String, i64, i64, String, i64, Option<i64>);

pub fn notification_from_columns(columns: NotificationColumns) -> Result<Notification> {
    let (id, agent, kind, ticket, event, text, created_at, read_at) = columns;
    Ok(Notification {
        id,
        agent: AgentId(agent),
        kind: kind
            .parse()
            .map_err(|e| StoreError::Backend(format!("notification {id}: {e}")))?,
        ticket: TicketId(ticket),
        event: EventId(event),
        text,
        created_at: Timestamp(created_at),
        read_at: read_at.map(Timestamp),
    })
}

/// The tier above, or `NotUp` at the top.
fn next_tier(ticket: &Ticket) -> std::result::Result<Tier, DecideError> {
    Tier::new(i64::from(ticket.tier.level()) + 1).map_err(|_| DecideError::NotUp {
        from: ticket.tier,
        to: ticket.tier,
    })
}

async fn team_checked(tx: &mut dyn Tx, team: Option<TeamId>) -> Result<Option<TeamId>> {
    match team {
        Some(team) if !tx.team_exists(team).await? => Err(StoreError::invalid(
            "team_id",
            format!("no team with id {team}"),
        )),
        other => Ok(other),
    }
}

async fn assignee_ref(
    tx: &mut dyn Tx,
    agent: Option<AgentId>,
) -> Result<Option<tierdesk_core::AgentRef>> {
    match agent {
        Some(id) => Ok(Some(tx.agent_ref(id).await?.ok_or_else(|| {
            StoreError::invalid("assignee_id", format!("no agent with id {id}"))
        })?)),
        None => Ok(None),
    }
}

/// The core command for an escalation: the target tier's template checked
/// (every problem at once), the team chosen, the timeline summarised.
pub(crate) async fn escalation_command(
    tx: &mut dyn Tx,
    ticket: &Ticket,
    request: EscalationRequest,
) -> Result<Command> {
    let to = match request.tier {
        Some(tier) => tier,
        None => next_tier(ticket)?,
    };
    // The moves the core would refuse anyway are reported before the form.
    if ticket.status == Status::Solved {
        return Err(DecideError::TicketSolved.into());
    }
    if to <= ticket.tier {
        return Err(DecideError::NotUp {
            from: ticket.tier,
            to,
        }
        .into());
    }
    let templates = tx.escalation_templates().await?;
    let template = match template_for(&templates, to) {
        Some(template) => template
            .validate_submission(&request.answers)
            .map_err(StoreError::EscalationIncomplete)?,
        None => {
            let unknown: Vec<_> = request
                .answers
                .keys()
                .map(|key| tierdesk_core::escalation::FieldProblem {
                    field: key.clone(),
                    label: key.clone(),
                    message: format!("tier {to} has no escalation template with this field"),
                })
                .collect();
            if !unknown.is_empty() {
                return Err(StoreError::EscalationIncomplete(unknown));
            }
            FilledTemplate::default()
        }
    };
    let team = match team_checked(tx, request.team).await? {
        Some(team) => Some(team),
        None => {
            let tags: Vec<String> = ticket.tags.iter().cloned().collect();
            let owners = tx.tag_owners(&tags).await?;
            owning_team(&ticket.tags, &owners, to)
        }
    };
    let assignee = assignee_ref(tx, request.assignee).await?;
    let history = tx.ticket_history(ticket.id).await?;
    Ok(Command::Escalate(Box::new(Escalation {
        to,
        team,
        assignee,
        reason: request.reason,
        template,
        summary: summarize(&history),
    })))
}

pub(crate) async fn de_escalation_command(
    tx: &mut dyn Tx,
    request: DeEscalationRequest,
) -> Result<Command> {
    let team = team_checked(tx, request.team).await?;
    let assignee = assignee_ref(tx, request.assignee).await?;
    Ok(Command::DeEscalate(DeEscalation {
        to: request.tier,
        team,
        assignee,
        guidance: request.guidance,
    }))
}

/// The command recording a runbook step, checked against the runbook, which
/// must be one the ticket shows (attached to one of its tags).
pub(crate) async fn runbook_step_command(
    tx: &mut dyn Tx,
    ticket: &Ticket,
    runbook: RunbookId,
    step: &str,
    outcome: StepOutcome,
    note: Option<String>,
) -> Result<Command> {
    let runbook = tx
        .runbook_for_change(runbook)
        .await?
        .ok_or(StoreError::NotFound("runbook"))?;
    if !runbook
        .spec
        .tags
        .iter()
        .any(|t| ticket.tags.contains(t.as_str()))
    {
        return Err(StoreError::invalid(
            "runbook_id",
            format!(
                "runbook {:?} is not attached to any tag of this ticket",
                runbook.spec.name
            ),
        ));
    }
    runbook.record(step, outcome, note).map_err(|e| match e {
        RecordError::UnknownStep(_) => StoreError::invalid("step", e.to_string()),
        RecordError::OutcomeDoesNotFit { .. } => StoreError::invalid("outcome", e.to_string()),
    })
}

/// The command for one of this module's changes; `None` for other changes.
pub(crate) async fn command_for(
    tx: &mut dyn Tx,
    ticket: &Ticket,
    change: TicketChange,
) -> Result<std::result::Result<Command, TicketChange>> {
    Ok(Ok(match change {
        TicketChange::Escalate(request) => escalation_command(tx, ticket, *request).await?,
        TicketChange::DeEscalate(request) => de_escalation_command(tx, request).await?,
        TicketChange::RecordRunbookStep {
            runbook,
            step,
            outcome,
            note,
        } => runbook_step_command(tx, ticket, runbook, &step, outcome, note).await?,
        other => return Ok(Err(other)),
    }))
}

/// Writes the notifications a committed change's events call for, in its
/// transaction. Loads the directory and the history only when needed.
pub(crate) async fn notify(
    tx: &mut dyn Tx,
    ticket: &Ticket,
    events: &[StoredEvent],
    now: Timestamp,
) -> Result<()> {
    let relevant = events.iter().any(|e| {
        matches!(
            e.event.kind,
            tierdesk_core::EventKind::AssigneeChanged { to: Some(_), .. }
                | tierdesk_core::EventKind::Escalated { .. }
                | tierdesk_core::EventKind::SlaWarning { .. }
                | tierdesk_core::EventKind::SlaBreached { .. }
                | tierdesk_core::EventKind::InternalNote { .. }
                | tierdesk_core::EventKind::StatusChanged {
                    to: Status::Solved,
                    ..
                }
        )
    });
    if !relevant {
        return Ok(());
    }
    let needs = tierdesk_core::notify::needs(events.iter().map(|e| &e.event));
    let history = if needs.history {
        tx.ticket_history(ticket.id).await?
    } else {
        Vec::new()
    };
    let agents = if needs.agents {
        tx.agent_directory().await?
    } else {
        Vec::new()
    };
    let change: Vec<(EventId, &Event)> = events.iter().map(|e| (e.id, &e.event)).collect();
    let notifications =
        tierdesk_core::notify::notifications_for(ticket, &change, &history, &agents);
    if notifications.is_empty() {
        return Ok(());
    }
    tx.insert_notifications(&notifications, now).await?;
    crate::mail::queue_notification_mail(tx, ticket, &notifications, now).await
}
