#![allow(clippy::unwrap_used)]

use super::*;
use crate::command::{Context, decide};
use crate::ids::{AgentId, ContactId, TicketId};
use crate::ticket::{Channel, Priority, Tier};

const T0: Timestamp = Timestamp(1_750_000_000_000);
const AGENT: Actor = Actor::Agent { id: AgentId(7) };

fn vpn() -> Runbook {
    let spec: RunbookSpec = serde_json::from_value(serde_json::json!({
        "name": "VPN drops", "tags": ["vpn"], "steps": [
            { "id": "restart", "title": "Restart the VPN client" },
            { "id": "version", "title": "Is the client 5.2 or newer?", "article_id": 12,
              "check": { "yes": "logs", "no": "upgrade" } },
            { "id": "upgrade", "title": "Upgrade the client", "next": "resolved" },
            { "id": "logs", "title": "Collect the client log", "next": "escalate" }
        ]
    }))
    .unwrap();
    assert_eq!(spec.validate(), Ok(()));
    Runbook {
        id: RunbookId(5),
        spec,
    }
}

fn spec(steps: serde_json::Value, allow_cycles: bool) -> RunbookSpec {
    serde_json::from_value(serde_json::json!({
        "name": "test", "tags": ["vpn"], "allow_cycles": allow_cycles, "steps": steps
    }))
    .unwrap()
}

fn paths(spec: &RunbookSpec) -> Vec<String> {
    spec.validate()
        .unwrap_err()
        .into_iter()
        .map(|e| e.path)
        .collect()
}

/// A ticket whose agent records `steps` through `decide`, as the API will.
fn record(runbook: &Runbook, steps: &[(&str, StepOutcome, Option<&str>)]) -> Vec<Event> {
    let (mut ticket, mut events) = crate::command::open_ticket(
        TicketId(1),
        1001,
        &crate::command::NewTicket {
            subject: "VPN".into(),
            body: "drops".into(),
            requester: ContactId(3),
            organisation: None,
            channel: Channel::Email,
            priority: Priority::P3,
            tier: Tier::ONE,
            team: None,
            tags: vec![TagName::parse("vpn").unwrap()],
            follow_up_of: None,
        },
        Actor::Customer { id: ContactId(3) },
        T0,
    )
    .unwrap();
    for (i, (step, outcome, note)) in steps.iter().enumerate() {
        let command = runbook
            .record(step, *outcome, note.map(str::to_string))
            .unwrap();
        let ctx = Context::new(AGENT, T0.plus_millis(60_000 * (i as i64 + 1)));
        for event in decide(&ticket, &ctx, &command).unwrap() {
            ticket.apply(&event);
            events.push(event);
        }
    }
    events
}

#[test]
fn the_documented_example_round_trips() {
    let runbook = vpn();
    let json = serde_json::to_value(&runbook).unwrap();
    assert_eq!(json["steps"][1]["check"]["no"], "upgrade");
    assert_eq!(json["steps"][2]["next"], "resolved");
    let back: Runbook = serde_json::from_value(json).unwrap();
    assert_eq!(back, runbook);
}

#[test]
fn progress_follows_the_branches_to_resolution() {
    let runbook = vpn();
    let progress = |steps: &[(&str, StepOutcome, Option<&str>)]| {
        let events = record(&runbook, steps);
        let mut progress = RunbookProgress::new(runbook.id);
        for e in &events {
            progress.apply(e);
        }
        assert_eq!(
            RunbookProgress::all_from_events(&events).get(&runbook.id),
            (!steps.is_empty()).then_some(&progress)
        );
        progress.position(&runbook.spec)
    };
    use StepOutcome::*;
    assert_eq!(progress(&[]), Position::Step("restart".into()));
    assert_eq!(
        progress(&[("restart", Done, None)]),
        Position::Step("version".into())
    );
    assert_eq!(
        progress(&[("restart", Done, None), ("version", No, None)]),
        Position::Step("upgrade".into())
    );
    let resolved = progress(&[
        ("restart", Done, None),
        ("version", No, None),
        ("upgrade", Done, None),
    ]);
    assert_eq!(resolved, Position::Resolved);
    assert!(!resolved.suggests_escalation());
    let escalate = progress(&[
        ("restart", Skipped, None),
        ("version", Yes, None),
        ("logs", Done, None),
    ]);
    assert_eq!(escalate, Position::Escalate);
    assert!(escalate.suggests_escalation());
    // Going back and answering differently changes course.
    assert_eq!(
        progress(&[
            ("restart", Done, None),
            ("version", Yes, None),
            ("version", No, None)
        ]),
        Position::Step("upgrade".into())
    );
}

#[test]
fn running_out_of_steps_without_resolution_suggests_escalation() {
    let runbook = Runbook {
        id: RunbookId(6),
        spec: spec(
            serde_json::json!([
                { "id": "a", "title": "Check the cable" },
                { "id": "b", "title": "Reboot the router" }
            ]),
            false,
        ),
    };
    assert_eq!(runbook.spec.validate(), Ok(()));
    let events = record(
        &runbook,
        &[
            ("a", StepOutcome::Done, None),
            ("b", StepOutcome::Done, None),
        ],
    );
    let all = RunbookProgress::all_from_events(&events);
    let position = all[&runbook.id].position(&runbook.spec);
    assert_eq!(position, Position::Finished);
    assert!(position.suggests_escalation());
}

