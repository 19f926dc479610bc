//! The assigner: job handlers that drain a team's backlog into its agents'
//! free capacity, release an offline agent's tickets, and a leader-elected
//! safety sweep.
//!
//! Ticket writes wake a team's `assign.team` job in their own transaction
//! (a ticket entered the backlog, or capacity freed); agent changes wake
//! `assign.agent`. Wakes join a pending job of the team (its dedupe key).
//! A run frees the key before it reads, so a wake that comes later starts
//! a new run rather than joining one that may have read past it; no wake is
//! lost. Runs may therefore overlap: every assignment is its own
//! transaction that re-checks the ticket's version and the agent's load
//! (see [`tierdesk_store::assignment::auto_assign`]), so they can only
//! skip, never over-assign. The sweep only guards against what no
//! transaction could wake (an agent change acknowledged just before a crash).

use crate::worker::{JobContext, JobHandler, PeriodicTask, Registry};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tierdesk_core::job::{JobKind, Outcome};
use tierdesk_core::routing::plan_assignments;
use tierdesk_core::{Actor, AgentId, TeamId, Timestamp};
use tierdesk_store::assignment::{
    ASSIGN_AGENT_JOB, ASSIGN_TEAM_JOB, AutoAssigned, agent_job, release_change, team_job,
};
use tierdesk_store::{Store, StoreError};

/// How much of a backlog one round plans for, oldest first.
const BACKLOG_WINDOW: u32 = 500;
/// Rounds per run; each assigns at least one ticket, so this only bounds a
/// run that keeps racing with a flood of new tickets.
const MAX_ROUNDS: usize = 100;
/// How often the leader looks for backlogs and offline holders nobody woke.
pub const SWEEP_EVERY: Duration = Duration::from_secs(15);

fn now() -> Timestamp {
    crate::now()
}

/// Registers the assigner's job handlers and its periodic sweep.
pub fn register(registry: Registry, store: Arc<dyn Store>, sweep_every: Duration) -> Registry {
    let (Ok(team_kind), Ok(agent_kind)) = (
        JobKind::parse(ASSIGN_TEAM_JOB),
        JobKind::parse(ASSIGN_AGENT_JOB),
    ) else {
        tracing::error!("the assigner's job kinds do not parse; auto-assignment is off");
        return registry;
    };
    registry
        .handle(
            team_kind,
            AssignTeam {
                store: store.clone(),
            },
        )
        .handle(
            agent_kind,
            AssignAgent {
                store: store.clone(),
            },
        )
        .every("assign.sweep", sweep_every, AssignmentSweep { store })
}

/// Assigns as much of `team`'s backlog as its agents have room for, oldest
/// ticket first; returns how many tickets were assigned.
pub async fn drain_backlog(store: &dyn Store, team: TeamId) -> Result<usize, StoreError> {
    let settings = match store.team_assignment(team).await {
        Err(StoreError::NotFound(_)) => return Ok(0),
        other => other?,
    };
    let Some(mode) = settings.mode.automatic() else {
        return Ok(0);
    };
    let mut total = 0;
    for _ in 0..MAX_ROUNDS {
        let backlog = store.team_backlog(team, BACKLOG_WINDOW).await?;
        if backlog.is_empty() {
            break;
        }
        let candidates = store.assignment_candidates(team).await?;
        let versions: BTreeMap<_, _> = backlog.iter().map(|t| (t.id, t.version)).collect();
        let plan = plan_assignments(&backlog, &candidates, mode, now());
        let mut assigned = 0;
        for (ticket, agent) in plan {
            let Some(&version) = versions.get(&ticket) else {
                continue;
            };
            match store.auto_assign(ticket, version, agent, now()).await {
                Ok(AutoAssigned::Assigned(_)) => assigned += 1,
                // Grabbed, moved or solved meanwhile: it is no longer ours to assign.
                Ok(AutoAssigned::TicketMoved) | Err(StoreError::Conflict { .. }) => {}
                // The plan's view of this agent is stale: plan again from fresh loads.
                Ok(AutoAssigned::AgentCannotTake) => break,
                Err(StoreError::Rejected(e)) => {
                    tracing::warn!(ticket = %ticket, agent = %agent, error = %e, "assignment refused");
                }
                Err(e) => return Err(e),
            }
        }
        total += assigned;
        if assigned == 0 {
            break;
        }
    }
    Ok(total)
}

