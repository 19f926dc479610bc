//! Auto-assignment: the storage half. A team's settings, its backlog and
//! its candidates; and the assignment itself, a normal ticket change made
//! by the system in one transaction that re-checks the agent's load, so
//! concurrent assigners (on several instances) never push an agent past
//! capacity and never assign a ticket someone changed meanwhile.
//!
//! Ticket writes wake the assigner in their own transaction: a ticket that
//! enters an auto-assigning team's backlog, or a change that frees an
//! agent's capacity, enqueues an `assign.team` job (one live job per team,
//! by its dedupe key) that commits with the change or not at all.

use crate::error::{Result, StoreError};
use crate::model::{Change, TicketChange, UpdateSpec};
use crate::ops::{self, Tx};
use crate::rules::RuleCache;
use async_trait::async_trait;
use serde::Serialize;
use std::collections::BTreeSet;
use tierdesk_core::job::{JobKind, JobLease, NewJob};
use tierdesk_core::routing::{Candidate, TeamAssignment, awaits_assignment};
use tierdesk_core::{Actor, AgentId, Status, TeamId, Ticket, TicketId, Timestamp};

/// Assigns a team's backlog: payload `{"team_id": n}`.
pub const ASSIGN_TEAM_JOB: &str = "assign.team";
/// Reacts to an agent going offline or gaining room: payload `{"agent_id": n}`.
pub const ASSIGN_AGENT_JOB: &str = "assign.agent";

fn kind(name: &str) -> Result<JobKind> {
    JobKind::parse(name).map_err(|e| StoreError::Backend(format!("job kind: {e}")))
}

/// The job that assigns `team`'s backlog; at most one is live per team.
pub fn team_job(team: TeamId, now: Timestamp) -> Result<NewJob> {
    Ok(NewJob::new(
        kind(ASSIGN_TEAM_JOB)?,
        serde_json::json!({ "team_id": team.0 }),
        now,
    )
    .with_dedupe_key(format!("{ASSIGN_TEAM_JOB}:{}", team.0)))
}

/// The job that releases an offline agent's tickets or fills their room.
pub fn agent_job(agent: AgentId, now: Timestamp) -> Result<NewJob> {
    Ok(NewJob::new(
        kind(ASSIGN_AGENT_JOB)?,
        serde_json::json!({ "agent_id": agent.0 }),
        now,
    )
    .with_dedupe_key(format!("{ASSIGN_AGENT_JOB}:{}", agent.0)))
}

/// Whether a ticket in this status counts against its assignee's capacity.
pub fn counts_as_load(status: Status) -> bool {
    !matches!(status, Status::Solved | Status::Closed)
}

/// The team whose backlog the ticket is waiting in, if any.
pub fn backlog_team(ticket: &Ticket) -> Option<TeamId> {
    if ticket.assignee.is_none() && awaits_assignment(ticket.status) {
        ticket.team
    } else {
        None
    }
}

/// What one auto-assignment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoAssigned {
    Assigned(Box<Change>),
    /// The ticket is no longer at the expected version or no longer waits
    /// (someone grabbed, moved or solved it): it is left alone.
    TicketMoved,
    /// The agent can no longer take it (at capacity, offline, tier, team).
    AgentCannotTake,
}

/// An agent's load as the backlog endpoint shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentLoad {
    pub agent_id: AgentId,
    pub open_assigned: i64,
    pub capacity: i64,
}

