#![allow(clippy::unwrap_used)]

use super::*;
use crate::command::{NewTicket, open_ticket};
use crate::event::Actor;
use crate::ids::ContactId;
use crate::ticket::{Channel, Priority};

fn ticket(id: i64, tier: Tier, team: Option<TeamId>) -> Ticket {
    let new = NewTicket {
        subject: format!("T{id}"),
        body: "b".into(),
        requester: ContactId(1),
        organisation: None,
        channel: Channel::Email,
        priority: Priority::P3,
        tier,
        team,
        tags: vec![],
        follow_up_of: None,
    };
    open_ticket(TicketId(id), id, &new, Actor::System, Timestamp(id))
        .unwrap()
        .0
}

fn owners() -> BTreeMap<String, TagOwner> {
    BTreeMap::from([
        (
            "l1-billing".into(),
            TagOwner {
                tier: Some(Tier::ONE),
                team: Some(TeamId(1)),
            },
        ),
        (
            "bug-report".into(),
            TagOwner {
                tier: Some(Tier::TWO),
                team: Some(TeamId(3)),
            },
        ),
        (
            "l3-outage".into(),
            TagOwner {
                tier: Some(Tier::THREE),
                team: Some(TeamId(4)),
            },
        ),
        (
            "printer".into(),
            TagOwner {
                tier: None,
                team: None,
            },
        ),
    ])
}

fn tags(names: &[&str]) -> Vec<TagName> {
    names.iter().map(|n| TagName::parse(n).unwrap()).collect()
}

#[test]
fn an_owned_tag_routes_to_its_tier_and_team() {
    let t = ticket(1, Tier::ONE, None);
    let mut update = Update {
        add_tags: tags(&["bug-report", "printer"]),
        ..Update::default()
    };
    let routed = route_by_tags(&mut update, &t, &owners());
    assert_eq!(routed, tags(&["bug-report"]));
    assert_eq!(
        (update.tier, update.team),
        (Some(Tier::TWO), Some(Some(TeamId(3))))
    );
}

#[test]
fn the_highest_owned_tier_wins_and_explicit_fields_win_over_tags() {
    let t = ticket(1, Tier::ONE, None);
    let mut update = Update {
        add_tags: tags(&["l1-billing", "l3-outage", "bug-report"]),
        ..Update::default()
    };
    route_by_tags(&mut update, &t, &owners());
    assert_eq!(
        (update.tier, update.team),
        (Some(Tier::THREE), Some(Some(TeamId(4))))
    );
    let mut explicit = Update {
        add_tags: tags(&["l3-outage"]),
        team: Some(Some(TeamId(9))),
        ..Update::default()
    };
    route_by_tags(&mut explicit, &t, &owners());
    assert_eq!(
        (explicit.tier, explicit.team),
        (Some(Tier::THREE), Some(Some(TeamId(9))))
    );
}

#[test]
fn routing_never_lowers_a_tier_and_ignores_tags_already_there() {
    let t = ticket(1, Tier::THREE, Some(TeamId(4)));
    let mut update = Update {
        add_tags: tags(&["l1-billing"]),
        ..Update::default()
    };
    route_by_tags(&mut update, &t, &owners());
    assert_eq!(update.tier, None, "an escalated ticket stays escalated");
    assert_eq!(update.team, Some(Some(TeamId(1))));
    let mut t2 = ticket(2, Tier::ONE, None);
    t2.tags.insert("bug-report".into());
    let mut again = Update {
        add_tags: tags(&["bug-report"]),
        ..Update::default()
    };
    assert!(route_by_tags(&mut again, &t2, &owners()).is_empty());
    assert_eq!(
        again,
        Update {
            add_tags: tags(&["bug-report"]),
            ..Update::default()
        }
    );
}

fn agent(id: i64, tier: Tier, open: i64, capacity: i64, last: Option<i64>) -> Candidate {
    Candidate {
        id: AgentId(id),
        tier,
        teams: vec![TeamId(1)],
        active: true,
        available: true,
        capacity,
        open_assigned: open,
        last_assigned_at: last.map(Timestamp),
    }
}

