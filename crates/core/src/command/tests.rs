#![allow(clippy::unwrap_used)]

use super::*;
use crate::escalation::{FilledTemplate, TimelineSummary};
use crate::ids::AgentId;
use crate::ids::RunbookId;
use crate::people::AgentRef;
use crate::runbook::StepOutcome;
use Status::*;

const T0: Timestamp = Timestamp(1_700_000_000_000);
const AGENT: Actor = Actor::Agent { id: AgentId(7) };
const CUSTOMER: Actor = Actor::Customer { id: ContactId(3) };

fn new_ticket() -> NewTicket {
    NewTicket {
        subject: "VPN drops every hour".into(),
        body: "Since Monday the VPN disconnects.".into(),
        requester: ContactId(3),
        organisation: None,
        channel: Channel::Email,
        priority: Priority::P3,
        tier: Tier::ONE,
        team: None,
        tags: vec![
            TagName::parse("vpn").unwrap(),
            TagName::parse("VPN").unwrap(),
        ],
        follow_up_of: None,
    }
}

fn ticket_in(status: Status) -> Ticket {
    let (mut ticket, _) = open_ticket(TicketId(1), 1001, &new_ticket(), CUSTOMER, T0).unwrap();
    ticket.status = status;
    ticket
}

fn ctx(actor: Actor) -> Context {
    Context::new(actor, T0.plus_millis(60_000))
}

fn run(ticket: &Ticket, actor: Actor, command: &Command) -> Result<Ticket, DecideError> {
    let events = decide(ticket, &ctx(actor), command)?;
    let mut next = ticket.clone();
    for e in &events {
        next.apply(e);
    }
    Ok(next)
}

fn escalate_to(tier: Tier) -> Command {
    Command::Escalate(Box::new(Escalation {
        to: tier,
        team: Some(TeamId(4)),
        assignee: None,
        reason: "Needs diagnostics".into(),
        template: FilledTemplate::default(),
        summary: TimelineSummary::default(),
    }))
}

fn de_escalate_to(tier: Tier, guidance: &str) -> Command {
    Command::DeEscalate(DeEscalation {
        to: tier,
        team: Some(TeamId(1)),
        assignee: None,
        guidance: guidance.into(),
    })
}

fn agent(id: i64, tier: Tier) -> AgentRef {
    AgentRef {
        id: AgentId(id),
        tier,
        active: true,
    }
}

#[test]
fn opening_a_ticket_records_creation_message_and_unique_tags() {
    let (ticket, events) = open_ticket(TicketId(1), 1001, &new_ticket(), CUSTOMER, T0).unwrap();
    let names: Vec<_> = events.iter().map(|e| e.kind.name()).collect();
    assert_eq!(names, ["created", "customer_message", "tag_added"]);
    assert_eq!(ticket.status, New);
    assert_eq!(ticket.version, 1);
    assert_eq!(ticket.reference().to_string(), "#1001");
    assert!(ticket.tags.contains("vpn"));
    assert_eq!(ticket.last_customer_message_at, Some(T0));
}

#[test]
fn opening_refuses_blank_subject_and_body() {
    let mut blank_subject = new_ticket();
    blank_subject.subject = "  ".into();
    let err = open_ticket(TicketId(1), 1001, &blank_subject, CUSTOMER, T0).unwrap_err();
    assert_eq!(
        err,
        DecideError::Field {
            field: "subject",
            error: FieldError::Empty
        }
    );
    let mut blank_body = new_ticket();
    blank_body.body = "\n".into();
    let err = open_ticket(TicketId(1), 1001, &blank_body, CUSTOMER, T0).unwrap_err();
    assert_eq!(
        err,
        DecideError::Field {
            field: "body",
            error: FieldError::Empty
        }
    );
}

