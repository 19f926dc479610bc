//! Auto-assignment storage: settings, backlog, candidates with their load
//! and turns, the re-checked assignment, wakes committed with ticket
//! writes, and tickets of offline agents.

use super::{NOW, draft};
use crate::assignment::{ASSIGN_TEAM_JOB, AutoAssigned, release_change};
use crate::jobs::JobFilter;
use crate::model::*;
use crate::{Store, StoreError};
use std::sync::Arc;
use tierdesk_core::job::{JobKind, JobState};
use tierdesk_core::routing::{TeamAssignment, TeamAssignmentMode};
use tierdesk_core::{Actor, AgentId, Role, Status, TeamId, Ticket, Tier, Timestamp};

/// Runs the assignment checks as `#[tokio::test]`s on a backend's factory.
#[macro_export]
macro_rules! assignment_conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@each $factory;
            assignment_settings_default_to_manual_and_persist,
            backlog_and_candidates_reflect_tickets_and_loads,
            auto_assign_rechecks_version_and_capacity,
            ticket_writes_wake_the_team_assigner,
            concurrent_auto_assigns_never_exceed_capacity,
            releasable_tickets_are_offline_agents_new_and_open_ones,
            a_started_assigner_run_lets_later_wakes_queue_again,
        );
    };
}

const AUTO: TeamAssignment = TeamAssignment {
    mode: TeamAssignmentMode::RoundRobin,
    unassign_when_offline: false,
};

async fn team(store: &dyn Store, name: &str) -> TeamId {
    store
        .create_team(NewTeam {
            name: name.into(),
            description: String::new(),
        })
        .await
        .unwrap()
        .id
}

async fn member(
    store: &dyn Store,
    email: &str,
    tier: Tier,
    teams: Vec<TeamId>,
    capacity: i64,
) -> AgentId {
    store
        .create_agent(
            NewAgent {
                email: email.into(),
                name: email.into(),
                role: Role::Agent,
                tier,
                teams,
                capacity,
                available: true,
                password_hash: None,
            },
            NOW,
        )
        .await
        .unwrap()
        .id
}

async fn ticket_in(store: &dyn Store, team: TeamId, subject: &str, tier: Tier) -> Ticket {
    let mut d = draft("pat@example.com", subject);
    d.team = Some(team);
    d.tier = tier;
    store
        .create_ticket(d, Actor::System, NOW)
        .await
        .unwrap()
        .ticket
}

async fn set(store: &dyn Store, ticket: &Ticket, spec: UpdateSpec) -> Ticket {
    store
        .change_ticket(
            ticket.id,
            None,
            TicketChange::Update(spec),
            Actor::System,
            NOW,
        )
        .await
        .unwrap()
        .ticket
}

async fn assign(store: &dyn Store, ticket: &Ticket, agent: AgentId) -> Ticket {
    let spec = UpdateSpec {
        assignee: Some(Some(agent)),
        ..UpdateSpec::default()
    };
    set(store, ticket, spec).await
}

async fn status(store: &dyn Store, ticket: &Ticket, status: Status) -> Ticket {
    let spec = UpdateSpec {
        status: Some(status),
        ..UpdateSpec::default()
    };
    set(store, ticket, spec).await
}

/// Pending `assign.team` jobs, as team ids.
async fn woken_teams(store: &dyn Store) -> Vec<i64> {
    let filter = JobFilter {
        state: Some(JobState::Pending),
        kind: Some(JobKind::parse(ASSIGN_TEAM_JOB).unwrap()),
    };
    let mut teams: Vec<i64> = store
        .list_jobs(&filter, None, 100)
        .await
        .unwrap()
        .iter()
        .map(|j| j.payload["team_id"].as_i64().unwrap())
        .collect();
    teams.sort_unstable();
    teams
}

/// Frees every team's wake-up so the next one shows.
async fn clear_wakes(store: &dyn Store, teams: &[TeamId]) {
    for team in teams {
        store
            .cancel_jobs(&format!("{ASSIGN_TEAM_JOB}:{}", team.0), NOW)
            .await
            .unwrap();
    }
}