/// Hands `agent`'s releasable tickets (new/open, in teams that unassign
/// offline agents) back to their teams' backlogs; returns how many.
pub async fn release_offline(store: &dyn Store, agent: AgentId) -> Result<usize, StoreError> {
    let mut total = 0;
    for _ in 0..MAX_ROUNDS {
        let tickets = store
            .releasable_tickets(Some(agent), BACKLOG_WINDOW)
            .await?;
        let mut released = 0;
        for ticket in tickets {
            match store
                .change_ticket(
                    ticket.id,
                    Some(ticket.version),
                    release_change(),
                    Actor::System,
                    now(),
                )
                .await
            {
                Ok(_) => released += 1,
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        total += released;
        if released == 0 {
            break;
        }
    }
    Ok(total)
}

fn id_in(job: &JobContext, field: &str) -> Result<i64, Outcome> {
    job.payload()
        .get(field)
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| Outcome::permanent(format!("the payload has no {field}")))
}

/// Frees the job's dedupe key before it reads, so no wake is lost to a run
/// that already read past it (see [`Store::start_assigner_run`]).
async fn start(store: &dyn Store, job: &JobContext) -> Result<(), Outcome> {
    match store.start_assigner_run(&job.lease).await {
        Ok(true) => Ok(()),
        // Taken over by another instance: that run does the work.
        Ok(false) => Err(Outcome::done()),
        Err(e) => Err(Outcome::temporary(e)),
    }
}

/// `assign.team`: drains one team's backlog.
struct AssignTeam {
    store: Arc<dyn Store>,
}

#[async_trait]
impl JobHandler for AssignTeam {
    async fn run(&self, job: &JobContext) -> Outcome {
        let team = match id_in(job, "team_id") {
            Ok(id) => TeamId(id),
            Err(outcome) => return outcome,
        };
        if let Err(outcome) = start(self.store.as_ref(), job).await {
            return outcome;
        }
        match drain_backlog(self.store.as_ref(), team).await {
            Ok(assigned) => {
                if assigned > 0 {
                    tracing::info!(team = %team, assigned, "assigned from the backlog");
                }
                Outcome::done()
            }
            Err(e) => Outcome::temporary(e),
        }
    }
}

/// `assign.agent`: an agent's availability, activity, capacity, tier or
/// teams changed. Offline: their releasable tickets go back to the backlog
/// (which wakes those teams). Either way their auto-assigning teams are
/// woken, since they may now have room.
struct AssignAgent {
    store: Arc<dyn Store>,
}

#[async_trait]
impl JobHandler for AssignAgent {
    async fn run(&self, job: &JobContext) -> Outcome {
        let agent = match id_in(job, "agent_id") {
            Ok(id) => AgentId(id),
            Err(outcome) => return outcome,
        };
        if let Err(outcome) = start(self.store.as_ref(), job).await {
            return outcome;
        }
        let result = async {
            let Some(found) = self.store.agent(agent).await? else {
                return Ok(());
            };
            if !found.available || !found.active {
                let released = release_offline(self.store.as_ref(), agent).await?;
                if released > 0 {
                    tracing::info!(agent = %agent, released, "released an offline agent's tickets");
                }
            }
            let auto: BTreeSet<TeamId> = self
                .store
                .auto_assigning_teams()
                .await?
                .into_iter()
                .map(|(team, _)| team)
                .collect();
            for team in found.teams.iter().filter(|t| auto.contains(t)) {
                self.store
                    .enqueue_job(team_job(*team, now())?, now())
                    .await?;
            }
            Ok::<(), StoreError>(())
        };
        match result.await {
            Ok(()) => Outcome::done(),
            Err(e) => Outcome::temporary(e),
        }
    }
}

/// The safety net: wakes every auto-assigning team with a backlog and every
/// offline agent still holding releasable tickets. Wakes are deduplicated,
/// so a sweep that finds work already queued adds nothing.
struct AssignmentSweep {
    store: Arc<dyn Store>,
}

#[async_trait]
impl PeriodicTask for AssignmentSweep {
    async fn run(&self, now: Timestamp) -> Result<(), String> {
        let store = self.store.as_ref();
        let sweep = async {
            for (team, _) in store.auto_assigning_teams().await? {
                if !store.team_backlog(team, 1).await?.is_empty() {
                    store.enqueue_job(team_job(team, now)?, now).await?;
                }
            }
            let holders: BTreeSet<AgentId> = store
                .releasable_tickets(None, BACKLOG_WINDOW)
                .await?
                .into_iter()
                .filter_map(|t| t.assignee)
                .collect();
            for agent in holders {
                store.enqueue_job(agent_job(agent, now)?, now).await?;
            }
            Ok::<(), StoreError>(())
        };
        sweep.await.map_err(|e| e.to_string())
    }
}

/// Wakes the assigner after an agent's availability, activity, capacity,
/// tier or teams changed. Best effort: the sweep catches a lost wake.
pub async fn agent_changed(store: &dyn Store, agent: AgentId) {
    let at = now();
    let enqueued = match agent_job(agent, at) {
        Ok(job) => store.enqueue_job(job, at).await.map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = enqueued {
        tracing::warn!(agent = %agent, error = %e, "could not wake the assigner; the sweep will");
    }
}