/// The full status × command table. Each row names the expected resulting status,
/// or the error, so a change to the state machine must change this table.
#[test]
fn every_status_against_every_command() {
    enum Want {
        To(Status),
        IsClosed,
        IsSolved,
        Invalid,
        Forbidden,
    }
    use Want::*;
    let reply = Command::AgentReply {
        body: "On it".into(),
        status: None,
    };
    let reply_pending = Command::AgentReply {
        body: "Please try".into(),
        status: Some(Pending),
    };
    let customer = Command::CustomerMessage {
        author: ContactId(3),
        body: "Still broken".into(),
    };
    let note = Command::InternalNote {
        body: "Checked logs".into(),
    };
    let set = |s: Status| {
        Command::Update(Update {
            status: Some(s),
            ..Update::default()
        })
    };
    let bump = Command::Update(Update {
        priority: Some(Priority::P1),
        ..Update::default()
    });
    let assign = Command::Update(Update {
        assignee: Some(Some(agent(7, Tier::THREE))),
        ..Update::default()
    });
    let escalate = escalate_to(Tier::TWO);
    let step = Command::RecordRunbookStep {
        runbook: RunbookId(1),
        step: "restart".into(),
        title: "Restart the client".into(),
        outcome: StepOutcome::Done,
        note: None,
    };

    let cases: Vec<(Status, &str, Command, Actor, Want)> = vec![
        // customer messages reopen whatever was waiting
        (New, "customer", customer.clone(), CUSTOMER, To(New)),
        (Open, "customer", customer.clone(), CUSTOMER, To(Open)),
        (Pending, "customer", customer.clone(), CUSTOMER, To(Open)),
        (OnHold, "customer", customer.clone(), CUSTOMER, To(Open)),
        (Solved, "customer", customer.clone(), CUSTOMER, To(Open)),
        (Closed, "customer", customer.clone(), CUSTOMER, IsClosed),
        // agent replies open a new ticket and keep other statuses
        (New, "reply", reply.clone(), AGENT, To(Open)),
        (Open, "reply", reply.clone(), AGENT, To(Open)),
        (Pending, "reply", reply.clone(), AGENT, To(Pending)),
        (OnHold, "reply", reply.clone(), AGENT, To(OnHold)),
        (Solved, "reply", reply.clone(), AGENT, To(Solved)),
        (Closed, "reply", reply.clone(), AGENT, IsClosed),
        (
            New,
            "reply+pending",
            reply_pending.clone(),
            AGENT,
            To(Pending),
        ),
        (
            Open,
            "reply+pending",
            reply_pending.clone(),
            AGENT,
            To(Pending),
        ),
        (
            Pending,
            "reply+pending",
            reply_pending.clone(),
            AGENT,
            To(Pending),
        ),
        (
            OnHold,
            "reply+pending",
            reply_pending.clone(),
            AGENT,
            To(Pending),
        ),
        (
            Solved,
            "reply+pending",
            reply_pending.clone(),
            AGENT,
            To(Pending),
        ),
        (
            Closed,
            "reply+pending",
            reply_pending.clone(),
            AGENT,
            IsClosed,
        ),
        (
            Open,
            "reply by customer",
            reply.clone(),
            CUSTOMER,
            Forbidden,
        ),
        // notes never move the status
        (New, "note", note.clone(), AGENT, To(New)),
        (Open, "note", note.clone(), AGENT, To(Open)),
        (Pending, "note", note.clone(), AGENT, To(Pending)),
        (OnHold, "note", note.clone(), AGENT, To(OnHold)),
        (Solved, "note", note.clone(), AGENT, To(Solved)),
        (Closed, "note", note.clone(), AGENT, IsClosed),
        (Open, "note by customer", note.clone(), CUSTOMER, Forbidden),
        // other updates: status stays, except assigning a new ticket opens it
        (New, "priority", bump.clone(), AGENT, To(New)),
        (Open, "priority", bump.clone(), AGENT, To(Open)),
        (Pending, "priority", bump.clone(), AGENT, To(Pending)),
        (OnHold, "priority", bump.clone(), AGENT, To(OnHold)),
        (Solved, "priority", bump.clone(), AGENT, To(Solved)),
        (Closed, "priority", bump.clone(), AGENT, IsClosed),
        (New, "assign", assign.clone(), AGENT, To(Open)),
        (Open, "assign", assign.clone(), AGENT, To(Open)),
        (Pending, "assign", assign.clone(), AGENT, To(Pending)),
        (OnHold, "assign", assign.clone(), AGENT, To(OnHold)),
        (Solved, "assign", assign.clone(), AGENT, To(Solved)),
        (Closed, "assign", assign.clone(), AGENT, IsClosed),
        (
            Open,
            "update by customer",
            bump.clone(),
            CUSTOMER,
            Forbidden,
        ),
        // escalation moves the tier, never the status; a solved ticket is reopened first
        (New, "escalate", escalate.clone(), AGENT, To(New)),
        (Open, "escalate", escalate.clone(), AGENT, To(Open)),
        (Pending, "escalate", escalate.clone(), AGENT, To(Pending)),
        (OnHold, "escalate", escalate.clone(), AGENT, To(OnHold)),
        (Solved, "escalate", escalate.clone(), AGENT, IsSolved),
        (Closed, "escalate", escalate.clone(), AGENT, IsClosed),
        (
            Open,
            "escalate by customer",
            escalate.clone(),
            CUSTOMER,
            Forbidden,
        ),
        // runbook steps are recorded whatever the status, until closed
        (New, "runbook step", step.clone(), AGENT, To(New)),
        (Open, "runbook step", step.clone(), AGENT, To(Open)),
        (Pending, "runbook step", step.clone(), AGENT, To(Pending)),
        (OnHold, "runbook step", step.clone(), AGENT, To(OnHold)),
        (Solved, "runbook step", step.clone(), AGENT, To(Solved)),
        (Closed, "runbook step", step.clone(), AGENT, IsClosed),
        (
            Open,
            "runbook step by customer",
            step.clone(),
            CUSTOMER,
            Forbidden,
        ),
        // explicit status changes: the whole matrix
        (New, "set new", set(New), AGENT, To(New)),
        (New, "set open", set(Open), AGENT, To(Open)),
        (New, "set pending", set(Pending), AGENT, To(Pending)),
        (New, "set on_hold", set(OnHold), AGENT, To(OnHold)),
        (New, "set solved", set(Solved), AGENT, To(Solved)),
        (New, "set closed", set(Closed), AGENT, Invalid),
        (Open, "set new", set(New), AGENT, Invalid),
        (Open, "set open", set(Open), AGENT, To(Open)),
        (Open, "set pending", set(Pending), AGENT, To(Pending)),
        (Open, "set on_hold", set(OnHold), AGENT, To(OnHold)),
        (Open, "set solved", set(Solved), AGENT, To(Solved)),
        (Open, "set closed", set(Closed), AGENT, Invalid),
        (Pending, "set new", set(New), AGENT, Invalid),
        (Pending, "set open", set(Open), AGENT, To(Open)),
        (Pending, "set pending", set(Pending), AGENT, To(Pending)),
        (Pending, "set on_hold", set(OnHold), AGENT, To(OnHold)),
        (Pending, "set solved", set(Solved), AGENT, To(Solved)),
        (Pending, "set closed", set(Closed), AGENT, Invalid),
        (OnHold, "set new", set(New), AGENT, Invalid),
        (OnHold, "set open", set(Open), AGENT, To(Open)),
        (OnHold, "set pending", set(Pending), AGENT, To(Pending)),
        (OnHold, "set on_hold", set(OnHold), AGENT, To(OnHold)),
        (OnHold, "set solved", set(Solved), AGENT, To(Solved)),
        (OnHold, "set closed", set(Closed), AGENT, Invalid),
        (Solved, "set new", set(New), AGENT, Invalid),
        (Solved, "set open", set(Open), AGENT, To(Open)),
        (Solved, "set pending", set(Pending), AGENT, To(Pending)),
        (Solved, "set on_hold", set(OnHold), AGENT, To(OnHold)),
        (Solved, "set solved", set(Solved), AGENT, To(Solved)),
        (Solved, "set closed", set(Closed), AGENT, To(Closed)),
        (Closed, "set new", set(New), AGENT, IsClosed),
        (Closed, "set open", set(Open), AGENT, IsClosed),
        (Closed, "set pending", set(Pending), AGENT, IsClosed),
        (Closed, "set on_hold", set(OnHold), AGENT, IsClosed),
        (Closed, "set solved", set(Solved), AGENT, IsClosed),
        (Closed, "set closed", set(Closed), AGENT, IsClosed),
    ];
    // Every status meets every kind of command at least once.
    let mut kinds = vec![
        "customer".to_string(),
        "reply".into(),
        "reply+pending".into(),
        "note".into(),
        "priority".into(),
        "assign".into(),
        "escalate".into(),
        "runbook step".into(),
    ];
    kinds.extend(Status::ALL.iter().map(|s| format!("set {s}")));
    for status in Status::ALL {
        for kind in &kinds {
            let covered = cases.iter().any(|(s, k, ..)| s == status && k == kind);
            assert!(covered, "{status} × {kind} has no case");
        }
    }
    for (status, label, command, actor, want) in cases {
        let ticket = ticket_in(status);
        let got = run(&ticket, actor, &command);
        match (want, got) {
            (To(s), Ok(t)) => assert_eq!(t.status, s, "{status} × {label}"),
            (IsClosed, Err(DecideError::TicketClosed)) => {}
            (IsSolved, Err(DecideError::TicketSolved)) => {}
            (Invalid, Err(DecideError::InvalidTransition { from, to })) => {
                assert_eq!(from, status, "{label}");
                let _ = to;
            }
            (Forbidden, Err(DecideError::NotPermitted)) => {}
            (_, got) => panic!("{status} × {label}: unexpected {got:?}"),
        }
    }
}

