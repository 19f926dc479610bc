//! Routing: tagging is routing (an owned tag moves a ticket to its owner's
//! tier and team), and auto-assignment picks an agent who works the ticket's
//! tier, is available and has capacity — or leaves the ticket waiting in
//! order until capacity frees up.

use crate::command::Update;
use crate::ids::{AgentId, TeamId, TicketId};
use crate::tag::TagName;
use crate::ticket::{Status, Ticket, Tier};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Who owns a tag: adding it routes the ticket there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagOwner {
    pub tier: Option<Tier>,
    pub team: Option<TeamId>,
}

/// Folds the routing of newly added owned tags into `update`. Fields the
/// update sets explicitly win; among several owned tags the highest tier wins
/// and brings its team. Returns the tags that routed, for the timeline.
pub fn route_by_tags(
    update: &mut Update,
    ticket: &Ticket,
    owners: &BTreeMap<String, TagOwner>,
) -> Vec<TagName> {
    let mut best: Option<(&TagName, TagOwner)> = None;
    let mut routed = Vec::new();
    for tag in &update.add_tags {
        if ticket.tags.contains(tag.as_str()) || update.remove_tags.contains(tag) {
            continue;
        }
        let Some(owner) = owners.get(tag.as_str()).copied() else {
            continue;
        };
        if owner.tier.is_none() && owner.team.is_none() {
            continue;
        }
        routed.push(tag.clone());
        let better = match &best {
            None => true,
            Some((_, current)) => {
                owner.tier.unwrap_or(Tier::SELF_SERVICE)
                    > current.tier.unwrap_or(Tier::SELF_SERVICE)
            }
        };
        if better {
            best = Some((tag, owner));
        }
    }
    if let Some((_, owner)) = best {
        if update.tier.is_none() {
            // Routing never lowers a ticket's tier: escalation is not undone by a tag.
            update.tier = owner.tier.filter(|t| *t > ticket.tier);
        }
        if update.team.is_none() {
            update.team = owner.team.filter(|t| Some(*t) != ticket.team).map(Some);
        }
    }
    routed
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentMode {
    /// Take turns: the eligible agent who was assigned longest ago.
    #[default]
    RoundRobin,
    /// The eligible agent with the most spare capacity.
    LeastLoaded,
}

/// How a team's tickets get their assignee.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamAssignmentMode {
    /// Agents pick tickets themselves; the assigner leaves the team alone.
    #[default]
    Manual,
    RoundRobin,
    LeastLoaded,
}

impl TeamAssignmentMode {
    /// The assigner's policy, or `None` when the team assigns by hand.
    pub fn automatic(self) -> Option<AssignmentMode> {
        match self {
            Self::Manual => None,
            Self::RoundRobin => Some(AssignmentMode::RoundRobin),
            Self::LeastLoaded => Some(AssignmentMode::LeastLoaded),
        }
    }
}

/// A team's auto-assignment settings; a team never configured is manual.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamAssignment {
    pub mode: TeamAssignmentMode,
    /// Unassign an agent's open tickets of the team when they go offline
    /// or are deactivated, so the tickets flow back into the backlog.
    #[serde(default)]
    pub unassign_when_offline: bool,
}

/// Whether an unassigned ticket in this status waits for the assigner.
/// Pending and on-hold tickets wait on the customer or a third party, so
/// nobody is assigned until they come back to open.
pub fn awaits_assignment(status: Status) -> bool {
    matches!(status, Status::New | Status::Open)
}

/// An agent as seen by the assigner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: AgentId,
    pub tier: Tier,
    pub teams: Vec<TeamId>,
    pub active: bool,
    pub available: bool,
    pub capacity: i64,
    /// Open (not solved/closed) tickets currently assigned.
    pub open_assigned: i64,
    pub last_assigned_at: Option<Timestamp>,
}

impl Candidate {
    fn can_take(&self, ticket: &Ticket) -> bool {
        self.active
            && self.available
            && self.tier >= ticket.tier
            && self.open_assigned < self.capacity
            && ticket.team.is_none_or(|team| self.teams.contains(&team))
    }
}

/// Picks an assignee for one ticket, or `None` when nobody can take it now.
pub fn choose_assignee(
    ticket: &Ticket,
    candidates: &[Candidate],
    mode: AssignmentMode,
) -> Option<AgentId> {
    let eligible = candidates.iter().filter(|c| c.can_take(ticket));
    match mode {
        AssignmentMode::RoundRobin => eligible
            .min_by_key(|c| (c.last_assigned_at, c.id))
            .map(|c| c.id),
        AssignmentMode::LeastLoaded => eligible
            .min_by(|a, b| {
                // Compare load ratios exactly: a.open/a.cap vs b.open/b.cap.
                let left = i128::from(a.open_assigned) * i128::from(b.capacity.max(1));
                let right = i128::from(b.open_assigned) * i128::from(a.capacity.max(1));
                left.cmp(&right)
                    .then((a.last_assigned_at, a.id).cmp(&(b.last_assigned_at, b.id)))
            })
            .map(|c| c.id),
    }
}

/// Assigns a backlog in order (oldest first): each ticket goes to the chosen
/// agent, whose load then grows, until nobody has capacity. Tickets left over
/// keep their place in the queue for the next time capacity frees.
pub fn plan_assignments(
    backlog: &[Ticket],
    candidates: &[Candidate],
    mode: AssignmentMode,
    now: Timestamp,
) -> Vec<(TicketId, AgentId)> {
    let mut pool = candidates.to_vec();
    let mut plan = Vec::new();
    for ticket in backlog {
        if ticket.assignee.is_some() {
            continue;
        }
        let Some(agent) = choose_assignee(ticket, &pool, mode) else {
            continue;
        };
        if let Some(c) = pool.iter_mut().find(|c| c.id == agent) {
            c.open_assigned += 1;
            // Later picks in this plan count as more recent than any earlier one.
            c.last_assigned_at = Some(Timestamp(now.millis() + plan.len() as i64));
        }
        plan.push((ticket.id, agent));
    }
    plan
}

#[cfg(test)]
mod tests;
