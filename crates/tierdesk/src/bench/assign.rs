//! `tierdesk bench assign`: how fast the assigner fills free capacity.
//!
//! On SQLite in a temporary directory: one team of `--agents` agents, each
//! with room for `--capacity` open tickets, and `--tickets` tickets waiting
//! (more than the team can hold). Then the same drain the `assign.team` job
//! runs, timed twice:
//! - fill: from everyone idle until every agent is at capacity;
//! - refill: one ticket per agent solved, then the drain that hands each
//!   freed slot the oldest waiting ticket.
//!
//! Every assignment is its own committed transaction (version check, load
//! re-check, events, rules), as in production. At the end no agent may be
//! over capacity.

use crate::now;
use anyhow::{Context, bail};
use std::time::Instant;
use tierdesk_core::routing::{TeamAssignment, TeamAssignmentMode};
use tierdesk_core::{Actor, Channel, Priority, Role, Status, Tier};
use tierdesk_server::assigner::drain_backlog;
use tierdesk_store::{
    AssignmentStore, NewAgent, NewTeam, Requester, Store, TicketChange, TicketDraft, UpdateSpec,
};
use tierdesk_store_sqlite::{Durability, SqliteStore};

pub async fn run(
    agents: usize,
    capacity: i64,
    tickets: usize,
    mode: TeamAssignmentMode,
    durability: Durability,
) -> anyhow::Result<()> {
    if agents == 0 || capacity < 1 || tickets == 0 {
        bail!("--agents, --capacity and --tickets must be at least 1");
    }
    if mode.automatic().is_none() {
        bail!("--mode must be round_robin or least_loaded");
    }
    let dir = tempfile::tempdir().context("temp dir")?;
    let store = SqliteStore::open_dir(dir.path(), durability).await?;
    let team = store
        .create_team(NewTeam {
            name: "Bench".into(),
            description: String::new(),
        })
        .await?
        .id;
    let mut ids = Vec::with_capacity(agents);
    for n in 0..agents {
        let agent = store
            .create_agent(
                NewAgent {
                    email: format!("agent{n}@bench.test"),
                    name: format!("Agent {n}"),
                    role: Role::Agent,
                    tier: Tier::TWO,
                    teams: vec![team],
                    capacity,
                    available: true,
                    password_hash: None,
                },
                now(),
            )
            .await?;
        ids.push(agent.id);
    }
    eprintln!("creating {tickets} waiting tickets…");
    for n in 0..tickets {
        let draft = TicketDraft {
            subject: format!("Waiting ticket {n}"),
            body: "Please help".into(),
            requester: Requester::Email {
                email: format!("customer{}@bench.test", n % 500),
                name: None,
            },
            channel: Channel::Email,
            priority: Priority::P3,
            tier: Tier::ONE,
            team: Some(team),
            tags: vec![],
        };
        store.create_ticket(draft, Actor::System, now()).await?;
    }
    let settings = TeamAssignment {
        mode,
        unassign_when_offline: false,
    };
    store.set_team_assignment(team, settings, now()).await?;

    let room = usize::try_from(capacity)
        .unwrap_or(usize::MAX)
        .saturating_mul(agents);
    let started = Instant::now();
    let filled = drain_backlog(&store, team).await?;
    let fill = started.elapsed();
    if filled != room.min(tickets) {
        bail!(
            "the fill assigned {filled} tickets, expected {}",
            room.min(tickets)
        );
    }

    // Free one slot per agent: solve one of each agent's tickets.
    let mut freed = 0;
    for candidate in &ids {
        let filter = tierdesk_store::TicketFilter {
            assignee: Some(Some(*candidate)),
            ..Default::default()
        };
        if let Some(ticket) = store.list_tickets(&filter, None, 1).await?.first() {
            let solve = TicketChange::Update(UpdateSpec {
                status: Some(Status::Solved),
                ..UpdateSpec::default()
            });
            store
                .change_ticket(ticket.id, None, solve, Actor::System, now())
                .await?;
            freed += 1;
        }
    }
    let started = Instant::now();
    let refilled = drain_backlog(&store, team).await?;
    let refill = started.elapsed();

    let over: Vec<_> = store
        .assignment_candidates(team)
        .await?
        .into_iter()
        .filter(|c| c.open_assigned > c.capacity)
        .collect();
    if !over.is_empty() {
        bail!("{} agents are over capacity", over.len());
    }
    let waiting = store.team_backlog(team, 1_000_000).await?.len();
    let rate = |n: usize, d: std::time::Duration| n as f64 / d.as_secs_f64().max(1e-9);
    println!(
        "assign · SQLite ({durability:?}) · {agents} agents × capacity {capacity} · {tickets} tickets · {mode:?}"
    );
    println!(
        "  fill    {filled:>6} assignments in {:>8.1} ms  {:>8.0} assignments/s",
        fill.as_secs_f64() * 1e3,
        rate(filled, fill)
    );
    println!(
        "  refill  {refilled:>6} assignments in {:>8.1} ms  {:>8.0} assignments/s  ({freed} slots freed)",
        refill.as_secs_f64() * 1e3,
        rate(refilled, refill)
    );
    println!("  still waiting {waiting}; no agent over capacity");
    store.close().await;
    Ok(())
}