fn ids(tickets: &[Ticket]) -> Vec<i64> {
    tickets.iter().map(|t| t.id.0).collect()
}

pub async fn assignment_settings_default_to_manual_and_persist(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let t = team(s, "Network").await;
    assert_eq!(
        s.team_assignment(t).await.unwrap(),
        TeamAssignment::default()
    );
    assert!(s.auto_assigning_teams().await.unwrap().is_empty());
    assert!(matches!(
        s.team_assignment(TeamId(999)).await,
        Err(StoreError::NotFound("team"))
    ));
    assert!(matches!(
        s.set_team_assignment(TeamId(999), AUTO, NOW).await,
        Err(StoreError::NotFound("team"))
    ));
    let least = TeamAssignment {
        mode: TeamAssignmentMode::LeastLoaded,
        unassign_when_offline: true,
    };
    assert_eq!(s.set_team_assignment(t, least, NOW).await.unwrap(), least);
    assert_eq!(s.team_assignment(t).await.unwrap(), least);
    assert_eq!(s.auto_assigning_teams().await.unwrap(), [(t, least)]);
    // Turning assignment on wakes the team's assigner, once.
    assert_eq!(woken_teams(s).await, [t.0]);
    s.set_team_assignment(t, AUTO, NOW).await.unwrap();
    assert_eq!(s.team_assignment(t).await.unwrap(), AUTO);
    assert_eq!(woken_teams(s).await, [t.0]);
    // Manual again: no longer listed, and no new wake-up.
    clear_wakes(s, &[t]).await;
    let manual = TeamAssignment::default();
    s.set_team_assignment(t, manual, NOW).await.unwrap();
    assert_eq!(s.team_assignment(t).await.unwrap(), manual);
    assert!(s.auto_assigning_teams().await.unwrap().is_empty());
    assert!(woken_teams(s).await.is_empty());
}

