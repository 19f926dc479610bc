//! Notifications to agents, derived from the events of one change so they
//! are written in the same transaction (and never for a change that failed).
//!
//! Who hears about what:
//! - `assigned`: the new assignee, unless they assigned themselves.
//! - `escalated_to_team`: every active agent of the team the ticket was
//!   escalated to who works the new tier or higher (those who can own it).
//! - `sla_warning` / `sla_breached`: the ticket's assignee.
//! - `mentioned`: an agent named in an internal note as `@email` or `@Name`.
//! - `escalated_ticket_solved`: everyone the ticket was escalated away from
//!   (see [`previous_owners`]), when it is solved.
//!
//! Nobody is notified of their own action, and an agent gets at most one
//! notification of a kind per event.

use crate::escalation::previous_owners;
use crate::event::{Actor, Event, EventKind};
use crate::ids::{AgentId, EventId, TeamId, TicketId};
use crate::ticket::{Status, Ticket, Tier, string_enum};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

string_enum!(
    /// Why an agent is told about a ticket.
    NotificationKind {
        Assigned = "assigned",
        EscalatedToTeam = "escalated_to_team",
        SlaWarning = "sla_warning",
        SlaBreached = "sla_breached",
        Mentioned = "mentioned",
        EscalatedTicketSolved = "escalated_ticket_solved"
    }
);

/// What notifying needs to know about an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentBrief {
    pub id: AgentId,
    pub email: String,
    pub name: String,
    pub tier: Tier,
    pub teams: Vec<TeamId>,
    pub active: bool,
}

/// A notification to store for one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewNotification {
    pub agent: AgentId,
    pub kind: NotificationKind,
    pub ticket: TicketId,
    /// The event that caused it.
    pub event: EventId,
    pub text: String,
}

/// What a change needs loaded before [`notifications_for`] can run; the
/// store skips the loading for the (common) changes that notify nobody.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// The agent directory (team members, mention targets).
    pub agents: bool,
    /// The ticket's whole timeline (previous owners).
    pub history: bool,
}

impl Needs {
    pub fn any(self) -> bool {
        self.agents || self.history
    }
}

/// Whether these events notify anyone, and what that needs.
pub fn needs<'a>(events: impl IntoIterator<Item = &'a Event>) -> Needs {
    let mut needs = Needs::default();
    for event in events {
        match &event.kind {
            EventKind::Escalated { team: Some(_), .. } => needs.agents = true,
            EventKind::InternalNote { body } if body.contains('@') => needs.agents = true,
            EventKind::StatusChanged {
                to: Status::Solved, ..
            } => needs.history = true,
            _ => {}
        }
    }
    needs
}

/// The notifications one change's events call for.
///
/// `ticket` is the ticket after the change, `change` the change's events
/// with their stored ids, `history` the ticket's whole timeline (needed
/// when [`Needs::history`]), `agents` the directory (when [`Needs::agents`]).
pub fn notifications_for(
    ticket: &Ticket,
    change: &[(EventId, &Event)],
    history: &[Event],
    agents: &[AgentBrief],
) -> Vec<NewNotification> {
    let mut out: Vec<NewNotification> = Vec::new();
    let about = format!("#{} {}", ticket.reference, ticket.subject);
    for (id, event) in change {
        let mut push = |agent: AgentId, kind: NotificationKind, text: String| {
            let own_action = event.actor == Actor::Agent { id: agent };
            let duplicate = out
                .iter()
                .any(|n| n.agent == agent && n.event == *id && n.kind == kind);
            if !own_action && !duplicate {
                out.push(NewNotification {
                    agent,
                    kind,
                    ticket: ticket.id,
                    event: *id,
                    text,
                });
            }
        };
        match &event.kind {
            EventKind::AssigneeChanged {
                to: Some(agent), ..
            } => push(
                *agent,
                NotificationKind::Assigned,
                format!("{about} was assigned to you"),
            ),
            EventKind::Escalated {
                to,
                team: Some(team),
                reason,
                ..
            } => {
                for agent in agents
                    .iter()
                    .filter(|a| a.active && a.tier >= *to && a.teams.contains(team))
                {
                    push(
                        agent.id,
                        NotificationKind::EscalatedToTeam,
                        format!("{about} was escalated to tier {to} for your team: {reason}"),
                    );
                }
            }
            EventKind::SlaWarning { target, .. } => {
                if let Some(agent) = ticket.assignee {
                    push(
                        agent,
                        NotificationKind::SlaWarning,
                        format!("{about}: the {target} target is close to breaching"),
                    );
                }
            }
            EventKind::SlaBreached { target, .. } => {
                if let Some(agent) = ticket.assignee {
                    push(
                        agent,
                        NotificationKind::SlaBreached,
                        format!("{about}: the {target} target was breached"),
                    );
                }
            }
            EventKind::InternalNote { body } => {
                for agent in agents.iter().filter(|a| a.active && mentions(body, a)) {
                    push(
                        agent.id,
                        NotificationKind::Mentioned,
                        format!("You were mentioned in a note on {about}"),
                    );
                }
            }
            EventKind::StatusChanged {
                to: Status::Solved, ..
            } => {
                for agent in previous_owners(history) {
                    push(
                        agent,
                        NotificationKind::EscalatedTicketSolved,
                        format!("{about}, which you escalated, was solved"),
                    );
                }
            }
            _ => {}
        }
    }
    out
}

/// Whether `text` names the agent as `@email` or `@Name`: case-insensitive,
/// the `@` not inside a word (`pat@ann.example` mentions nobody) and the
/// handle not running on (`@ann` does not match `@anna`).
pub fn mentions(text: &str, agent: &AgentBrief) -> bool {
    let lower = text.to_lowercase();
    [&agent.email, &agent.name]
        .into_iter()
        .map(|handle| format!("@{}", handle.trim().to_lowercase()))
        .filter(|handle| handle.len() > 1)
        .any(|handle| {
            lower.match_indices(&handle).any(|(at, _)| {
                let starts_word = lower[..at]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !c.is_alphanumeric());
                starts_word
                    && lower[at + handle.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| !c.is_alphanumeric() && c != '_' && c != '-')
            })
        })
}

#[cfg(test)]
mod tests;