/// Reads and writes of auto-assignment inside a ticket write transaction.
#[async_trait]
pub trait AssignTx: Send {
    /// A team's settings; `None` when never configured (manual).
    async fn team_assignment_in_tx(&mut self, team: TeamId) -> Result<Option<TeamAssignment>>;
    /// The teams of `agent` that assign automatically.
    async fn auto_teams_of(&mut self, agent: AgentId) -> Result<Vec<TeamId>>;
    /// The agent as the assigner sees them, with their current load. Locks
    /// the agent where the backend can, so assignments to one agent take
    /// turns and each counts the load the previous one committed.
    async fn candidate_for_update(&mut self, agent: AgentId) -> Result<Option<Candidate>>;
    /// Records that the assigner just gave `agent` a ticket (round-robin turns).
    async fn record_assignment_turn(&mut self, agent: AgentId, now: Timestamp) -> Result<()>;
    /// Enqueues the team's assigner job ([`team_job`]) in this transaction,
    /// and makes sure this instance's workers hear of it after the commit.
    /// When a live job already holds the team's key, the wake joins it and
    /// holds it (a row lock where the backend has them) until this
    /// transaction ends, so the job cannot start reading before this change
    /// is visible.
    async fn wake_team(&mut self, team: TeamId, now: Timestamp) -> Result<()>;
}

/// Wakes the assigners a ticket write concerns, inside its transaction:
/// the team whose backlog the ticket entered, and the auto-assigning teams
/// of an agent whose capacity it freed.
pub async fn wake_assigners(
    tx: &mut dyn Tx,
    before: Option<&Ticket>,
    after: &Ticket,
    now: Timestamp,
) -> Result<()> {
    let mut teams = BTreeSet::new();
    if let Some(team) = backlog_team(after)
        && before.and_then(backlog_team) != Some(team)
        && tx
            .team_assignment_in_tx(team)
            .await?
            .is_some_and(|s| s.mode.automatic().is_some())
    {
        teams.insert(team);
    }
    if let Some(before) = before
        && let Some(agent) = before.assignee
        && counts_as_load(before.status)
        && !(after.assignee == Some(agent) && counts_as_load(after.status))
    {
        teams.extend(tx.auto_teams_of(agent).await?);
    }
    for team in teams {
        tx.wake_team(team, now).await?;
    }
    Ok(())
}

/// Assigns `ticket` to `agent` as the system, in the caller's transaction,
/// if the ticket is still at `expected_version` and waiting, and the agent
/// (locked, load counted now) can still take it.
pub async fn auto_assign(
    tx: &mut dyn Tx,
    rules: &RuleCache,
    ticket: TicketId,
    expected_version: i64,
    agent: AgentId,
    now: Timestamp,
) -> Result<AutoAssigned> {
    let Some(current) = tx.ticket_for_update(ticket).await? else {
        return Ok(AutoAssigned::TicketMoved);
    };
    if current.version != expected_version || backlog_team(&current).is_none() {
        return Ok(AutoAssigned::TicketMoved);
    }
    let Some(candidate) = tx.candidate_for_update(agent).await? else {
        return Ok(AutoAssigned::AgentCannotTake);
    };
    let fits = candidate.active
        && candidate.available
        && candidate.tier >= current.tier
        && candidate.open_assigned < candidate.capacity
        && current.team.is_some_and(|t| candidate.teams.contains(&t));
    if !fits {
        return Ok(AutoAssigned::AgentCannotTake);
    }
    let change = TicketChange::Update(UpdateSpec {
        assignee: Some(Some(agent)),
        ..UpdateSpec::default()
    });
    let change = ops::change_ticket(
        tx,
        rules,
        ticket,
        Some(expected_version),
        change,
        Actor::System,
        now,
    )
    .await?;
    tx.record_assignment_turn(agent, now).await?;
    Ok(AutoAssigned::Assigned(Box::new(change)))
}