#[test]
fn changes_bump_the_version_once_and_no_ops_emit_nothing() {
    let ticket = ticket_in(Open);
    let update = Command::Update(Update {
        status: Some(Pending),
        priority: Some(Priority::P1),
        tier: Some(Tier::TWO),
        add_tags: vec![TagName::parse("bug-report").unwrap()],
        ..Update::default()
    });
    let events = decide(&ticket, &ctx(AGENT), &update).unwrap();
    assert_eq!(events.len(), 4);
    assert!(events.iter().all(|e| e.version == ticket.version + 1));
    let same = Command::Update(Update {
        status: Some(Open),
        priority: Some(ticket.priority),
        add_tags: vec![TagName::parse("vpn").unwrap()],
        ..Update::default()
    });
    assert!(decide(&ticket, &ctx(AGENT), &same).unwrap().is_empty());
    let remove_missing = Command::Update(Update {
        remove_tags: vec![TagName::parse("nope").unwrap()],
        ..Update::default()
    });
    assert!(
        decide(&ticket, &ctx(AGENT), &remove_missing)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn assignee_must_be_active_and_work_the_ticket_tier() {
    let mut ticket = ticket_in(Open);
    ticket.tier = Tier::TWO;
    let low = Command::Update(Update {
        assignee: Some(Some(agent(5, Tier::ONE))),
        ..Update::default()
    });
    assert!(matches!(
        decide(&ticket, &ctx(AGENT), &low),
        Err(DecideError::AssigneeTierTooLow {
            agent_tier: Tier::ONE,
            ticket_tier: Tier::TWO,
            ..
        })
    ));
    let inactive = AgentRef {
        active: false,
        ..agent(5, Tier::THREE)
    };
    let cmd = Command::Update(Update {
        assignee: Some(Some(inactive)),
        ..Update::default()
    });
    assert_eq!(
        decide(&ticket, &ctx(AGENT), &cmd),
        Err(DecideError::AssigneeInactive(AgentId(5)))
    );
    // Raising the tier in the same change is checked against the new tier.
    let escalate = Command::Update(Update {
        tier: Some(Tier::THREE),
        assignee: Some(Some(agent(5, Tier::TWO))),
        ..Update::default()
    });
    assert!(decide(&ticket, &ctx(AGENT), &escalate).is_err());
}

#[test]
fn raising_the_tier_releases_an_underqualified_assignee() {
    let mut ticket = ticket_in(Open);
    ticket.assignee = Some(AgentId(5));
    let mut context = ctx(AGENT);
    context.current_assignee = Some(agent(5, Tier::ONE));
    let up = Command::Update(Update {
        tier: Some(Tier::TWO),
        ..Update::default()
    });
    let events = decide(&ticket, &context, &up).unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind.clone()).collect();
    assert!(kinds.contains(&EventKind::AssigneeChanged {
        from: Some(AgentId(5)),
        to: None
    }));
    // A tier 3 owner keeps the ticket.
    context.current_assignee = Some(agent(5, Tier::THREE));
    let events = decide(&ticket, &context, &up).unwrap();
    assert!(
        events
            .iter()
            .all(|e| !matches!(e.kind, EventKind::AssigneeChanged { .. }))
    );
}

#[test]
fn adding_and_removing_the_same_tag_is_refused() {
    let ticket = ticket_in(Open);
    let tag = TagName::parse("vpn").unwrap();
    let cmd = Command::Update(Update {
        add_tags: vec![tag.clone()],
        remove_tags: vec![tag],
        ..Update::default()
    });
    assert!(matches!(
        decide(&ticket, &ctx(AGENT), &cmd),
        Err(DecideError::Field { field: "tags", .. })
    ));
}

#[test]
fn timestamps_follow_the_events() {
    let ticket = ticket_in(New);
    let replied = run(
        &ticket,
        AGENT,
        &Command::AgentReply {
            body: "Hi".into(),
            status: Some(Solved),
        },
    )
    .unwrap();
    assert_eq!(replied.first_response_at, Some(T0.plus_millis(60_000)));
    assert_eq!(replied.solved_at, Some(T0.plus_millis(60_000)));
    let reopened = run(
        &replied,
        CUSTOMER,
        &Command::CustomerMessage {
            author: ContactId(3),
            body: "No".into(),
        },
    )
    .unwrap();
    assert_eq!(reopened.status, Open);
    assert_eq!(reopened.solved_at, None);
    assert_eq!(reopened.first_response_at, replied.first_response_at);
    assert_eq!(reopened.version, 3);
}

#[test]
fn a_ticket_is_the_fold_of_its_events() {
    let (mut ticket, mut history) =
        open_ticket(TicketId(9), 1009, &new_ticket(), CUSTOMER, T0).unwrap();
    let commands = [
        Command::AgentReply {
            body: "Looking".into(),
            status: None,
        },
        Command::Update(Update {
            tier: Some(Tier::TWO),
            team: Some(Some(TeamId(2))),
            ..Update::default()
        }),
        Command::InternalNote {
            body: "L2 please".into(),
        },
        Command::Update(Update {
            status: Some(Solved),
            ..Update::default()
        }),
        Command::Update(Update {
            status: Some(Closed),
            ..Update::default()
        }),
    ];
    for command in &commands {
        let events = decide(&ticket, &ctx(AGENT), command).unwrap();
        for e in &events {
            ticket.apply(e);
        }
        history.extend(events);
    }
    assert_eq!(Ticket::from_events(&history), Some(ticket.clone()));
    assert_eq!(ticket.status, Closed);
    assert_eq!(ticket.version, 6);
    assert!(ticket.closed_at.is_some());
}

#[test]
fn follow_up_copies_routing_and_links_back() {
    let mut closed = ticket_in(Closed);
    closed.tier = Tier::TWO;
    closed.team = Some(TeamId(4));
    let follow = NewTicket::follow_up(&closed, ContactId(3), "It broke again".into());
    assert_eq!(follow.follow_up_of, Some(closed.id));
    assert_eq!(follow.tier, Tier::TWO);
    assert_eq!(follow.team, Some(TeamId(4)));
    assert_eq!(follow.tags.len(), 1);
}

/// De-escalation against every status, from tier 2.
#[test]
fn de_escalation_against_every_status() {
    let back = de_escalate_to(Tier::ONE, "Reset the profile, see KB 12");
    for (status, want) in [
        (New, Ok(New)),
        (Open, Ok(Open)),
        (Pending, Ok(Pending)),
        (OnHold, Ok(OnHold)),
        (Solved, Err(DecideError::TicketSolved)),
        (Closed, Err(DecideError::TicketClosed)),
    ] {
        let mut ticket = ticket_in(status);
        ticket.tier = Tier::TWO;
        let got = run(&ticket, AGENT, &back).map(|t| (t.status, t.tier));
        assert_eq!(got, want.map(|s| (s, Tier::ONE)), "{status}");
    }
    let mut ticket = ticket_in(Open);
    ticket.tier = Tier::TWO;
    assert_eq!(
        run(&ticket, CUSTOMER, &back),
        Err(DecideError::NotPermitted)
    );
}

#[test]
fn escalation_goes_up_with_a_reason_and_releases_the_owner() {
    let mut ticket = ticket_in(Open);
    ticket.assignee = Some(AgentId(5));
    ticket.team = Some(TeamId(1));
    let events = decide(&ticket, &ctx(AGENT), &escalate_to(Tier::THREE)).unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind.clone()).collect();
    assert!(matches!(
        &kinds[0],
        EventKind::Escalated { from: Tier::ONE, to: Tier::THREE, team: Some(TeamId(4)), reason, previous_assignee: Some(AgentId(5)), .. }
            if reason == "Needs diagnostics"
    ));
    assert_eq!(
        kinds[1..],
        [
            EventKind::TierChanged {
                from: Tier::ONE,
                to: Tier::THREE
            },
            EventKind::TeamChanged {
                from: Some(TeamId(1)),
                to: Some(TeamId(4))
            },
            EventKind::AssigneeChanged {
                from: Some(AgentId(5)),
                to: None
            },
        ]
    );
    assert!(events.iter().all(|e| e.version == ticket.version + 1));
    // Not up: same tier or lower.
    assert_eq!(
        decide(&ticket, &ctx(AGENT), &escalate_to(Tier::ONE)),
        Err(DecideError::NotUp {
            from: Tier::ONE,
            to: Tier::ONE
        })
    );
    // A blank reason is refused by field.
    let Command::Escalate(mut blank) = escalate_to(Tier::TWO) else {
        unreachable!()
    };
    blank.reason = "  ".into();
    assert_eq!(
        decide(&ticket, &ctx(AGENT), &Command::Escalate(blank.clone())),
        Err(DecideError::Field {
            field: "reason",
            error: FieldError::Empty
        })
    );
    // A named owner must work the new tier; a new ticket with an owner opens.
    blank.reason = "Outage".into();
    blank.assignee = Some(agent(8, Tier::ONE));
    assert!(matches!(
        decide(&ticket, &ctx(AGENT), &Command::Escalate(blank.clone())),
        Err(DecideError::AssigneeTierTooLow { .. })
    ));
    blank.assignee = Some(agent(8, Tier::TWO));
    let fresh = ticket_in(New);
    let after = run(&fresh, AGENT, &Command::Escalate(blank)).unwrap();
    assert_eq!(
        (after.status, after.tier, after.assignee),
        (Open, Tier::TWO, Some(AgentId(8)))
    );
}

