//! Commands are intentions; `decide` checks them against the current ticket
//! and answers with the events that record what happened.

use crate::escalation::{FilledTemplate, TimelineSummary};
use crate::event::{Actor, Event, EventKind};
use crate::ids::{AgentId, ContactId, OrganisationId, RunbookId, TeamId, TicketId};
use crate::people::AgentRef;
use crate::runbook::StepOutcome;
use crate::tag::TagName;
use crate::ticket::{Channel, Priority, Status, Ticket, Tier};
use crate::time::Timestamp;
use crate::validate::{self, FieldError};
use thiserror::Error;

/// Everything needed to open a ticket, already resolved to ids by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    pub subject: String,
    pub body: String,
    pub requester: ContactId,
    pub organisation: Option<OrganisationId>,
    pub channel: Channel,
    pub priority: Priority,
    pub tier: Tier,
    pub team: Option<TeamId>,
    pub tags: Vec<TagName>,
    pub follow_up_of: Option<TicketId>,
}

impl NewTicket {
    /// The ticket a customer's message on a closed ticket opens: same
    /// requester, subject and routing, linked back to the closed one.
    pub fn follow_up(closed: &Ticket, author: ContactId, body: String) -> NewTicket {
        NewTicket {
            subject: closed.subject.clone(),
            body,
            requester: author,
            organisation: closed.organisation,
            channel: closed.channel,
            priority: closed.priority,
            tier: closed.tier,
            team: closed.team,
            tags: closed
                .tags
                .iter()
                .filter_map(|t| TagName::parse(t).ok())
                .collect(),
            follow_up_of: Some(closed.id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A public message from a customer contact.
    CustomerMessage {
        author: ContactId,
        body: String,
    },
    /// A public reply by an agent, optionally setting the status in the same step.
    AgentReply {
        body: String,
        status: Option<Status>,
    },
    /// An internal note, visible to agents only.
    InternalNote {
        body: String,
    },
    Update(Update),
    /// Move the ticket up a tier with the information that tier requires.
    Escalate(Box<Escalation>),
    /// Move the ticket back down a tier with guidance for the lower tier.
    DeEscalate(DeEscalation),
    /// Record a runbook step's outcome; build it with `Runbook::record`,
    /// which checks the step and outcome against the runbook.
    RecordRunbookStep {
        runbook: RunbookId,
        step: String,
        title: String,
        outcome: StepOutcome,
        note: Option<String>,
    },
}

/// An escalation, resolved by the caller: the template already validated
/// (`Template::validate_submission`), the team already chosen (a named team,
/// or `escalation::owning_team` of the ticket's tags), the summary made with
/// `escalation::summarize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    pub to: Tier,
    /// `None` keeps the ticket's team.
    pub team: Option<TeamId>,
    /// A named new owner; `None` leaves the ticket unassigned in the new
    /// tier's queue. The previous owner is released either way.
    pub assignee: Option<AgentRef>,
    /// Why, in a few words; recorded for reports.
    pub reason: String,
    pub template: FilledTemplate,
    pub summary: TimelineSummary,
}

/// A de-escalation: back down to `to` with guidance, which is required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeEscalation {
    pub to: Tier,
    /// `None` keeps the ticket's team.
    pub team: Option<TeamId>,
    /// The owner to hand it back to (e.g. whoever escalated it); `None`
    /// leaves it unassigned in the lower tier's queue.
    pub assignee: Option<AgentRef>,
    pub guidance: String,
}

/// Field changes; `None` leaves a field alone. `Some(None)` clears team/assignee.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub tier: Option<Tier>,
    pub team: Option<Option<TeamId>>,
    pub assignee: Option<Option<AgentRef>>,
    pub add_tags: Vec<TagName>,
    pub remove_tags: Vec<TagName>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecideError {
    #[error("the ticket is closed; a customer's new message opens a follow-up ticket instead")]
    TicketClosed,
    #[error("a ticket cannot go from {from} to {to}")]
    InvalidTransition { from: Status, to: Status },
    #[error("agent {0} is deactivated and cannot be assigned")]
    AssigneeInactive(crate::ids::AgentId),
    #[error("agent {agent} works tier {agent_tier} and cannot own a tier {ticket_tier} ticket")]
    AssigneeTierTooLow {
        agent: crate::ids::AgentId,
        agent_tier: Tier,
        ticket_tier: Tier,
    },
    #[error("{field} {error}")]
    Field {
        field: &'static str,
        error: FieldError,
    },
    #[error("only agents may do this")]
    NotPermitted,
    #[error("escalation goes up: tier {from} to tier {to} is not")]
    NotUp { from: Tier, to: Tier },
    #[error("de-escalation goes down to tier 1 or 2: tier {from} to tier {to} is not")]
    NotDown { from: Tier, to: Tier },
    #[error("the ticket is solved; reopen it before moving it between tiers")]
    TicketSolved,
}

fn field(field: &'static str) -> impl FnOnce(FieldError) -> DecideError {
    move |error| DecideError::Field { field, error }
}

/// Opens a ticket: a `created` event, the requester's first message and its tags.
pub fn open_ticket(
    id: TicketId,
    reference: i64,
    new: &NewTicket,
    actor: Actor,
    now: Timestamp,
) -> Result<(Ticket, Vec<Event>), DecideError> {
    let subject = validate::single_line(&new.subject, validate::SUBJECT_MAX_CHARS)
        .map_err(field("subject"))?;
    let body = validate::body(&new.body).map_err(field("body"))?;
    let event = |kind| Event {
        ticket: id,
        version: 1,
        at: now,
        actor,
        kind,
    };
    let mut events = vec![
        event(EventKind::Created {
            reference,
            subject,
            requester: new.requester,
            organisation: new.organisation,
            channel: new.channel,
            priority: new.priority,
            tier: new.tier,
            team: new.team,
            follow_up_of: new.follow_up_of,
        }),
        event(EventKind::CustomerMessage {
            author: new.requester,
            body,
        }),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for tag in &new.tags {
        if seen.insert(tag.as_str()) {
            events.push(event(EventKind::TagAdded {
                tag: tag.to_string(),
            }));
        }
    }
    let ticket = Ticket::from_events(&events).ok_or(DecideError::NotPermitted)?;
    Ok((ticket, events))
}

/// Whether an agent may move a ticket from one status to another.
/// `new` is only ever a starting point; `closed` is reached from `solved` and is final.
pub fn check_transition(from: Status, to: Status) -> Result<(), DecideError> {
    use Status::*;
    let allowed = match (from, to) {
        (Closed, _) => return Err(DecideError::TicketClosed),
        (_, New) => from == New,
        (Solved, Closed) => true,
        (_, Closed) => false,
        _ => true,
    };
    if allowed {
        Ok(())
    } else {
        Err(DecideError::InvalidTransition { from, to })
    }
}

/// What a decision needs besides the ticket: who acts, when, and facts the
/// store resolved beforehand (the core never looks anything up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    pub actor: Actor,
    pub now: Timestamp,
    /// The ticket's current assignee, when it has one.
    pub current_assignee: Option<AgentRef>,
}

impl Context {
    pub fn new(actor: Actor, now: Timestamp) -> Self {
        Self {
            actor,
            now,
            current_assignee: None,
        }
    }
}

/// Validates `command` against `ticket` and returns the events it produces.
/// An empty list means the command changes nothing.
pub fn decide(
    ticket: &Ticket,
    ctx: &Context,
    command: &Command,
) -> Result<Vec<Event>, DecideError> {
    let Context {
        actor,
        now,
        current_assignee,
    } = *ctx;
    if ticket.status == Status::Closed {
        return Err(DecideError::TicketClosed);
    }
    let mut kinds = Vec::new();
    match command {
        Command::CustomerMessage { author, body } => {
            let body = validate::body(body).map_err(field("body"))?;
            kinds.push(EventKind::CustomerMessage {
                author: *author,
                body,
            });
            // The customer answered: whatever we were waiting for has arrived.
            if matches!(
                ticket.status,
                Status::Pending | Status::OnHold | Status::Solved
            ) {
                kinds.push(EventKind::StatusChanged {
                    from: ticket.status,
                    to: Status::Open,
                });
            }
        }
        Command::AgentReply { body, status } => {
            require_agent(actor)?;
            let body = validate::body(body).map_err(field("body"))?;
            let target = match (status, ticket.status) {
                (Some(s), _) => *s,
                (None, Status::New) => Status::Open,
                (None, current) => current,
            };
            check_transition(ticket.status, target)?;
            kinds.push(EventKind::AgentReply { body });
            if target != ticket.status {
                kinds.push(EventKind::StatusChanged {
                    from: ticket.status,
                    to: target,
                });
            }
        }
        Command::InternalNote { body } => {
            require_agent(actor)?;
            let body = validate::body(body).map_err(field("body"))?;
            kinds.push(EventKind::InternalNote { body });
        }
        Command::Update(update) => {
            require_agent(actor)?;
            decide_update(ticket, update, current_assignee, &mut kinds)?;
        }
        Command::Escalate(escalation) => {
            require_agent(actor)?;
            decide_escalation(ticket, escalation, &mut kinds)?;
        }
        Command::DeEscalate(de) => {
            require_agent(actor)?;
            decide_de_escalation(ticket, de, &mut kinds)?;
        }
        Command::RecordRunbookStep {
            runbook,
            step,
            title,
            outcome,
            note,
        } => {
            require_agent(actor)?;
            let step =
                validate::single_line(step, validate::NAME_MAX_CHARS).map_err(field("step"))?;
            let title =
                validate::single_line(title, validate::NAME_MAX_CHARS).map_err(field("title"))?;
            let note = match note.as_deref().filter(|n| !n.trim().is_empty()) {
                Some(n) => Some(validate::body(n).map_err(field("note"))?),
                None => None,
            };
            kinds.push(EventKind::RunbookStepRecorded {
                runbook: *runbook,
                step,
                title,
                outcome: *outcome,
                note,
            });
        }
    }
    let version = ticket.version + 1;
    Ok(kinds
        .into_iter()
        .map(|kind| Event {
            ticket: ticket.id,
            version,
            at: now,
            actor,
            kind,
        })
        .collect())
}

fn require_agent(actor: Actor) -> Result<(), DecideError> {
    match actor {
        Actor::Agent { .. } | Actor::Rule { .. } | Actor::System => Ok(()),
        Actor::Customer { .. } => Err(DecideError::NotPermitted),
    }
}

fn check_assignee(agent: AgentRef, tier: Tier) -> Result<AgentId, DecideError> {
    if !agent.active {
        return Err(DecideError::AssigneeInactive(agent.id));
    }
    if agent.tier < tier {
        return Err(DecideError::AssigneeTierTooLow {
            agent: agent.id,
            agent_tier: agent.tier,
            ticket_tier: tier,
        });
    }
    Ok(agent.id)
}

/// The tier, team and assignee changes of moving a ticket between tiers,
/// after the event that says why.
fn move_tier(
    ticket: &Ticket,
    to: Tier,
    team: Option<TeamId>,
    assignee: Option<AgentId>,
    kinds: &mut Vec<EventKind>,
) {
    kinds.push(EventKind::TierChanged {
        from: ticket.tier,
        to,
    });
    if let Some(team) = team
        && Some(team) != ticket.team
    {
        kinds.push(EventKind::TeamChanged {
            from: ticket.team,
            to: Some(team),
        });
    }
    if assignee != ticket.assignee {
        kinds.push(EventKind::AssigneeChanged {
            from: ticket.assignee,
            to: assignee,
        });
    }
    // Handing a new ticket to a named owner means someone is working on it.
    if ticket.status == Status::New && assignee.is_some() {
        kinds.push(EventKind::StatusChanged {
            from: Status::New,
            to: Status::Open,
        });
    }
}

fn decide_escalation(
    ticket: &Ticket,
    escalation: &Escalation,
    kinds: &mut Vec<EventKind>,
) -> Result<(), DecideError> {
    if ticket.status == Status::Solved {
        return Err(DecideError::TicketSolved);
    }
    if escalation.to <= ticket.tier {
        return Err(DecideError::NotUp {
            from: ticket.tier,
            to: escalation.to,
        });
    }
    let reason = validate::single_line(&escalation.reason, validate::NAME_MAX_CHARS)
        .map_err(field("reason"))?;
    let assignee = escalation
        .assignee
        .map(|agent| check_assignee(agent, escalation.to))
        .transpose()?;
    kinds.push(EventKind::Escalated {
        from: ticket.tier,
        to: escalation.to,
        team: escalation.team.or(ticket.team),
        reason,
        template: Box::new(escalation.template.clone()),
        summary: Box::new(escalation.summary.clone()),
        previous_assignee: ticket.assignee,
    });
    move_tier(ticket, escalation.to, escalation.team, assignee, kinds);
    Ok(())
}

fn decide_de_escalation(
    ticket: &Ticket,
    de: &DeEscalation,
    kinds: &mut Vec<EventKind>,
) -> Result<(), DecideError> {
    if ticket.status == Status::Solved {
        return Err(DecideError::TicketSolved);
    }
    if de.to >= ticket.tier || de.to < Tier::ONE {
        return Err(DecideError::NotDown {
            from: ticket.tier,
            to: de.to,
        });
    }
    let guidance = validate::body(&de.guidance).map_err(field("guidance"))?;
    let assignee = de
        .assignee
        .map(|agent| check_assignee(agent, de.to))
        .transpose()?;
    kinds.push(EventKind::DeEscalated {
        from: ticket.tier,
        to: de.to,
        team: de.team.or(ticket.team),
        previous_assignee: ticket.assignee,
    });
    move_tier(ticket, de.to, de.team, assignee, kinds);
    kinds.push(EventKind::InternalNote { body: guidance });
    Ok(())
}

fn decide_update(
    ticket: &Ticket,
    update: &Update,
    current_assignee: Option<AgentRef>,
    kinds: &mut Vec<EventKind>,
) -> Result<(), DecideError> {
    if let Some(tag) = update
        .add_tags
        .iter()
        .find(|t| update.remove_tags.contains(t))
    {
        return Err(DecideError::Field {
            field: "tags",
            error: FieldError::Invalid(format!("tag {tag} cannot be both added and removed")),
        });
    }
    let tier = update.tier.unwrap_or(ticket.tier);
    if tier != ticket.tier {
        kinds.push(EventKind::TierChanged {
            from: ticket.tier,
            to: tier,
        });
    }
    if let Some(team) = update.team
        && team != ticket.team
    {
        kinds.push(EventKind::TeamChanged {
            from: ticket.team,
            to: team,
        });
    }
    let assignee = match update.assignee {
        Some(Some(agent)) => Some(check_assignee(agent, tier)?),
        Some(None) => None,
        // Moving up a tier releases an owner who does not work that tier.
        None => match current_assignee {
            Some(current) if Some(current.id) == ticket.assignee && current.tier < tier => None,
            _ => ticket.assignee,
        },
    };
    if assignee != ticket.assignee {
        kinds.push(EventKind::AssigneeChanged {
            from: ticket.assignee,
            to: assignee,
        });
    }
    if let Some(priority) = update.priority
        && priority != ticket.priority
    {
        kinds.push(EventKind::PriorityChanged {
            from: ticket.priority,
            to: priority,
        });
    }
    let status = match update.status {
        Some(s) => s,
        // Giving a new ticket an owner means someone is working on it.
        None if ticket.status == Status::New && assignee.is_some() && ticket.assignee.is_none() => {
            Status::Open
        }
        None => ticket.status,
    };
    check_transition(ticket.status, status)?;
    if status != ticket.status {
        kinds.push(EventKind::StatusChanged {
            from: ticket.status,
            to: status,
        });
    }
    let mut tags = ticket.tags.clone();
    for tag in &update.remove_tags {
        if tags.remove(tag.as_str()) {
            kinds.push(EventKind::TagRemoved {
                tag: tag.to_string(),
            });
        }
    }
    for tag in &update.add_tags {
        if tags.insert(tag.to_string()) {
            kinds.push(EventKind::TagAdded {
                tag: tag.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