#[test]
fn only_qualified_available_agents_with_capacity_are_chosen() {
    let t2 = ticket(1, Tier::TWO, Some(TeamId(1)));
    let mut away = agent(4, Tier::THREE, 0, 5, None);
    away.available = false;
    let mut gone = agent(5, Tier::THREE, 0, 5, None);
    gone.active = false;
    let mut other_team = agent(6, Tier::THREE, 0, 5, None);
    other_team.teams = vec![TeamId(2)];
    let pool = vec![
        agent(1, Tier::ONE, 0, 5, None),
        agent(2, Tier::TWO, 5, 5, None),
        away,
        gone,
        other_team,
    ];
    assert_eq!(
        choose_assignee(&t2, &pool, AssignmentMode::RoundRobin),
        None,
        "nobody qualifies"
    );
    let mut pool = pool;
    pool.push(agent(3, Tier::THREE, 4, 5, Some(100)));
    assert_eq!(
        choose_assignee(&t2, &pool, AssignmentMode::RoundRobin),
        Some(AgentId(3))
    );
    assert_eq!(
        choose_assignee(&t2, &pool, AssignmentMode::LeastLoaded),
        Some(AgentId(3))
    );
}

#[test]
fn round_robin_takes_turns_and_least_loaded_balances() {
    let t = ticket(1, Tier::ONE, Some(TeamId(1)));
    let pool = vec![
        agent(1, Tier::ONE, 3, 10, Some(300)),
        agent(2, Tier::ONE, 1, 2, Some(100)),
        agent(3, Tier::ONE, 0, 10, Some(200)),
    ];
    assert_eq!(
        choose_assignee(&t, &pool, AssignmentMode::RoundRobin),
        Some(AgentId(2)),
        "assigned longest ago"
    );
    assert_eq!(
        choose_assignee(&t, &pool, AssignmentMode::LeastLoaded),
        Some(AgentId(3)),
        "most spare capacity"
    );
    // Never assigned beats any timestamp.
    let fresh = vec![
        agent(1, Tier::ONE, 0, 10, Some(1)),
        agent(2, Tier::ONE, 0, 10, None),
    ];
    assert_eq!(
        choose_assignee(&t, &fresh, AssignmentMode::RoundRobin),
        Some(AgentId(2))
    );
}

#[test]
fn a_backlog_waits_in_order_when_everyone_is_full() {
    let backlog: Vec<Ticket> = (1..=5)
        .map(|i| ticket(i, Tier::ONE, Some(TeamId(1))))
        .collect();
    let pool = vec![
        agent(1, Tier::ONE, 1, 2, None),
        agent(2, Tier::TWO, 0, 1, None),
    ];
    let plan = plan_assignments(
        &backlog,
        &pool,
        AssignmentMode::RoundRobin,
        Timestamp(1_000),
    );
    // Two free slots: the two oldest tickets get them, in order.
    assert_eq!(
        plan.iter().map(|(t, _)| t.0).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let agents: std::collections::BTreeSet<_> = plan.iter().map(|(_, a)| a.0).collect();
    assert_eq!(agents, [1, 2].into());
    // When capacity frees, the queue continues from ticket 3.
    let rest: Vec<Ticket> = backlog[2..].to_vec();
    let freed = vec![
        agent(1, Tier::ONE, 1, 2, Some(1_000)),
        agent(2, Tier::TWO, 1, 1, Some(1_001)),
    ];
    let plan = plan_assignments(&rest, &freed, AssignmentMode::LeastLoaded, Timestamp(2_000));
    assert_eq!(plan, vec![(TicketId(3), AgentId(1))]);
}

#[test]
fn team_assignment_settings_parse_default_to_manual_and_refuse_unknowns() {
    let manual: TeamAssignment = serde_json::from_str(r#"{"mode":"manual"}"#).unwrap();
    assert_eq!(manual, TeamAssignment::default());
    assert_eq!(manual.mode.automatic(), None);

    let least: TeamAssignment =
        serde_json::from_str(r#"{"mode":"least_loaded","unassign_when_offline":true}"#).unwrap();
    assert_eq!(least.mode.automatic(), Some(AssignmentMode::LeastLoaded));
    assert!(least.unassign_when_offline);
    assert_eq!(
        TeamAssignmentMode::RoundRobin.automatic(),
        Some(AssignmentMode::RoundRobin)
    );

    assert!(serde_json::from_str::<TeamAssignment>(r#"{"mode":"random"}"#).is_err());
    assert!(serde_json::from_str::<TeamAssignment>(r#"{"mode":"manual","x":1}"#).is_err());
}

#[test]
fn only_new_and_open_tickets_wait_for_an_assignee() {
    assert!(awaits_assignment(Status::New));
    assert!(awaits_assignment(Status::Open));
    for waiting_on_others in [
        Status::Pending,
        Status::OnHold,
        Status::Solved,
        Status::Closed,
    ] {
        assert!(!awaits_assignment(waiting_on_others));
    }
}