#[test]
fn de_escalation_needs_guidance_and_goes_down_to_a_working_tier() {
    let mut ticket = ticket_in(Open);
    ticket.tier = Tier::THREE;
    ticket.team = Some(TeamId(9));
    ticket.assignee = Some(AgentId(11));
    assert_eq!(
        decide(&ticket, &ctx(AGENT), &de_escalate_to(Tier::TWO, " \n")),
        Err(DecideError::Field {
            field: "guidance",
            error: FieldError::Empty
        })
    );
    for to in [Tier::THREE, Tier::SELF_SERVICE] {
        assert_eq!(
            decide(&ticket, &ctx(AGENT), &de_escalate_to(to, "x")),
            Err(DecideError::NotDown {
                from: Tier::THREE,
                to
            })
        );
    }
    // Handed back to the agent who escalated it.
    let Command::DeEscalate(mut back) = de_escalate_to(Tier::ONE, "Known issue: reinstall") else {
        unreachable!()
    };
    back.assignee = Some(agent(7, Tier::ONE));
    let events = decide(&ticket, &ctx(AGENT), &Command::DeEscalate(back)).unwrap();
    let names: Vec<_> = events.iter().map(|e| e.kind.name()).collect();
    assert_eq!(
        names,
        [
            "de_escalated",
            "tier_changed",
            "team_changed",
            "assignee_changed",
            "internal_note"
        ]
    );
    assert_eq!(
        events[0].kind,
        EventKind::DeEscalated {
            from: Tier::THREE,
            to: Tier::ONE,
            team: Some(TeamId(1)),
            previous_assignee: Some(AgentId(11))
        }
    );
    assert_eq!(
        events[4].kind,
        EventKind::InternalNote {
            body: "Known issue: reinstall".into()
        }
    );
    assert!(events.iter().all(|e| !e.kind.is_public()));
    let mut after = ticket.clone();
    for e in &events {
        after.apply(e);
    }
    assert_eq!(
        (after.tier, after.team, after.assignee),
        (Tier::ONE, Some(TeamId(1)), Some(AgentId(7)))
    );
}

#[test]
fn runbook_notes_are_validated_and_blank_ones_dropped() {
    let ticket = ticket_in(Open);
    let step = |note: Option<&str>| Command::RecordRunbookStep {
        runbook: RunbookId(1),
        step: "restart".into(),
        title: "Restart".into(),
        outcome: StepOutcome::Done,
        note: note.map(str::to_string),
    };
    let events = decide(&ticket, &ctx(AGENT), &step(Some("   "))).unwrap();
    assert!(matches!(
        &events[0].kind,
        EventKind::RunbookStepRecorded { note: None, .. }
    ));
    assert!(matches!(
        decide(&ticket, &ctx(AGENT), &step(Some("bad\u{0}"))),
        Err(DecideError::Field { field: "note", .. })
    ));
}