#[test]
fn steps_tried_lists_each_recorded_step_with_its_note() {
    let runbook = vpn();
    let events = record(
        &runbook,
        &[
            ("restart", StepOutcome::Done, None),
            ("version", StepOutcome::Yes, Some("5.3.1 installed")),
            ("logs", StepOutcome::Done, Some("  ")),
        ],
    );
    let progress = &RunbookProgress::all_from_events(&events)[&runbook.id];
    assert_eq!(
        progress.steps_tried(),
        "1. Restart the VPN client — done\n\
         2. Is the client 5.2 or newer? — yes (5.3.1 installed)\n\
         3. Collect the client log — done"
    );
    assert_eq!(progress.records[1].actor, AGENT);
    assert_eq!(progress.records[1].at, T0.plus_millis(120_000));
    // Recorded steps are internal.
    let recorded = events
        .iter()
        .find(|e| e.kind.name() == "runbook_step_recorded")
        .unwrap();
    assert!(!recorded.kind.is_public());
}

#[test]
fn recording_checks_the_step_and_the_outcome() {
    let runbook = vpn();
    assert_eq!(
        runbook.record("nope", StepOutcome::Done, None),
        Err(RecordError::UnknownStep("nope".into()))
    );
    assert!(matches!(
        runbook.record("version", StepOutcome::Done, None),
        Err(RecordError::OutcomeDoesNotFit {
            allowed: "yes or no",
            ..
        })
    ));
    assert!(matches!(
        runbook.record("restart", StepOutcome::Yes, None),
        Err(RecordError::OutcomeDoesNotFit {
            allowed: "done or skipped",
            ..
        })
    ));
    assert_eq!(
        runbook.record("upgrade", StepOutcome::Skipped, None),
        Ok(Command::RecordRunbookStep {
            runbook: RunbookId(5),
            step: "upgrade".into(),
            title: "Upgrade the client".into(),
            outcome: StepOutcome::Skipped,
            note: None
        })
    );
}

#[test]
fn runbooks_show_on_tickets_with_their_tags() {
    let mut other = vpn();
    other.id = RunbookId(2);
    other.spec.tags = vec![
        TagName::parse("o365").unwrap(),
        TagName::parse("vpn").unwrap(),
    ];
    let mut unrelated = vpn();
    unrelated.id = RunbookId(1);
    unrelated.spec.tags = vec![TagName::parse("billing").unwrap()];
    let all = [vpn(), unrelated, other];
    let tags: BTreeSet<String> = ["vpn".to_string()].into();
    let ids: Vec<RunbookId> = runbooks_for(&all, &tags).iter().map(|r| r.id).collect();
    assert_eq!(ids, [RunbookId(2), RunbookId(5)]);
    assert!(runbooks_for(&all, &BTreeSet::new()).is_empty());
}

#[test]
fn validation_finds_bad_ids_and_dangling_branches() {
    let bad = spec(
        serde_json::json!([
            { "id": "Start Here", "title": "x" },
            { "id": "resolved", "title": "x" },
            { "id": "b", "title": "", "next": "nowhere" },
            { "id": "b", "title": "x", "check": { "yes": "resolved", "no": "gone" } },
            { "id": "c", "title": "x", "check": { "yes": "b", "no": "b" }, "next": "b" },
            { "id": "d", "title": "x", "next": "d" }
        ]),
        false,
    );
    assert_eq!(
        paths(&bad),
        [
            "steps[0].id",
            "steps[1].id",
            "steps[2].title",
            "steps[2].next",
            "steps[3].id",
            "steps[3].check.no",
            "steps[4].next",
            "steps[5].next",
        ]
    );
    let empty: RunbookSpec = serde_json::from_value(serde_json::json!({
        "name": "x", "tags": [], "steps": []
    }))
    .unwrap();
    assert_eq!(paths(&empty), ["tags", "steps"]);
    assert!(
        serde_json::from_value::<RunbookSpec>(serde_json::json!({
            "name": "x", "tags": ["vpn"], "steps": [{ "id": "a", "title": "x", "kind": "check" }]
        }))
        .is_err()
    );
}

#[test]
fn unreachable_steps_and_loops_are_refused_unless_loops_are_allowed() {
    let unreachable = spec(
        serde_json::json!([
            { "id": "a", "title": "x", "next": "resolved" },
            { "id": "b", "title": "never reached" }
        ]),
        false,
    );
    let errors = unreachable.validate().unwrap_err();
    assert_eq!(errors[0].path, "steps[1]");
    assert!(errors[0].message.contains("cannot be reached"));
    let steps = serde_json::json!([
        { "id": "try", "title": "Try to connect" },
        { "id": "works", "title": "Does it work now?", "check": { "yes": "resolved", "no": "wait" } },
        { "id": "wait", "title": "Wait five minutes", "next": "try" }
    ]);
    let errors = spec(steps.clone(), false).validate().unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].message.contains("try → works → wait → try"),
        "{}",
        errors[0].message
    );
    assert_eq!(spec(steps, true).validate(), Ok(()));
    // Even with loops allowed, a loop with no way out is refused.
    let trap = spec(
        serde_json::json!([
            { "id": "a", "title": "x", "check": { "yes": "resolved", "no": "b" } },
            { "id": "b", "title": "x", "next": "c" },
            { "id": "c", "title": "x", "next": "b" }
        ]),
        true,
    );
    assert_eq!(paths(&trap), ["steps[1]", "steps[2]"]);
}