/// Auto-assignment storage; every backend implements it.
#[async_trait]
pub trait AssignmentStore: Send + Sync + 'static {
    /// A team's settings (manual when never set); `NotFound` without the team.
    async fn team_assignment(&self, team: TeamId) -> Result<TeamAssignment>;
    /// Saves a team's settings. Turning assignment on wakes the team's
    /// assigner in the same transaction, so an existing backlog drains.
    async fn set_team_assignment(
        &self,
        team: TeamId,
        settings: TeamAssignment,
        now: Timestamp,
    ) -> Result<TeamAssignment>;
    /// Teams that assign automatically, by id.
    async fn auto_assigning_teams(&self) -> Result<Vec<(TeamId, TeamAssignment)>>;
    /// The team's members as candidates, by id: tier, teams, activity,
    /// availability, capacity, open assigned tickets (any team) and when
    /// the assigner last gave them a ticket.
    async fn assignment_candidates(&self, team: TeamId) -> Result<Vec<Candidate>>;
    /// Unassigned new/open tickets of the team, oldest first.
    async fn team_backlog(&self, team: TeamId, limit: u32) -> Result<Vec<Ticket>>;
    /// See [`auto_assign`]; its own transaction.
    async fn auto_assign(
        &self,
        ticket: TicketId,
        expected_version: i64,
        agent: AgentId,
        now: Timestamp,
    ) -> Result<AutoAssigned>;
    /// New/open tickets held by unavailable or deactivated agents in teams
    /// that unassign when their agents go offline, oldest first; only
    /// `agent`'s when given.
    async fn releasable_tickets(&self, agent: Option<AgentId>, limit: u32) -> Result<Vec<Ticket>>;
    /// Called by an assigner job before it reads anything: frees its dedupe
    /// key, so a wake committed from now on enqueues a new job instead of
    /// joining this run (which may already have read past it). A wake that
    /// joined the job before holds the job's row until it commits (see
    /// [`AssignTx::wake_team`]), so this run reads after it. False when the
    /// lease is no longer the caller's.
    async fn start_assigner_run(&self, lease: &JobLease) -> Result<bool>;
}

/// The change that hands an offline agent's ticket back to its team's backlog.
pub fn release_change() -> TicketChange {
    TicketChange::Update(UpdateSpec {
        assignee: Some(None),
        ..UpdateSpec::default()
    })
}

/// `mode` as stored.
pub fn mode_name(settings: &TeamAssignment) -> &'static str {
    use tierdesk_core::routing::TeamAssignmentMode as Mode;
    match settings.mode {
        Mode::Manual => "manual",
        Mode::RoundRobin => "round_robin",
        Mode::LeastLoaded => "least_loaded",
    }
}

/// A stored row back into settings.
pub fn settings_from_row(mode: &str, unassign_when_offline: bool) -> Result<TeamAssignment> {
    use tierdesk_core::routing::TeamAssignmentMode as Mode;
    let mode = match mode {
        "manual" => Mode::Manual,
        "round_robin" => Mode::RoundRobin,
        "least_loaded" => Mode::LeastLoaded,
        other => {
            return Err(StoreError::Backend(format!(
                "unknown assignment mode {other:?}"
            )));
        }
    };
    Ok(TeamAssignment {
        mode,
        unassign_when_offline,
    })
}

/// A candidate row as both backends read it: id, tier, active, available,
/// capacity, open load, last_assigned_at.
pub type CandidateColumns = (i64, i64, bool, bool, i64, i64, Option<i64>);

/// Joins candidate rows with `(agent, team)` memberships.
pub fn candidates_from_rows(
    rows: Vec<CandidateColumns>,
    memberships: &[(i64, i64)],
) -> Result<Vec<Candidate>> {
    rows.into_iter()
        .map(
            |(id, tier, active, available, capacity, load, last)| -> Result<Candidate> {
                Ok(Candidate {
                    id: AgentId(id),
                    tier: tierdesk_core::Tier::new(tier)
                        .map_err(|e| StoreError::Backend(format!("agent {id} tier: {e}")))?,
                    teams: memberships
                        .iter()
                        .filter(|(agent, _)| *agent == id)
                        .map(|(_, team)| TeamId(*team))
                        .collect(),
                    active,
                    available,
                    capacity,
                    open_assigned: load,
                    last_assigned_at: last.map(Timestamp),
                })
            },
        )
        .collect()
}

impl crate::model::AgentPatch {
    /// Whether the change may take the agent offline or give them room,
    /// which the assigner reacts to.
    pub fn touches_assignment(&self) -> bool {
        self.tier.is_some()
            || self.teams.is_some()
            || self.capacity.is_some()
            || self.available.is_some()
            || self.active.is_some()
    }
}