pub async fn backlog_and_candidates_reflect_tickets_and_loads(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let network = team(s, "Network").await;
    let billing = team(s, "Billing").await;
    let ann = member(s, "ann@desk.test", Tier::ONE, vec![network], 3).await;
    let bob = member(s, "bob@desk.test", Tier::TWO, vec![network, billing], 2).await;
    member(s, "cy@desk.test", Tier::THREE, vec![billing], 5).await;

    let first = ticket_in(s, network, "First", Tier::ONE).await;
    let second = ticket_in(s, network, "Second", Tier::TWO).await;
    let third = ticket_in(s, network, "Third", Tier::ONE).await;
    let fourth = ticket_in(s, network, "Fourth", Tier::ONE).await;
    let fifth = ticket_in(s, network, "Fifth", Tier::ONE).await;
    ticket_in(s, billing, "Elsewhere", Tier::ONE).await;
    s.create_ticket(draft("pat@example.com", "No team"), Actor::System, NOW)
        .await
        .unwrap();
    assert_eq!(
        ids(&s.team_backlog(network, 100).await.unwrap()),
        ids(&[
            first.clone(),
            second.clone(),
            third.clone(),
            fourth.clone(),
            fifth.clone()
        ])
    );
    assert_eq!(
        ids(&s.team_backlog(network, 2).await.unwrap()),
        ids(&[first.clone(), second.clone()])
    );

    // Assigned, pending or solved tickets do not wait; open ones do.
    assign(s, &first, ann).await;
    let third = assign(s, &third, bob).await;
    status(s, &third, Status::Pending).await;
    let fourth = status(s, &fourth, Status::Open).await;
    let fifth = status(s, &fifth, Status::Pending).await;
    assert_eq!(fourth.status, Status::Open);
    assert_eq!(
        ids(&s.team_backlog(network, 100).await.unwrap()),
        ids(&[second.clone(), fourth.clone()])
    );
    // A pending ticket that comes back to open waits again, in its place.
    status(s, &fifth, Status::Open).await;
    assert_eq!(
        ids(&s.team_backlog(network, 100).await.unwrap()),
        ids(&[second.clone(), fourth.clone(), fifth.clone()])
    );

    // Loads count assigned tickets that are not solved or closed, in any team.
    let elsewhere = ticket_in(s, billing, "Bob's billing one", Tier::ONE).await;
    let elsewhere = assign(s, &elsewhere, bob).await;
    let solved_one = ticket_in(s, network, "Done soon", Tier::ONE).await;
    let solved_one = assign(s, &solved_one, ann).await;
    status(s, &solved_one, Status::Solved).await;
    let candidates = s.assignment_candidates(network).await.unwrap();
    let found: Vec<_> = candidates
        .iter()
        .map(|c| (c.id, c.tier, c.capacity, c.open_assigned, c.available))
        .collect();
    assert_eq!(
        found,
        [(ann, Tier::ONE, 3, 1, true), (bob, Tier::TWO, 2, 2, true)]
    );
    let bob_candidate = &candidates[1];
    assert_eq!(bob_candidate.teams, [network, billing]);
    assert!(bob_candidate.active);
    assert_eq!(bob_candidate.last_assigned_at, None);
    status(s, &elsewhere, Status::Solved).await;
    let unavailable = AgentPatch {
        available: Some(false),
        ..AgentPatch::default()
    };
    s.update_agent(bob, unavailable).await.unwrap();
    let candidates = s.assignment_candidates(network).await.unwrap();
    assert_eq!(candidates[1].open_assigned, 1);
    assert!(!candidates[1].available);
    assert!(
        s.assignment_candidates(TeamId(999))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn auto_assign_rechecks_version_and_capacity(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let network = team(s, "Network").await;
    let other = team(s, "Other").await;
    let ann = member(s, "ann@desk.test", Tier::ONE, vec![network], 1).await;
    let bob = member(s, "bob@desk.test", Tier::TWO, vec![network], 5).await;
    let outsider = member(s, "cy@desk.test", Tier::THREE, vec![other], 5).await;
    let easy = ticket_in(s, network, "Easy", Tier::ONE).await;
    let hard = ticket_in(s, network, "Hard", Tier::TWO).await;
    let later = ticket_in(s, network, "Later", Tier::ONE).await;

    // A stale version, a tier too low, an agent of another team: nothing happens.
    assert_eq!(
        s.auto_assign(easy.id, easy.version + 1, ann, NOW)
            .await
            .unwrap(),
        AutoAssigned::TicketMoved
    );
    assert_eq!(
        s.auto_assign(hard.id, hard.version, ann, NOW)
            .await
            .unwrap(),
        AutoAssigned::AgentCannotTake
    );
    assert_eq!(
        s.auto_assign(easy.id, easy.version, outsider, NOW)
            .await
            .unwrap(),
        AutoAssigned::AgentCannotTake
    );
    assert_eq!(s.ticket(easy.id).await.unwrap().unwrap(), easy);

    let AutoAssigned::Assigned(change) = s
        .auto_assign(easy.id, easy.version, ann, NOW)
        .await
        .unwrap()
    else {
        panic!("the assignment should have happened");
    };
    assert_eq!(change.ticket.assignee, Some(ann));
    assert_eq!(change.ticket.status, Status::Open, "assigning opens it");
    let timeline = s.ticket_events(easy.id).await.unwrap();
    let assigned = timeline
        .iter()
        .find(|e| e.event.kind.name() == "assignee_changed")
        .unwrap();
    assert_eq!(assigned.event.actor, Actor::System);
    // Ann is at capacity now; the same ticket again is no longer waiting.
    assert_eq!(
        s.auto_assign(later.id, later.version, ann, NOW)
            .await
            .unwrap(),
        AutoAssigned::AgentCannotTake
    );
    assert_eq!(
        s.auto_assign(easy.id, change.ticket.version, bob, NOW)
            .await
            .unwrap(),
        AutoAssigned::TicketMoved
    );
    // Turns are ordered even within one millisecond.
    let AutoAssigned::Assigned(_) = s
        .auto_assign(later.id, later.version, bob, NOW)
        .await
        .unwrap()
    else {
        panic!("bob has room");
    };
    let candidates = s.assignment_candidates(network).await.unwrap();
    let ann_turn = candidates[0].last_assigned_at.unwrap();
    let bob_turn = candidates[1].last_assigned_at.unwrap();
    assert!(
        ann_turn >= NOW && bob_turn > ann_turn,
        "{ann_turn:?} {bob_turn:?}"
    );
    assert_eq!(candidates[0].open_assigned, 1);
    // Unavailable agents get nothing, whatever their room.
    let away = AgentPatch {
        available: Some(false),
        ..AgentPatch::default()
    };
    s.update_agent(bob, away).await.unwrap();
    assert_eq!(
        s.auto_assign(hard.id, hard.version, bob, Timestamp(NOW.0 + 1))
            .await
            .unwrap(),
        AutoAssigned::AgentCannotTake
    );
}

pub async fn ticket_writes_wake_the_team_assigner(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let auto = team(s, "Auto").await;
    let both = team(s, "Also auto").await;
    let manual = team(s, "Manual").await;
    s.set_team_assignment(auto, AUTO, NOW).await.unwrap();
    s.set_team_assignment(both, AUTO, NOW).await.unwrap();
    let ann = member(s, "ann@desk.test", Tier::TWO, vec![auto, both, manual], 5).await;
    let all = [auto, both, manual];
    clear_wakes(s, &all).await;

    // Landing unassigned in an auto-assigning team wakes it; a manual team's does not.
    ticket_in(s, manual, "By hand", Tier::ONE).await;
    assert!(woken_teams(s).await.is_empty());
    let ticket = ticket_in(s, auto, "Queue me", Tier::ONE).await;
    assert_eq!(woken_teams(s).await, [auto.0]);
    // While the wake-up is pending, more tickets add no second job.
    ticket_in(s, auto, "Me too", Tier::ONE).await;
    assert_eq!(woken_teams(s).await, [auto.0]);
    clear_wakes(s, &all).await;

    // Assigning it wakes nobody; solving it frees capacity in every auto team of Ann's.
    let ticket = assign(s, &ticket, ann).await;
    assert!(woken_teams(s).await.is_empty());
    let ticket = status(s, &ticket, Status::Solved).await;
    assert_eq!(woken_teams(s).await, [auto.0, both.0]);
    clear_wakes(s, &all).await;

    // Moving an unassigned ticket into an auto team wakes that team.
    let moved = ticket_in(s, manual, "Move me", Tier::ONE).await;
    let spec = UpdateSpec {
        team: Some(Some(both)),
        ..UpdateSpec::default()
    };
    set(s, &moved, spec).await;
    assert_eq!(woken_teams(s).await, [both.0]);
    clear_wakes(s, &all).await;

    // Reopening (back to open, unassigned) wakes it; unassigning frees Ann's room.
    let reopened = status(s, &ticket, Status::Open).await;
    assert_eq!(reopened.assignee, Some(ann));
    assert!(woken_teams(s).await.is_empty(), "Ann's load grew back");
    s.change_ticket(reopened.id, None, release_change(), Actor::System, NOW)
        .await
        .unwrap();
    assert_eq!(woken_teams(s).await, [auto.0, both.0]);
}

pub async fn concurrent_auto_assigns_never_exceed_capacity(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let network = team(s, "Network").await;
    let ann = member(s, "ann@desk.test", Tier::ONE, vec![network], 3).await;
    let mut tickets = Vec::new();
    for n in 0..12 {
        tickets.push(ticket_in(s, network, &format!("Ticket {n}"), Tier::ONE).await);
    }
    let mut racing = tokio::task::JoinSet::new();
    for ticket in tickets {
        let store = store.clone();
        racing.spawn(async move {
            store
                .auto_assign(ticket.id, ticket.version, ann, NOW)
                .await
                .unwrap()
        });
    }
    let mut assigned = 0;
    while let Some(outcome) = racing.join_next().await {
        match outcome.unwrap() {
            AutoAssigned::Assigned(_) => assigned += 1,
            AutoAssigned::AgentCannotTake => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(assigned, 3);
    let candidates = s.assignment_candidates(network).await.unwrap();
    assert_eq!(candidates[0].open_assigned, 3);
    assert_eq!(s.team_backlog(network, 100).await.unwrap().len(), 9);
}

pub async fn releasable_tickets_are_offline_agents_new_and_open_ones(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let releasing = team(s, "Releasing").await;
    let keeping = team(s, "Keeping").await;
    s.set_team_assignment(
        releasing,
        TeamAssignment {
            mode: TeamAssignmentMode::LeastLoaded,
            unassign_when_offline: true,
        },
        NOW,
    )
    .await
    .unwrap();
    s.set_team_assignment(keeping, AUTO, NOW).await.unwrap();
    let ann = member(s, "ann@desk.test", Tier::TWO, vec![releasing, keeping], 9).await;
    let bob = member(s, "bob@desk.test", Tier::TWO, vec![releasing], 9).await;
    let open = ticket_in(s, releasing, "Open", Tier::ONE).await;
    let open = assign(s, &open, ann).await;
    let waiting = ticket_in(s, releasing, "Waiting on customer", Tier::ONE).await;
    let waiting = assign(s, &waiting, ann).await;
    status(s, &waiting, Status::Pending).await;
    let kept = ticket_in(s, keeping, "Other team", Tier::ONE).await;
    assign(s, &kept, ann).await;
    let bobs = ticket_in(s, releasing, "Bob's", Tier::ONE).await;
    assign(s, &bobs, bob).await;
    assert!(s.releasable_tickets(None, 100).await.unwrap().is_empty());

    let away = AgentPatch {
        available: Some(false),
        ..AgentPatch::default()
    };
    s.update_agent(ann, away).await.unwrap();
    assert_eq!(
        ids(&s.releasable_tickets(None, 100).await.unwrap()),
        [open.id.0]
    );
    assert!(
        s.releasable_tickets(Some(bob), 100)
            .await
            .unwrap()
            .is_empty()
    );
    let gone = AgentPatch {
        active: Some(false),
        ..AgentPatch::default()
    };
    s.update_agent(bob, gone).await.unwrap();
    assert_eq!(
        ids(&s.releasable_tickets(None, 100).await.unwrap()),
        [open.id.0, bobs.id.0]
    );
    assert_eq!(
        ids(&s.releasable_tickets(Some(ann), 100).await.unwrap()),
        [open.id.0]
    );
    // Releasing is an ordinary change; the ticket is back in the backlog.
    s.change_ticket(open.id, None, release_change(), Actor::System, NOW)
        .await
        .unwrap();
    assert_eq!(
        ids(&s.releasable_tickets(Some(ann), 100).await.unwrap()),
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(&s.team_backlog(releasing, 100).await.unwrap()),
        [open.id.0]
    );
}

pub async fn a_started_assigner_run_lets_later_wakes_queue_again(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let network = team(s, "Network").await;
    s.set_team_assignment(network, AUTO, NOW).await.unwrap();
    let claim = crate::jobs::Claim {
        owner: "assigner-1".into(),
        kinds: vec![JobKind::parse(ASSIGN_TEAM_JOB).unwrap()],
        lease: std::time::Duration::from_secs(30),
        limit: 10,
    };
    let claimed = s.claim_jobs(&claim, NOW).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let lease = claimed[0].lease().unwrap();
    // While the run holds the key, a wake joins it.
    ticket_in(s, network, "Joins the run", Tier::ONE).await;
    assert!(woken_teams(s).await.is_empty());
    // Once the run has started, a wake queues a new job.
    assert!(s.start_assigner_run(&lease).await.unwrap());
    ticket_in(s, network, "After the run read", Tier::ONE).await;
    assert_eq!(woken_teams(s).await, [network.0]);
    ticket_in(s, network, "Joins the new one", Tier::ONE).await;
    assert_eq!(woken_teams(s).await, [network.0]);
    // Only the lease's holder may start the run.
    let mut stale = lease.clone();
    stale.owner = "someone-else".into();
    assert!(!s.start_assigner_run(&stale).await.unwrap());
}
