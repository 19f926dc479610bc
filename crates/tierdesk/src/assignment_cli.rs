//! `tierdesk assignment show|set`: a team's auto-assignment from the
//! command line, straight on the store (as `tierdesk admin` does).

use crate::config::Config;
use crate::{Location, backend, now};
use clap::Subcommand;
use tierdesk_core::TeamId;
use tierdesk_core::routing::{TeamAssignment, TeamAssignmentMode};
use tierdesk_store::Store;

/// Waiting tickets `show` lists.
const SHOWN: u32 = 20;

#[derive(Subcommand)]
pub enum AssignmentCommand {
    /// Print a team's settings, its waiting tickets and its agents' loads.
    Show {
        /// The team's id.
        #[arg(long)]
        team: i64,
        #[command(flatten)]
        location: Location,
    },
    /// Set how a team's tickets get their assignee.
    Set {
        /// The team's id.
        #[arg(long)]
        team: i64,
        /// manual, round_robin or least_loaded.
        #[arg(long, value_parser = parse_mode)]
        mode: TeamAssignmentMode,
        /// Unassign an agent's new/open tickets of the team when they go
        /// unavailable or are deactivated, so they are assigned again.
        #[arg(long)]
        unassign_when_offline: bool,
        #[command(flatten)]
        location: Location,
    },
}

fn parse_mode(raw: &str) -> Result<TeamAssignmentMode, String> {
    serde_json::from_value(serde_json::Value::String(raw.to_string()))
        .map_err(|_| format!("{raw:?} is not one of manual, round_robin, least_loaded"))
}

fn mode_name(mode: TeamAssignmentMode) -> &'static str {
    match mode {
        TeamAssignmentMode::Manual => "manual",
        TeamAssignmentMode::RoundRobin => "round_robin",
        TeamAssignmentMode::LeastLoaded => "least_loaded",
    }
}

pub async fn run(command: AssignmentCommand, config: &mut Config) -> anyhow::Result<()> {
    match command {
        AssignmentCommand::Show { team, location } => {
            location.apply(config);
            let store = backend::open(config).await?;
            show(&*store, TeamId(team)).await
        }
        AssignmentCommand::Set {
            team,
            mode,
            unassign_when_offline,
            location,
        } => {
            location.apply(config);
            let store = backend::open(config).await?;
            let settings = TeamAssignment {
                mode,
                unassign_when_offline,
            };
            store
                .set_team_assignment(TeamId(team), settings, now())
                .await
                .map_err(|e| anyhow::anyhow!("team {team}: {e}"))?;
            println!(
                "team {team}: mode {}, unassign when offline: {}",
                mode_name(mode),
                if unassign_when_offline { "yes" } else { "no" }
            );
            Ok(())
        }
    }
}

async fn show(store: &dyn Store, team: TeamId) -> anyhow::Result<()> {
    let settings = store
        .team_assignment(team)
        .await
        .map_err(|e| anyhow::anyhow!("team {team}: {e}"))?;
    println!(
        "team {team}: mode {}, unassign when offline: {}",
        mode_name(settings.mode),
        if settings.unassign_when_offline {
            "yes"
        } else {
            "no"
        }
    );
    let waiting = store.team_backlog(team, SHOWN).await?;
    println!("waiting (oldest first): {}", waiting.len());
    for ticket in &waiting {
        println!(
            "  {}  tier {}  {}  {}",
            ticket.reference(),
            ticket.tier,
            ticket.status,
            ticket.subject
        );
    }
    println!("agents:");
    for agent in store.assignment_candidates(team).await? {
        println!(
            "  agent {}  tier {}  {}/{} open{}{}",
            agent.id,
            agent.tier,
            agent.open_assigned,
            agent.capacity,
            if agent.available { "" } else { "  unavailable" },
            if agent.active { "" } else { "  deactivated" },
        );
    }
    Ok(())
}
