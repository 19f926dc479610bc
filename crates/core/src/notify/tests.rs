#![allow(clippy::unwrap_used)]

use super::*;
use crate::command::{
    Command, Context, DeEscalation, Escalation, NewTicket, Update, decide, open_ticket,
};
use crate::escalation::{FilledTemplate, TimelineSummary};
use crate::ids::ContactId;
use crate::people::AgentRef;
use crate::sla::TargetKind;
use crate::ticket::{Channel, Priority};
use crate::time::Timestamp;

const T0: Timestamp = Timestamp(1_750_000_000_000);
const NETWORK: TeamId = TeamId(4);

fn brief(id: i64, name: &str, tier: Tier, teams: &[TeamId]) -> AgentBrief {
    AgentBrief {
        id: AgentId(id),
        email: format!("{}@desk.test", name.to_lowercase()),
        name: name.into(),
        tier,
        teams: teams.to_vec(),
        active: true,
    }
}

fn directory() -> Vec<AgentBrief> {
    let mut gone = brief(5, "Gone", Tier::TWO, &[NETWORK]);
    gone.active = false;
    vec![
        brief(1, "Ann", Tier::ONE, &[NETWORK]),
        brief(2, "Bo", Tier::TWO, &[NETWORK]),
        brief(3, "Cy", Tier::THREE, &[NETWORK]),
        brief(4, "Di", Tier::TWO, &[TeamId(9)]),
        gone,
    ]
}

fn agent(id: i64) -> Actor {
    Actor::Agent { id: AgentId(id) }
}

/// A ticket and its history, with `command` applied by `actor`.
struct Desk {
    ticket: Ticket,
    history: Vec<Event>,
}

impl Desk {
    fn new() -> Self {
        let new = NewTicket {
            subject: "VPN drops".into(),
            body: "Every hour".into(),
            requester: ContactId(1),
            organisation: None,
            channel: Channel::Email,
            priority: Priority::P2,
            tier: Tier::ONE,
            team: None,
            tags: vec![],
            follow_up_of: None,
        };
        let (ticket, history) = open_ticket(TicketId(1001), 1001, &new, Actor::System, T0).unwrap();
        Desk { ticket, history }
    }

    /// Runs a command and returns the notifications its events call for.
    fn run(&mut self, actor: Actor, command: Command) -> Vec<(i64, NotificationKind)> {
        let mut context = Context::new(actor, T0);
        context.current_assignee = self.ticket.assignee.map(|id| AgentRef {
            id,
            tier: directory()
                .iter()
                .find(|a| a.id == id)
                .map_or(Tier::ONE, |a| a.tier),
            active: true,
        });
        let events = decide(&self.ticket, &context, &command).unwrap();
        self.push(events)
    }

    fn push(&mut self, events: Vec<Event>) -> Vec<(i64, NotificationKind)> {
        let first = self.history.len();
        for event in &events {
            self.ticket.apply(event);
        }
        self.history.extend(events);
        let change: Vec<(EventId, &Event)> = self.history[first..]
            .iter()
            .enumerate()
            .map(|(i, e)| (EventId((first + i) as i64 + 1), e))
            .collect();
        notifications_for(&self.ticket, &change, &self.history, &directory())
            .into_iter()
            .map(|n| (n.agent.0, n.kind))
            .collect()
    }
}

fn assign(id: i64) -> Command {
    Command::Update(Update {
        assignee: Some(Some(AgentRef {
            id: AgentId(id),
            tier: Tier::THREE,
            active: true,
        })),
        ..Update::default()
    })
}

fn escalate(team: Option<TeamId>) -> Command {
    Command::Escalate(Box::new(Escalation {
        to: Tier::TWO,
        team,
        assignee: None,
        reason: "VPN server side".into(),
        template: FilledTemplate::default(),
        summary: TimelineSummary::default(),
    }))
}

#[test]
fn assignment_notifies_the_assignee_but_not_who_took_it() {
    let mut desk = Desk::new();
    assert_eq!(
        desk.run(agent(3), assign(1)),
        [(1, NotificationKind::Assigned)]
    );
    let mut desk = Desk::new();
    assert_eq!(desk.run(agent(1), assign(1)), []);
}

#[test]
fn escalation_notifies_the_team_members_who_work_the_new_tier() {
    let mut desk = Desk::new();
    desk.run(agent(9), assign(1));
    let told = desk.run(agent(1), escalate(Some(NETWORK)));
    // Ann (tier 1) cannot own it, Di is in another team, Gone is inactive.
    assert_eq!(
        told,
        [
            (2, NotificationKind::EscalatedToTeam),
            (3, NotificationKind::EscalatedToTeam)
        ]
    );
    let mut desk = Desk::new();
    assert_eq!(desk.run(agent(1), escalate(None)), [], "no team, no one");
}

#[test]
fn solving_tells_everyone_it_was_escalated_away_from() {
    let mut desk = Desk::new();
    desk.run(agent(9), assign(1));
    desk.run(agent(1), escalate(Some(NETWORK)));
    desk.run(agent(2), assign(2));
    let told = desk.run(
        agent(2),
        Command::AgentReply {
            body: "Fixed on the server".into(),
            status: Some(Status::Solved),
        },
    );
    assert_eq!(told, [(1, NotificationKind::EscalatedTicketSolved)]);
    // A de-escalation back to Ann, who then solves it herself: no one else
    // owned it before an escalation, and she is not told of her own act.
    let mut desk = Desk::new();
    desk.run(agent(9), assign(1));
    desk.run(agent(1), escalate(Some(NETWORK)));
    desk.run(
        agent(2),
        Command::DeEscalate(DeEscalation {
            to: Tier::ONE,
            team: None,
            assignee: Some(AgentRef {
                id: AgentId(1),
                tier: Tier::ONE,
                active: true,
            }),
            guidance: "Reinstall the client, @Ann".into(),
        }),
    );
    let told = desk.run(
        agent(1),
        Command::AgentReply {
            body: "Done".into(),
            status: Some(Status::Solved),
        },
    );
    assert_eq!(told, []);
}

#[test]
fn notes_notify_the_agents_they_mention() {
    let mut desk = Desk::new();
    let told = desk.run(
        agent(1),
        Command::InternalNote {
            body: "@bo@desk.test and @CY, have a look. Not @di-team, not pat@ann.example, and @Ann is me.".into(),
        },
    );
    assert_eq!(
        told,
        [
            (2, NotificationKind::Mentioned),
            (3, NotificationKind::Mentioned)
        ]
    );
    assert!(needs(&desk.history[desk.history.len() - 1..]).agents);
}

#[test]
fn sla_events_notify_the_assignee() {
    let mut desk = Desk::new();
    desk.run(agent(9), assign(2));
    let timer = |kind| Event {
        ticket: TicketId(1001),
        version: desk.ticket.version + 1,
        at: T0,
        actor: Actor::System,
        kind,
    };
    let events = vec![
        timer(EventKind::SlaWarning {
            target: TargetKind::FirstResponse,
            due_at: T0,
        }),
        timer(EventKind::SlaBreached {
            target: TargetKind::Resolution,
            due_at: T0,
        }),
    ];
    assert_eq!(
        desk.push(events),
        [
            (2, NotificationKind::SlaWarning),
            (2, NotificationKind::SlaBreached)
        ]
    );
}

#[test]
fn needs_says_what_to_load() {
    let desk = Desk::new();
    assert_eq!(needs(&desk.history), Needs::default());
    assert!(!needs(&desk.history).any());
}
